# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 03 · How long may a model rollout be?
# <!-- slide
# - Model error adds up **linearly** in TV: Theorem 4.1's $(1-\gamma)^{-2}$
# - Theorem 4.2: always $k^\star = 0$
# - Measured: how fast the model's error grows as the policy moves
# - Theorem 4.3: $k^\star > 0$ when that growth is slow
# - A learned ensemble's k-step error; official schedules
# -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mbpo-series/mbpo-notebooks/blob/main/notebooks/03_rollout_length_theory.ipynb)
#
# **What you will learn**
#
# - why the paper's model error adds up **linearly** over a rollout (total-variation distance)
#   and where Theorem 4.1's $(1-\gamma)^{-2}$ comes from; when the Euclidean, Lipschitz picture
#   applies instead;
# - why Theorem 4.2 always says "no model rollout", $k^\star = 0$;
# - the paper's empirical step, measured by us: how fast a model's error grows as the policy
#   moves away from the data, the slope $d\varepsilon_{m'}/d\varepsilon_\pi$;
# - Theorem 4.3: $k^\star > 0$ exactly when that slope is small, $k^\star$ in closed form, and where
#   our measured slope puts it;
# - how the k-step error of a real learned ensemble grows, and the official rollout schedules.

# %% slideshow={"slide_type": "skip"}
# Setup: on Colab, install mbpo_lib from the repository (Colab's own torch is kept).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "mbpo_lib @ git+https://github.com/mbpo-series/mbpo-notebooks@main"],
        check=True,
    )

import copy
import dataclasses
import io
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mbpo_lib

FAST = mbpo_lib.fast_mode()
generator = mbpo_lib.seed_everything(0)
device = mbpo_lib.default_device()
mbpo_lib.apply_style()
print(f"mbpo_lib {mbpo_lib.__version__} | device: {device} | FAST mode: {FAST}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Sources
# <!-- slide
# - Janner, Fu, Zhang and Levine 2019, Section 4: Theorems 4.1 to 4.3 and Figure 1
# - Where the method guide simplifies, the paper's statements replace it
# -->
#
# This lesson teaches Section 4 of the paper (Janner, Fu, Zhang and Levine, *When to Trust Your
# Model: Model-Based Policy Optimization*, NeurIPS 2019): Theorems 4.1, 4.2 and 4.3 and the
# measurement that links them. The series was designed from a companion text, the **method
# guide** (in Chinese, introduced in notebook 00). Its chapter on rollout length simplifies the
# paper in three ways, which this lesson replaces by the paper's statements: it writes the bound
# as $\eta \ge \hat\eta - C\,\varepsilon_m k$, which keeps only the model term; it reads
# compounding error as "5 % a step, 75 % after 15 steps", which is the linear law; and its
# rollout schedule ends its ramp at epoch 100 for every task.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Model error as a TV distance: why it adds up linearly
# <!-- slide
# - $D_{TV}(p, q) = \tfrac12\int|p - q|$: how much probability sits on wrong states
#
# $$
# D_{TV}(d_{t+1}, \hat d_{t+1}) \le D_{TV}(d_t, \hat d_t) + \varepsilon
# \quad\Longrightarrow\quad D_{TV}(d_t, \hat d_t) \le t\,\varepsilon
# $$
#
# - A Markov kernel never increases a TV distance: no Lipschitz constant
#
# $$
# \sum_{t \ge 0}\gamma^t\, t\,\varepsilon = \frac{\gamma\,\varepsilon}{(1-\gamma)^2}
# \qquad\text{Theorem 4.1's model term}
# $$
# -->
#
# The paper measures errors as **total-variation** (TV) distances,
# $D_{TV}(p, q) = \tfrac12\int|p - q| \in [0, 1]$. Run the policy in the real dynamics $p$ and in
# the model $\hat p$ from the same start; $d_t$, $\hat d_t$ are the state distributions at step
# $t$, and the model's one-step error is at most $\varepsilon$ in TV at every state. Then
#
# $$
# d_{t+1} - \hat d_{t+1} \;=\; \underbrace{(P - \hat P)\,d_t}_{\text{TV} \,\le\, \varepsilon}
# \;+\; \underbrace{\hat P\,(d_t - \hat d_t)}_{\text{TV} \,\le\, D_{TV}(d_t,\, \hat d_t)}
# \quad\Longrightarrow\quad
# D_{TV}(d_{t+1}, \hat d_{t+1}) \le D_{TV}(d_t, \hat d_t) + \varepsilon
# \quad\Longrightarrow\quad D_{TV}(d_t, \hat d_t) \le t\,\varepsilon ,
# $$
#
# where $P$, $\hat P$ are the one-step kernels with the policy folded in. The second term cannot
# grow: a Markov kernel never increases a TV distance, however much it stretches states apart.
# So no Lipschitz constant appears. With rewards in $[-r_{\max}, r_{\max}]$ the returns differ by
# at most $\sum_t \gamma^t\, 2r_{\max}\, t\varepsilon$, and
#
# $$
# \sum_{t \ge 0}\gamma^t\, t\,\varepsilon \;=\; \frac{\gamma\,\varepsilon}{(1-\gamma)^2}
# \qquad\text{(the } (1-\gamma)^{-2} \text{ of Theorem 4.1's model term).}
# $$

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### From scratch: two small Markov chains
# <!-- slide
# - Both state distributions, exactly, under a real $P$ and a model $\hat P$
# - **Conveyor**: a ring of 200 states; an error is never undone
# - **Mixing chain**: 30 states; early errors are forgotten
# -->
#
# Both state distributions, computed exactly step by step, for a "real" kernel $P$ and a
# "model" $\hat P$ that misplaces probability $\varepsilon$ (the worst row's TV error):
#
# - a **conveyor**: 200 states in a ring, the real chain moves one state on, the model moves two
#   with probability 0.02; an error is never undone;
# - a **mixing chain**: 30 states, random rows, the model moves 3 % of every row elsewhere.

# %% slideshow={"slide_type": "fragment"}
def tv_path(P: np.ndarray, P_hat: np.ndarray, horizon: int) -> tuple[float, np.ndarray]:
    """ε (the worst row's TV error) and D_TV(d_t, d̂_t) for t = 0..horizon, both chains from state 0."""
    eps = 0.5 * np.abs(P - P_hat).sum(axis=1).max()
    d = d_hat = np.eye(len(P))[0]
    tv = [0.0]
    for _ in range(horizon):
        d, d_hat = d @ P, d_hat @ P_hat
        tv.append(0.5 * np.abs(d - d_hat).sum())
    return eps, np.array(tv)

# %% slideshow={"slide_type": "subslide"}
ring = np.roll(np.eye(200), 1, axis=1)                        # s -> s + 1
rng = np.random.default_rng(0)
P_mix = rng.dirichlet(np.full(30, 0.3), size=30)
chains = {"conveyor": (ring, 0.98 * ring + 0.02 * np.roll(ring, 1, axis=1)),
          "mixing": (P_mix, 0.97 * P_mix + 0.03 * rng.dirichlet(np.full(30, 0.3), size=30))}
horizon, t = 60, np.arange(61)
for name, (P, P_hat) in chains.items():
    eps_chain, tv = tv_path(P, P_hat, horizon)
    assert np.all(tv <= t * eps_chain + 1e-12)
    chains[name] = (eps_chain, tv)
    print(f"{name:8s} ε = {eps_chain:.4f}; TV at t = 1, 10, 60: {tv[1]:.4f}, {tv[10]:.4f}, {tv[60]:.4f} "
          f"(bound tε: {eps_chain:.4f}, {10 * eps_chain:.4f}, {60 * eps_chain:.4f})")

# %% slideshow={"slide_type": "fragment"}
np.testing.assert_allclose(chains["conveyor"][1], 1 - (1 - 0.02) ** t)   # the conveyor's TV, exactly
gamma, eps_chain = 0.99, chains["conveyor"][0]
t_long = np.arange(20_000)
partial_sum = np.sum(gamma ** t_long * t_long * eps_chain)
np.testing.assert_allclose(partial_sum, mbpo_lib.discounted_linear_error(eps_chain, gamma), rtol=1e-9)
print(f"Σ γ^t t ε = {partial_sum:.3f} = γε/(1-γ)² = {mbpo_lib.discounted_linear_error(eps_chain, gamma):.3f} "
      f"at γ = {gamma}: the model's one-step error times {gamma / (1 - gamma) ** 2:,.0f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The Euclidean picture beside it
# <!-- slide
# - Euclidean: $e_{t+1} \le L\,e_t + \varepsilon$, so $e_k \le \varepsilon\,(L^k - 1)/(L - 1)$
# - **TV**: linear whatever the dynamics; what a bound on returns needs
# - **Euclidean**: what a rollout can measure; geometric when dynamics stretch
# -->
#
# Notebook 00 measured error differently: the *distance* between the model's state and the real
# one, $e_t = \|\hat s_t - s_t\|$, along one trajectory. If the model's map stretches distances
# by at most $L$ (its Lipschitz constant), $e_{t+1} \le L\,e_t + \varepsilon$, so
# $e_k \le \varepsilon (L^k - 1)/(L - 1)$: **geometric** for $L > 1$, linear only at $L = 1$,
# levelling off at $\varepsilon/(1-L)$ for $L < 1$.
#
# - **TV** counts how much probability sits on wrong states, not how far off they are; it is
#   what a bound on *returns* with bounded rewards needs, and it adds up linearly whatever the
#   dynamics do. Its price: it is hard to measure for continuous states, and a model that is
#   a little off everywhere has a large TV error.
# - **Euclidean** error is what we can measure on a rollout, and what matters when rewards and
#   values change smoothly with the state; stretching dynamics (contacts, falls) make it grow
#   faster than linearly.

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 3.9))
for name, (eps_chain, tv) in chains.items():
    line, = left.plot(t, tv, "o-", ms=3, label=name)
    left.plot(t, np.minimum(t * eps_chain, 1), "--", color=line.get_color(), lw=1,
              label=rf"bound $t\varepsilon$, $\varepsilon = {eps_chain:.2f}$")
