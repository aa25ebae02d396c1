r"""Debugging an MBPO run: is the model right, where is it wrong, and does the agent learn?

The method's debugging tips as functions (notebook 06). Notation: elites :math:`\mathcal E`
(:attr:`~mbpo_lib.DynamicsModel.elites`), member means :math:`\mu_e(s, a)` over the targets
:math:`y = [r, s' - s]` (reward first, as the model predicts them), rollout length k.

1. **Watch the model's error while training** (:func:`model_error_report`, logged by the
   trainer as the ``diag_*`` columns of :func:`diagnostic_columns`). At the end of each epoch
   the model of the epoch's last fit is measured on the real steps taken *since* that fit:
   fresh transitions of the current policy that it never trained on.

   * one-step error of the mean prediction per output dimension (:func:`one_step_errors`),
     :math:`\mathrm{MSE}_j = \frac{1}{|\mathcal E| N}\sum_{e \in \mathcal E}\sum_{i=1}^N
     (\mu_{e,j}(s_i, a_i) - y_{i,j})^2`: the squared error of the mean of the elite a rollout
     draws, averaged over that draw (its mean over j is what ``model_holdout_mse`` reports on
     the fit's holdout);
   * open-loop k-step error :math:`\mathbb E\,\|\hat s_k - s_k\|`, k = 1..5, on windows of real
     steps that stay inside one episode (:func:`real_windows`,
     :func:`~mbpo_lib.theory.multistep_error`);
   * whether the ensemble knows where it is wrong: the rank correlation across rows of its
     disagreement and its realised error (:func:`disagreement_error_correlation`).

2. **Look at predictions** (:func:`plot_predictions`): one real trajectory against the model's
   open-loop prediction from its first state, dimension by dimension.
3. **Compare the data** (:func:`compare_distributions`): do model-generated states look like
   real ones? Per-dimension moments, histograms and one shift number.
4. **Report learning curves honestly** (:func:`confidence_band`, :func:`learning_curves`):
   the mean over seeds with a bootstrap band, next to the paper's numbers
   (:data:`PUBLISHED_RESULTS`).
5. **Check the critic against real returns** (:func:`q_value_bias`, logged by the trainer as
   the ``eval_q_*`` columns): on the states of the evaluation episodes, the critic's
   :math:`Q(s_t, a_t)` against the discounted Monte-Carlo return :math:`G_t`
   (:func:`discounted_returns`), the overestimation measure of REDQ (Chen et al. 2021). Model
   data that flatters the critic shows up here as a growing positive bias.

Everything random here takes a seed and uses its own generator, so the trainer's monitoring
never moves the trainer's random streams (a resumed run stays step-for-step identical).
This module imports only ``buffer``, ``plotting`` and ``theory`` from the package; the trainer
(``mbpo``) imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .buffer import Batch, ReplayBuffer
from .plotting import series_style
from .theory import multistep_error

DIAG_K_MAX = 5              # open-loop horizons the trainer logs: k = 1..5
MONITOR_MAX_ROWS = 1000     # the trainer measures at most this many of the newest real steps
MONITOR_MAX_WINDOWS = 256   # ... and at most this many open-loop windows among them
MONITOR_SEED = 0            # the monitoring's own generator (elite draws of the open loop)


class PredictiveModel(Protocol):
    """What the diagnostics need of a model (a :class:`~mbpo_lib.DynamicsModel` has it all)."""

    device: torch.device

    @property
    def elites(self) -> list[int]: ...

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's ``(mean, logvar)`` over ``[r, s' - s]``, each ``[E, B, 1 + obs_dim]``."""
        ...

    def step(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        ...


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _rows(name: str, x: Any, width: int | None = None) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or (width is not None and x.shape[1] != width):
        wanted = f"[N, {width}]" if width is not None else "[N, d]"
        raise ValueError(f"{name} must be {wanted}, got shape {list(x.shape)}")
    return x


# --- 1. model error monitoring -------------------------------------------------------------

def diagnostic_columns(obs_dim: int, k_max: int = DIAG_K_MAX) -> tuple[str, ...]:
    """The ``diag_*`` metric columns the trainer logs for an environment with ``obs_dim`` states.

    ``diag_rows`` (real steps measured), ``diag_one_step_mse`` (mean over the 1 + obs_dim
    outputs), ``diag_one_step_mse_r`` and ``diag_one_step_mse_s0`` .. ``_s{obs_dim-1}`` (per
    output), ``diag_one_step_nmse`` and ``diag_one_step_nmse_r``, ``_s0`` .. (the same errors
    divided by each target's variance over the rows: :attr:`OneStepErrors.normalized_mse`; the
    mean is over the outputs that vary), ``diag_windows`` (open-loop windows),
    ``diag_k_step_error_k1`` .. ``_k{k_max}``,
    ``diag_disagreement`` (mean over rows) and ``diag_disagreement_error_corr``. See
    :meth:`ModelErrorReport.metrics`.
    """
    obs_dim, k_max = _positive_int("obs_dim", obs_dim), _positive_int("k_max", k_max)
    return ("diag_rows", "diag_one_step_mse", "diag_one_step_mse_r",
            *(f"diag_one_step_mse_s{j}" for j in range(obs_dim)),
            "diag_one_step_nmse", "diag_one_step_nmse_r",
            *(f"diag_one_step_nmse_s{j}" for j in range(obs_dim)),
            "diag_windows",
            *(f"diag_k_step_error_k{k}" for k in range(1, k_max + 1)),
            "diag_disagreement", "diag_disagreement_error_corr")


@dataclass(frozen=True)
class OneStepErrors:
    r"""One-step errors of a model's mean prediction on N real transitions (all on the CPU).

    ``mse [1 + obs_dim]``: per output (reward first), the elites' averaged squared error
    :math:`\frac{1}{|\mathcal E| N}\sum_e\sum_i (\mu_{e,j} - y_{i,j})^2`.
    ``row_error [N]``: per row, the RMS over outputs of the error of the elites' average mean,
    :math:`\|\bar\mu_i - y_i\|_2 / \sqrt{1 + d}` with :math:`\bar\mu = \frac{1}{|\mathcal E|}\sum_e \mu_e`.
    ``disagreement [N]``: per row, the standard deviation across elites of :math:`\mu_e`,
    averaged over outputs (what ``DynamicsModel.step(..., disagreement=True)`` reports).
    ``target_var [1 + obs_dim]``: per output, the variance of the target over the N rows
    (population variance), the error a model would make by predicting the target's mean.
    """

    mse: torch.Tensor
    row_error: torch.Tensor
    disagreement: torch.Tensor
    target_var: torch.Tensor

    @property
    def reward_mse(self) -> float:
        return float(self.mse[0])

    @property
    def state_mse(self) -> torch.Tensor:
        """``[obs_dim]``: the error of :math:`s' - s`, which is also the error of :math:`s'`."""
        return self.mse[1:]

    @property
    def mean_mse(self) -> float:
        """The mean over outputs: comparable with ``FitReport.elite_holdout_mse``."""
        return float(self.mse.mean())

    @property
    def normalized_mse(self) -> torch.Tensor:
        r"""``[1 + obs_dim]``: :math:`\mathrm{MSE}_j / \mathrm{Var}(y_j)`, the share of each target's
        variance the model leaves unexplained (:math:`1 - R^2`): 0 is exact, 1 no better than
        the target's mean, whatever the output's scale. Raw MSEs cannot be compared across
        outputs (a Hopper joint angle changes by 1e-3 a step, a velocity by 1). NaN for a
        target that does not vary over the rows (a constant reward): nothing to explain.
        """
        return torch.where(self.target_var > 0, self.mse / self.target_var.clamp_min(1e-30),
                           torch.full_like(self.mse, float("nan")))


@torch.no_grad()
def one_step_errors(model: PredictiveModel, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor,
                    next_obs: torch.Tensor) -> OneStepErrors:
    """The one-step errors of :class:`OneStepErrors` for ``obs [N, d]``, ``act [N, a]``,
    ``rew [N]`` and ``next_obs [N, d]`` (one forward pass of the elites, no random draw)."""
    obs = _rows("obs", obs)
    next_obs, act = _rows("next_obs", next_obs, obs.shape[1]), _rows("act", act)
    rew = torch.as_tensor(rew).reshape(-1)
    n = obs.shape[0]
    if n < 1 or not act.shape[0] == rew.shape[0] == next_obs.shape[0] == n:
        raise ValueError(f"one_step_errors needs N >= 1 aligned rows, got obs {n}, act {act.shape[0]}, "
                         f"rew {rew.shape[0]}, next_obs {next_obs.shape[0]}")
    device = model.device
    obs, act, rew, next_obs = (x.to(device, torch.float32) for x in (obs, act, rew, next_obs))
    mean, _ = model.predict(obs, act)                                  # [E, N, 1 + d]
    mean = mean[torch.as_tensor(model.elites, device=mean.device)]    # [M, N, 1 + d]
    target = torch.cat([rew[:, None], next_obs - obs], dim=-1)         # [N, 1 + d]
    mse = ((mean - target) ** 2).mean(dim=(0, 1))
    row_error = ((mean.mean(dim=0) - target) ** 2).mean(dim=-1).sqrt()
    disagreement = mean.std(dim=0, unbiased=False).mean(dim=-1)
    target_var = target.var(dim=0, unbiased=False) if n > 1 else torch.zeros_like(mse)
    return OneStepErrors(mse.cpu(), row_error.cpu(), disagreement.cpu(), target_var.cpu())


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x [N]`` in float64, tied values sharing their average rank."""
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def disagreement_error_correlation(disagreement: torch.Tensor, error: torch.Tensor) -> float:
    r"""Spearman's rank correlation across rows of the ensemble's disagreement and its error.

    :math:`\rho = \mathrm{corr}(\mathrm{rank}(u), \mathrm{rank}(e))` (Pearson's correlation of
    the average ranks), in [-1, 1]: near 1 the ensemble's spread marks the rows it gets wrong,
    which is what lets an uncertainty-aware rollout trust it; near 0 it does not. Ranks, not
    values, so a few rows with huge errors cannot decide the number. ``disagreement [N]`` and
    ``error [N]``; NaN when N < 3 or either is constant, up to float rounding (a spread below
    1e-5 of its largest magnitude): no ranking to compare.

    Use the error of the elites' *average* mean (:attr:`OneStepErrors.row_error`): the
    average error of the single elites contains their spread around that average, i.e. the
    disagreement itself, and would correlate with it by construction.
    """
    u = torch.as_tensor(disagreement).reshape(-1).detach().cpu()
    e = torch.as_tensor(error).reshape(-1).detach().cpu()
    if u.shape != e.shape:
        raise ValueError(f"disagreement and error need one value per row each, got {u.shape[0]} and "
                         f"{e.shape[0]}")
    if u.shape[0] < 3 or not (bool(torch.isfinite(u).all()) and bool(torch.isfinite(e).all())):
        return float("nan")
    for x in (u, e):
        if float(x.max() - x.min()) <= 1e-5 * float(x.abs().max()):
            return float("nan")
    ru, re = _average_ranks(u), _average_ranks(e)
    ru, re = ru - ru.mean(), re - re.mean()
    denominator = float(torch.sqrt((ru ** 2).sum() * (re ** 2).sum()))
    return float((ru * re).sum()) / denominator if denominator > 0 else float("nan")


def episode_continues(obs: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor | None = None
                      ) -> torch.Tensor:
    r"""``[N - 1]`` bool: does row i + 1 continue row i's episode?

    True where :math:`s_{i+1} = s'_i` exactly (and row i did not terminate). A replay buffer
    stores the steps of one environment in order, so this is how it tells where episodes
    start: after a reset, at termination or at a time limit alike, the new episode's first
    state is a fresh draw, not the last step's next state. ``obs`` and ``next_obs`` ``[N, d]``
    (consecutive rows of a buffer, oldest first), ``terminated [N]`` optional.
    """
    obs = _rows("obs", obs)
    next_obs = _rows("next_obs", next_obs, obs.shape[1])
    same = (next_obs[:-1] == obs[1:]).all(dim=-1)
    if terminated is not None:
        same = same & ~torch.as_tensor(terminated, device=same.device).reshape(-1)[:-1].bool()
    return same


def real_windows(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor, k_max: int,
                 terminated: torch.Tensor | None = None, max_windows: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of k_max real steps that stay inside one episode, for
    :func:`~mbpo_lib.theory.multistep_error`.

    ``obs [N, d]``, ``act [N, a]``, ``next_obs [N, d]`` are consecutive transitions of a
    buffer (oldest first) that may span several episodes; a window may start at row i when rows
    i..i+k_max-1 all belong to one episode (:func:`episode_continues`). Returns
    ``obs [W, k_max+1, d]`` = :math:`(s_i, s'_i, \\dots, s'_{i+k_max-1})` and
    ``act [W, k_max, a]``; windows overlap (stride 1), the same cut as
    :func:`~mbpo_lib.theory.trajectory_windows` makes of one episode. With ``max_windows``, W is
    cut to that many evenly spaced windows (no random draw). W may be 0.
    """
    k_max = _positive_int("k_max", k_max)
    obs = _rows("obs", obs)
    next_obs, act = _rows("next_obs", next_obs, obs.shape[1]), _rows("act", act)
    n = obs.shape[0]
    if not act.shape[0] == next_obs.shape[0] == n:
        raise ValueError(f"obs, act and next_obs need the same rows, got {n}, {act.shape[0]} and "
                         f"{next_obs.shape[0]}")
    device = obs.device
    if n < k_max:
        return obs.new_zeros(0, k_max + 1, obs.shape[1]), act.new_zeros(0, k_max, act.shape[1])
    breaks = (~episode_continues(obs, next_obs, terminated)).long()
    before = torch.cat([breaks.new_zeros(1), torch.cumsum(breaks, 0)])   # [N]: breaks among links < i
    starts = torch.arange(n - k_max + 1, device=device)
    starts = starts[before[starts + k_max - 1] == before[starts]]        # no break inside the window
    if max_windows is not None and starts.shape[0] > _positive_int("max_windows", max_windows):
        pick = torch.linspace(0, starts.shape[0] - 1, max_windows, device=device).round().long()
        starts = starts[pick]
    steps = torch.arange(k_max, device=device)
    window_obs = torch.cat([obs[starts, None], next_obs[starts[:, None] + steps]], dim=1)
    return window_obs, act[starts[:, None] + steps]


@dataclass(frozen=True)
class ModelErrorReport:
    """What :func:`model_error_report` measured (tensors on the CPU).

    ``one_step_mse [1 + obs_dim]`` (reward first; :class:`OneStepErrors`), ``one_step_nmse
    [1 + obs_dim]`` (:attr:`OneStepErrors.normalized_mse`; NaN where not measured), ``k_step_error
    [k_max]`` (mean Euclidean state error after k = 1..k_max open-loop steps; NaN when no
    window fitted), ``disagreement`` (mean over rows), ``disagreement_error_corr``
    (:func:`disagreement_error_correlation`), ``rows`` and ``windows`` measured.
    """

    one_step_mse: torch.Tensor
    k_step_error: torch.Tensor
    disagreement: float
    disagreement_error_corr: float
    rows: int
    windows: int
    one_step_nmse: torch.Tensor | None = None

    def metrics(self, prefix: str = "diag_") -> dict[str, float]:
        """The report as flat scalars named as :func:`diagnostic_columns` lists them."""
        out: dict[str, float] = {f"{prefix}rows": self.rows,
                                 f"{prefix}one_step_mse": float(self.one_step_mse.mean()),
                                 f"{prefix}one_step_mse_r": float(self.one_step_mse[0])}
        out.update({f"{prefix}one_step_mse_s{j}": float(v) for j, v in enumerate(self.one_step_mse[1:])})
        nmse = (self.one_step_nmse if self.one_step_nmse is not None
                else torch.full_like(self.one_step_mse, float("nan")))
        varies = nmse[~torch.isnan(nmse)]
        out[f"{prefix}one_step_nmse"] = float(varies.mean()) if varies.numel() else float("nan")
        out[f"{prefix}one_step_nmse_r"] = float(nmse[0])
        out.update({f"{prefix}one_step_nmse_s{j}": float(v) for j, v in enumerate(nmse[1:])})
        out[f"{prefix}windows"] = self.windows
        out.update({f"{prefix}k_step_error_k{k}": float(v) for k, v in enumerate(self.k_step_error, 1)})
        out[f"{prefix}disagreement"] = self.disagreement
        out[f"{prefix}disagreement_error_corr"] = self.disagreement_error_corr
        return out


def model_error_report(model: PredictiveModel, batch: Batch | Sequence[torch.Tensor],
                       k_max: int = DIAG_K_MAX, max_rows: int | None = MONITOR_MAX_ROWS,
                       max_windows: int | None = MONITOR_MAX_WINDOWS, seed: int = MONITOR_SEED
                       ) -> ModelErrorReport:
    """Measure ``model`` on consecutive real transitions: the monitoring of the module docstring.

    ``batch`` is ``(obs [N, d], act [N, a], rew [N], next_obs [N, d][, terminated [N]])`` in
    the order they happened (e.g. ``ReplayBuffer.latest(n)``); only the newest ``max_rows``
    are used. The open loop runs the elites' means (``deterministic=True``) with its own
    generator seeded by ``seed``, so the same model and data give the same report and no
    other random stream moves. Cost: one forward of every member on the rows, then k_max
    single-elite steps on at most ``max_windows`` windows.
    """
    obs, act, rew, next_obs = batch[:4]
    terminated = batch[4] if len(batch) > 4 else None
    if max_rows is not None:
        keep = slice(-_positive_int("max_rows", max_rows), None)
        obs, act, rew, next_obs = obs[keep], act[keep], rew[keep], next_obs[keep]
        terminated = terminated[keep] if terminated is not None else None
    one = one_step_errors(model, obs, act, rew, next_obs)
    window_obs, window_act = real_windows(obs, act, next_obs, k_max, terminated, max_windows)
    if window_obs.shape[0]:
        generator = torch.Generator(device=model.device).manual_seed(seed)
        k_error = multistep_error(model, window_obs, window_act, deterministic=True, generator=generator)
    else:
        k_error = torch.full((k_max,), float("nan"))
    return ModelErrorReport(
        one_step_mse=one.mse, k_step_error=k_error, disagreement=float(one.disagreement.mean()),
        disagreement_error_corr=disagreement_error_correlation(one.disagreement, one.row_error),
        rows=int(obs.shape[0]), windows=int(window_obs.shape[0]), one_step_nmse=one.normalized_mse)


# --- 2. predictions against the real trajectory --------------------------------------------

@dataclass(frozen=True)
class OpenLoopPrediction:
    r"""A model's open-loop prediction of one trajectory (CPU tensors).

    ``real [T+1, d]``: the real states. ``mean [T+1, d]``: :math:`\hat s_0 = s_0`,
    :math:`\hat s_{t+1} = \hat s_t + \bar\mu_{\Delta s}(\hat s_t, a_t)` with the elites' average
    mean. ``samples [S, T+1, d]``: S rollouts as MBPO draws them (a random elite per step, a
    Gaussian sample of its prediction), all fed the real actions.
    """

    real: torch.Tensor
    mean: torch.Tensor
    samples: torch.Tensor


def _trajectory(trajectory: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(obs [T+1, d], act [T, a])`` from such a pair or from consecutive Batch rows."""
    if hasattr(trajectory, "next_obs"):
        obs, act, next_obs = (torch.as_tensor(getattr(trajectory, f)) for f in ("obs", "act", "next_obs"))
        link = episode_continues(obs, next_obs, getattr(trajectory, "terminated", None))
        if link.numel() and not bool(link.all()):
            first = int((~link).nonzero()[0])
            raise ValueError(f"the trajectory's rows must be one episode, but row {first + 1} does not "
                             f"continue row {first} (a new episode starts there)")
        return torch.cat([obs, next_obs[-1:]]), act
    try:
        obs, act = (torch.as_tensor(x) for x in trajectory)
    except (TypeError, ValueError):
        raise TypeError("trajectory must be (obs [T+1, d], act [T, a]) or a Batch of consecutive "
                        f"transitions, got {type(trajectory).__name__}") from None
    if obs.dim() != 2 or act.dim() != 2 or obs.shape[0] != act.shape[0] + 1 or act.shape[0] < 1:
        raise ValueError(f"a trajectory needs obs [T+1, d] and act [T, a] with T >= 1, got obs "
                         f"{list(obs.shape)} and act {list(act.shape)}")
    return obs, act


@torch.no_grad()
def open_loop_prediction(model: PredictiveModel, trajectory: Any, samples: int = 0,
                         seed: int = 0) -> OpenLoopPrediction:
    """Predict a real trajectory open loop from its first state (:class:`OpenLoopPrediction`).

    ``trajectory``: ``(obs [T+1, d], act [T, a])`` of one episode, or a Batch of its T
    consecutive transitions. ``samples`` sampled rollouts use a generator seeded by ``seed``.
    """
    obs, act = _trajectory(trajectory)
    samples = 0 if samples == 0 else _positive_int("samples", samples)
    device = model.device
    obs, act = obs.to(device, torch.float32), act.to(device, torch.float32)
    elites = torch.as_tensor(model.elites, device=device)
    state, path = obs[:1], [obs[:1]]
    for t in range(act.shape[0]):
        mean, _ = model.predict(state, act[t:t + 1])
        state = state + mean[elites].mean(dim=0)[:, 1:]
        path.append(state)
    drawn = obs.new_zeros(0, obs.shape[0], obs.shape[1])
    if samples:
        generator = torch.Generator(device=device).manual_seed(seed)
        state, rows = obs[:1].expand(samples, -1), [obs[:1].expand(samples, -1)]
        for t in range(act.shape[0]):
            state, _, _ = model.step(state, act[t:t + 1].expand(samples, -1), generator=generator)
            rows.append(state)
        drawn = torch.stack(rows, dim=1)
    return OpenLoopPrediction(obs.cpu(), torch.cat(path).cpu(), drawn.cpu())


def _grid(n: int, columns: int, width: float = 3.2, height: float = 2.3):
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _dims(dims: Sequence[int] | None, d: int, max_dims: int) -> list[int]:
    if dims is None:
        return list(range(min(d, max_dims)))
    dims = list(dims)
    bad = [j for j in dims if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < d]
    if bad or not dims:
        raise ValueError(f"dims must be a non-empty list of state dimensions in [0, {d - 1}], got {dims}")
    return dims


def plot_predictions(model: PredictiveModel, trajectory: Any, *, dims: Sequence[int] | None = None,
                     samples: int = 20, band: float = 0.9, seed: int = 0, max_dims: int = 12,
                     columns: int = 4, clip: bool = True, inset: int = 15) -> Figure:
    """Real states against the model's open-loop prediction, one panel per state dimension.

    The model starts from the trajectory's first real state and is fed the real actions and
    its own states (:func:`open_loop_prediction`): the black line is the real trajectory, the
    coloured line the elites' mean prediction, and the shaded band the central ``band``
    fraction of ``samples`` sampled rollouts (none when ``samples=0``). Where the lines part
    is where the compounding error of notebook 03 becomes visible. ``dims``: the dimensions
    to draw (default the first ``max_dims``). ``clip``: each panel's y range is the real
    trajectory's with a quarter of its span added on each side, so a prediction that runs away
    leaves the panel instead of squashing the real line flat. ``inset``: the first ``inset``
    steps drawn again in a small inset at their own scale (0: no inset), the horizon MBPO's
    branches live in. Returns the Figure.
    """
    if not 0.0 < band < 1.0:
        raise ValueError(f"band must be a fraction in (0, 1), got {band!r}")
    if isinstance(inset, bool) or not isinstance(inset, int) or inset < 0:
        raise ValueError(f"inset must be an int >= 0 (steps shown in the inset, 0 for none), got {inset!r}")
    prediction = open_loop_prediction(model, trajectory, samples=samples, seed=seed)
    chosen = _dims(dims, prediction.real.shape[1], max_dims)
    t = np.arange(prediction.real.shape[0])
    if prediction.samples.shape[0]:
        # the band of the sampled rollouts, low and high each [T, d]
        low, high = np.quantile(prediction.samples.numpy(), [(1 - band) / 2, (1 + band) / 2], axis=0)
    real, mean = prediction.real.numpy(), prediction.mean.numpy()
    insets = inset > 0 and len(t) > inset + 1          # an inset only where the episode is longer

    def draw(ax: Any, j: int, upto: int) -> None:
        if prediction.samples.shape[0]:
            ax.fill_between(t[:upto], low[:upto, j], high[:upto, j], color="#D55E00", alpha=0.2, lw=0,
                            label=f"{band:.0%} of {prediction.samples.shape[0]} sampled rollouts")
        ax.plot(t[:upto], real[:upto, j], color="black", lw=1.8, label="real")
        ax.plot(t[:upto], mean[:upto, j], color="#D55E00", lw=1.6, label="model (elites' mean)")

    def limits(values: np.ndarray) -> tuple[float, float]:
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = 0.25 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1e-3)
        return lo - pad, hi + pad

    with series_style():
        fig, axes = _grid(len(chosen), columns)
        for ax, j in zip(axes, chosen, strict=False):
            draw(ax, j, len(t))
            if clip:
                ax.set_ylim(*limits(real[:, j]))
            if insets:
                sub = ax.inset_axes([0.58, 0.6, 0.4, 0.37])
                draw(sub, j, inset + 1)
                sub.set_ylim(*limits(np.concatenate([real[: inset + 1, j], mean[: inset + 1, j]])))
                sub.set_xticks([0, inset])
                sub.tick_params(labelsize=7, length=2, pad=1)
                sub.set_yticks([])
            ax.set_title(f"$s_{{{j}}}$", fontsize=10)
            ax.set_xlabel("step t")
        handles, labels = next(iter(axes)).get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 1.02))
        title = "Open loop: the model fed the real actions and its own states"
        if insets:
            title += f" (insets: the first {inset} steps)"
        fig.suptitle(title, y=1.08)
        fig.tight_layout()
    return fig


# --- 3. real against model-generated data ----------------------------------------------------

def wasserstein_per_dim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The 1-D Wasserstein-1 distance of each column of ``x [n, d]`` and ``y [m, d]``, ``[d]``.

    :math:`W_1(P, Q) = \int |F_P(v) - F_Q(v)|\,dv` for the empirical CDFs, computed exactly:
    between consecutive values of the pooled sample both CDFs are constant, so the integral is
    the sum of :math:`|F_P - F_Q|` times the gaps. In float64. A shift of every value by
    :math:`\delta` gives :math:`|\delta|`.
    """
    x, y = _rows("x", x).double(), _rows("y", y, x.shape[1]).double()
    if x.shape[0] < 1 or y.shape[0] < 1:
        raise ValueError(f"both samples need at least one row, got {x.shape[0]} and {y.shape[0]}")
    xs, ys = torch.sort(x, dim=0)[0].T.contiguous(), torch.sort(y, dim=0)[0].T.contiguous()   # [d, n], [d, m]
    pooled = torch.sort(torch.cat([xs, ys], dim=1), dim=1)[0]                               # [d, n + m]
    gaps = pooled[:, 1:] - pooled[:, :-1]
    at = pooled[:, :-1].contiguous()
    cdf_x = torch.searchsorted(xs, at, right=True) / xs.shape[1]
    cdf_y = torch.searchsorted(ys, at, right=True) / ys.shape[1]
    return ((cdf_x - cdf_y).abs() * gaps).sum(dim=1)


@dataclass(frozen=True)
class DistributionComparison:
    r"""Real against model-generated states, per dimension (NumPy arrays ``[d]``).

    ``standardized_mean_difference``: :math:`(\bar x_{model} - \bar x_{real}) / \sigma_{real}`.
    ``wasserstein``: :math:`W_1` of the two marginals in units of :math:`\sigma_{real}` (a pure
    shift by :math:`\delta` gives :math:`|\delta| / \sigma_{real}`, the size of the standardized
    mean difference; a change of spread or shape adds to it, which the mean difference misses).
    ``shift``: the mean of ``wasserstein`` over dimensions, the one number; ``shifted`` is
    ``shift > threshold``. Dimensions whose real std is below 1e-8 are measured in their raw
    units. ``real_samples`` and ``model_samples`` are the rows compared (for :meth:`plot`).
    """

    real_mean: np.ndarray
    real_std: np.ndarray
    model_mean: np.ndarray
    model_std: np.ndarray
    standardized_mean_difference: np.ndarray
    wasserstein: np.ndarray
    shift: float
    threshold: float
    real_samples: np.ndarray = field(repr=False)
    model_samples: np.ndarray = field(repr=False)

    @property
    def shifted(self) -> bool:
        return self.shift > self.threshold

    @property
    def shifted_dims(self) -> list[int]:
        """The dimensions whose own scaled W1 exceeds the threshold, largest first."""
        order = np.argsort(-self.wasserstein, kind="stable")
        return [int(j) for j in order if self.wasserstein[j] > self.threshold]

    def __str__(self) -> str:
        verdict = "shifted" if self.shifted else "no shift beyond the threshold"
        return (f"model vs real states: mean W1 = {self.shift:.3f} real std ({verdict}, threshold "
                f"{self.threshold}); dims beyond it: {self.shifted_dims}")

    def plot(self, dims: Sequence[int] | None = None, bins: int = 40, max_dims: int = 12,
             columns: int = 4) -> Figure:
        """Histograms of real and model states per dimension (densities on shared bins).

        ``dims`` default: the ``max_dims`` dimensions with the largest scaled W1, largest first.
        """
        d = self.real_mean.shape[0]
        if dims is None:
            dims = [int(j) for j in np.argsort(-self.wasserstein, kind="stable")[:max_dims]]
        chosen = _dims(dims, d, max_dims)
        with series_style():
            fig, axes = _grid(len(chosen), columns)
            for ax, j in zip(axes, chosen, strict=False):
                both = np.concatenate([self.real_samples[:, j], self.model_samples[:, j]])
                edges = np.histogram_bin_edges(both, bins=bins)
                ax.hist(self.real_samples[:, j], bins=edges, density=True, alpha=0.5, color="#0072B2",
                        label="real")
                ax.hist(self.model_samples[:, j], bins=edges, density=True, alpha=0.5, color="#D55E00",
                        label="model")
                ax.set_title(f"$s_{{{j}}}$: W1 = {self.wasserstein[j]:.2f} σ", fontsize=10)
                ax.set_yticks([])
            handles, labels = next(iter(axes)).get_legend_handles_labels()
            fig.legend(handles, labels, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.02))
            fig.suptitle(f"Real vs model states: mean W1 = {self.shift:.2f} real std", y=1.08)
            fig.tight_layout()
        return fig


def _states(source: ReplayBuffer | torch.Tensor | np.ndarray, name: str, fields: str, max_rows: int,
            generator: torch.Generator) -> torch.Tensor:
    if isinstance(source, ReplayBuffer):
        if len(source) == 0:
            raise ValueError(f"{name} buffer is empty: nothing to compare")
        if len(source) <= max_rows:
            batch = source.gather(torch.arange(len(source), device=source.device))
        else:
            batch = source.sample(max_rows, generator)
        return getattr(batch, fields).cpu()
    x = _rows(name, source).cpu()
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no rows: nothing to compare")
    if x.shape[0] > max_rows:
        x = x[torch.randint(x.shape[0], (max_rows,), generator=generator)]
    return x


def compare_distributions(real: ReplayBuffer | torch.Tensor | np.ndarray,
                          model: ReplayBuffer | torch.Tensor | np.ndarray, *, states: str = "next_obs",
                          max_rows: int = 20_000, threshold: float = 0.25, seed: int = 0
                          ) -> DistributionComparison:
    """Do model-generated states look like real ones? (:class:`DistributionComparison`)

    ``real`` and ``model``: replay buffers (``states`` picks their ``"next_obs"``, all of which
    the model generated in a model buffer, or ``"obs"``) or state arrays ``[N, d]``. At most
    ``max_rows`` rows of each are used (a uniform draw with replacement, from a generator
    seeded by ``seed``, when there are more). ``threshold``: the mean scaled W1 above which the
    model's states count as shifted; 0.25 real standard deviations is a small but clear effect
    (sampling noise alone gives about 0.01 at 20,000 rows and 0.05 at 1,000).
    """
    if states not in ("obs", "next_obs"):
        raise ValueError(f"states must be 'obs' or 'next_obs', got {states!r}")
    if not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    max_rows = _positive_int("max_rows", max_rows)
    generator = torch.Generator().manual_seed(seed)
    x = _states(real, "real", states, max_rows, generator).double()
    y = _states(model, "model", states, max_rows, generator).double()
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real states have {x.shape[1]} dimensions and model states {y.shape[1]}")
    real_std = x.std(dim=0, unbiased=False)
    scale = torch.where(real_std < 1e-8, torch.ones_like(real_std), real_std)
    w1 = wasserstein_per_dim(x, y) / scale
    return DistributionComparison(
        real_mean=x.mean(0).numpy(), real_std=real_std.numpy(), model_mean=y.mean(0).numpy(),
        model_std=y.std(dim=0, unbiased=False).numpy(),
        standardized_mean_difference=((y.mean(0) - x.mean(0)) / scale).numpy(), wasserstein=w1.numpy(),
        shift=float(w1.mean()), threshold=float(threshold), real_samples=x.float().numpy(),
        model_samples=y.float().numpy())


# --- 4. learning curves over seeds -------------------------------------------------------------

PUBLISHED_RESULTS_NOTE = "read off the paper's plots (Janner et al. 2019, Figure 2), ±10 %"
# (env steps, evaluation return) of MBPO and of the SAC baseline in the paper, as the series'
# mbpo-reference.md records them: numbers read off published plots, so good to about ±10 %.
# The paper's step axis leaves out the random warm-up; this library's env_steps counts it.
PUBLISHED_RESULTS: Mapping[str, Mapping[str, tuple[tuple[int, float], ...]]] = MappingProxyType({
    "Hopper-v5": {"MBPO": ((75_000, 3000.0), (125_000, 3350.0)), "SAC": ((125_000, 1500.0),)},
    "Walker2d-v5": {"MBPO": ((100_000, 3500.0), (300_000, 4900.0)), "SAC": ((300_000, 1500.0),)},
    "HalfCheetah-v5": {"MBPO": ((400_000, 12000.0),), "SAC": ((400_000, 8000.0),)},
    "Ant-v5": {"MBPO": ((300_000, 5500.0),)},
    "Humanoid-v5": {"MBPO": ((300_000, 5500.0),)},
    "InvertedPendulum-v5": {"MBPO": ((3_000, 1000.0), (15_000, 1000.0))},
})


def align_curves(runs: Sequence[tuple[Any, Any]], steps: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Put several seeds' ``(steps, returns)`` curves on one step grid: ``(steps [T], curves [S, T])``.

    NaN returns (epochs without an evaluation) are dropped first. Each curve is interpolated
    linearly onto the grid; the default grid is every step at which some seed evaluated that
    lies inside the range all seeds cover, so curves evaluated at the same steps are taken as
    they are. A grid point outside a seed's range is refused (no extrapolation).
    """
    if len(runs) == 0:
        raise ValueError("align_curves needs at least one (steps, returns) curve")
    cleaned = []
    for i, run in enumerate(runs):
        try:
            x, y = (np.asarray(v, dtype=float).reshape(-1) for v in run)
        except (TypeError, ValueError):
            raise ValueError(f"run {i} must be a pair (steps, returns), got {type(run).__name__}") from None
        if x.shape != y.shape:
            raise ValueError(f"run {i} has {x.size} steps and {y.size} returns")
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if x.size == 0:
            raise ValueError(f"run {i} has no finite (step, return) point")
        order = np.argsort(x, kind="stable")
        cleaned.append((x[order], y[order]))
    low = max(x[0] for x, _ in cleaned)
    high = min(x[-1] for x, _ in cleaned)
    if steps is None:
        grid = np.unique(np.concatenate([x for x, _ in cleaned]))
        grid = grid[(grid >= low) & (grid <= high)]
        if grid.size == 0:
            raise ValueError(f"the runs share no step range (latest start {low:g}, earliest end {high:g})")
    else:
        grid = np.asarray(steps, dtype=float).reshape(-1)
        if grid.size == 0 or grid.min() < low or grid.max() > high:
            raise ValueError(f"steps must lie in [{low:g}, {high:g}], the range every run covers")
    return grid, np.stack([np.interp(grid, x, y) for x, y in cleaned])


@dataclass(frozen=True)
class ConfidenceBand:
    """The mean over seeds and a percentile-bootstrap band, each ``[T]``."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float
    seeds: int
    resamples: int


def confidence_band(curves: Any, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
                    ) -> ConfidenceBand:
    r"""The mean of S seeds' curves ``[S, T]`` and a bootstrap confidence band over seeds.

    Percentile bootstrap: draw ``resamples`` sets of S seeds with replacement (a NumPy
    generator seeded by ``seed``), take each set's mean curve :math:`\bar c^{(b)}`, and bound the
    band at each step by the :math:`(1 \pm c)/2` quantiles of :math:`\bar c^{(b)}`. 2000
    resamples put the band's ends within about 1 % of their limit.

    Few seeds make the band too narrow: it estimates the spread with S in place of S - 1 and
    normal quantiles in place of Student's, so a nominal 95 % band covers the true mean about
    85 % of the time at 5 seeds, 90 % at 10 and 93 % at 20. One seed gives a band of width 0.
    """
    curves = np.asarray(curves, dtype=float)
    if curves.ndim == 1:
        curves = curves[None]
    if curves.ndim != 2 or curves.shape[0] < 1 or curves.shape[1] < 1:
        raise ValueError(f"curves must be [seeds, steps] with at least one of each, got shape {curves.shape}")
    if not np.isfinite(curves).all():
        raise ValueError("curves hold NaN or inf; align them first (align_curves drops NaN returns)")
    if not (isinstance(confidence, float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")
    resamples = _positive_int("resamples", resamples)
    s = curves.shape[0]
    draws = np.random.default_rng(seed).integers(0, s, size=(resamples, s))
    counts = np.zeros((resamples, s))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    means = counts @ curves / s                                            # [resamples, T]
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    mean = curves.mean(axis=0)
    # the quantiles of equal values can differ from their mean in the last bit
    return ConfidenceBand(mean=mean, low=np.minimum(low, mean), high=np.maximum(high, mean),
                          confidence=confidence, seeds=s, resamples=resamples)


def learning_curves(runs: Sequence[tuple[Any, Any]] | Mapping[str, Sequence[tuple[Any, Any]]],
                    reference: str | Mapping[str, Sequence[tuple[float, float]]] | None = None, *,
                    label: str = "MBPO (ours)", confidence: float = 0.95, resamples: int = 2000,
                    seed: int = 0, ax: Any = None) -> Figure:
    """Evaluation return against env steps: the mean over seeds with a bootstrap band.

    ``runs``: one method's seeds as ``[(steps, returns), ...]`` (e.g. each run's ``env_steps``
    and ``eval_return`` columns), or several methods as ``{label: [(steps, returns), ...]}``.
    Each is aligned (:func:`align_curves`) and summarised (:func:`confidence_band`), then drawn
    as a line with a shaded band. ``reference``: an env id of :data:`PUBLISHED_RESULTS` (or such
    a mapping ``{name: [(step, return), ...]}``) overlaid as points with ±10 % bars, labelled as
    read off the paper's plots. Returns the Figure (``ax``: an Axes to draw into).
    """
    methods = dict(runs) if isinstance(runs, Mapping) else {label: runs}
    if isinstance(reference, str):
        if reference not in PUBLISHED_RESULTS:
            raise ValueError(f"no published results for {reference!r}; PUBLISHED_RESULTS has "
                             f"{', '.join(PUBLISHED_RESULTS)}")
        reference = PUBLISHED_RESULTS[reference]
    with series_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(10.0, 4.5))
        else:
            fig = ax.figure
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        used: dict[str, str] = {}
        for i, (name, seeds) in enumerate(methods.items()):
            steps, curves = align_curves(seeds)
            band = confidence_band(curves, confidence, resamples, seed)
            used[name] = colour = colours[i % len(colours)]
            ax.plot(steps, band.mean, color=colour, lw=2, label=f"{name}: mean of {band.seeds} seeds")
            if band.seeds > 1:
                ax.fill_between(steps, band.low, band.high, color=colour, alpha=0.2, lw=0,
                                label=f"{name}: {confidence:.0%} bootstrap band")
        for j, (name, points) in enumerate((reference or {}).items()):
            x, y = (np.asarray(v, dtype=float) for v in zip(*points, strict=True))
            # a paper point takes the colour of our curve of the same method ("MBPO (ours)" for "MBPO")
            colour = next((c for label_, c in used.items() if label_.startswith(name)),
                          colours[(len(methods) + j) % len(colours)])
            ax.errorbar(x, y, yerr=0.1 * np.abs(y), fmt="D", ms=7, capsize=4, color=colour,
                        markeredgecolor="black", label=f"{name}, paper: read off its plots, ±10 %")
        ax.set(xlabel="env steps", ylabel="evaluation return")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if isinstance(fig, Figure) and fig.get_layout_engine() is None:   # a given figure keeps its own
            fig.tight_layout()
    return fig if isinstance(fig, Figure) else fig.figure


# --- 5. the critic against real returns -------------------------------------------------------

def discounted_returns(rewards: Any, gamma: float) -> np.ndarray:
    r"""The Monte-Carlo discounted return-to-go of one episode, step by step (float64 ``[T]``):

    .. math:: G_t = \sum_{i=t}^{T-1} \gamma^{\,i-t}\, r_i, \qquad G_t = r_t + \gamma\, G_{t+1},\ G_T = 0.

    ``rewards`` is ``[T]`` (a list, array or tensor); ``gamma`` a number in [0, 1]. Nothing is
    added after the last step: for an episode the time limit cut, :func:`q_value_bias` keeps
    only the states where that missing tail weighs little.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).cpu().numpy()
    if r.ndim != 1:
        raise ValueError(f"rewards must be one episode's [T] rewards, got shape {list(r.shape)}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) or not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    returns = np.empty_like(r)
    running = 0.0
    for t in range(r.shape[0] - 1, -1, -1):
        running = r[t] + gamma * running
        returns[t] = running
    return returns


class QValueBias(NamedTuple):
    """The critic's value against the real discounted return, over the kept states (see
    :func:`q_value_bias`).

    Attributes:
        q_mean: mean over the states of ``Q(s_t, a_t)``.
        mc_return: mean over the states of the Monte-Carlo return ``G_t``.
        bias: ``mean(Q - G)``; positive: the critic overestimates.
        bias_normalized: ``bias / |mc_return|`` (REDQ's "average normalized bias"); NaN when
            ``mc_return`` is 0 (nothing to compare with).
        states: how many states were measured (0: every value NaN).
    """

    q_mean: float
    mc_return: float
    bias: float
    bias_normalized: float
    states: int


Q_CHUNK_ROWS = 65_536   # rows per critic forward in q_value_bias


def q_value_bias(agent: Any, episodes: Sequence[Any], gamma: float | None = None, tail: float = 0.01, *,
                 target: bool = False) -> QValueBias:
    r"""How far the critic's Q is from the real discounted return on the evaluation episodes.

    The overestimation measure of REDQ (Chen, Wang, Zhou, Ross 2021): for each kept state
    :math:`s_t` of ``episodes`` and the action :math:`a_t` actually taken there,
    :math:`Q(s_t, a_t) = \min_i Q_i(s_t, a_t)`, the clipped double-Q value of the twin critics
    (the minimum the actor maximises and the SAC target takes, there over the target copies),
    against :math:`G_t` (:func:`discounted_returns`); ``bias = mean(Q - G)`` and
    ``bias_normalized = bias / |mean G|``.

    Which states: an episode that ``terminated`` has its whole return, so all its states count.
    For one the time limit cut (``truncated``, or neither flag) the return after the cut is
    unknown and :math:`G_t` misses a tail of weight :math:`\gamma^{T-t}`; only the states with
    :math:`\gamma^{T-t} \le` ``tail`` are kept (γ = 0.99, tail = 0.01: all but the last 459
    steps of the episode).

    What it is not: the critic is a *soft* Q, whose target also counts the entropy bonus
    :math:`-\alpha \log\pi` of the stochastic policy in later steps, while ``G`` sums the
    rewards of the (deterministic) evaluation episodes only; so even an exact critic shows a
    positive bias of the order of the discounted entropy bonus. REDQ's own measure ran extra
    stochastic episodes and added that bonus; this one takes no environment step more than the
    evaluation did. Track it over training and across runs rather than reading its level alone.

    Args:
        agent: a :class:`~mbpo_lib.SAC`, or anything with ``critic(obs [B, obs_dim], act [B,
            act_dim]) -> [copies, B]`` (``critic_target`` too with ``target=True``), optionally
            ``device`` and ``config.gamma`` / ``config.reward_scale``.
        episodes: evaluation episodes (:class:`~mbpo_lib.envs.EvalEpisode`, from
            :func:`~mbpo_lib.envs.evaluate_episodes`): each with ``observations`` ``[T + 1 or T,
            obs_dim]``, ``actions [T, act_dim]``, ``rewards [T]`` and ``terminated``.
        gamma: the discount (None: the agent's, ``agent.config.gamma``).
        tail: the largest weight of the unknown tail a cut episode's state may have to be kept,
            in [0, 1].
        target: read the target critics instead of the online ones.

    Rewards are multiplied by the agent's ``config.reward_scale`` (1 by default), as its target
    does. No random number is drawn and nothing of the agent changes.
    """
    config = getattr(agent, "config", None)
    if gamma is None:
        gamma = getattr(config, "gamma", None)
        if gamma is None:
            raise ValueError("gamma=None means the agent's discount, but the agent has no config.gamma; "
                             "give gamma")
    if isinstance(tail, bool) or not isinstance(tail, (int, float, np.floating)) or not 0 <= tail <= 1:
        raise ValueError(f"tail must be a number in [0, 1] (the largest weight of a cut episode's unknown "
                         f"return a kept state may have), got {tail!r}")
    scale = float(getattr(config, "reward_scale", 1.0))
    critic = getattr(agent, "critic_target" if target else "critic", None)
    if not callable(critic):
        raise TypeError(f"agent must have {'critic_target' if target else 'critic'}(obs, act) -> [copies, B] "
                        f"(a SAC does), got {type(agent).__name__}")
    states, actions, returns = [], [], []
    for i, episode in enumerate(episodes):
        rewards = np.asarray(episode.rewards, dtype=np.float64)
        length = rewards.shape[0]
        obs, act = np.asarray(episode.observations), np.asarray(episode.actions)
        if rewards.ndim != 1 or obs.ndim != 2 or obs.shape[0] not in (length, length + 1) \
                or act.ndim != 2 or act.shape[0] != length:
            raise ValueError(f"episode {i}: observations must be [T + 1 or T, obs_dim], actions [T, act_dim] "
                             f"and rewards [T], got {list(obs.shape)}, {list(act.shape)}, "
                             f"{list(rewards.shape)}")
        g = discounted_returns(scale * rewards, gamma)
        if episode.terminated:
            keep = np.ones(length, dtype=bool)
        else:
            keep = float(gamma) ** (length - np.arange(length, dtype=np.float64)) <= tail
        states.append(obs[:length][keep])
        actions.append(act[keep])
        returns.append(g[keep])
    n = int(sum(len(g) for g in returns))
    if n == 0:
        return QValueBias(math.nan, math.nan, math.nan, math.nan, 0)
    g = np.concatenate(returns)
    device = getattr(agent, "device", None) or torch.device("cpu")
    obs_t = torch.as_tensor(np.concatenate(states), dtype=torch.float32, device=device)
    act_t = torch.as_tensor(np.concatenate(actions), dtype=torch.float32, device=device)
    with torch.no_grad():
        q = torch.cat([critic(obs_t[i:i + Q_CHUNK_ROWS], act_t[i:i + Q_CHUNK_ROWS]).amin(0)
                       for i in range(0, n, Q_CHUNK_ROWS)])
    q = q.double().cpu().numpy()
    q_mean, mc_return, bias = float(q.mean()), float(g.mean()), float((q - g).mean())
    normalized = bias / abs(mc_return) if mc_return != 0 else math.nan
    return QValueBias(q_mean, mc_return, bias, normalized, n)
