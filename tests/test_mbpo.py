"""The MBPO trainer and its command line: the loop's bookkeeping, metrics files, checkpoints,
exact resume (in process and after SIGKILL), interrupts and bad input; the critic's bias
columns, reset rollouts and a frozen model (issue 17)."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mbpo_lib.config import preset
from mbpo_lib.diagnostics import q_value_bias
from mbpo_lib.envs import episode_return_stats, evaluate_episodes
from mbpo_lib.mbpo import CHECKPOINT_NAME, MBPO, METRIC_COLUMNS, Q_BIAS_COLUMNS
from mbpo_lib.rollout import model_buffer_capacity

ENV = "InvertedPendulum-v5"
TIMING = {column for column in METRIC_COLUMNS if column.startswith("seconds_")}


def smoke(**overrides):
    return preset(ENV).smoke().with_overrides(**overrides)


def comparable(rows):
    """Metrics rows without the wall-clock columns (NaN made comparable)."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items() if k not in TIMING}
            for row in rows]


def parameters(trainer: MBPO) -> list[torch.Tensor]:
    modules = (trainer.agent.actor, trainer.agent.critic, trainer.model.network)
    return [p.detach().clone() for module in modules for p in module.parameters()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    trainer = MBPO(smoke(), run_dir=run_dir)
    trainer.train(progress=False)
    return trainer, run_dir


def test_a_run_counts_every_real_step_and_logs_one_row_per_epoch(finished):
    trainer, _ = finished
    c = trainer.config
    assert trainer.env_steps == c.total_steps == len(trainer.real) == 400
    rows = trainer.history
    assert [row["epoch"] for row in rows] == [0, 1, 2]                     # 100 warm-up + 3 x 100
    assert [row["env_steps"] for row in rows] == [200, 300, 400]
    assert all(row["sac_updates"] == c.updates_per_step * c.epoch_length for row in rows)
    assert all(row["model_fits"] == c.epoch_length // c.model_train_freq for row in rows)
    assert all(set(row) == set(trainer.metric_columns) >= set(METRIC_COLUMNS) for row in rows)
    assert all(row["eval_episodes"] == c.eval_episodes and row["eval_return"] > 0 for row in rows)
    assert rows[-1]["model_buffer_capacity"] == model_buffer_capacity(c, rows[-1]["k"])
    assert rows[-1]["model_buffer_rows"] == min(rows[-1]["model_buffer_capacity"],
                                                rows[-1]["model_fits"] * c.rollout_batch_size * rows[-1]["k"])
    assert all(torch.isfinite(torch.tensor([row[m] for m in ("critic_loss", "actor_loss", "alpha")])).all()
               for row in rows)
    assert rows[-1]["alpha"] < rows[0]["alpha"] < 1.0                        # the temperature is learned


def test_read_metrics_gives_back_the_logged_rows_as_floats(finished):
    from mbpo_lib import read_metrics

    trainer, run_dir = finished
    rows = trainer.history
    read = read_metrics(run_dir / "metrics.csv")
    assert len(read) == len(rows) and list(read[0]) == list(trainer.metric_columns)
    for got, logged in zip(read, rows, strict=True):
        for key, value in logged.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
                assert got[key] == pytest.approx(value, rel=1e-12), key
        assert math.isnan(got["elites"])                       # a list, not a number: NaN


def test_the_run_folder_holds_config_metrics_and_checkpoint(finished):
    trainer, run_dir = finished
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["config.json", "metrics.csv", "metrics.jsonl", CHECKPOINT_NAME, "checkpoint.prev.pt"])
    umask = os.umask(0)
    os.umask(umask)
    for path in run_dir.iterdir():   # the umask's permissions, not mkstemp's private 0600
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert json.loads((run_dir / "config.json").read_text()) == trainer.config.to_dict()
    with open(run_dir / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(trainer.metric_columns) and len(table) == 3
    assert [int(row["env_steps"]) for row in table] == [200, 300, 400]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["eval_return"] for line in lines] == [r["eval_return"] for r in trainer.history]


def test_resuming_mid_epoch_equals_the_uninterrupted_run(finished, tmp_path):
    trainer, _ = finished
    first = MBPO(smoke(), run_dir=tmp_path)
    first.train(steps=250, progress=False)                 # stops in the middle of epoch 1
    first.save(tmp_path / CHECKPOINT_NAME)
    resumed = MBPO.load(tmp_path / CHECKPOINT_NAME)
    assert resumed.env_steps == 250
    resumed.train(progress=False)
    assert comparable(resumed.history) == comparable(trainer.history)
    for a, b in zip(parameters(resumed), parameters(trainer), strict=True):
        assert torch.equal(a, b)


def test_plain_sac_fits_no_model(tmp_path):
    trainer = MBPO(smoke(real_ratio=1.0, updates_per_step=1, total_steps=300))
    rows = trainer.train(progress=False)
    assert len(trainer.model_buffer) == 0 and not trainer.model.fitted
    assert all(row["model_fits"] == 0 and row["sac_updates"] == 100 for row in rows)


def test_an_interrupt_finishes_the_step_saves_and_stops(tmp_path):
    trainer = MBPO(smoke(checkpoint_every=0), run_dir=tmp_path)

    def interrupt_after_first_epoch(mbpo, row):
        os.kill(os.getpid(), signal.SIGINT)   # as Ctrl-C would; handled by the trainer

    with pytest.raises(KeyboardInterrupt, match="stopped at env step 200"):
        trainer.train(callbacks=[interrupt_after_first_epoch], progress=False)
    assert MBPO.load(tmp_path / CHECKPOINT_NAME).env_steps == 200
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handlers restored


def test_bad_checkpoints_and_settings_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint at"):
        MBPO.load(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"corrupt\.pt is not a readable checkpoint"):
        MBPO.load(corrupt)
    trainer = MBPO(smoke(total_steps=150))
    trainer.train(progress=False)
    saved = trainer.save(tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated.pt is not a readable checkpoint"):
        MBPO.load(truncated)
    other = MBPO(smoke(seed=1))
    with pytest.raises(ValueError, match="another config"):
        other.load_state_dict(torch.load(saved, weights_only=False))
    with pytest.raises(TypeError, match="must be an MBPOConfig"):
        MBPO({"env_id": ENV})
    with pytest.raises(ValueError, match="steps must be None or an int >= 0, got -1"):
        trainer.train(steps=-1)
    with pytest.raises(ValueError, match="real_ratio"):
        smoke(real_ratio=1.5)


def test_a_checkpoint_write_that_fails_leaves_the_old_one_whole(tmp_path, monkeypatch):
    trainer = MBPO(smoke(total_steps=150))
    trainer.train(progress=False)
    path = trainer.save(tmp_path / CHECKPOINT_NAME)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mbpo_lib", "train", "--env", ENV, "--smoke", "--no-progress", *args]


CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.slow
def test_cli_run_killed_with_sigkill_resumes_and_matches_an_uninterrupted_run(tmp_path):
    steps = ["--steps", "1100", "--threads", "1"]              # 100 warm-up + 10 epochs of 100
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen(cli("--run-dir", str(killed), *steps), env=CLI_ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (killed / CHECKPOINT_NAME).exists():        # the first checkpoint: after epoch 0
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    at_kill = MBPO.load(killed / CHECKPOINT_NAME, run_dir=None)
    assert 200 <= at_kill.env_steps < 1100, "killed after the end: lower the budget's pace"
    rows_at_kill = len(at_kill.history)
    # without --resume nothing is overwritten
    refused = subprocess.run(cli("--run-dir", str(killed), *steps), env=CLI_ENV, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    done = subprocess.run(cli("--run-dir", str(killed), "--resume", *steps), env=CLI_ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and json.loads(done.stdout.splitlines()[-1])["env_steps"] == 1100
    reference = subprocess.run(cli("--run-dir", str(whole), *steps), env=CLI_ENV, capture_output=True,
                               text=True)
    assert reference.returncode == 0, reference.stderr

    def table(run_dir: Path):
        with open(run_dir / "metrics.csv") as f:
            return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]

    resumed_rows, reference_rows = table(killed), table(whole)
    assert len(reference_rows) == 10 and rows_at_kill < 10
    assert resumed_rows == reference_rows           # nothing lost, nothing repeated, same numbers
    a = MBPO.load(killed / CHECKPOINT_NAME, run_dir=None)
    b = MBPO.load(whole / CHECKPOINT_NAME, run_dir=None)
    for x, y in zip(parameters(a), parameters(b), strict=True):
        assert torch.equal(x, y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_keeps_everything_on_the_device(tmp_path):
    trainer = MBPO(smoke(total_steps=250), device="cuda", run_dir=tmp_path)
    trainer.train(progress=False)
    assert trainer.real.device.type == trainer.model_buffer.device.type == "cuda"
    assert next(trainer.agent.actor.parameters()).is_cuda and next(trainer.model.network.parameters()).is_cuda
    resumed = MBPO.load(tmp_path / CHECKPOINT_NAME, device="cuda")
    assert resumed.env_steps == 250


def test_cli_overrides_plot_and_clear_errors(tmp_path, capsys):
    from mbpo_lib.__main__ import main

    run_dir = tmp_path / "run"
    args = ["train", "--env", ENV, "--smoke", "--out", str(run_dir), "--no-progress", "--steps", "200"]
    assert main([*args, "--set", "ensemble.hidden_dim=16", "--preset-override", "real_ratio=0.1"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["ensemble"]["hidden_dim"] == 16 and config["real_ratio"] == 0.1
    assert main(["plot", str(run_dir), "--output", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 0
    for bad, message in ((["--set", "ensemble.bogus=1"], "unknown MBPOConfig.ensemble field"),
                         (["--set", "real_ratio"], "--set takes key=value"),
                         (["--set", "real_ratio=2"], "real_ratio")):
        assert main(["train", "--env", ENV, "--smoke", "--out", str(tmp_path / "other"), *bad]) == 2
        assert message in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--env", "Hopper-v4"])
    assert exit_.value.code == 2
    assert "unknown env id 'Hopper-v4'; did you mean Hopper-v5?" in capsys.readouterr().err


def test_official_pool_timing_adds_whole_episodes_and_waits_for_the_pool(tmp_path):
    # D1: rows enter the real buffer when their episode ends; D2: SAC waits for min_pool_size rows.
    trainer = MBPO(smoke(official_pool_timing=True, min_pool_size=150))
    trainer.train(steps=250, progress=False)
    assert len(trainer.real) + len(trainer._pending) == trainer.env_steps == 250
    assert len(trainer.real) < 250 and len(trainer._pending) > 0          # an episode still running
    assert bool(trainer.real.latest(1).terminated[0])                     # the pool ends at an episode end
    first = trainer.history[0]                                            # steps 100-200: pool grows past 150
    assert 0 < first["sac_updates"] < trainer.config.updates_per_step * 100
    idle = MBPO(smoke(official_pool_timing=True, min_pool_size=10_000))
    idle.train(steps=200, progress=False)
    assert idle.history[0]["sac_updates"] == 0 and math.isnan(idle.history[0]["critic_loss"])
    # the running episode's rows are part of the checkpoint: a resumed run equals an uninterrupted one
    path = trainer.save(tmp_path / CHECKPOINT_NAME)
    resumed = MBPO.load(path, run_dir=None)
    assert len(resumed._pending) == len(trainer._pending)
    resumed.train(progress=False)
    whole = MBPO(smoke(official_pool_timing=True, min_pool_size=150))
    whole.train(progress=False)
    assert comparable(resumed.history) == comparable(whole.history)


def test_official_pool_timing_is_off_by_default_and_checked():
    assert preset(ENV).official_pool_timing is False
    with pytest.raises(ValueError, match="official_pool_timing must be True or False"):
        smoke(official_pool_timing=1)
    with pytest.raises(ValueError, match="min_pool_size must be an int >= 1, got 0"):
        smoke(min_pool_size=0)


# --- issue 17: the critic's bias, reset rollouts, a frozen model ------------------------------


def test_the_q_bias_columns_measure_the_critic_on_that_evaluations_episodes(finished):
    trainer, run_dir = finished
    c, row = trainer.config, trainer.history[-1]
    assert METRIC_COLUMNS[-len(Q_BIAS_COLUMNS):] == Q_BIAS_COLUMNS == (
        "eval_q_mean", "eval_mc_return", "eval_q_bias", "eval_q_bias_normalized", "eval_q_states")
    episodes = evaluate_episodes(trainer.agent, ENV, episodes=c.eval_episodes,
                                 seed=10_000 * (c.seed + 1) + 100 * row["epoch"])
    assert (row["eval_return"], row["eval_return_std"]) == episode_return_stats(episodes)
    assert [row[column] for column in Q_BIAS_COLUMNS] == list(q_value_bias(trainer.agent, episodes))
    assert all(r["eval_q_states"] > 0 and math.isfinite(r["eval_q_bias"]) for r in trainer.history)
    from mbpo_lib import read_metrics

    assert read_metrics(run_dir / "metrics.csv")[-1]["eval_q_bias_normalized"] == pytest.approx(
        row["eval_q_bias_normalized"], rel=1e-12)


def test_a_run_saved_before_the_new_fields_and_columns_resumes_with_empty_cells(finished, tmp_path):
    trainer, _ = finished
    first = MBPO(smoke(), run_dir=tmp_path)
    first.train(steps=250, progress=False)
    state = first.state_dict()                     # made to look like the version before issue 17
    del state["reset_count"]
    for key in ("rollout_start", "freeze_model_after_epoch"):
        del state["config"][key]
    state["history"] = [{k: v for k, v in row.items() if k not in Q_BIAS_COLUMNS} for row in first.history]
    resumed = MBPO(smoke(), run_dir=tmp_path)
    resumed.load_state_dict(state)
    resumed.train(progress=False)
    new = set(Q_BIAS_COLUMNS)
    assert [{k: v for k, v in row.items() if k not in new} for row in comparable(resumed.history)] == \
        [{k: v for k, v in row.items() if k not in new} for row in comparable(trainer.history)]
    assert comparable(resumed.history)[1:] == comparable(trainer.history)[1:]
    with open(tmp_path / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert [table[0][column] for column in Q_BIAS_COLUMNS] == [""] * len(Q_BIAS_COLUMNS)   # the old row
    assert table[-1]["eval_q_states"] not in ("", "nan")
    from mbpo_lib import read_metrics

    assert math.isnan(read_metrics(tmp_path / "metrics.csv")[0]["eval_q_bias"])
    old_file = tmp_path / "old.csv"                # a metrics.csv written before the columns existed
    with open(old_file, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in METRIC_COLUMNS if c not in new], restval="")
        writer.writeheader()
        writer.writerow({"epoch": 0, "env_steps": 200, "eval_return": 12.5})
    assert read_metrics(old_file)[0]["eval_return"] == 12.5


def model_state(trainer: MBPO) -> list[torch.Tensor]:
    state = trainer.model.state_dict()
    return [t.clone() for part in ("network", "normalizer") for t in state[part].values()] + [state["elites"]]


def test_a_frozen_model_is_fitted_through_its_epoch_and_never_after(finished, tmp_path):
    trainer, _ = finished
    snapshots = []
    frozen = MBPO(smoke(freeze_model_after_epoch=0), run_dir=tmp_path)
    frozen.train(callbacks=[lambda mbpo, row: snapshots.append(model_state(mbpo))], progress=False)
    rows = frozen.history
    assert comparable(rows)[0] == comparable(trainer.history)[0]       # epoch 0: fitted as usual
    assert rows[0]["model_fits"] == 2 and math.isfinite(rows[0]["model_holdout_mse"])
    for row in rows[1:]:                                                 # epochs 1 and 2: no fit at all
        assert row["model_fits"] == 0 and row["rollout_transitions"] > 0
        assert all(math.isnan(row[c]) for c in ("model_holdout_mse", "model_fit_epochs", "elites"))
    for later in snapshots[1:]:
        assert all(torch.equal(a, b) for a, b in zip(snapshots[0], later, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[0], model_state(trainer), strict=True))
    from mbpo_lib import read_metrics

    read = read_metrics(tmp_path / "metrics.csv")
    assert [r["model_fits"] for r in read] == [2, 0, 0] and math.isnan(read[2]["model_holdout_mse"])
    assert frozen.model_frozen(1) and not frozen.model_frozen(0) and not trainer.model_frozen(99)


RESET = {"rollout_start": "reset", "rollout_schedule": (0, 2, 1, 3)}   # k = 1, 2, 3 over the 3 epochs


@pytest.fixture(scope="module")
def reset_run():
    trainer = MBPO(smoke(**RESET))
    trainer.train(progress=False)
    return trainer


def test_reset_rollouts_write_exactly_b_times_k_rows_per_fit(reset_run):
    trainer = reset_run
    c, rows = trainer.config, reset_run.history
    assert trainer.horizon == 1000 and [row["k"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert row["rollout_transitions"] == c.rollout_batch_size * row["k"] and row["model_fits"] == 2
        assert row["model_buffer_capacity"] == model_buffer_capacity(c, row["k"])
    assert rows[-1]["model_buffer_rows"] == rows[-1]["model_buffer_capacity"]      # filled exactly
    assert trainer.reset_count >= 6                         # at least one reset state per fit (6 fits)
    assert rows[-1]["rollout_mean_length"] > 1


def test_reset_states_come_from_their_own_env_and_seeds_and_move_no_other_stream():
    from mbpo_lib.envs import env_state, make_env

    trainer = MBPO(smoke(**RESET))
    trainer.train(steps=120, progress=False)
    before = (trainer.generator.get_state().clone(), trainer.action_rng.bit_generator.state,
              env_state(trainer.env)["mujoco"].copy(), trainer.agent.generator.get_state().clone())
    count = trainer.reset_count
    states = trainer._reset_states(3)
    assert trainer.reset_count == count + 3 and states.shape == (3, 4) and states.dtype == torch.float32
    reference = make_env(ENV)
    for i, j in enumerate(range(count, count + 3)):
        seed = int(np.random.SeedSequence([0, 5, j]).generate_state(1, np.uint64)[0])
        assert torch.equal(states[i], torch.as_tensor(reference.reset(seed=seed)[0], dtype=torch.float32))
    after = (trainer.generator.get_state(), trainer.action_rng.bit_generator.state,
             env_state(trainer.env)["mujoco"], trainer.agent.generator.get_state())
    assert torch.equal(before[0], after[0]) and before[1] == after[1]
    assert np.array_equal(before[2], after[2]) and torch.equal(before[3], after[3])


def test_resuming_a_reset_rollout_run_mid_epoch_equals_the_uninterrupted_run(reset_run, tmp_path):
    first = MBPO(smoke(**RESET), run_dir=tmp_path)
    first.train(steps=250, progress=False)
    first.save(tmp_path / CHECKPOINT_NAME)
    resumed = MBPO.load(tmp_path / CHECKPOINT_NAME)
    assert resumed.reset_count == first.reset_count > 0
    resumed.train(progress=False)
    assert comparable(resumed.history) == comparable(reset_run.history)
    assert resumed.reset_count == reset_run.reset_count
    for a, b in zip(parameters(resumed), parameters(reset_run), strict=True):
        assert torch.equal(a, b)


def test_reset_rollouts_need_a_time_limit():
    import gymnasium as gym

    if "NoLimitPendulum-v0" not in gym.registry:   # InvertedPendulum without its 1000-step limit
        gym.register(id="NoLimitPendulum-v0",
                     entry_point="gymnasium.envs.mujoco.inverted_pendulum_v5:InvertedPendulumEnv")
    config = smoke(env_id="NoLimitPendulum-v0", termination="never", rollout_start="reset")
    with pytest.raises(ValueError, match=r"rollout_start='reset' rolls the model out up to the episode "
                                         r"length, and NoLimitPendulum-v0 has no time limit"):
        MBPO(config)
    assert MBPO(config.with_overrides(rollout_start="real")).horizon is None   # only "reset" needs one
