"""Termination functions: agreement with each real environment's own ``terminated`` on every
transition (random, scripted and threshold-straddling runs), the thresholds by hand, bad input."""

import math
import pickle

import mujoco
import numpy as np
import pytest
import torch

from mbpo_lib.envs import SUPPORTED_ENVS, make_env
from mbpo_lib.termination import (
    TERMINATION_RULES,
    TerminationFn,
    double_pendulum_tip_height,
    termination_fn,
)

NEVER = ("HalfCheetah-v5", "Pendulum-v1")
CAN_TERMINATE = [env_id for env_id in SUPPORTED_ENVS if env_id not in NEVER]
# Steps per run; Ant and Humanoid step slowest. Enough for many terminations on every task.
STEPS = {"Ant-v5": 700, "Humanoid-v5": 500}
DEFAULT_STEPS = 800


class Run:
    """Transitions of one real run, as float64 arrays, with what the simulator knew besides."""

    def __init__(self, obs, act, next_obs, terminated, max_abs_qvel, tip_height):
        self.obs, self.act, self.next_obs = np.array(obs), np.array(act), np.array(next_obs)
        self.terminated = np.array(terminated, dtype=bool)
        self.max_abs_qvel = np.array(max_abs_qvel)      # unclipped, after the step
        self.tip_height = np.array(tip_height)          # InvertedDoublePendulum's site_xpos z

    def predict(self, env_id, dtype=torch.float64):
        t = (torch.as_tensor(x, dtype=dtype) for x in (self.obs, self.act, self.next_obs))
        return termination_fn(env_id)(*t).numpy()


def collect(env_id, policy, steps, seed, perturb=None, max_episode=1000):
    """Step the real env ``steps`` times with ``policy(env, t, rng)``; reset on terminated or
    truncated, and after ``max_episode`` steps (so a script that keeps the robot up does not use
    the whole run). ``perturb(unwrapped, rng)`` sets a new state before every step (then the
    step is taken from it)."""
    env = make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    unwrapped = env.unwrapped
    obs, _ = env.reset(seed=seed)
    rows = ([], [], [], [], [], [])
    t = 0
    try:
        for _ in range(steps):
            if perturb is not None:
                perturb(unwrapped, rng)
                obs = unwrapped._get_obs()
            act = np.asarray(policy(env, t, rng), dtype=np.float32)
            next_obs, _, terminated, truncated, _ = env.step(act)
            data = getattr(unwrapped, "data", None)
            qvel = float(np.abs(data.qvel).max()) if data is not None else math.nan
            tip = float(data.site_xpos[0, 2]) if env_id == "InvertedDoublePendulum-v5" else math.nan
            for store, value in zip(rows, (obs, act, next_obs, terminated, qvel, tip), strict=True):
                store.append(value)
            if terminated or truncated or t + 1 == max_episode:
                (obs, _), t = env.reset(), 0
            else:
                obs, t = next_obs, t + 1
    finally:
        env.close()
    return Run(*rows)


def random_policy(env, t, rng):
    return env.action_space.sample()


class BangBang:
    """The scripted policy: per episode a random corner of the action cube, flipped with
    per-joint phases every 4 or 8 steps (a period of 8 or 16). Knocks the walkers over, makes
    the Ant jump past its upper height limit, and drops the pendulums."""

    def __call__(self, env, t, rng):
        if t == 0:
            dim = env.action_space.shape[0]
            self.corner = rng.choice([-1.0, 1.0], size=dim)
            self.period = rng.choice([8, 16])
            self.phase = rng.uniform(0, 2 * np.pi, size=dim)
        return self.corner * np.sign(np.sin(2 * np.pi * t / self.period + self.phase))


# State perturbations that straddle each threshold: qpos index -> uniform range, the spread of
# every qvel, and qvel index -> uniform range. Hopper's velocities reach past the observation's
# clip at 10 (and stay below 100). The Ant is thrown at the floor to get below its lower limit
# (its torso, a sphere of radius 0.25, does not get there otherwise).
STRADDLE = {
    "Hopper-v5": ({1: (0.6, 0.8), 2: (-0.3, 0.3)}, 40.0, {}),
    "Walker2d-v5": ({1: (0.7, 2.1), 2: (-1.2, 1.2)}, 10.0, {}),
    "Ant-v5": ({2: (0.25, 1.3)}, 1.0, {2: (-40.0, 10.0)}),
    "Humanoid-v5": ({2: (0.9, 2.1)}, 1.0, {}),
    "InvertedPendulum-v5": ({1: (-0.25, 0.25)}, 1.0, {}),
    "InvertedDoublePendulum-v5": ({1: (-0.6, 0.6), 2: (-0.6, 0.6)}, 1.0, {}),
}


