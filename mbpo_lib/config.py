"""Settings as dataclasses, with the paper's values as defaults and ``validate()`` for clear errors.

The defaults follow the authors' official MBPO code (see the series' ``mbpo-reference.md``).
:class:`MBPOConfig` gathers the whole training loop's settings; :data:`PRESETS` holds one per
environment with the official per-environment values, :func:`preset` picks a variant (Hopper's
paper-appendix schedule) or overrides, and :meth:`MBPOConfig.smoke` shrinks any of them for CI
(the same code path with tiny sizes).

Your own task: :func:`preset` also takes any id ``gymnasium.make`` can build (with a bounded
Box action space and a flat Box observation), given its ``termination`` (``"never"``,
``"learned"`` or ``"package.module:function"``); the other settings take the paper's general
(Hopper-like) values and SAC's target entropy is ``-|A|`` (:data:`GENERAL_SCHEDULE`, the README
says which to reconsider). The config records what re-creates the run: ``env_id``,
``env_kwargs``, ``env_module``, ``termination`` and ``reward``.

This module sits at the bottom of the package: it imports only ``models``, ``envs``,
``precision`` and ``task_functions`` (none of which imports anything above them), so
``dynamics``, ``sac``, ``rollout`` and ``mbpo`` can all import it without a cycle. That is why
the rollout schedules (:class:`Schedule`, :data:`ROLLOUT_SCHEDULES`) live here;
``mbpo_lib.rollout`` re-exports them next to ``rollout_schedule``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import torch

from .envs import SUPPORTED_ENVS, make_env, near_preset
from .models import PAPER_WEIGHT_DECAYS
from .precision import check_matmul_precision
from .task_functions import function_path, is_import_path


@dataclass(frozen=True)
class EnsembleConfig:
    """The dynamics model: a bootstrap ensemble of probabilistic MLPs and how it is fitted.

    Attributes:
        ensemble_size: members trained, each on its own bootstrap of the data (7).
        num_elites: members used for prediction, the lowest holdout error (5).
        hidden_dim, num_layers: each member's MLP (200 units x 4 layers; Humanoid 400).
        weight_decays: L2 coefficient per linear layer, input to output.
        lr, batch_size: Adam's step size and the minibatch per member (1e-3, 256).
        holdout_ratio, max_holdout: the holdout set is min(ratio * N, max_holdout) rows (20 %, 5000).
        improvement_threshold: a member improves when its holdout MSE drops by more than this
            fraction of its best so far (1 %).
        patience: stop once no member has improved for more than this many epochs (5).
        max_epochs: an optional cap on epochs per fit (None: the paper's code has none).
        init_max_logvar, init_min_logvar, logvar_bound_coef: the soft log-variance bounds.
        matmul_precision: ``"highest"`` (float32 products, the default), ``"medium"``
            (products may round their inputs to bfloat16 on the CPU or TensorFloat-32 on CUDA;
            faster) or ``"auto"`` (``"medium"`` where it leaves products exact float32 on the
            device, else ``"highest"``), set only while the model trains and predicts
            (:mod:`mbpo_lib.precision`).
    """

    ensemble_size: int = 7
    num_elites: int = 5
    hidden_dim: int = 200
    num_layers: int = 4
    weight_decays: tuple[float, ...] = PAPER_WEIGHT_DECAYS
    lr: float = 1e-3
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 5000
    improvement_threshold: float = 0.01
    patience: int = 5
    max_epochs: int | None = None
    init_max_logvar: float = 0.5
    init_min_logvar: float = -10.0
    logvar_bound_coef: float = 0.01
    matmul_precision: str = "highest"

    def validate(self) -> EnsembleConfig:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine."""
        positive_ints = ("ensemble_size", "num_elites", "hidden_dim", "num_layers", "batch_size",
                         "max_holdout")
        for name in positive_ints:
            _check_int(self, "EnsembleConfig", name, low=1)
        if self.num_elites > self.ensemble_size:
            raise ValueError(f"EnsembleConfig.num_elites={self.num_elites} exceeds ensemble_size="
                             f"{self.ensemble_size}: elites are chosen among the members")
        decays = self.weight_decays
        if (not isinstance(decays, tuple)
                or not all(_is_number(d) and math.isfinite(d) and d >= 0 for d in decays)):
            raise ValueError(f"EnsembleConfig.weight_decays must be a tuple of finite numbers >= 0, got "
                             f"{decays!r}")
        if len(decays) != self.num_layers + 1:
            raise ValueError(f"EnsembleConfig.weight_decays has {len(decays)} values; "
                             f"num_layers={self.num_layers} needs {self.num_layers + 1}")
        _check_number(self, "EnsembleConfig", "holdout_ratio", low=0.0, high=1.0, open_low=True,
                      open_high=True)
        _check_number(self, "EnsembleConfig", "lr", low=0.0, open_low=True)
        _check_number(self, "EnsembleConfig", "improvement_threshold", low=0.0)
        _check_int(self, "EnsembleConfig", "patience", low=0)
        if self.max_epochs is not None:
            _check_int(self, "EnsembleConfig", "max_epochs", low=1, none_allowed=True)
        for name in ("init_max_logvar", "init_min_logvar"):
            _check_number(self, "EnsembleConfig", name)
        if not self.init_min_logvar < self.init_max_logvar:
            raise ValueError(f"EnsembleConfig.init_min_logvar ({self.init_min_logvar}) must be below "
                             f"init_max_logvar ({self.init_max_logvar})")
        _check_number(self, "EnsembleConfig", "logvar_bound_coef", low=0.0)
        check_matmul_precision(self.matmul_precision, "EnsembleConfig.matmul_precision")
        return self


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _check_number(config: Any, owner: str, name: str, *, low: float | None = None,
                  high: float | None = None, open_low: bool = False, open_high: bool = False) -> None:
    """A finite real number in the given range (bools and strings refused), else ``ValueError``
    naming ``owner.name``, the value and the allowed range."""
    value = getattr(config, name)
    ok = _is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        if low is not None and high is not None:
            allowed = f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        elif low is not None:
            allowed = f"a finite number {'>' if open_low else '>='} {low:g}"
        elif high is not None:
            allowed = f"a finite number {'<' if open_high else '<='} {high:g}"
        else:
            allowed = "a finite number"
        raise ValueError(f"{owner}.{name} must be {allowed}, got {value!r}")


def _check_int(config: Any, owner: str, name: str, *, low: int, none_allowed: bool = False) -> None:
    """An int >= ``low`` (bools and floats refused), else ``ValueError`` naming the value."""
    value = getattr(config, name)
    if not _is_int(value) or value < low:
        allowed = f"None or an int >= {low}" if none_allowed else f"an int >= {low}"
        raise ValueError(f"{owner}.{name} must be {allowed}, got {value!r}")


@dataclass(frozen=True)
class SACConfig:
    """Soft Actor-Critic (Haarnoja et al. 2018) as the official MBPO code runs it (softlearning).

    Attributes:
        hidden_sizes: hidden layers of the actor and of each critic, ReLU ((256, 256)).
        actor_lr, critic_lr, alpha_lr: Adam's step sizes (3e-4 each).
        gamma: the discount (0.99).
        tau: Polyak weight of the target critics, ``target <- (1 - tau) target + tau online`` (5e-3,
            every update).
        batch_size: rows per update that callers sample (256). ``SAC.update`` takes any size.
        target_entropy: the entropy the temperature steers towards; None means ``-act_dim``
            (SAC's default). MBPO sets it per environment (e.g. Hopper -1, Walker2d -3).
        init_log_alpha: the temperature's starting log (0.0 in the MBPO code: alpha = 1).
        learn_alpha: tune the temperature automatically (True); False keeps alpha fixed.
        log_std_min, log_std_max: the actor's log standard deviation is clipped to these
            (-20, 2), as in softlearning (the MBPO code) and stable-baselines3. The upper bound
            keeps the pre-tanh Gaussian from spreading mass only on the saturated ends; the lower
            one merely prevents underflow and lets the policy become nearly deterministic.
        reward_scale: rewards are multiplied by this in the critic's target (1.0).
        matmul_precision: ``"highest"`` (float32 products, the default), ``"medium"``
            (products may round their inputs to bfloat16 on the CPU or TensorFloat-32 on CUDA;
            faster) or ``"auto"`` (``"medium"`` where it leaves products exact float32 on the
            device, else ``"highest"``), set only while the agent acts and learns
            (:mod:`mbpo_lib.precision`).
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 5e-3
    batch_size: int = 256
    target_entropy: float | None = None
    init_log_alpha: float = 0.0
    learn_alpha: bool = True
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    reward_scale: float = 1.0
    matmul_precision: str = "highest"

    def validate(self) -> SACConfig:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine."""
        sizes = self.hidden_sizes
        if (not isinstance(sizes, tuple) or len(sizes) < 1
                or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes)):
            raise ValueError(f"SACConfig.hidden_sizes must be a non-empty tuple of ints >= 1, got {sizes!r}")
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            _check_number(self, "SACConfig", name, low=0.0, open_low=True)
        _check_number(self, "SACConfig", "gamma", low=0.0, high=1.0, open_high=True)
        _check_number(self, "SACConfig", "tau", low=0.0, high=1.0, open_low=True)
        _check_int(self, "SACConfig", "batch_size", low=1)
        if self.target_entropy is not None and not (
                _is_number(self.target_entropy) and math.isfinite(self.target_entropy)):
            raise ValueError("SACConfig.target_entropy must be None (meaning -act_dim) or a finite "
                             f"number, got {self.target_entropy!r}")
        for name in ("init_log_alpha", "log_std_min", "log_std_max", "reward_scale"):
            _check_number(self, "SACConfig", name)
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"SACConfig.log_std_min ({self.log_std_min}) must be below log_std_max "
                             f"({self.log_std_max})")
        if not isinstance(self.learn_alpha, bool):
            raise ValueError(f"SACConfig.learn_alpha must be True or False, got {self.learn_alpha!r}")
        check_matmul_precision(self.matmul_precision, "SACConfig.matmul_precision")
        return self