left.set(xlabel="step t", ylabel=r"$D_{TV}(d_t, \hat d_t)$", title="TV: at most linear")
left.legend()
ks = np.arange(0, 31)
for L in (0.8, 1.0, 1.1):
    right.plot(ks, mbpo_lib.geometric_compounding_error(0.05, L, ks), label=f"$L = {L}$")
right.set(xlabel="step k", ylabel=r"bound on $\|\hat s_k - s_k\|$",
          title=r"Euclidean, $\varepsilon = 0.05$", ylim=(0, 3))
right.legend()
mbpo_lib.save_figure(fig, "03_compounding_error")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Both chains stay below $t\varepsilon$; the conveyor follows it closely
# - The mixing chain forgets early errors and levels off
# -->
# Both chains stay below $t\varepsilon$. On the conveyor, where no error is ever undone, the TV
# distance is $1 - (1 - \varepsilon)^t$: it follows $t\varepsilon$ closely at first, so the linear
# bound is tight. The mixing chain forgets early errors, and its distance levels off. The
# Euclidean bound, on the right, depends on $L$; we measure the real growth of a learned
# ensemble's Euclidean error near the end of the lesson.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Theorem 4.1: rollouts of the full horizon
# <!-- slide
# - $\varepsilon_\pi$: policy shift; $\varepsilon_m$: model error on the data's states
#
# $$
# \eta[\pi] \;\ge\; \hat\eta[\pi] - \Big[
# \frac{2\gamma r_{\max}(\varepsilon_m + 2\varepsilon_\pi)}{(1-\gamma)^2}
# + \frac{4 r_{\max}\varepsilon_\pi}{1-\gamma}\Big]
# $$
#
# - At $\gamma = 0.99$ the model error is multiplied by about $2 \cdot 10^4\, r_{\max}$
# -->
#
# > **You should know: the paper's quantities (Janner et al. 2019, Section 4)**
# >
# > - Policy shift $\varepsilon_\pi = \max_s D_{TV}\big(\pi(\cdot\mid s)\,\|\,\pi_D(\cdot\mid s)\big)$
# >   between the current policy $\pi$ and the policy $\pi_D$ that collected the data.
# > - Model error on the data, $\varepsilon_m = \max_t \mathbb{E}_{s \sim \pi_{D,t}}
# >   \big[D_{TV}\big(p(s' \mid s, a)\,\|\,p_\theta(s' \mid s, a)\big)\big]$: states from the
# >   data policy.
# > - Model error under the new policy, $\varepsilon_{m'}$: the same with $s \sim \pi_t$.
# > - $r_{\max}$ the largest reward, $\gamma$ the discount.
#
# $$
# \eta[\pi] \;\ge\; \hat\eta[\pi] - \Big[
# \frac{2\gamma r_{\max}(\varepsilon_m + 2\varepsilon_\pi)}{(1-\gamma)^2}
# + \frac{4 r_{\max}\varepsilon_\pi}{1-\gamma}\Big].
# $$
#
# The first term is the TV sum above, with the model's error on the new policy's states bounded
# by $\varepsilon_m + 2\varepsilon_\pi$. At $\gamma = 0.99$ it multiplies the model error by
# about $2 \cdot 10^4\, r_{\max}$: the model cannot be trusted for the full horizon.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Theorem 4.2: branched rollouts never pay off
# <!-- slide
# - $k$-step rollouts **branched** from real states
#
# $$
# \eta[\pi] \;\ge\; \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
# \underbrace{\frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2}
# + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}}_{\text{falls with } k}
# + \underbrace{\frac{k}{1-\gamma}\,(\varepsilon_m + 2\varepsilon_\pi)}_{\text{rises with } k}\Big]
# $$
#
# $$
# \text{gap}(k+1) - \text{gap}(k)
# \;\ge\; \frac{2r_{\max}}{1-\gamma}\,(\varepsilon_m + \varepsilon_\pi) \;>\; 0
# $$
#
# - Every step makes the bound worse: $k^\star = 0$
# -->
#
# MBPO does not roll out from the start: it **branches** $k$-step rollouts from states of the
# real data. The paper's first bound for the return $\eta^{\mathrm{branch}}$ of such rollouts:
#
# $$
# \eta[\pi] \;\ge\; \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
# \underbrace{\frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2}
# + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}}_{\text{policy shift: falls with } k}
# + \underbrace{\frac{k}{1-\gamma}\,(\varepsilon_m + 2\varepsilon_\pi)}_{\text{model: rises with } k}\Big].
# $$
#
# The two shift terms combine to $\gamma^k\varepsilon_\pi/(1-\gamma)^2$. One more step lowers it by
# $\gamma^k\varepsilon_\pi/(1-\gamma)$ and raises the model term by
# $(\varepsilon_m + 2\varepsilon_\pi)/(1-\gamma)$:
#
# $$
# \text{gap}(k+1) - \text{gap}(k) = \frac{2r_{\max}}{1-\gamma}
# \big(\varepsilon_m + 2\varepsilon_\pi - \gamma^k\varepsilon_\pi\big)
# \;\ge\; \frac{2r_{\max}}{1-\gamma}\,(\varepsilon_m + \varepsilon_\pi) \;>\; 0 .
# $$
#
# Every step makes the bound worse, for **every** $\varepsilon_m$ and $\varepsilon_\pi$: $k^\star = 0$.

# %% slideshow={"slide_type": "subslide"}
settings = [(g, e_pi, e_m) for g in (0.9, 0.99, 0.999) for e_pi in (0.001, 0.1, 0.5)
            for e_m in (0.0, 1e-4, 0.1)]
k_long = np.arange(0, 2001)
best_42 = [int(np.argmin(mbpo_lib.theorem_4_2_terms(k_long, g, 1.0, e_pi, e_m).total))
           for g, e_pi, e_m in settings]