def straddle(env_id):
    qpos_ranges, spread, qvel_ranges = STRADDLE[env_id]

    def perturb(unwrapped, rng):
        qpos = unwrapped.init_qpos + rng.uniform(-0.05, 0.05, unwrapped.model.nq)
        qvel = rng.uniform(-spread, spread, unwrapped.model.nv)
        for values, ranges in ((qpos, qpos_ranges), (qvel, qvel_ranges)):
            for index, (low, high) in ranges.items():
                values[index] = rng.uniform(low, high)
        unwrapped.set_state(qpos, qvel)

    return perturb


_RUNS = {}


def run_of(env_id, kind):
    """Each real run once per session (several tests read the same runs)."""
    if (env_id, kind) not in _RUNS:
        steps = STEPS.get(env_id, DEFAULT_STEPS)
        if kind == "random":
            run = collect(env_id, random_policy, steps, seed=0)
        elif kind == "scripted":
            run = collect(env_id, BangBang(), steps, seed=1, max_episode=150)
        else:
            run = collect(env_id, random_policy, 300, seed=2, perturb=straddle(env_id))
        _RUNS[env_id, kind] = run
    return _RUNS[env_id, kind]


@pytest.mark.parametrize("kind", ["random", "scripted"])
@pytest.mark.parametrize("env_id", list(SUPPORTED_ENVS))
def test_agrees_with_the_real_env_on_every_transition(env_id, kind):
    # Exact for every env but InvertedDoublePendulum, whose env reads a slightly stale tip height
    # (see the tests below): it would disagree on about 1 in 60,000 random transitions, these none.
    run = run_of(env_id, kind)
    predicted = run.predict(env_id)
    assert predicted.dtype == np.bool_ and predicted.shape == run.terminated.shape
    disagree = np.flatnonzero(predicted != run.terminated)
    assert disagree.size == 0, (f"{env_id} ({kind}): disagrees on {disagree.size} of {len(predicted)} "
                                f"transitions, first next_obs {run.next_obs[disagree[0]]}")
    if env_id in NEVER:
        assert not run.terminated.any()
    else:
        assert run.terminated.any() and not run.terminated.all(), f"{env_id} ({kind}) needs both outcomes"
    # float32, the dtype MBPO's buffers hold, agrees too (no transition within rounding of a threshold)
    assert np.array_equal(run.predict(env_id, torch.float32), run.terminated)


@pytest.mark.parametrize("env_id", CAN_TERMINATE)
def test_agrees_on_states_straddling_every_threshold(env_id):
    run = run_of(env_id, "straddle")
    assert np.array_equal(run.predict(env_id), run.terminated)
    assert 0.05 < run.terminated.mean() < 0.95


# Each env's healthy conditions on next_obs (numpy), one by one.
CONDITIONS = {
    "Hopper-v5": {"height > 0.7": lambda o: o[:, 0] > 0.7, "|angle| < 0.2": lambda o: np.abs(o[:, 1]) < 0.2},
    "Walker2d-v5": {"height > 0.8": lambda o: o[:, 0] > 0.8, "height < 2": lambda o: o[:, 0] < 2.0,
                    "|angle| < 1": lambda o: np.abs(o[:, 1]) < 1.0},
    "Ant-v5": {"height >= 0.2": lambda o: o[:, 0] >= 0.2, "height <= 1": lambda o: o[:, 0] <= 1.0},
    "Humanoid-v5": {"height > 1": lambda o: o[:, 0] > 1.0, "height < 2": lambda o: o[:, 0] < 2.0},
    "InvertedPendulum-v5": {"|angle| <= 0.2": lambda o: np.abs(o[:, 1]) <= 0.2},
    "InvertedDoublePendulum-v5": {
        "tip height > 1": lambda o: double_pendulum_tip_height(torch.as_tensor(o)).numpy() > 1.0},
}


