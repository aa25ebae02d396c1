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
# # 02 · The bootstrap ensemble and its elites
# <!-- slide
# - Aleatoric and epistemic uncertainty, and how an ensemble separates them
# - A bootstrap ensemble from scratch, then one batched network
# - The paper's fitting rules: holdout, early stopping, elites
# - A real MuJoCo model, per dimension; calibration
# -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mbpo-series/mbpo-notebooks/blob/main/notebooks/02_ensemble_and_elites.ipynb)
#
# **What you will learn**
#
# - the two kinds of uncertainty a dynamics model has, *aleatoric* (noise in the system) and
#   *epistemic* (what the model does not know), and how an ensemble separates them;
# - how a bootstrap ensemble is built, from scratch, and why MBPO runs all members as one
#   batched network;
# - the fitting rules of the paper's code: a holdout set, early stopping per member, each
#   member's own best weights, and the 5 elites;
# - how good such a model is on real MuJoCo transitions, dimension by dimension, and what
#   happens when the data-collecting behaviour changes;
# - why MBPO draws one random elite for every prediction, at every step of a rollout;
# - whether the predicted $\sigma$ has the right size: a direct calibration check.

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
import math
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import mbpo_lib

torch.set_num_threads(1)  # the networks here are small: per-operation overhead dominates
FAST = mbpo_lib.fast_mode()
generator = mbpo_lib.seed_everything(0)
device = mbpo_lib.default_device()
mbpo_lib.apply_style()
print(f"mbpo_lib {mbpo_lib.__version__} | device: {device} | FAST mode: {FAST}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Why one model is not enough
# <!-- slide
# - **Aleatoric**: noise more data does not remove; the variance head learns it
# - **Epistemic**: missing data; one network cannot express it
# -->
#
# Notebook 01 fitted a single probabilistic MLP, $p_\theta(y \mid x) = \mathcal N(\mu_\theta(x),
# \sigma^2_\theta(x))$. Inside its data the predicted $\sigma_\theta$ follows the noise well; away
# from the data it is still a confident-looking number, with nothing behind it. A model-based
# agent that trusts it there will happily exploit the model's mistakes.
#
# Two different things make a prediction uncertain:
#
# - **aleatoric** uncertainty: noise in the targets that more data of the same kind does not
#   remove. The variance head $\sigma^2_\theta(x)$ learns it. On the deterministic MuJoCo tasks
#   it stands for the error the model cannot resolve (notebook 01).
# - **epistemic** uncertainty: the model has not seen enough data *here*. It shrinks with data
#   and should be large in gaps and outside the data. One network has no way to express it.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### An ensemble measures both
# <!-- slide
# $$
# \operatorname{Var}[y \mid x]
# = \underbrace{\frac{1}{E} \sum_{i} \sigma_i^2(x)}_{\text{aleatoric}}
# + \underbrace{\frac{1}{E} \sum_{i} \big(\mu_i(x) - \bar\mu(x)\big)^2}_{\text{epistemic}}
# $$
#
# - Members agree where data pin the function down, and fan out elsewhere
# -->
#
# Train $E$ probabilistic networks $\{\mu_i, \sigma^2_i\}_{i=1}^{E}$ that differ only in their
# random start and in their data. Read the ensemble as a uniform mixture
# $\frac{1}{E} \sum_i \mathcal N(\mu_i(x), \sigma_i^2(x))$. With $\bar\mu = \frac{1}{E}\sum_i \mu_i$,
# the law of total variance (over the member index $i$) splits its variance in two:
#
# $$
# \operatorname{Var}[y \mid x]
# = \underbrace{\frac{1}{E} \sum_{i=1}^{E} \sigma_i^2(x)}_{\text{aleatoric: mean variance}}
# + \underbrace{\frac{1}{E} \sum_{i=1}^{E} \big(\mu_i(x) - \bar\mu(x)\big)^2}_{\text{epistemic: disagreement}}
# $$
#
# Where the data pin the function down, all members agree and only the first term is left;
# where they do not, each member extrapolates in its own way and the second term grows.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Bootstrap, elites, and one random elite per prediction
# <!-- slide
# - **Bootstrap**: a resample per member
# - **Elites**: the 5 best of 7
# - **One random elite per row and step**
# -->
#
# - **Bootstrap.** Member $i$ trains on its own resample $\mathcal D_i$: $N$ row indices drawn
#   *with replacement* from the $N$ rows of $\mathcal D$. Each resample holds about
#   $1 - (1 - \tfrac1N)^N \approx 1 - e^{-1} \approx 63\,\%$ of the distinct rows, some of them
#   several times, so members see different data and disagree where the data are thin.
# - **Elites.** MBPO trains $E = 7$ members and predicts with the $5$ that do best on a
#   held-out set (section "Holdout, early stopping and elites" below).
# - **One random elite per prediction.** For every row of a model rollout, and again at every
#   step of it, MBPO draws $i \sim \mathrm{Uniform}(\text{elites})$, then
#   $\hat y \sim \mathcal N(\mu_i, \sigma_i^2)$. One imagined trajectory can switch members
#   from step to step (PETS calls this "TS1"; one member per whole trajectory is "TS∞").

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Each draw holds both terms; a mean would drop one
# -->
# Each draw comes from the mixture above, so its spread holds *both* terms: where the members
# disagree, the imagined next states spread out instead of following one member's confident
# guess. Averaging the members would drop the epistemic term; always using the same member
# would drop it too.
#
# The method guide's sketch trains the members one after the other and predicts $s'$ directly;
# the paper's code (and `mbpo_lib`) trains all members at once and predicts $(r, \Delta s)$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## From scratch: a bootstrap ensemble on a 1-D toy problem
# <!-- slide
# - $f(x) = \sin 3x$, noise growing from 0.03 to 0.13
# - 300 points on $[-1, 1]$ with a **gap**; asked on $[-1.6, 1.6]$
# -->
#
# A toy in the spirit of notebook 01's, on a scale that needs no input normalisation: true
# function $f(x) = \sin 3x$ with noise whose standard deviation grows from 0.03 at $x = -1$ to
# 0.13 at $x = 1$ (heteroscedastic, so the aleatoric part has a shape to learn). We observe 300
# points on $[-1, 1]$ **with a gap** on $(-0.3, 0.5)$, then ask the ensemble about all of
# $[-1.6, 1.6]$.

# %% slideshow={"slide_type": "subslide"}
def true_mean(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(3 * x)


def true_std(x: torch.Tensor) -> torch.Tensor:
    return 0.03 + 0.05 * (x + 1)  # the noise grows from left to right


toy_generator = torch.Generator().manual_seed(0)  # the toy's own seed: same numbers every run
N_TOY, GAP = 300, (-0.3, 0.5)
gap_width = GAP[1] - GAP[0]
u = torch.rand(N_TOY, 1, generator=toy_generator) * (2 - gap_width) - 1
x_toy = torch.where(u < GAP[0], u, u + gap_width)  # uniform on [-1, 1] with the gap cut out
y_toy = true_mean(x_toy) + true_std(x_toy) * torch.randn(N_TOY, 1, generator=toy_generator)
print(f"{N_TOY} points; inside the gap {GAP}: {int(((x_toy > GAP[0]) & (x_toy < GAP[1])).sum())}")


# %% [markdown] slideshow={"slide_type": "subslide"}
# One member is notebook 01's probabilistic MLP, here with two hidden layers of 64 SiLU units,
# the paper's initialisation, and the soft log-variance bounds (kept fixed here for brevity;
# the library trains them).

# %% slideshow={"slide_type": "fragment"}
E, HIDDEN = 7, 64
MAX_LOGVAR, MIN_LOGVAR = 0.5, -10.0


def soft_bound(raw: torch.Tensor) -> torch.Tensor:
    logvar = MAX_LOGVAR - F.softplus(MAX_LOGVAR - raw)
    return MIN_LOGVAR + F.softplus(logvar - MIN_LOGVAR)


def new_member(gen: torch.Generator) -> nn.ModuleList:
    layers = nn.ModuleList([nn.Linear(1, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 2)])
    for layer in layers:  # truncated normal, std 1 / (2 sqrt(fan_in)); biases 0
        std = 1 / (2 * math.sqrt(layer.in_features))
        nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std, generator=gen)
        nn.init.zeros_(layer.bias)
    return layers


# %% slideshow={"slide_type": "subslide"}
def member_forward(layers: nn.ModuleList, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and bounded log-variance of one member, each [B, 1]."""
    h = x
    for layer in layers[:-1]:
        h = F.silu(layer(h))
    mean, raw_logvar = layers[-1](h).chunk(2, dim=-1)
    return mean, soft_bound(raw_logvar)


members = [new_member(toy_generator) for _ in range(E)]
bootstrap = torch.randint(N_TOY, (E, N_TOY), generator=toy_generator)  # member i trains on rows bootstrap[i]
distinct = [row.unique().numel() / N_TOY for row in bootstrap]
print(f"distinct rows per resample: {min(distinct):.2f} to {max(distinct):.2f} "
      f"(expected 1 - 1/e = {1 - math.exp(-1):.2f})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - The members' losses summed, one Adam step: as seven separate optimisers
# -->
# Training: each member minimises notebook 01's loss $\overline{(\mu - y)^2 e^{-\log\sigma^2} +
# \log\sigma^2}$ on its own resample. We add the members' losses and take one Adam step: the
# gradient of the sum with respect to member $i$'s weights is the gradient of member $i$'s own
# loss, and Adam works weight by weight, so this is the same as seven separate optimisers.

# %% slideshow={"slide_type": "fragment"}
TOY_STEPS = 500 if FAST else 2000
optimizer = torch.optim.Adam([p for layers in members for p in layers.parameters()], lr=3e-3)
start = time.perf_counter()
for _ in range(TOY_STEPS):
    loss = torch.zeros(())
    for layers, rows in zip(members, bootstrap, strict=True):  # a Python loop over members
        mean, logvar = member_forward(layers, x_toy[rows])
        loss = loss + ((mean - y_toy[rows]) ** 2 * torch.exp(-logvar) + logvar).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"{TOY_STEPS} full-batch steps for {E} members in {time.perf_counter() - start:.1f} s, "
      f"final summed loss {loss.item():.2f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The ensemble's prediction on a grid, still with a loop over members, and the two terms of
# the variance decomposition:

# %% slideshow={"slide_type": "fragment"}
x_grid = torch.linspace(-1.6, 1.6, 321).unsqueeze(1)
with torch.no_grad():
    outputs = [member_forward(layers, x_grid) for layers in members]
means = torch.stack([mean for mean, _ in outputs]).squeeze(-1)              # [E, G]
variances = torch.stack([logvar.exp() for _, logvar in outputs]).squeeze(-1)  # [E, G]
aleatoric = variances.mean(dim=0)                # mean of sigma_i^2
epistemic = means.var(dim=0, unbiased=False)     # variance of mu_i over members
ensemble_mean = means.mean(dim=0)
x_line = x_grid.squeeze(1)
print(f"grid of {x_grid.shape[0]} points: means {list(means.shape)}, variances {list(variances.shape)}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - A random member per sample, then a Gaussian draw: variance = aleatoric + epistemic
# -->
# **Check the decomposition by sampling, the way MBPO predicts:** at a few inputs, draw a random
# member for every sample, then a Gaussian sample from it. The variance of those draws must be
# aleatoric + epistemic.

# %% slideshow={"slide_type": "fragment"}
probe = torch.tensor([120, 160, 300])  # grid indices: in the data, in the gap, right of the data
n_draws = 200_000
member = torch.randint(E, (n_draws,), generator=toy_generator)
noise = torch.randn(n_draws, probe.numel(), generator=toy_generator)
draws = means[member][:, probe] + variances[member][:, probe].sqrt() * noise  # [n_draws, 3]
total = aleatoric[probe] + epistemic[probe]
assert_close(draws.var(dim=0), total, rtol=0.02, atol=0.0)
for i, j in enumerate(probe.tolist()):
    print(f"x = {x_grid[j, 0]:5.2f}: sampled variance {draws[:, i].var():.5f}, "
          f"aleatoric + epistemic {total[i]:.5f}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The hardened version: `mbpo_lib.GaussianEnsemble`
# <!-- slide
# - All members in one network: weights `[E, in, out]`, one `baddbmm` per layer
# - Checked in float64: batched forward = loop over members
# -->
#
# The library keeps all $E$ members in one network: every layer holds weights
# `[E, in, out]` and applies them with one batched matrix multiply (`torch.baddbmm`), so the
# forward pass has no Python loop over members. We copy the scratch members' weights into it
# and check, in float64, that **the batched forward equals the loop over members**.

# %% slideshow={"slide_type": "subslide"}
library_net = mbpo_lib.GaussianEnsemble(
    1, 1, ensemble_size=E, hidden_dim=HIDDEN, num_layers=2, weight_decays=(0.0, 0.0, 0.0),
    init_max_logvar=MAX_LOGVAR, init_min_logvar=MIN_LOGVAR,
).double()
members64 = [copy.deepcopy(layers).double() for layers in members]
with torch.no_grad():
    for k, ensemble_layer in enumerate(library_net.layers):
        ensemble_layer.weight.copy_(torch.stack([layers[k].weight.T for layers in members64]))
        ensemble_layer.bias.copy_(torch.stack([layers[k].bias for layers in members64]).unsqueeze(1))
    x64 = x_grid.double()
    batched_mean, batched_logvar = library_net(x64)  # [E, G, 1], all members at once
    looped = [member_forward(layers, x64) for layers in members64]
assert_close(batched_mean, torch.stack([mean for mean, _ in looped]))
assert_close(batched_logvar, torch.stack([logvar for _, logvar in looped]))
print("batched forward == loop over members (float64):", tuple(batched_mean.shape))

# %% [markdown] slideshow={"slide_type": "fragment"}
# `forward(x, members)` runs only the members listed, still in one batched call; MBPO uses it to
# run the elites alone.

# %% slideshow={"slide_type": "fragment"}
some = torch.tensor([5, 2])
with torch.no_grad():
    subset_mean, _ = library_net(x64, some)
assert_close(subset_mean, batched_mean[some])
print(f"members {some.tolist()} alone: {tuple(subset_mean.shape)}, equal to their slices")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Aleatoric and epistemic, side by side
# <!-- slide
# - Left: members' means, $\pm 2$ std bands, aleatoric alone and both
# - Right: the two standard deviations along $x$
# -->
#
# Left: the data, the seven members' means, and two bands of $\pm 2$ standard deviations around
# the ensemble mean, one with the aleatoric part alone and one with both parts. Right: the two
# standard deviations along $x$, on a log scale.

# %% slideshow={"slide_type": "subslide"}
def plot_toy_fit(ax):
    """The data, the members' means, and two bands around the ensemble mean."""
    total_std, aleatoric_std = (aleatoric + epistemic).sqrt(), aleatoric.sqrt()
    ax.fill_between(x_line, ensemble_mean - 2 * total_std, ensemble_mean + 2 * total_std,
                    color="#f4b183", label=r"$\pm 2$ total std")
    ax.fill_between(x_line, ensemble_mean - 2 * aleatoric_std, ensemble_mean + 2 * aleatoric_std,
                    color="#9ecae1", label=r"$\pm 2$ aleatoric std")
    ax.plot(x_line, means.T, color="0.35", lw=0.8)
    ax.plot([], [], color="0.35", lw=0.8, label=r"members' $\mu_i$")
    ax.plot(x_line, true_mean(x_line), "k--", lw=1.2, label=r"true $\sin 3x$")
    ax.scatter(x_toy, y_toy, s=6, color="k", alpha=0.5, label="data")
    ax.set(xlabel="$x$", ylabel="$y$", ylim=(-2.6, 2.2), title="7 members")


# %% slideshow={"slide_type": "subslide"}
def plot_uncertainty(ax):
    """Aleatoric and epistemic standard deviation along x; grey where there are no data."""
    ax.plot(x_line, aleatoric.sqrt(), color="C0", lw=2, label="aleatoric")
    ax.plot(x_line, epistemic.sqrt(), color="C1", lw=2, label="epistemic")
    seen = x_line.abs() <= 1
    ax.plot(x_line[seen], true_std(x_line[seen]), "k--", lw=1.2, label="true noise")
    for lo, hi in (GAP, (-1.6, -1.0), (1.0, 1.6)):
        ax.axvspan(lo, hi, color="0.85", zorder=0)
    ax.set(xlabel="$x$", ylabel="std", yscale="log", title="Grey: no data")
    ax.legend(loc="upper center")


# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.9))
plot_toy_fit(left)
plot_uncertainty(right)
fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3)
fig.subplots_adjust(bottom=0.3, wspace=0.3)
mbpo_lib.save_figure(fig, "02_aleatoric_vs_epistemic")
plt.show()

# %% slideshow={"slide_type": "subslide"}
gap_mask = (x_line > GAP[0]) & (x_line < GAP[1])
data_mask = (x_line.abs() <= 1) & ~gap_mask
regions = {"in the data": data_mask, "in the gap": gap_mask, "outside": x_line.abs() > 1.2}
summary = {name: epistemic[mask].sqrt().mean().item() for name, mask in regions.items()}
for name, value in summary.items():
    print(f"mean epistemic std {name:12s} {value:.3f}")
assert summary["in the gap"] > 2 * summary["in the data"] and summary["outside"] > 2 * summary["in the gap"]
left_side, right_side = data_mask & (x_line < 0), data_mask & (x_line > 0)
print(f"aleatoric std, left data {aleatoric[left_side].sqrt().mean():.3f}, "
      f"right data {aleatoric[right_side].sqrt().mean():.3f} (true: rising from 0.03 to 0.13)")
assert aleatoric[right_side].mean() > aleatoric[left_side].mean()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Inside the data: aleatoric dominates, follows the noise
# - In the gap and outside: the members fan out
# - Spread is a warning sign, not a guarantee
# -->
# - Inside the data the members agree: the aleatoric term dominates and follows the true noise,
#   small on the left, large on the right.
# - In the gap and outside $[-1, 1]$ the members' means fan out: the epistemic term rises, most
#   of all outside, where no data hold the function from the far side. The predicted
#   $\sigma_i$ (blue) knows nothing of the missing data: outside it stays small on the calm
#   left and near the noisiest level on the right, notebook 01's overconfidence.
# - Seven members are a small sample of "plausible functions": in the gap they can all agree
#   and all be wrong. Epistemic spread is a warning sign, not a guarantee.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Holdout, early stopping and elites
# <!-- slide
# 1. A holdout of $\min(0.2\,N, 5000)$ rows, redrawn each fit
# 2. Holdout MSE per member, every epoch
# 3. An improvement: more than 1 %
# 4. Stop after more than 5 epochs without one
# 5. Each member back to its **own** best weights
# 6. Elites: the 5 lowest
# -->
#
# How does the paper's code decide how long to train, and which members to trust? At every
# fit of the model (every 250 environment steps in MBPO):
#
# 1. **Holdout.** $|\mathcal H| = \min(0.2\,N, 5000)$ random rows are set aside (redrawn at
#    every fit); the members train on bootstraps of the rest.
# 2. **Holdout error per member** after every epoch $t$, on the targets $y = (r, \Delta s)$ of
#    dimension $d$:
#    $\ \mathrm{MSE}_i(t) = \frac{1}{|\mathcal H|\, d} \sum_{(x, y) \in \mathcal H}
#    \|\mu_i^{(t)}(x) - y\|^2$.
# 3. **Improvement, per member.** With $b_i$ its best holdout error so far, member $i$ improves
#    at epoch $t$ when $\dfrac{b_i - \mathrm{MSE}_i(t)}{b_i} > 1\,\%$; then $b_i \leftarrow
#    \mathrm{MSE}_i(t)$ and its weights $\theta_i^{(t)}$ are saved as $\theta_i^\star$.
# 4. **Early stopping.** Training stops once *no* member has improved for more than 5 epochs
#    (6 epochs in a row without any improvement).
# 5. **Own best weights.** Every member gets back its own $\theta_i^\star$, from its own best
#    epoch (not a snapshot of the whole ensemble taken when some member improved).
# 6. **Elites.** The 5 members with the smallest $\mathrm{MSE}_i(\theta_i^\star)$. (The method
#    guide says "lowest validation loss"; in the code that is this holdout MSE of the means.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Real transitions from a MuJoCo task
# <!-- slide
# - Hopper-v5: 11-dim state, 3 torques
# - Two behaviours: uniform random actions, and a partly trained SAC policy
# - `next_obs` is always the true next observation, never the reset one
# -->
#
# We fit `mbpo_lib.DynamicsModel` on transitions from a real environment, made by
# `mbpo_lib.make_env` (actions rescaled to $[-1, 1]$, as MBPO sees them). Full mode uses
# **Hopper-v5** (11-dim state, 3 torques); FAST mode uses **InvertedPendulum-v5** (4-dim
# state, 1 force) with smaller budgets.
#
# Two behaviours collect data:
#
# - **uniform random actions**: what MBPO starts with (5,000 random steps for Hopper);
# - a **partly trained policy**: `mbpo_lib.SAC` trained model-free for a short budget (10,000
#   steps on Hopper, 2,000 on the pendulum), then run with its stochastic actions, as MBPO's
#   policy collects data mid-training. It stays up longer than random actions and visits
#   states they never reach. Notebook 04 teaches SAC; here it is only the data collector.
#
# Gymnasium's rule: an episode ends on `terminated` (the hopper or the pole fell) *or*
# `truncated` (the time limit); either way we reset, and the stored `next_obs` is always the
# true next observation that `step` returned, never the reset one. (The model does not learn
# `terminated`: MBPO ends model rollouts with a termination function, notebook 05.)

# %% slideshow={"slide_type": "subslide"}
def collect(env_id: str, n_steps: int, policy, seed: int):
    """n_steps transitions (obs, act, rew, next_obs) as float32 tensors on `device`, and the
    lengths of the episodes that finished. Resets on terminated or truncated."""
    env = mbpo_lib.make_env(env_id, seed=seed)   # reset with the seed, actions in [-1, 1]
    obs, _ = env.reset(seed=seed)
    rows, lengths, length = [], [], 0
    for _ in range(n_steps):
        act = policy(obs, env)
        next_obs, rew, terminated, truncated, _ = env.step(act)
        rows.append((obs, act, rew, next_obs))  # next_obs: the true next observation
        length += 1
        if terminated or truncated:
            lengths.append(length)
            length = 0
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    columns = (np.array(column, dtype=np.float32) for column in zip(*rows, strict=True))
    return tuple(torch.as_tensor(c, device=device) for c in columns), lengths


# %% slideshow={"slide_type": "subslide"}
def random_policy(obs, env):
    return env.action_space.sample()  # uniform in [-1, 1], seeded by make_env


def train_sac(env_id: str, steps: int, random_steps: int, seed: int) -> mbpo_lib.SAC:
    """Model-free SAC for `steps` env steps (the first `random_steps` uniform), one update
    per step from a replay buffer: the loop notebook 04 builds and explains."""
    env = mbpo_lib.make_env(env_id, seed=seed)
    spec = mbpo_lib.SUPPORTED_ENVS[env_id]
    sac = mbpo_lib.SAC(spec.obs_dim, spec.act_dim, device=device, seed=seed)
    buffer = mbpo_lib.ReplayBuffer(steps, spec.obs_dim, spec.act_dim, device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    for t in range(steps):
        act = env.action_space.sample() if t < random_steps else sac.act(obs)
        next_obs, rew, terminated, truncated, _ = env.step(act)
        buffer.add(obs, act, rew, next_obs, terminated)   # terminated, never truncated
        obs = env.reset()[0] if terminated or truncated else next_obs
        if t >= random_steps:
            sac.update(buffer.sample(256, generator=g))
    env.close()
    return sac


# %% slideshow={"slide_type": "subslide"}
ENV_ID = "InvertedPendulum-v5" if FAST else "Hopper-v5"
N_TRAIN = 2_000 if FAST else 5_000   # per behaviour; Hopper: MBPO's 5,000 random warm-up steps
N_TEST = 1_000 if FAST else 2_000    # fresh transitions, never used in a fit
SAC_STEPS, SAC_RANDOM = (2_000, 500) if FAST else (10_000, 1_000)
start = time.perf_counter()
sac = train_sac(ENV_ID, SAC_STEPS, SAC_RANDOM, seed=0)
sac_return, _ = mbpo_lib.evaluate(sac, ENV_ID, episodes=5, seed=100)
print(f"SAC trained for {SAC_STEPS} steps in {time.perf_counter() - start:.0f} s: "
      f"deterministic return {sac_return:.0f} (5 episodes)")


def sac_policy(obs, env):
    return sac.act(obs)   # stochastic, as a policy collects data during training


# %% slideshow={"slide_type": "subslide"}
start = time.perf_counter()
random_train, random_lengths = collect(ENV_ID, N_TRAIN, random_policy, seed=1)
random_test, _ = collect(ENV_ID, N_TEST, random_policy, seed=2)
sac_train, sac_lengths = collect(ENV_ID, N_TRAIN, sac_policy, seed=3)
sac_test, _ = collect(ENV_ID, N_TEST, sac_policy, seed=4)
obs_dim, act_dim = random_train[0].shape[1], random_train[1].shape[1]
print(f"{ENV_ID}: obs dim {obs_dim}, act dim {act_dim}; collected in {time.perf_counter() - start:.1f} s")
for name, lengths in (("random actions", random_lengths), ("partly trained SAC", sac_lengths)):
    print(f"{name:20s} mean episode length {statistics.mean(lengths or [N_TRAIN]):7.1f} "
          f"({len(lengths)} finished episodes)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Fit the ensemble on the random-action data
# <!-- slide
# - `EnsembleConfig()`: the paper's settings
# - A cap on epochs as a safety net; the report says what ended the fit
# -->
#
# `EnsembleConfig()` holds the paper's settings: 7 members, 5 elites, 4 hidden layers of 200
# SiLU units, Adam at $10^{-3}$, 256 rows per member per minibatch, the per-layer weight
# decays, holdout $\min(20\,\%, 5000)$, the 1 % / 5-epoch stopping rule. What we change, and
# why: `max_epochs` caps a fit as a safety net (the paper's code has no cap; the printout says
# whether the rule or the cap ended the fit), and FAST mode uses 64 hidden units and a learning
# rate of $3 \cdot 10^{-3}$ so the small pendulum fit converges within seconds.

# %% slideshow={"slide_type": "subslide"}
paper = mbpo_lib.EnsembleConfig()
config = (mbpo_lib.EnsembleConfig(hidden_dim=64, lr=3e-3, max_epochs=150) if FAST
          else mbpo_lib.EnsembleConfig(max_epochs=80))
model = mbpo_lib.DynamicsModel(obs_dim, act_dim, config, device=device, seed=0)
report = model.fit(*random_train)
stopped_by = "the early-stopping rule" if report.stopped_early else "the max_epochs cap"
print(f"members {config.ensemble_size}, elites {config.num_elites}, hidden {config.hidden_dim} "
      f"(paper {paper.hidden_dim}), lr {config.lr} (paper {paper.lr}), "
      f"max_epochs {config.max_epochs} (paper {paper.max_epochs})")
print(f"rows: {report.n_train} train + {report.n_holdout} holdout; {report.epochs} epochs "
      f"in {report.seconds:.1f} s, ended by {stopped_by}")
print("best epoch per member:     ", report.best_epoch)
print("holdout MSE per member:    ", [f"{m:.4f}" for m in report.final_holdout_mse])
print(f"elites: {report.elites}, their mean holdout MSE {report.elite_holdout_mse:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Replay the rule on the report's numbers: same best epochs, same stop, same elites
# -->
# **Check the library against the rule, from scratch.** `FitReport.holdout_mse` holds every
# member's holdout error after every epoch. Replaying the rule on those numbers must give the
# same best epochs and the same number of epochs; the restored weights must reproduce each
# member's best holdout error; and the elites must be the 5 lowest.

# %% slideshow={"slide_type": "fragment"}
def replay_early_stopping(history: torch.Tensor, threshold: float, patience: int):
    """The rule replayed on holdout MSEs [epochs, E] (epoch 0 sets the bests): each member's best
    epoch, the epochs run, and after each epoch how many epochs no member has improved."""
    best, best_epoch, quiet = history[0].clone(), torch.zeros(history.shape[1], dtype=torch.long), [0]
    for epoch in range(1, history.shape[0]):
        improved = (best - history[epoch]) / best > threshold
        best = torch.where(improved, history[epoch], best)
        best_epoch[improved] = epoch
        quiet.append(0 if bool(improved.any()) else quiet[-1] + 1)
        if quiet[-1] > patience:
            break
    return best_epoch, len(quiet), quiet


# %% slideshow={"slide_type": "fragment"}
history = torch.tensor(report.holdout_mse)  # [epochs, E]
best_epoch, epochs, quiet = replay_early_stopping(history, config.improvement_threshold, config.patience)
assert best_epoch.tolist() == report.best_epoch and epochs == report.epochs
assert_close(torch.tensor(report.final_holdout_mse), history[best_epoch, torch.arange(E)], rtol=1e-5, atol=0)
assert report.elites == torch.tensor(report.final_holdout_mse).argsort()[:config.num_elites].tolist()
print("the replayed rule agrees with the library: best epochs", best_epoch.tolist(), f"| {epochs} epochs")


# %% [markdown] slideshow={"slide_type": "slide"}
# ## The fit, epoch by epoch: when does the rule fire?
# <!-- slide
# - Top: a small pendulum model, where the rule fires
# - Bottom: the Hopper fit; training loss, holdout MSE, the counter
# -->
#
# Two fits side by side. Top: a case where the stopping rule fires, a small pendulum model
# (64 hidden units, learning rate $3 \cdot 10^{-3}$, 2,000 random-action transitions of
# InvertedPendulum-v5). Bottom: the fit above. Left to right: each member's training loss, its
# holdout MSE with a star at its best epoch, and the counter the rule watches.

# %% slideshow={"slide_type": "subslide"}
STOP_ENV = "InvertedPendulum-v5"
stop_data = random_train if ENV_ID == STOP_ENV else collect(STOP_ENV, 2_000, random_policy, seed=1)[0]
stop_config = mbpo_lib.EnsembleConfig(hidden_dim=64, lr=3e-3, max_epochs=150)
stop_model = mbpo_lib.DynamicsModel(stop_data[0].shape[1], stop_data[1].shape[1], stop_config,
                                    device=device, seed=0)
fits = {f"{STOP_ENV}, small model": (stop_model.fit(*stop_data), stop_config),
        f"{ENV_ID}, the fit above": (report, config)}
for name, (fit, fit_config) in fits.items():
    rule = replay_early_stopping(torch.tensor(fit.holdout_mse), fit_config.improvement_threshold,
                                 fit_config.patience)
    elites_mse = torch.tensor(fit.holdout_mse)[:, fit.elites].mean(dim=1)
    print(f"{name}: {fit.epochs} epochs (cap {fit_config.max_epochs}), ended by "
          f"{'the early-stopping rule' if fit.stopped_early else 'the max_epochs cap'}; counter "
          f"peaked at {max(rule[2])}; best epochs {fit.best_epoch}; elites' holdout MSE "
          f"{elites_mse[max(0, fit.epochs - 11)]:.4g} ten epochs before the end, {elites_mse[-1]:.4g} at it")
assert fits[f"{STOP_ENV}, small model"][0].stopped_early, "the small pendulum fit should end by the rule"


# %% slideshow={"slide_type": "subslide"}
def plot_fit_curves(axes, name, fit, fit_config, top=True):
    """Training loss, holdout MSE (stars: each member's best epoch), and the stopping counter;
    elites solid, the others dashed."""
    history, epochs = torch.tensor(fit.holdout_mse), torch.arange(fit.epochs)
    quiet = replay_early_stopping(history, fit_config.improvement_threshold, fit_config.patience)[2]
    for i in range(E):
        elite = i in fit.elites
        style = dict(color=f"C{i}", lw=1.6 if elite else 1.0, ls="-" if elite else "--")
        axes[0].plot(epochs, torch.tensor(fit.train_loss)[:, i], **style)
        axes[1].plot(epochs, history[:, i], **style)
        axes[1].plot(fit.best_epoch[i], fit.final_holdout_mse[i], "*", ms=12, color=f"C{i}", mec="k")
    axes[2].step(epochs, quiet, where="post", color="k")
    axes[2].axhline(fit_config.patience + 0.5, color="C1", ls="--", label=f"stop above {fit_config.patience}")
    ended = "rule" if fit.stopped_early else "cap"
    for ax in axes[1:]:
        ax.axvline(fit.epochs - 1, color="0.4", lw=1, ls=":", label=f"end: the {ended}")
    axes[0].set(ylabel=name.split(",")[0].removesuffix("-v5"))
    axes[1].set(yscale="log")
    axes[2].set(ylim=(0, fit_config.patience + 4.5))
    axes[2].legend(loc="upper left")
    for ax, title in zip(axes, ("training loss", "holdout MSE", "counter"), strict=True):
        ax.set(title=title if top else None, xlabel=None if top else "epoch")


# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, axes = plt.subplots(2, 3, figsize=(8.2, 5.1), layout="constrained")
for top, row, (name, (fit, fit_config)) in zip((True, False), axes, fits.items(), strict=True):
    plot_fit_curves(row, name, fit, fit_config, top)
mbpo_lib.save_figure(fig, "02_early_stopping")
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Pendulum: the counter passes 5, the rule stops the fit
# - Hopper: the counter peaks at 1; the cap of 80 epochs ends it
# -->
# The printout above, read from each fit's report, says which ended each fit.
#
# - **Pendulum, small model (top):** the counter climbs past 5 and the rule stops the fit
#   before the cap; each member ends with the weights of its own best epoch (the stars).
# - **The fit above (bottom):** in full mode, on Hopper with the paper's settings, the counter
#   peaks at 1, every star sits in the last epochs, and the elites' holdout MSE is still
#   falling when the cap of 80 epochs cuts the fit.

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Any member's gain resets the counter
# - Each member gets back its **own** best weights
# -->
# - With seven members, one of them often still finds another 1 %, and any member's gain resets
#   the counter. The paper's code has no cap, so on Hopper its first model fit would go on
#   longer (exercise 4).
# - Members can peak at different epochs, so each one gets back its **own** best weights, not a
#   snapshot of the whole ensemble.
# - The training loss is the NLL form, which also rewards a small $\sigma$; the rule watches
#   only the holdout MSE of the means.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The members and their elites
# <!-- slide
# - Holdout MSE per member, against fresh transitions neither fit nor choice saw
# -->
#
# Each member's holdout MSE from the report, next to its MSE on fresh random-action
# transitions that neither the fit nor the choice of the elites has seen.

# %% slideshow={"slide_type": "fragment"}
def targets(data) -> torch.Tensor:
    """The model's targets [r, s' - s] of transitions (obs, act, rew, next_obs): [N, 1 + obs_dim]."""
    obs, _, rew, next_obs = data
    return torch.cat([rew[:, None], next_obs - obs], dim=1)


test_means, _ = model.predict(*random_test[:2])  # every member on the fresh random-action data
member_test_mse = model.network.member_mse(test_means, targets(random_test))
print("fresh-data MSE per member:", [f"{m:.4f}" for m in member_test_mse.tolist()])

# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
members_axis = np.arange(E)
colors = ["C0" if i in report.elites else "0.6" for i in range(E)]
ax.bar(members_axis - 0.2, report.final_holdout_mse, width=0.4, color=colors, edgecolor="k",
       label="holdout MSE (chooses the elites)")
ax.bar(members_axis + 0.2, member_test_mse.cpu(), width=0.4, color=colors, edgecolor="k", hatch="//",
       label="MSE on fresh transitions (not used in the fit)")
ax.axhline(report.elite_holdout_mse, color="C0", ls=":",
           label=f"elites' mean holdout MSE {report.elite_holdout_mse:.4f}")
ax.set_xticks(members_axis, [f"{i}\nelite" if i in report.elites else f"{i}" for i in range(E)])
top = 1.45 * max(*report.final_holdout_mse, *member_test_mse.tolist())  # room for the legend
ax.set(xlabel="member", ylabel="MSE of the mean prediction", ylim=(0, top),
       title=f"{ENV_ID}: the 5 elites (blue) and the rest")
ax.legend(loc="upper left", ncol=2)
mbpo_lib.save_figure(fig, "02_member_holdout_mse")
plt.show()

# %% slideshow={"slide_type": "fragment"}
is_elite = torch.zeros(E, dtype=torch.bool)
is_elite[report.elites] = True
fresh = member_test_mse.cpu()
print(f"MSE on fresh transitions: elites {fresh[is_elite].mean():.4f}, "
      f"the other two {fresh[~is_elite].mean():.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - The elites leave out the two worst members; fresh data confirm the choice
# -->
# The elites leave out the two members with the highest holdout error. The fresh transitions
# check that this choice was not luck of the holdout draw: the members left out should not be
# better on data that neither the training nor the choice has seen. The gain is modest here;
# the point of the choice is to drop a member that happened to train badly.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## One-step error, dimension by dimension
# <!-- slide
# - One random elite per row: its mean, or a sample
# - RMSE over each target's spread: 1 is no better than the average change
# -->
#
# On fresh random-action transitions, `model.step` predicts $(\hat r, \hat s')$ with one random
# elite per row, either its mean (**deterministic**) or a sample $\mu + \sigma \odot \xi$
# (**sampled**, what MBPO's rollouts use). We report each dimension's RMSE divided by the
# standard deviation of that target in the training data: 1 means "no better than predicting
# the average change".

# %% slideshow={"slide_type": "subslide"}
def one_step_errors(model, data, generator, deterministic):
    """Root-mean-square error per target dimension [r, s'_1 - s_1, ...] of model.step: [1 + obs_dim]."""
    obs, act, rew, next_obs = data
    pred_next, pred_rew, _ = model.step(obs, act, generator=generator, deterministic=deterministic)
    errors = torch.cat([(pred_rew - rew)[:, None], pred_next - next_obs], dim=1)
    return errors.pow(2).mean(dim=0).sqrt()


def fresh_generator(seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)

# %% slideshow={"slide_type": "subslide"}
NAMES = {
    "Hopper-v5": ["z", "torso angle", "thigh angle", "leg angle", "foot angle", "x vel", "z vel",
                  "torso ang vel", "thigh ang vel", "leg ang vel", "foot ang vel"],
    "InvertedPendulum-v5": ["cart x", "pole angle", "cart vel", "pole ang vel"],
}
labels = ["reward"] + [f"Δ {name}" for name in NAMES[ENV_ID]]
scale = targets(random_train).std(dim=0)  # each target's spread in the training data
relative = {kind: (one_step_errors(model, random_test, fresh_generator(7), kind == "deterministic")
                   / scale).cpu() for kind in ("deterministic", "sampled")}
for name, det, smp in zip(labels, relative["deterministic"], relative["sampled"], strict=True):
    print(f"{name:18s} deterministic {det:5.2f}   sampled {smp:5.2f}")

# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8.2, 4.4))
dims = np.arange(len(labels))
ax.bar(dims - 0.2, relative["deterministic"], width=0.4, label="elite's mean")
ax.bar(dims + 0.2, relative["sampled"], width=0.4, label=r"sample $\mu + \sigma\xi$")
ax.axhline(1.0, color="k", lw=1, ls="--", label="the average change")
ax.set_xticks(dims, labels, rotation=40, ha="right")
ax.set(ylabel="RMSE / target std", title="One-step error on fresh random-action data")
ax.legend()
mbpo_lib.save_figure(fig, "02_one_step_error_per_dim")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - On Hopper, $\Delta z$ is worse than its average: the holdout MSE hides it
# -->
# Read the bars against the dashed line. In full mode one output, $\Delta z$, lies above it:
# the model predicts the torso's height change worse than its average would (printed above).
# The holdout MSE, dominated by the large velocity targets, does not show this.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Is the predicted σ the right size? A calibration check
# <!-- slide
# - If the Gaussian is right, $z = (y - \mu)/\sigma \sim \mathcal N(0, 1)$
# - More rows inside $\pm\sigma$: under-confident; fewer: over-confident
# -->
#
# If the model's Gaussian is right, the standardised error $z = (y - \mu)/\sigma$ of each output
# follows $\mathcal N(0, 1)$: a known share of rows falls inside $\mu \pm \sigma$ and inside
# $\mu \pm 2\sigma$ (printed below). More rows inside means $\sigma$ is too large
# (**under-confident**); fewer, too small (**over-confident**).

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - The elites' mixture: its mean and total variance
# - On the holdout, and on the partly trained policy's data
# -->
# Which Gaussian? The rollouts draw one random elite per row, a mixture of the elites. We
# summarise it by its mean $\bar\mu$ and its total variance, aleatoric + epistemic over the
# elites, and check it on two sets: the fit's own **holdout** rows, and fresh transitions of the
# **partly trained policy**.

# %% slideshow={"slide_type": "subslide"}
def standardised_errors(model, data) -> torch.Tensor:
    """z = (y - mixture mean) / mixture std over the elites, per row and target: [N, 1 + obs_dim]."""
    mean, logvar = model.predict(*data[:2])
    mean, var = mean[model.elites], logvar[model.elites].exp()
    total_var = var.mean(dim=0) + mean.var(dim=0, unbiased=False)
    return ((targets(data) - mean.mean(dim=0)) / total_var.sqrt()).cpu()


# The fit's holdout: its first draw from the model's own generator (seed 0) chose these rows.
perm = torch.randperm(random_train[0].shape[0], generator=fresh_generator(0), device=device)
holdout = tuple(column[perm[:report.n_holdout]] for column in random_train)
holdout_mse = model.network.member_mse(model.predict(*holdout[:2])[0], targets(holdout))
assert_close(holdout_mse.cpu(), torch.tensor(report.final_holdout_mse), rtol=1e-4, atol=1e-8)
z_sets = {"holdout": standardised_errors(model, holdout), "policy data": standardised_errors(model, sac_test)}
print(f"rebuilt the {report.n_holdout} holdout rows (their MSE per member equals the report's)")

# %% slideshow={"slide_type": "subslide"}
gauss = {c: math.erf(c / math.sqrt(2)) for c in (1, 2)}  # share inside ±cσ under N(0, 1)
print(f"a calibrated output: {gauss[1]:.3f} inside ±1σ, {gauss[2]:.3f} inside ±2σ")
print(f"{'output':18s}" + "".join(f"{name:>12s} ±1σ  ±2σ" for name in z_sets))
coverage = {name: {c: (z.abs() <= c).float().mean(dim=0) for c in (1, 2)} for name, z in z_sets.items()}
for d, label in enumerate(labels):
    print(f"{label:18s}" + "".join(f"{'':>12s}{cov[1][d]:5.2f} {cov[2][d]:5.2f}"
                                   for cov in coverage.values()))


def verdict(cov) -> dict[str, list[str]]:
    """Outputs whose ±1σ share is more than 0.05 above or below the Gaussian's."""
    return {"under-confident": [labels[d] for d in range(len(labels)) if cov[1][d] > gauss[1] + 0.05],
            "over-confident": [labels[d] for d in range(len(labels)) if cov[1][d] < gauss[1] - 0.05]}


for name, cov in coverage.items():
    print(f"{name}: " + "; ".join(f"{kind}: {', '.join(dims) or 'none'}"
                                  for kind, dims in verdict(cov).items()))

# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
columns = 4
rows = math.ceil(len(labels) / columns)
fig, axes = plt.subplots(rows, columns, figsize=(8.2, 1.5 * rows + 0.6), layout="constrained", squeeze=False,
                         sharex=True)
bins = torch.linspace(-5, 5, 51)
normal = torch.exp(-0.5 * bins**2) / math.sqrt(2 * math.pi)
for d, ax in enumerate(axes.flat):
    if d >= len(labels):
        ax.set_axis_off()
        continue
    for k, (name, z) in enumerate(z_sets.items()):
        ax.hist(z[:, d].clamp(-5, 5), bins=bins, density=True, alpha=0.5, color=f"C{k}", label=name)
    ax.plot(bins, normal, color="k", lw=1.2, label=r"$\mathcal{N}(0, 1)$")
    ax.set(title=labels[d], yticks=[], xticks=[-4, 0, 4])
fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
mbpo_lib.save_figure(fig, "02_calibration")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Holdout: under-confident, the angles most
# - Policy data: velocities turn over-confident
# - Judge calibration per dimension, on the data rollouts visit
# -->
# What the table shows on Hopper (full mode, the committed figure), dimension by dimension:
#
# - **Holdout:** every output has more than the Gaussian's share inside $\pm 1\sigma$: the
#   model is under-confident on data like its training data. The angles and $\Delta z$ are the
#   extreme, with every row inside $\pm 1\sigma$; the velocities are closer to calibrated.
# - **Policy data:** the angles stay under-confident, but most velocities turn over-confident:
#   for $\Delta$ x vel, z vel, leg and foot angular velocity only a fifth to a third of the rows
#   fall inside $\pm 1\sigma$. Off its data the model's $\sigma$ understates its error.
# - Calibration differs per output and per data set: judge it per dimension, on the data the
#   rollouts will visit. The holdout MSE shows none of this.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Distribution shift: the model only knows where its data are
# <!-- slide
# - A model of random actions, asked about the policy's transitions
# - Refitted with more random data, or with as much policy data
# -->
#
# The model above has seen random actions only. We ask it about the partly trained policy's
# transitions. Then we refit it as MBPO does when new data arrive (all data, a new holdout,
# warm-started from the current weights), twice from the same starting point: once with
# `N_TRAIN` more random transitions, once with `N_TRAIN` of the policy's transitions. Same
# amount of new data, same training; only the behaviour that collected it differs. The score
# is the holdout metric: the MSE over all targets $(r, \Delta s)$ of the deterministic step.

# %% slideshow={"slide_type": "subslide"}
def one_step_mse(model, data) -> float:
    return one_step_errors(model, data, fresh_generator(7), deterministic=True).pow(2).mean().item()


random_more, _ = collect(ENV_ID, N_TRAIN, random_policy, seed=5)
models = {"random only": model}
for name, extra in (("+ random", random_more), ("+ policy", sac_train)):
    models[name] = mbpo_lib.DynamicsModel(obs_dim, act_dim, config, device=device)
    models[name].load_state_dict(model.state_dict())  # an exact copy of the model fitted above
    refit = models[name].fit(*(torch.cat([a, b]) for a, b in zip(random_train, extra, strict=True)))
    print(f"refit {name:10s}: {refit.n_train + refit.n_holdout} rows, {refit.epochs} epochs "
          f"in {refit.seconds:.1f} s, elites {refit.elites}")

# %% slideshow={"slide_type": "fragment"}
shift = {name: [one_step_mse(m, data) for data in (random_test, sac_test)] for name, m in models.items()}
print(f"{'model fitted on':16s} {'random test':>12s} {'policy test':>12s}")
for name, (on_random, on_policy) in shift.items():
    print(f"{name:16s} {on_random:12.5f} {on_policy:12.5f}")
assert shift["random only"][1] > shift["random only"][0], "expected a worse fit on the policy's data"
assert shift["+ policy"][1] < shift["+ random"][1], "the policy's own data should help most there"

# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
positions = np.arange(2)
for k, (name, values) in enumerate(shift.items()):
    ax.bar(positions + (k - 1) * 0.27, values, width=0.27, label=f"fitted on {name}")
for container in ax.containers:
    ax.bar_label(container, fmt="%.3g", padding=2)
ax.set_xticks(positions, ["fresh random-action data", "fresh partly-trained-policy data"])
ax.set_yscale("log")   # the errors span orders of magnitude
ax.set(ylabel="one-step MSE over all targets (log scale)",
       title=f"{ENV_ID}: one-step error under distribution shift")
ax.legend()
mbpo_lib.save_figure(fig, "02_distribution_shift")
plt.show()

# %% slideshow={"slide_type": "fragment"}
for column, data_name in enumerate(("random", "policy")):
    before, with_random, with_policy = (shift[name][column] for name in shift)
    print(f"on fresh {data_name} data: random only {before:.4g}, + random {with_random:.4g} "
          f"({with_random / before:.3g}×), + policy {with_policy:.4g} ({with_policy / before:.3g}×)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Far worse on the policy's transitions
# - The policy's own data help there; more random data barely
# -->
# - Fitted on random actions only, the model is far worse on the policy's transitions than on
#   random ones (the printout gives the factor). The partly trained policy visits speeds and
#   poses that random actions never reached.
# - More random data barely helps there; the policy's own data bring the error on its
#   transitions down. In MBPO the model is refitted every 250 steps on data that keep moving
#   with the policy, and rollouts start from the real buffer, where the policy has recently been.

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Policy data made the error on random data **worse**: one seed shows that, not why
# -->
# **The other column.** In the committed full run, adding the policy's data made the error on
# *random* data worse (printed above). The same capacity now covers more states; the holdout,
# and so the best epochs and elites, are half policy data; the refit is warm-started and
# stops on its own schedule. We have not tested which of these matters: one seed and one fit
# show that it happens, not why. MBPO sees this as well: it cares about the states its rollouts
# start from, which follow the policy.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
# <!-- slide
# - Variance = aleatoric + epistemic; only the second grows off the data
# - Bootstrap and random starts make members differ
# - Holdout, the 1 % / 5-epoch rule, own best weights, 5 elites
# - One random elite per row and step
# - Judge per dimension, on fresh data
# -->
#
# - An ensemble's predictive variance splits into **aleatoric** (mean of the members'
#   $\sigma_i^2$) and **epistemic** (variance of their $\mu_i$); only the second grows in gaps
#   and outside the data.
# - Members differ by their random start and their **bootstrap** resample (about 63 % distinct
#   rows each).
# - The paper's fitting rules: a holdout set, a member improves by > 1 %, stop after more than
#   5 epochs without any improvement, every member back to its **own** best weights, the 5
#   lowest holdout errors are the **elites**. The fit report says whether the rule or a cap ended
#   a fit.
# - MBPO predicts with **one random elite per row and per step** and samples from it, so
#   rollouts carry both kinds of uncertainty.
# - Judge a model per dimension and on fresh data: the holdout MSE is dominated by the large
#   targets, calibration differs per output, and the model is good only near its data.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Exercises
# <!-- slide
# 1. No gap: what happens to the epistemic curve?
# -->
#
# 1. **Fill the gap.** Set `GAP = (0.0, 0.0)` (no gap) and rerun the toy cells. What happens to
#    the epistemic curve, and to the check cell?
#
# <details><summary>Solution</summary>
#
# The epistemic curve stays low everywhere on $[-1, 1]$ and still rises outside. The check
# cell's "in the gap" mean is over no points (nan), so its assert fails, as it should.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 2. No bootstrap: the epistemic spread?
# -->
# 2. **No bootstrap.** Train every member on all rows:
#    `bootstrap = torch.arange(N_TOY).expand(E, -1)`. Compare the epistemic spread.
#
# <details><summary>Solution</summary>
#
# The epistemic spread inside the data is much smaller; it still rises in the gap and outside,
# less than before. The random start alone makes members disagree away from the data; the
# bootstrap adds the disagreement that reflects how thin the data are.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 3. Draws centred on the ensemble mean: their variance?
# -->
# 3. **Predict with the ensemble mean.** In the sampling check, replace `means[member]` by
#    `ensemble_mean` (every draw centred on the mean of the members). What variance do the draws
#    have?
#
# <details><summary>Solution</summary>
#
# The aleatoric term alone: the epistemic term is gone, and in the gap and outside the data the
# model looks surer than it is.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 4. `max_epochs=250`: the rule or the cap?
# -->
# 4. **Let the rule decide.** In full mode, fit a new `DynamicsModel` (seed 0) on `random_train`
#    with `max_epochs=250` (a few minutes on a laptop CPU). Did the rule or the cap end it?
#
# <details><summary>Solution</summary>
#
# Read `stopped_early` from the report and replay the counter as above. Compare the elites'
# holdout MSE with the 80-epoch fit's: if the rule still has not fired, the paper's rule alone
# would train longer still on Hopper.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 5. Batched against looped, by batch size
# -->
# 5. **Batch size and speed** (appendix). Time the batched and the looped forward for 64, 256,
#    2,000 and 20,000 rows. How does the ratio change with the batch?
#
# <details><summary>Solution</summary>
#
# On a CPU the ratio is largest for the smallest batch and nears or falls below 1 for the
# largest: a fixed cost per call (seven calls per layer in the loop, one in the batch) against
# arithmetic that grows with the rows.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Code exercises, checked
# <!-- slide
# - Fill in each cell marked ✏️, run it, then its check cell
# - **A.** `my_bootstrap(n, E, generator)`
# -->
#
# Fill in each cell marked **✏️ YOUR ANSWER**, run it, then run the check cell below it. The
# checker says what is right or wrong (shapes, values against a reference, a hint); it never
# prints the answer. Reference solutions close the notebook.
#
# **A. The bootstrap.** Write `my_bootstrap(n, E, generator)`: row indices `[E, n]`, each row a
# resample of `range(n)` with replacement, drawn from `generator`.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise A): replace `raise NotImplementedError` with your code.
def my_bootstrap(n: int, E: int, generator: torch.Generator) -> torch.Tensor:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_bootstrap(my_bootstrap)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **B. The variance decomposition.** Write `my_decomposition(means, variances)`: from the
# members' means and variances `[E, G]`, return `(aleatoric, epistemic)`, each `[G]`.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise B): replace `raise NotImplementedError` with your code.
def my_decomposition(means: torch.Tensor, variances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_variance_decomposition(my_decomposition)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **C. Coverage.** Write `my_coverage(y, mean, std, c)`: for rows `[N, D]`, the share of rows
# whose target lies within $c$ standard deviations of the mean, per output `[D]`.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise C): replace `raise NotImplementedError` with your code.
def my_coverage(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, c: float) -> torch.Tensor:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_coverage(my_coverage)

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes: start from the right panel of the aleatoric-vs-epistemic figure and ask where
# the model should be trusted. Then connect it to MBPO: rollouts start at real states, so they
# begin where the model has data; each step can drift to where it has none, and the random
# elite makes that drift visible as spread. For the early-stopping figure, point at the stars:
# one snapshot of the whole ensemble at "the best epoch" would give some members worse weights
# than they had (a known bug in some reimplementations).

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes on the numbers: the holdout errors are mean squared errors on the raw targets,
# so dimensions with a large spread (Hopper's angular velocities) dominate them, which is why
# the per-dimension figure divides by each target's spread. The partly trained policy is a
# short model-free SAC run (notebook 04 explains it); its return is printed above. If asked why
# the full Hopper fit ends by the cap: show the counter panel; the rule does not fire because
# some member keeps finding another 1 %, and the paper's code, which has no cap, would keep
# training.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Appendix: one batched pass instead of a loop over members, timed
# <!-- slide
# - Each member as its own `nn.Sequential`, called in turn: same outputs, timed
# -->
#
# The peer: each member rebuilt as its own `nn.Sequential` of `nn.Linear` and `nn.SiLU` with the
# same weights, called one after the other. Same inputs, same outputs (checked), timed with
# `time.perf_counter` as the median of several repeats.

# %% slideshow={"slide_type": "subslide"}
def member_as_module(network: mbpo_lib.GaussianEnsemble, e: int) -> nn.Sequential:
    """Member e of the batched network as a plain stack of nn.Linear and nn.SiLU."""
    modules = []
    for k, layer in enumerate(network.layers):
        linear = nn.Linear(layer.in_features, layer.out_features).to(device)
        with torch.no_grad():
            linear.weight.copy_(layer.weight[e].T)
            linear.bias.copy_(layer.bias[e, 0])
        modules += [linear] if k == len(network.layers) - 1 else [linear, nn.SiLU()]
    return nn.Sequential(*modules)


# %% slideshow={"slide_type": "fragment"}
member_modules = [member_as_module(model.network, e) for e in range(E)]


def looped_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outputs = [module(x).chunk(2, dim=-1) for module in member_modules]  # a Python loop
    return (torch.stack([mean for mean, _ in outputs]),
            model.network.bound_logvar(torch.stack([raw for _, raw in outputs])))


# %% slideshow={"slide_type": "fragment"}
def median_seconds(fns, repeats: int) -> list[float]:
    """Median wall time of each function, timed in turns (so a slow moment hits all of them
    alike), after one warm-up call each."""
    times = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, record in zip(fns, times, strict=True):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


# %% slideshow={"slide_type": "subslide"}
REPEATS = 7 if FAST else 15
model.network.eval()
fresh_obs, fresh_act = (torch.cat([random_test[k], sac_test[k]]) for k in (0, 1))
x_all = model.normalizer(torch.cat([fresh_obs, fresh_act], dim=1))  # 2 * N_TEST fresh rows
for batch in (64, 2_000):  # a small and a large batch
    x = x_all[:batch]
    with torch.no_grad():
        batched, looped = model.network(x), looped_forward(x)
        assert_close(batched[0], looped[0])
        assert_close(batched[1], looped[1])
        t_batched, t_looped = median_seconds([lambda x=x: model.network(x), lambda x=x: looped_forward(x)],
                                             REPEATS)
    print(f"{batch:5d} rows x {E} members: batched {1e3 * t_batched:7.2f} ms, "
          f"looped {1e3 * t_looped:7.2f} ms, ratio looped / batched {t_looped / t_batched:.2f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### `DynamicsModel.step`: only the chosen elite runs for each row
# <!-- slide
# - All members on every row, then pick; or each member on its own rows
# - About $E$ times less arithmetic
# -->
#
# A rollout step needs one member's output per row. The plain way runs all $E$ members on
# every row and picks; `step` groups the rows by their member (`forward_per_row`) and runs each
# member on its own rows only, in one batched call: about $E$ times less arithmetic. First the
# two must agree (same random elites, deterministic outputs), then the clock.

# %% slideshow={"slide_type": "fragment"}
def step_all_members(obs, act, gen):
    """The plain way: every member on every row, then each row takes its random elite's output."""
    elites = torch.tensor(model.elites, device=device)
    member = elites[torch.randint(len(elites), (obs.shape[0],), generator=gen, device=device)]
    mean, logvar = model.predict(obs, act)  # [E, B, 1 + obs_dim]
    rows = torch.arange(obs.shape[0], device=device)
    mean, logvar = mean[member, rows], logvar[member, rows]
    sample = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen, device=device)
    return obs + sample[:, 1:], sample[:, 0], member


# %% slideshow={"slide_type": "subslide"}
obs, act = fresh_obs, fresh_act  # every fresh transition, random and policy
next_obs, rew, info = model.step(obs, act, generator=fresh_generator(3), deterministic=True)
mean, _ = model.predict(obs, act)
picked = mean[info["member"], torch.arange(obs.shape[0], device=device)]
assert_close(next_obs, obs + picked[:, 1:])
assert_close(rew, picked[:, 0])
t_step, t_all = median_seconds([lambda: model.step(obs, act, generator=fresh_generator(3)),
                                lambda: step_all_members(obs, act, fresh_generator(3))], REPEATS)
print(f"{obs.shape[0]} rows: step {1e3 * t_step:.2f} ms, all members then pick {1e3 * t_all:.2f} ms, "
      f"ratio {t_all / t_step:.2f} (elites used: {sorted(set(info['member'].tolist()))})")

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Batching removes a fixed cost per call
# - `step` saves arithmetic: one member per row
# -->
# The ratios depend on the hardware and move from run to run. What to read from them:
#
# - Batching removes a fixed cost per call (one call per layer instead of seven). On a CPU that
#   matters for small batches; with thousands of rows the arithmetic dominates, and the batched
#   pass and the loop can take about the same time.
# - `step` saves arithmetic itself: one member per row instead of seven. This is the saving
#   that counts in MBPO, whose rollouts push 100,000 rows through the model at every step.
# - We have not timed this on a GPU here.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Solutions
# <!-- slide
# - Try the exercises first
# - The reference solutions run through the same checkers
# -->
#
# Try the exercises first. The code cells below are collapsed in JupyterLab: they hold the
# reference solutions and run them through the same checkers (this is how CI tests them).

# %% slideshow={"slide_type": "subslide"} tags=["solution"] jupyter={"source_hidden": true}
def reference_bootstrap(n, E, generator):
    return torch.randint(n, (E, n), generator=generator)


feedback = mbpo_lib.exercises.check_bootstrap(reference_bootstrap)
assert feedback.ok, feedback
feedback

# %% slideshow={"slide_type": "fragment"} tags=["solution"] jupyter={"source_hidden": true}
def reference_decomposition(means, variances):
    return variances.mean(dim=0), means.var(dim=0, unbiased=False)


feedback = mbpo_lib.exercises.check_variance_decomposition(reference_decomposition)
assert feedback.ok, feedback
feedback

# %% slideshow={"slide_type": "fragment"} tags=["solution"] jupyter={"source_hidden": true}
def reference_coverage(y, mean, std, c):
    return ((y - mean).abs() <= c * std).float().mean(dim=0)


feedback = mbpo_lib.exercises.check_coverage(reference_coverage)
assert feedback.ok, feedback
feedback
