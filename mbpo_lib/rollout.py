"""Model rollouts: how long they are (the schedule), how they run, and where they go.

MBPO branches short rollouts off real states: after each model fit it draws start states from the
real buffer, rolls the learned model ``k`` steps under the current (stochastic) policy and
writes every model transition into the model buffer, from which SAC then learns.

* :func:`rollout_schedule` gives ``k`` from the epoch (the official formula; the per-env
  schedules are :data:`ROLLOUT_SCHEDULES`, kept in :mod:`mbpo_lib.config` and re-exported here).
* :func:`branched_rollout` runs one batched rollout of up to 100,000 rows on the model's device.
* :func:`reset_rollout` is the rival design the paper argues against (``MBPOConfig.rollout_start
  = "reset"``, :data:`ROLLOUT_STARTS`): the same number of model transitions, written by long
  rollouts from the environment's start-state distribution, for controlled experiments.
* :func:`model_buffer_capacity` sizes the model buffer:
  ``retain_epochs * k * rollout_batch_size * (epoch_length / model_train_freq)``.

This module imports only :mod:`mbpo_lib.config` from the package: the model, the policy and the
buffer are used through small protocols (:class:`RolloutModel`, :class:`RolloutPolicy`,
:class:`TransitionSink`), so ``DynamicsModel``, ``SAC`` and ``ReplayBuffer`` fit them and so do
the tests' fakes.
"""

from __future__ import annotations

import inspect
import numbers
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import torch

from .config import ROLLOUT_SCHEDULES, ROLLOUT_STARTS, Schedule, as_schedule

if TYPE_CHECKING:
    from .config import MBPOConfig

__all__ = [
    "ROLLOUT_SCHEDULES",
    "ROLLOUT_STARTS",
    "RolloutModel",
    "RolloutPolicy",
    "RolloutStats",
    "Schedule",
    "TransitionSink",
    "as_rollout_policy",
    "branched_rollout",
    "model_buffer_capacity",
    "reset_rollout",
    "rollout_schedule",
]