@pytest.mark.parametrize("env_id", CAN_TERMINATE)
def test_each_condition_ends_real_episodes_on_its_own(env_id):
    """Every part of every rule decides real transitions alone (it fails, the others hold, and
    the env says terminated), so no part is idle, misplaced or off by a bound. Hopper's state
    range is the exception: real runs cannot reach it (see the velocity tests below)."""
    runs = [run_of(env_id, kind) for kind in ("random", "scripted", "straddle")]
    next_obs = np.concatenate([run.next_obs for run in runs])
    terminated = np.concatenate([run.terminated for run in runs])
    holds = {name: condition(next_obs) for name, condition in CONDITIONS[env_id].items()}
    for name, held in holds.items():
        alone = ~held & np.logical_and.reduce([other for key, other in holds.items() if key != name])
        assert alone.sum() >= 3, f"{env_id}: '{name}' decided only {alone.sum()} real transitions"
        assert terminated[alone].all(), f"{env_id}: '{name}' failed but the env went on"
    assert not terminated[np.logical_and.reduce(list(holds.values()))].any()


def test_hopper_runs_clip_velocities_but_never_hide_one_beyond_100():
    """v5 clips Hopper's velocities to +-10 in the observation while the health check sees them
    unclipped: the runs reach the clip (the agreement above holds there) but no velocity reaches
    100, the one case the observation could not show."""
    runs = [run_of("Hopper-v5", kind) for kind in ("random", "scripted", "straddle")]
    clipped = sum(int((np.abs(run.next_obs[:, 5:]) == 10.0).any(axis=1).sum()) for run in runs)
    assert clipped > 100
    assert max(run.max_abs_qvel.max() for run in runs) < 100


def test_hopper_velocity_beyond_100_is_invisible_in_the_clipped_observation():
    """The documented limit, shown on the env: a joint velocity of 150 makes the Hopper unhealthy,
    but the observation shows 10 and so the function (any function of it) says healthy."""
    env = make_env("Hopper-v5", 0)
    hopper = env.unwrapped
    qvel = hopper.init_qvel.copy()
    qvel[3] = 150.0
    hopper.set_state(hopper.init_qpos, qvel)
    obs = torch.as_tensor(hopper._get_obs())[None]
    assert not hopper.is_healthy and obs[0, 8] == 10.0
    assert not termination_fn("Hopper-v5")(obs, torch.zeros(1, 3), obs).item()
    env.close()


def test_double_pendulum_tip_height_is_mujocos_kinematics_of_the_observed_state():
    env = make_env("InvertedDoublePendulum-v5", 0)
    model = env.unwrapped.model
    scratch = mujoco.MjData(model)
    heights, observed = [], []
    for _ in range(200):
        next_obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        scratch.qpos[:] = env.unwrapped.data.qpos
        mujoco.mj_kinematics(model, scratch)
        heights.append(scratch.site_xpos[0, 2])
        observed.append(next_obs)
        if terminated or truncated:
            env.reset()
    env.close()
    computed = double_pendulum_tip_height(torch.as_tensor(np.array(observed))).numpy()
    np.testing.assert_allclose(computed, heights, rtol=0, atol=1e-12)


def test_double_pendulum_env_reads_the_tip_height_of_an_intermediate_rk4_stage():
    """The documented approximation, explained: after the step the env's ``site_xpos`` holds the
    kinematics of RK4's fourth evaluation point q0 + h k3 of the last substep, not of the final
    state. Replayed here by hand from the state before that substep."""
    env = make_env("InvertedDoublePendulum-v5", 0)
    model, data, h = env.unwrapped.model, env.unwrapped.data, env.unwrapped.model.opt.timestep
    scratch = mujoco.MjData(model)

    def derivative(qpos, qvel):
        scratch.qpos[:], scratch.qvel[:] = qpos, qvel
        mujoco.mj_forward(model, scratch)
        return qvel.copy(), scratch.qacc.copy()

    for _ in range(3):
        scratch.qpos[:], scratch.qvel[:], scratch.time = data.qpos, data.qvel, data.time
        env.step(env.action_space.sample())
        scratch.ctrl[:] = data.ctrl
        mujoco.mj_step(model, scratch, nstep=env.unwrapped.frame_skip - 1)
        q0, v0 = scratch.qpos.copy(), scratch.qvel.copy()
        dq1, dv1 = derivative(q0, v0)
        dq2, dv2 = derivative(q0 + h / 2 * dq1, v0 + h / 2 * dv1)
        dq3, dv3 = derivative(q0 + h / 2 * dq2, v0 + h / 2 * dv2)
        derivative(q0 + h * dq3, v0 + h * dv3)
        assert abs(scratch.site_xpos[0, 2] - data.site_xpos[0, 2]) < 1e-12
    env.close()


