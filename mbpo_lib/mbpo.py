"""The MBPO trainer: the loop of the series' design, everything on one device.

One real step at a time, counting every real step (the random warm-up included) in
``env_steps``::

    for each real step t:
        if t < init_exploration_steps:   act uniformly at random
        else:
            s = t - init_exploration_steps            (steps into training; epoch = s // epoch_length)
            if s % model_train_freq == 0 and real_ratio < 1:
                fit the ensemble on all real data (warm-started), unless frozen (see below)
                k = rollout_schedule(epoch); grow the model buffer to retain * k * B * fits/epoch
                branched_rollout(k) from rollout_batch_size real start states into the model buffer
                  (rollout_start="reset": reset_rollout of B * k rows from reset states instead)
            act with the stochastic policy
        step the env, store (s, a, r, s', terminated) in the real buffer; reset on terminated or truncated
        if t >= init_exploration_steps:  G SAC updates on sample_mixed(real, model, real_ratio, 256)
        at the end of each epoch: measure the last fit's model on the real steps since that fit,
                                  evaluate (deterministic episodes) and measure the critic's bias on
                                  them, log a row of metrics, checkpoint

as the official code does (its model fits at the epoch's steps 0, 250, 500 and 750). With
``real_ratio = 1`` no model is fitted and the loop is plain SAC on real data, the baseline of
notebook 06 (set ``updates_per_step`` to 1 for SAC's usual one update per step).

Model monitoring (``config.monitor_model``, on by default): at the end of each epoch the model
of the epoch's last fit is measured on the real steps taken since that fit, which it never
trained on (:func:`mbpo_lib.diagnostics.model_error_report`): its one-step error per output,
its open-loop error for k = 1..5 on windows that stay inside one episode, and the rank
correlation of the ensemble's disagreement with its error. These are the ``diag_*`` columns of
the metrics (:attr:`MBPO.metric_columns`; NaN where no model was fitted). The monitoring draws
from its own fixed-seed generator, never from the run's, and costs milliseconds next to a fit.

A run with a ``run_dir`` writes ``config.json``, ``metrics.csv`` and ``metrics.jsonl`` (one
row per epoch, both rewritten atomically after each epoch) and ``checkpoint.pt``: every
``checkpoint_every`` epochs, at the end of :meth:`MBPO.train`, and when the run is interrupted
(Ctrl-C or SIGTERM: the loop finishes the current real step, saves, then raises
``KeyboardInterrupt``). A checkpoint holds everything needed to continue exactly: networks,
normaliser, elites, optimisers, both buffers, the environment's simulator state, every random
generator and every counter, so on the CPU a resumed run equals an uninterrupted one step for
step. It is written to a temporary file and renamed into place, and the checkpoint it replaces
is kept as ``checkpoint.prev.pt`` (:mod:`mbpo_lib.files`); loading verifies the stored checksums
and falls back to the previous checkpoint, saying so, when the newest is damaged.

Faults stop the run with a message, never with a broken checkpoint:

- the environment returns a NaN or infinite observation or reward: :class:`EnvironmentDataError`
  names the step and the field; the bad row never enters the real buffer, the episode is
  abandoned (the env is reset) and a checkpoint is saved, so ``--resume`` continues (e.g. after
  the environment is fixed);
- SAC diverges (a non-finite loss or action): the updates' metrics are summed on the device, and
  the sum's finiteness is read once per real step, right after the action has come to the host
  (where the loop waits for the device anyway); :class:`TrainingDivergedError` names SAC, the
  step and the last good checkpoint, which is left untouched, and what to try;
- the model's fit diverges: the same, naming the model;
- the environment's observation or action space changes after a reset (the model and both
  buffers are sized from them): :class:`EnvironmentDataError` naming both spaces and the step.

Controlled experiments (issue 17; both off by default, and then the run is exactly MBPO's):
``config.rollout_start = "reset"`` replaces the branched rollouts by the rival design the paper
argues against, as many model transitions per fit from long rollouts that start at the task's
reset states (:func:`~mbpo_lib.rollout.reset_rollout`; the reset states come from a second
environment reset with seeds ``SeedSequence([seed, 5, n])`` for its n-th reset, a count kept in
the checkpoint, so no other random stream moves and a resumed run stays exact);
``config.freeze_model_after_epoch = e`` stops fitting the model after epoch e, and rollouts go on
with the frozen model (the later rows log ``model_fits`` 0 and NaN fit columns).

Critic monitoring: each evaluation's episodes are kept (:func:`~mbpo_lib.envs.evaluate_episodes`)
and the critic's Q on their states is compared with the real discounted return
(:func:`~mbpo_lib.diagnostics.q_value_bias`): the ``eval_q_*`` columns (:data:`Q_BIAS_COLUMNS`).
No step or random draw is added, so the evaluation is the one it was without them.

Any Gymnasium task works (``MBPOConfig.env_id``, ``env_kwargs``, ``env_module``; dimensions
from its spaces). Rollouts end rows by ``config.termination``: the task's exact rule, never, a
user's function, or a :class:`~mbpo_lib.learned_termination.TerminationClassifier` fitted right
after each model fit on the real ``terminated`` flags (its holdout precision and recall are the
``termination_precision`` and ``termination_recall`` columns of the metrics); ``config.reward``
replaces the model's reward in rollouts by a given function.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .buffer import ReplayBuffer, sample_mixed
from .config import MBPOConfig
from .diagnostics import diagnostic_columns, model_error_report, q_value_bias
from .dynamics import DynamicsModel
from .envs import env_state, episode_return_stats, evaluate_episodes, make_env, restore_env_state
from .files import atomic_write, load_checkpoint, previous_checkpoint, save_checkpoint
from .learned_termination import TerminationClassifier
from .rollout import branched_rollout, model_buffer_capacity, reset_rollout, rollout_schedule
from .sac import SAC
from .task_functions import CheckedFunction, load_function
from .termination import resolve_termination

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
SAC_METRICS = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean")
PHASES = ("env", "model", "rollout", "sac", "eval", "monitor")
# The critic against the real discounted return on each evaluation's episodes
# (mbpo_lib.diagnostics.q_value_bias): QValueBias's fields, in order.
Q_BIAS_COLUMNS = ("eval_q_mean", "eval_mc_return", "eval_q_bias", "eval_q_bias_normalized", "eval_q_states")
# The columns of metrics.csv, in order (metrics.jsonl has the same keys), before the model
# monitoring's diag_* columns, which depend on the observation's size (MBPO.metric_columns).
# Q_BIAS_COLUMNS were added last: a run resumed from a checkpoint written before them has empty
# cells there in its older rows.
METRIC_COLUMNS = (
    "epoch", "env_steps", "episodes", "train_return", "eval_return", "eval_return_std", "eval_episodes",
    "model_fits", "model_holdout_mse", "model_fit_epochs", "model_stopped_early", "elites", "k",
    "rollout_transitions", "rollout_mean_length", "rollout_termination_rate", "rollout_mean_reward",
    "model_buffer_rows", "model_buffer_capacity", "model_buffer_mib", "real_buffer_rows", "sac_updates",
    *SAC_METRICS, *(f"seconds_{phase}" for phase in PHASES), "seconds_total", *Q_BIAS_COLUMNS,
)
# With termination="learned", after the fixed columns: the classifier's holdout scores at each fit.
TERMINATION_COLUMNS = ("termination_precision", "termination_recall")


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """A run's ``metrics.csv`` read back: one dict per epoch row, every cell a float, NaN where
    the cell is empty or not a number (the ``elites`` list, the True/False columns). A file
    written before a column existed simply lacks it (``row.get(name, math.nan)``)."""
    with open(path, newline="") as f:
        return [{key: _float_or_nan(value) for key, value in row.items()} for row in csv.DictReader(f)]


class EnvironmentDataError(ValueError):
    """The environment returned a non-finite observation or reward."""


class TrainingDivergedError(FloatingPointError):
    """SAC's update or the model's fit produced non-finite values."""


class _Epoch:
    """The running sums of one epoch's metrics (part of a checkpoint, so a resumed epoch's row
    is the row the uninterrupted run writes)."""

    def __init__(self) -> None:
        self.sac: torch.Tensor | None = None   # summed on the device, in SAC_METRICS order
        self.sac_updates = 0
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.episode_returns: list[float] = []
        self.model_fits = 0

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.seconds = {**dict.fromkeys(PHASES, 0.0), **self.seconds}   # a phase added since


class MBPO:
    """Model-Based Policy Optimization on one Gymnasium task (the module docstring has the loop).

    Args:
        config: an :class:`~mbpo_lib.config.MBPOConfig` (e.g. ``preset("Hopper-v5")``).
        device: where the networks, both buffers and every rollout live (default CPU).
        run_dir: folder for ``config.json``, ``metrics.csv``/``.jsonl`` and ``checkpoint.pt``;
            None keeps everything in memory (``self.history``).
        fast_sac: on a CUDA device, SAC's opt-in speed path (``torch.compile`` of the losses and
            the whole update replayed as a CUDA graph; see :class:`~mbpo_lib.sac.SAC`). Off by
            default: the eager path is the reference. Ignored on the CPU.

    Use ``MBPO(config).train()`` to run the whole budget, or ``train(steps)`` for a part of it;
    :meth:`load` continues a run from its checkpoint.
    """

    def __init__(self, config: MBPOConfig, device: torch.device | str | None = None,
                 run_dir: str | Path | None = None, *, fast_sac: bool = False) -> None:
        if not isinstance(config, MBPOConfig):
            raise TypeError(f"config must be an MBPOConfig (e.g. mbpo_lib.preset('Hopper-v5')), got "
                            f"{type(config).__name__}")
        self.config = c = config.validate()
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.env = make_env(c.env_id, seed=c.seed, env_module=c.env_module, **c.env_kwargs)
        self._spaces = copy.deepcopy((self.env.observation_space, self.env.unwrapped.action_space))
        self.obs_dim, self.act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        # metrics.csv's columns: the fixed ones, the learned termination's, the model monitoring's
        learned = c.termination == "learned"
        self.metric_columns: tuple[str, ...] = (*METRIC_COLUMNS, *(TERMINATION_COLUMNS if learned else ()),
                                                *diagnostic_columns(self.obs_dim))
        self.termination_model = (TerminationClassifier(self.obs_dim, threshold=c.termination_threshold,
                                                        device=self.device, seed=c.seed + 4)
                                  if learned else None)
        self.termination = self.termination_model or resolve_termination(c.termination, c.env_id)
        self.reward_fn = (None if c.reward is None else
                          CheckedFunction(load_function(c.reward, "reward"), "reward", c.reward))
        self.model = DynamicsModel(self.obs_dim, self.act_dim, c.ensemble, device=self.device, seed=c.seed)
        fast = fast_sac and self.device.type == "cuda"
        self.agent = SAC(self.obs_dim, self.act_dim, c.sac, device=self.device, seed=c.seed + 1,
                         compile=fast, cuda_graph=fast)
        self.real = ReplayBuffer(min(c.real_buffer_capacity, c.total_steps), self.obs_dim, self.act_dim,
                                 device=self.device)
        self.k = rollout_schedule(0, c.rollout_schedule)
        # real_ratio = 1 (plain SAC) never rolls out: a one-row model buffer that stays empty
        capacity = model_buffer_capacity(c, self.k) if c.real_ratio < 1.0 else 1
        self.model_buffer = ReplayBuffer(capacity, self.obs_dim, self.act_dim, device=self.device,
                                         dtype=c.model_buffer_torch_dtype)
        self.generator = torch.Generator(device=self.device).manual_seed(c.seed + 2)
        self.action_rng = np.random.default_rng(c.seed + 3)   # the warm-up's uniform actions
        # rollout_start="reset": a second env of the task gives the start states; its n-th reset
        # takes the seed SeedSequence([seed, 5, n]), n = reset_count (kept in checkpoints)
        self.reset_env: Any = None
        self.reset_count = 0
        self.horizon: int | None = None
        if c.rollout_start == "reset" and c.real_ratio < 1.0:
            self.horizon = self.env.spec.max_episode_steps if self.env.spec is not None else None
            if not (isinstance(self.horizon, int) and self.horizon >= 1):
                self.env.close()
                raise ValueError(f"rollout_start='reset' rolls the model out up to the episode length, and "
                                 f"{c.env_id} has no time limit (its spec's max_episode_steps is "
                                 f"{self.horizon!r}); give it one, e.g. env_kwargs max_episode_steps=1000 "
                                 "or gymnasium.register(..., max_episode_steps=...)")
            self.reset_env = make_env(c.env_id, seed=None, env_module=c.env_module, **c.env_kwargs)
        self.obs, _ = self.env.reset(seed=c.seed)
        self._check_spaces(self.obs, after=0)
        self.env_steps = 0
        self.episodes = 0
        self.episode_return = 0.0
        self.history: list[dict[str, Any]] = []
        self.last_fit: dict[str, Any] = {}
        self.last_rollout: dict[str, Any] = {}
        self._epoch = _Epoch()
        self._pending: list[tuple] = []   # official_pool_timing: the running episode's rows
        self._stop_requested = False
        self.last_checkpoint: tuple[Path, int] | None = None   # (file, env step) of the newest save or load

    # --- the loop --------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """The training epoch the next real step belongs to (0 during the warm-up)."""
        return max(0, self.env_steps - self.config.init_exploration_steps) // self.config.epoch_length

    def train(self, steps: int | None = None,
              callbacks: Iterable[Callable[[MBPO, dict[str, Any]], Any]] = (),
              progress: bool | None = None) -> list[dict[str, Any]]:
        """Run ``steps`` more real steps (None: up to ``config.total_steps``); return the metrics
        rows of all epochs so far.

        ``callbacks`` are called as ``callback(mbpo, row)`` after each epoch's row is logged; one
        returning True stops training after that epoch. ``progress``: a tqdm bar with the latest
        evaluation return (None: only when attached to a terminal).
        """
        c = self.config
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise ValueError(f"steps must be None or an int >= 0, got {steps!r}")
        end = c.total_steps if steps is None else min(c.total_steps, self.env_steps + steps)
        callbacks = list(callbacks)
        if self.run_dir is not None:
            atomic_write(self.run_dir / "config.json",
                          lambda f: f.write(json.dumps(c.to_dict(), indent=2).encode()))
        bar = self._progress_bar(end, progress)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def request_stop(signum, frame):   # finish the current real step, then save and stop
            self._stop_requested = True

        in_main_thread = _in_main_thread()
        if in_main_thread:
            for sig in previous:
                signal.signal(sig, request_stop)
        try:
            while self.env_steps < end:
                self._real_step()
                if bar is not None:
                    bar.update(1)
                if self._epoch_ended():
                    row = self._end_epoch()
                    if bar is not None:
                        bar.set_postfix(eval_return=f"{row['eval_return']:.1f}", k=row["k"])
                    if any(callback(self, row) is True for callback in callbacks):
                        break
                if self._stop_requested:
                    self._stop_requested = False
                    if self.run_dir is not None:
                        self.save(self.run_dir / CHECKPOINT_NAME)
                    raise KeyboardInterrupt(f"MBPO stopped at env step {self.env_steps}"
                                            + (f"; checkpoint in {self.run_dir}" if self.run_dir else ""))
            path = None if self.run_dir is None else self.run_dir / CHECKPOINT_NAME
            if path is not None and self.last_checkpoint != (path, self.env_steps):   # not saved just now
                self.save(path)
        finally:
            if in_main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if bar is not None:
                bar.close()
        return self.history

    def _progress_bar(self, end: int, progress: bool | None):
        if progress is False:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=end, initial=self.env_steps, unit="step", desc=self.config.env_id,
                    disable=None if progress is None else False, dynamic_ncols=True)

    def _real_step(self) -> None:
        c, timer = self.config, self._epoch.seconds
        training = self.env_steps >= c.init_exploration_steps
        if training and c.real_ratio < 1.0:
            into = self.env_steps - c.init_exploration_steps
            if into % c.model_train_freq == 0:
                self._fit_and_rollout(epoch=into // c.epoch_length)
        start = time.perf_counter()
        if training:
            action = self.agent.act(self.obs)   # waits for the device: the check below costs no sync
            self._check_sac(action)
        else:
            action = self.action_rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        if not (np.isfinite(next_obs).all() and math.isfinite(float(reward))):
            self._stop_on_environment_data(next_obs, reward)
        row = (self.obs, action, float(reward), next_obs, bool(terminated))   # never truncated
        if c.official_pool_timing:
            self._pending.append(row)     # D1: the episode's rows enter the pool when it ends
        else:
            self.real.add(*row)
        self.episode_return += float(reward)
        if terminated or truncated:
            self._flush_pending()
            self.episodes += 1
            self._epoch.episode_returns.append(self.episode_return)
            self.episode_return = 0.0
            next_obs, _ = self.env.reset()
            self._check_spaces(next_obs, after=self.env_steps + 1)
        self.obs = next_obs
        self.env_steps += 1
        timer["env"] += time.perf_counter() - start
        if training and c.updates_per_step and self._pool_ready():
            start = time.perf_counter()
            sums = self._epoch.sac
            for _ in range(c.updates_per_step):   # no host sync: metrics are summed on the device
                batch = sample_mixed(self.real, self.model_buffer, c.real_ratio, c.sac.batch_size,
                                     self.generator)
                metrics = self.agent.update_on_device(batch)
                sums = metrics if sums is None else sums + metrics
            self._epoch.sac = sums
            self._epoch.sac_updates += c.updates_per_step
            timer["sac"] += time.perf_counter() - start

    def _flush_pending(self) -> None:
        """``official_pool_timing``: the finished episode's rows into the real buffer, in order."""
        if self._pending:
            obs, act, rew, next_obs, done = (np.stack([np.asarray(r[i]) for r in self._pending])
                                             for i in range(5))
            self.real.add_batch(obs, act, rew.astype(np.float32), next_obs, done)
            self._pending = []

    def _pool_ready(self) -> bool:
        """SAC may update: always, or with ``official_pool_timing`` once the real buffer holds
        ``min_pool_size`` rows (D2: on the pendulums the official updates start after step 500)."""
        c = self.config
        return not c.official_pool_timing or len(self.real) >= c.min_pool_size

    def _check_spaces(self, obs: np.ndarray, after: int) -> None:
        """Stop with :class:`EnvironmentDataError` when a reset changed the observation or action
        space, or gave an observation of another shape: the model and both buffers are sized once."""
        spaces = (self.env.observation_space, self.env.unwrapped.action_space)
        shape = np.shape(obs)
        if spaces == self._spaces and shape == (self.obs_dim,):
            return
        (obs_space, act_space), (old_obs, old_act) = spaces, self._spaces
        what = (f"observation space from {old_obs} to {obs_space}" if obs_space != old_obs else
                f"action space from {old_act} to {act_space}" if act_space != old_act else
                f"observation's shape from ({self.obs_dim},) to {shape}")
        raise EnvironmentDataError(
            f"the environment {self.config.env_id} changed its {what} at a reset after env step "
            f"{after}; mbpo_lib needs the same spaces in every episode (the model and the buffers "
            f"are sized from them); {self._last_good()}")

    def _last_good(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint was written yet (the run must start again)"
        path, step = self.last_checkpoint
        return f"the last good checkpoint, {path} (env step {step}), is untouched"

    def _check_sac(self, action: np.ndarray) -> None:
        """Stop with :class:`TrainingDivergedError` once SAC's updates or its action are not finite."""
        sums = self._epoch.sac
        if np.isfinite(action).all() and (sums is None or bool(torch.isfinite(sums).all())):
            return
        what = "its action" if sums is None or bool(torch.isfinite(sums).all()) else "its losses"
        raise TrainingDivergedError(
            f"SAC diverged: {what} became NaN or inf after env step {self.env_steps} (epoch {self.epoch}); "
            f"{self._last_good()}. Start a new run with lower learning rates (e.g. --set sac.critic_lr=1e-4 "
            "--set sac.actor_lr=1e-4) or check the rewards' scale")

    def _stop_on_environment_data(self, next_obs: np.ndarray, reward: float) -> None:
        """The environment gave a non-finite observation or reward: keep it out of the real buffer,
        abandon the episode, save a checkpoint (with a run folder) and stop with a message."""
        bad = []
        if not np.isfinite(next_obs).all():
            where = np.flatnonzero(~np.isfinite(np.asarray(next_obs, dtype=np.float64)))
            bad.append(f"observation (dimension(s) {where.tolist()}: {np.asarray(next_obs)[where].tolist()})")
        if not math.isfinite(float(reward)):
            bad.append(f"reward ({float(reward)})")
        message = (f"the environment {self.config.env_id} returned a non-finite " + " and ".join(bad)
                   + f" at env step {self.env_steps + 1}; that step was not stored")
        saved = ""
        try:
            obs, _ = self.env.reset()
            if not np.isfinite(obs).all():
                raise ValueError(f"its reset also gave a non-finite observation {np.asarray(obs).tolist()}")
        except Exception as error:   # a broken env: keep the last checkpoint as it is
            raise EnvironmentDataError(f"{message}; resetting the environment failed ({error}); "
                                       f"{self._last_good()}") from None
        self.obs, self.episode_return, self._pending = obs, 0.0, []   # the episode is abandoned, not counted
        if self.run_dir is not None:
            path = self.save(self.run_dir / CHECKPOINT_NAME)
            saved = (f"; a checkpoint without it was saved in {path} (env step {self.env_steps}, its "
                     "episode abandoned): --resume continues from there, e.g. after fixing the environment")
        raise EnvironmentDataError(message + saved)

    def model_frozen(self, epoch: int) -> bool:
        """Whether the model is no longer fitted in training epoch ``epoch``
        (``config.freeze_model_after_epoch``: fitted through that epoch, never after)."""
        last = self.config.freeze_model_after_epoch
        return last is not None and epoch > last

    def _fit_and_rollout(self, epoch: int) -> None:
        if self.model_frozen(epoch):
            self.last_fit = {}   # no fit: this epoch's fit columns stay NaN, model_fits 0
        else:
            self._fit(epoch)
        self._rollout(epoch)

    def _fit(self, epoch: int) -> None:
        timer = self._epoch.seconds
        try:
            report = self.model.fit(self.real)
        except FloatingPointError as error:
            raise TrainingDivergedError(
                f"the model's fit diverged at env step {self.env_steps} (epoch {epoch}): {error}; "
                f"{self._last_good()}. Start a new run with a lower learning rate (e.g. --set "
                "ensemble.lr=3e-4)") from None
        timer["model"] += report.seconds
        self._epoch.model_fits += 1
        self.last_fit = {"model_holdout_mse": report.elite_holdout_mse, "model_fit_epochs": report.epochs,
                         "model_stopped_early": report.stopped_early,
                         "elites": " ".join(map(str, report.elites))}
        if self.termination_model is not None:   # termination="learned": fitted with the model
            try:
                learned = self.termination_model.fit(self.real)
            except FloatingPointError as error:
                raise TrainingDivergedError(f"the termination classifier's fit diverged at env step "
                                            f"{self.env_steps}: {error}; {self._last_good()}") from None
            timer["model"] += learned.seconds
            self.last_fit.update(termination_precision=learned.precision, termination_recall=learned.recall)

    def _rollout(self, epoch: int) -> None:
        c, timer = self.config, self._epoch.seconds
        start = time.perf_counter()
        k = rollout_schedule(epoch, c.rollout_schedule)
        if k != self.k:
            self.k = k
            self.model_buffer.resize(model_buffer_capacity(c, k))
        if c.rollout_start == "reset":
            stats = reset_rollout(self.model, self.agent, self._reset_states, c.rollout_batch_size * k,
                                  self.horizon, self.termination, generator=self.generator,
                                  buffer=self.model_buffer, reward=self.reward_fn)
        else:
            start_obs = self.real.sample(c.rollout_batch_size, self.generator).obs
            stats = branched_rollout(self.model, self.agent, start_obs, k, self.termination,
                                     generator=self.generator, buffer=self.model_buffer,
                                     reward=self.reward_fn)
        self.last_rollout = {"rollout_transitions": stats.transitions,
                             "rollout_mean_length": stats.mean_length,
                             "rollout_termination_rate": stats.termination_rate,
                             "rollout_mean_reward": stats.mean_reward}
        timer["rollout"] += time.perf_counter() - start

    def _reset_states(self, n: int) -> torch.Tensor:
        """``n`` fresh start states ``[n, obs_dim]`` on the device for :func:`reset_rollout`: the
        second env reset with the seeds ``SeedSequence([seed, 5, reset_count])``, one per state."""
        rows = []
        for _ in range(n):
            sequence = np.random.SeedSequence([self.config.seed, 5, self.reset_count])
            obs, _ = self.reset_env.reset(seed=int(sequence.generate_state(1, np.uint64)[0]))
            self.reset_count += 1
            if np.shape(obs) != (self.obs_dim,) or not np.isfinite(obs).all():
                raise EnvironmentDataError(
                    f"the environment {self.config.env_id}'s reset {self.reset_count} for a reset rollout "
                    f"gave the observation {np.asarray(obs).tolist()} (a finite [{self.obs_dim}] vector "
                    "was expected)")
            rows.append(np.asarray(obs, dtype=np.float32))
        return torch.as_tensor(np.stack(rows), device=self.device)

    def _epoch_ended(self) -> bool:
        c = self.config
        into = self.env_steps - c.init_exploration_steps
        return (into > 0 and into % c.epoch_length == 0) or self.env_steps == c.total_steps

    def _end_epoch(self) -> dict[str, Any]:
        c, acc = self.config, self._epoch
        epoch = max(0, math.ceil((self.env_steps - c.init_exploration_steps) / c.epoch_length) - 1)
        row: dict[str, Any] = dict.fromkeys(self.metric_columns, float("nan"))
        start = time.perf_counter()
        monitor = self._monitor_model()
        acc.seconds["monitor"] += time.perf_counter() - start
        eval_return = eval_std = float("nan")
        critic: dict[str, float] = {}
        if (epoch + 1) % c.eval_every == 0 or self.env_steps == c.total_steps:
            start = time.perf_counter()
            episodes = evaluate_episodes(self.agent, c.env_id, episodes=c.eval_episodes,
                                         seed=10_000 * (c.seed + 1) + 100 * epoch,
                                         env_module=c.env_module, **c.env_kwargs)
            eval_return, eval_std = episode_return_stats(episodes)
            critic = dict(zip(Q_BIAS_COLUMNS, q_value_bias(self.agent, episodes), strict=True))
            acc.seconds["eval"] += time.perf_counter() - start
        sac = dict.fromkeys(SAC_METRICS, float("nan"))
        if acc.sac is not None:
            sac = dict(zip(SAC_METRICS, (acc.sac / acc.sac_updates).tolist(), strict=True))
            if not all(math.isfinite(value) for value in sac.values()):
                raise TrainingDivergedError(
                    f"SAC diverged: its losses became NaN or inf during epoch {epoch} ({sac}); "
                    f"{self._last_good()}. Start a new run with lower learning rates (e.g. --set "
                    "sac.critic_lr=1e-4 --set sac.actor_lr=1e-4)")
        row.update(
            epoch=epoch, env_steps=self.env_steps, episodes=self.episodes,
            train_return=(float(np.mean(acc.episode_returns)) if acc.episode_returns else float("nan")),
            eval_return=eval_return, eval_return_std=eval_std, eval_episodes=c.eval_episodes,
            model_fits=acc.model_fits, k=self.k,
            model_buffer_rows=len(self.model_buffer), model_buffer_capacity=self.model_buffer.capacity,
            model_buffer_mib=round(self.model_buffer.nbytes / 2 ** 20, 3), real_buffer_rows=len(self.real),
            sac_updates=acc.sac_updates,
            **sac,
            **{f"seconds_{phase}": acc.seconds[phase] for phase in PHASES},
            seconds_total=sum(acc.seconds.values()),
        )
        row.update(self.last_fit)
        row.update(self.last_rollout)
        row.update(monitor)
        row.update(critic)
        self.history.append(row)
        self._epoch = _Epoch()
        if self.run_dir is not None:
            self._write_metrics()
            if c.checkpoint_every and (epoch + 1) % c.checkpoint_every == 0:
                self.save(self.run_dir / CHECKPOINT_NAME)
        return row

    def _monitor_model(self) -> dict[str, float]:
        """The ``diag_*`` columns: the last fit's model on the real steps since that fit.

        Fits happen at steps ``init_exploration_steps + j * model_train_freq``, so at an epoch's
        end the newest ``(into - 1) % model_train_freq + 1`` real steps came after the last fit.
        Nothing when monitoring is off or no model has been fitted (plain SAC, or none yet).
        """
        c = self.config
        if not (c.monitor_model and c.real_ratio < 1.0 and self.model.fitted):
            return {}
        into = self.env_steps - c.init_exploration_steps
        since_fit = (into - 1) % c.model_train_freq + 1
        report = model_error_report(self.model, self.real.latest(since_fit))
        return report.metrics()

    def _write_metrics(self) -> None:
        def csv_bytes(f) -> None:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=self.metric_columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.history)
            f.write(text.getvalue().encode())

        atomic_write(self.run_dir / "metrics.csv", csv_bytes)
        atomic_write(self.run_dir / "metrics.jsonl",
                      lambda f: f.write("".join(json.dumps(row) + "\n" for row in self.history).encode()))

    def extend(self, total_steps: int) -> None:
        """Raise the run's budget to ``total_steps`` real steps (the one deliberate change of a
        run's config): the real buffer grows with it, and with a run folder the change is
        appended to ``config_history.jsonl`` there (time, env step, old and new budget)."""
        old = self.config.total_steps
        if not _is_count(total_steps) or total_steps <= old:
            raise ValueError(f"a run's budget can only grow: total_steps must be an int > {old} (its "
                             f"budget now), got {total_steps!r}")
        import dataclasses

        self.config = dataclasses.replace(self.config, total_steps=total_steps).validate()
        capacity = min(self.config.real_buffer_capacity, total_steps)
        if capacity > self.real.capacity:
            self.real.resize(capacity)
        if self.run_dir is not None:
            path = self.run_dir / "config_history.jsonl"
            before = path.read_bytes() if path.is_file() else b""
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "env_steps": self.env_steps,
                     "change": {"total_steps": [old, total_steps]}}
            atomic_write(path, lambda f: f.write(before + (json.dumps(entry) + "\n").encode()))
            atomic_write(self.run_dir / "config.json",
                         lambda f: f.write(json.dumps(self.config.to_dict(), indent=2).encode()))

    # --- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue this run exactly."""
        return {
            "format": CHECKPOINT_FORMAT, "config": self.config.to_dict(),
            "model": self.model.state_dict(), "agent": self.agent.state_dict(),
            "real": self.real.state_dict(), "model_buffer": self.model_buffer.state_dict(),
            "generator": self.generator.get_state(), "action_rng": self.action_rng.bit_generator.state,
            "env": env_state(self.env), "obs": np.asarray(self.obs).copy(),
            "env_steps": self.env_steps, "episodes": self.episodes, "episode_return": self.episode_return,
            "k": self.k, "history": self.history, "last_fit": self.last_fit, "pending": list(self._pending),
            "reset_count": self.reset_count,
            "last_rollout": self.last_rollout, "epoch_sums": self._epoch.state_dict(),
            "termination_model": (None if self.termination_model is None
                                  else self.termination_model.state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT} "
                             "(written by another mbpo_lib version?)")
        saved = MBPOConfig.from_dict(state["config"])
        if saved != self.config:
            raise ValueError("the checkpoint was written with another config; build the trainer with "
                             "MBPO.load(path), which takes the checkpoint's own")
        self.model.load_state_dict(state["model"])
        self.agent.load_state_dict(state["agent"])
        self.real.load_state_dict(state["real"])
        self.model_buffer.load_state_dict(state["model_buffer"])
        self.generator.set_state(state["generator"])
        self.action_rng.bit_generator.state = state["action_rng"]
        restore_env_state(self.env, state["env"])
        self.obs = np.asarray(state["obs"])
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.episode_return, self.k = float(state["episode_return"]), int(state["k"])
        self.history = list(state["history"])
        self.last_fit, self.last_rollout = dict(state["last_fit"]), dict(state["last_rollout"])
        self._epoch.load_state_dict(state["epoch_sums"])
        self._pending = list(state.get("pending", []))
        self.reset_count = int(state.get("reset_count", 0))   # absent before rollout_start existed
        if self.termination_model is not None:
            self.termination_model.load_state_dict(state["termination_model"])

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically (temporary file, fsync, rename), keeping the one it
        replaces as ``<name>.prev.pt`` (:func:`mbpo_lib.files.save_checkpoint`); return its path.

        Refuses (``ValueError``) a state whose real buffer or current observation is not finite,
        so a damaged run can never overwrite a good checkpoint.
        """
        path = Path(path)
        if not np.isfinite(np.asarray(self.obs, dtype=np.float64)).all():
            raise ValueError(f"not saving {path}: the current observation is not finite ({self.obs})")
        self.real.check_finite()
        save_checkpoint(self.state_dict(), path)
        self.last_checkpoint = (path, self.env_steps)
        return path

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             run_dir: str | Path | None = "same", *, fast_sac: bool = False) -> MBPO:
        """A trainer continuing the run saved at ``path`` (its config, all its state).

        ``run_dir="same"`` (default) keeps logging next to the checkpoint; None logs nowhere.
        The stored checksums are verified first; when ``path`` is missing, truncated, damaged
        or foreign and its previous checkpoint (``<name>.prev.pt``) is whole, that one is loaded
        with a :class:`~mbpo_lib.files.CheckpointWarning` saying why. Otherwise ``ValueError``
        names the path and what is wrong.
        """
        path = Path(path)
        if not path.is_file() and not previous_checkpoint(path).is_file():
            raise ValueError(f"no checkpoint at {path}")

        def parse(state: Any) -> tuple[dict[str, Any], MBPOConfig]:
            try:
                if state.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError(f"format {state.get('format')!r}, not {CHECKPOINT_FORMAT}")
                return state, MBPOConfig.from_dict(state["config"])
            except Exception as error:   # not ours, or another version's
                raise ValueError(f"{path} is not an MBPO checkpoint of this version "
                                 f"({type(error).__name__}: {error})") from None

        (state, config), used = load_checkpoint(path, parse)
        trainer = cls(config, device=device, run_dir=path.parent if run_dir == "same" else run_dir,
                      fast_sac=fast_sac)
        trainer.load_state_dict(state)   # each part moves its tensors to the trainer's device
        trainer.last_checkpoint = (used, trainer.env_steps)
        return trainer


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
