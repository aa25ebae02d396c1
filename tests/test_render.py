"""Rendering (mbpo_lib.render): headless frames, the observation <-> MuJoCo state mapping, the
model's imagined rollout beside the real one, clips on disk and in a notebook, the CLI's --video.

These run in CI (no skip): .ci/run installs Debian's libegl1 and libgl1-mesa-dri, and MuJoCo
renders through EGL on Mesa's software driver.
"""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("LP_NUM_THREADS", "1")   # Mesa's software rasteriser: one thread, as the tests' torch

import av
import numpy as np
import pytest
import torch
from PIL import Image

import mbpo_lib
from mbpo_lib import render
from mbpo_lib.config import EnsembleConfig
from mbpo_lib.envs import SUPPORTED_ENVS, make_env

REPO = Path(__file__).resolve().parent.parent
SMALL = (160, 120)


def random_episode(env_id: str, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random-action episode (reset at termination): observations and the simulator's state."""
    env = make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    data = env.unwrapped.data
    obs, _ = env.reset(seed=seed)
    rows = {"obs": [obs], "qpos": [data.qpos.copy()], "qvel": [data.qvel.copy()]}
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
        rows["obs"].append(obs)
        rows["qpos"].append(data.qpos.copy())
        rows["qvel"].append(data.qvel.copy())
    env.close()
    return {key: np.asarray(value) for key, value in rows.items()}


def decode(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a written clip, read back by a decoder."""
    if path.suffix == ".mp4":
        with av.open(str(path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return len(frames), frames[0].shape[1], frames[0].shape[0]
    with Image.open(path) as image:
        return image.n_frames, image.width, image.height


# --- the observation <-> (qpos, qvel) mapping ---------------------------------------------------

def test_every_mujoco_task_has_a_mapping_whose_sizes_match_the_env():
    assert set(render.STATE_MAPS) == set(SUPPORTED_ENVS) - {"Pendulum-v1"}
    for env_id, m in render.STATE_MAPS.items():
        env = make_env(env_id, 0)
        assert (m.nq, m.nv) == (env.unwrapped.model.nq, env.unwrapped.model.nv), env_id
        assert m.obs_dim == SUPPORTED_ENVS[env_id].obs_dim == env.observation_space.shape[0], env_id
        env.close()


@pytest.mark.parametrize("env_id", sorted(render.STATE_MAPS))
def test_obs_to_state_to_obs_round_trips_on_real_episodes(env_id):
    m = render.state_map(env_id)
    run = random_episode(env_id, 80)
    root = run["qpos"][:, :m.dropped]
    extra = run["obs"][:, m.obs_dim - m.extra:] if m.extra else None
    qpos, qvel = render.obs_to_state(env_id, run["obs"], root)
    back = render.state_to_obs(env_id, qpos, qvel, extra)
    np.testing.assert_allclose(back, run["obs"], rtol=0, atol=1e-12)
    # and the state is the simulator's: positions exactly (angles up to a turn), velocities as clipped
    clip = m.velocity_clip or np.inf
    np.testing.assert_allclose(qvel, np.clip(run["qvel"], -clip, clip), rtol=0, atol=1e-12)
    if m.angles:
        turns = (qpos - run["qpos"]) / (2 * np.pi)
        np.testing.assert_allclose(turns, np.round(turns), rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(qpos, run["qpos"])
    # one row and a batch agree
    one = render.obs_to_state(env_id, run["obs"][5], root[5])
    np.testing.assert_array_equal(one[0], qpos[5])


def test_left_out_root_is_integrated_from_the_velocity_close_to_the_simulators():
    env = make_env("Hopper-v5", 3)
    rng = np.random.default_rng(3)
    observations, xs = [env.reset(seed=3)[0]], [env.unwrapped.data.qpos[0]]
    for _ in range(25):
        obs, *_ = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        observations.append(obs)
        xs.append(env.unwrapped.data.qpos[0])
    root = render.integrate_root("Hopper-v5", np.asarray(observations), xs[0], env.unwrapped.dt)
    travelled = np.abs(np.diff(xs)).sum()
    assert root.shape == (26, 1) and root[0, 0] == xs[0]
    assert np.abs(root[:, 0] - xs).max() < 0.05 * travelled + 1e-3   # Euler with the end velocity
    env.close()


def test_tasks_without_a_mapping_are_refused_by_name():
    for env_id in ("Pendulum-v1", "CartPole-v1"):
        with pytest.raises(ValueError, match=re.escape(env_id)) as error:
            render.render_episode(env_id, actions=np.zeros((3, 1)))
        assert "Hopper-v5" in str(error.value) and "InvertedDoublePendulum-v5" in str(error.value)
    with pytest.raises(ValueError, match="not a MuJoCo task"):
        render.obs_to_state("Pendulum-v1", np.zeros(3))


# --- frames --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hopper_episode():
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 3))
    return render.render_episode("Hopper-v5", actions=actions, seed=0)


def test_episode_frames_are_not_blank_and_change(hopper_episode):
    ep = hopper_episode
    assert ep.frames.dtype == np.uint8 and ep.frames.shape[1:] == (240, 320, 3)   # the default size
    assert ep.frame_steps[0] == 0 and ep.frame_steps[-1] == ep.steps
    assert np.all(np.diff(ep.frame_steps) <= render.default_stride("Hopper-v5"))
    assert len(ep.frames) == len(ep.frame_steps) and ep.fps == pytest.approx(125 / 4)
    assert ep.observations.shape == (ep.steps + 1, 11) and ep.actions.shape == (ep.steps, 3)
    for frame in ep.frames:
        assert frame.std() > 20 and len(np.unique(frame.reshape(-1, 3), axis=0)) > 50   # a scene, not a fill
    body = ep.frames[:, 40:]                      # below the return's label
    changes = np.abs(np.diff(body.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert np.all(changes > 0.05)                 # the hopper moves in every frame (the camera follows it)
    assert np.abs(body[-1].astype(int) - body[0]).mean() > 1


def test_running_return_is_drawn_in_the_corner(hopper_episode):
    ep = hopper_episode
    env = render._render_env("Hopper-v5", 0, render.DEFAULT_SIZE, None)
    raw = render.render_state(env, ep.qpos[-1], ep.qvel[-1])
    env.close()
    differs = np.abs(ep.frames[-1].astype(int) - raw).max(axis=-1) > 40
    assert differs[:30, :160].mean() > 0.05       # the label's text, top left
    assert differs[60:].mean() < 0.01             # the rest is the scene


def test_rendering_a_trajectory_through_the_mapping_gives_the_envs_own_frames():
    for env_id in ("Hopper-v5", "Ant-v5", "InvertedDoublePendulum-v5"):
        m = render.state_map(env_id)
        actions = np.random.default_rng(1).uniform(-1, 1, (30, SUPPORTED_ENVS[env_id].act_dim))
        ep = render.render_episode(env_id, actions=actions, seed=1, stride=1, size=SMALL)
        env = render._render_env(env_id, 1, SMALL, None)
        qpos, qvel = render.obs_to_state(env_id, ep.observations, ep.qpos[:, :m.dropped])
        for i, t in enumerate(ep.frame_steps):
            mine = render.label_frame(render.render_state(env, qpos[t], qvel[t]),
                                      [f"return {ep.rewards[:t].sum():,.1f}   step {t}"])
            diff = np.abs(ep.frames[i].astype(int) - mine)
            # after env.step MuJoCo's drawn kinematics lag the state by one physics substep
            assert diff.mean() < 0.5 and (diff.max(axis=-1) > 16).mean() < 0.01, (env_id, t, diff.mean())
        env.close()


def test_a_policy_episode_is_deterministic_and_bounded_by_max_steps():
    agent = mbpo_lib.SAC(4, 1, device="cpu", seed=0)
    first = render.render_episode("InvertedPendulum-v5", agent, seed=5, max_steps=12, size=SMALL)
    again = render.render_episode("InvertedPendulum-v5", agent, seed=5, max_steps=12, size=SMALL)
    assert first.steps <= 12 and first.frames.shape[1:] == (120, 160, 3)
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_allclose(first.actions, agent.act(first.observations[:-1].astype(np.float32),
                                                        deterministic=True), rtol=0, atol=1e-6)


# --- the model's imagined rollout ------------------------------------------------------------

@pytest.fixture(scope="module")
def hopper_model():
    env_rows = make_env("Hopper-v5", 0)
    rng = np.random.default_rng(0)
    obs, act, rew, nxt = [], [], [], []
    o, _ = env_rows.reset(seed=0)
    for _ in range(1500):
        a = rng.uniform(-1, 1, 3).astype(np.float32)
        n, r, terminated, truncated, _ = env_rows.step(a)
        obs.append(o), act.append(a), rew.append(r), nxt.append(n)
        o = env_rows.reset()[0] if terminated or truncated else n
    config = EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=32, max_epochs=10)
    model = mbpo_lib.DynamicsModel(11, 3, config, seed=0)
    as_tensor = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    model.fit(as_tensor(obs), as_tensor(act), as_tensor(rew), as_tensor(nxt))
    return model


def test_imagined_rollout_is_drawn_beside_the_real_one(hopper_model):
    actions = np.random.default_rng(2).uniform(-1, 1, (20, 3))
    out = render.render_imagined(hopper_model, "Hopper-v5", actions=actions, k=6, seed=2, start_step=2,
                                 size=SMALL)
    assert out.k == 6 and out.start_step == 2 and out.frames.shape == (7, 120, 320, 3)
    assert out.real_obs.shape == out.model_obs.shape == (7, 11) and out.actions.shape == (6, 3)
    np.testing.assert_array_equal(out.actions, actions[2:8].astype(np.float32))
    assert out.error[0] == pytest.approx(0, abs=1e-6) and out.error[-1] > 0
    # the real half is the real episode, drawn through the mapping
    real = render.render_episode("Hopper-v5", actions=actions, seed=2, stride=1, size=SMALL)
    np.testing.assert_allclose(out.real_obs, real.observations[2:9], rtol=0, atol=0)
    # frame 0: both halves show the same start state (below the labels)
    left, right = out.frames[0, 40:, :160], out.frames[0, 40:, 160:]
    np.testing.assert_array_equal(left, right)
    assert np.abs(out.frames[-1, 40:, :160].astype(int) - out.frames[-1, 40:, 160:]).mean() > 0.1
    # the same model seed draws the same rollout; the model's own steps agree with imagine()
    again = render.render_imagined(hopper_model, "Hopper-v5", actions=actions, k=6, seed=2, start_step=2,
                                   size=SMALL)
    np.testing.assert_array_equal(out.frames, again.frames)
    model_obs, _ = render.imagine(hopper_model, out.real_obs[0], out.actions, seed=0)
    np.testing.assert_allclose(model_obs, out.model_obs)


def test_imagined_rollout_stops_where_the_real_episode_ends_and_checks_its_arguments(hopper_model):
    actions = np.ones((300, 3))                  # full torque: Hopper falls within the first hundred steps
    out = render.render_imagined(hopper_model, "Hopper-v5", actions=actions, k=200, seed=0, size=SMALL)
    assert 1 <= out.k < 200 and len(out.frames) == out.k + 1
    with pytest.raises(ValueError, match="start_step"):
        render.render_imagined(hopper_model, "Hopper-v5", actions=actions, k=5, start_step=250, size=SMALL)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        render.render_imagined(hopper_model, "Hopper-v5", actions=actions, k=0)
    with pytest.raises(ValueError, match="4-dim"):
        render.render_imagined(mbpo_lib.DynamicsModel(4, 1), "Hopper-v5", actions=actions, k=2)


# --- bad arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of policy"),
    ({"policy": lambda obs: np.zeros(1), "actions": np.zeros((2, 1))}, "exactly one of policy"),
    ({"actions": np.zeros((2, 3))}, r"actions must be \[T, 1\]"),
    ({"actions": np.full((2, 1), 2.0)}, r"in \[-1, 1\]"),
    ({"actions": np.zeros((2, 1)), "stride": 0}, "stride must be an int >= 1"),
    ({"actions": np.zeros((2, 1)), "size": (320,)}, r"size must be \(width, height\)"),
    ({"actions": np.zeros((2, 1)), "max_steps": -1}, "max_steps must be an int >= 0"),
])
def test_bad_episode_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render.render_episode("InvertedPendulum-v5", **kwargs)


# --- clips on disk -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_a_written_clip_decodes_with_its_frame_count_and_size(hopper_episode, tmp_path, suffix):
    path = render.write_clip(hopper_episode, tmp_path / f"hopper{suffix}")
    assert decode(path) == (len(hopper_episode.frames), 320, 240)
    assert 0 < path.stat().st_size <= render.MAX_CLIP_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]   # no temporary file left


def test_odd_sizes_are_padded_for_h264(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 31, 45, 3), dtype=np.uint8)
    assert decode(render.write_clip(frames, tmp_path / "odd.mp4", fps=10)) == (5, 46, 32)


def test_the_size_bound_lowers_quality_then_refuses_without_writing(hopper_episode, tmp_path):
    best = len(render.encode_clip(hopper_episode, "webp"))
    smaller = render.encode_clip(hopper_episode, "webp", max_bytes=best - 1)
    assert len(smaller) <= best - 1
    target = tmp_path / "clip.webp"
    target.write_bytes(b"the previous clip")
    with pytest.raises(ValueError, match=r"over max_bytes.*fewer frames"):
        render.write_clip(hopper_episode, target, max_bytes=1000)
    assert target.read_bytes() == b"the previous clip"          # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["clip.webp"]


def test_bad_paths_and_frames_are_clear_errors_and_write_nothing(tmp_path):
    frames = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder.mp4").mkdir()
    cases = [
        (tmp_path / "clip.avi", r"'\.avi' is not one of \.mp4, \.gif, \.webp"),
        (tmp_path / "clip", r"'\(none\)' is not one of"),
        (tmp_path / "missing" / "clip.mp4", "does not exist"),
        (tmp_path / "a_file" / "clip.mp4", "is not a folder"),
        (tmp_path / "a_folder.mp4", "it is a folder"),
    ]
    for path, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            render.write_clip(frames, path, fps=10)
        assert str(path) in str(error.value)
    for bad, message in ((np.zeros((3, 16, 16, 3), np.float32), "uint8"), (np.zeros((16, 16, 3), np.uint8),
                                                                           r"\[T >= 1, H, W, 3\]")):
        with pytest.raises(ValueError, match=message):
            render.write_clip(bad, tmp_path / "clip.mp4", fps=10)
    with pytest.raises(ValueError, match="fps must be"):
        render.write_clip(frames, tmp_path / "clip.mp4")           # bare frames need a rate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder.mp4"]
    assert not any((tmp_path / "a_folder.mp4").iterdir())


def test_an_unwritable_folder_is_refused(tmp_path):
    # a chmod-ed folder stops everyone but root (who runs CI); /sys takes no new file from anyone
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        targets = [Path("/sys/clip.mp4")] + ([folder / "clip.mp4"] if os.geteuid() != 0 else [])
        for target in targets:
            with pytest.raises(ValueError, match=f"{re.escape(str(target))}.*is not writable"):
                render.write_clip(np.zeros((2, 16, 16, 3), np.uint8), target, fps=5)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


# --- in a notebook ------------------------------------------------------------------------------

def test_clip_html_embeds_the_data(hopper_episode):
    html = render.clip_html(hopper_episode).data
    (src,) = re.findall(r'src="data:video/mp4;base64,([^"]+)"', html)
    assert base64.b64decode(src) == render.encode_clip(hopper_episode, "mp4")
    assert "<video" in html and "autoplay loop muted" in html
    row = render.clip_html([hopper_episode, hopper_episode.frames[:3]], captions=["a", "b"], fmt="gif",
                           fps=10).data
    assert row.count('src="data:image/gif;base64,') == 2 and "<figcaption" in row
    with pytest.raises(ValueError, match="2 clips but 1 captions"):
        render.clip_html([hopper_episode, hopper_episode], captions=["a"])
    with pytest.raises(ValueError, match="unknown clip format '.avi'"):
        render.clip_html(hopper_episode, fmt="avi")


# --- headless GL --------------------------------------------------------------------------------

def test_egl_is_chosen_only_when_nothing_is_set_and_there_is_no_display(monkeypatch):
    for name in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(render.sys, "platform", "linux")
    assert render.setup_headless_gl() == "egl" and os.environ["PYOPENGL_PLATFORM"] == "egl"
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert render.setup_headless_gl() == "osmesa"                 # the user's choice is kept
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setenv("DISPLAY", ":0")
    assert render.setup_headless_gl() is None                      # a display: Gymnasium picks


def test_no_working_gl_backend_is_a_clear_error_naming_the_packages():
    code = ("import numpy as np, mbpo_lib\n"
            "try:\n"
            "    mbpo_lib.render_episode('InvertedPendulum-v5', actions=np.zeros((2, 1)))\n"
            "except mbpo_lib.RenderingUnavailable as error:\n"
            "    print(error)\n")
    # GLFW with no display cannot make a context; MuJoCo's import refuses unknown MUJOCO_GL values itself
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MUJOCO_GL"] = "glfw"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for word in ("MUJOCO_GL=glfw", "libegl1", "libgl1-mesa-dri", "Colab", "egl, osmesa or glfw"):
        assert word in out.stdout, word


def test_ci_installs_what_headless_rendering_needs():
    ci = (REPO / ".ci/run").read_text()
    for package in render.GL_PACKAGES:
        assert f"dpkg -s {package} >/dev/null 2>&1 || missing+=({package})" in ci


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from mbpo_lib.__main__ import main

    run_dir = tmp_path_factory.mktemp("render_cli") / "run"
    args = ["train", "--env", "InvertedPendulum-v5", "--smoke", "--run-dir", str(run_dir), "--no-progress",
            "--video-every", "2", "--threads", "1"]
    assert main(args) == 0
    return run_dir


def test_train_video_every_writes_clips_into_the_run_folder(smoke_run):
    clips = sorted(smoke_run.glob("video_step*.mp4"))
    rows = mbpo_lib.read_metrics(smoke_run / "metrics.csv")
    expected = [f"video_step{int(row['env_steps']):07d}.mp4" for row in rows
                if (int(row["epoch"]) + 1) % 2 == 0]
    assert [clip.name for clip in clips] == expected and expected
    frames, width, height = decode(clips[0])
    assert frames >= 2 and (width, height) == render.DEFAULT_SIZE


def test_evaluate_video_writes_a_playable_clip_of_the_first_evaluated_episode(smoke_run, tmp_path, capsys):
    from mbpo_lib.__main__ import main

    out = tmp_path / "eval.mp4"
    assert main(["evaluate", str(smoke_run / "checkpoint.pt"), "--episodes", "1", "--seed", "7",
                 "--video", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["video"] == str(out) and result["video_return"] == pytest.approx(result["return_mean"])
    frames, width, height = decode(out)
    assert frames >= 2 and (width, height) == render.DEFAULT_SIZE


def test_evaluate_video_to_a_bad_path_errors_before_any_work_and_writes_nothing(smoke_run, tmp_path, capsys):
    from mbpo_lib.__main__ import main

    checkpoint = str(smoke_run / "checkpoint.pt")
    for path, message in ((Path("/sys/e.mp4"), "is not writable"),
                          (tmp_path / "no_folder" / "e.mp4", "does not exist"),
                          (tmp_path / "e.mov", "'.mov' is not one of")):
        assert main(["evaluate", checkpoint, "--episodes", "1", "--video", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err
    assert list(tmp_path.iterdir()) == []
    assert main(["train", "--env", "InvertedPendulum-v5", "--smoke", "--run-dir", str(tmp_path / "r"),
                 "--video-every", "0"]) == 2
    assert "every must be an int >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
