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
# # 01 · The probabilistic MLP
# <!-- slide
# - Why MBPO's model predicts a **distribution** over $(r, \Delta s)$
# - The Gaussian NLL: input-dependent noise an MSE fit cannot express
# - Soft log-variance bounds, and what goes wrong without them
# - Why one model is overconfident away from its data
# -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mbpo-series/mbpo-notebooks/blob/main/notebooks/01_probabilistic_mlp.ipynb)
#
# **What you will learn**
#
# - why MBPO's model predicts a *distribution* over $(r, \Delta s)$, and the Gaussian negative
#   log-likelihood (NLL) it is trained with;
# - what the NLL learns that a mean-squared-error (MSE) fit cannot: a noise level that changes
#   with the input, on a 1-D toy problem you build from scratch;
# - the soft log-variance bounds: what they are, what goes wrong without them;
# - how `mbpo_lib.GaussianEnsemble` with $E = 1$ reproduces the from-scratch model exactly;
# - why one such model is overconfident away from its data, which is why MBPO uses an ensemble.

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

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import mbpo_lib

torch.set_num_threads(1)  # the networks here are tiny: per-operation overhead dominates
FAST = mbpo_lib.fast_mode()
generator = mbpo_lib.seed_everything(0)
device = mbpo_lib.default_device()
mbpo_lib.apply_style()
print(f"mbpo_lib {mbpo_lib.__version__} | device: {device} | FAST mode: {FAST}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Why a distribution and not a point
# <!-- slide
# $$(r, \Delta s) \sim \mathcal N\big(\mu_\theta(s, a), \operatorname{diag}\sigma_\theta^2(s, a)\big)$$
#
# - MuJoCo is **deterministic**: same $(s, a)$, same $s'$
# -->
#
# MBPO's model takes a state and an action and predicts the reward and the state difference,
# $(r, \Delta s)$ with $\Delta s = s' - s$. It predicts a **distribution** over them,
# $\mathcal N\big(\mu_\theta(s, a), \operatorname{diag}\sigma_\theta^2(s, a)\big)$.
#
# The MuJoCo tasks are **deterministic**: the same $(s, a)$ always gives the same $s'$ (the
# observation leaves out the x position, which does not affect the dynamics). A foot that just
# touches the ground and one that just misses come from two different states. A random start
# state is not noise in a transition either.

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - $\sigma_\theta$ learns the error the model cannot resolve: sharp contacts, capacity, unobserved state
# -->
# So what does $\sigma_\theta$ learn there? The error the model cannot resolve from its input
# and its data:
#
# - sharp contacts: a tiny change of $(s, a)$ flips the outcome, faster than a smooth network
#   can follow;
# - limited capacity and finite data;
# - unobserved state, on tasks where the observation leaves some out.

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Sampling spreads imagined transitions where the model is unsure
# - One body, a mean head and a log-variance head
# -->
# Why sample from it at all? A model step draws $\Delta s$ from this Gaussian and sets
# $s' = s + \Delta s$. Where the model is unsure, imagined transitions then spread out instead
# of following one confident guess, and the policy is not trained on a single, possibly wrong,
# average.
#
# Each of MBPO's networks is therefore a **probabilistic MLP**: one shared body, a head for the
# mean $\mu_\theta(x)$ and a head for the log-variance $\log\sigma_\theta^2(x)$, with $x = (s, a)$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The loss: Gaussian negative log-likelihood
# <!-- slide
# $$
# \mathcal L_\mathrm{NLL} = \frac12\left[\frac{(y - \mu)^2}{\sigma^2} + \log\sigma^2 + \log 2\pi\right],
# \qquad
# \frac{\partial \mathcal L_\mathrm{NLL}}{\partial \mu} = \frac{\mu - y}{\sigma^2},
# \qquad
# \frac{\partial \mathcal L_\mathrm{NLL}}{\partial \log\sigma^2}
#   = \frac12\left[1 - \frac{(y - \mu)^2}{\sigma^2}\right]
# $$
#
# - An error counts $1/\sigma^2$ times
# - $\sigma^2$ settles at the expected squared error: the local noise
# - Fixed $\sigma$: the NLL is the MSE
# -->
#
# For one output dimension with target $y$, the negative log-likelihood under
# $\mathcal N(\mu, \sigma^2)$ is
#
# $$
# \mathcal L_\mathrm{NLL}(\mu, \sigma^2; y) = -\log \mathcal N(y; \mu, \sigma^2)
#   = \frac12\left[\frac{(y - \mu)^2}{\sigma^2} + \log\sigma^2 + \log 2\pi\right].
# $$
#
# Its gradients say what training does:
#
# $$
# \frac{\partial \mathcal L_\mathrm{NLL}}{\partial \mu} = \frac{\mu - y}{\sigma^2},
# \qquad
# \frac{\partial \mathcal L_\mathrm{NLL}}{\partial \log\sigma^2}
#   = \frac12\left[1 - \frac{(y - \mu)^2}{\sigma^2}\right].
# $$
#
# - An error counts **$1/\sigma^2$ times**: where the model expects noise, a miss pulls the mean
#   little; where it expects precision, the same miss pulls hard.
# - The variance is pushed up when the squared error exceeds it and down otherwise, so it
#   settles where $\sigma^2$ equals the expected squared error: the noise level at that input.
#
# With a fixed $\sigma$ the NLL is the MSE, scaled and shifted: MSE is the special case that
# assumes the same noise everywhere.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The paper's form of the loss, and what goes in and out
# <!-- slide
# $$\ell = (\mu - y)^2\, e^{-\log\sigma^2} + \log\sigma^2 = 2\,\mathcal L_\mathrm{NLL} - \log 2\pi$$
#
# - Inputs normalised, refitted at every fit
# - Targets: $\Delta s$, the small informative part of $s'$
# - Targets not normalised: each dimension has its own $\sigma^2$
# -->
#
# The MBPO code (after PETS, Chua et al. 2018) minimises, per ensemble member, the mean over
# the batch and the output dimensions of
#
# $$
# \ell = (\mu - y)^2\, e^{-\log\sigma^2} + \log\sigma^2 \;=\; 2\,\mathcal L_\mathrm{NLL} - \log 2\pi,
# $$
#
# twice the NLL less a constant, so the same minimiser; plus two regularisers we meet below.
#
# - **Inputs are normalised**: $(s, a)$ minus the training mean, over the training std, refitted
#   at every model fit, so that positions, velocities and actions of very different scales
#   reach the first layer on the same footing.
# - **Targets are $\Delta s$, not $s'$**: over one time step $s' \approx s$, so predicting $s'$
#   means learning the identity plus a small change, and every error in copying $s$ through
#   the network becomes a state error. $\Delta s$ is the small, informative part.
# - **Targets are not normalised**: each output dimension has its own $\sigma^2$, and
#   $(y - \mu)^2 / \sigma^2$ has no unit, so a dimension with large values does not drown the
#   others the way it would in a plain MSE.

# %% [markdown] slideshow={"slide_type": "subslide"}
# The $1/\sigma^2$ weighting, checked with autograd: the same error of 0.5 under a confident
# prediction ($\sigma = 0.1$) and an uncertain one ($\sigma = 1$).

# %% slideshow={"slide_type": "fragment"}
mu = torch.tensor([0.5, 0.5], requires_grad=True)
sigma, y_check = torch.tensor([0.1, 1.0]), torch.zeros(2)
nll_check = 0.5 * ((y_check - mu) ** 2 / sigma**2 + torch.log(sigma**2) + math.log(2 * math.pi))
nll_check.sum().backward()

torch.testing.assert_close(mu.grad, (mu - y_check).detach() / sigma**2)
print(f"dNLL/dmu: {mu.grad[0]:.0f} at sigma = 0.1, {mu.grad[1]:.1f} at sigma = 1 "
      f"(ratio {mu.grad[0] / mu.grad[1]:.0f} = 1/0.1²)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A 1-D heteroscedastic toy problem
# <!-- slide
# $$
# y = \sin(2x) + \sigma(x)\,\varepsilon, \qquad
# \sigma(x) = 0.03 + 0.25\,\operatorname{sigmoid}\big(2(x - 3)\big)
# $$
#
# - 300 inputs on $[0, 1.5] \cup [2.5, 4]$: calm left, noisy right, a **gap**
# -->
#
# *Heteroscedastic*: the noise level depends on the input. We draw
#
# $$
# y = \sin(2x) + \sigma(x)\,\varepsilon, \qquad
# \sigma(x) = 0.03 + 0.25\,\operatorname{sigmoid}\big(2(x - 3)\big), \qquad
# \varepsilon \sim \mathcal N(0, 1),
# $$
#
# with 300 inputs $x$ uniform on $[0, 1.5] \cup [2.5, 4]$. Think of $x$ as $(s, a)$ and of the
# noise as the error a model cannot resolve: small on the left, large on the right (the table
# below prints $\sigma(x)$). There is a **gap** in the middle and nothing outside $[0, 4]$, so
# "away from the data" has a meaning.

# %% slideshow={"slide_type": "fragment"}
def true_mean(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * x)


def true_std(x: torch.Tensor) -> torch.Tensor:
    return 0.03 + 0.25 * torch.sigmoid(2 * (x - 3))


data_generator = torch.Generator().manual_seed(1)  # the toy's own seed: same data every run
N_DATA, GAP = 300, (1.5, 2.5)
u = 3.0 * torch.rand(N_DATA, 1, generator=data_generator)
x_train = torch.where(u < GAP[0], u, u + (GAP[1] - GAP[0]))  # [0, 1.5] ∪ [2.5, 4]
y_train = true_mean(x_train) + true_std(x_train) * torch.randn(N_DATA, 1, generator=data_generator)
print(f"{N_DATA} points, x in [{x_train.min():.2f}, {x_train.max():.2f}], "
      f"none in the gap {GAP}: {((x_train > GAP[0]) & (x_train < GAP[1])).sum().item()}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The networks see the **normalised** input $z = (x - \bar x)/\mathrm{std}(x)$, with the
# statistics of the training inputs. `mbpo_lib.Normalizer` does this (and divides a constant
# input dimension by 1 instead of 0); it must agree with the two-line version.

# %% slideshow={"slide_type": "fragment"}
x_mean, x_std = x_train.mean(0), x_train.std(0, unbiased=False)
z_train = (x_train - x_mean) / x_std

normalizer = mbpo_lib.Normalizer(1).fit(x_train)
torch.testing.assert_close(normalizer(x_train), z_train)
print(f"x mean {x_mean.item():.3f}, std {x_std.item():.3f} -> z mean {z_train.mean():.1e}, "
      f"std {z_train.std(unbiased=False):.3f}")

# %% slideshow={"slide_type": "skip"}
x_grid = torch.linspace(-3.0, 7.0, 501).unsqueeze(1)  # the inputs we evaluate on, data and beyond
z_grid = normalizer(x_grid)
in_data = ((x_grid >= 0) & (x_grid <= GAP[0])) | ((x_grid >= GAP[1]) & (x_grid <= 4))
in_gap = (x_grid > GAP[0]) & (x_grid < GAP[1])
outside = (x_grid < 0) | (x_grid > 4)


# %% slideshow={"slide_type": "skip"}
def draw_truth(ax) -> None:
    """The data, the true mean and the true ±2σ(x) band, on x in [-0.3, 4.3]; the gap shaded."""
    xs = x_grid[(x_grid >= -0.3) & (x_grid <= 4.3)]
    ax.scatter(x_train, y_train, s=7, color="0.55", alpha=0.6, label="training data")
    ax.plot(xs, true_mean(xs), color="black", lw=1.2, label=r"true mean $\sin 2x$")
    for sign in (-1, 1):
        ax.plot(xs, true_mean(xs) + sign * 2 * true_std(xs), color="black", lw=0.8, ls="--",
                label=r"true $\pm 2\sigma(x)$" if sign > 0 else None)
    ax.axvspan(*GAP, color="0.9", zorder=0)


def shade_no_data(ax, label=None) -> None:
    """Grey background where there are no training inputs: left, gap, right."""
    for lo, hi in ((x_grid.min().item(), 0.0), GAP, (4.0, x_grid.max().item())):
        ax.axvspan(lo, hi, color="0.93", zorder=0, label=label if lo == 4.0 else None)


# %% slideshow={"slide_type": "subslide"} tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
draw_truth(ax)
ax.text(sum(GAP) / 2, -1.55, "no data", ha="center", color="0.35")
ax.set(xlabel="input $x$", ylabel="target $y$", title="The toy problem: noise grows with $x$")
ax.legend(loc="upper left", ncol=3)
ax.set_ylim(-1.7, 1.9)
mbpo_lib.save_figure(fig, "01_toy_data")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The soft log-variance bounds
# <!-- slide
# $$
# \tilde v = \texttt{max} - \operatorname{softplus}(\texttt{max} - v_\mathrm{raw}), \qquad
# \log\sigma^2 = \texttt{min} + \operatorname{softplus}(\tilde v - \texttt{min})
# $$
#
# - Smooth: gradients never vanish abruptly, as with `clamp`
# -->
#
# The log-variance head is a linear layer: nothing stops its output. The bounds squash it into
# $(\texttt{min}, \texttt{max})$ smoothly, in two steps (Chua et al. 2018, kept by MBPO):
#
# $$
# \tilde v = \texttt{max} - \operatorname{softplus}(\texttt{max} - v_\mathrm{raw}), \qquad
# \log\sigma^2 = \texttt{min} + \operatorname{softplus}(\tilde v - \texttt{min}),
# $$
#
# with $\operatorname{softplus}(u) = \log(1 + e^u)$. Far below the ceiling the first step is
# the identity, far above the floor the second is; in between they bend the output smoothly
# onto the bound, so gradients never vanish abruptly as with a hard `clamp`.

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Both bounds are **trained**, from $(-10, 0.5)$; a 0.01 penalty pulls them together
# -->
# - `max_logvar` starts at $+0.5$ and `min_logvar` at $-10$ (per output dimension), and both are
#   **trained**; the penalty $0.01\,(\sum \texttt{max} - \sum \texttt{min})$ pulls them towards
#   each other, the data push them apart where the noise really is large or small.
# - The floor is applied last, so it can lift the top a little above `max`: by at most
#   $\log(1 + e^{\texttt{min} - \texttt{max}})$, about $3\cdot 10^{-5}$ at the initial bounds.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## From scratch: a tiny probabilistic MLP
# <!-- slide
# - Two hidden layers of 64 SiLU units, a mean head, a log-variance head
# - The soft bounds as trainable parameters; `bounded=False` skips them
# -->
#
# Two hidden layers of 64 SiLU units (MBPO uses four of 200), a mean head and a log-variance
# head. The raw log-variance passes through the soft bounds above, both trainable parameters.
# The flag `bounded=False` skips them; we need it later to see what they prevent.
#
# The weights start from `nn.Linear`'s default initialisation; notebook 02 switches to the
# paper's (a truncated normal with standard deviation $1/(2\sqrt{\text{fan-in}})$).

# %% slideshow={"slide_type": "fragment"}
class ProbabilisticMLP(nn.Module):
    """z [B, 1] -> (mean [B, 1], logvar [B, 1])."""

    def __init__(self, hidden: int = 64, bounded: bool = True) -> None:
        super().__init__()
        self.hidden1, self.hidden2 = nn.Linear(1, hidden), nn.Linear(hidden, hidden)
        self.mean_head, self.logvar_head = nn.Linear(hidden, 1), nn.Linear(hidden, 1)
        self.max_logvar = nn.Parameter(torch.tensor([0.5]))
        self.min_logvar = nn.Parameter(torch.tensor([-10.0]))
        self.bounded = bounded

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.silu(self.hidden2(F.silu(self.hidden1(z))))
        logvar = self.logvar_head(h)
        if self.bounded:
            logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)  # soft ceiling
            logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)  # soft floor
        return self.mean_head(h), logvar


# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Objective: mean $\ell$ + $0.01\,(\texttt{max} - \texttt{min})$ + weight decay
# - The MSE model: the same network on $(\mu - y)^2$
# -->
# The training objective, as in the paper: the mean of $\ell = 2\,\mathcal L_\mathrm{NLL} -
# \log 2\pi$, plus $0.01\,(\texttt{max\_logvar} - \texttt{min\_logvar})$ which keeps the
# bounds from drifting apart, plus an L2 weight decay per layer (the paper's coefficients grow
# from $2.5\cdot10^{-5}$ at the input to $10^{-4}$ at the output; biases are not decayed). The
# MSE model is the same network trained on $(\mu - y)^2$ alone; its log-variance head is unused.

# %% slideshow={"slide_type": "fragment"}
WEIGHT_DECAYS = (2.5e-5, 5e-5, 1e-4)  # hidden1, hidden2, heads: the paper's first, second, last


def nll(mean, logvar, y):
    """-log N(y; mean, exp(logvar)), elementwise."""
    return 0.5 * ((y - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


def weight_decay(model):
    layers = [(model.hidden1, 0), (model.hidden2, 1), (model.mean_head, 2), (model.logvar_head, 2)]
    return sum(WEIGHT_DECAYS[i] * 0.5 * (layer.weight**2).sum() for layer, i in layers)


# %% slideshow={"slide_type": "fragment"}
def nll_objective(model, z, y, bound_coef=0.01):
    mean, logvar = model(z)
    loss = (2 * nll(mean, logvar, y) - math.log(2 * math.pi)).mean() + weight_decay(model)
    if model.bounded:
        loss = loss + bound_coef * (model.max_logvar.sum() - model.min_logvar.sum())
    return loss


def mse_objective(model, z, y):
    return ((model(z)[0] - y) ** 2).mean() + weight_decay(model)


# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Adam, full batch, the same seeded weights for every model
# -->
# Training: Adam on the full batch of 300 points (MBPO uses minibatches of 256 per member; a
# toy this small does not need them), on the CPU whatever `device` says: a network this small
# gains nothing from a GPU. Every model starts from the same seeded weights.

# %% slideshow={"slide_type": "fragment"}
STEPS = 2000 if FAST else 5000
LR = 3e-3


def train(model, objective, steps=STEPS):
    """Full-batch Adam on (z_train, y_train); returns the loss after each step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for _ in range(steps):
        loss = objective(model, z_train, y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# %% slideshow={"slide_type": "-"}
def make_model(bounded: bool = True, seed: int = 0) -> ProbabilisticMLP:
    torch.manual_seed(seed)  # nn.Linear draws its initial weights from the global generator
    return ProbabilisticMLP(bounded=bounded)


# %% slideshow={"slide_type": "subslide"}
nll_model, mse_model = make_model(), make_model()
nll_losses = train(nll_model, nll_objective)
mse_losses = train(mse_model, mse_objective)
print(f"{STEPS} steps | NLL model: loss {nll_losses[-1]:.3f} | MSE model: loss {mse_losses[-1]:.4f}")

with torch.no_grad():
    nll_mean, nll_logvar = nll_model(z_grid)
    mse_mean = mse_model(z_grid)[0]
    mse_rms = (mse_model(z_train)[0] - y_train).pow(2).mean().sqrt()  # the one σ MSE implies
nll_std = torch.exp(0.5 * nll_logvar)

# %% [markdown] slideshow={"slide_type": "subslide"}
# Both fit the mean. Only the NLL model knows how noisy each region is: the MSE fit implies one
# noise level for all inputs, its root-mean-square residual.

# %% slideshow={"slide_type": "fragment"}
print(" x     true σ   NLL σ    MSE rms  | true mean  NLL mean  MSE mean")
for x_probe in (0.25, 1.0, 3.0, 3.75, 4.0):
    i = torch.argmin((x_grid - x_probe).abs())
    print(f"{x_probe:4.2f}   {true_std(x_grid[i]).item():.3f}    {nll_std[i].item():.3f}    "
          f"{mse_rms:.3f}    |  {true_mean(x_grid[i]).item():6.3f}    {nll_mean[i].item():6.3f}"
          f"    {mse_mean[i].item():6.3f}")

ratio = nll_std[in_data & (x_grid > 3.5)].mean() / nll_std[in_data & (x_grid < 0.5)].mean()
assert ratio > 3, f"the NLL model should see the noise grow with x (ratio {ratio:.1f})"
assert (nll_mean - mse_mean)[in_data].abs().max() < 0.15, "both models should fit the mean on the data"

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.9), gridspec_kw={"width_ratios": [3, 2]})
draw_truth(left)
view = ((x_grid >= -0.3) & (x_grid <= 4.3)).squeeze(1)
xv = x_grid[view].squeeze(1)
band = (nll_mean[view] - 2 * nll_std[view], nll_mean[view] + 2 * nll_std[view])
left.fill_between(xv, band[0].squeeze(1), band[1].squeeze(1), color="C0", alpha=0.25,
                  label=r"NLL $\mu \pm 2\sigma$")
left.plot(xv, nll_mean[view], color="C0", lw=2, label=r"NLL $\mu$, $\sigma$")
left.plot(xv, mse_mean[view], color="C1", lw=2, ls="-.", label="MSE (rms residual)")
left.set(xlabel="input $x$", ylabel="target $y$", ylim=(-1.7, 2.1), title="Fits")
right.plot(xv, true_std(xv), color="black", ls="--")
right.plot(xv, nll_std[view], color="C0", lw=2)
right.axhline(mse_rms, color="C1", ls="-.", lw=2)
right.axvspan(*GAP, color="0.9", zorder=0)
right.set(xlabel="input $x$", ylabel="noise std", ylim=(0, None), title="Noise level")
fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3)
fig.subplots_adjust(bottom=0.3, wspace=0.3)
mbpo_lib.save_figure(fig, "01_nll_vs_mse")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - The NLL band widens with $x$, as the truth does
# - MSE: one noise level, too wide left, too narrow right
# - In the gap $\sigma$ only interpolates
# -->
# - The NLL model's band widens with $x$ as the true one does; the MSE fit gives a curve and,
#   at best, one noise level for every input: too wide on the left, too narrow on the right.
# - A model step in MBPO samples from the band: with the MSE fit there would be no band to
#   sample from, and with one global $\sigma$ the rollouts would be too noisy in calm regions
#   and too calm at the contacts.
# - In the gap (grey) the NLL model's $\sigma$ only interpolates between the two sides. We
#   come back to that.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The hardened version: `GaussianEnsemble` with $E = 1$
# <!-- slide
# - $E$ networks as one: `EnsembleLinear` weights `[E, in, out]`, one batched multiply
# - Our weights copied in; float64 agreement to ~1e-7
# -->
#
# `mbpo_lib.GaussianEnsemble(in_dim, out_dim, ensemble_size=E, ...)` holds $E$ such networks
# as one: each layer is an `EnsembleLinear` with weight `[E, in, out]` and bias `[E, 1, out]`,
# applied to all members with one batched matrix multiply. Two layout details when we copy our
# weights into it:
#
# - `nn.Linear` stores `weight` as `[out, in]` and computes $x W^\top$; `EnsembleLinear` stores
#   `[E, in, out]` and computes $x W$: member 0's weight is our `weight.T`;
# - the library has **one** output layer of width $2 \cdot \text{out}$, split into mean and raw
#   log-variance (mean first): our two heads, stacked.
#
# We compare in float64, so that agreement to ~1e-7 means the same computation, not luck.

# %% slideshow={"slide_type": "subslide"}
scratch64 = copy.deepcopy(nll_model).double()
model = mbpo_lib.GaussianEnsemble(1, 1, ensemble_size=1, hidden_dim=64, num_layers=2,
                                  weight_decays=WEIGHT_DECAYS, generator=generator).double()
print(model.layers)

pairs = [(scratch64.hidden1.weight, scratch64.hidden1.bias),
         (scratch64.hidden2.weight, scratch64.hidden2.bias),
         (torch.cat([scratch64.mean_head.weight, scratch64.logvar_head.weight]),
          torch.cat([scratch64.mean_head.bias, scratch64.logvar_head.bias]))]
with torch.no_grad():
    for layer, (weight, bias) in zip(model.layers, pairs, strict=True):
        layer.weight[0] = weight.T  # [out, in] -> [in, out]
        layer.bias[0, 0] = bias
    model.max_logvar.copy_(scratch64.max_logvar)
    model.min_logvar.copy_(scratch64.min_logvar)

# %% slideshow={"slide_type": "fragment"}
z64 = z_grid.double()
lib_mean, lib_logvar = model(z64)  # [E=1, B, 1] each
ref_mean, ref_logvar = scratch64(z64)
torch.testing.assert_close(lib_mean[0], ref_mean)
torch.testing.assert_close(lib_logvar[0], ref_logvar)
print("GaussianEnsemble(E=1) = the from-scratch model, mean and log-variance, on", len(z64), "inputs")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The losses on the training data, against an outside reference where there is one:
#
# - `mbpo_lib.gaussian_nll` against `torch.distributions.Normal(mean, std).log_prob`;
# - `GaussianEnsemble.member_losses` (the paper's per-member loss) against $2\,\mathrm{NLL} -
#   \log 2\pi$, averaged;
# - `model.loss` (members' losses + `bound_penalty()` + `weight_decay_loss()`) against our
#   from-scratch objective.

# %% slideshow={"slide_type": "fragment"}
z_train64, y_train64 = z_train.double(), y_train.double()
mean, logvar = model(z_train64)
reference = -torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(y_train64)
torch.testing.assert_close(mbpo_lib.gaussian_nll(mean, logvar, y_train64), reference)

paper = model.member_losses(mean, logvar, y_train64)  # [E]
torch.testing.assert_close(paper, (2 * reference - math.log(2 * math.pi)).mean(dim=(1, 2)))
torch.testing.assert_close(model.loss(z_train64, y_train64),
                           nll_objective(scratch64, z_train64, y_train64))
print(f"NLL, paper loss ({paper.item():.3f}) and full objective agree; bound penalty "
      f"{model.bound_penalty().item():.4f}, weight decay {model.weight_decay_loss().item():.2e}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The soft log-variance bounds, checked
#
# The library's `bound_logvar` on raw values from $-30$ to $30$, at the initial bounds: it never
# goes below the floor, and lifts the top above `max_logvar` by at most the amount above.

# %% slideshow={"slide_type": "fragment"}
fresh = mbpo_lib.GaussianEnsemble(1, 1, ensemble_size=1, hidden_dim=8, num_layers=1,
                                  weight_decays=(0.0, 0.0), generator=generator).double()
raw = torch.linspace(-30.0, 30.0, 601, dtype=torch.float64).unsqueeze(1)
with torch.no_grad():
    bounded_logvar = fresh.bound_logvar(raw)
overshoot = torch.log1p(torch.exp(fresh.min_logvar - fresh.max_logvar))
assert (bounded_logvar >= fresh.min_logvar).all()
assert (bounded_logvar <= fresh.max_logvar + overshoot).all()
torch.testing.assert_close(bounded_logvar[-1], fresh.max_logvar + overshoot)  # raw = +30: the very top
print(f"bounded log-variance in [{bounded_logvar.min().item():.4f}, {bounded_logvar.max().item():.6f}]; "
      f"largest possible lift above max: {overshoot.item():.2e}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### What the bounds prevent
# <!-- slide
# - On the data the NLL keeps $\log\sigma^2$ honest; **off the data nothing does**
# - A SiLU network is almost linear far away: $\sigma^2 = e^{\log\sigma^2}$ explodes or collapses
# - The same training with and without the bounds
# -->
#
# On the training data, the NLL keeps the log-variance honest: it is pulled to the observed
# noise level. **Off the data nothing does.** A SiLU network is almost linear far from its
# data, so the raw log-variance keeps rising or falling with the distance, and $\sigma^2 =
# e^{\log\sigma^2}$ turns that into an *exponential* blow-up or collapse. A model rollout that
# wanders off the data would then sample steps of enormous size, or assign near-zero variance,
# and so a huge NLL and gradient, to the first real data that arrive there.
#
# The experiment: the same network, the same seed, the same data and the same training, once
# with the bounds (our NLL model above) and once without.

# %% slideshow={"slide_type": "fragment"}
free_model = make_model(bounded=False)
free_losses = train(free_model, nll_objective)
with torch.no_grad():
    free_mean, free_logvar = free_model(z_grid)
learned_min, learned_max = nll_model.min_logvar.item(), nll_model.max_logvar.item()
print(f"final training loss: with bounds {nll_losses[-1]:.3f}, without {free_losses[-1]:.3f}")
print(f"learned bounds: min_logvar -10 -> {learned_min:.2f}, max_logvar 0.5 -> {learned_max:.2f}")

# %% slideshow={"slide_type": "fragment"}
for name, logvar in (("with bounds", nll_logvar), ("without", free_logvar)):
    lo, hi = logvar[outside].min().item(), logvar[outside].max().item()
    print(f"{name:12s} on the data: logvar in [{logvar[in_data].min():6.2f}, "
          f"{logvar[in_data].max():6.2f}] | off the data: [{lo:7.2f}, {hi:6.2f}] "
          f"-> σ from {math.exp(lo / 2):.1e} to {math.exp(hi / 2):.1e}")


# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Bounded: inside its learned bounds; unbounded: off by more than 3
# -->
# The checks: the bounded model stays inside its learned bounds (plus the floor's lift, which
# grows as the bounds close in), and the unbounded one leaves the range of log-variances it
# predicts on the data by more than 3, a factor $e^3 \approx 20$ in variance.

# %% slideshow={"slide_type": "fragment"}
def escape(logvar):
    """How far the log-variance off the data leaves its own range on the data."""
    on, off = logvar[in_data], logvar[outside]
    return max((on.min() - off.min()).item(), (off.max() - on.max()).item(), 0.0)


print(f"leaves its on-data range by: {escape(nll_logvar):.2f} with bounds, "
      f"{escape(free_logvar):.2f} without")
lift = math.log1p(math.exp(learned_min - learned_max))  # the floor's lift at the learned bounds
print(f"with the learned bounds the top may be lifted by up to {lift:.1e}")
assert (nll_logvar <= learned_max + lift + 1e-5).all()  # 1e-5: float32 rounding
assert (nll_logvar >= learned_min).all()
assert escape(free_logvar) > 3, "without bounds the log-variance should run far off the data's range"

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.9), gridspec_kw={"width_ratios": [2, 3]})
left.plot(raw, raw, color="0.6", ls=":")
left.plot(raw, bounded_logvar, color="C0", lw=2)
left.axhline(fresh.max_logvar.item(), color="C3", ls="--", lw=1)
left.axhline(fresh.min_logvar.item(), color="C2", ls="--", lw=1)
left.set(xlabel="raw head output", ylabel=r"$\log\sigma^2$ used",
         ylim=(-16, 6), xlim=(-20, 10), title="At the initial bounds")
shade_no_data(right, label="no data")
right.plot(x_grid, torch.log(true_std(x_grid) ** 2), color="black", ls="--", label="true")
right.plot(x_grid, free_logvar, color="C1", lw=2, label="no bounds")
right.plot(x_grid, nll_logvar, color="C0", lw=2, label="soft bounds")
right.axhline(learned_max, color="C3", ls="--", lw=1, label="max_logvar")
right.axhline(learned_min, color="C2", ls="--", lw=1, label="min_logvar")
right.set(xlabel="input $x$", ylabel=r"predicted $\log\sigma^2$", title="Trained: on and off the data")
fig.legend(*right.get_legend_handles_labels(), loc="lower center", ncol=3)
fig.subplots_adjust(bottom=0.32, wspace=0.3)
mbpo_lib.save_figure(fig, "01_logvar_bounds")
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - The failure is **invisible in the training loss**
# - Off the data the unbounded $\log\sigma^2$ runs off linearly
# - With bounds it flattens on the learned `max`, `min`
# -->
# - On the data the two models agree and their training losses are nearly the same: the
#   failure is **invisible in the training loss**.
# - Off the data the unbounded log-variance runs off almost linearly, down on the calm side
#   and (in this run) up on the noisy side. Every unit of $\log\sigma^2$ is a factor
#   $e \approx 2.7$ in the variance, so the printout above spans orders of magnitude of
#   $\sigma$: near-certainty on one side, steps far larger than any real one on the other.
# - With the bounds the log-variance flattens out on the learned `max_logvar` and
#   `min_logvar`, which training moved from $(-10, 0.5)$ to about the range the data show.
#   As the bounds close in, the floor's lift above `max` grows (printed above), still small.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### The price: a ceiling below the noisiest data
# <!-- slide
# - At the noisy end the learned ceiling is active: $\sigma$ held below the truth
# -->
#
# Training pulled `max_logvar` far below its start (printed above). At the noisy right end the
# learned ceiling is active, so the predicted $\sigma$ there is held below the true one.

# %% slideshow={"slide_type": "fragment"}
i4 = torch.argmin((x_grid - 4.0).abs())
print(f"at x = 4: true σ {true_std(x_grid[i4]).item():.3f}, predicted σ {nll_std[i4].item():.3f}, "
      f"ceiling exp(max_logvar / 2) = {math.exp(learned_max / 2):.3f}")
data_term = (2 * nll(*nll_model(z_train), y_train) - math.log(2 * math.pi)).mean()
(data_push,) = torch.autograd.grad(data_term, nll_model.max_logvar)
print(f"gradient on max_logvar at the end: data {data_push.item():+.4f}, bound penalty +0.0100")

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - The penalty pulls `max_logvar` down at a constant 0.01
# - Only the rows at the ceiling push it up: it settles below the truth
# -->
# Why the ceiling settles below the truth:
#
# - The penalty $0.01\,(\texttt{max} - \texttt{min})$ pulls `max_logvar` down with a constant
#   gradient of $0.01$, whatever the data.
# - The data push it up only through the rows where the ceiling is active, and the loss is a
#   mean over all 300 rows, so that push is diluted. It grows as the ceiling cuts deeper
#   into the noise.
# - Training stops where the two balance: the printed gradients nearly cancel, with the
#   ceiling's $\sigma$ below the noisiest data's.

# %% slideshow={"slide_type": "subslide"}
loose_model = make_model()
train(loose_model, lambda model, z, y: nll_objective(model, z, y, bound_coef=0.0))
with torch.no_grad():
    loose_std = torch.exp(0.5 * loose_model(z_grid)[1])
print(f"bound penalty 0:    max_logvar {loose_model.max_logvar.item():5.2f}, σ at x = 4 "
      f"{loose_std[i4].item():.3f} (true {true_std(x_grid[i4]).item():.3f})")
print(f"bound penalty 0.01: max_logvar {learned_max:5.2f}, σ at x = 4 {nll_std[i4].item():.3f}")

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - Without the penalty the data alone set $\sigma$ there
# - The penalty trades this bias for bounds close to the data's range
# -->
# Without the penalty the ceiling is not pulled down and $\sigma$ at the noisy end is set by
# the data alone (compare the two lines above). The penalty trades this bias on the noisiest
# data for bounds that sit close to the data's range, which is what limits $\sigma$ off the
# data. The bounded model cannot claim more noise than its ceiling, nor less than its floor.

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes: ask first what a linear head does far from the data (it keeps going), then
# what exponentiating a straight line does. The unbounded curve is not a bug of this seed: a
# SiLU network is asymptotically linear, so its log-variance off the data is whatever slope
# training happened to leave. In MBPO the inputs are normalised states and actions, and model
# rollouts can drift away from the data; an exploding variance there produces a huge sampled
# Δs, then an even stranger next state, and so on. Point out that the bounds are
# trained: Adam moves them by up to about the learning rate per step, whatever the 0.01 coefficient.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## One model is overconfident away from its data
# <!-- slide
# - The NLL learns the noise **in the data** (aleatoric)
# - Nothing asks $\sigma$ to grow where data are missing (epistemic)
# - Test: the true mean inside $\mu \pm 2\sigma$?
# -->
#
# The bounds keep $\sigma$ finite; they do not make it *right*. The NLL teaches the model the
# noise **in the data** (aleatoric uncertainty). It has no term for "I have never seen an input
# like this" (epistemic uncertainty): nothing in the loss asks $\sigma$ to grow in the gap or
# beyond $[0, 4]$. Test: how often is the true mean inside the model's $\mu \pm 2\sigma$, and
# how large is the error of $\mu$ in units of $\sigma$?

# %% slideshow={"slide_type": "fragment"}
z_score = (nll_mean - true_mean(x_grid)).abs() / nll_std  # error of the mean in units of σ
print("region           inside ±2σ   median |μ - f|/σ   mean σ   mean |μ - f|")
regions = {"on the data": in_data, "in the gap": in_gap,
           "left of the data": x_grid < 0, "right of the data": x_grid > 4}
for name, mask in regions.items():
    print(f"{name:17s} {(z_score[mask] < 2).float().mean().item():8.0%}   "
          f"{z_score[mask].median().item():14.2f}   {nll_std[mask].mean().item():7.3f}"
          f"   {(nll_mean - true_mean(x_grid)).abs()[mask].mean().item():9.3f}")

gap_edges = nll_std[(x_grid - GAP[0]).abs().argmin()], nll_std[(x_grid - GAP[1]).abs().argmin()]
assert nll_std[in_gap].max() <= 1.05 * max(gap_edges), "σ in the gap should not exceed its edges"
assert (z_score[outside] > 2).float().mean() > 0.5, "off the data the mean should miss by > 2σ"

# %% [markdown] slideshow={"slide_type": "subslide"}
# Epistemic uncertainty shows up as **disagreement**: train the same network again from other
# random initial weights and compare. `GaussianEnsemble(E=3)` trains three of them at once
# (all on the same data here; notebook 02 adds a bootstrap sample per member).

# %% slideshow={"slide_type": "fragment"}
trio = mbpo_lib.GaussianEnsemble(1, 1, ensemble_size=3, hidden_dim=64, num_layers=2,
                                 weight_decays=WEIGHT_DECAYS, generator=torch.Generator().manual_seed(2))
optimizer = torch.optim.Adam(trio.parameters(), lr=LR)
for _ in range(STEPS):
    loss = trio.loss(z_train, y_train)  # [B, in] is shared by the 3 members
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    trio_mean = trio(z_grid)[0]  # the means, [3, B, 1]
spread = trio_mean.std(dim=0)  # disagreement between the members
trio_error = (trio_mean.mean(dim=0) - true_mean(x_grid)).abs()  # error of the members' average
for name, mask in regions.items():
    print(f"{name:17s} member spread {spread[mask].mean():.3f}   error of their mean "
          f"{trio_error[mask].mean():.3f}")
assert spread[outside].mean() > 5 * spread[in_data].mean(), "members should disagree off the data"

# %% slideshow={"slide_type": "slide"} tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.2), sharey=True)
for ax in (left, right):
    shade_no_data(ax)
    ax.scatter(x_train, y_train, s=5, color="0.55", alpha=0.5)
    ax.plot(x_grid, true_mean(x_grid), color="black", lw=1.2, label="true mean")
xs, m, s = x_grid.squeeze(1), nll_mean.squeeze(1), nll_std.squeeze(1)
left.fill_between(xs, m - 2 * s, m + 2 * s, color="C0", alpha=0.3, label=r"$\mu \pm 2\sigma$")
left.plot(xs, m, color="C0", lw=2, label=r"$\mu$")
left.set(xlabel="input $x$ (grey: no data)", ylabel="target $y$", ylim=(-4, 3), title="One model")
for e in range(3):
    right.plot(xs, trio_mean[e, :, 0], lw=1.8, color=f"C{e + 1}", label=f"member {e + 1}")
right.set(xlabel="input $x$ (grey: no data)", title="Three initialisations")
left.legend(loc="lower left")
right.legend(loc="lower left")
mbpo_lib.save_figure(fig, "01_overconfidence")
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# - Off the data: wrong by tens of $\sigma$, **overconfident**
# - Networks that agree on the data disagree off it, on average
# -->
# - Left of the data the single model keeps the calm side's tiny $\sigma$ while its mean
#   drifts away from the truth: wrong by tens of $\sigma$. Right of the data $\sigma$ stays at
#   the noisiest level it has seen (the ceiling), and the mean still leaves its band. The
#   model is **overconfident**: its $\sigma$ describes the noise of nearby data, not its own
#   ignorance.
# - In the gap, $\sigma$ only interpolates the noise of the two sides. The mean happens to
#   interpolate the smooth sine well here; $\sigma$ would not have warned us if it had not.
# - Networks that agree on the data disagree away from it, on average: the spread off the data
#   is several times the spread on it (the check above). It measures what the model does
#   *not know*, which one network cannot report.

# %% [markdown] slideshow={"slide_type": "fragment"}
# <!-- slide
# - **Not always**: left of the data they agree and are wrong together
# - MBPO: an **ensemble** of 7, 5 used (notebook 02)
# -->
# **Not always.** Compare the two columns of the printout region by region. Left of the data
# the members' spread is small next to the error of their mean: they agree and are wrong
# together, because every initialisation found the same smooth extrapolation. Disagreement
# flags missing data often, not always.
#
# MBPO's model is therefore an **ensemble** of such networks (7, of which the 5 best are used),
# each trained on its own bootstrap sample: notebook 02.

# %% [markdown] slideshow={"slide_type": "notes"}
# Speaker notes: the table before the figure is the argument in numbers. On the data the true
# mean lies inside ±2σ everywhere; left of the data almost never, with σ at its smallest. Ask:
# what would a policy trained on model rollouts through such regions learn? It would trust the
# model exactly where the model is wrong (model exploitation). The right panel is the cure in
# one picture; notebook 02 turns the disagreement into a number. If asked why the members
# agree in the gap: the sine is smooth there and any reasonable fit bridges it the same way.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
# <!-- slide
# - A Gaussian over $(r, \Delta s)$; rollouts sample from it
# - NLL: errors weighted by $1/\sigma^2$; noise that depends on the input
# - Soft, trained bounds keep $\sigma$ finite off the data
# - One model is confidently wrong off its data: an ensemble
# -->
#
# - MBPO's model predicts a Gaussian over $(r, \Delta s)$ from normalised $(s, a)$. On the
#   deterministic MuJoCo tasks $\sigma$ stands for the error the model cannot resolve, and model
#   rollouts sample from it.
# - The Gaussian NLL weights each error by $1/\sigma^2$ and drives $\sigma^2$ to the local
#   squared error, so it learns input-dependent noise that an MSE fit cannot express; the
#   paper's loss is $2\,\mathrm{NLL} - \log 2\pi$, averaged.
# - Soft, trained log-variance bounds keep $\log\sigma^2$ inside $(\texttt{min}, \texttt{max})$
#   (up to a lift of $\log(1 + e^{\texttt{min} - \texttt{max}})$); without them the
#   log-variance runs off linearly away from the data, and $\sigma$ explodes or collapses.
#   The 0.01 penalty holds the learned ceiling below the noisiest data.
# - `GaussianEnsemble(E=1)` is the from-scratch model, checked to float64 precision, with the
#   NLL checked against `torch.distributions.Normal`.
# - One model only knows the noise in its data: away from the data it is confidently wrong.
#   Several models disagree there, often but not always. That is why MBPO uses an ensemble.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Exercises
# <!-- slide
# 1. Fix the log-variance at $c$: how do the fits compare with MSE?
# -->
#
# 1. **MSE is the NLL at a fixed noise level.** Subclass `ProbabilisticMLP` so that `forward`
#    returns `torch.full_like(mean, c)` as the log-variance, and train it with `nll_objective`
#    for $c = 0$ and $c = 2$. How do the fits compare with the MSE model?
#
# <details><summary>Solution</summary>
#
# The objective becomes $e^{-c}\,\mathrm{MSE} + c$ plus the regularisers. With $c = 0$ it
# reproduces the MSE model exactly (same seed, same gradients for the network). With $c = 2$
# the fit on the data is nearly the same, because Adam divides out the scale of the gradient;
# off the data the two fits may differ more.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 2. Show the NLL is smallest at $\sigma^2 = \mathbb E[(y - \mu)^2]$
# -->
# 2. **Where does the variance settle?** Using the gradient with respect to $\log\sigma^2$,
#    show that for a fixed $\mu$ the NLL is smallest at $\sigma^2 = \mathbb E[(y - \mu)^2]$.
#    Then compare the model's $\sigma$ with the rms residual of the training data in bins of
#    width 0.5.
#
# <details><summary>Solution</summary>
#
# The gradient $\frac12[1 - (y - \mu)^2/\sigma^2]$ averages to zero at
# $\sigma^2 = \mathbb E[(y - \mu)^2]$. The model's $\sigma$ and the binned rms residual agree
# closely in every bin with data, small on the left and large on the right (except where the
# learned ceiling cuts in); both can differ from the true $\sigma(x)$: the model learns the
# noise of its sample.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 3. `max_logvar` starting at $-6$: the band, and the bound?
# -->
# 3. **A ceiling set too low.** Initialise `max_logvar` at $-6$ ($\sigma \le 0.05$) in
#    `ProbabilisticMLP` and rerun the training. What happens to the band and to `max_logvar`?
#
# <details><summary>Solution</summary>
#
# The right-hand band is held too narrow and the loss is worse. `max_logvar` climbs, pushed up
# by the noisy points against the 0.01 penalty, but slowly. The bounds must be trainable and
# should start generous, as the paper's $+0.5$ does.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# <!-- slide
# 4. `N_DATA = 900`: what changes on and off the data?
# -->
# 4. **More data, same overconfidence.** Set `N_DATA = 900` and rerun. What changes on and off
#    the data?
#
# <details><summary>Solution</summary>
#
# $\sigma$ on the data comes closer to the truth, but the error of the mean outside $[0, 4]$
# is still many times $\sigma$: more data where we already have data teaches the model nothing
# about the rest.
#
# </details>

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Code exercises, checked
# <!-- slide
# - Fill in each cell marked ✏️, run it, then its check cell
# - **A.** `my_nll(mean, logvar, y)`, elementwise
# -->
#
# Fill in each cell marked **✏️ YOUR ANSWER**, run it, then run the check cell below it. The
# checker compares your function with the library on inputs of its own and says what is wrong
# (a shape, a factor, an order, a hint); it never prints the answer. Reference solutions close
# the notebook.
#
# **A. The Gaussian NLL.** Write `my_nll(mean, logvar, y)`: $-\log\mathcal N(y; \mu, \sigma^2)$
# with $\sigma^2 = e^{\texttt{logvar}}$, elementwise (same shape as its inputs).

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise A): replace `raise NotImplementedError` with your code.
def my_nll(mean: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_gaussian_nll(my_nll)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **B. The soft bounds.** Write `my_soft_bound(raw, max_logvar, min_logvar)`: the soft ceiling,
# then the soft floor, as in the formula of this notebook.

# %% slideshow={"slide_type": "fragment"}
# ✏️ YOUR ANSWER (exercise B): replace `raise NotImplementedError` with your code.
def my_soft_bound(raw: torch.Tensor, max_logvar: float, min_logvar: float) -> torch.Tensor:
    raise NotImplementedError


# %% slideshow={"slide_type": "fragment"}
mbpo_lib.exercises.check_soft_bound(my_soft_bound)

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
def reference_nll(mean, logvar, y):
    return 0.5 * ((y - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


feedback = mbpo_lib.exercises.check_gaussian_nll(reference_nll)
assert feedback.ok, feedback
feedback

# %% slideshow={"slide_type": "fragment"} tags=["solution"] jupyter={"source_hidden": true}
def reference_soft_bound(raw, max_logvar, min_logvar):
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)


feedback = mbpo_lib.exercises.check_soft_bound(reference_soft_bound)
assert feedback.ok, feedback
feedback