def test_double_pendulum_disagrees_only_within_the_rk4_lag_of_height_1():
    """The two heights differ by about 1e-5, so a tip that ends a step that close to height 1
    can be judged apart; the tests' runs hold no such transition (about 1 in 60,000 random ones
    does), this constructed one does."""
    run = run_of("InvertedDoublePendulum-v5", "random")
    lag = np.abs(double_pendulum_tip_height(torch.as_tensor(run.next_obs)).numpy() - run.tip_height)
    assert 1e-7 < np.median(lag) < 1e-4 and lag.max() < 0.05
    # Found by bisection on the first angle: the observed tip ends at 1 + 5e-6 (upright), the
    # env's RK4-stage height at 1 - 5e-6 (terminated).
    env = make_env("InvertedDoublePendulum-v5", 0)
    env.unwrapped.set_state(np.array([0.0, 0.39786776369, 0.0]), np.array([2.0, 8.0, -8.0]))
    next_obs, _, terminated, _, _ = env.step(np.ones(1, dtype=np.float32))
    env_height = env.unwrapped.data.site_xpos[0, 2]
    env.close()
    next_obs = torch.as_tensor(next_obs)[None]
    assert 1 + 1e-6 < double_pendulum_tip_height(next_obs).item() < 1 + 1e-5
    assert 1 - 1e-5 < env_height < 1 - 1e-6 and terminated
    assert not termination_fn("InvertedDoublePendulum-v5")(next_obs, torch.ones(1, 1), next_obs).item()


# ---- thresholds by hand -------------------------------------------------------------------


def healthy_obs(env_id, rows=1):
    """The seeded reset observation (healthy on every task), repeated ``rows`` times."""
    env = make_env(env_id, 0)
    obs, _ = env.reset(seed=0)
    env.close()
    return torch.as_tensor(obs, dtype=torch.float64).repeat(rows, 1)


def done(env_id, next_obs):
    act = torch.zeros(next_obs.shape[0], SUPPORTED_ENVS[env_id].act_dim, dtype=next_obs.dtype)
    return termination_fn(env_id)(next_obs, act, next_obs).tolist()


def with_values(env_id, column, values):
    obs = healthy_obs(env_id, len(values))
    obs[:, column] = torch.tensor(values, dtype=torch.float64)
    return obs


def below(x):
    return math.nextafter(x, -math.inf)


def above(x):
    return math.nextafter(x, math.inf)


def official_hopper_done(next_obs):
    """The official MBPO code's Hopper rule, as written (``np.abs`` of a boolean)."""
    next_obs = next_obs.numpy()
    height, angle = next_obs[:, 0], next_obs[:, 1]
    not_done = (np.isfinite(next_obs).all(axis=-1) * np.abs(next_obs[:, 1:] < 100).all(axis=-1)
                * (height > .7) * (np.abs(angle) < .2))
    return (~not_done).tolist()


def test_hopper_thresholds():
    assert done("Hopper-v5", with_values("Hopper-v5", 0, [0.7, above(0.7), 1.25, 50.0, math.inf])) == [
        True, False, False, False, True]
    assert done("Hopper-v5", with_values("Hopper-v5", 1, [-0.2, above(-0.2), 0.0, below(0.2), 0.2])) == [
        True, False, False, False, True]


@pytest.mark.parametrize("column", range(2, 11))
def test_hopper_state_range_is_checked_whole(column):
    obs = with_values("Hopper-v5", column, [-100.0, above(-100.0), below(100.0), 100.0, -1e6])
    assert done("Hopper-v5", obs) == [True, False, False, True, True]
    # the official code misses the lower bound: -100 and -1e6 pass as healthy there
    assert official_hopper_done(obs) == [False, False, False, True, False]


def test_walker2d_thresholds():
    assert done("Walker2d-v5", with_values("Walker2d-v5", 0, [0.8, above(0.8), below(2.0), 2.0])) == [
        True, False, False, True]
    assert done("Walker2d-v5", with_values("Walker2d-v5", 1, [-1.0, above(-1.0), below(1.0), 1.0])) == [
        True, False, False, True]
    # no state-range check on the Walker: large velocities do not end it
    assert done("Walker2d-v5", with_values("Walker2d-v5", 10, [1e6, -1e6])) == [False, False]


def test_ant_thresholds_are_closed_and_need_finite_observations():
    assert done("Ant-v5", with_values("Ant-v5", 0, [below(0.2), 0.2, 0.6, 1.0, above(1.0)])) == [
        True, False, False, False, True]
    assert done("Ant-v5", with_values("Ant-v5", 26, [math.inf, -math.inf, math.nan, 1e6])) == [
        True, True, True, False]


