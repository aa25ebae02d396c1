"""Small Gymnasium tasks of "a user's own", registered on import, for tests/test_own_task.py.

Importing this module registers them (``gymnasium.register``), as a user's ``mypkg.envs``
would: pass ``env_module="own_tasks"`` (with ``tests/`` on the path) to re-create them in a
resumed run or a Ray worker.

* ``OwnGoalReach-v0``: a point in the plane, ``s' = s + 0.2 a`` with ``a`` in ``[-1, 1]^2``,
  reward ``-|s'|`` (reach the origin and stay), 30 steps, never terminated. A random policy
  drifts (mean return about -24); a good one reaches the origin in a few steps (about -3).
* ``OwnGoalReachArena-v0``: the same with ``terminated`` once the point leaves the square
  ``|s|_inf <= 1.5`` (:func:`outside_arena` is that rule on tensors).
* spaces MBPO refuses: Discrete, MultiDiscrete and unbounded actions; Dict and image
  observations; and an env whose observation space grows at every reset.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

ARENA = 1.5
STEP = 0.2


class GoalReach(gym.Env):
    """The point task; its episode state is plain attributes (``pos``), as a checkpoint saves them."""

    metadata = {"render_modes": []}

    def __init__(self, arena: float | None = None) -> None:
        self.arena = arena
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self.pos.copy(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        self.pos = (self.pos + STEP * action).astype(np.float32)
        reward = -float(np.linalg.norm(self.pos))
        terminated = self.arena is not None and bool(np.abs(self.pos).max() > self.arena)
        return self.pos.copy(), reward, terminated, False, {}


def outside_arena(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """``OwnGoalReachArena-v0``'s rule: terminated once ``|s'|_inf > 1.5``."""
    return next_obs.abs().amax(dim=-1) > ARENA


def distance_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """The tasks' reward, ``-|s'|``, on tensors."""
    return -next_obs.norm(dim=-1)


def float_termination(obs, act, next_obs):
    """Wrong on purpose: floats, not bools."""
    return (next_obs[:, 0] > 0).float()


def wide_termination(obs, act, next_obs):
    """Wrong on purpose: one value per observation dimension."""
    return next_obs > 0


def integer_reward(obs, act, next_obs):
    """Wrong on purpose: integers."""
    return torch.zeros(next_obs.shape[0], dtype=torch.long, device=next_obs.device)


class _Space(GoalReach):
    def __init__(self, action_space=None, observation_space=None) -> None:
        super().__init__()
        if action_space is not None:
            self.action_space = action_space
        if observation_space is not None:
            self.observation_space = observation_space


def discrete_actions() -> gym.Env:
    return _Space(action_space=spaces.Discrete(3))


def multi_discrete_actions() -> gym.Env:
    return _Space(action_space=spaces.MultiDiscrete([3, 3]))


def unbounded_actions() -> gym.Env:
    return _Space(action_space=spaces.Box(-np.inf, np.inf, (2,), np.float32))


def dict_observations() -> gym.Env:
    return _Space(observation_space=spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,), np.float32)}))


def image_observations() -> gym.Env:
    return _Space(observation_space=spaces.Box(0, 255, (8, 8, 3), np.uint8))


class GrowingObservation(GoalReach):
    """Its observation space gains a dimension at every reset after the first."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        self.resets += 1
        if self.resets > 2:      # make_env's reset and the trainer's first one keep 2 dimensions
            self.observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
            return np.append(obs, 0.0).astype(np.float32), info
        return obs, info


def _register(env_id: str, entry_point, **kwargs) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, **kwargs)


_register("OwnGoalReach-v0", GoalReach, max_episode_steps=30)
_register("OwnGoalReachArena-v0", GoalReach, max_episode_steps=30, kwargs={"arena": ARENA})
_register("OwnDiscrete-v0", discrete_actions, max_episode_steps=30)
_register("OwnMultiDiscrete-v0", multi_discrete_actions, max_episode_steps=30)
_register("OwnUnbounded-v0", unbounded_actions, max_episode_steps=30)
_register("OwnDict-v0", dict_observations, max_episode_steps=30)
_register("OwnImage-v0", image_observations, max_episode_steps=30)
_register("OwnGrowing-v0", GrowingObservation, max_episode_steps=5)


def elsewhere_termination(obs, act, next_obs):
    """Wrong on purpose: bools on another device (PyTorch's shape-only "meta" device)."""
    return torch.zeros(next_obs.shape[0], dtype=torch.bool, device="meta")
