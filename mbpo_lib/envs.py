"""The environments of the series: Gymnasium ``*-v5`` MuJoCo tasks (and Pendulum-v1 for SAC).

:func:`make_env` builds one by id with a seed and MBPO's observation presets:

* ``Ant-v5`` without the contact forces (``include_cfrc_ext_in_observation=False``): 27
  dimensions, the observation the paper's Ant used;
* ``Humanoid-v5`` without ``cinert``, ``cvel``, ``qfrc_actuator`` and ``cfrc_ext``: 45
  dimensions, the paper's Humanoid.

Every action space is checked to be a bounded continuous ``Box`` and rescaled to ``[-1, 1]``
(Gymnasium's ``RescaleAction``), so the tanh-squashed SAC policy and the dynamics model see the
same action range on every task, as the official code's normalised action spaces did.
Pendulum's ``[-2, 2]``, InvertedPendulum's ``[-3, 3]`` and Humanoid's ``[-0.4, 0.4]`` become
``[-1, 1]``; the other tasks already are.

:func:`evaluate` runs a policy's deterministic action for a few episodes and reports the mean
and standard deviation of the undiscounted return; :func:`evaluate_episodes` runs the same
episodes and keeps each one (:class:`EvalEpisode`: observations, actions, rewards, how it
ended), and :func:`episode_return_stats` turns those into what :func:`evaluate` reports.

Your own task: :func:`make_env` also builds any other id that ``gymnasium.make`` can build, a
task of Gymnasium's outside the presets or one registered with ``gymnasium.register`` by a
module of your own (``env_module``, imported first, so that it registers the id; this is how
checkpoints and Ray workers re-create the task). It must have a bounded, flat continuous
``Box`` action space and a flat ``Box`` observation of floats; anything else is refused with a
message saying why (:func:`check_action_space`, :func:`check_observation_space`). Ids that look
like a preset's other version (``Hopper-v4``) are refused with a did-you-mean hint unless an
``env_module`` is given.
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

# The 27-dim Ant of the paper: contact forces left out of the observation.
ANT_27_DIM = MappingProxyType({"include_cfrc_ext_in_observation": False})
# The 45-dim Humanoid of the paper: positions and velocities only.
HUMANOID_45_DIM = MappingProxyType({
    "include_cinert_in_observation": False,
    "include_cvel_in_observation": False,
    "include_qfrc_actuator_in_observation": False,
    "include_cfrc_ext_in_observation": False,
})


@dataclass(frozen=True)
class EnvSpec:
    """A supported task: its id, the sizes ``make_env`` yields, and the preset kwargs it applies."""

    env_id: str
    obs_dim: int
    act_dim: int
    preset: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


SUPPORTED_ENVS: dict[str, EnvSpec] = {spec.env_id: spec for spec in (
    EnvSpec("Hopper-v5", 11, 3),
    EnvSpec("Walker2d-v5", 17, 6),
    EnvSpec("HalfCheetah-v5", 17, 6),
    EnvSpec("Ant-v5", 27, 8, ANT_27_DIM),
    EnvSpec("Humanoid-v5", 45, 17, HUMANOID_45_DIM),
    EnvSpec("InvertedPendulum-v5", 4, 1),
    EnvSpec("InvertedDoublePendulum-v5", 9, 1),   # 11 in the paper's v2; v5 drops 2 constant zeros
    EnvSpec("Pendulum-v1", 3, 1),
)}


_MUJOCO_LOG = logging.getLogger("mbpo_lib.mujoco")


def _mujoco_warning(message: str) -> None:
    """MuJoCo's warnings into Python's ``logging`` (logger ``mbpo_lib.mujoco``).

    MuJoCo's own handler prints each warning and appends it to ``MUJOCO_LOG.TXT`` in the working
    directory, so every run (and every test run) left that file wherever it was started. The
    deprecation of ``settotalmass`` comes from Gymnasium's bundled model files, not from the user,
    so it goes to the debug level; any other warning is logged as a warning.
    """
    text = message.strip()
    level = logging.DEBUG if "'settotalmass' is deprecated" in text else logging.WARNING
    _MUJOCO_LOG.log(level, "MuJoCo: %s", text)


def _route_mujoco_warnings() -> None:
    """Install :func:`_mujoco_warning` unless the user installed a handler of their own."""
    try:
        import mujoco
    except ImportError:     # gymnasium without its mujoco extra: nothing to route
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


_route_mujoco_warnings()


def _supported() -> str:
    return ", ".join(SUPPORTED_ENVS)


def check_action_space(space: gym.Space, env_id: str = "this environment") -> None:
    """Refuse what SAC's tanh-squashed Gaussian cannot act in: anything but a bounded, 1-D
    continuous ``Box`` (Discrete and MultiDiscrete spaces, integer boxes, unbounded boxes)."""
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{env_id} has a {type(space).__name__} action space ({space}); mbpo_lib needs "
                         f"continuous Box actions (supported: {_supported()}, or a task of your own "
                         "with a bounded Box action space)")
    if len(space.shape) != 1:
        raise ValueError(f"{env_id} has actions of shape {space.shape}; mbpo_lib needs a flat vector")
    if not np.issubdtype(space.dtype, np.floating):
        raise ValueError(f"{env_id} has a Box action space of dtype {space.dtype} (integer actions); "
                         "mbpo_lib needs continuous actions (a float Box)")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"{env_id} has an unbounded action space (low {space.low}, high {space.high}); "
                         "a tanh-squashed policy needs finite bounds on every dimension")


def check_observation_space(space: gym.Space, env_id: str = "this environment") -> None:
    """Refuse what the dynamics model cannot predict: anything but a flat ``Box`` of floats
    (``Dict``/``Tuple`` observations, images and other arrays, integer boxes, ``Discrete``)."""
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{env_id} has a {type(space).__name__} observation space ({space}); mbpo_lib "
                         "needs a flat Box of floats (the model predicts one vector per step): flatten a "
                         "Dict or Tuple observation, e.g. with gymnasium.wrappers.FlattenObservation, in "
                         "the env you register")
    if len(space.shape) != 1:
        kind = "an image" if len(space.shape) == 3 else "an array"
        raise ValueError(f"{env_id} has observations of shape {space.shape} ({kind}); mbpo_lib needs a "
                         "flat vector of floats (the model predicts one vector per step; learn from "
                         "state features, or flatten the observation)")
    if not np.issubdtype(space.dtype, np.floating):
        raise ValueError(f"{env_id} has observations of dtype {space.dtype}; mbpo_lib needs floats (an "
                         "integer or pixel observation cannot be predicted as a Gaussian)")


_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def import_env_module(name: str) -> None:
    """Import the module that registers a task of your own (``gymnasium.register``), with a
    ``ValueError`` naming it when it cannot be imported."""
    if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
        raise ValueError(f"env_module must be a module name such as 'mypkg.envs', got {name!r}")
    try:
        importlib.import_module(name)
    except ImportError as error:
        raise ValueError(f"env_module {name!r} cannot be imported ({type(error).__name__}: {error}); it "
                         "must be importable where the run is made, resumed or evaluated (on sys.path; "
                         "for a Ray sweep, on every worker)") from None


def near_preset(env_id: str) -> str | None:
    """The supported id that ``env_id`` looks like another version or spelling of (``Hopper-v4``,
    ``hopper-v5``: ``Hopper-v5``), else None."""
    base = str(env_id).rsplit("-v", 1)[0].lower()
    return next((known for known in SUPPORTED_ENVS
                 if known != env_id and known.rsplit("-v", 1)[0].lower() == base), None)


def check_env_id(env_id: str, env_module: str | None = None) -> None:
    """Import ``env_module`` (when given) and refuse an id that no registered entry point builds,
    or a supported task's near-miss (``Hopper-v4``) without an ``env_module``, with hints;
    nothing is made."""
    if env_module is not None:
        import_env_module(env_module)
    if env_id not in SUPPORTED_ENVS:
        _check_registered(env_id, env_module)


def _check_registered(env_id: str, env_module: str | None) -> None:
    """Refuse an id no registered entry point builds, and a preset's near-miss, with hints."""
    close = near_preset(env_id)
    if close is not None and env_module is None:
        raise ValueError(f"unknown env id {env_id!r} (did you mean {close}?); mbpo_lib supports "
                         f"{_supported()}, and tasks of your own registered by an env_module")
    if env_id not in gym.registry:
        where = (f"importing {env_module!r} did not register it" if env_module is not None else
                 "pass the module that registers it as env_module (--env-module on the command line)")
        raise ValueError(f"unknown env id {env_id!r}: no registered Gymnasium environment has this id; "
                         f"{where}. mbpo_lib supports {_supported()} and any id registered with "
                         "gymnasium.register(id=..., entry_point=...) whose actions are a bounded Box")