def test_humanoid_thresholds():
    assert done("Humanoid-v5", with_values("Humanoid-v5", 0, [1.0, above(1.0), below(2.0), 2.0])) == [
        True, False, False, True]


def test_inverted_pendulum_thresholds():
    assert done("InvertedPendulum-v5", with_values("InvertedPendulum-v5", 1, [
        -0.2, 0.2, above(0.2), below(-0.2), 0.0])) == [False, False, True, True, False]
    assert done("InvertedPendulum-v5", with_values("InvertedPendulum-v5", 3, [math.inf, 1e6])) == [
        True, False]


def double_pendulum_obs(theta1, theta2):
    obs = healthy_obs("InvertedDoublePendulum-v5", len(theta1))
    t1, t2 = torch.tensor(theta1, dtype=torch.float64), torch.tensor(theta2, dtype=torch.float64)
    obs[:, 1], obs[:, 2], obs[:, 3], obs[:, 4] = t1.sin(), t2.sin(), t1.cos(), t2.cos()
    return obs


def test_inverted_double_pendulum_ends_when_the_tip_is_at_height_1():
    # straight poles tilted by t: y = 1.2 cos t = 1 at t = acos(5/6)
    edge = math.acos(5 / 6)
    obs = double_pendulum_obs([0.0, edge - 1e-9, edge + 1e-9, math.pi, 0.3], [0.0, 0.0, 0.0, 0.0, -0.3])
    assert done("InvertedDoublePendulum-v5", obs) == [False, False, True, True, False]
    # the second pole folded down from an upright first: y = 0.6 + 0.6 cos t2 <= 1 from cos t2 <= 2/3
    fold = math.acos(2 / 3)
    obs = double_pendulum_obs([0.0, 0.0], [fold - 1e-9, fold + 1e-9])
    assert done("InvertedDoublePendulum-v5", obs) == [False, True]


# Columns where a NaN ends the episode, as each env's own check does (comparisons with NaN fail).
NAN_TERMINATES = {
    "Hopper-v5": set(range(11)),            # height, angle, and the whole state range
    "Walker2d-v5": {0, 1},                  # only height and angle are checked
    "HalfCheetah-v5": set(),
    "Ant-v5": set(range(27)),               # np.isfinite(state).all()
    "Humanoid-v5": {0},                     # only the height is checked
    "InvertedPendulum-v5": set(range(4)),   # np.isfinite(observation).all()
    "InvertedDoublePendulum-v5": set(),     # y <= 1 is False for y = NaN
    "Pendulum-v1": set(),
}


@pytest.mark.parametrize("env_id", list(SUPPORTED_ENVS))
def test_non_finite_values_terminate_where_the_env_checks_them(env_id):
    width = SUPPORTED_ENVS[env_id].obs_dim
    obs = healthy_obs(env_id, width + 1)
    obs[torch.arange(width), torch.arange(width)] = math.nan    # row i: NaN in column i; last row clean
    expected = [column in NAN_TERMINATES[env_id] for column in range(width)] + [False]
    assert done(env_id, obs) == expected


# ---- the table, the errors, batches and devices ----------------------------------------------


def test_every_supported_env_has_a_rule_in_words():
    assert set(TERMINATION_RULES) == set(SUPPORTED_ENVS)
    for env_id in SUPPORTED_ENVS:
        fn = termination_fn(env_id)
        assert isinstance(fn, TerminationFn) and fn.rule == TERMINATION_RULES[env_id]
        assert env_id in repr(fn)
    assert "checked whole" in TERMINATION_RULES["Hopper-v5"]


def test_unknown_ids_name_the_id_and_list_the_supported_ones():
    with pytest.raises(ValueError, match=r"'CartPole-v1'.*supported: Hopper-v5, .*Pendulum-v1"):
        termination_fn("CartPole-v1")
    with pytest.raises(ValueError, match=r"'Hopper-v4' \(did you mean Hopper-v5\?"):
        termination_fn("Hopper-v4")
    with pytest.raises(ValueError, match="None"):
        termination_fn(None)


