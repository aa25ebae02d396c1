"""make_env (presets, action checks, seeding) and evaluate (deterministic returns) with the episodes
it is built on (evaluate_episodes)."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from mbpo_lib.envs import (
    SUPPORTED_ENVS,
    check_action_space,
    episode_return_stats,
    evaluate,
    evaluate_episodes,
    make_env,
)


@pytest.mark.parametrize("env_id", list(SUPPORTED_ENVS))
def test_every_supported_env_has_the_listed_sizes_and_unit_actions(env_id):
    spec = SUPPORTED_ENVS[env_id]
    env = make_env(env_id, seed=0)
    try:
        assert env.observation_space.shape == (spec.obs_dim,)
        assert env.action_space.shape == (spec.act_dim,)
        assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs.shape == (spec.obs_dim,)
    finally:
        env.close()


def test_paper_observation_presets_and_the_full_observations():
    ant, humanoid = make_env("Ant-v5", 0), make_env("Humanoid-v5", 0)
    assert ant.observation_space.shape == (27,) and humanoid.observation_space.shape == (45,)
    full_ant = make_env("Ant-v5", 0, preset=False)
    assert full_ant.observation_space.shape == (105,)
    for env in (ant, humanoid, full_ant):
        env.close()


def test_actions_are_rescaled_to_the_native_range():
    env = make_env("Pendulum-v1", 0)        # native torque range [-2, 2]
    assert isinstance(env, gym.wrappers.RescaleAction)
    assert env.unwrapped.action_space.high[0] == 2.0
    env.close()
    native = make_env("Pendulum-v1", 0, rescale_actions=False)
    assert native.action_space.high[0] == 2.0
    native.close()


def test_same_seed_same_first_observation():
    a, b, c = make_env("Hopper-v5", 3), make_env("Hopper-v5", 3), make_env("Hopper-v5", 4)
    obs_a, obs_b, obs_c = (env.reset(seed=s)[0] for env, s in ((a, 3), (b, 3), (c, 4)))
    assert np.array_equal(obs_a, obs_b) and not np.array_equal(obs_a, obs_c)
    for env in (a, b, c):
        env.close()


def test_unknown_ids_list_what_is_supported():
    with pytest.raises(ValueError, match=r"unknown env id 'NoSuchTask-v0': no registered Gymnasium "
                                         r"environment has this id; pass the module that registers it as "
                                         r"env_module \(--env-module on the command line\)"
                                         r".*Hopper-v5.*Pendulum-v1"):
        make_env("NoSuchTask-v0", 0)
    with pytest.raises(ValueError, match=r"CartPole-v1 has a Discrete action space.*continuous Box actions"):
        make_env("CartPole-v1", 0)                             # registered, but not a continuous task
    with pytest.raises(ValueError, match=r"did you mean Hopper-v5\?"):
        make_env("Hopper-v4", 0)


def test_discrete_and_unbounded_action_spaces_are_refused():
    with pytest.raises(ValueError, match="Discrete action space.*continuous Box actions"):
        check_action_space(gym.spaces.Discrete(2), "CartPole-v1")
    with pytest.raises(ValueError, match="unbounded action space"):
        check_action_space(gym.spaces.Box(-np.inf, np.inf, (3,)), "Free-v0")
    with pytest.raises(ValueError, match="flat vector"):
        check_action_space(gym.spaces.Box(-1, 1, (2, 2)), "Grid-v0")
    check_action_space(gym.spaces.Box(-1, 1, (3,)), "Hopper-v5")   # fine: no error


def test_evaluate_is_deterministic_and_reports_mean_and_std():
    def policy(obs):    # a fixed controller: push against the angular velocity
        return np.clip([-0.5 * obs[2]], -1.0, 1.0).astype(np.float32)

    first = evaluate(policy, "Pendulum-v1", episodes=3, seed=5)
    again = evaluate(policy, "Pendulum-v1", episodes=3, seed=5)
    assert first == again
    mean, std = first
    assert -2000 < mean < 0 and std >= 0


def test_evaluate_uses_the_deterministic_action_of_an_agent():
    class Agent:
        calls = []

        def act(self, obs, deterministic=False):
            self.calls.append(deterministic)
            return np.zeros(1, dtype=np.float32)

    agent = Agent()
    evaluate(agent, "InvertedPendulum-v5", episodes=1, seed=0)
    assert agent.calls and all(agent.calls)


def test_evaluate_checks_its_arguments():
    with pytest.raises(ValueError, match="episodes must be an int >= 1"):
        evaluate(lambda obs: obs[:1], "Pendulum-v1", episodes=0)
    with pytest.raises(TypeError, match="policy must have act"):
        evaluate(42, "Pendulum-v1", episodes=1)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "InvertedPendulum-v5", "Pendulum-v1"])
def test_a_restored_env_continues_bit_for_bit_through_resets(env_id):
    from mbpo_lib.envs import env_state, restore_env_state

    rng = np.random.default_rng(0)
    original = make_env(env_id, seed=0)
    for _ in range(37):
        original.step(rng.uniform(-1, 1, original.action_space.shape).astype(np.float32))
    copy = make_env(env_id, seed=5)                      # another seed: everything comes from the state
    restore_env_state(copy, env_state(original))
    resets = 0
    for _ in range(300):
        action = rng.uniform(-1, 1, original.action_space.shape).astype(np.float32)
        a, b = original.step(action), copy.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        if a[2] or a[3]:
            resets += 1
            assert np.array_equal(original.reset()[0], copy.reset()[0])
    assert resets > 0
    with pytest.raises(ValueError, match="MuJoCo state has"):
        restore_env_state(make_env("Hopper-v5", seed=0), env_state(make_env("Walker2d-v5", seed=0)))


def test_mujoco_warnings_go_to_logging_not_to_a_file_in_the_working_directory(tmp_path):
    # A fresh interpreter in an empty folder: HalfCheetah's model file triggers MuJoCo's
    # "settotalmass is deprecated" warning, which MuJoCo's own handler appends to MUJOCO_LOG.TXT.
    code = ("import logging, mbpo_lib\n"
            "logging.basicConfig(level=logging.DEBUG, format='%(name)s %(levelname)s %(message)s')\n"
            "mbpo_lib.make_env('HalfCheetah-v5', 0).close()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=True)
    assert list(tmp_path.iterdir()) == [], "a MuJoCo log (or anything else) was written to the cwd"
    assert "WARNING: compiler attribute" not in done.stdout
    assert "mbpo_lib.mujoco DEBUG MuJoCo: compiler attribute 'settotalmass' is deprecated" in done.stderr


def test_a_mujoco_warning_handler_of_the_users_own_is_kept(tmp_path):
    code = ("import mujoco\n"
            "seen = []\n"
            "mujoco.set_mju_user_warning(seen.append)\n"
            "import mbpo_lib\n"
            "mbpo_lib.make_env('HalfCheetah-v5', 0).close()\n"
            "assert any('settotalmass' in text for text in seen), seen\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)


def test_evaluate_episodes_records_what_evaluate_reports():
    def policy(obs):
        return np.clip([-0.5 * obs[2]], -1.0, 1.0).astype(np.float32)

    episodes = evaluate_episodes(policy, "Pendulum-v1", episodes=3, seed=5)
    assert evaluate(policy, "Pendulum-v1", episodes=3, seed=5) == episode_return_stats(episodes)
    for episode in episodes:
        T = episode.length
        assert T == 200 and episode.truncated and not episode.terminated       # Pendulum: time limit only
        assert episode.observations.shape == (T + 1, 3) and episode.actions.shape == (T, 1)
        assert episode.rewards.shape == (T,) and episode.rewards.dtype == np.float64
        assert episode.episode_return == sum(episode.rewards.tolist())         # summed in step order
        assert np.allclose(episode.actions[:, 0], np.clip(-0.5 * episode.observations[:-1, 2], -1, 1))
    # episode i starts from reset(seed=seed + i)
    env = make_env("Pendulum-v1")
    assert np.array_equal(env.reset(seed=6)[0], episodes[1].observations[0])


def test_evaluate_episodes_marks_a_terminated_episode():
    episodes = evaluate_episodes(lambda obs: np.ones(1, dtype=np.float32), "InvertedPendulum-v5", episodes=2)
    assert all(e.terminated and not e.truncated and e.length < 1000 for e in episodes)
    assert evaluate(lambda obs: np.ones(1, dtype=np.float32), "InvertedPendulum-v5", episodes=2) == \
        episode_return_stats(episodes)
    with pytest.raises(ValueError, match="at least one episode"):
        episode_return_stats([])
