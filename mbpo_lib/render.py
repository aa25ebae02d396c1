"""Rendering: watch the agent, and the model's imagined rollout beside the real one.

MuJoCo draws a state from its positions ``qpos`` (and keeps the velocities ``qvel``); an
observation :math:`s` holds most of them. For every supported MuJoCo task this module maps

.. math::

    s \\;\\longleftrightarrow\\; (q_{pos}, q_{vel}),

so any state, a real one or one the model imagined, can be set on a MuJoCo simulator
(``mj_forward``) and drawn exactly as the environment draws it.

What each task's observation holds (Gymnasium ``*-v5``, ``make_env``'s presets):

* ``Hopper-v5``, ``Walker2d-v5``: ``[qpos[1:], clip(qvel, -10, 10)]``, the root's x left out;
* ``HalfCheetah-v5``: ``[qpos[1:], qvel]``, the root's x left out;
* ``Ant-v5`` (27 dims), ``Humanoid-v5`` (45 dims): ``[qpos[2:], qvel]``, the root's x and y
  left out (the root's height and orientation quaternion are in);
* ``InvertedPendulum-v5``: ``[qpos, qvel]``, everything;
* ``InvertedDoublePendulum-v5``: ``[x, sin θ, cos θ, clip(qvel, -10, 10), f]``: the hinge
  angles come back as ``atan2(sin θ, cos θ)``; ``f``, the cart's clipped constraint force, is
  no function of the state (it depends on the control too), so it is carried beside it.

``Pendulum-v1`` is no MuJoCo task and has no mapping; it is refused with an error naming the
tasks that have one.

**The left-out coordinates.** An observation cannot say where the body is along the floor.
Rendering a real state takes them from the simulator; for an imagined trajectory they are
**integrated from the predicted velocity**, as MuJoCo's semi-implicit Euler step does:
:math:`x_{t+1} = x_t + \\Delta t \\, \\dot x_{t+1}` (and likewise :math:`y`), with the env's
``dt`` (the physics step times the frame skip), starting from the real root position at the
start state. Velocities the observation clips at ±10 are integrated clipped.

**Headless rendering.** :func:`setup_headless_gl` chooses ``MUJOCO_GL=egl`` (and
``PYOPENGL_PLATFORM=egl``) on Linux when no display is set and the user set nothing; every
function here calls it before the first frame. EGL renders on a CPU through Mesa's software
driver (Debian: ``libegl1`` and ``libgl1-mesa-dri``); Colab has EGL. When no GL backend works,
:class:`RenderingUnavailable` names the packages.

**Clips.** :func:`write_clip` writes MP4 (H.264, through PyAV, whose wheel ships FFmpeg and
x264), animated GIF or animated WebP (Pillow), atomically and bounded in size
(:data:`MAX_CLIP_BYTES`); :func:`clip_html` embeds clips in a notebook as base64 data, so a
saved notebook and its slides play offline.
"""

from __future__ import annotations

import base64
import io
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .envs import SUPPORTED_ENVS, as_action_fn, make_env
from .files import atomic_write

if TYPE_CHECKING:   # only for the type hints: rendering needs no model at import time
    import gymnasium as gym
    from IPython.display import HTML

    from .dynamics import DynamicsModel

DEFAULT_SIZE: tuple[int, int] = (320, 240)   # (width, height) of one view, in pixels
MAX_CLIP_BYTES = 2 * 2**20                   # 2 MiB: the most one written or embedded clip may take
CLIP_FORMATS: dict[str, str] = {".mp4": "MP4 (H.264)", ".gif": "animated GIF", ".webp": "animated WebP"}
GL_PACKAGES = ("libegl1", "libgl1-mesa-dri")
TARGET_FPS = 30.0   # render_episode draws every n-th step so a clip plays near this rate, in real time


class RenderingUnavailable(RuntimeError):
    """MuJoCo could not create an OpenGL context (no GL backend works on this machine)."""


# --- headless OpenGL -------------------------------------------------------------------------