assert best_42 == [0] * len(settings)
step = mbpo_lib.relative_gap(1, 0.99, 0.1, 0.0, theorem="4.2")
print(f"Theorem 4.2: best k = 0 in all {len(settings)} settings (γ, ε_π, ε_m on a grid, k up to 2000)")
print(f"even a perfect model (ε_m = 0, ε_π = 0.1, γ = 0.99): one step costs {step:.2f} r_max/(1-γ)")

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - The culprit: the worst-case charge $\varepsilon_m + 2\varepsilon_\pi$ per step
# - How much worse does the model really get as the policy moves? Measure it
# -->
# The culprit is the $2\varepsilon_\pi$ in the model term: Theorem 4.2 charges the model's error on
# the *new* policy's states as if it were the worst case, $\varepsilon_m + 2\varepsilon_\pi$. That
# charge alone outweighs what a step gains. Whether branched rollouts can be justified depends
# on how much worse the model really gets when the policy moves: an empirical question.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Theorem 4.3: the model's error under the new policy
# <!-- slide
# - Measured, to first order: $\varepsilon_{m'} \approx \varepsilon_m + s\,\varepsilon_\pi$
#
# $$
# \eta[\pi] \;\ge\; \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
# \frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2} + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}
# + \frac{k}{1-\gamma}\,\varepsilon_{m'}\Big]
# $$
#
# $$
# k^\star = \max\Big(0, \Big\lceil \frac{\ln(\varepsilon_{m'}/\varepsilon_\pi)}{\ln\gamma} \Big\rceil\Big),
# \qquad k^\star > 0 \iff s < 1 - \frac{\varepsilon_m}{\varepsilon_\pi}
# $$
# -->
#
# Replace the worst case by the model's actual error on the new policy's states,
# $\varepsilon_{m'}$, approximated to first order in the policy shift:
# $\varepsilon_{m'} \approx \varepsilon_m + s\,\varepsilon_\pi$ with the slope
# $s = d\varepsilon_{m'}/d\varepsilon_\pi$ **measured** on data. Then
#
# **Theorem 4.3:**
# $$
# \eta[\pi] \;\ge\; \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
# \frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2} + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}
# + \frac{k}{1-\gamma}\,\varepsilon_{m'}\Big],
# \qquad
# \text{gap}(k+1) - \text{gap}(k) = \frac{2r_{\max}}{1-\gamma}
# \big(\varepsilon_{m'} - \gamma^k\varepsilon_\pi\big).
# $$
#
# The increments rise with $k$ (the gap is convex), so the best integer is the first $k$ where
# the increment stops being negative:
#
# $$
# k^\star = \min\{k \ge 0 : \gamma^k\varepsilon_\pi \le \varepsilon_{m'}\}
# = \max\Big(0, \Big\lceil \frac{\ln(\varepsilon_{m'}/\varepsilon_\pi)}{\ln\gamma} \Big\rceil\Big),
# \qquad k^\star > 0 \iff \varepsilon_{m'} < \varepsilon_\pi
# \iff s < 1 - \frac{\varepsilon_m}{\varepsilon_\pi}.
# $$

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - $k^\star \approx \ln(\varepsilon_\pi/\varepsilon_{m'})/(1-\gamma)$: the horizon times the log
#   of the error ratio
# - A small slope $s$ is what makes $k^\star > 0$
# -->
# $k^\star$ depends only on the ratio $\varepsilon_{m'}/\varepsilon_\pi$ and on $\gamma$; for $\gamma \to 1$,
# $k^\star \approx \ln(\varepsilon_\pi/\varepsilon_{m'})/(1-\gamma)$: the horizon times the *log* of the
# error ratio. A small slope $s$ is what makes $k^\star > 0$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Theorem 4.3 from scratch
# <!-- slide
# - The gap at every $k$ up to 2000, its argmin, and `optimal_k`
# - $\gamma = 0.99$, $\varepsilon_\pi = 0.1$, $\varepsilon_m = 0.04$, $s = 0.5$, $r_{\max} = 1$
# -->
#
# The gap for every $k$ up to a long horizon, its argmin, and the library's `optimal_k`
# (default `k_max` 10,000: it clips $k^\star$ only beyond that, and then returns `k_max`). The
# numbers: $\gamma = 0.99$, $\varepsilon_\pi = 0.1$, $\varepsilon_m = 0.04$, $s = 0.5$, $r_{\max} = 1$.

# %% slideshow={"slide_type": "fragment"}
gamma, r_max, eps_pi, eps_m, slope = 0.99, 1.0, 0.1, 0.04, 0.5
eps_m_new = eps_m + slope * eps_pi                                # ε_m′
k_grid = np.arange(0, 2001)
shift_side = 2 * r_max * (gamma ** (k_grid + 1) * eps_pi / (1 - gamma) ** 2
                          + gamma ** k_grid * eps_pi / (1 - gamma))
model_side = 2 * r_max * k_grid * eps_m_new / (1 - gamma)
gap = shift_side + model_side
k_star = int(np.argmin(gap))
terms = mbpo_lib.branched_bound_terms(k_grid, gamma, r_max, eps_pi, eps_m_new)
np.testing.assert_allclose(terms.total, gap)
assert k_star == mbpo_lib.optimal_k(gamma, eps_pi, eps_m_new)
assert k_star == mbpo_lib.optimal_k_discrete(gamma, eps_pi, eps_m_new)   # the closed form
print(f"ε_m′ = {eps_m_new:.3f}: k* = {k_star}, gap {gap[k_star]:.2f} against {gap[0]:.2f} at k = 0 "
      f"({(gap[0] - gap[k_star]) * (1 - gamma) / r_max:.3f} r_max/(1-γ) lower)")

# %% slideshow={"slide_type": "subslide"}
k_real = mbpo_lib.optimal_k_continuous(gamma, eps_pi, eps_m_new)   # where the derivative is 0
approx = np.log(eps_pi / eps_m_new) / (1 - gamma)
print(f"real-valued k* = {k_real:.2f} (γ → 1 approximation {approx:.2f}); integer k* = {k_star}")
rng = np.random.default_rng(1)
for _ in range(50):                  # 50 random settings: closed form == argmin == optimal_k
    g, e_pi, e_new = rng.uniform(0.9, 0.999), rng.uniform(0.01, 0.5), 10 ** rng.uniform(-4, 0)
    brute = int(np.argmin(mbpo_lib.branched_bound_terms(np.arange(0, 20_001), g, 1.0, e_pi, e_new).total))
    closed_form = mbpo_lib.optimal_k_discrete(g, e_pi, e_new)
    assert brute == mbpo_lib.optimal_k(g, e_pi, e_new, k_max=20_000) == closed_form
print("50 random settings: argmin == optimal_k == the closed form")

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - No return exceeds 100, yet the gap is in the thousands
# - Read the bound for its **direction**: which $k$ it prefers, and what moves it
# -->
# How loose is the bound? With $r_{\max} = 1$ no return exceeds $r_{\max}/(1-\gamma) = 100$, yet
# the from-scratch gap is in the thousands at every $k$: the bound says nothing about *this*
# policy's return. That is why we plot the gap relative to $k = 0$, in units of $r_{\max}/(1-\gamma)$,
# and read the theorem for its **direction**: which $k$ it prefers and what moves that $k$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The empirical step: how fast does the model's error grow as the policy moves?
# <!-- slide
# - The paper's Figure 1: a model of $\pi_D$'s data, tested on policies ever farther away
# - Ours: SAC checkpoints, the policy shift and the model's error on each one's data
# - The slope $s = d\varepsilon_{m'}/d\varepsilon_\pi$
# -->
#
# The paper's Figure 1 trains a model on data of one policy $\pi_D$, evaluates it without
# retraining on data of policies at increasing distance from $\pi_D$, and finds the error rising
# slowly and roughly linearly, more slowly the more data the model was trained on. We repeat
# that measurement with our own models:
#
# 1. train SAC model-free and keep **checkpoints** of its policy along the way;
# 2. collect data with the first checkpoint, $\pi_D$, and fit `DynamicsModel`s on it (two data sizes);
# 3. collect fresh data with every checkpoint $\pi_j$ and measure, on $\pi_j$'s own states,
#    the **policy shift** (mean TV and mean KL between $\pi_D$ and $\pi_j$) and the
#    **model error** on $\pi_j$'s transitions;
# 4. fit the slope $s = d\varepsilon_{m'}/d\varepsilon_\pi$.
#
# Notebook 02's distribution-shift experiment is the far end of this curve: a model of
# uniform-random data asked about a trained policy's transitions (a large shift, a much larger
# error). Here the shift grows step by step and is measured.

# %% slideshow={"slide_type": "subslide"}
def train_sac_with_checkpoints(env_id: str, steps: int, random_steps: int, checkpoints: list[int],
                               config: mbpo_lib.SACConfig, seed: int) -> dict[int, torch.nn.Module]:
    """Model-free SAC (notebook 04's loop, one update per step after `random_steps` uniform
    steps); a frozen copy of the actor at every step count in `checkpoints`."""
    env, spec = mbpo_lib.make_env(env_id, seed=seed), mbpo_lib.SUPPORTED_ENVS[env_id]
    sac = mbpo_lib.SAC(spec.obs_dim, spec.act_dim, config, device=device, seed=seed)
    buffer = mbpo_lib.ReplayBuffer(steps, spec.obs_dim, spec.act_dim, device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    actors = {}
    for t in range(1, steps + 1):
        act = env.action_space.sample() if t <= random_steps else sac.act(obs)
        next_obs, rew, terminated, truncated, _ = env.step(act)
        buffer.add(obs, act, rew, next_obs, terminated)     # terminated, never truncated
        obs = env.reset()[0] if terminated or truncated else next_obs
        if t > random_steps:
            sac.update(buffer.sample(256, generator=g))
        if t in checkpoints:
            actors[t] = copy.deepcopy(sac.actor).requires_grad_(False).cpu()
    env.close()
    return actors

# %% slideshow={"slide_type": "subslide"}
def stochastic_policy(actor: torch.nn.Module, seed: int):
    """The actor's tanh-Gaussian policy, sampled with its own seeded generator."""
    g = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def policy(obs, env):
        mean, log_std = actor(torch.as_tensor(obs, dtype=torch.float32)[None])
        return torch.tanh(mean + log_std.exp() * torch.randn(mean.shape, generator=g))[0].numpy()
    return policy


def random_policy(obs, env):
    return env.action_space.sample()   # uniform in [-1, 1], seeded by make_env

# %% slideshow={"slide_type": "subslide"}
def collect_episodes(env_id: str, policy, seed: int, min_steps: int = 0, min_windows: int = 0,
                     k: int = 1) -> list[tuple[torch.Tensor, ...]]:
    """Whole episodes [(states [T+1, obs], actions [T, act], rewards [T])] until there are
    min_steps transitions and min_windows windows of k steps. An episode ends on terminated or
    truncated; its last state is the true final observation, never a reset one."""
    env = mbpo_lib.make_env(env_id, seed=seed)
    episodes, steps, windows = [], 0, 0
    while steps < min_steps or windows < min_windows:
        obs, _ = env.reset(seed=seed + len(episodes))
        states, actions, rewards, done = [obs], [], [], False
        while not done:
            actions.append(policy(obs, env))
            obs, rew, terminated, truncated, _ = env.step(actions[-1])
            states.append(obs)
            rewards.append(rew)
            done = terminated or truncated
        episodes.append(tuple(torch.as_tensor(np.array(x), dtype=torch.float32)
                              for x in (states, actions, rewards)))
        steps, windows = steps + len(actions), windows + max(0, len(actions) - k + 1)
    env.close()
    return episodes

# %% slideshow={"slide_type": "fragment"}
def transitions(episodes) -> tuple[torch.Tensor, ...]:
    """(obs, act, rew, next_obs) of all episodes, stacked: [N, ...] each."""
    return (torch.cat([s[:-1] for s, _, _ in episodes]), torch.cat([a for _, a, _ in episodes]),
            torch.cat([r for _, _, r in episodes]), torch.cat([s[1:] for s, _, _ in episodes]))

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Eight SAC checkpoints: the first is $\pi_D$, the others ever farther from it
# - Small shifts first: the paper reads its slope near $\varepsilon_\pi = 0$
# -->
# The budgets: **InvertedPendulum-v5** in FAST mode (SAC of 64 units a layer), **Hopper-v5**
# otherwise (the paper's SAC). Eight checkpoints: the first, partway through training, is
# $\pi_D$; the others follow it at growing distances, so that the shifts start small (the paper
# reads its slope near $\varepsilon_\pi = 0$).

# %% slideshow={"slide_type": "fragment"}
ENV_ID = "InvertedPendulum-v5" if FAST else "Hopper-v5"
SAC_RANDOM, PI_D_STEP = (500, 1_000) if FAST else (1_000, 8_000)   # π_D: the policy after PI_D_STEP steps
OFFSETS = (0, 25, 50, 100, 200, 400, 700, 1_000) if FAST else (0, 250, 500, 1_000, 2_000, 3_000, 5_000, 7_000)
CHECKPOINTS = [PI_D_STEP + offset for offset in OFFSETS]
SAC_STEPS = CHECKPOINTS[-1]
sac_config = mbpo_lib.SACConfig(hidden_sizes=(64, 64)) if FAST else mbpo_lib.SACConfig()
N_EVAL = 1_000 if FAST else 2_000          # fresh transitions per checkpoint
N_TRAIN = (500, 2_000) if FAST else (2_500, 10_000)   # the model's training sets from π_D
if device.type == "cpu":
    torch.set_num_threads(1)
start = time.perf_counter()
actors = train_sac_with_checkpoints(ENV_ID, SAC_STEPS, SAC_RANDOM, CHECKPOINTS, sac_config, seed=0)
print(f"{ENV_ID}: SAC for {SAC_STEPS} steps in {time.perf_counter() - start:.0f} s; "
      f"checkpoints at {CHECKPOINTS}")

# %% slideshow={"slide_type": "subslide"}
start = time.perf_counter()
pi_D = CHECKPOINTS[0]
train_D = collect_episodes(ENV_ID, stochastic_policy(actors[pi_D], seed=1), seed=10_000,
                           min_steps=max(N_TRAIN))
evaluation = {c: collect_episodes(ENV_ID, stochastic_policy(actors[c], seed=2 + j), seed=20_000 + 1_000 * j,
                                  min_steps=N_EVAL) for j, c in enumerate(CHECKPOINTS)}
print(f"collected in {time.perf_counter() - start:.0f} s; mean episode length per checkpoint:")
print({c: round(float(np.mean([len(a) for _, a, _ in eps])), 1) for c, eps in evaluation.items()})

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The policy shift, measured
# <!-- slide
# - TV and KL between the Gaussians before the tanh, which changes neither
# - Both policies at the states $\pi_j$ visited; a mean, not the paper's max
# -->
#
# SAC's policy is a tanh-squashed Gaussian. TV and KL are unchanged by the invertible tanh, so we
# compare the two Gaussians before it: KL in closed form, TV by Monte Carlo,
# $D_{TV}(p, q) = \mathbb{E}_{x \sim p}[\max(0, 1 - q(x)/p(x))]$
# (`mbpo_lib.gaussian_policy_divergence`). Both policies are evaluated at the **same states**,
# those that $\pi_j$ visited, and we average over them: the paper's $\varepsilon_\pi$ is a maximum
# over states, which no finite sample estimates well.

# %% slideshow={"slide_type": "fragment"}
tv_rows, kl_rows = {}, {}
with torch.no_grad():
    for c in CHECKPOINTS:
        states = transitions(evaluation[c])[0]
        kl_rows[c], tv_rows[c] = mbpo_lib.gaussian_policy_divergence(
            *actors[pi_D](states), *actors[c](states), samples=256,
            generator=torch.Generator().manual_seed(c))
shift_tv = np.array([tv_rows[c].mean().item() for c in CHECKPOINTS])
shift_kl = np.array([kl_rows[c].mean().item() for c in CHECKPOINTS])
print("mean TV from π_D:", np.round(shift_tv, 3))
print("mean KL from π_D:", np.round(shift_kl, 3))
assert shift_tv[0] < 1e-4 and shift_kl[0] < 1e-6   # π_D against itself: zero up to rounding

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The model's error on each policy's data
# <!-- slide
# - A Gaussian against a deterministic simulator: TV is always 1
# - Instead: the normalised one-step error $\sqrt{\tfrac1d\sum_j \mathrm{MSE}_j/\sigma_j^2}$
# - On $\pi_D$'s data it stands in for $\varepsilon_m$, on $\pi_j$'s for $\varepsilon_{m'}$
# -->
#
# The model's error should be measured on the same footing as the shift, but the TV distance
# between a Gaussian prediction and a deterministic simulator is always 1, so we use what can be
# measured: the one-step **normalised error** of the elite-mean prediction of $s'$,
# $\sqrt{\tfrac1d\sum_j \mathrm{MSE}_j/\sigma_j^2}$, with $\sigma_j$ the spread of $\Delta s_j$ in
# $\pi_D$'s data (0 is perfect, 1 is no better than predicting the average change). Its
# value on fresh data of $\pi_D$ itself stands in for $\varepsilon_m$; on $\pi_j$'s data, for
# $\varepsilon_{m'}$. Both models are allowed the same number of gradient steps (the smaller
# data set gets proportionally more epochs; the early-stopping rule still applies), so that they
# differ in their data, not in their training time.

# %% slideshow={"slide_type": "subslide"}
obs_D, act_D, rew_D, next_D = transitions(train_D)
obs_dim, act_dim = obs_D.shape[1], act_D.shape[1]
model_config = (mbpo_lib.EnsembleConfig(hidden_dim=64, lr=3e-3, max_epochs=40) if FAST
                else mbpo_lib.EnsembleConfig(max_epochs=40))
spread = (next_D - obs_D).std(dim=0)   # one scale for every model: the spread of Δs under π_D


@torch.no_grad()
def squared_errors(model, episodes, spread) -> torch.Tensor:
    """Per transition: the mean over state dimensions of ((ŝ' - s') / spread)², elite means."""
    obs, act, _, next_obs = transitions(episodes)
    predicted, _, _ = model.step(obs.to(device), act.to(device), deterministic=True,
                                 generator=torch.Generator(device=device).manual_seed(7))
    return ((predicted.cpu() - next_obs) / spread).pow(2).mean(dim=1)


sq_rows = {}
for n in N_TRAIN:
    start = time.perf_counter()
    same_steps = dataclasses.replace(model_config, max_epochs=model_config.max_epochs * max(N_TRAIN) // n)
    model = mbpo_lib.DynamicsModel(obs_dim, act_dim, same_steps, device=device, seed=0)
    report = model.fit(obs_D[:n], act_D[:n], rew_D[:n], next_D[:n])
    sq_rows[n] = {c: squared_errors(model, evaluation[c], spread) for c in CHECKPOINTS}
    print(f"model on {n} transitions of π_D: {report.epochs} epochs in {time.perf_counter() - start:.0f} s")

# %% slideshow={"slide_type": "subslide"}
def error_and_slope(rows: dict[int, torch.Tensor], picks: dict[int, torch.Tensor] | None = None):
    """Normalised error per checkpoint and the fitted line against the mean TV shift."""
    picks = picks or {c: torch.arange(len(rows[c])) for c in CHECKPOINTS}
    errors = np.array([rows[c][picks[c]].mean().sqrt().item() for c in CHECKPOINTS])
    shifts = np.array([tv_rows[c][picks[c]].mean().item() for c in CHECKPOINTS])
    return errors, mbpo_lib.fit_slope(shifts, errors)


boot = torch.Generator().manual_seed(3)
eps_measured, fits, intervals = {}, {}, {}
for n in N_TRAIN:
    eps_measured[n], fits[n] = error_and_slope(sq_rows[n])
    resampled = [error_and_slope(sq_rows[n], {c: torch.randint(len(tv_rows[c]), (len(tv_rows[c]),),
                                                               generator=boot) for c in CHECKPOINTS})[1].slope
                 for _ in range(200)]
    intervals[n] = np.percentile(resampled, [2.5, 97.5])
    print(f"{n:6d} transitions: ε_m = {eps_measured[n][0]:.3f}, slope s = {fits[n].slope:.2f} "
          f"(95 % bootstrap over test transitions {intervals[n][0]:.2f} to {intervals[n][1]:.2f}), "
          f"R² = {fits[n].r2:.2f}")

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.0))
for n, color in zip(N_TRAIN, ("#E69F00", "#0072B2"), strict=True):
    left.plot(shift_tv, eps_measured[n], "o", color=color, label=f"{n} transitions")
    x = np.linspace(0, shift_tv.max(), 50)
    left.plot(x, fits[n](x), "-", color=color, alpha=0.7, label=f"slope {fits[n].slope:.2f}")
    right.plot(shift_kl, eps_measured[n], "o-", color=color)
left.set(xlabel=r"mean TV from $\pi_D$ ($\varepsilon_\pi$)", ylabel=r"normalised error ($\varepsilon_{m'}$)",
         title=f"{ENV_ID.removesuffix('-v5')}: error vs shift")
right.set(xlabel=r"mean KL$(\pi_D \,\|\, \pi_j)$", ylabel="normalised error",
          title="The same against KL")
for ax in (left, right):
    ax.set_ylim(0, None)
left.legend()
mbpo_lib.save_figure(fig, "03_model_error_vs_policy_shift")
plt.show()

# %% slideshow={"slide_type": "subslide"}
GAMMA = 0.99
implied = {}
for n in N_TRAIN:
    e_m, s, e_pi = float(eps_measured[n][0]), max(fits[n].slope, 0.0), float(shift_tv[-1])
    implied[n] = (e_m, s, e_pi, mbpo_lib.optimal_k(GAMMA, e_pi, e_m + s * e_pi))
    print(f"{n:6d} transitions: ε_m = {e_m:.3f}, s = {s:.2f}, largest shift ε_π = {e_pi:.3f} -> "
          f"ε_m′/ε_π = {(e_m + s * e_pi) / e_pi:.2f}, k* = {implied[n][3]} at γ = {GAMMA} "
          f"(k* > 0 needs s < {1 - e_m / e_pi:.2f})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### What the slope says
# <!-- slide
# - Hopper: the error rises with the shift at a slope of about 0.4
# - More data lowered the error at zero shift; one run each, so not the slope
# - Read as a TV slope: $k^\star \approx 23$; Theorem 4.2 says 0
# -->
#
# - **Full mode, Hopper-v5** (the committed figure): the error rises with the shift at a slope of
#   about 0.4 for both models (0.43 with 2,500 transitions, 0.40 with 10,000), and more data
#   lowered the error at zero shift (0.44 to 0.37). Hopper's policy moves fast: 250 SAC steps after
#   $\pi_D$ the mean TV is already 0.45, so we see the slope over large shifts, not near zero as
#   the paper reads it, and the points scatter about the line ($R^2 \approx 0.4$).
# - **FAST mode, InvertedPendulum-v5:** shifts up to a mean TV of about 0.3; more data lowered
#   the error at zero shift, but the slope was the smaller one's (0.13 against 0.41).
# - The intervals cover the test transitions only, not the seeds of SAC or of the model (one run
#   of each): our runs illustrate Figure 1's rising error; they do not settle whether more data
#   lowers the slope, as the paper finds.
# - Plugging our numbers into Theorem 4.3 takes one assumption: that our normalised error can
#   stand in for the theorem's TV error (both are 0 for a perfect model and of order 1 for a
#   useless one). With it, the larger Hopper model puts $k^\star$ at 23 (the smaller at 10) at
#   $\gamma = 0.99$. Theorem 4.2, with the same numbers, says 0.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The trade-off, drawn
# <!-- slide
# - Both theorems' gaps against $k$, relative to no rollout, in units of $r_{\max}/(1-\gamma)$
# - Right: $k^\star$ over the error ratio and $\gamma$ (grey: $k^\star = 0$)
# -->
#
# `mbpo_lib.bound_vs_k_figure` draws both theorems' gaps relative to no rollout, in units of the
# largest return $r_{\max}/(1-\gamma)$, against $\log k$ up to 500, with the measured
# $\varepsilon_m$, slope and largest shift of the larger model; the map on the right shows $k^\star$
# over the error ratio and $\gamma$ (grey: $k^\star = 0$). This is the static picture of the
# widget below.

# %% slideshow={"slide_type": "subslide"}
e_m, s, e_pi, _ = implied[N_TRAIN[-1]]
readout = mbpo_lib.bound_vs_k_figure(k=3, eps_m=e_m, slope=s, eps_pi=e_pi, gamma=GAMMA)
mbpo_lib.save_figure(readout.figure, "03_bound_vs_k")
plt.show()
print(readout)

# %% slideshow={"slide_type": "skip"} tags=["widget"]
bound = mbpo_lib.bound_widget(eps_m=round(e_m, 3), slope=round(s, 2), eps_pi=round(e_pi, 3))
bound

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Try it with the widget
# <!-- slide
# - Raise $s$ until $\varepsilon_{m'} \ge \varepsilon_\pi$: $k^\star$ drops to 0
# - Halve $\varepsilon_{m'}$: $k^\star$ grows by $\ln 2/(1-\gamma) \approx 69$
# - Lower $\gamma$ to 0.95: $k^\star$ shrinks with the horizon
# -->
#
# Run the cell above in Jupyter or Colab (the sliders act on release; hover a slider for its
# meaning). It starts at our measured numbers. Things to try, each printed below for the
# default numbers of the from-scratch section:
#
# - **Raise the slope $s$** until $\varepsilon_{m'} \ge \varepsilon_\pi$: $k^\star$ drops to 0 and the
#   setting on the map crosses into the grey.
# - **Halve $\varepsilon_{m'}$**: $k^\star$ grows by about $\ln 2/(1-\gamma)$, 69 steps at
#   $\gamma = 0.99$; the curve's minimum moves right on the log axis.
# - **Lower $\gamma$** to 0.95: the horizon $1/(1-\gamma)$ shrinks five-fold, and $k^\star$ with it.

# %% slideshow={"slide_type": "fragment"}
for label, change in (("defaults", {}), ("slope 0.6 (ε_m′ = ε_π)", {"slope": 0.6}),
                      ("ε_m′ halved", {"eps_m": 0.02, "slope": 0.25}), ("γ = 0.95", {"gamma": 0.95})):
    shown = mbpo_lib.bound_vs_k_figure(**{"k": 3, "eps_m": 0.04, "slope": 0.5, "eps_pi": 0.1, **change})
    plt.close(shown.figure)
    print(f"{label:24s} {shown}")

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes: the bound slide is where people ask "so what is k* for Hopper?". The theorem
# alone cannot say: it needs the slope, which is an empirical property of the model and the task,
# and its ε's are TV distances that we can only stand in for. What it gives is the shape (a
# falling side, a rising side, k* growing with the log of the error ratio) and the condition
# s < 1 − ε_m/ε_π. Show Theorem 4.2's curve first: it never dips below zero.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Measured: how a learned ensemble's k-step error grows
# <!-- slide
# - Euclidean error $e_k = \mathbb{E}\,\|\hat s_k - s_k\|$ of open-loop, sampled rollouts
# - Two models: random data only, and random plus policy data
# - Held-out windows of $K$ steps from the last policy's episodes
# -->
#
# Theorem 4.3 is about TV errors; what we can watch on a rollout is the **Euclidean** error
# $e_k = \mathbb{E}\,\|\hat s_k - s_k\|$ of open-loop rollouts: from a real state, feed the real
# actions and the model's own predictions (`mbpo_lib.multistep_error`). It is the quantity of
# the Lipschitz picture, not the theorem's $\varepsilon_{m'}$.
#
# - **Two models**, same settings: one fitted on uniform-random transitions only (MBPO's
#   warm-up), one on the same random data **plus** the policy data collected above (π_D's and
#   every checkpoint's), as MBPO's model is once the policy runs.
# - **Held-out windows**: fresh episodes of the last checkpoint's policy, cut into every window
#   of $K$ steps that fits inside an episode (`mbpo_lib.trajectory_windows`); episodes shorter
#   than $K$ give none. Rollouts are **sampled**, as MBPO's are.

# %% slideshow={"slide_type": "subslide"}
K = 20 if FAST else 50                    # the longest rollout measured
N_RANDOM = 2_000 if FAST else 10_000      # random-action transitions
N_WINDOWS = 300 if FAST else 1_000        # held-out windows of K steps
start = time.perf_counter()
random_data = transitions(collect_episodes(ENV_ID, random_policy, seed=30_000, min_steps=N_RANDOM))
policy_data = transitions(train_D + [e for c in CHECKPOINTS for e in evaluation[c]])
held_out = collect_episodes(ENV_ID, stochastic_policy(actors[CHECKPOINTS[-1]], seed=5), seed=40_000,
                            min_windows=N_WINDOWS, k=K)
pieces = [mbpo_lib.trajectory_windows(s, a, K) for s, a, _ in held_out if len(a) >= K]
w_obs, w_act = torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces])
print(f"{len(random_data[0])} random and {len(policy_data[0])} policy transitions; {len(w_obs)} held-out "
      f"windows of {K} steps from {len(pieces)} of {len(held_out)} episodes "
      f"({time.perf_counter() - start:.0f} s)")

# %% slideshow={"slide_type": "subslide"}
both = tuple(torch.cat([a, b]) for a, b in zip(random_data, policy_data, strict=True))
training_sets = {"random only": random_data, "random + policy": both}
measured = {}
for name, data in training_sets.items():
    start = time.perf_counter()
    ensemble = mbpo_lib.DynamicsModel(obs_dim, act_dim, model_config, device=device, seed=0)
    report = ensemble.fit(*data)
    measured[name] = mbpo_lib.k_step_rollouts(ensemble, w_obs, w_act, show=0, samples=8, seed=1)
    fit = measured[name].fits
    print(f"{name:16s} {report.n_train + report.n_holdout} rows, {report.epochs} epochs, "
          f"{time.perf_counter() - start:.0f} s | e_1 = {measured[name].errors[0]:.3f}, e_{K} = "
          f"{measured[name].errors[-1]:.3f} | affine misfit {fit.affine_misfit:.0%}, geometric "
          f"{fit.geometric_misfit:.0%} (L = {fit.lipschitz:.2f}): {fit.verdict()}")

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(8.2, 3.5), sharey=True)
ks = np.arange(1, K + 1)
for ax, (name, m) in zip(axes, measured.items(), strict=True):
    ax.plot(ks, m.errors, "o-", ms=3, color="black", label="measured")
    ax.plot(ks, m.fits.affine(ks), "--", label=f"affine, {m.fits.affine_misfit:.0%} off")
    ax.plot(ks, m.fits.geometric(ks), ":", lw=2.5,
            label=f"geometric, {m.fits.geometric_misfit:.0%} off")
    ax.set(xlabel="rollout length k", ylim=(0, None), title=f"model of {name} data")
    ax.legend()
