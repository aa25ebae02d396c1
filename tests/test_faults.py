"""Faults injected into runs, checkpoints and the command line: nothing is lost, nothing breaks
silently, every user error is one ``error:`` line.

- SIGKILL at 20 points of one smoke run (at random times, and inside checkpoint saves between
  the temporary write and the renames), resumed after each: the finished run equals an
  uninterrupted one, and no checkpoint on disk is ever unreadable;
- the newest checkpoint truncated, replaced by garbage, or with bytes flipped inside a tensor's
  data: detected by the stored checksums, with a fall-back to the previous checkpoint;
- a disk that fills up during a save: a clear error, the previous checkpoint intact;
- NaN or inf from the environment at a random step, SAC and the model's fit diverging: each
  stops with its message, the run resumes from the saved checkpoint;
- every command-line error: exit status 2, one ``error:`` line, no traceback, and the run folder
  unchanged (hashed before and after);
- ``report`` over a folder with damaged runs among good ones.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import mbpo_lib.mbpo as mbpo_module
from mbpo_lib import preset
from mbpo_lib.__main__ import main
from mbpo_lib.files import CheckpointWarning, CheckpointWriteError, previous_checkpoint, verify_checkpoint
from mbpo_lib.mbpo import CHECKPOINT_NAME, MBPO, METRIC_COLUMNS, EnvironmentDataError, TrainingDivergedError
from mbpo_lib.sweep import report

ENV = "InvertedPendulum-v5"
TIMING = {column for column in METRIC_COLUMNS if column.startswith("seconds_")}
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def smoke(**overrides):
    return preset(ENV).smoke().with_overrides(**overrides)


def table(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> Path:
    """A smoke run stopped after 2 epochs: checkpoint.pt (env step 300) and checkpoint.prev.pt (200)."""
    run_dir = tmp_path_factory.mktemp("two")
    MBPO(smoke(), run_dir=run_dir).train(steps=300, progress=False)
    assert MBPO.load(run_dir / CHECKPOINT_NAME, run_dir=None).env_steps == 300
    assert MBPO.load(previous_checkpoint(run_dir / CHECKPOINT_NAME), run_dir=None).env_steps == 200
    return run_dir


# --- corruption -------------------------------------------------------------------------------

def _largest_record(path: Path) -> tuple[int, int]:
    """(offset, size) of the bytes of the biggest record (a tensor's storage) in the zip file."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def flip_tensor_bytes(path: Path) -> None:
    """Eight bytes in the middle of a tensor's data become two float32 NaNs: torch.load alone
    would load them without a word."""
    offset, size = _largest_record(path)
    raw = bytearray(path.read_bytes())
    middle = offset + size // 2
    raw[middle:middle + 8] = b"\x00\x00\xc0\x7f" * 2
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [truncate, garbage, flip_tensor_bytes], ids=lambda f: f.__name__)
def test_a_damaged_newest_checkpoint_is_detected_and_the_previous_one_loaded(two_checkpoints, tmp_path,
                                                                             damage):
    run_dir = tmp_path / "run"
    shutil.copytree(two_checkpoints, run_dir)
    newest = run_dir / CHECKPOINT_NAME
    damage(newest)
    with pytest.warns(CheckpointWarning, match=r"checkpoint\.pt .*(damaged|not a readable).*loaded the "
                                               r"previous checkpoint .*checkpoint\.prev\.pt"):
        trainer = MBPO.load(newest, run_dir=None)
    assert trainer.env_steps == 200
    assert all(torch.isfinite(p).all() for p in trainer.agent.critic.parameters())
    damage(previous_checkpoint(newest))            # both gone: an error that names both
    with pytest.raises(ValueError, match="the previous checkpoint cannot be used either"):
        MBPO.load(newest, run_dir=None)


