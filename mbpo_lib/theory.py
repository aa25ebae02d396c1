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