axes[0].set_ylabel(r"mean $\|\hat s_k - s_k\|$")
mbpo_lib.save_figure(fig, "03_measured_error_vs_k")
plt.show()

# %% slideshow={"slide_type": "fragment"}
ratio = measured["random only"].errors / measured["random + policy"].errors
print(f"random-only model's error / random+policy model's: {ratio[0]:.1f} at k = 1, "
      f"{ratio[-1]:.1f} at k = {K}")
for name, m in measured.items():
    local = np.diff(m.errors) / m.errors[:-1]
    print(f"{name:16s} growth per step: {local[0]:.0%} at k = 1, {local[len(local) // 2]:.0%} at "
          f"k = {len(local) // 2 + 1}, {local[-1]:.0%} at k = {K - 1}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### What the measurement says
# <!-- slide
# - Hopper, with policy data: $e_1 \approx 0.45$, about 3.5 at $k = 50$
# - Neither the affine nor the geometric law fits within 10 %
# - Random data only: twice as wrong at $k = 1$, 62 times at $k = 50$
# - Fit, report the misfit, say when neither fits
# -->
#
# - **Full mode, Hopper-v5** (the committed figures): the model that has seen the policy's data
#   starts at $e_1 \approx 0.45$ and reaches about 3.5 after 50 steps, its growth slowing from
#   58 % a step at $k = 1$ to 2 to 3 % beyond $k = 25$. **Neither law fits** within 10 %: the
#   affine fit misses by 14 %, the geometric one by 15 % with $L = 0.90$, and that curve levels
#   off while the measured error keeps rising.
# - The model of random data only, asked about the policy's trajectories, is about twice as
#   wrong at $k = 1$ and 62 times at $k = 50$; its error grows faster than any fitted law.
# - **FAST mode, InvertedPendulum-v5:** both models' errors grow faster than linearly (the
#   geometric law is the better fit, $L$ a little above 1) and neither law fits within 10 %: an
#   unstable system whose growth rate changes along the rollout.
# - So the 5-%-a-step arithmetic is neither a law nor a bound for a real model: fit, report the
#   misfit, and say when neither fits. Caveats: raw observation units (velocities dominate the
#   norm), windows from one policy's held-out episodes at least $K$ steps long, one seed each.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The measured k-vs-error widget
# <!-- slide
# - A held-out real window against 8 sampled model rollouts: same start, same actions
# - Right: the error curve with both fits
# -->
#
# `mbpo_lib.k_vs_error_figure` shows, for one model, a held-out real window against 8 sampled
# rollouts of the model (and the elite-mean rollout) from the same start with the same actions,
# and the error curve with both fits. Everything is computed above, once; a slider move only
# redraws. Below: its static picture for the pole angle or the torso angle, and the redraw time.

# %% slideshow={"slide_type": "subslide"}
NAMES = {"Hopper-v5": ["z", "torso angle", "thigh angle", "leg angle", "foot angle", "x vel", "z vel",
                       "torso ang vel", "thigh ang vel", "leg ang vel", "foot ang vel"],
         "InvertedPendulum-v5": ["cart x", "pole angle", "cart vel", "pole ang vel"]}
shown = mbpo_lib.k_vs_error_figure(measured, k=10, dim=1, data="random + policy", labels=NAMES[ENV_ID])
mbpo_lib.save_figure(shown.figure, "03_k_vs_error")
plt.show()
print(shown)

# %% slideshow={"slide_type": "subslide"}
redraws, cpu = [], []
for k in (5, 15, 20, 1, 10):                      # what one slider move costs: figure + PNG
    start, start_cpu = time.perf_counter(), time.process_time()
    redrawn = mbpo_lib.k_vs_error_figure(measured, k=k, dim=1, labels=NAMES[ENV_ID])
    # the PNG as the inline backend makes it: the figure's dpi, a tight bounding box
    redrawn.figure.savefig(io.BytesIO(), format="png", dpi=redrawn.figure.dpi, bbox_inches="tight")
    plt.close(redrawn.figure)
    redraws.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
print(f"one redraw: median {1000 * np.median(redraws):.0f} ms of wall-clock time, "
      f"{1000 * np.median(cpu):.0f} ms of CPU time (the wall clock of an idle core), over {len(cpu)} moves")

# %% slideshow={"slide_type": "skip"} tags=["widget"]
measured_widget = mbpo_lib.k_vs_error_widget(measured, labels=NAMES[ENV_ID], k=10, dim=1)
measured_widget

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Try the measured widget
# <!-- slide
# - **random only**: rollouts leave the real path within a few steps
# - **k to the end**: where do the samples fan out?
# - **state dim**: positions integrate the velocities
# -->
#
# - **data = random only**: the model has never seen the policy's states; watch its rollouts
#   leave the real trajectory within a few steps, and compare the right panel's scale with the
#   other model's.
# - **k up to the end**: where do the sampled rollouts fan out, and which fit follows the curve?
# - **state dim**: positions (the first coordinates) integrate the velocities; their errors
#   accumulate differently from the velocities' own.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Rollout schedules: $k$ grows with training
# <!-- slide
# $$
# k = \big\lfloor k_0 + p\,(k_1 - k_0) \big\rfloor, \qquad
# p = \min\big(1, \max(0, e - e_0)/(e_1 - e_0)\big)
# $$
#
# - Short rollouts while the model is poor, longer as it improves
# - The method guide ends every ramp at epoch 100
# -->
#
# MBPO does not fix $k$. After each model fit it sets
# $k = \big\lfloor k_0 + p\,(k_1 - k_0) \big\rfloor$ with progress
# $p = \min\big(1, \max(0, e - e_0)/(e_1 - e_0)\big)$ at epoch $e$, for a per-environment
# schedule $[e_0, e_1, k_0, k_1]$: short rollouts while the model is poor, longer ones as it
# improves (the $k^\star$ of Theorem 4.3 grows as the model's error falls). The method guide
# writes the ramp with its end fixed at epoch 100 and caps it in its training loop with
# `min(max_rollout_length, rollout_schedule(epoch))` (its §4.3):

# %% slideshow={"slide_type": "fragment"}
def guide_schedule(epoch: int, min_length: int = 1, max_length: int = 15, start_epoch: int = 20) -> int:
    """The method guide's ramp (end epoch 100), capped as its loop caps it."""
    if epoch < start_epoch:
        return min_length
    ramp = int(min_length + (epoch - start_epoch) / (100 - start_epoch) * (max_length - min_length))
    return min(max_length, ramp)


appendix = mbpo_lib.ROLLOUT_SCHEDULES["Hopper-v5 (paper appendix)"]
assert all(guide_schedule(e) == mbpo_lib.rollout_schedule(e, appendix) for e in range(0, 301))
for e in (60, 100, 125, 150):
    print(f"epoch {e}: guide k = {guide_schedule(e):2d} | paper appendix "
          f"{mbpo_lib.rollout_schedule(e, appendix):2d} | official Hopper file "
          f"{mbpo_lib.rollout_schedule(e, mbpo_lib.ROLLOUT_SCHEDULES['Hopper-v5']):2d}")

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
epochs = np.arange(0, 321)
fig, ax = plt.subplots(figsize=(8.2, 4.6))
constant = [name for name, s in mbpo_lib.ROLLOUT_SCHEDULES.items() if s.min_k == s.max_k]
for name, schedule in mbpo_lib.ROLLOUT_SCHEDULES.items():
    if name not in constant:   # Hopper's official line drawn on top of the appendix one
        ks_e = [mbpo_lib.rollout_schedule(int(e), schedule) for e in epochs]
        ax.plot(epochs, ks_e, drawstyle="steps-post", lw=2, label=name.replace("-v5", ""),
                zorder=3 if name == "Hopper-v5" else 2)
ax.plot(epochs, [1] * len(epochs), color="0.3", lw=2, label=f"the other {len(constant)}: k = 1")
ax.plot(epochs, [guide_schedule(int(e)) for e in epochs], "k--", lw=1,
        label="the guide's version")
ax.axvline(125, color="0.5", ls=":", label="Hopper's budget ends")
ax.set(xlabel="epoch", ylabel="rollout length $k$", ylim=(0, 41), title="Official rollout schedules")
ax.legend(loc="upper left", ncol=2)
mbpo_lib.save_figure(fig, "03_rollout_schedules")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Hopper: $k = 15$ at epoch 150 (official) or 100 (appendix)
# - Walker2d, HalfCheetah, the pendulums: $k = 1$ always; Ant, Humanoid: up to 25
# -->
# - **Hopper:** the official configuration reaches $k = 15$ at epoch 150, the paper's appendix
#   at epoch 100. With Hopper's 125k-step budget the official run ends at $k = 12$; the
#   appendix schedule spends its last 25 epochs at 15.
# - **Walker2d, HalfCheetah and the pendulums** keep $k = 1$ throughout: Dyna-like single model
#   steps from real states. **Ant and Humanoid** grow to 25, Humanoid over 300 epochs.
# - **The guide's version** is the appendix schedule exactly, cap included; what differs from the
#   official files is where the ramp ends (epoch 100 against Hopper's 150, Humanoid's 300).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What this means for choosing $k$
# <!-- slide
# - **Start at 1**: four of seven official configurations never leave it
# - **Let $k$ grow** as the model improves
# - **Measure the error on the policy's states**; shorten $k$ where it runs away
# - **Read the bound for direction**: $s < 1 - \varepsilon_m/\varepsilon_\pi$
# -->
#
# - **Start at 1.** Every official configuration does, and four of the seven never leave it.
# - **Let $k$ grow as the model improves.** Theorem 4.3's $k^\star$ grows with
#   $\ln(\varepsilon_\pi/\varepsilon_{m'})$, and more data lowered our models' error in both our
#   runs. The schedules are that idea with a linear ramp; how far to ramp is found by experiment
#   per task.
# - **Measure the error on the policy's states.** On Hopper the model of random data alone was
#   far worse on the policy's trajectories than the one that had seen policy data; monitor the
#   k-step error on fresh real data as training goes (notebook 06) and shorten $k$ where it runs
#   away.
# - **Read the bound for direction.** Its numbers are vacuous and its $\varepsilon$'s are TV
#   distances we can only stand in for; its condition $s < 1 - \varepsilon_m/\varepsilon_\pi$ is the
#   part to keep.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
# <!-- slide
# - TV errors add up: $D_{TV}(d_t, \hat d_t) \le t\varepsilon$, Theorem 4.1's $(1-\gamma)^{-2}$
# - Theorem 4.2's worst-case charge: $k^\star = 0$
# - Theorem 4.3: $k^\star > 0 \iff s < 1 - \varepsilon_m/\varepsilon_\pi$
# - Measured on Hopper: $s \approx 0.4$, one run
# - Real k-step errors: fit, report the misfit
# - Schedules start at $k = 1$ and ramp
# -->
#
# - Measured in TV, a model's per-step errors add up: $D_{TV}(d_t, \hat d_t) \le t\varepsilon$, whatever
#   the dynamics, and their discounted sum $\gamma\varepsilon/(1-\gamma)^2$ is Theorem 4.1's model term.
#   Measured in Euclidean distance, errors can grow geometrically with the model's Lipschitz constant.
# - Theorem 4.2 charges the model $\varepsilon_m + 2\varepsilon_\pi$ per step: every step costs more
#   than it gains, $k^\star = 0$ for every setting.
# - Theorem 4.3 uses $\varepsilon_{m'} = \varepsilon_m + s\,\varepsilon_\pi$:
#   $k^\star = \max(0, \lceil \ln(\varepsilon_{m'}/\varepsilon_\pi)/\ln\gamma \rceil)$, positive exactly when
#   $s < 1 - \varepsilon_m/\varepsilon_\pi$.
# - We measured the slope with SAC checkpoints: on Hopper the model's error grows with the policy
#   shift at about 0.4 in our units, which (read as a TV slope) puts $k^\star$ above 0; whether
#   more data lowers the slope, as the paper finds, our single runs do not settle.
# - A learned ensemble's Euclidean k-step error is its own curve: fit the laws, report the misfit,
#   and say when neither fits.
# - Official schedules start at $k = 1$ and ramp per environment.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Exercises
# <!-- slide
# 1. $\gamma = 0.99$, $\varepsilon_\pi = 0.1$: from which $\varepsilon_{m'}$ does `optimal_k` return 0?
# -->
#
# 1. **When does Theorem 4.3 say "no rollout"?** For $\gamma = 0.99$ and $\varepsilon_\pi = 0.1$,
#    find the $\varepsilon_{m'}$ from which `mbpo_lib.optimal_k` returns 0. *Give the value, what
#    `optimal_k` returns exactly there, and why.*
#
# <details><summary>Solution</summary>
#
# From $\varepsilon_{m'} = \varepsilon_\pi = 0.1$ on. Exactly at 0.1 the gaps at $k = 0$ and
# $k = 1$ tie (the increment $\varepsilon_{m'} - \gamma^0\varepsilon_\pi$ is 0), and `optimal_k`
# gives a tie to the shorter rollout: it returns 0. Just below, at 0.0999, it returns 1. The
# real-valued stationary point `optimal_k_continuous` reaches 0 a little later, at
# $\varepsilon_\pi\ln(1/\gamma)/(1-\gamma) \approx 0.1005$.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 2. Halve the model error: `optimal_k(0.99, 0.1, 0.045)` against `(0.99, 0.1, 0.09)`
# 3. From which slope $s$ is $k^\star = 0$?
# -->
# 2. **Halve the model error.** Compute `mbpo_lib.optimal_k(0.99, 0.1, 0.045)` and compare it
#    with `optimal_k(0.99, 0.1, 0.09)`. *Give both and explain the difference with the closed
#    form.*
#
# <details><summary>Solution</summary>
#
# 80 and 11: halving $\varepsilon_{m'}$ adds $\ln 2/\ln(1/\gamma) \approx 69$ steps, the closed
# form's $\ln(\varepsilon_\pi/\varepsilon_{m'})/\ln(1/\gamma)$ rounded up.
#
# </details>
#
# 3. **The slope that kills the rollout.** With the $\varepsilon_m$ and largest
#    $\varepsilon_\pi$ printed for the larger model, from which slope $s$ is $k^\star = 0$?
#    Check with `optimal_k`.
#
# <details><summary>Solution</summary>
#
# From $s = 1 - \varepsilon_m/\varepsilon_\pi$ on (then $\varepsilon_{m'} \ge \varepsilon_\pi$);
# `optimal_k` returns 0 there and a positive $k$ just below it.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 4. Theorem 4.2 with a perfect model: what does one step add to the gap?
# 5. Which $L$ gives $e_{15} = 1.5$ at $\varepsilon = 0.05$?
# -->
# 4. **Theorem 4.2 at its best.** With a perfect model ($\varepsilon_m = 0$), how much does one
#    step add to the gap, in units of $r_{\max}/(1-\gamma)$? Check with `mbpo_lib.relative_gap`.
#
# <details><summary>Solution</summary>
#
# $2(\varepsilon_m + 2\varepsilon_\pi - \varepsilon_\pi) = 2\varepsilon_\pi$, i.e. 0.2 at
# $\varepsilon_\pi = 0.1$: positive even for a perfect model.
#
# </details>
#
# 5. **Twice the guide's error.** For a Euclidean one-step error $\varepsilon = 0.05$, which $L$
#    gives $e_{15} = 1.5$? Use `geometric_compounding_error` on a grid.
#
# <details><summary>Solution</summary>
#
# $L \approx 1.093$ (solve $(L^{15} - 1)/(L - 1) = 30$).
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# 6. **The guide's schedule at Hopper's last epoch.** What does `guide_schedule(125)` give, and
#    the two library schedules?
#
# <details><summary>Solution</summary>
#
# 15 (the cap), 15 (appendix) and 12 (official file).
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Code exercises, checked
# <!-- slide
# - Fill in each cell marked ✏️, run it, then its check cell
# - **A.** `my_optimal_k`: the first $k$ with $\gamma^k\varepsilon_\pi \le \varepsilon_{m'}$
# -->
#
# Fill in each cell marked **✏️ YOUR ANSWER**, run it, then run the check cell below it. The
# checker says what is right or wrong (values against `mbpo_lib`, a hint); it never prints the
# answer. Reference solutions close the notebook.
#
# **A. Theorem 4.3's $k^\star$.** Write `my_optimal_k(gamma, eps_pi, eps_m_new)`: the first
# $k \ge 0$ with $\gamma^k\varepsilon_\pi \le \varepsilon_{m'}$, a whole number (0 when
# $\varepsilon_{m'} \ge \varepsilon_\pi$). The checker compares it with
# `mbpo_lib.optimal_k_discrete` on many settings.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise A): replace `raise NotImplementedError` with your code.
def my_optimal_k(gamma: float, eps_pi: float, eps_m_new: float) -> int:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_optimal_k(my_optimal_k)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **B. The rollout schedule.** Write `my_rollout_schedule(epoch, schedule)` for
# `schedule = (e0, e1, k0, k1)`: the $k$ of the ramp above,
# $\lfloor k_0 + p\,(k_1 - k_0)\rfloor$, for any schedule (not only the guide's). The checker
# tries every official schedule over 400 epochs.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise B): replace `raise NotImplementedError` with your code.
def my_rollout_schedule(epoch: int, schedule: tuple[int, int, int, int]) -> int:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_rollout_schedule(my_rollout_schedule)

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes: close on the chain. TV makes the model's error add up (4.1); charging the
# worst case for the new policy's states kills every rollout (4.2); measuring how the model's
# error really grows with the policy shift brings k* back (4.3), and that measurement is the one
# practitioners can repeat. Exercise 1 is worth doing live: the tie at ε_m′ = ε_π shows that k*
# is the first k whose increment is not negative.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Solutions
# <!-- slide
# - Try the exercises first
# - The reference solutions run through the same checkers
# -->
#
# Try the exercises first. The code cells below are collapsed in JupyterLab: they hold the
# reference solutions and run them through the same checkers (this is how CI tests them), then
# check the answers to exercises 1 to 6 against the library.

# %% slideshow={"slide_type": "subslide"} tags=["solution"] jupyter={"source_hidden": true}
def reference_optimal_k(gamma, eps_pi, eps_m_new):
    if eps_m_new >= eps_pi:                 # even the first step costs more than it gains
        return 0
    return int(np.ceil(np.log(eps_m_new / eps_pi) / np.log(gamma)))   # first k: γ^k ε_π ≤ ε_m′


feedback = mbpo_lib.exercises.check_optimal_k(reference_optimal_k)
assert feedback.ok, feedback
feedback

# %% slideshow={"slide_type": "fragment"} tags=["solution"] jupyter={"source_hidden": true}
def reference_rollout_schedule(epoch, schedule):
    e0, e1, k0, k1 = schedule
    progress = min(1.0, max(0.0, (epoch - e0) / (e1 - e0)))
    return int(k0 + progress * (k1 - k0))   # int() truncates, as the official code


feedback = mbpo_lib.exercises.check_rollout_schedule(reference_rollout_schedule)
assert feedback.ok, feedback
feedback

# %% slideshow={"slide_type": "subslide"} tags=["solution"] jupyter={"source_hidden": true}
# Exercises 1 to 6: the answers above, checked against the library.
assert mbpo_lib.optimal_k(0.99, 0.1, 0.1) == 0 and mbpo_lib.optimal_k(0.99, 0.1, 0.0999) == 1
assert abs(0.1 * np.log(1 / 0.99) / 0.01 - 0.1005) < 5e-5
assert mbpo_lib.optimal_k_continuous(0.99, 0.1, 0.1005) < 0.01 < mbpo_lib.optimal_k_continuous(0.99, 0.1, 0.1)
assert (mbpo_lib.optimal_k(0.99, 0.1, 0.045), mbpo_lib.optimal_k(0.99, 0.1, 0.09)) == (80, 11)
assert round(np.log(2) / np.log(1 / 0.99)) == 69
s_zero = 1 - e_m / e_pi
assert mbpo_lib.optimal_k(GAMMA, e_pi, e_m + (s_zero + 1e-6) * e_pi) == 0
assert s_zero <= 0 or mbpo_lib.optimal_k(GAMMA, e_pi, e_m + (s_zero - 1e-3) * e_pi) > 0
assert np.isclose(mbpo_lib.relative_gap(1, 0.99, 0.1, 0.0, theorem="4.2"), 0.2)
L_grid = np.linspace(1.0, 1.2, 2_001)
L_answer = L_grid[np.argmin([abs(mbpo_lib.geometric_compounding_error(0.05, L, 15) - 1.5) for L in L_grid])]
assert abs(L_answer - 1.093) < 5e-4, L_answer
assert (guide_schedule(125), mbpo_lib.rollout_schedule(125, appendix),
        mbpo_lib.rollout_schedule(125, mbpo_lib.ROLLOUT_SCHEDULES["Hopper-v5"])) == (15, 15, 12)
print("the answers to exercises 1 to 6 agree with the library")
