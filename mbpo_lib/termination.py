r"""Termination functions: does a transition end the episode? Decided on the next observation.

A model rollout has no simulator to say ``terminated``, so MBPO asks a known function of the
predicted next observation :math:`s'`: :math:`d = \text{done}(s, a, s')`. A rollout row stops
where :math:`d` is true, and the critic does not bootstrap past it (:math:`y = r + \gamma (1-d) V(s')`).
Each function here is the rule of Gymnasium's ``*-v5`` environment with its constructor's
default thresholds (Gymnasium 1.x, ``gymnasium/envs/mujoco/*_v5.py``), written on the
observation that :func:`~mbpo_lib.envs.make_env` yields (x, and for Ant and Humanoid y, are left
out of it; Ant is the 27-dim and Humanoid the 45-dim preset). "Healthy" ranges are open where
the env compares with ``<`` and closed where it compares with ``<=`` (Gymnasium's docs call all
of them closed; the code decides).

* **Hopper-v5** (``is_healthy``): terminated unless :math:`0.7 < s'_0`, :math:`-0.2 < s'_1 < 0.2`
  and :math:`-100 < s'_i < 100` for *every* :math:`i \ge 1` (the env's ``state_vector()[2:]``:
  the four angles and the six velocities). The official MBPO code wrote
  ``np.abs(next_obs[:, 1:] < 100)``, the absolute value of a boolean, so it never checked the
  lower bound :math:`-100`; here the range is checked whole.
* **Walker2d-v5**: terminated unless :math:`0.8 < s'_0 < 2.0` and :math:`-1 < s'_1 < 1`
  (height and torso angle; Walker2d has no state-range check).
* **HalfCheetah-v5**, **Pendulum-v1**: never terminated (only the time limit ends them).
* **Ant-v5** (27-dim): terminated unless every component is finite and
  :math:`0.2 \le s'_0 \le 1.0` (the torso height; Ant's range is closed).
* **Humanoid-v5** (45-dim): terminated unless :math:`1.0 < s'_0 < 2.0` (the torso height).
* **InvertedPendulum-v5**: terminated where a component is not finite or :math:`|s'_1| > 0.2`
  (the pole angle; exactly :math:`0.2` is still upright).
* **InvertedDoublePendulum-v5**: terminated where the height of the second pole's tip is
  :math:`y \le 1`. The observation holds the sines and cosines of both hinge angles
  (:math:`s' = (x, \sin\theta_1, \sin\theta_2, \cos\theta_1, \cos\theta_2, \dots)`), and both
  poles are 0.6 long on a cart at height 0, so the tip height of the observed state is

  .. math:: y = 0.6\cos\theta_1 + 0.6\cos(\theta_1 + \theta_2)
              = 0.6\,(\cos\theta_1 + \cos\theta_1\cos\theta_2 - \sin\theta_1\sin\theta_2)

  (MuJoCo's own kinematics of that state give the same to about 1e-15). A NaN gives
  :math:`y` = NaN and, as in the env (``y <= 1`` is False), no termination. This is an
  approximation of the env's rule, see below.

What the observation cannot show exactly:

* Hopper's state range applies to the *unclipped* velocities, but v5's observation clips them
  to :math:`\pm 10`. A real joint velocity beyond :math:`\pm 100` terminates the env yet shows
  as :math:`\pm 10`; no function of the observation can see it. Real runs do not come near it
  (the tests' random, bang-bang and perturbed runs stay below 60); a model's predicted
  velocity beyond :math:`\pm 100` is flagged, as the rule says.
* InvertedDoublePendulum's ``step`` reads ``y`` from MuJoCo's ``data.site_xpos`` after
  ``mj_step``. The model integrates with RK4, and MuJoCo leaves ``site_xpos`` at the
  kinematics of RK4's fourth evaluation point of the last 0.01 s substep, :math:`q_0 + h k_3`,
  not of the final state :math:`q_0 + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)` that the
  observation reports; Gymnasium does not recompute them. The two heights differ by about 1e-5
  (99 % of 60,000 random transitions within 3.2e-5, the largest 1.2e-2), so this function and
  the env disagree only where the tip ends a step that close to height 1: one transition in
  60,000 random ones (of 9,526 terminations). The observation does not hold the intermediate
  state, so no function of it can match the env exactly; the height of the observed state is
  the physically right one to end a model rollout on.
* Ant's finiteness check covers x and y, which the observation leaves out; a non-finite x or y
  with everything else finite is not seen.

Otherwise the rules are exact: the envs decide on the final ``qpos``/``qvel`` (or the
observation itself), which the observation holds. The tests check agreement with each env's own
``terminated`` on every transition of random, bang-bang and threshold-straddling runs (the
InvertedDoublePendulum runs included).

Non-finite values follow the envs too, which is not "any NaN ends the episode": Hopper (every
component is range-checked), Ant and InvertedPendulum (explicit ``isfinite``) terminate on a
NaN anywhere; Walker2d and Humanoid only on a NaN in the components they check (height, and
Walker2d's angle); InvertedDoublePendulum, HalfCheetah and Pendulum never. Catch non-finite
model predictions separately if a rollout needs that.

A task of your own (``MBPOConfig.termination``, :func:`resolve_termination`): ``"never"``
(:class:`NeverTerminates`, all False), a user's function by import path (checked on every call,
:class:`~mbpo_lib.task_functions.CheckedFunction`), or ``"learned"``
(:mod:`mbpo_lib.learned_termination`, built by the trainer).

Usage: ``done = termination_fn("Hopper-v5")(obs, act, next_obs)`` with tensors
``[B, obs_dim]``, ``[B, act_dim]``, ``[B, obs_dim]`` gives a ``torch.bool`` tensor ``[B]`` on
``next_obs``'s device: element-wise comparisons only, no host round trip, no sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import torch

from .envs import SUPPORTED_ENVS
from .task_functions import CheckedFunction, load_function

# gymnasium/envs/mujoco/*_v5.py constructor defaults.
HOPPER_Z_MIN = 0.7                    # healthy_z_range = (0.7, inf)
HOPPER_ANGLE = 0.2                    # healthy_angle_range = (-0.2, 0.2)
HOPPER_STATE = 100.0                  # healthy_state_range = (-100.0, 100.0)
WALKER_Z = (0.8, 2.0)                 # healthy_z_range
WALKER_ANGLE = 1.0                    # healthy_angle_range = (-1.0, 1.0)
ANT_Z = (0.2, 1.0)                    # healthy_z_range, compared with <=
HUMANOID_Z = (1.0, 2.0)               # healthy_z_range
INVERTED_PENDULUM_ANGLE = 0.2         # |observation[1]| > 0.2 terminates (in step())
DOUBLE_PENDULUM_POLE = 0.6            # both poles (inverted_double_pendulum.xml: fromto 0 0 0 0 0 0.6)
DOUBLE_PENDULUM_MIN_Y = 1.0           # y <= 1 terminates (in step())

TERMINATION_RULES: MappingProxyType = MappingProxyType({
    "Hopper-v5": "terminated unless 0.7 < obs[0] (height), -0.2 < obs[1] < 0.2 (torso angle) and "
                 "-100 < obs[i] < 100 for every i >= 1 (angles and velocities; the range checked whole; "
                 "the env sees velocities unclipped, the observation clips them to +-10)",
    "Walker2d-v5": "terminated unless 0.8 < obs[0] < 2.0 (height) and -1 < obs[1] < 1 (torso angle)",
    "HalfCheetah-v5": "never terminated",
    "Ant-v5": "terminated unless every obs[i] is finite and 0.2 <= obs[0] <= 1.0 (torso height)",
    "Humanoid-v5": "terminated unless 1.0 < obs[0] < 2.0 (torso height)",
    "InvertedPendulum-v5": "terminated where any obs[i] is not finite or |obs[1]| > 0.2 (pole angle)",
    "InvertedDoublePendulum-v5": "terminated where the tip height y = 0.6 * (obs[3] + obs[3] * obs[4] - "
                                 "obs[1] * obs[2]) <= 1, i.e. 0.6 cos(t1) + 0.6 cos(t1 + t2) <= 1 (the "
                                 "observed state's tip; the env reads an RK4 stage's, about 1e-5 off)",
    "Pendulum-v1": "never terminated",
})


def _never(next_obs: torch.Tensor) -> torch.Tensor:
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def _hopper(next_obs: torch.Tensor) -> torch.Tensor:
    z, angle, state = next_obs[..., 0], next_obs[..., 1], next_obs[..., 1:]
    healthy = ((z > HOPPER_Z_MIN) & (z < float("inf"))
               & (angle > -HOPPER_ANGLE) & (angle < HOPPER_ANGLE)
               & ((state > -HOPPER_STATE) & (state < HOPPER_STATE)).all(dim=-1))
    return ~healthy


def _walker2d(next_obs: torch.Tensor) -> torch.Tensor:
    z, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (z > WALKER_Z[0]) & (z < WALKER_Z[1]) & (angle > -WALKER_ANGLE) & (angle < WALKER_ANGLE)
    return ~healthy


def _ant(next_obs: torch.Tensor) -> torch.Tensor:
    z = next_obs[..., 0]
    healthy = torch.isfinite(next_obs).all(dim=-1) & (z >= ANT_Z[0]) & (z <= ANT_Z[1])
    return ~healthy


def _humanoid(next_obs: torch.Tensor) -> torch.Tensor:
    z = next_obs[..., 0]
    return ~((z > HUMANOID_Z[0]) & (z < HUMANOID_Z[1]))


def _inverted_pendulum(next_obs: torch.Tensor) -> torch.Tensor:
    return ~torch.isfinite(next_obs).all(dim=-1) | (next_obs[..., 1].abs() > INVERTED_PENDULUM_ANGLE)


def double_pendulum_tip_height(obs: torch.Tensor) -> torch.Tensor:
    """InvertedDoublePendulum-v5's tip height ``y`` of the observed state, from the observation's
    sines and cosines: ``0.6 cos t1 + 0.6 cos(t1 + t2)``, shape ``obs.shape[:-1]``. (The env's
    own ``site_xpos[0, 2]`` is that of an RK4 stage, about 1e-5 off; see the module docstring.)"""
    sin1, sin2, cos1, cos2 = obs[..., 1], obs[..., 2], obs[..., 3], obs[..., 4]
    return DOUBLE_PENDULUM_POLE * (cos1 + (cos1 * cos2 - sin1 * sin2))


def _inverted_double_pendulum(next_obs: torch.Tensor) -> torch.Tensor:
    return double_pendulum_tip_height(next_obs) <= DOUBLE_PENDULUM_MIN_Y


_RULES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Hopper-v5": _hopper,
    "Walker2d-v5": _walker2d,
    "HalfCheetah-v5": _never,
    "Ant-v5": _ant,
    "Humanoid-v5": _humanoid,
    "InvertedPendulum-v5": _inverted_pendulum,
    "InvertedDoublePendulum-v5": _inverted_double_pendulum,
    "Pendulum-v1": _never,
}


def _shape_error(env_id: str, name: str, tensor: torch.Tensor, width: int, what: str) -> ValueError:
    return ValueError(f"{env_id}'s termination function needs {name} of shape [B, {width}] ({what}), "
                      f"got {tuple(tensor.shape)}")


@dataclass(frozen=True)
class TerminationFn:
    """The termination rule of one env: call it as ``fn(obs, act, next_obs) -> bool [B]``.

    ``rule`` states it in words (the same text as :data:`TERMINATION_RULES`). A module-level
    object rather than a closure, so it pickles (Ray workers, checkpoints).
    """

    env_id: str
    obs_dim: int
    act_dim: int
    rule: str

    def __call__(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``True`` where the transition ``(obs, act) -> next_obs`` ends the episode; only
        ``next_obs`` decides, ``obs`` and ``act`` are checked for their shapes."""
        for name, tensor in (("obs", obs), ("act", act), ("next_obs", next_obs)):
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if next_obs.dim() != 2 or next_obs.shape[1] != self.obs_dim:
            raise _shape_error(self.env_id, "next_obs", next_obs, self.obs_dim, "its observation width")
        batch = next_obs.shape[0]
        if obs.shape != next_obs.shape:
            raise _shape_error(self.env_id, "obs", obs, self.obs_dim, f"like next_obs, B = {batch}")
        if act.dim() != 2 or act.shape != (batch, self.act_dim):
            raise _shape_error(self.env_id, "act", act, self.act_dim, f"its action width, B = {batch}")
        return _RULES[self.env_id](next_obs)

    def __repr__(self) -> str:
        return f"TerminationFn({self.env_id!r}: {self.rule})"