def make_env(env_id: str, seed: int | None = None, *, preset: bool = True, rescale_actions: bool = True,
             env_module: str | None = None, **kwargs: Any) -> gym.Env:
    """A Gymnasium env for ``env_id``, reset with ``seed`` (and its action space seeded).

    Args:
        env_id: one of :data:`SUPPORTED_ENVS`, or any other registered id whose action space is
            a bounded, flat ``Box`` and whose observation is a flat ``Box`` of floats (a task of
            your own: see the module docstring).
        seed: seeds ``env.reset`` and ``env.action_space``; None leaves them unseeded.
        preset: apply MBPO's observation preset (27-dim Ant, 45-dim Humanoid). False gives
            Gymnasium's default observation (Ant 105, Humanoid 348 dimensions).
        rescale_actions: map the action space to ``[-1, 1]`` (see the module docstring).
        env_module: a module to import first, the one that registers ``env_id``
            (``gymnasium.register``); None when the id is registered already.
        kwargs: passed to ``gymnasium.make``; they override the preset's.

    The env is returned after ``reset(seed=seed)``, so the first episode is the seeded one;
    calling ``reset(seed=seed)`` again starts that same episode.
    """
    if env_module is not None:
        import_env_module(env_module)
    spec = SUPPORTED_ENVS.get(env_id) if isinstance(env_id, str) else None
    if spec is None:
        if not isinstance(env_id, str) or not env_id:
            raise ValueError(f"env_id must be a Gymnasium id (a str such as 'Hopper-v5'), got {env_id!r}")
        _check_registered(env_id, env_module)
    options = {**(spec.preset if (preset and spec is not None) else {}), **kwargs}
    try:
        env = gym.make(env_id, **options)
    except Exception as error:   # the user's entry point or kwargs: say which call failed
        raise ValueError(f"gymnasium.make({env_id!r}, **{options}) failed: {type(error).__name__}: "
                         f"{error}") from error
    try:
        check_action_space(env.action_space, env_id)
        check_observation_space(env.observation_space, env_id)
        space = env.action_space
        if rescale_actions and not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
            ones = np.ones(space.shape, dtype=space.dtype)
            env = gym.wrappers.RescaleAction(env, min_action=-ones, max_action=ones)
        obs_shape = env.observation_space.shape
        if spec is not None and preset and not kwargs and obs_shape != (spec.obs_dim,):
            raise RuntimeError(f"{env_id} gave observations of shape {obs_shape}, expected ({spec.obs_dim},) "
                               "for MBPO's preset: has the Gymnasium version changed the observation?")
        env.reset(seed=seed)
        env.action_space.seed(seed)
    except Exception:
        env.close()
        raise
    return env