def setup_headless_gl() -> str | None:
    """Choose ``MUJOCO_GL=egl`` on Linux when no display is set and the user set nothing.

    Gymnasium's MuJoCo renderer reads ``MUJOCO_GL`` when it creates its first OpenGL context
    (at an env's first ``render()``); unset, it tries GLFW, which needs a display. So this
    must run before that first frame: every rendering function of this module calls it.
    (MuJoCo's own ``mujoco.Renderer`` reads ``MUJOCO_GL`` at ``import mujoco`` instead, which
    ``import mbpo_lib`` already did; this module draws only through Gymnasium's renderer.) A
    user's own ``MUJOCO_GL`` (``egl``, ``osmesa``, ``glfw``) is never changed. Returns the
    value in force (None: Gymnasium picks).
    """
    if ("MUJOCO_GL" not in os.environ and sys.platform.startswith("linux")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")   # PyOpenGL must load its EGL platform
    return os.environ.get("MUJOCO_GL")


def gl_unavailable_message(error: BaseException | None = None) -> str:
    """The help text of :class:`RenderingUnavailable`: the backend tried, the error, the fix."""
    backend = os.environ.get("MUJOCO_GL")
    tried = f"MUJOCO_GL={backend}" if backend else "MUJOCO_GL unset (Gymnasium tried glfw, egl, osmesa)"
    cause = f": {type(error).__name__}: {error}" if error is not None else ""
    return (f"MuJoCo could not create an OpenGL context for rendering ({tried}){cause}. "
            f"MUJOCO_GL may be egl, osmesa or glfw (glfw needs a display). Headless on Debian or Ubuntu, "
            f"install EGL and Mesa's software driver: `apt-get install -y {' '.join(GL_PACKAGES)}`, "
            "then use MUJOCO_GL=egl (chosen for you when no display is set). On Colab EGL works as it "
            "is: set os.environ['MUJOCO_GL'] = 'egl' before anything renders, or restart the runtime "
            "if another backend was already tried.")


# --- observation <-> MuJoCo state ------------------------------------------------------------

@dataclass(frozen=True)
class StateMap:
    """How one task's observation holds MuJoCo's ``(qpos, qvel)`` (module docstring's table).

    ``dropped``: leading ``qpos`` entries the observation leaves out (the root's x, or x and
    y); ``velocity_clip``: the bound the observation clips ``qvel`` at (None: not clipped);
    ``angles``: ``qpos[1:]`` is held as ``[sin, cos]`` (InvertedDoublePendulum); ``extra``:
    trailing observation entries that are no function of the state.
    """

    env_id: str
    nq: int
    nv: int
    dropped: int = 0
    velocity_clip: float | None = None
    angles: bool = False
    extra: int = 0

    @property
    def obs_dim(self) -> int:
        angle_entries = self.nq - 1 if self.angles else 0
        return self.nq - self.dropped + angle_entries + self.nv + self.extra


STATE_MAPS: dict[str, StateMap] = {m.env_id: m for m in (
    StateMap("Hopper-v5", nq=6, nv=6, dropped=1, velocity_clip=10.0),
    StateMap("Walker2d-v5", nq=9, nv=9, dropped=1, velocity_clip=10.0),
    StateMap("HalfCheetah-v5", nq=9, nv=9, dropped=1),
    StateMap("Ant-v5", nq=15, nv=14, dropped=2),
    StateMap("Humanoid-v5", nq=24, nv=23, dropped=2),
    StateMap("InvertedPendulum-v5", nq=2, nv=2),
    StateMap("InvertedDoublePendulum-v5", nq=3, nv=3, velocity_clip=10.0, angles=True, extra=1),
)}

def state_map(env_id: str) -> StateMap:
    """The :class:`StateMap` of ``env_id``; a task without one is refused, naming those with one."""
    if env_id not in STATE_MAPS:
        why = ("is not a MuJoCo task" if env_id in SUPPORTED_ENVS
               else "is not one of mbpo_lib's tasks")
        raise ValueError(f"cannot render {env_id!r}: it {why}, so its observations have no mapping to "
                         f"MuJoCo's qpos/qvel; rendering supports {', '.join(STATE_MAPS)}")
    return STATE_MAPS[env_id]


def _rows(x: Any, width: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != width:
        raise ValueError(f"{name} must have {width} entries in its last dimension, got shape {x.shape}")
    return x


def obs_to_state(env_id: str, obs: Any, root: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """MuJoCo's ``(qpos [..., nq], qvel [..., nv])`` (float64) from observations ``obs [..., obs_dim]``.

    ``root [..., dropped]``: the coordinates the observation leaves out (the root's x, or x and
    y; see :attr:`StateMap.dropped`); None puts the body at 0. Clipped velocities stay clipped;
    InvertedDoublePendulum's angles come back as ``atan2(sin, cos)`` in ``(-π, π]``, and its
    constraint-force entry is ignored.
    """
    m = state_map(env_id)
    obs = _rows(obs, m.obs_dim, "obs")
    lead = obs.shape[:-1]
    if root is None or m.dropped == 0:
        root_part = np.zeros((*lead, m.dropped))
    else:
        root_part = np.broadcast_to(_rows(root, m.dropped, "root"), (*lead, m.dropped))
    if m.angles:
        n = m.nq - 1
        sin, cos = obs[..., 1:1 + n], obs[..., 1 + n:1 + 2 * n]
        qpos = np.concatenate([obs[..., :1], np.arctan2(sin, cos)], axis=-1)
        qvel = obs[..., 1 + 2 * n:1 + 2 * n + m.nv]
    else:
        kept = m.nq - m.dropped
        qpos = np.concatenate([root_part, obs[..., :kept]], axis=-1)
        qvel = obs[..., kept:kept + m.nv]
    return qpos, qvel.copy()


def state_to_obs(env_id: str, qpos: Any, qvel: Any, extra: Any = None) -> np.ndarray:
    """The observation ``[..., obs_dim]`` Gymnasium builds from ``qpos [..., nq]`` and ``qvel [..., nv]``.

    ``extra [..., StateMap.extra]``: the entries that are no function of the state
    (InvertedDoublePendulum's constraint force); None puts zeros there.
    """
    m = state_map(env_id)
    qpos, qvel = _rows(qpos, m.nq, "qpos"), _rows(qvel, m.nv, "qvel")
    if m.velocity_clip is not None:
        qvel = np.clip(qvel, -m.velocity_clip, m.velocity_clip)
    if m.angles:
        parts = [qpos[..., :1], np.sin(qpos[..., 1:]), np.cos(qpos[..., 1:]), qvel]
    else:
        parts = [qpos[..., m.dropped:], qvel]
    lead = np.broadcast_shapes(qpos.shape[:-1], qvel.shape[:-1])
    if m.extra:
        parts.append(np.zeros((*lead, m.extra)) if extra is None
                     else np.broadcast_to(_rows(extra, m.extra, "extra"), (*lead, m.extra)))
    return np.concatenate([np.broadcast_to(p, (*lead, p.shape[-1])) for p in parts], axis=-1)


def integrate_root(env_id: str, obs: Any, root0: Any, dt: float) -> np.ndarray:
    """The left-out root coordinates ``[T, dropped]`` along observations ``obs [T, obs_dim]``.

    ``root[0] = root0``; ``root[t + 1] = root[t] + dt * v[t + 1]``, with ``v`` the root's
    velocity in the observation (``qvel[:dropped]``, world-frame x and y for Ant's and
    Humanoid's free joint) and ``dt`` the env's step: semi-implicit Euler, as MuJoCo integrates.
    """
    m = state_map(env_id)
    obs = _rows(obs, m.obs_dim, "obs")
    if obs.ndim != 2:
        raise ValueError(f"obs must be [T, {m.obs_dim}], got shape {obs.shape}")
    root0 = np.asarray(root0, dtype=np.float64).reshape(m.dropped)
    _, qvel = obs_to_state(env_id, obs)
    steps = np.concatenate([np.zeros((1, m.dropped)), dt * qvel[1:, :m.dropped]], axis=0)
    return root0 + np.cumsum(steps, axis=0)


# --- drawing ---------------------------------------------------------------------------------

def _check_size(size: Any) -> tuple[int, int]:
    ok = (isinstance(size, tuple | list) and len(size) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 4096 for v in size))
    if not ok:
        raise ValueError(f"size must be (width, height), two ints in [16, 4096], got {size!r}")
    return int(size[0]), int(size[1])


def _render_env(env_id: str, seed: int, size: tuple[int, int], env_kwargs: dict[str, Any] | None) -> gym.Env:
    state_map(env_id)
    setup_headless_gl()
    width, height = _check_size(size)
    return make_env(env_id, seed, render_mode="rgb_array", width=width, height=height, **(env_kwargs or {}))


def _frame(env: gym.Env) -> np.ndarray:
    """``env.render()`` as uint8 ``[H, W, 3]``, GL failures turned into :class:`RenderingUnavailable`."""
    try:
        frame = env.render()
    except Exception as error:   # no display, no EGL, a bad MUJOCO_GL: say what to install
        raise RenderingUnavailable(gl_unavailable_message(error)) from error
    if frame is None:
        raise RenderingUnavailable(gl_unavailable_message())
    return np.ascontiguousarray(frame, dtype=np.uint8)


def render_state(env: gym.Env, qpos: Any, qvel: Any) -> np.ndarray:
    """Set ``(qpos [nq], qvel [nv])`` on ``env``'s simulator, ``mj_forward``, draw: uint8 ``[H, W, 3]``.

    ``env`` is a MuJoCo env made with ``render_mode="rgb_array"``; its state is overwritten.
    """
    import mujoco

    base = env.unwrapped
    base.data.qpos[:] = np.asarray(qpos, dtype=np.float64)
    base.data.qvel[:] = np.asarray(qvel, dtype=np.float64)
    mujoco.mj_forward(base.model, base.data)
    return _frame(env)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)   # Pillow's bundled font (FreeType): no download
    except TypeError:                               # an old Pillow: its fixed bitmap font
        return ImageFont.load_default()


def label_frame(frame: np.ndarray, lines: Sequence[str], corner: str = "top-left") -> np.ndarray:
    """``frame [H, W, 3]`` (uint8) with ``lines`` of text on a dark box in a corner.

    ``corner``: ``"top-left"``, ``"top-right"``, ``"bottom-left"`` or ``"bottom-right"``.
    Drawn with Pillow's bundled font; returns a new array.
    """
    from PIL import Image, ImageDraw

    corners = ("top-left", "top-right", "bottom-left", "bottom-right")
    if corner not in corners:
        raise ValueError(f"corner must be one of {', '.join(corners)}, got {corner!r}")
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGBA")
    font = _font(max(10, image.height // 18))
    text = "\n".join(lines)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    pad = 4
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x = 2 if corner.endswith("left") else image.width - w - 2
    y = 2 if corner.startswith("top") else image.height - h - 2
    draw.rectangle((x, y, x + w, y + h), fill=(0, 0, 0, 150))
    draw.multiline_text((x + pad - left, y + pad - top), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(image, overlay).convert("RGB"))


# --- episodes --------------------------------------------------------------------------------

def _check_count(name: str, value: Any, low: int, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}{' or None' if allow_none else ''}, got {value!r}")


@dataclass
class RenderedEpisode:
    """One real episode and its frames.

    ``frames [F, H, W, 3]`` uint8, frame ``i`` showing the state after ``frame_steps[i]``
    steps (0: the reset state; the last step is always drawn); ``fps``: the rate at which the
    clip plays in real time. Per step: ``observations [T + 1, obs_dim]``, ``qpos [T + 1, nq]``,
    ``qvel [T + 1, nv]`` (the simulator's state, root position included), ``actions [T, act_dim]``
    (in ``[-1, 1]``), ``rewards [T]``. ``terminated``: the episode ended by falling, not by the
    time limit or the step budget.
    """

    env_id: str
    frames: np.ndarray = field(repr=False)
    fps: float
    frame_steps: np.ndarray = field(repr=False)
    observations: np.ndarray = field(repr=False)
    qpos: np.ndarray = field(repr=False)
    qvel: np.ndarray = field(repr=False)
    actions: np.ndarray = field(repr=False)
    rewards: np.ndarray = field(repr=False)
    terminated: bool

    @property
    def steps(self) -> int:
        """Real steps taken."""
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        """The undiscounted return of the episode."""
        return float(self.rewards.sum())


def default_stride(env_id: str) -> int:
    """Steps between drawn frames so a clip of ``env_id`` plays near 30 frames/s in real time
    (Hopper's and Walker2d's 125 steps/s: every 4th step; Humanoid's 67: every 2nd; the others'
    20 to 25: every step)."""
    steps_per_second = 1.0 / _dt(env_id)
    return max(1, round(steps_per_second / TARGET_FPS))


_DT_CACHE: dict[str, float] = {}


def _dt(env_id: str) -> float:
    if env_id not in _DT_CACHE:
        state_map(env_id)
        env = make_env(env_id)
        try:
            _DT_CACHE[env_id] = float(env.unwrapped.dt)
        finally:
            env.close()
    return _DT_CACHE[env_id]


def _run(env: gym.Env, act: Callable[[np.ndarray], np.ndarray] | None, actions: np.ndarray | None,
         max_steps: int | None, seed: int, on_step: Callable[[int, float, bool], None] | None = None
         ) -> dict[str, Any]:
    """One episode from ``reset(seed)``: states, actions and rewards; ``on_step(t, return, last)``
    is called after the reset (t = 0) and after every step."""
    base = env.unwrapped
    obs, _ = env.reset(seed=seed)
    budget = len(actions) if actions is not None else None
    if max_steps is not None:
        budget = max_steps if budget is None else min(budget, max_steps)
    observations, qpos, qvel = [obs], [base.data.qpos.copy()], [base.data.qvel.copy()]
    taken, rewards, terminated, total, t = [], [], False, 0.0, 0
    done = budget == 0
    if on_step is not None:
        on_step(0, 0.0, done)
    while not done:
        action = np.asarray(actions[t] if actions is not None else act(obs), dtype=np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        t += 1
        total += float(reward)
        observations.append(obs)
        qpos.append(base.data.qpos.copy())
        qvel.append(base.data.qvel.copy())
        taken.append(action)
        rewards.append(float(reward))
        done = bool(terminated or truncated) or (budget is not None and t >= budget)
        if on_step is not None:
            on_step(t, total, done)
    act_dim = env.action_space.shape[0]
    return {"observations": np.asarray(observations, dtype=np.float64), "qpos": np.asarray(qpos),
            "qvel": np.asarray(qvel), "rewards": np.asarray(rewards, dtype=np.float64),
            "actions": np.asarray(taken, dtype=np.float32).reshape(len(taken), act_dim),
            "terminated": bool(terminated)}


def _actions_or_policy(env_id: str, policy: Any, actions: Any) -> tuple[Callable | None, np.ndarray | None]:
    if (policy is None) == (actions is None):
        raise ValueError("give exactly one of policy (acted deterministically) and actions [T, act_dim]")
    if actions is None:
        return as_action_fn(policy), None
    act_dim = SUPPORTED_ENVS[env_id].act_dim
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 2 or actions.shape[1] != act_dim:
        raise ValueError(f"actions must be [T, {act_dim}] for {env_id}, got shape {actions.shape}")
    if not np.all(np.isfinite(actions)) or np.abs(actions).max(initial=0.0) > 1.0:
        raise ValueError("actions must be finite and in [-1, 1] (make_env's rescaled action space)")
    return None, actions


def render_episode(env_id: str, policy: Any = None, *, actions: Any = None, seed: int = 0,
                   max_steps: int | None = None, size: tuple[int, int] = DEFAULT_SIZE,
                   stride: int | None = None, title: str | None = None,
                   env_kwargs: dict[str, Any] | None = None) -> RenderedEpisode:
    """A policy's deterministic episode (or the given actions) on ``env_id``, drawn frame by frame.

    Args:
        env_id: a task with a :class:`StateMap` (every MuJoCo task of :data:`SUPPORTED_ENVS`).
        policy: an object with ``act(obs, deterministic=True)`` (a :class:`~mbpo_lib.SAC`) or a
            function ``obs -> action`` in ``[-1, 1]``.
        actions: instead of a policy, ``[T, act_dim]`` actions in ``[-1, 1]``, played in order.
        seed: the episode starts from ``reset(seed=seed)``.
        max_steps: stop after this many steps (None: at the end of the episode or the actions).
        size: ``(width, height)`` of a frame.
        stride: draw every ``stride``-th step (None: :func:`default_stride`, near 30 frames/s).
        title: a line drawn above the running return (e.g. "after 5,000 steps").
        env_kwargs: more ``make_env`` arguments (e.g. ``terminate_when_unhealthy=False``).

    Each frame has the return accumulated up to its step drawn in the top-left corner.
    """
    state_map(env_id)
    act, actions = _actions_or_policy(env_id, policy, actions)
    _check_count("max_steps", max_steps, 0)
    _check_count("stride", stride, 1)
    stride = stride or default_stride(env_id)
    env = _render_env(env_id, seed, size, env_kwargs)
    frames, frame_steps = [], []

    def draw(t: int, total: float, last: bool) -> None:
        if t % stride == 0 or last:
            lines = ([title] if title else []) + [f"return {total:,.1f}   step {t}"]
            frames.append(label_frame(_frame(env), lines))
            frame_steps.append(t)

    try:
        run = _run(env, act, actions, max_steps, seed, on_step=draw)
        fps = 1.0 / (float(env.unwrapped.dt) * stride)
    finally:
        env.close()
    return RenderedEpisode(env_id=env_id, frames=np.stack(frames), fps=fps,
                           frame_steps=np.asarray(frame_steps), **run)


@dataclass
class ImaginedRollout:
    """A real trajectory and the model's rollout from its first state under the same actions.

    ``frames [k + 1, H, 2W, 3]`` uint8: frame ``t`` is the real state after ``t`` steps (left,
    "real") beside the model's (right, "model"). ``real_obs`` and ``model_obs`` ``[k + 1,
    obs_dim]`` (row 0 is the shared start state), ``actions [k, act_dim]``, ``real_rewards`` and
    ``model_rewards`` ``[k]``; ``error [k + 1]`` is the Euclidean distance between the two
    observations at each step. ``k`` is the number of steps shown: the ``k`` asked for, or fewer
    when the real episode ended first. ``start_step``: where in the real episode it starts.
    """

    env_id: str
    k: int
    start_step: int
    frames: np.ndarray = field(repr=False)
    fps: float
    real_obs: np.ndarray = field(repr=False)
    model_obs: np.ndarray = field(repr=False)
    actions: np.ndarray = field(repr=False)
    real_rewards: np.ndarray = field(repr=False)
    model_rewards: np.ndarray = field(repr=False)

    @property
    def error(self) -> np.ndarray:
        """``||ŝ_t - s_t||_2`` for t = 0..k."""
        return np.linalg.norm(self.model_obs - self.real_obs, axis=-1)


def imagine(model: DynamicsModel, start_obs: Any, actions: Any, seed: int = 0,
            deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The model's open-loop rollout: ``(obs [k + 1, obs_dim], rewards [k])`` from ``start_obs
    [obs_dim]`` under ``actions [k, act_dim]``, each step one elite's sample
    (:meth:`DynamicsModel.step`, draws from a CPU generator seeded with ``seed``)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    obs = torch.as_tensor(np.asarray(start_obs, dtype=np.float32), device=model.device).reshape(1, -1)
    acts = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=model.device)
    states, rewards = [obs[0]], []
    with torch.no_grad():
        for t in range(acts.shape[0]):
            obs, rew, _ = model.step(obs, acts[t:t + 1], generator=g, deterministic=deterministic)
            states.append(obs[0])
            rewards.append(rew[0])
    out = torch.stack(states).double().cpu().numpy()
    rew = torch.stack(rewards).double().cpu().numpy() if rewards else np.zeros(0)
    return out, rew


def _drawable(qpos: np.ndarray, qvel: np.ndarray, last: tuple[np.ndarray, np.ndarray] | None
              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """A state MuJoCo can draw: a non-finite or huge one (a diverged model) falls back to ``last``."""
    ok = bool(np.all(np.isfinite(qpos)) and np.all(np.isfinite(qvel)) and np.abs(qpos).max() < 1e4)
    if ok or last is None:
        return (qpos, qvel, True) if ok else (np.zeros_like(qpos), np.zeros_like(qvel), False)
    return last[0], last[1], False


def render_imagined(model: DynamicsModel, env_id: str, policy: Any = None, *, actions: Any = None,
                    k: int = 15, seed: int = 0, start_step: int = 0, model_seed: int = 0,
                    deterministic: bool = False, size: tuple[int, int] = DEFAULT_SIZE, fps: float = 10.0,
                    env_kwargs: dict[str, Any] | None = None) -> ImaginedRollout:
    """The model's sampled k-step rollout drawn beside the real one, frame by frame.

    The real episode starts at ``reset(seed=seed)`` and runs ``start_step + k`` steps, with
    ``policy``'s deterministic action (or the given ``actions [T, act_dim]``). From its state
    at ``start_step``, the model (a fitted :class:`~mbpo_lib.DynamicsModel` of this task) rolls
    out open-loop under the same ``k`` actions: each step one elite's sample, seeded with
    ``model_seed`` (``deterministic``: the elite's mean). Both trajectories are mapped to
    MuJoCo states (:func:`obs_to_state`) and drawn the same way (:func:`render_state`); the
    real root position comes from the simulator, the model's is integrated from its predicted
    velocity (module docstring). If the real episode ends before ``k`` steps, both stop there.
    ``fps``: the clip's rate (10: each model step visible).
    """
    m = state_map(env_id)
    act, actions = _actions_or_policy(env_id, policy, actions)
    _check_count("k", k, 1, allow_none=False)
    _check_count("start_step", start_step, 0, allow_none=False)
    if getattr(model, "obs_dim", m.obs_dim) != m.obs_dim:
        raise ValueError(f"the model predicts {model.obs_dim}-dim observations; {env_id} has {m.obs_dim}")
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    env = _render_env(env_id, seed, size, env_kwargs)
    try:
        real = _run(env, act, actions, start_step + k, seed)
        if real["rewards"].shape[0] <= start_step:
            raise ValueError(f"the real episode ended after {real['rewards'].shape[0]} steps, before "
                             f"start_step={start_step}: choose an earlier start")
        s = start_step
        shown = min(k, real["rewards"].shape[0] - s)
        real_obs = real["observations"][s:s + shown + 1]
        acts = real["actions"][s:s + shown]
        model_obs, model_rew = imagine(model, real_obs[0], acts, seed=model_seed, deterministic=deterministic)
        dt = float(env.unwrapped.dt)
        root0 = real["qpos"][s, :m.dropped]
        model_root = integrate_root(env_id, model_obs, root0, dt)
        model_qpos, model_qvel = obs_to_state(env_id, model_obs, model_root)
        frames, last = [], None
        for t in range(shown + 1):
            left = render_state(env, real["qpos"][s + t], real["qvel"][s + t])
            qpos, qvel, ok = _drawable(model_qpos[t], model_qvel[t], last)
            last = (qpos, qvel)
            right = render_state(env, qpos, qvel)
            left = label_frame(left, ["real", f"step {t}/{shown}"])
            note = "model" if ok else "model (diverged: last finite state)"
            right = label_frame(right, [note, f"obs error {np.linalg.norm(model_obs[t] - real_obs[t]):.2f}"])
            frames.append(np.concatenate([left, right], axis=1))
    finally:
        env.close()
    return ImaginedRollout(env_id=env_id, k=shown, start_step=s, frames=np.stack(frames), fps=float(fps),
                           real_obs=real_obs, model_obs=model_obs, actions=acts,
                           real_rewards=real["rewards"][s:s + shown], model_rewards=model_rew)


# --- clips -----------------------------------------------------------------------------------

def _frames_and_fps(clip: Any, fps: float | None) -> tuple[np.ndarray, float]:
    frames = getattr(clip, "frames", clip)
    rate = fps if fps is not None else getattr(clip, "fps", None)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T >= 1, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if rate is None or isinstance(rate, bool) or not (isinstance(rate, int | float) and math.isfinite(rate)
                                                       and 0 < rate <= 240):
        raise ValueError(f"fps must be a number in (0, 240] (given, or the clip's own), got {rate!r}")
    return frames, float(rate)


def _even(frames: np.ndarray) -> np.ndarray:
    """H.264's 4:2:0 colour needs an even width and height: repeat the last row/column if odd."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def _mp4(frames: np.ndarray, fps: float, quality: int) -> bytes:
    import av

    frames = _even(frames)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(quality), "preset": "medium", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _pillow(frames: np.ndarray, fps: float, fmt: str, quality: int) -> bytes:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    duration = max(20, round(1000.0 / fps))   # ms per frame (GIF counts in 10 ms, browsers floor at 20)
    buffer = io.BytesIO()
    if fmt == ".gif":
        # one palette for the whole clip, from a mosaic of up to 8 frames: steady colours, smaller files
        picks = images[:: max(1, len(images) // 8)][:8]
        mosaic = Image.new("RGB", (picks[0].width, picks[0].height * len(picks)))
        for i, image in enumerate(picks):
            mosaic.paste(image, (0, i * picks[0].height))
        palette = mosaic.quantize(colors=quality, method=Image.Quantize.MEDIANCUT)
        images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, optimize=False, disposal=1)
    else:
        images[0].save(buffer, format="WEBP", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, quality=quality, method=4)
    return buffer.getvalue()


# quality settings tried in order until a clip fits max_bytes: x264's CRF (higher: smaller),
# GIF palette colours, WebP quality
_QUALITIES = {".mp4": (23, 28, 33, 38), ".gif": (128, 64, 32), ".webp": (80, 60, 40, 20)}
_MIME = {".mp4": "video/mp4", ".gif": "image/gif", ".webp": "image/webp"}


def _check_format(fmt: str) -> str:
    fmt = fmt if fmt.startswith(".") else f".{fmt}"
    if fmt.lower() not in CLIP_FORMATS:
        raise ValueError(f"unknown clip format {fmt!r}; allowed: "
                         + ", ".join(f"{ext} ({name})" for ext, name in CLIP_FORMATS.items()))
    return fmt.lower()


def encode_clip(clip: Any, fmt: str = "mp4", fps: float | None = None, *,
                max_bytes: int = MAX_CLIP_BYTES) -> bytes:
    """The clip's file contents in ``fmt`` (``mp4``, ``gif`` or ``webp``), at most ``max_bytes``.

    ``clip``: frames uint8 ``[T, H, W, 3]``, or a :class:`RenderedEpisode` /
    :class:`ImaginedRollout` (their frames and frame rate). ``fps`` overrides the clip's rate.
    When the first encoding is over ``max_bytes`` it is redone at lower quality (MP4: a higher
    CRF; GIF: fewer colours; WebP: lower quality); if none fits, ``ValueError`` says by how much
    and what to change.
    """
    fmt = _check_format(fmt)
    frames, rate = _frames_and_fps(clip, fps)
    _check_count("max_bytes", max_bytes, 1, allow_none=False)
    data = b""
    for quality in _QUALITIES[fmt]:
        data = _mp4(frames, rate, quality) if fmt == ".mp4" else _pillow(frames, rate, fmt, quality)
        if len(data) <= max_bytes:
            return data
    height, width = frames.shape[1:3]
    raise ValueError(f"a {CLIP_FORMATS[fmt]} clip of {len(frames)} frames of {width}x{height} "
                     f"takes {len(data) / 2**20:.2f} MiB even at the lowest quality, over max_bytes = "
                     f"{max_bytes / 2**20:.2f} MiB; draw fewer frames (a larger stride or max_steps), a "
                     "smaller size, or write MP4")


def check_clip_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` when a clip can be written there, else ``ValueError`` naming it.

    The extension must be one of :data:`CLIP_FORMATS`; the folder must exist and take a new
    file (tried with a temporary file, removed at once), so a long render never ends in a
    failed write. Nothing else is created.
    """
    path = Path(path)
    if path.suffix.lower() not in CLIP_FORMATS:
        raise ValueError(f"cannot write a clip to {str(path)!r}: the extension "
                         f"{path.suffix or '(none)'!r} is not one of {', '.join(CLIP_FORMATS)} "
                         f"({', '.join(CLIP_FORMATS.values())})")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(f"cannot write a clip to {str(path)!r}: the folder {str(folder)!r} {what}")
    if path.is_dir():
        raise ValueError(f"cannot write a clip to {str(path)!r}: it is a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"cannot write a clip to {str(path)!r}: the folder {str(folder)!r} is not "
                         f"writable ({error.strerror or error})") from error
    return path


def write_clip(clip: Any, path: str | os.PathLike, fps: float | None = None, *,
               max_bytes: int = MAX_CLIP_BYTES) -> Path:
    """Write ``clip`` (frames ``[T, H, W, 3]`` uint8, or a rendered episode/rollout) to ``path``.

    The format follows the extension: ``.mp4`` (H.264, plays everywhere), ``.gif`` or
    ``.webp`` (animated images). The clip is encoded in memory (:func:`encode_clip`, at most
    ``max_bytes``), written to a temporary file in the same folder, flushed and renamed onto
    ``path``: a failure at any point leaves no partial file and any older file whole. Bad
    paths (unknown extension, missing or unwritable folder) raise ``ValueError`` before any work.
    Returns the path.
    """
    path = check_clip_path(path)
    data = encode_clip(clip, path.suffix, fps, max_bytes=max_bytes)
    return atomic_write(path, lambda f: f.write(data))   # the umask's mode, never a partial file


def clip_html(clips: Any, captions: Sequence[str] | None = None, fmt: str = "mp4", fps: float | None = None,
              *, max_bytes: int = MAX_CLIP_BYTES) -> HTML:
    """An IPython ``HTML`` object playing one clip or a row of clips, the data embedded as base64.

    ``clips``: one clip (frames ``[T, H, W, 3]``, a :class:`RenderedEpisode` or an
    :class:`ImaginedRollout`) or a list of them, shown side by side with ``captions`` under
    them. ``fmt``: ``mp4`` (a looping, muted ``<video>`` with controls) or ``gif``/``webp``
    (an ``<img>``). The data sits inside the notebook's output, so a saved notebook and the
    slides made from it play with no file beside them and no network.
    """
    from IPython.display import HTML

    fmt = _check_format(fmt)
    many = isinstance(clips, list | tuple)
    items = list(clips) if many else [clips]
    captions = list(captions) if captions is not None else [""] * len(items)
    if len(captions) != len(items):
        raise ValueError(f"{len(items)} clips but {len(captions)} captions")
    cells = []
    for clip, caption in zip(items, captions, strict=True):
        frames, _ = _frames_and_fps(clip, fps)
        data = base64.b64encode(encode_clip(clip, fmt, fps, max_bytes=max_bytes)).decode("ascii")
        src = f"data:{_MIME[fmt]};base64,{data}"
        width = frames.shape[2]
        if fmt == ".mp4":
            media = (f'<video width="{width}" controls autoplay loop muted playsinline '
                     f'src="{src}"></video>')
        else:
            media = f'<img width="{width}" src="{src}" alt="{caption or "clip"}"/>'
        text = f'<figcaption style="text-align:center">{caption}</figcaption>' if caption else ""
        cells.append(f'<figure style="margin:4px">{media}{text}</figure>')
    return HTML('<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(cells) + "</div>")


# --- the command line's hooks ----------------------------------------------------------------

def check_rendering(env_id: str) -> None:
    """Fail early and clearly, before a long run: ``env_id`` must have a :class:`StateMap` and
    this machine must draw a frame (else :class:`RenderingUnavailable` says what to install)."""
    env = _render_env(env_id, 0, (32, 32), None)
    try:
        _frame(env)
    finally:
        env.close()


def epoch_video_callback(run_dir: str | os.PathLike, every: int, fmt: str = "mp4"
                         ) -> Callable[[Any, dict[str, Any]], None]:
    """A :meth:`MBPO.train <mbpo_lib.MBPO.train>` callback writing a clip every ``every`` epochs.

    After epochs ``every``, ``2 * every``, ... it draws one episode of the agent's deterministic
    policy from ``reset(seed=config.seed)`` (the same start state each time, so the clips
    compare) and writes ``<run_dir>/video_step<env steps>.<fmt>`` (:func:`write_clip`).
    """
    _check_count("every", every, 1, allow_none=False)
    fmt = _check_format(fmt)
    folder = Path(run_dir)

    def callback(trainer: Any, row: dict[str, Any]) -> None:
        if (int(row["epoch"]) + 1) % every:
            return
        c = trainer.config
        episode = render_episode(c.env_id, trainer.agent, seed=c.seed,
                                 title=f"{c.env_id}, after {int(row['env_steps']):,} steps")
        folder.mkdir(parents=True, exist_ok=True)
        write_clip(episode, folder / f"video_step{int(row['env_steps']):07d}{fmt}")

    return callback