def test_wrong_shapes_name_the_shape_and_the_expected_width():
    hopper = termination_fn("Hopper-v5")
    good, act = torch.zeros(4, 11), torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"next_obs of shape \[B, 11\].*got \(4, 12\)"):
        hopper(good, act, torch.zeros(4, 12))
    with pytest.raises(ValueError, match=r"next_obs of shape \[B, 11\].*got \(11,\)"):
        hopper(good, act, torch.zeros(11))
    with pytest.raises(ValueError, match=r"obs of shape \[B, 11\].*got \(4, 17\)"):
        hopper(torch.zeros(4, 17), act, good)
    with pytest.raises(ValueError, match=r"act of shape \[B, 3\].*got \(4, 6\)"):
        hopper(good, torch.zeros(4, 6), good)
    with pytest.raises(ValueError, match=r"\[B, 27\].*got \(2, 105\)"):    # the full Ant observation
        termination_fn("Ant-v5")(torch.zeros(2, 105), torch.zeros(2, 8), torch.zeros(2, 105))
    with pytest.raises(TypeError, match="next_obs must be a torch.Tensor, got ndarray"):
        hopper(good, act, np.zeros((4, 11)))


def reference_done(env_id, next_obs):
    """Each env's own check, in numpy row by row as the env sources write it (the vectorised
    function must give the same on every row)."""
    out = []
    for row in next_obs:
        if env_id == "Hopper-v5":
            z, angle, state = row[0], row[1], row[1:]
            healthy = np.all((-100 < state) & (state < 100)) and 0.7 < z < math.inf and -0.2 < angle < 0.2
        elif env_id == "Walker2d-v5":
            healthy = 0.8 < row[0] < 2.0 and -1.0 < row[1] < 1.0
        elif env_id == "Ant-v5":
            healthy = np.isfinite(row).all() and 0.2 <= row[0] <= 1.0
        elif env_id == "Humanoid-v5":
            healthy = 1.0 < row[0] < 2.0
        elif env_id == "InvertedPendulum-v5":
            healthy = not (not np.isfinite(row).all() or abs(row[1]) > 0.2)
        elif env_id == "InvertedDoublePendulum-v5":
            t1, t2 = math.atan2(row[1], row[3]), math.atan2(row[2], row[4])
            healthy = not (0.6 * math.cos(t1) + 0.6 * math.cos(t1 + t2) <= 1)
        else:
            healthy = True
        out.append(not healthy)
    return np.array(out)


@pytest.mark.parametrize("env_id", list(SUPPORTED_ENVS))
def test_a_batch_of_100k_rows_matches_the_row_by_row_check(env_id):
    generator = torch.Generator().manual_seed(0)
    rows, width = 100_000, SUPPORTED_ENVS[env_id].obs_dim
    obs = healthy_obs(env_id, rows) + 0.6 * torch.randn(rows, width, generator=generator, dtype=torch.float64)
    if env_id == "InvertedDoublePendulum-v5":    # consistent sines and cosines of angles around the edge
        angles = 0.8 * torch.randn(rows, 2, generator=generator, dtype=torch.float64)
        obs[:, 1:3], obs[:, 3:5] = angles.sin(), angles.cos()
    obs[::997, 2] = math.nan
    act = torch.zeros(rows, SUPPORTED_ENVS[env_id].act_dim)
    result = termination_fn(env_id)(obs, act, obs)
    assert result.shape == (rows,) and result.dtype == torch.bool and result.device == obs.device
    sample = torch.arange(0, rows, 7)    # the row-by-row reference on every 7th row (and every NaN row)
    np.testing.assert_array_equal(result[sample].numpy(), reference_done(env_id, obs[sample].numpy()))
    if env_id not in NEVER:
        assert 0 < result.sum() < rows


def test_pickles_for_workers():
    fn = pickle.loads(pickle.dumps(termination_fn("Hopper-v5")))
    obs = with_values("Hopper-v5", 0, [0.5, 1.2])
    assert done("Hopper-v5", obs) == fn(obs, torch.zeros(2, 3), obs).tolist() == [True, False]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", list(SUPPORTED_ENVS))
def test_on_cuda_the_result_stays_on_cuda_and_matches_the_cpu(env_id):
    rows, width = 50_000, SUPPORTED_ENVS[env_id].obs_dim
    generator = torch.Generator().manual_seed(1)
    cpu = healthy_obs(env_id, rows).float() + 0.6 * torch.randn(rows, width, generator=generator)
    cpu[::101, 0] = math.nan
    act = torch.zeros(rows, SUPPORTED_ENVS[env_id].act_dim)
    fn = termination_fn(env_id)
    obs_cuda, act_cuda = cpu.cuda(), act.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")     # no host round trip inside the function
    try:
        on_cuda = fn(obs_cuda, act_cuda, obs_cuda)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert on_cuda.device.type == "cuda" and on_cuda.dtype == torch.bool
    assert torch.equal(on_cuda.cpu(), fn(cpu, act, cpu))