def as_action_fn(policy: Any) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(policy, "act"):
        return lambda obs: policy.act(obs, deterministic=True)
    if callable(policy):
        return policy
    raise TypeError(f"policy must have act(obs, deterministic=True) or be callable obs -> action, got "
                    f"{type(policy).__name__}")


class EvalEpisode(NamedTuple):
    """One evaluation episode as :func:`evaluate_episodes` recorded it (NumPy arrays, T steps).

    Attributes:
        observations: ``[T + 1, obs_dim]``: the reset observation, then the one after each step
            (the last is the observation the episode ended in).
        actions: ``[T, act_dim]``: the actions the policy took, as given to ``env.step``.
        rewards: ``[T]`` (float64): the rewards.
        terminated: the episode ended in a terminal state (its return after the end is 0).
        truncated: the time limit cut it (its return after the cut is unknown).
        episode_return: the undiscounted return, the rewards summed in step order (what
            :func:`evaluate` averages).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool
    episode_return: float

    @property
    def length(self) -> int:
        """T, the steps of the episode."""
        return int(self.rewards.shape[0])


def evaluate_episodes(policy: Any, env_id: str, episodes: int = 10, seed: int = 0, **make_kwargs: Any
                      ) -> list[EvalEpisode]:
    """Run ``policy``'s deterministic action for ``episodes`` episodes and record each of them.

    ``policy`` is an object with ``act(obs, deterministic=True)`` (a :class:`~mbpo_lib.SAC`:
    the deterministic action ``tanh(mean)``) or a function ``obs -> action``; actions are in
    ``[-1, 1]`` (the env's actions are rescaled by :func:`make_env`, which ``make_kwargs`` go
    to). Episode ``i`` starts from ``reset(seed=seed + i)``, so the same policy and seed give
    the same episodes. An episode ends at ``terminated`` or at the time limit (``truncated``).
    The episodes are kept whole so that other measures can be taken on exactly the evaluation's
    states, without a step more (e.g. :func:`mbpo_lib.diagnostics.q_value_bias`).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    act = as_action_fn(policy)
    env = make_env(env_id, seed, **make_kwargs)
    recorded = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            observations, actions, rewards = [np.array(obs)], [], []   # copies: an env may reuse its array
            total, done, terminated, truncated = 0.0, False, False, False
            while not done:
                action = np.array(act(obs))
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                observations.append(np.array(obs))
                actions.append(action)
                rewards.append(float(reward))
                done = terminated or truncated
            recorded.append(EvalEpisode(np.stack(observations), np.stack(actions),
                                        np.asarray(rewards, dtype=np.float64), bool(terminated),
                                        bool(truncated), total))
    finally:
        env.close()
    return recorded


