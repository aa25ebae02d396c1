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
and standard deviation of the undiscounted return.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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
    continuous ``Box``."""
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{env_id} has a {type(space).__name__} action space ({space}); mbpo_lib needs "
                         f"continuous Box actions (supported: {_supported()})")
    if len(space.shape) != 1:
        raise ValueError(f"{env_id} has actions of shape {space.shape}; mbpo_lib needs a flat vector")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"{env_id} has an unbounded action space (low {space.low}, high {space.high}); "
                         "a tanh-squashed policy needs finite bounds on every dimension")


def make_env(env_id: str, seed: int | None = None, *, preset: bool = True, rescale_actions: bool = True,
             **kwargs: Any) -> gym.Env:
    """A Gymnasium env for ``env_id``, reset with ``seed`` (and its action space seeded).

    Args:
        env_id: one of :data:`SUPPORTED_ENVS`.
        seed: seeds ``env.reset`` and ``env.action_space``; None leaves them unseeded.
        preset: apply MBPO's observation preset (27-dim Ant, 45-dim Humanoid). False gives
            Gymnasium's default observation (Ant 105, Humanoid 348 dimensions).
        rescale_actions: map the action space to ``[-1, 1]`` (see the module docstring).
        kwargs: passed to ``gymnasium.make``; they override the preset's.

    The env is returned after ``reset(seed=seed)``, so the first episode is the seeded one;
    calling ``reset(seed=seed)`` again starts that same episode.
    """
    if env_id not in SUPPORTED_ENVS:
        hint = ""
        base = env_id.rsplit("-v", 1)[0]
        close = [known for known in SUPPORTED_ENVS if known.rsplit("-v", 1)[0] == base]
        if close:
            hint = f" (did you mean {close[0]}?)"
        raise ValueError(f"unknown env id {env_id!r}{hint}; mbpo_lib supports {_supported()}")
    spec = SUPPORTED_ENVS[env_id]
    options = {**(spec.preset if preset else {}), **kwargs}
    env = gym.make(env_id, **options)
    try:
        check_action_space(env.action_space, env_id)
        space = env.action_space
        if rescale_actions and not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
            ones = np.ones(space.shape, dtype=space.dtype)
            env = gym.wrappers.RescaleAction(env, min_action=-ones, max_action=ones)
        obs_shape = env.observation_space.shape
        if preset and not kwargs and obs_shape != (spec.obs_dim,):
            raise RuntimeError(f"{env_id} gave observations of shape {obs_shape}, expected ({spec.obs_dim},) "
                               "for MBPO's preset: has the Gymnasium version changed the observation?")
        env.reset(seed=seed)
        env.action_space.seed(seed)
    except Exception:
        env.close()
        raise
    return env


def _as_action_fn(policy: Any) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(policy, "act"):
        return lambda obs: policy.act(obs, deterministic=True)
    if callable(policy):
        return policy
    raise TypeError(f"policy must have act(obs, deterministic=True) or be callable obs -> action, got "
                    f"{type(policy).__name__}")


def evaluate(policy: Any, env_id: str, episodes: int = 10, seed: int = 0, **make_kwargs: Any
             ) -> tuple[float, float]:
    """Mean and (population) standard deviation of the return over ``episodes`` episodes.

    ``policy`` is an object with ``act(obs, deterministic=True)`` (a :class:`~mbpo_lib.SAC`:
    the deterministic action ``tanh(mean)``) or a function ``obs -> action``; actions are in
    ``[-1, 1]`` (the env's actions are rescaled by :func:`make_env`). Episode ``i`` starts from
    ``reset(seed=seed + i)``, so the same policy and seed give the same numbers. An episode ends
    at ``terminated`` or at the time limit (``truncated``).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    act = _as_action_fn(policy)
    env = make_env(env_id, seed, **make_kwargs)
    returns = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(np.asarray(act(obs)))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    mean = statistics.fmean(returns)
    std = math.sqrt(statistics.fmean([(r - mean) ** 2 for r in returns]))
    return mean, std


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
    their ``state`` array. Checkpoints of :class:`~mbpo_lib.mbpo.MBPO` store this.
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
    else:
        raise TypeError(f"cannot save the state of {type(base).__name__}: neither a MuJoCo env nor one "
                        "with a `state` attribute")
    return state


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
    else:
        base.state = copy.deepcopy(state["state"])
