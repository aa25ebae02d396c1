r"""How long may a model rollout be? The rollout-length theory of MBPO as plain functions.

Notation (the series' table in notebook 00): per-step model error :math:`\varepsilon_m`, policy
shift :math:`\varepsilon_\pi` (total-variation distance between the data-collecting policy and
the current one), discount :math:`\gamma`, largest reward :math:`r_{\max}`, rollout length
:math:`k`, true return :math:`\eta[\pi]`, return under the model :math:`\hat\eta[\pi]`.

Everything here is a pure function on numbers (floats or NumPy arrays broadcast elementwise),
except :func:`multistep_error`, which measures a trained :class:`~mbpo_lib.DynamicsModel`
against real trajectories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

ArrayLike = float | np.ndarray


def _check_gamma(gamma: float) -> None:
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")


def _check_nonnegative(**values: ArrayLike) -> None:
    for name, value in values.items():
        if np.any(np.asarray(value) < 0):
            raise ValueError(f"{name} must be >= 0, got {value}")


# --- compounding error of an open-loop model rollout ------------------------------------------

def linear_compounding_error(eps: ArrayLike, k: ArrayLike) -> ArrayLike:
    r"""The linear reading of compounding error: :math:`e_k = k\,\varepsilon`.

    Each step adds the one-step error and nothing amplifies old errors (a model whose
    Lipschitz constant is exactly 1). "5 % a step, 15 steps: 75 %" is this formula.
    """
    _check_nonnegative(eps=eps, k=k)
    return np.asarray(k) * eps


def geometric_compounding_error(eps: ArrayLike, lipschitz: float, k: ArrayLike) -> ArrayLike:
    r"""Compounding error when old errors are amplified by the model's Lipschitz constant L:

    .. math:: e_{t+1} \le L\,e_t + \varepsilon,\ e_0 = 0
              \;\Rightarrow\; e_k \le \varepsilon \sum_{j<k} L^j
              = \varepsilon\,\frac{L^k - 1}{L - 1}\quad (= k\varepsilon \text{ at } L = 1).

    With L > 1 the error grows geometrically; with L < 1 it levels off at ε / (1 − L).
    """
    _check_nonnegative(eps=eps, k=k, lipschitz=lipschitz)
    k = np.asarray(k, dtype=float)
    if math.isclose(lipschitz, 1.0):
        return k * eps
    return eps * (lipschitz ** k - 1.0) / (lipschitz - 1.0)


def discounted_linear_error(eps: ArrayLike, gamma: float) -> ArrayLike:
    r"""The discounted sum of a linearly growing TV error: :math:`\sum_{t\ge0}\gamma^t\,t\,\varepsilon
    = \gamma\varepsilon/(1-\gamma)^2`.

    A model whose one-step error is ε in total variation moves the state distribution of step t
    at most :math:`D_{TV}(d_t, \hat d_t) \le t\varepsilon` from the real one (a shared Markov
    kernel cannot increase a TV distance, so the per-step errors add). Weighted by the discount,
    these distances sum to this value, the :math:`(1-\gamma)^{-2}` of Theorem 4.1's model term.
    """
    _check_gamma(gamma)
    _check_nonnegative(eps=eps)
    return gamma * np.asarray(eps, dtype=float) / (1 - gamma) ** 2


# --- the bounds -------------------------------------------------------------------------------

def simplified_bound(eta_model: ArrayLike, eps_m: ArrayLike, k: ArrayLike, c: float = 1.0) -> ArrayLike:
    r"""The method guide's simplified reading: :math:`\eta[\pi] \ge \hat\eta[\pi] - C\,\varepsilon_m\,k`.

    It keeps only the model-error side of the trade-off, so it always prefers k = 0; the
    paper's branched bound (:func:`branched_bound_terms`) adds the side that falls with k.
    """
    _check_nonnegative(eps_m=eps_m, k=k, c=c)
    return eta_model - c * eps_m * np.asarray(k)


def full_model_bound_gap(gamma: float, r_max: float, eps_pi: ArrayLike, eps_m: ArrayLike) -> ArrayLike:
    r"""Theorem 4.1 of Janner et al. (2019), rollouts of the full horizon in the model:

    .. math:: \eta[\pi] \ge \hat\eta[\pi] - \Big[\frac{2\gamma r_{\max}(\varepsilon_m + 2\varepsilon_\pi)}
              {(1-\gamma)^2} + \frac{4 r_{\max}\varepsilon_\pi}{1-\gamma}\Big];

    returns the bracket (the gap). The model error carries a horizon factor 1/(1−γ)².
    """
    _check_gamma(gamma)
    _check_nonnegative(r_max=r_max, eps_pi=eps_pi, eps_m=eps_m)
    return 2 * gamma * r_max * (eps_m + 2 * eps_pi) / (1 - gamma) ** 2 + 4 * r_max * eps_pi / (1 - gamma)


@dataclass(frozen=True)
class BoundTerms:
    r"""The gap of Theorem 4.3 in two parts (the bound is
    :math:`\eta[\pi] \ge \eta^{\mathrm{branch}}[\pi] - \text{total}`).

    ``policy_shift``:
    :math:`2 r_{\max}[\gamma^{k+1}\varepsilon_\pi/(1-\gamma)^2 + \gamma^k\varepsilon_\pi/(1-\gamma)]`,
    the price of branching from states an older policy visited; it falls with k.
    ``model``: :math:`2 r_{\max} k\,\varepsilon_{m'}/(1-\gamma)`, the model's error over k steps; it
    rises with k. ``total`` is their sum.
    """

    policy_shift: ArrayLike
    model: ArrayLike

    @property
    def total(self) -> ArrayLike:
        return self.policy_shift + self.model


def branched_bound_terms(k: ArrayLike, gamma: float, r_max: float, eps_pi: float, eps_m: float
                         ) -> BoundTerms:
    r"""Theorem 4.3 of Janner et al. (2019), k-step rollouts branched from the data's states:

    .. math:: \eta[\pi] \ge \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
              \frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2} + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}
              + \frac{k}{1-\gamma}\,\varepsilon_{m'}\Big]

    where :math:`\varepsilon_{m'}` (``eps_m``) is the model error under the *current* policy,
    approximated in the paper by :math:`\varepsilon_m + \varepsilon_\pi\,d\varepsilon_{m'}/d\varepsilon_\pi`.
    """
    _check_gamma(gamma)
    _check_nonnegative(k=k, r_max=r_max, eps_pi=eps_pi, eps_m=eps_m)
    k = np.asarray(k, dtype=float)
    shift = 2 * r_max * (gamma ** (k + 1) * eps_pi / (1 - gamma) ** 2 + gamma ** k * eps_pi / (1 - gamma))
    return BoundTerms(policy_shift=shift, model=2 * r_max * k * eps_m / (1 - gamma))


def theorem_4_2_terms(k: ArrayLike, gamma: float, r_max: float, eps_pi: float, eps_m: float
                      ) -> BoundTerms:
    r"""Theorem 4.2 of Janner et al. (2019): the branched bound with the model error measured on
    the *data* policy's states, :math:`\varepsilon_m`:

    .. math:: \eta[\pi] \ge \eta^{\mathrm{branch}}[\pi] - 2 r_{\max}\Big[
              \frac{\gamma^{k+1}\varepsilon_\pi}{(1-\gamma)^2} + \frac{\gamma^{k}\varepsilon_\pi}{1-\gamma}
              + \frac{k}{1-\gamma}\,(\varepsilon_m + 2\varepsilon_\pi)\Big].

    One more step lowers the policy-shift side by :math:`2r_{\max}\gamma^k\varepsilon_\pi/(1-\gamma)`
    and raises the model side by :math:`2r_{\max}(\varepsilon_m + 2\varepsilon_\pi)/(1-\gamma)`, which
    is always more: the gap only grows with k, and the best k is 0 for every setting.
    """
    _check_gamma(gamma)
    _check_nonnegative(k=k, r_max=r_max, eps_pi=eps_pi, eps_m=eps_m)
    shift = branched_bound_terms(k, gamma, r_max, eps_pi, 0.0).policy_shift
    return BoundTerms(policy_shift=shift,
                      model=2 * r_max * np.asarray(k, dtype=float) * (eps_m + 2 * eps_pi) / (1 - gamma))


def relative_gap(k: ArrayLike, gamma: float, eps_pi: float, eps_m: float, theorem: str = "4.3"
                 ) -> ArrayLike:
    r"""The gap at k minus the gap at k = 0, in units of the largest return :math:`r_{\max}/(1-\gamma)`.

    For Theorem 4.3 (``eps_m`` is :math:`\varepsilon_{m'}`) this is
    :math:`2\,[\varepsilon_\pi(\gamma^k - 1)/(1-\gamma) + k\,\varepsilon_{m'}]`; for Theorem 4.2 the
    model error is :math:`\varepsilon_m + 2\varepsilon_\pi`. Negative values are where a rollout of
    length k has a smaller gap than no rollout; the minimum is at :func:`optimal_k`. ``r_max``
    drops out.
    """
    if theorem not in ("4.2", "4.3"):
        raise ValueError(f"theorem must be '4.2' or '4.3', got {theorem!r}")
    _check_gamma(gamma)
    terms = theorem_4_2_terms if theorem == "4.2" else branched_bound_terms
    at_k = terms(k, gamma, 1.0, eps_pi, eps_m).total
    at_0 = terms(0, gamma, 1.0, eps_pi, eps_m).total
    return (at_k - at_0) * (1 - gamma)


def model_error_under_new_policy(eps_m: ArrayLike, slope: ArrayLike, eps_pi: ArrayLike) -> ArrayLike:
    r"""The paper's linear approximation :math:`\varepsilon_{m'} \approx \varepsilon_m + s\,\varepsilon_\pi`,
    with the slope :math:`s = d\varepsilon_{m'}/d\varepsilon_\pi` measured on real data."""
    _check_nonnegative(eps_m=eps_m, slope=slope, eps_pi=eps_pi)
    return np.asarray(eps_m, dtype=float) + np.asarray(slope, dtype=float) * eps_pi


def optimal_k_continuous(gamma: float, eps_pi: float, eps_m: float) -> float:
    r"""The stationary point of Theorem 4.3's gap over real k >= 0.

    The gap is :math:`2 r_{\max}[A\gamma^k + Bk]` with :math:`A = \varepsilon_\pi/(1-\gamma)^2` (the two
    policy-shift terms combine: :math:`\gamma/(1-\gamma)^2 + 1/(1-\gamma) = 1/(1-\gamma)^2`) and
    :math:`B = \varepsilon_{m'}/(1-\gamma)`. Setting the derivative to zero,

    .. math:: \gamma^{k^*} = \rho := \frac{(1-\gamma)\,\varepsilon_{m'}}{\varepsilon_\pi\,\ln(1/\gamma)},
              \qquad k^* = \max(0,\ \ln\rho / \ln\gamma).

    ``r_max`` scales the whole gap and drops out. k* > 0 needs a model error small compared
    with the policy shift.
    """
    _check_gamma(gamma)
    _check_nonnegative(eps_pi=eps_pi, eps_m=eps_m)
    if eps_pi == 0:
        return 0.0
    if eps_m == 0:
        return math.inf
    ratio = (1 - gamma) * eps_m / (eps_pi * math.log(1 / gamma))
    return max(0.0, math.log(ratio) / math.log(gamma))


def optimal_k(gamma: float, eps_pi: float, eps_m: float, k_max: int = 10_000) -> int:
    r"""The integer k in [0, k_max] that minimises Theorem 4.3's gap (its k*).

    The gap is convex in k, so the best integer is the floor or the ceiling of
    :func:`optimal_k_continuous` (clipped to [0, k_max]); the smaller gap wins, and gaps equal
    to a relative 1e-9 (a tie up to rounding) go to the shorter rollout.
    """
    if not isinstance(k_max, int) or k_max < 0:
        raise ValueError(f"k_max must be an int >= 0, got {k_max!r}")
    k_real = min(optimal_k_continuous(gamma, eps_pi, eps_m), float(k_max))
    candidates = sorted({int(math.floor(k_real)), min(int(math.ceil(k_real)), k_max)})
    gaps = [float(branched_bound_terms(k, gamma, 1.0, eps_pi, eps_m).total) for k in candidates]
    if len(gaps) == 2 and gaps[1] < gaps[0] and not math.isclose(gaps[0], gaps[1], rel_tol=1e-9):
        return candidates[1]
    return candidates[0]   # the shorter rollout, also when the two gaps tie within rounding


def optimal_k_discrete(gamma: ArrayLike, eps_pi: ArrayLike, eps_m: ArrayLike) -> ArrayLike:
    r"""Theorem 4.3's best integer k in closed form, elementwise (no k_max).

    One more step changes the gap by :math:`2r_{\max}(\varepsilon_{m'} - \gamma^k\varepsilon_\pi)/(1-\gamma)`,
    which rises with k; the best k is the first one where it stops being negative,
    :math:`k^\star = \min\{k \ge 0 : \gamma^k\varepsilon_\pi \le \varepsilon_{m'}\}
    = \max\big(0, \lceil \ln(\varepsilon_{m'}/\varepsilon_\pi)/\ln\gamma \rceil\big)`.
    It depends on the ratio :math:`\varepsilon_{m'}/\varepsilon_\pi` and on γ only, and is 0
    exactly when :math:`\varepsilon_{m'} \ge \varepsilon_\pi`. ``inf`` where ``eps_m`` is 0 and
    ``eps_pi`` is not. Agrees with :func:`optimal_k` (up to a tie within rounding).
    """
    gamma, eps_pi, eps_m = (np.asarray(x, dtype=float) for x in (gamma, eps_pi, eps_m))
    if np.any((gamma <= 0) | (gamma >= 1)):
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    _check_nonnegative(eps_pi=eps_pi, eps_m=eps_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.log(eps_m / eps_pi) / np.log(gamma)
        k = np.ceil(steps - 1e-9 * np.maximum(1.0, np.abs(steps)))   # a tie goes to the shorter k
    k = np.where(eps_m >= eps_pi, 0.0, k)
    k = np.where((eps_m == 0) & (eps_pi > 0), np.inf, k)
    return np.maximum(k, 0.0)


# --- measured: the slope d eps_m' / d eps_pi and the growth of the k-step error ------------------

def gaussian_policy_divergence(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                               log_std_q: torch.Tensor, samples: int = 256,
                               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""KL and total-variation distance between two diagonal Gaussian policies, per state.

    ``mean_* , log_std_* [B, act_dim]`` are the pre-squash Gaussians of two tanh-Gaussian
    policies at the same B states. Both distances are unchanged by the tanh (an invertible map
    moves both densities alike), so they are the policies' own distances. Returns
    ``(kl [B], tv [B])``: :math:`D_{KL}(p\,\|\,q)` in closed form,
    :math:`\sum_j \log(\sigma_{q,j}/\sigma_{p,j})
    + (\sigma_{p,j}^2 + (\mu_{p,j}-\mu_{q,j})^2)/(2\sigma_{q,j}^2) - 1/2`;
    :math:`D_{TV}(p, q) = \mathbb{E}_{x\sim p}[\max(0, 1 - q(x)/p(x))]` by Monte Carlo with
    ``samples`` draws per state from ``generator``.
    """
    if not mean_p.shape == log_std_p.shape == mean_q.shape == log_std_q.shape or mean_p.dim() != 2:
        raise ValueError(f"means and log-stds must all be [B, act_dim], got {list(mean_p.shape)}, "
                         f"{list(log_std_p.shape)}, {list(mean_q.shape)}, {list(log_std_q.shape)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    kl = (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5).sum(-1)
    noise = torch.randn((samples, *mean_p.shape), generator=generator, device=mean_p.device)
    x = mean_p + log_std_p.exp() * noise
    log_p = (-0.5 * noise ** 2 - log_std_p).sum(-1)
    log_q = (-0.5 * ((x - mean_q) / log_std_q.exp()) ** 2 - log_std_q).sum(-1)
    tv = (1 - (log_q - log_p).exp()).clamp(min=0).mean(0)
    return kl, tv


@dataclass(frozen=True)
class SlopeFit:
    r"""A straight line :math:`y = \text{intercept} + \text{slope}\cdot x` fitted by least squares."""

    slope: float
    intercept: float
    r2: float

    def __call__(self, x: ArrayLike) -> ArrayLike:
        return self.intercept + self.slope * np.asarray(x, dtype=float)


def fit_slope(x: ArrayLike, y: ArrayLike) -> SlopeFit:
    r"""Least-squares line through the points (x, y): the paper's :math:`d\varepsilon_{m'}/d\varepsilon_\pi`
    when x is the policy shift and y the model's error on the new policy's data."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must be 1-d of the same length >= 2, got shapes {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    if np.ptp(x) == 0:
        raise ValueError(f"x must take at least two distinct values to fit a slope, got all {x[0]}")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum(residual ** 2) / total if total > 0 else 1.0
    return SlopeFit(float(slope), float(intercept), float(r2))


@dataclass(frozen=True)
class CompoundingFits:
    r"""Two growth laws fitted to a measured k-step error curve :math:`e_1..e_K`, each with two
    parameters, by least squares on the relative error (so small and large k count alike).

    ``affine``: :math:`e_k \approx a + b\,k` (the linear law; :math:`a = 0` is the pure :math:`k\varepsilon`).
    ``geometric``: :math:`e_k \approx \varepsilon (L^k - 1)/(L - 1)` (the Lipschitz recursion).
    ``*_misfit``: the root-mean-square relative residual of each fit (0.05 = 5 %).
    """

    k: np.ndarray
    errors: np.ndarray
    a: float
    b: float
    eps: float
    lipschitz: float
    affine_misfit: float
    geometric_misfit: float

    def affine(self, k: ArrayLike) -> ArrayLike:
        return self.a + self.b * np.asarray(k, dtype=float)

    def geometric(self, k: ArrayLike) -> ArrayLike:
        return geometric_compounding_error(self.eps, self.lipschitz, k)

    def verdict(self, tolerance: float = 0.1) -> str:
        """Which law fits within ``tolerance`` (RMS relative residual), in words."""
        misfits = (("affine", self.affine_misfit), ("geometric", self.geometric_misfit))
        fits = [name for name, misfit in misfits if misfit <= tolerance]
        best = "affine" if self.affine_misfit <= self.geometric_misfit else "geometric"
        if not fits:
            return f"neither fits within {tolerance:.0%} (best: {best})"
        return f"{' and '.join(fits)} within {tolerance:.0%} (best: {best})"


def fit_compounding(errors: ArrayLike, lipschitz_grid: ArrayLike | None = None) -> CompoundingFits:
    r"""Fit the affine and the geometric law to a measured curve ``errors [K]`` (e_1..e_K, K >= 3).

    Both fits minimise :math:`\sum_k ((\hat e_k - e_k)/e_k)^2`. The affine one is weighted linear
    least squares; the geometric one scans L over ``lipschitz_grid`` (default 0.5..1.5) and
    solves for ε in closed form at each L.
    """
    e = np.asarray(errors, dtype=float)
    if e.ndim != 1 or len(e) < 3 or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError(f"errors must be a 1-d curve e_1..e_K of K >= 3 positive finite values, got {e!r}")
    k = np.arange(1, len(e) + 1, dtype=float)
    w = 1.0 / e
    design = np.stack([np.ones_like(k), k], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(design, e * w, rcond=None)
    affine_misfit = float(np.sqrt(np.mean(((a + b * k) - e) ** 2 * w ** 2)))
    grid = np.linspace(0.5, 1.5, 2001) if lipschitz_grid is None else np.asarray(lipschitz_grid, dtype=float)
    best = (math.inf, 0.0, 1.0)
    for L in grid:
        shape = np.asarray(geometric_compounding_error(1.0, float(L), k)) * w
        eps = float(shape @ (e * w) / (shape @ shape))
        misfit = float(np.sqrt(np.mean((eps * shape - e * w) ** 2)))
        if misfit < best[0]:
            best = (misfit, eps, float(L))
    return CompoundingFits(k=k, errors=e, a=float(a), b=float(b), eps=best[1], lipschitz=best[2],
                           affine_misfit=affine_misfit, geometric_misfit=best[0])


# --- measured: open-loop error of a trained model -------------------------------------------

def trajectory_windows(obs: torch.Tensor, act: torch.Tensor, k_max: int, stride: int = 1
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cut one real episode into overlapping windows for :func:`multistep_error`.

    ``obs [T+1, obs_dim]`` (the states s_0..s_T of one episode) and ``act [T, act_dim]``;
    returns ``obs [N, k_max+1, obs_dim]`` and ``act [N, k_max, act_dim]`` with a window starting
    every ``stride`` steps (none crosses the episode's end).
    """
    if obs.shape[0] != act.shape[0] + 1:
        raise ValueError(f"an episode needs one more state than actions, got {obs.shape[0]} states "
                         f"and {act.shape[0]} actions")
    if not isinstance(k_max, int) or k_max < 1:
        raise ValueError(f"k_max must be an int >= 1, got {k_max!r}")
    starts = torch.arange(0, act.shape[0] - k_max + 1, stride)
    steps = torch.arange(k_max + 1)
    return obs[starts[:, None] + steps], act[starts[:, None] + steps[:-1]]


@torch.no_grad()
def multistep_error(model, obs: torch.Tensor, act: torch.Tensor, k_max: int | None = None,
                    deterministic: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Open-loop k-step state error of a trained model along real trajectories.

    ``obs [N, K+1, obs_dim]`` and ``act [N, K, act_dim]`` are N real windows (see
    :func:`trajectory_windows`). Starting from the real :math:`s_0`, the model is fed the real
    actions and its own predictions: :math:`\hat s_{t+1} = \hat M(\hat s_t, a_t)`. Returns the
    mean Euclidean error :math:`\mathbb{E}\,\|\hat s_k - s_k\|` for k = 1..k_max, ``[k_max]``.
    ``deterministic`` follows each row's elite mean; otherwise the model samples (as MBPO's
    rollouts do), reproducibly for a given ``generator``.
    """
    k_max = act.shape[1] if k_max is None else k_max
    if not 1 <= k_max <= act.shape[1] or obs.shape[1] != act.shape[1] + 1:
        raise ValueError(f"windows of obs [N, K+1, d] and act [N, K, a] with 1 <= k_max <= K needed, got "
                         f"obs {list(obs.shape)}, act {list(act.shape)}, k_max={k_max}")
    device = model.device
    obs, act = obs.to(device, torch.float32), act.to(device, torch.float32)
    state = obs[:, 0]
    errors = []
    for t in range(k_max):
        state, _, _ = model.step(state, act[:, t], generator=generator, deterministic=deterministic)
        errors.append(torch.linalg.vector_norm(state - obs[:, t + 1], dim=-1).mean())
    return torch.stack(errors).cpu()


@dataclass(frozen=True)
class KStepRollouts:
    r"""What the measured k-vs-error widget shows for one model, computed once.

    ``errors [K]``: the mean open-loop Euclidean error :math:`\mathbb{E}\,\|\hat s_k - s_k\|` of
    sampled rollouts (as MBPO runs them) over all held-out windows, with its ``fits``;
    ``true_states [K+1, obs_dim]``: one held-out real window; ``rollouts [S, K+1, obs_dim]``: S
    sampled model rollouts from its first state with its actions; ``mean_rollout [K+1, obs_dim]``:
    the rollout that follows each step's elite mean.
    """

    errors: np.ndarray
    fits: CompoundingFits
    true_states: np.ndarray
    rollouts: np.ndarray
    mean_rollout: np.ndarray
    windows: int

    @property
    def k_max(self) -> int:
        return len(self.errors)


@torch.no_grad()
def k_step_rollouts(model, obs: torch.Tensor, act: torch.Tensor, show: int = 0, samples: int = 8,
                    seed: int = 0) -> KStepRollouts:
    r"""Everything the measured widget draws for ``model``, from held-out windows ``obs [N, K+1, d]``,
    ``act [N, K, a]`` (see :func:`trajectory_windows`): the error curve and its fits over all N
    windows, and ``samples`` sampled rollouts plus the elite-mean rollout of window ``show``.
    Every draw comes from generators seeded with ``seed``.
    """
    if not 0 <= show < obs.shape[0]:
        raise ValueError(f"show must index one of the {obs.shape[0]} windows, got {show}")
    errors = multistep_error(model, obs, act, deterministic=False,
                             generator=torch.Generator(device=model.device).manual_seed(seed)).numpy()
    start = obs[show, 0].to(model.device, torch.float32)
    actions = act[show].to(model.device, torch.float32)
    paths = []
    for deterministic, rows in ((False, samples), (True, 1)):
        g = torch.Generator(device=model.device).manual_seed(seed + 1)
        state, path = start.expand(rows, -1), [start.expand(rows, -1)]
        for t in range(actions.shape[0]):
            state, _, _ = model.step(state, actions[t].expand(rows, -1), generator=g,
                                     deterministic=deterministic)
            path.append(state)
        paths.append(torch.stack(path, dim=1).cpu().numpy())
    return KStepRollouts(errors=errors, fits=fit_compounding(errors), true_states=obs[show].cpu().numpy(),
                         rollouts=paths[0], mean_rollout=paths[1][0], windows=int(obs.shape[0]))