def episode_return_stats(episodes: Sequence[EvalEpisode]) -> tuple[float, float]:
    """Mean and (population) standard deviation of the episodes' returns: what :func:`evaluate`
    reports, from the episodes :func:`evaluate_episodes` recorded."""
    returns = [episode.episode_return for episode in episodes]
    if not returns:
        raise ValueError("episode_return_stats needs at least one episode, got none")
    mean = statistics.fmean(returns)
    std = math.sqrt(statistics.fmean([(r - mean) ** 2 for r in returns]))
    return mean, std


def evaluate(policy: Any, env_id: str, episodes: int = 10, seed: int = 0, **make_kwargs: Any
             ) -> tuple[float, float]:
    """Mean and (population) standard deviation of the return over ``episodes`` episodes.

    ``policy`` is an object with ``act(obs, deterministic=True)`` (a :class:`~mbpo_lib.SAC`:
    the deterministic action ``tanh(mean)``) or a function ``obs -> action``; actions are in
    ``[-1, 1]`` (the env's actions are rescaled by :func:`make_env`). Episode ``i`` starts from
    ``reset(seed=seed + i)``, so the same policy and seed give the same numbers. An episode ends
    at ``terminated`` or at the time limit (``truncated``). The same as
    ``episode_return_stats(evaluate_episodes(...))``; use those two to keep the episodes.
    """
    return episode_return_stats(evaluate_episodes(policy, env_id, episodes, seed, **make_kwargs))