def termination_fn(env_id: str) -> TerminationFn:
    """The vectorised termination function of ``env_id`` (one of :data:`~mbpo_lib.envs.SUPPORTED_ENVS`),
    for observations of :func:`~mbpo_lib.envs.make_env`'s preset; see the module docstring for
    the rules and what they can and cannot see."""
    if not isinstance(env_id, str) or env_id not in _RULES:
        base = str(env_id).rsplit("-v", 1)[0]
        close = [known for known in _RULES if known.rsplit("-v", 1)[0] == base]
        hint = f" (did you mean {close[0]}? other versions have other rules)" if close else ""
        raise ValueError(f"no termination function for env id {env_id!r}{hint}; "
                         f"supported: {', '.join(_RULES)}")
    spec = SUPPORTED_ENVS[env_id]
    return TerminationFn(env_id, spec.obs_dim, spec.act_dim, TERMINATION_RULES[env_id])


class NeverTerminates:
    """``termination="never"``: no transition ends the episode (a task that only a time limit
    ends, such as HalfCheetah). ``fn(obs, act, next_obs)`` gives all-False ``[B]`` on
    ``next_obs``'s device."""

    def __call__(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return _never(next_obs)

    def __repr__(self) -> str:
        return "NeverTerminates()"


def resolve_termination(termination: str, env_id: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                                                                   torch.Tensor]:
    """The rollout's termination function for ``MBPOConfig.termination``: ``"preset"`` is
    :func:`termination_fn` of ``env_id``, ``"never"`` :class:`NeverTerminates`, an import path
    ``"package.module:function"`` that function, checked on every call (a bool tensor ``[B]`` on
    the rows' device, else a ``ValueError`` naming it). ``"learned"`` needs the trainer's
    classifier (:class:`~mbpo_lib.learned_termination.TerminationClassifier`)."""
    if termination == "preset":
        return termination_fn(env_id)
    if termination == "never":
        return NeverTerminates()
    if termination == "learned":
        raise ValueError("termination='learned' is a TerminationClassifier fitted with the model; the "
                         "trainer builds it (mbpo_lib.learned_termination)")
    return CheckedFunction(load_function(termination, "termination"), "termination", termination)