def test_resume_from_the_command_line_says_it_fell_back(two_checkpoints, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(two_checkpoints, run_dir)
    flip_tensor_bytes(run_dir / CHECKPOINT_NAME)
    assert main(["train", "--resume", "--run-dir", str(run_dir), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "does not match its stored checksum" in err and "checkpoint.prev.pt" in err
    reference = tmp_path / "whole"
    MBPO(smoke(), run_dir=reference).train(progress=False)
    assert table(run_dir) == table(reference)      # the fall-back cost time, not data


def test_a_disk_that_fills_up_during_a_save_keeps_the_previous_checkpoint(two_checkpoints, tmp_path,
                                                                          monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(two_checkpoints, run_dir)
    trainer = MBPO.load(run_dir / CHECKPOINT_NAME)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mbpo_lib.files.os.fsync", full)
    with pytest.raises(CheckpointWriteError, match=r"No space left on device.*is whole"):
        trainer.save(run_dir / CHECKPOINT_NAME)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before     # no temp file left either
    verify_checkpoint(run_dir / CHECKPOINT_NAME)


# --- non-finite data and divergence ---------------------------------------------------------------

class PoisonAt(gym.Wrapper):
    """Returns a NaN observation (or an infinite reward) at one step of the run."""

    def __init__(self, env, step: int, field: str):
        super().__init__(env)
        self.countdown, self.field = step, field

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.countdown -= 1
        if self.countdown == 0:
            if self.field == "obs":
                obs = obs.copy()
                obs[1] = np.nan
            else:
                reward = float("inf")
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("field", ["obs", "reward"])
def test_a_nan_from_the_environment_stops_the_run_and_it_resumes(tmp_path, monkeypatch, field):
    step = random.Random(f"poison-{field}").randrange(120, 380)    # a random step after the warm-up
    real_make_env = mbpo_module.make_env
    monkeypatch.setattr(mbpo_module, "make_env",
                        lambda *a, **k: PoisonAt(real_make_env(*a, **k), step, field))
    trainer = MBPO(smoke(), run_dir=tmp_path)
    expected = "observation" if field == "obs" else "reward"
    with pytest.raises(EnvironmentDataError, match=rf"non-finite {expected}.* at env step {step}; that step "
                                                   r"was not stored; a checkpoint without it was saved"):
        trainer.train(progress=False)
    # the environment fixed (the same wrapper, which no longer poisons): the run goes on to its end
    monkeypatch.setattr(mbpo_module, "make_env", lambda *a, **k: PoisonAt(real_make_env(*a, **k), -1, field))
    saved = MBPO.load(tmp_path / CHECKPOINT_NAME)
    assert saved.env_steps == step - 1 and len(saved.real) == step - 1
    saved.real.check_finite()
    saved.train(progress=False)
    assert saved.env_steps == 400 and all(np.isfinite(row["eval_return"]) for row in saved.history)


def test_the_real_buffer_refuses_a_non_finite_row():
    buffer = mbpo_lib_buffer(4, 1)
    with pytest.raises(ValueError, match="next_obs not finite"):
        buffer.add(np.zeros(4), np.zeros(1), 0.0, np.array([0.0, np.inf, 0.0, 0.0]), False)
    assert len(buffer) == 0


def mbpo_lib_buffer(obs_dim: int, act_dim: int):
    from mbpo_lib import ReplayBuffer

    return ReplayBuffer(10, obs_dim, act_dim)


@pytest.mark.parametrize("part", ["sac", "model"])
def test_divergence_names_its_part_and_leaves_the_last_checkpoint(two_checkpoints, tmp_path, part):
    run_dir = tmp_path / "run"
    shutil.copytree(two_checkpoints, run_dir)
    trainer = MBPO.load(run_dir / CHECKPOINT_NAME)
    before = (run_dir / CHECKPOINT_NAME).read_bytes()
    optimizer = trainer.agent.optimizer if part == "sac" else trainer.model.optimizer
    for group in optimizer.param_groups:          # a learning rate of 1e6: NaN within a few updates
        group["lr"] = 1e6
    message = (r"SAC diverged: its (losses|action) became NaN or inf after env step \d+" if part == "sac"
               else r"the model's fit diverged at env step 300")
    with pytest.raises(TrainingDivergedError, match=message + r".*last good checkpoint, .*checkpoint\.pt "
                                                              r"\(env step 300\), is untouched"):
        trainer.train(progress=False)
    assert (run_dir / CHECKPOINT_NAME).read_bytes() == before
    resumed = MBPO.load(run_dir / CHECKPOINT_NAME)   # its own learning rates: the run finishes
    resumed.train(progress=False)
    assert resumed.env_steps == 400


def test_a_diverged_run_is_an_error_line_on_the_command_line(tmp_path, capsys):
    code = main(["train", "--env", ENV, "--smoke", "--no-progress", "--run-dir", str(tmp_path / "r"),
                 "--set", "sac.critic_lr=1e6", "--set", "sac.actor_lr=1e6"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: SAC diverged"), err


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--env", ENV, "--smoke", "--no-progress", "--run-dir", str(run_dir),
                 "--steps", "200"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def no_checkpoint_run(tmp_path_factory) -> Path:
    """A run folder with config and metrics but no checkpoint (as one killed with --checkpoint-every 0)."""
    run_dir = tmp_path_factory.mktemp("nockpt") / "run"
    assert main(["train", "--env", ENV, "--smoke", "--no-progress", "--run-dir", str(run_dir),
                 "--steps", "200"]) == 0
    for path in run_dir.glob("checkpoint*"):
        path.unlink()
    return run_dir


CLI_ERRORS = [
    (["--env", "Hopper-v5", "--algo", "sac", "--real-ratio", "0.5", "--eval-episodes", "3", "--steps", "600",
      "--resume"], "differs from the run", "run"),
    (["--env", ENV, "--smoke", "--resume", "--set", "ensemble.lr=0.002"], "ensemble.lr: 0.001 -> 0.002",
     "run"),
    (["--env", ENV, "--smoke"], "holds a run", "run"),
    (["--env", ENV, "--smoke"], "holds a run", "nockpt"),
    (["--resume"], "has no checkpoint", "nockpt"),
    (["--env", ENV, "--smoke", "--device", "nonsense"], "is not a device", "run"),
    (["--env", ENV, "--smoke", "--threads", "-2"], "--threads: must be an int >= 1, got -2", "run"),
    (["--env", ENV, "--smoke", "--threads", "0"], "--threads: must be an int >= 1, got 0", "run"),
    (["--env", ENV, "--smoke", "--set", "ensemble.lr=abc"], "EnsembleConfig.lr must be a finite", "run"),
    (["--env", ENV, "--smoke", "--set", "ensemble.lr=Infinity"], "got inf", "run"),
    (["--env", ENV, "--smoke", "--set", "ensemble.max_epochs=true"], "max_epochs must be None or an int",
     "run"),
    (["--env", "Hopper-v4"], "did you mean Hopper-v5?", "run"),
    (["--resume", "--total-steps", "100"], "can only grow", "run"),
    (["--extend-by", "100"], "add --resume", "run"),
]
if not torch.cuda.is_available():
    CLI_ERRORS.append((["--env", ENV, "--smoke", "--device", "cuda"], "sees no CUDA GPU", "run"))


@pytest.mark.parametrize(("args", "message", "folder"), CLI_ERRORS, ids=lambda v: str(v)[:60])
def test_a_command_line_error_is_one_line_rc_2_and_changes_nothing(cli_run, no_checkpoint_run, capsys, args,
                                                                   message, folder):
    run_dir = cli_run if folder == "run" else no_checkpoint_run
    before = folder_hash(run_dir)
    try:
        code = main(["train", "--no-progress", "--run-dir", str(run_dir), *args])
    except SystemExit as exit_:       # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert folder_hash(run_dir) == before


def test_no_traceback_reaches_the_terminal(cli_run):
    done = subprocess.run([sys.executable, "-m", "mbpo_lib", "train", "--env", ENV, "--smoke", "--run-dir",
                           str(cli_run), "--set", "ensemble.lr=abc"], env=CLI_ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: ") and len(done.stderr.strip().splitlines()) == 1


def test_extend_a_finished_run_and_overwrite_one(cli_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(cli_run, run_dir)
    assert main(["train", "--resume", "--run-dir", str(run_dir), "--no-progress", "--extend-by", "100"]) == 0
    assert [int(row["env_steps"]) for row in table(run_dir)][-1] == 300
    history = [json.loads(line) for line in (run_dir / "config_history.jsonl").read_text().splitlines()]
    assert history[0]["change"] == {"total_steps": [200, 300]} and history[0]["env_steps"] == 200
    assert json.loads((run_dir / "config.json").read_text())["total_steps"] == 300
    assert main(["train", "--env", ENV, "--smoke", "--no-progress", "--run-dir", str(run_dir), "--steps",
                 "200", "--overwrite"]) == 0
    assert not (run_dir / "config_history.jsonl").exists()
    assert [int(row["env_steps"]) for row in table(run_dir)] == [200]


# --- report -------------------------------------------------------------------------------------

def test_report_skips_damaged_runs_names_the_file_and_reports_the_rest(cli_run, tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed in range(3):
        shutil.copytree(cli_run, root / f"{ENV}_mbpo_seed{seed}")
    cut = root / f"{ENV}_mbpo_seed1" / "metrics.csv"
    cut.write_bytes(cut.read_bytes()[:-40])                      # cut mid-row
    bad_json = root / f"{ENV}_sac_seed0"
    shutil.copytree(cli_run, bad_json)
    (bad_json / "config.json").write_text("{not json")
    latin = root / f"{ENV}_sac_seed1"
    shutil.copytree(cli_run, latin)
    (latin / "metrics.csv").write_bytes((latin / "metrics.csv").read_bytes() + b"\xff\xfe\n")
    with pytest.warns(RuntimeWarning, match="skipping the damaged run"):
        done = report(root, tmp_path / "out", figures=False)
    assert sorted(r["seeds"] for r in done.rows) == [2]
    assert len(done.damaged) == 3
    assert any("seed1/metrics.csv ends in the middle of a row" in line for line in done.damaged)
    assert any("config.json is not a run's config.json" in line for line in done.damaged)
    assert any("is not UTF-8" in line for line in done.damaged)
    assert main(["report", str(root), "--out", str(tmp_path / "out2"), "--no-figures"]) == 0
    assert capsys.readouterr().err.count("warning: skipped the damaged run") == 3


# --- SIGKILL ------------------------------------------------------------------------------------

KILLER = """
import os, signal, sys
import mbpo_lib.files as files
import mbpo_lib.mbpo as mbpo
kind, at = sys.argv[1], int(sys.argv[2])
if kind == "save":              # SIGKILL inside a save, at one of its renames: after the temporary
    real_replace, calls = os.replace, [0]      # file is written, before or between the renames
    def replace(src, dst):
        if str(dst).endswith(("checkpoint.pt", "checkpoint.prev.pt")):
            calls[0] += 1
            if calls[0] == at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    files.os.replace = replace
else:                           # SIGKILL in the loop, before real step `at` (or the first one after)
    real_step = mbpo.MBPO._real_step
    def step(self):
        if self.env_steps >= at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(self)
    mbpo.MBPO._real_step = step
from mbpo_lib.__main__ import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_sigkill_at_twenty_points_then_resume_loses_nothing(tmp_path):
    rng = random.Random(20)
    args = ["train", "--env", ENV, "--smoke", "--no-progress", "--steps", "1100", "--threads", "1"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    assert main([*args, "--run-dir", str(whole)]) == 0
    # 14 kills at random real steps (rising, so the run moves on), 6 inside the next checkpoint
    # save: at its first rename (the newest to .prev) or its second (the new file into place)
    points = [("step", s) for s in sorted(rng.sample(range(120, 1090), 14))]
    for _ in range(6):
        points.insert(rng.randrange(len(points) + 1), ("save", rng.randint(1, 2)))
    for kind, at in points:
        resume = ["--resume"] if any(killed.glob("checkpoint*.pt")) else (["--overwrite"] if killed.exists()
                                                                          else [])
        command = [sys.executable, "-c", KILLER, kind, str(at), *args, "--run-dir", str(killed), *resume]
        process = subprocess.run(command, env=CLI_ENV, capture_output=True, timeout=600)
        assert process.returncode == -signal.SIGKILL, (kind, at, process.returncode, process.stderr[-2000:])
        for path in killed.glob("checkpoint*.pt"):   # whatever is on disk reads back
            verify_checkpoint(path)
    assert main([*args, "--run-dir", str(killed), "--resume"]) == 0
    assert table(killed) == table(whole)      # nothing lost, nothing repeated, the same numbers
    a = MBPO.load(killed / CHECKPOINT_NAME, run_dir=None)
    b = MBPO.load(whole / CHECKPOINT_NAME, run_dir=None)
    for x, y in zip(a.agent.critic.parameters(), b.agent.critic.parameters(), strict=True):
        assert torch.equal(x, y)