def rollout_schedule(epoch: int, schedule: tuple[int, int, int, int]) -> int:
    r"""The rollout length k at ``epoch`` (as the official code computes it):

    .. math:: k = \lfloor k_0 + p\,(k_1 - k_0) \rfloor,\quad p = \min(1, \max(0, e - e_0) / (e_1 - e_0))

    for ``schedule = (e0, e1, k0, k1)``. (The method guide's version hard-codes e1 = 100; the
    official schedules differ per environment, e.g. Hopper's ends at epoch 150.)
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    min_epoch, max_epoch, min_k, max_k = as_schedule(schedule)
    progress = min(1.0, max(0.0, (epoch - min_epoch) / (max_epoch - min_epoch)))
    return int(min_k + progress * (max_k - min_k))


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k (the rollout length) must be an int >= 1, got {k!r}")
    return int(k)


def model_buffer_capacity(config: MBPOConfig, k: int) -> int:
    """Rows of the model buffer at rollout length ``k``, as the official code sizes it:

    ``retain_epochs * k * rollout_batch_size * (epoch_length / model_train_freq)``

    that is, every transition the rollouts of the last ``retain_epochs`` epochs can write (each
    fit's rollout adds at most ``k * rollout_batch_size`` rows, and an epoch has
    ``epoch_length / model_train_freq`` fits). The paper's Hopper: 1 * k * 100,000 * 4 = 400,000
    rows at k = 1 and 6,000,000 at k = 15. When k grows the buffer grows and keeps what it holds
    (``ReplayBuffer.resize``). The same size serves both ``rollout_start`` modes: a branched
    rollout writes at most ``k * rollout_batch_size`` rows per fit (fewer when rows terminate), a
    :func:`reset_rollout` exactly that many.
    """
    k = _check_k(k)
    fits_per_epoch, rest = divmod(config.epoch_length, config.model_train_freq)
    if rest:
        raise ValueError(f"model_train_freq={config.model_train_freq} must divide "
                         f"epoch_length={config.epoch_length}")
    return config.retain_epochs * k * config.rollout_batch_size * fits_per_epoch


# --- what a rollout works with -----------------------------------------------------------------


class RolloutModel(Protocol):
    """A learned model as :func:`branched_rollout` uses it (``DynamicsModel`` is one).

    ``step`` returns ``(next_obs [B, obs_dim], rew [B], info)``; with ``disagreement=True``
    (only asked for when the rollout wants it) ``info["disagreement"]`` is a per-row ``[B]``
    tensor. A ``device`` attribute, where present, is where the rows must live.
    """

    obs_dim: int

    def step(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             disagreement: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]: ...


class RolloutPolicy(Protocol):
    """The policy protocol of :func:`branched_rollout`: ``policy(obs, generator) -> act``.

    ``obs`` is a ``[B, obs_dim]`` tensor on the model's device; the result is a ``[B, act_dim]``
    tensor there, a *stochastic* action (MBPO rolls out the current exploring policy), with
    every random draw taken from ``generator`` (None: the policy's own). An object with
    ``act(obs, deterministic=False, generator=None)``, such as :class:`~mbpo_lib.sac.SAC`, is
    adapted by :func:`as_rollout_policy`.
    """

    def __call__(self, obs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor: ...


class TransitionSink(Protocol):
    """Where rollouts write (``ReplayBuffer`` is one): ``add_batch(obs, act, rew, next_obs,
    terminated)`` with ``[N, obs_dim]``, ``[N, act_dim]``, ``[N]``, ``[N, obs_dim]``, ``[N]``."""

    def add_batch(self, obs: Any, act: Any, rew: Any, next_obs: Any, terminated: Any) -> None: ...


def as_rollout_policy(policy: Any) -> Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]:
    """``policy`` as a :class:`RolloutPolicy`: an object with ``act(obs, deterministic, generator)``
    (SAC: its stochastic action, noise from ``generator``) or a callable ``policy(obs, generator)``.

    A callable that cannot take two positional arguments (e.g. ``lambda obs: ...`` or a bare
    ``nn.Module`` actor) is refused with a ``TypeError`` saying what is expected.
    """
    act = getattr(policy, "act", None)
    if callable(act):
        def sac_policy(obs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            return act(obs, deterministic=False, generator=generator)
        return sac_policy
    if not callable(policy):
        raise TypeError(f"policy must be callable as policy(obs, generator) -> act or have "
                        f"act(obs, deterministic=False, generator=None), got {type(policy).__name__}")
    try:
        signature = inspect.signature(policy)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return policy
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(f"policy must be callable as policy(obs, generator) -> act (a stochastic "
                        f"action, its noise from generator); {policy!r} has the signature "
                        f"{signature}") from None
    return policy


class RolloutStats(NamedTuple):
    """What one :func:`branched_rollout` did (a :func:`reset_rollout` fills the same fields; its
    docstring says how they read there).

    Attributes:
        k: the rollout length asked for.
        start_states: rows the rollout started from (N).
        steps: steps actually run (< k only when every row terminated early).
        transitions: model transitions written (or, without a buffer, produced).
        rows_per_step: rows stepped at each step (alive at its start); they sum to ``transitions``.
        mean_length: ``transitions / start_states``, the official code's ``mean_rollout_length``.
        termination_rate: the share of start rows the termination function ended within k steps.
        mean_reward: the mean model reward over the written transitions.
        mean_disagreement: the mean over written transitions of the ensemble disagreement (the
            elites' spread of the predicted mean), or None when not asked for.
        seconds: wall-clock time of the rollout (the device synchronised at the end).
    """

    k: int
    start_states: int
    steps: int
    transitions: int
    rows_per_step: tuple[int, ...]
    mean_length: float
    termination_rate: float
    mean_reward: float
    mean_disagreement: float | None
    seconds: float


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


@torch.no_grad()
def _model_step(model: RolloutModel, pi: Callable, obs: torch.Tensor, generator: torch.Generator | None,
                termination: Callable, reward: Callable | None, disagreement: bool):
    """One step of a model rollout for the ``n`` rows of ``obs``: the policy's actions, the
    model's next states and rewards (``reward``'s where given), the termination flags, each
    result checked; returns ``(act, next_obs, rew, done, disagreement summed over the rows)``
    (the last ``None`` unless ``disagreement``)."""
    n = obs.shape[0]
    act = pi(obs, generator)
    if not isinstance(act, torch.Tensor) or act.dim() != 2 or act.shape[0] != n:
        shape = list(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
        raise ValueError(f"the policy must return a [B, act_dim] tensor for B = {n} rows, got {shape}")
    if disagreement:
        next_obs, rew, info = model.step(obs, act, generator=generator, disagreement=True)
        spread = info["disagreement"].float().sum()
    else:
        next_obs, rew, info = model.step(obs, act, generator=generator)
        spread = None
    if reward is not None:
        rew = reward(obs, act, next_obs)
        if not isinstance(rew, torch.Tensor) or rew.numel() != n:
            shape = list(rew.shape) if isinstance(rew, torch.Tensor) else type(rew).__name__
            raise ValueError(f"reward must return a tensor [B] for B = {n} rows, got {shape}")
        rew = rew.reshape(n)
    done = termination(obs, act, next_obs)
    if not isinstance(done, torch.Tensor) or done.numel() != n or done.dim() > 2:
        shape = list(done.shape) if isinstance(done, torch.Tensor) else type(done).__name__
        raise ValueError(f"termination must return a bool tensor [B] for B = {n} rows, got {shape}")
    return act, next_obs, rew, done.reshape(n).to(torch.bool), spread


def branched_rollout(model: RolloutModel, policy: Any, start_obs: torch.Tensor, k: int,
                     termination: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                     generator: torch.Generator | None = None, buffer: TransitionSink | None = None, *,
                     disagreement: bool = False,
                     reward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                     ) -> RolloutStats:
    """Roll ``model`` ``k`` steps from ``start_obs`` under ``policy``; write into ``buffer``.

    Each step, for the rows still alive: ``act = policy(obs, generator)`` (stochastic),
    ``next_obs, rew = model.step(obs, act, generator=generator)``,
    ``done = termination(obs, act, next_obs)``; ``(obs, act, rew, next_obs, done)`` of all those
    rows goes to ``buffer.add_batch`` (a row that terminates at this step is written, with
    ``done`` True), then only the rows with ``done`` False go on to the next step. The buffer
    holds the transitions step by step, rows in their start order within a step, as in the
    official code; the rollout stops early once every row has terminated.

    Args:
        model: a :class:`RolloutModel` (``DynamicsModel``) with ``obs_dim`` and ``step``.
        policy: a :class:`RolloutPolicy` ``policy(obs, generator) -> act`` or an object with
            ``act(obs, deterministic=False, generator=None)`` such as ``SAC``.
        start_obs: ``[N, obs_dim]`` start states (MBPO: 100,000 drawn from the real buffer), on
            the model's device.
        k: the rollout length, an int >= 1 (:func:`rollout_schedule`).
        termination: ``termination(obs, act, next_obs) -> bool [B]`` (``[B, 1]`` is accepted),
            e.g. ``mbpo_lib.termination.termination_fn(env_id)``.
        generator: used for every random draw (the policy's noise and the model's elite choice
            and sample); the same generator state gives the same rollout. None leaves each to
            its own default (``SAC.generator``; ``DynamicsModel.step`` then uses torch's global
            generator).
        buffer: the model buffer (a ``ReplayBuffer`` on the model's device, with the model's
            ``obs_dim``); None runs the rollout for its statistics only.
        disagreement: also measure the ensemble disagreement (``model.step(...,
            disagreement=True)``, which runs every elite on every row: slower).
        reward: a known reward ``reward(obs, act, next_obs) -> [B]`` used instead of the
            model's predicted one (None: the model's); the model's draws are the same either way.

    Returns:
        :class:`RolloutStats`. Everything stays on the device: the statistics are accumulated
        there and read back once at the end. The one host sync per step is the size of the
        surviving set (``nonzero``), which the buffer write of the next step needs anyway; it
        is skipped after the last step.
    """
    start = time.perf_counter()
    k = _check_k(k)
    pi = as_rollout_policy(policy)
    if not callable(termination):
        raise TypeError(f"termination must be callable as termination(obs, act, next_obs) -> bool [B], "
                        f"got {type(termination).__name__}")
    obs_dim = model.obs_dim
    if not isinstance(start_obs, torch.Tensor):
        raise TypeError(f"start_obs must be a torch.Tensor [N, {obs_dim}] on the model's device, got "
                        f"{type(start_obs).__name__}")
    if start_obs.dim() != 2 or start_obs.shape[1] != obs_dim or start_obs.shape[0] < 1:
        raise ValueError(f"start_obs must be [N, {obs_dim}] with N >= 1 (the model's obs_dim is "
                         f"{obs_dim}), got {list(start_obs.shape)}")
    device = getattr(model, "device", None)
    device = start_obs.device if device is None else torch.device(device)
    if not _same_device(start_obs.device, device):
        raise ValueError(f"start_obs is on {start_obs.device} but the model on {device}; move the start "
                         "states (or keep the real buffer) on the model's device")
    if buffer is not None:
        if getattr(buffer, "obs_dim", obs_dim) != obs_dim:
            raise ValueError(f"the buffer stores obs_dim={buffer.obs_dim} but the model has "
                             f"obs_dim={obs_dim}")
        buffer_device = getattr(buffer, "device", None)
        if buffer_device is not None and not _same_device(torch.device(buffer_device), device):
            raise ValueError(f"the buffer is on {buffer_device} but the model on {device}; a rollout "
                             "writes on one device (make the model buffer there)")

    n_start = start_obs.shape[0]
    obs = start_obs
    rows_per_step: list[int] = []
    reward_sum = torch.zeros((), dtype=torch.float32, device=device)
    disagreement_sum = torch.zeros((), dtype=torch.float32, device=device)
    ended_last = torch.zeros((), dtype=torch.long, device=device)   # terminations at the last step
    ended_before = 0                                                  # terminations before it (host)
    for step in range(k):
        n = obs.shape[0]
        act, next_obs, rew, done, spread = _model_step(model, pi, obs, generator, termination, reward,
                                                       disagreement)
        if disagreement:
            disagreement_sum += spread
        if buffer is not None:
            buffer.add_batch(obs, act, rew, next_obs, done)
        rows_per_step.append(n)
        reward_sum += rew.float().sum()
        if step == k - 1:
            ended_last = done.sum()
            break
        alive = (~done).nonzero().squeeze(1)          # the one sync of the step: how many go on
        survivors = alive.numel()
        ended_before += n - survivors
        if survivors == 0:
            break
        obs = next_obs if survivors == n else next_obs[alive]

    reward_total, disagreement_total, last = torch.stack(
        [reward_sum, disagreement_sum, ended_last.to(torch.float32)]).tolist()   # the one final sync
    transitions = sum(rows_per_step)
    terminated = ended_before + int(last)
    return RolloutStats(
        k=k, start_states=n_start, steps=len(rows_per_step), transitions=transitions,
        rows_per_step=tuple(rows_per_step), mean_length=transitions / n_start,
        termination_rate=terminated / n_start, mean_reward=reward_total / transitions,
        mean_disagreement=disagreement_total / transitions if disagreement else None,
        seconds=time.perf_counter() - start,
    )


def _check_count(name: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} ({what}) must be an int >= 1, got {value!r}")
    return int(value)


def _fresh_states(reset_obs: Callable[[int], torch.Tensor], n: int, obs_dim: int,
                  device: torch.device | None) -> torch.Tensor:
    """``reset_obs(n)``, checked: a ``[n, obs_dim]`` tensor on the model's device."""
    obs = reset_obs(n)
    if not isinstance(obs, torch.Tensor):
        raise TypeError(f"reset_obs(n) must return a torch.Tensor [n, {obs_dim}] on the model's device, "
                        f"got {type(obs).__name__}")
    if obs.dim() != 2 or tuple(obs.shape) != (n, obs_dim):
        raise ValueError(f"reset_obs({n}) must return [{n}, {obs_dim}] (n fresh start states; the model's "
                         f"obs_dim is {obs_dim}), got {list(obs.shape)}")
    if device is not None and not _same_device(obs.device, device):
        raise ValueError(f"reset_obs gave states on {obs.device} but the model is on {device}; return them "
                         "on the model's device")
    return obs