def _wrappers(env: gym.Env) -> list[Any]:
    chain, current = [], env
    while True:
        chain.append(current)
        if not hasattr(current, "env") or current is current.unwrapped:
            return chain
        current = current.env


def env_state(env: gym.Env) -> dict[str, Any]:
    """Everything needed to continue ``env``'s current episode exactly: the simulator state,
    the time limit's step counter and the env's random generator (for its next ``reset``).

    MuJoCo tasks save MuJoCo's full integration state (``mj_getState`` with
    ``mjSTATE_INTEGRATION``: time, positions, velocities, controls and the solver's warm start),
    so a restored env steps bit for bit as the original; classic-control tasks (Pendulum) save
    their ``state`` attribute. Any other env (a task of your own) saves every instance attribute
    of its unwrapped env that holds plain data (numbers, strings, numpy arrays, and lists, tuples
    and dicts of them): keep the episode's state in such attributes, or in one ``state``, and a
    checkpoint continues it exactly. Checkpoints of :class:`~mbpo_lib.mbpo.MBPO` store this.
    """
    base = env.unwrapped
    state: dict[str, Any] = {
        "np_random": copy.deepcopy(base.np_random.bit_generator.state),
        "elapsed_steps": [getattr(w, "_elapsed_steps", None) for w in _wrappers(env)],
    }
    if hasattr(base, "data") and hasattr(base, "model"):
        import mujoco

        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(base.model, kind))
        mujoco.mj_getState(base.model, base.data, physics, kind)
        state["mujoco"] = physics
    elif hasattr(base, "state"):
        state["state"] = copy.deepcopy(base.state)
    else:   # a task of your own: its plain attributes (numbers, arrays, strings and their lists)
        state["attributes"] = {name: copy.deepcopy(value) for name, value in vars(base).items()
                               if name not in _NOT_STATE and _plain(value)}
    return state


# Attributes of gymnasium.Env that are not the episode's state (the spaces, the spec, the generator).
_NOT_STATE = frozenset({"np_random", "_np_random", "_np_random_seed", "spec", "action_space",
                        "observation_space", "metadata", "render_mode", "reward_range"})


def _plain(value: Any, depth: int = 0) -> bool:
    """A value a checkpoint stores and restores as it is: numbers, strings, None, numpy arrays and
    scalars, and lists, tuples and str-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic)):
        return True
    if depth < 4 and isinstance(value, (list, tuple)):
        return all(_plain(item, depth + 1) for item in value)
    if depth < 4 and isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item, depth + 1) for key, item in value.items())
    return False


def restore_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Put ``env`` (made by :func:`make_env` with the same id and options) back into the state
    :func:`env_state` saved."""
    base = env.unwrapped
    wrappers = _wrappers(env)
    if len(wrappers) != len(state["elapsed_steps"]):
        raise ValueError(f"the saved env state has {len(state['elapsed_steps'])} wrapper levels, this env "
                         f"{len(wrappers)}: make it with the same make_env arguments")
    for wrapper, steps in zip(wrappers, state["elapsed_steps"], strict=True):
        if steps is not None:
            wrapper._elapsed_steps = steps
    base.np_random.bit_generator.state = copy.deepcopy(state["np_random"])
    if "mujoco" in state:
        import mujoco

        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.asarray(state["mujoco"], dtype=np.float64)
        if physics.shape != (mujoco.mj_stateSize(base.model, kind),):
            raise ValueError(f"the saved MuJoCo state has {physics.shape[0]} numbers, this env needs "
                             f"{mujoco.mj_stateSize(base.model, kind)}: a different task?")
        mujoco.mj_setState(base.model, base.data, physics, kind)
    elif "state" in state:
        base.state = copy.deepcopy(state["state"])
    else:
        for name, value in state["attributes"].items():
            setattr(base, name, copy.deepcopy(value))