# --- rollout schedules -----------------------------------------------------------------------


class Schedule(NamedTuple):
    """``[min_epoch, max_epoch, min_k, max_k]``: k = min_k up to min_epoch, then linear in the
    epoch up to max_k at max_epoch, then max_k (:func:`mbpo_lib.rollout.rollout_schedule`)."""

    min_epoch: int
    max_epoch: int
    min_k: int
    max_k: int

    def validate(self) -> Schedule:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine."""
        for name, value in zip(self._fields, self, strict=True):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"schedule {name} must be an int, got {value!r}")
        if not 1 <= self.min_k <= self.max_k:
            raise ValueError(f"schedule needs 1 <= min_k <= max_k (k < 1 is no rollout), got "
                             f"min_k={self.min_k}, max_k={self.max_k}")
        if not 0 <= self.min_epoch < self.max_epoch:
            raise ValueError(f"schedule needs 0 <= min_epoch < max_epoch, got {self.min_epoch}, "
                             f"{self.max_epoch}")
        return self


def as_schedule(value: Sequence[int]) -> Schedule:
    """``value`` (a :class:`Schedule`, or any 4 ints ``[e0, e1, k0, k1]``) as a validated Schedule."""
    try:
        values = tuple(value) if not isinstance(value, (str, bytes)) else ()
    except TypeError:
        values = ()
    if len(values) != 4:
        raise ValueError("a rollout schedule is 4 ints [min_epoch, max_epoch, min_k, max_k], got "
                         f"{value!r}")
    return Schedule(*values).validate()


# From the authors' official configuration files (jannerm/mbpo, examples/config/<env>/0.py,
# ``rollout_schedule``; see the series' mbpo-reference.md). Where the paper's appendix differs
# (Hopper), both are given under "<env id> (<variant>)"; the official file is the default.
ROLLOUT_SCHEDULES: dict[str, Schedule] = {
    "Hopper-v5": Schedule(20, 150, 1, 15),
    "Hopper-v5 (paper appendix)": Schedule(20, 100, 1, 15),
    "Walker2d-v5": Schedule(20, 150, 1, 1),
    "HalfCheetah-v5": Schedule(20, 150, 1, 1),
    "Ant-v5": Schedule(20, 100, 1, 25),
    "Humanoid-v5": Schedule(20, 300, 1, 25),
    "InvertedPendulum-v5": Schedule(1, 15, 1, 1),
    "InvertedDoublePendulum-v5": Schedule(1, 15, 1, 1),
}
# A task without a preset: the paper appendix's general schedule (its Hopper row).
GENERAL_SCHEDULE = Schedule(20, 100, 1, 15)
# MBPOConfig.termination's names; any other value is an import path "package.module:function".
TERMINATION_NAMES = ("preset", "never", "learned")
# MBPOConfig.rollout_start: where model rollouts begin. "real": MBPO's short branched rollouts
# from real-buffer states; "reset": the paper's rival, long rollouts from the start-state
# distribution (mbpo_lib.rollout.reset_rollout).
ROLLOUT_STARTS = ("real", "reset")


# --- the training loop -----------------------------------------------------------------------

# Storage types the model buffer may use (ReplayBuffer's ``dtype``); samples are always float32.
MODEL_BUFFER_DTYPES: Mapping[str, torch.dtype] = MappingProxyType({
    "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16})


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _min_rows_for_holdout(holdout_ratio: float) -> int:
    """The fewest rows whose holdout, ``int(rows * holdout_ratio)``, has at least one row."""
    rows = max(1, math.ceil(1.0 / holdout_ratio))
    while int(rows * holdout_ratio) < 1:
        rows += 1
    while rows > 1 and int((rows - 1) * holdout_ratio) >= 1:
        rows -= 1
    return rows


def _tuples(value: Any) -> Any:
    """Lists (from JSON) back to tuples, recursively: the dataclasses store tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _lists(value: Any) -> Any:
    """Tuples (Schedule included) to lists, recursively, so ``json.dumps`` gives a plain array."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def flat_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``MBPOConfig.to_dict()`` flattened: nested fields as ``"ensemble.lr"``, for comparing two
    configs field by field (``--resume`` and sweeps name each field that differs)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _replace_checked(config: Any, changes: Mapping[str, Any], owner: str) -> Any:
    """``dataclasses.replace`` with a ValueError naming unknown fields instead of a TypeError."""
    names = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise ValueError(f"unknown {owner} field(s) {unknown}; the fields are {', '.join(names)}")
    return dataclasses.replace(config, **changes)


@dataclass(frozen=True, kw_only=True)
class MBPOConfig:
    """Everything one MBPO run needs, as the official code sets it (the series' mbpo-reference.md).

    Build one with :func:`preset` (or read :data:`PRESETS`); the environment-specific values
    (``env_id``, ``rollout_schedule``, ``total_steps``) have no defaults, so a config made by
    hand for a new environment cannot silently inherit Hopper's. All fields are keyword-only.

    Attributes:
        env_id: one of :data:`~mbpo_lib.envs.SUPPORTED_ENVS` (Gymnasium ``*-v5``), or any id
            ``gymnasium.make`` builds with a bounded Box action space and a flat Box observation.
        env_kwargs: keyword arguments for ``gymnasium.make`` (JSON values; over a preset's own).
        env_module: the module that registers ``env_id`` (``gymnasium.register``), imported before
            every ``gymnasium.make`` (in Ray workers too); None when the id is registered already.
        termination: where model rollouts end. ``"preset"`` (default): the task's exact rule,
            :func:`~mbpo_lib.termination.termination_fn` (the supported tasks only); ``"never"``:
            only time limits end the task; ``"learned"``: a classifier fitted with the model on
            the real ``terminated`` flags (:mod:`mbpo_lib.learned_termination`); or an import path
            ``"package.module:function"`` of ``fn(obs, act, next_obs) -> bool [B]``. A function
            given here is recorded as its import path (a lambda or local function is refused).
        termination_threshold: with ``"learned"``, a rollout row ends where the predicted
            probability of termination is >= this (0.5).
        reward: None (default): the model's predicted reward; or an import path of
            ``fn(obs, act, next_obs) -> [B]`` used in rollouts instead.
        rollout_schedule: ``Schedule(e0, e1, k0, k1)`` (a 4-tuple is converted): the rollout
            length k after each model fit, from the epoch.
        total_steps: the budget in real environment steps. Every real step counts, the
            ``init_exploration_steps`` random ones included (the official code leaves those out
            of its logged step count; we count them and say so).
        ensemble: the dynamics model (:class:`EnsembleConfig`); ``ensemble.max_epochs`` caps the
            epochs of each model fit (None: the paper's early stopping alone), also readable as
            :attr:`max_model_epochs`.
        sac: the agent (:class:`SACConfig`); MBPO sets ``sac.target_entropy`` per environment.
        epoch_length: real steps per epoch (1000; 250 for the pendulums). Evaluation, the
            rollout schedule and checkpoints count in epochs.
        model_train_freq: real steps between model fits (250; Humanoid 1000); each fit is
            followed by one branched rollout. Must divide ``epoch_length``.
        updates_per_step: G, the SAC updates after each real step (20; HalfCheetah 40,
            InvertedPendulum 10). 0 runs no updates.
        rollout_batch_size: start states per rollout, drawn from the real buffer (100,000).
        real_ratio: the share of real rows in each SAC batch (0.05: int(256 * 0.05) = 12 real,
            244 model rows).
        retain_epochs: epochs of model rollouts the model buffer keeps (1; Humanoid 5); see
            :func:`mbpo_lib.rollout.model_buffer_capacity`.
        init_exploration_steps: uniform-random real steps before the policy acts (5000; 500
            for the pendulums).
        real_buffer_capacity: rows of the real buffer (1,000,000, softlearning's pool size).
        eval_episodes: deterministic episodes per evaluation (the official code runs 1; we
            report the mean of 10 by default).
        eval_every: evaluate every this many epochs (1).
        checkpoint_every: write a checkpoint every this many epochs (10); 0 turns periodic
            checkpoints off.
        model_buffer_dtype: the model buffer's storage, ``"float32"`` (default, the paper) or
            ``"bfloat16"`` / ``"float16"`` to halve its memory (Humanoid's buffer reaches
            12.5M rows); see :attr:`model_buffer_torch_dtype`.
        monitor_model: measure the model at the end of each epoch on the real steps since its
            last fit and log the ``diag_*`` metrics (True; see :mod:`mbpo_lib.diagnostics`).
            It uses its own generator, so turning it off changes no other number of the run.
        official_pool_timing: reproduce two timing quirks of the official code (the series'
            mbpo-reference.md, D1 and D2; False by default): a real episode's rows enter the
            real buffer only when the episode ends (terminated or truncated), so fits, rollout
            start states and SAC's real rows see completed episodes only; and SAC updates start
            only once that buffer holds ``min_pool_size`` rows.
        min_pool_size: with ``official_pool_timing``, the rows the real buffer must hold before
            SAC updates (the official code's ``min_pool_size``, 1000 on every task); ignored
            otherwise.
        rollout_start: where the model rollouts after each fit begin, one of
            :data:`ROLLOUT_STARTS`. ``"real"`` (default, MBPO): ``rollout_batch_size`` states
            drawn from the real buffer, each rolled k steps (:func:`~mbpo_lib.rollout.branched_rollout`).
            ``"reset"``: the rival design the paper argues against, for controlled experiments:
            the same number of model transitions per fit, ``rollout_batch_size * k``, written by
            long rollouts that start from the environment's reset distribution and run up to its
            episode length (the time limit, e.g. 1000 steps) unless the termination function
            ends them first, each ended rollout replaced by a new one from a fresh reset state
            (:func:`~mbpo_lib.rollout.reset_rollout`). The reset states come from a second
            environment with seeds of their own, so no other random stream of the run moves.
        freeze_model_after_epoch: None (default): the model is fitted every ``model_train_freq``
            steps of the whole run. An int e >= 0: it is fitted as usual through training epoch
            e (the ``epoch`` column of the metrics: 0 is the first epoch after the random
            warm-up), then never again; rollouts go on with the frozen model (and, with
            ``termination="learned"``, the frozen classifier). A control for "the model must
            track the policy": later epochs log ``model_fits`` 0 and NaN fit columns.
        seed: seeds the environment, the networks and every generator of the run.
    """

    env_id: str
    rollout_schedule: Schedule
    total_steps: int
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    epoch_length: int = 1000
    model_train_freq: int = 250
    updates_per_step: int = 20
    rollout_batch_size: int = 100_000
    real_ratio: float = 0.05
    retain_epochs: int = 1
    init_exploration_steps: int = 5000
    real_buffer_capacity: int = 1_000_000
    eval_episodes: int = 10
    eval_every: int = 1
    checkpoint_every: int = 10
    model_buffer_dtype: str = "float32"
    monitor_model: bool = True
    official_pool_timing: bool = False
    min_pool_size: int = 1000
    rollout_start: str = "real"
    freeze_model_after_epoch: int | None = None
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    env_module: str | None = None
    termination: str = "preset"
    termination_threshold: float = 0.5
    reward: str | None = None

    def __post_init__(self) -> None:
        # Functions are recorded as import paths (refused, with the reason, when they have none).
        if callable(self.termination) and not isinstance(self.termination, str):
            object.__setattr__(self, "termination", function_path(self.termination, "MBPOConfig.termination"))
        if callable(self.reward) and not isinstance(self.reward, str):
            object.__setattr__(self, "reward", function_path(self.reward, "MBPOConfig.reward"))
        if isinstance(self.env_kwargs, Mapping):   # as config.json gives it back (tuples as lists)
            try:
                object.__setattr__(self, "env_kwargs", json.loads(json.dumps(dict(self.env_kwargs))))
            except (TypeError, ValueError):
                object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))   # validate() says why
        # Normalise the two fields that have a convenient second spelling; validate() checks them.
        schedule = self.rollout_schedule
        if (isinstance(schedule, Sequence) and not isinstance(schedule, (str, bytes, Schedule))
                and len(schedule) == 4):
            object.__setattr__(self, "rollout_schedule", Schedule(*schedule))
        if isinstance(self.model_buffer_dtype, torch.dtype):
            names = {dtype: name for name, dtype in MODEL_BUFFER_DTYPES.items()}
            object.__setattr__(self, "model_buffer_dtype", names.get(self.model_buffer_dtype,
                                                                     self.model_buffer_dtype))

    @property
    def max_model_epochs(self) -> int | None:
        """The cap on epochs per model fit: ``ensemble.max_epochs`` (None: the paper's rule)."""
        return self.ensemble.max_epochs

    @property
    def model_buffer_torch_dtype(self) -> torch.dtype:
        """:attr:`model_buffer_dtype` as a ``torch.dtype`` (for ``ReplayBuffer(dtype=...)``)."""
        return MODEL_BUFFER_DTYPES[self.model_buffer_dtype]

    def validate(self) -> MBPOConfig:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine.

        Also validates the nested ``ensemble`` and ``sac`` configs and the schedule.
        """
        self._validate_task()
        for name, kind in (("ensemble", EnsembleConfig), ("sac", SACConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"MBPOConfig.{name} must be an instance of {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        self.ensemble.validate()
        self.sac.validate()
        try:
            as_schedule(self.rollout_schedule)
        except ValueError as error:
            raise ValueError(f"MBPOConfig.rollout_schedule: {error}") from None
        for name in ("total_steps", "epoch_length", "model_train_freq", "rollout_batch_size",
                     "retain_epochs", "real_buffer_capacity", "eval_episodes", "eval_every"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"MBPOConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("updates_per_step", "init_exploration_steps", "checkpoint_every", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"MBPOConfig.{name} must be an int >= 0, got {value!r}")
        ratio = self.real_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not (
                math.isfinite(ratio) and 0.0 <= ratio <= 1.0):
            raise ValueError(f"MBPOConfig.real_ratio must be a number in [0, 1], got {ratio!r}")
        real_rows = int(self.sac.batch_size * ratio)
        if ratio > 0 and real_rows == 0:
            raise ValueError(
                f"MBPOConfig.real_ratio={ratio} of sac.batch_size={self.sac.batch_size} gives "
                f"int({self.sac.batch_size * ratio:g}) = 0 real rows per SAC batch, i.e. 0 % real data "
                f"(a known trap); raise sac.batch_size to >= {math.ceil(1 / ratio)} or real_ratio, "
                "or set real_ratio=0 to mean it")
        if self.epoch_length % self.model_train_freq:
            raise ValueError(f"MBPOConfig.model_train_freq={self.model_train_freq} must divide "
                             f"epoch_length={self.epoch_length} (the model is fitted at fixed steps of "
                             "every epoch)")
        if self.init_exploration_steps > self.total_steps:
            raise ValueError(f"MBPOConfig.init_exploration_steps={self.init_exploration_steps} exceeds "
                             f"total_steps={self.total_steps}: the random start is part of the budget")
        fewest = _min_rows_for_holdout(self.ensemble.holdout_ratio)
        if self.init_exploration_steps < fewest:
            raise ValueError(
                f"MBPOConfig.init_exploration_steps={self.init_exploration_steps} is too few for the "
                f"first model fit: it needs a holdout row, so >= {fewest} steps at "
                f"ensemble.holdout_ratio={self.ensemble.holdout_ratio}")
        if self.model_buffer_dtype not in MODEL_BUFFER_DTYPES:
            raise ValueError(f"MBPOConfig.model_buffer_dtype must be one of "
                             f"{', '.join(MODEL_BUFFER_DTYPES)}, got {self.model_buffer_dtype!r}")
        if not isinstance(self.monitor_model, bool):
            raise ValueError(f"MBPOConfig.monitor_model must be True or False, got {self.monitor_model!r}")
        if not isinstance(self.official_pool_timing, bool):
            raise ValueError("MBPOConfig.official_pool_timing must be True or False, got "
                             f"{self.official_pool_timing!r}")
        _check_int(self, "MBPOConfig", "min_pool_size", low=1)
        if not (isinstance(self.rollout_start, str) and self.rollout_start in ROLLOUT_STARTS):
            names = ", ".join(map(repr, ROLLOUT_STARTS))
            raise ValueError(f"MBPOConfig.rollout_start must be one of {names} ('real': branched rollouts "
                             "from real states, MBPO's; 'reset': long rollouts from the start-state "
                             f"distribution), got {self.rollout_start!r}")
        if self.freeze_model_after_epoch is not None:
            _check_int(self, "MBPOConfig", "freeze_model_after_epoch", low=0, none_allowed=True)
        return self

    def _validate_task(self) -> None:
        """The fields that say which task and how its rollouts end (no env is made here)."""
        if not isinstance(self.env_id, str) or not self.env_id or self.env_id != self.env_id.strip():
            raise ValueError(f"MBPOConfig.env_id must be a Gymnasium id such as 'Hopper-v5', got "
                             f"{self.env_id!r}")
        if not isinstance(self.env_kwargs, dict) or not all(isinstance(k, str) for k in self.env_kwargs):
            raise ValueError(f"MBPOConfig.env_kwargs must be a dict with str keys (gymnasium.make's keyword "
                             f"arguments), got {self.env_kwargs!r}")
        try:
            json.dumps(self.env_kwargs, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"MBPOConfig.env_kwargs must hold JSON values (numbers, strings, lists, dicts), "
                             f"since config.json records them: {self.env_kwargs!r} ({error})") from None
        if self.env_module is not None and not (isinstance(self.env_module, str)
                                                and is_import_path(f"{self.env_module}:x")):
            raise ValueError(f"MBPOConfig.env_module must be None or a module name such as 'mypkg.envs', "
                             f"got {self.env_module!r}")
        term = self.termination
        if not isinstance(term, str) or not (term in TERMINATION_NAMES or is_import_path(term)):
            names = ", ".join(map(repr, TERMINATION_NAMES))
            raise ValueError(f"MBPOConfig.termination must be one of {names} or an import path "
                             f"'package.module:function', got {term!r}")
        if term == "preset" and self.env_id not in SUPPORTED_ENVS:
            close = near_preset(self.env_id)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"MBPOConfig.termination='preset' is the exact rule of a supported task, and "
                             f"{self.env_id!r}{hint} is not one (supported: {', '.join(SUPPORTED_ENVS)}); "
                             "for a task of your own give termination='never' (only time limits end it), "
                             "'learned' or 'package.module:function'")
        _check_number(self, "MBPOConfig", "termination_threshold", low=0.0, high=1.0, open_low=True,
                      open_high=True)
        if self.reward is not None and not is_import_path(self.reward):
            raise ValueError(f"MBPOConfig.reward must be None (the model's reward) or an import path "
                             f"'package.module:function', got {self.reward!r}")

    def with_overrides(self, **changes: Any) -> MBPOConfig:
        """A copy with ``changes`` applied, validated.

        ``ensemble`` and ``sac`` take either a whole config or a dict of their fields to change,
        e.g. ``config.with_overrides(total_steps=50_000, ensemble={"max_epochs": 20})``.
        Unknown field names are refused with the list of known ones.
        """
        for name in ("ensemble", "sac"):
            if isinstance(changes.get(name), Mapping):
                changes[name] = _replace_checked(getattr(self, name), changes[name], f"MBPOConfig.{name}")
        return _replace_checked(self, changes, "MBPOConfig").validate()

    def smoke(self) -> MBPOConfig:
        """This config shrunk for CI: the same environment, termination, target entropy, real
        ratio and code path, with tiny sizes.

        A 3-member ensemble with 2 elites and 32 hidden units (at most 5 epochs per fit), SAC
        with (64, 64) hidden layers, epochs of 100 steps with a model fit every 50, 100 random
        steps then 300 more (400 in all), rollouts of 256 start states, at most 2 SAC updates per
        step, one evaluation episode per epoch and a checkpoint every epoch (unless they were
        off). The schedule keeps its k range up to 3 and reaches it by epoch 2, so the rollout
        length and the model buffer still grow.
        """
        s = as_schedule(self.rollout_schedule)
        return dataclasses.replace(
            self,
            ensemble=dataclasses.replace(self.ensemble, ensemble_size=3, num_elites=2, hidden_dim=32,
                                         max_epochs=5),
            sac=dataclasses.replace(self.sac, hidden_sizes=(64, 64)),
            rollout_schedule=Schedule(0, 2, s.min_k, max(s.min_k, min(s.max_k, 3))),
            total_steps=400, epoch_length=100, model_train_freq=50, init_exploration_steps=100,
            updates_per_step=min(self.updates_per_step, 2), rollout_batch_size=256,
            real_buffer_capacity=min(self.real_buffer_capacity, 10_000), eval_episodes=1, eval_every=1,
            checkpoint_every=1 if self.checkpoint_every else 0,
        ).validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists, nested configs as dicts): ``json.dumps`` takes it, and
        :meth:`from_dict` gives back an equal config. For checkpoints and run logs."""
        return _lists(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MBPOConfig:
        """The config :meth:`to_dict` wrote (lists back to tuples), validated."""
        data = dict(data)
        for name, kind in (("ensemble", EnsembleConfig), ("sac", SACConfig)):
            if isinstance(data.get(name), Mapping):
                values = {key: _tuples(value) for key, value in data[name].items()}
                data[name] = _replace_checked(kind(), values, f"MBPOConfig.{name}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MBPOConfig field(s) {unknown}; the fields are "
                             f"{', '.join(sorted(known))}")
        return cls(**data).validate()


def _preset(env_id: str, *, total_steps: int, updates_per_step: int, target_entropy: float,
            epoch_length: int = 1000, init_exploration_steps: int = 5000, model_train_freq: int = 250,
            retain_epochs: int = 1, hidden_dim: int = 200) -> MBPOConfig:
    """One environment's preset: its official schedule and the shared MBPO values otherwise."""
    return MBPOConfig(
        env_id=env_id, rollout_schedule=ROLLOUT_SCHEDULES[env_id], total_steps=total_steps,
        ensemble=EnsembleConfig(hidden_dim=hidden_dim), sac=SACConfig(target_entropy=float(target_entropy)),
        epoch_length=epoch_length, model_train_freq=model_train_freq, updates_per_step=updates_per_step,
        retain_epochs=retain_epochs, init_exploration_steps=init_exploration_steps,
    ).validate()


# The paper's settings per environment, as the series' mbpo-reference.md tabulates them.
# Sources: G (``n_train_repeat``), the schedule, ``target_entropy``, ``epoch_length``,
# ``model_train_freq``, ``model_retain_epochs`` and the model's ``hidden_dim`` come from the
# authors' official configuration files, jannerm/mbpo ``examples/config/<env>/0.py``; the
# 5000 random start steps from ``examples/development/base.py`` (``n_initial_exploration_steps``),
# 500 for the pendulums from their config files; the budget is the horizon of the paper's
# learning curves (Janner et al. 2019, Figure 2). Shared by all: 7 members / 5 elites, 100,000
# start states per rollout, real_ratio 0.05, SAC batch 256, fits of the model every 250 steps.
# Deviations on purpose: Gymnasium ``*-v5`` instead of Gym ``*-v2``; every real step counts
# towards the budget (the random start included); evaluation averages 10 deterministic episodes
# where the official code runs 1.
PRESETS: Mapping[str, MBPOConfig] = MappingProxyType({
    # examples/config/hopper/0.py: n_train_repeat 20, rollout_schedule [20, 150, 1, 15],
    # target_entropy -1. The paper's appendix gives [20, 100, 1, 15]:
    # preset("Hopper-v5", schedule="paper appendix"). Budget 125k (Figure 2).
    "Hopper-v5": _preset("Hopper-v5", total_steps=125_000, updates_per_step=20, target_entropy=-1),
    # examples/config/walker2d/0.py: 20, [20, 150, 1, 1], -3. Budget 300k.
    "Walker2d-v5": _preset("Walker2d-v5", total_steps=300_000, updates_per_step=20, target_entropy=-3),
    # examples/config/halfcheetah/0.py: n_train_repeat 40, [20, 150, 1, 1], -3. Budget 400k.
    "HalfCheetah-v5": _preset("HalfCheetah-v5", total_steps=400_000, updates_per_step=40,
                              target_entropy=-3),
    # examples/config/ant/0.py (AntTruncatedObs, the 27-dim observation; make_env's preset):
    # 20, [20, 100, 1, 25], -4. Budget 300k.
    "Ant-v5": _preset("Ant-v5", total_steps=300_000, updates_per_step=20, target_entropy=-4),
    # examples/config/humanoid/0.py (HumanoidTruncatedObs, 45-dim; make_env's preset): 20,
    # [20, 300, 1, 25], -2, model_train_freq 1000, model_retain_epochs 5, hidden_dim 400.
    # Budget 300k.
    "Humanoid-v5": _preset("Humanoid-v5", total_steps=300_000, updates_per_step=20, target_entropy=-2,
                           model_train_freq=1000, retain_epochs=5, hidden_dim=400),
    # examples/config/inverted_pendulum/0.py: epoch_length 250, n_train_repeat 10, [1, 15, 1, 1],
    # target_entropy -0.05, n_initial_exploration_steps 500. Budget 15k (Figure 2; the config
    # file's n_epochs 80 would run 20k).
    "InvertedPendulum-v5": _preset("InvertedPendulum-v5", total_steps=15_000, updates_per_step=10,
                                   target_entropy=-0.05, epoch_length=250, init_exploration_steps=500),
    # examples/config/inverted_double_pendulum/0.py: epoch_length 250, n_train_repeat 20,
    # [1, 15, 1, 1], target_entropy -0.5, n_initial_exploration_steps 500, n_epochs 80 (20k).
    # v5's observation has 9 dimensions (v2's had 11, two of them constant zeros).
    "InvertedDoublePendulum-v5": _preset("InvertedDoublePendulum-v5", total_steps=20_000,
                                         updates_per_step=20, target_entropy=-0.5, epoch_length=250,
                                         init_exploration_steps=500),
})


def schedule_variants(env_id: str) -> list[str]:
    """The schedule names :func:`preset` takes for ``env_id``: "official" and any listed in
    :data:`ROLLOUT_SCHEDULES` as ``"<env_id> (<variant>)"`` (Hopper: "paper appendix")."""
    prefix = f"{env_id} ("
    return ["official"] + [key[len(prefix):-1] for key in ROLLOUT_SCHEDULES
                           if key.startswith(prefix) and key.endswith(")")]


def preset(env_id: str, schedule: str | Sequence[int] = "official", *, termination: Any = None,
           **overrides: Any) -> MBPOConfig:
    """The preset for ``env_id`` (:data:`PRESETS`), with a schedule variant and overrides; or,
    for a task of your own, the paper's general settings.

    ``schedule`` is "official" (the authors' configuration file), a named variant from
    :func:`schedule_variants` (``preset("Hopper-v5", schedule="paper appendix")`` gives the
    appendix's ``[20, 100, 1, 15]``), or a ``Schedule``/4-tuple. ``overrides`` go through
    :meth:`MBPOConfig.with_overrides` (so the result is validated).

    Any other id that ``gymnasium.make`` builds works too (``env_module`` and ``env_kwargs`` in
    ``overrides`` when it needs them); the env is made once here to check its spaces. Its
    ``termination`` must be given (``"never"``, ``"learned"``, a function or its import path
    ``"package.module:function"``; see :class:`MBPOConfig`), and every setting not given takes
    the paper's general (Hopper-like) value: 7/5 ensemble of 4 x 200, G = 20, 1000-step epochs,
    a fit every 250 steps, real_ratio 0.05, 5000 random steps, the schedule
    :data:`GENERAL_SCHEDULE` ``[20, 100, 1, 15]``, a budget of 125,000 steps, and SAC's target
    entropy ``-|A|`` (``sac.target_entropy=None``). A preset task takes ``termination`` too
    (``"learned"`` replaces its exact rule).
    """
    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a Gymnasium id (a str such as 'Hopper-v5'), got {env_id!r}")
    if "rollout_schedule" in overrides and not (isinstance(schedule, str) and schedule == "official"):
        raise ValueError("pass the schedule once: either schedule=... or rollout_schedule=..., not both")
    if termination is not None:
        overrides["termination"] = termination
    if env_id not in PRESETS:
        if "termination" not in overrides:
            close = near_preset(env_id)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"no preset for env id {env_id!r}{hint}; presets exist for "
                             f"{', '.join(PRESETS)}; for a task of your own give its termination: 'never' "
                             "(only time limits end it), 'learned' or a function / its import path "
                             "'package.module:function'")
        return _general_config(env_id, schedule, overrides)
    if isinstance(schedule, str):
        if schedule != "official":
            key = f"{env_id} ({schedule})"
            if key not in ROLLOUT_SCHEDULES:
                raise ValueError(f"no {schedule!r} schedule for {env_id}; choose one of "
                                 f"{schedule_variants(env_id)} or pass a Schedule")
            overrides["rollout_schedule"] = ROLLOUT_SCHEDULES[key]
    else:
        overrides["rollout_schedule"] = schedule
    config = PRESETS[env_id]
    return config.with_overrides(**overrides) if overrides else config


def _general_config(env_id: str, schedule: str | Sequence[int], overrides: dict[str, Any]) -> MBPOConfig:
    """A task without a preset: its spaces checked (the env made once), the general settings."""
    if isinstance(schedule, str):
        if schedule != "official":
            raise ValueError(f"no {schedule!r} schedule for {env_id}; choose one of "
                             f"{schedule_variants(env_id)} or pass a Schedule")
        overrides.setdefault("rollout_schedule", GENERAL_SCHEDULE)
    else:
        overrides["rollout_schedule"] = schedule
    kwargs = overrides.get("env_kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"env_kwargs must be a dict of gymnasium.make's keyword arguments, got {kwargs!r}")
    module = overrides.get("env_module")
    if module is not None and not isinstance(module, str):
        raise ValueError(f"env_module must be None or a module name such as 'mypkg.envs', got {module!r}")
    env = make_env(env_id, None, env_module=module, **kwargs)   # refuses bad ids and spaces, clearly
    env.close()
    base = MBPOConfig(env_id=env_id, rollout_schedule=GENERAL_SCHEDULE, total_steps=125_000,
                      termination="never")
    return base.with_overrides(**overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` (``ensemble.hidden_dim=100``, ``sac.gamma=0.98``, ``real_ratio=0.1``) with
    the value read as JSON where it parses (numbers, true/false, null, lists), else as a string.

    The command line's ``--set``; shared by ``python -m mbpo_lib train`` and ``sweep``.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes key=value (e.g. ensemble.max_epochs=30), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), tuple(value) if isinstance(value, list) else value


def apply_overrides(config: MBPOConfig, pairs: Sequence[str], **first: Any) -> MBPOConfig:
    """``config`` with the field changes ``first`` and then every ``key=value`` of ``pairs``
    (:func:`parse_override`) applied, validated once at the end; ``ensemble.<field>`` and
    ``sac.<field>`` reach the nested configs. Validating once lets a pair fix what ``first``
    alone would refuse (``total_steps=600`` with ``init_exploration_steps=200``)."""
    changes: dict[str, Any] = dict(first)
    for text in pairs:
        key, value = parse_override(text)
        head, _, field_name = key.partition(".")
        if field_name:
            if head not in ("ensemble", "sac"):
                raise ValueError(f"--set {key}: only ensemble.<field> and sac.<field> are nested")
            changes.setdefault(head, {})[field_name] = value
        else:
            changes[key] = value
    return config.with_overrides(**changes) if changes else config