@torch.no_grad()
def reset_rollout(model: RolloutModel, policy: Any, reset_obs: Callable[[int], torch.Tensor],
                  transitions: int, horizon: int,
                  termination: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                  generator: torch.Generator | None = None, buffer: TransitionSink | None = None, *,
                  reward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  parallel: int | None = None, disagreement: bool = False) -> RolloutStats:
    """Write exactly ``transitions`` model transitions from long rollouts that start at reset states.

    The design the MBPO paper argues against (``MBPOConfig.rollout_start = "reset"``), kept for
    controlled experiments: instead of short branches off real states, rollouts begin in the
    environment's start-state distribution and run up to ``horizon`` steps (the task's episode
    length), as a Dyna-style learner that imagines whole episodes would. ``parallel`` rollouts
    run side by side as one batch; whenever one ends, because the termination function ended it
    (its last row is written with ``done`` True) or because it reached ``horizon`` steps (a time
    limit: written with ``done`` False, never as terminal), its slot starts a new rollout from a
    fresh state of ``reset_obs``. Rows that a termination ended are never stepped again. The
    rollout stops as soon as ``transitions`` rows are written: the last step runs only the first
    slots it needs, so exactly ``transitions`` rows reach ``buffer``.

    Each step is the one of :func:`branched_rollout`, on every slot: ``act = policy(obs,
    generator)``, ``next_obs, rew = model.step(obs, act, generator=generator)`` (``rew`` replaced
    by ``reward(obs, act, next_obs)`` when given), ``done = termination(obs, act, next_obs)``, and
    ``(obs, act, rew, next_obs, done)`` to ``buffer.add_batch``: the buffer holds the transitions
    step by step, slots in order within a step.

    Args:
        model, policy, termination, generator, buffer, reward, disagreement: as in
            :func:`branched_rollout`.
        reset_obs: ``reset_obs(n) -> [n, obs_dim]`` tensor on the model's device: n fresh states
            from the start-state distribution (the trainer resets a second environment with
            seeds of its own). It is called once with ``parallel`` and then, after each step
            where rollouts ended, with their number; slots are filled in order.
        transitions: the model rows to write, an int >= 1 (the trainer: ``rollout_batch_size *
            k``, the same count a branched rollout of length k writes at most).
        horizon: the longest rollout, an int >= 1 (the trainer: the environment's
            ``max_episode_steps``).
        parallel: rollouts run side by side (None: ``ceil(transitions / horizon)``, so a rollout
            that never terminates runs its whole horizon once and the batch takes about
            ``horizon`` sequential model steps). At most ``transitions`` are used.

    Returns:
        :class:`RolloutStats` with ``k = horizon``, ``start_states`` the rollouts begun (from reset
        states; the last ones may be cut by the transition count), ``steps`` the batched steps,
        ``mean_length = transitions / start_states`` and ``termination_rate`` the share of begun
        rollouts that the termination function ended.
    """
    start = time.perf_counter()
    transitions = _check_count("transitions", transitions, "the model rows to write")
    horizon = _check_count("horizon", horizon, "the longest rollout, in steps")
    slots = -(-transitions // horizon) if parallel is None else _check_count(
        "parallel", parallel, "the rollouts run side by side")
    slots = min(slots, transitions)
    pi = as_rollout_policy(policy)
    if not callable(termination):
        raise TypeError(f"termination must be callable as termination(obs, act, next_obs) -> bool [B], "
                        f"got {type(termination).__name__}")
    if not callable(reset_obs):
        raise TypeError(f"reset_obs must be callable as reset_obs(n) -> [n, obs_dim] fresh start states, got "
                        f"{type(reset_obs).__name__}")
    obs_dim = model.obs_dim
    device = getattr(model, "device", None)
    device = None if device is None else torch.device(device)
    if buffer is not None and getattr(buffer, "obs_dim", obs_dim) != obs_dim:
        raise ValueError(f"the buffer stores obs_dim={buffer.obs_dim} but the model has obs_dim={obs_dim}")
    obs = _fresh_states(reset_obs, slots, obs_dim, device)
    device = obs.device if device is None else device
    if buffer is not None:
        buffer_device = getattr(buffer, "device", None)
        if buffer_device is not None and not _same_device(torch.device(buffer_device), device):
            raise ValueError(f"the buffer is on {buffer_device} but the model on {device}; a rollout "
                             "writes on one device (make the model buffer there)")

    age = torch.zeros(slots, dtype=torch.long, device=obs.device)   # steps into each slot's rollout
    begun, written = slots, 0
    rows_per_step: list[int] = []
    reward_sum = torch.zeros((), dtype=torch.float32, device=obs.device)
    disagreement_sum = torch.zeros((), dtype=torch.float32, device=obs.device)
    ended = torch.zeros((), dtype=torch.long, device=obs.device)     # rollouts the termination ended
    while True:
        n = min(slots, transitions - written)
        if n < obs.shape[0]:                        # the last step: only the rows still needed
            obs, age = obs[:n], age[:n]
        act, next_obs, rew, done, spread = _model_step(model, pi, obs, generator, termination, reward,
                                                       disagreement)
        if disagreement:
            disagreement_sum += spread
        if buffer is not None:
            buffer.add_batch(obs, act, rew, next_obs, done)
        rows_per_step.append(n)
        written += n
        reward_sum += rew.float().sum()
        ended += done.sum()
        if written == transitions:
            break
        age += 1
        restart = (done | (age >= horizon)).nonzero().squeeze(1)   # the one sync of the step
        obs = next_obs
        if restart.numel():
            fresh = _fresh_states(reset_obs, restart.numel(), obs_dim, device)
            obs = obs.clone()                       # never write into the rows the buffer was given
            obs[restart] = fresh.to(obs.dtype)
            age[restart] = 0
            begun += restart.numel()

    reward_total, disagreement_total, terminated = torch.stack(
        [reward_sum, disagreement_sum, ended.to(torch.float32)]).tolist()   # the one final sync
    return RolloutStats(
        k=horizon, start_states=begun, steps=len(rows_per_step), transitions=written,
        rows_per_step=tuple(rows_per_step), mean_length=written / begun,
        termination_rate=terminated / begun, mean_reward=reward_total / written,
        mean_disagreement=disagreement_total / written if disagreement else None,
        seconds=time.perf_counter() - start,
    )
