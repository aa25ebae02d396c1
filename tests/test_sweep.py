"""Sweeps and their report: parsing, skip and resume of run folders, the table's numbers on
hand-written runs, and a real sweep through a Ray cluster on 127.0.0.1 (a worker SIGKILLed
mid-run, retried by Ray, resumed from its checkpoint)."""

import contextlib
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from mbpo_lib.intervals import difference_interval, median_interval
from mbpo_lib.mbpo import CHECKPOINT_NAME, MBPO, METRIC_COLUMNS
from mbpo_lib.sweep import (
    COMPARISON_NAME,
    DONE_NAME,
    SUMMARY_NAME,
    WORKER_NAME,
    Arm,
    arm_curve,
    collect_arms,
    env_from_folder,
    gpu_share,
    median_steps_to,
    parse_arm,
    parse_arms,
    parse_budgets,
    parse_env_values,
    parse_names,
    parse_seeds,
    plan,
    report,
    require_ray,
    run_config,
    run_name,
    sweep,
)

ENV = "InvertedPendulum-v5"
TIMING = {column for column in METRIC_COLUMNS if column.startswith("seconds_")}
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


# --- parsing -------------------------------------------------------------------------------------


def test_seed_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds(" 3 ") == [3]
    assert parse_seeds("0-2,7, 9-10") == [0, 1, 2, 7, 9, 10]
    assert parse_seeds("5-5") == [5]


@pytest.mark.parametrize("text, message", [
    ("", "needs seeds such as '0-4'"),
    ("4-0", "the range '4-0' ends below its start"),
    ("0,,2", "'' is not a seed or a range"),
    ("-1", "'-1' is not a seed or a range"),
    ("a-b", "'a-b' is not a seed or a range"),
    ("1.5", "'1.5' is not a seed or a range"),
    ("0-3,2", r"seed\(s\) \[2\] more than once"),
])
def test_bad_seeds_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


def test_envs_algos_and_budgets():
    assert parse_names("InvertedPendulum-v5,Hopper-v5", ["Hopper-v5", ENV], "--envs") == [ENV, "Hopper-v5"]
    with pytest.raises(ValueError, match="--envs: unknown 'Hopper-v4'; choose from Hopper-v5"):
        parse_names("Hopper-v4", ["Hopper-v5", ENV], "--envs")
    with pytest.raises(ValueError, match="--algos: unknown 'ppo'; choose from mbpo, sac"):
        parse_names("mbpo,ppo", ["mbpo", "sac"], "--algos")
    with pytest.raises(ValueError, match="names mbpo more than once"):
        parse_names("mbpo,mbpo", ["mbpo", "sac"], "--algos")
    envs, algos = [ENV, "Hopper-v5"], ["mbpo", "sac"]
    assert set(parse_budgets(None, envs, algos).values()) == {None}
    assert set(parse_budgets("5000", envs, algos).values()) == {5000}
    budgets = parse_budgets("9000,sac=7000,Hopper-v5=50000,Hopper-v5/sac=60000", envs, algos)
    assert budgets == {(ENV, "mbpo"): 9000, (ENV, "sac"): 7000, ("Hopper-v5", "mbpo"): 50000,
                       ("Hopper-v5", "sac"): 60000}
    assert parse_budgets("mbpo=5000", envs, algos)[ENV, "sac"] is None      # the preset's
    for bad, message in (("ppo=5", "'ppo' is neither an algorithm"), ("sac=0", "'0' is not a budget"),
                         ("sac=5k", "'5k' is not a budget"), ("sac=5,sac=6", "gives 'sac' twice")):
        with pytest.raises(ValueError, match=message):
            parse_budgets(bad, envs, algos)


def test_plan_validates_every_config_before_anything_runs(tmp_path):
    runs = plan([ENV], ["mbpo", "sac"], [0, 3], root=tmp_path, smoke=True,
                budgets={(ENV, "sac"): 300}, overrides=["ensemble.hidden_dim=16"])
    names = [run_name(ENV, algo, seed) for algo in ("mbpo", "sac") for seed in (0, 3)]
    assert [run.name for run in runs] == names
    assert all(Path(run.root) == tmp_path.resolve() for run in runs)
    sac = runs[2].config()
    assert sac.total_steps == 300 and sac.real_ratio == 1.0 and sac.updates_per_step == 1 and sac.seed == 0
    assert runs[0].config().total_steps == 400 and runs[0].config().ensemble.hidden_dim == 16
    with pytest.raises(ValueError, match="a sweep sets seed itself"):
        plan([ENV], ["mbpo"], [0], root=tmp_path, overrides=["seed=3"])
    with pytest.raises(ValueError, match=f"{ENV}_mbpo_seed0: .*init_exploration_steps=100 exceeds"):
        plan([ENV], ["mbpo"], [0], root=tmp_path, smoke=True, budgets={(ENV, "mbpo"): 50})
    with pytest.raises(ValueError, match="unknown env 'Pong-v5'"):
        plan(["Pong-v5"], ["mbpo"], [0], root=tmp_path)
    with pytest.raises(ValueError, match="--schedule 'paper appendix': InvertedPendulum-v5 has official"):
        plan([ENV], ["mbpo"], [0], root=tmp_path, schedule="paper appendix")


def test_cli_errors_name_the_bad_value(tmp_path, capsys):
    from mbpo_lib.__main__ import main

    base = ["sweep", "--root", str(tmp_path), "--smoke", "--no-ray"]
    for extra, message in ((["--envs", "Hopper-v4"], "--envs: unknown 'Hopper-v4'"),
                           (["--envs", ENV, "--algos", "ppo"], "--algos: unknown 'ppo'"),
                           (["--envs", ENV, "--seeds", "3-1"], "ends below its start"),
                           (["--envs", ENV, "--steps", "x"], "'x' is not a budget"),
                           (["--envs", ENV, "--set", "total_steps=9"], "use --seeds and --steps")):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []                     # nothing ran
    assert main(["report", str(tmp_path)]) == 2
    assert "no run folders" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--threshold", "Hopper-v5"]) == 2
    assert "--threshold takes ENV=VALUE" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--threshold", "not an id=3"]) == 2
    assert "got 'not an id=3'" in capsys.readouterr().err


def test_thresholds_take_any_gymnasium_id_a_task_of_your_own_included():
    assert parse_env_values(["PointBalance-v0=90", "my_pkg/Arm-v2=1.5", "Hopper-v5=3000"], "--threshold",
                            float) == {"PointBalance-v0": 90.0, "my_pkg/Arm-v2": 1.5, "Hopper-v5": 3000.0}
    with pytest.raises(ValueError, match="Gymnasium id"):
        parse_env_values(["PointBalance=90"], "--threshold", float)


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)          # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'mbpo_lib\[sweep\]'.*--no-ray"):
        require_ray()


def test_gpu_share_splits_the_cluster_gpus_over_the_runs():
    assert gpu_share(0, 10) == 0.0
    assert gpu_share(1, 3) == 0.3333
    assert gpu_share(1, 1) == 1.0 and gpu_share(4, 2) == 1.0
    assert gpu_share(1, 100_000) == 1e-4


def test_run_config_is_the_train_commands_config(tmp_path):
    from mbpo_lib.__main__ import main

    run_dir = tmp_path / "run"
    assert main(["train", "--env", ENV, "--algo", "sac", "--seed", "3", "--smoke", "--steps", "150",
                 "--set", "sac.gamma=0.98", "--run-dir", str(run_dir), "--no-progress"]) == 0
    expected = run_config(ENV, "sac", 3, total_steps=150, smoke=True, overrides=["sac.gamma=0.98"])
    assert json.loads((run_dir / "config.json").read_text()) == expected.to_dict()


# --- skip and resume (in this process, no Ray) -------------------------------------------------


def test_the_sweep_resumes_an_interrupted_run_exactly_and_skips_finished_ones(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    (reference,) = plan([ENV], ["mbpo"], [0], root=whole, smoke=True)
    (run,) = plan([ENV], ["mbpo"], [0], root=broken, smoke=True)
    assert sweep([reference], use_ray=False, log=lambda line: None).runs[0]["status"] == "trained"
    # a run whose worker was lost mid-epoch: a checkpoint at step 250 of 400, no done.json
    partial = MBPO(run.config(), run_dir=run.run_dir)
    partial.train(steps=250, progress=False)
    partial.save(run.run_dir / CHECKPOINT_NAME)
    assert not (run.run_dir / DONE_NAME).exists()
    lines = []
    (result,) = sweep([run], use_ray=False, log=lines.append).runs
    assert (result["status"], result["from_step"], result["env_steps"]) == ("resumed", 250, 400)
    assert "resumed (steps 250 -> 400" in lines[0]
    assert json.loads((run.run_dir / WORKER_NAME).read_text())["from_step"] == 250
    assert json.loads((run.run_dir / DONE_NAME).read_text())["env_steps"] == 400
    # the resumed run ends equal to the uninterrupted one: every logged number and every weight
    assert without_timing(table(run.run_dir / "metrics.csv")) == without_timing(
        table(reference.run_dir / "metrics.csv"))
    a = MBPO.load(run.run_dir / CHECKPOINT_NAME, run_dir=None)
    b = MBPO.load(reference.run_dir / CHECKPOINT_NAME, run_dir=None)
    for x, y in zip(a.agent.actor.parameters(), b.agent.actor.parameters(), strict=True):
        assert torch.equal(x, y)
    # a second sweep trains nothing: both files stay untouched
    files = [run.run_dir / "metrics.csv", run.run_dir / CHECKPOINT_NAME]
    before = [path.stat().st_mtime_ns for path in files]
    (again,) = sweep([run], use_ray=False, log=lambda line: None).runs
    assert (again["status"], again["env_steps"]) == ("skipped", 400)
    assert [path.stat().st_mtime_ns for path in files] == before
    # other settings into the same folder are refused, naming the field, and change nothing
    (bigger,) = plan([ENV], ["mbpo"], [0], root=broken, smoke=True, budgets={(ENV, "mbpo"): 500})
    (failed,) = sweep([bigger], use_ray=False, log=lambda line: None).runs
    assert failed["status"] == "failed" and "total_steps: 400 there, 500 asked" in failed["error"]
    assert [path.stat().st_mtime_ns for path in files] == before


# --- the report on hand-written runs ------------------------------------------------------------


# The metrics.csv columns of a run from before the Q-bias estimate (no eval_q_* / eval_mc_* cells).
OLD_COLUMNS = [column for column in METRIC_COLUMNS if not column.startswith(("eval_q_", "eval_mc_"))]


def write_run(root: Path, name: str, rows: list[tuple[int, float, float]], total_steps: int,
              done: bool = True, q_bias: list[float] | None = None) -> None:
    """A run folder with metrics.csv rows (env_steps, eval_return, seconds_total), and with
    ``q_bias`` an ``eval_q_bias_normalized`` column (else the columns of a run without it)."""
    folder = root / name
    folder.mkdir(parents=True)
    columns = OLD_COLUMNS + (["eval_q_bias_normalized"] if q_bias is not None else [])
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for epoch, (steps, ret, seconds) in enumerate(rows):
            bias = {"eval_q_bias_normalized": q_bias[epoch]} if q_bias is not None else {}
            writer.writerow({"epoch": epoch, "env_steps": steps, "eval_return": ret,
                             "seconds_total": seconds, **bias})
    config = {"env_id": name.split("_")[0], "total_steps": total_steps}
    (folder / "config.json").write_text(json.dumps(config))
    if done:
        (folder / DONE_NAME).write_text(json.dumps({"env_steps": total_steps}))


@pytest.fixture
def synthetic(tmp_path):
    root = tmp_path / "runs"
    nan = float("nan")
    write_run(root, f"{ENV}_mbpo_seed0", [(750, 100, 1.0), (875, nan, 0.5), (1000, 400, 1.0),
                                          (1250, 1000, 1.5), (1500, 1000, 1.5)], 1500)
    write_run(root, f"{ENV}_mbpo_seed1", [(750, 50, 2.0), (1000, 1000, 2.0), (1250, 900, 2.0),
                                          (1500, 1000, 2.0)], 1500)
    write_run(root, f"{ENV}_mbpo_seed2", [(750, 20, 1.0), (1000, 30, 1.0), (1250, 60, 1.0), (1500, 80, 1.0)],
              1500)
    write_run(root, f"{ENV}_sac_seed0", [(750, 10, 1.0), (1000, 20, 1.0), (1250, 30, 1.0), (1500, 1000, 1.0)],
              1500)
    write_run(root, f"{ENV}_sac_seed1", [(750, 5, 3.0), (1000, 8, 3.0)], 1500, done=False)   # unfinished
    write_run(root, "Hopper-v5_sac_seed0", [(6000, 200, 10.0), (7000, 500, 10.0)], 7000)
    write_run(root, "Hopper-v5_sac_seed1", [(6000, 300, 10.0), (7000, 2000, 10.0)], 7000)
    (root / "notes").mkdir()
    (root / "Hopper-v5_sac_seed9").mkdir()         # no metrics.csv yet
    return root


def test_report_numbers_equal_hand_computations(synthetic, tmp_path):
    out = tmp_path / "results"
    done = report(synthetic, out, at={ENV: (900, 1250)})
    rows = {(row["env_id"], row["algo"]): row for row in table(out / SUMMARY_NAME)}
    assert list(rows) == [("Hopper-v5", "sac"), (ENV, "mbpo"), (ENV, "sac")]       # presets' order
    mbpo, sac, hopper = rows[ENV, "mbpo"], rows[ENV, "sac"], rows["Hopper-v5", "sac"]
    finals = [1000, 1000, 80]
    assert (mbpo["seeds"], mbpo["finished"], mbpo["budget"]) == ("3", "3", "1500")
    assert float(mbpo["final_return_median"]) == 1000.0
    assert float(mbpo["final_return_mean"]) == round(statistics.mean(finals), 1) == 693.3
    assert float(mbpo["final_return_std"]) == round(statistics.stdev(finals), 1)
    # the policy at step S: the last evaluation at or before S (the NaN row is no evaluation)
    assert float(mbpo["median_return_at_900"]) == statistics.median([100, 50, 20])
    assert float(mbpo["median_return_at_1250"]) == statistics.median([1000, 900, 60])
    # steps to 1000 (the default): seeds reach it at 1250, 1000 and never -> 2/3, 2nd smallest = 1250
    assert (mbpo["threshold"], mbpo["reached"]) == ("1000.0", "2/3")
    assert mbpo["steps_to_threshold_median"] == "1250"
    assert mbpo["steps_to_threshold"] == "0:1250 1:1000 2:>1500"
    # its bootstrap interval: a resample's median is the censored run with P = 7/27 > 2.5 %
    assert mbpo["steps_to_threshold_ci95"] == "1000->1500"
    assert "arm" not in mbpo and mbpo["final_q_bias_normalized_median"] == ""    # a plain root, no Q bias
    assert float(mbpo["seconds_median"]) == 5.5 and float(mbpo["seconds_sum"]) == 5.5 + 8.0 + 4.0
    # SAC: seed 1 stopped at 1000 of 1500 -> not in the final numbers, censored at its last step
    assert (sac["seeds"], sac["finished"]) == ("2", "1")
    assert float(sac["final_return_median"]) == 1000.0 and sac["final_return_std"] == ""
    assert float(sac["median_return_at_900"]) == statistics.median([10, 5])
    assert float(sac["median_return_at_1250"]) == 30.0          # seed 1 never got to 1250
    assert (sac["reached"], sac["steps_to_threshold_median"], sac["steps_to_threshold"]) == (
        "1/2", "1500", "0:1500 1:>1000")
    # Hopper: neither seed reaches 3000 within 7000 steps -> censored median
    assert (hopper["reached"], hopper["steps_to_threshold_median"]) == ("0/2", ">7000")
    assert float(hopper["final_return_mean"]) == 1250.0
    assert hopper["median_return_at_900"] == ""                  # another env's step counts
    # a lower threshold, and the default step counts (REPORT_STEPS within the budget: 1000)
    again = report(synthetic, tmp_path / "other", thresholds={"Hopper-v5": 400}, figures=False)
    hopper = next(row for row in again.rows if row["env_id"] == "Hopper-v5")
    assert (hopper["reached"], hopper["steps_to_threshold_median"]) == ("2/2", 7000)   # both at 7000
    mbpo = next(row for row in again.rows if row["algo"] == "mbpo")
    assert mbpo["median_return_at_1000"] == statistics.median([400, 1000, 30])
    assert again.figures == [] and not any(path.suffix == ".png" for path in (tmp_path / "other").iterdir())
    # copies of every run's metrics, the per-run table, one figure per env; odd folders ignored
    assert sorted(path.name for path in done.copies) == sorted(
        f"{path.name}.csv" for path in synthetic.iterdir() if (path / "metrics.csv").exists())
    assert (out / f"{ENV}_mbpo_seed0.csv").read_bytes() == (synthetic / f"{ENV}_mbpo_seed0" / "metrics.csv"
                                                            ).read_bytes()
    assert sorted(done.ignored) == ["Hopper-v5_sac_seed9", "notes"]
    assert [path.name for path in done.figures] == ["Hopper-v5_curves.png", f"{ENV}_curves.png"]
    assert all(path.stat().st_size > 10_000 for path in done.figures)
    per_run = table(done.runs)
    assert [(r["seed"], r["finished"], r["steps_to_threshold"]) for r in per_run if r["algo"] == "sac"
            and r["env_id"] == ENV] == [("0", "True", "1500"), ("1", "False", ">1000")]
    assert not any(name.endswith(".tmp") for name in os.listdir(out))         # atomic writes


def test_median_steps_to_threshold_with_censored_runs():
    assert median_steps_to([300, None, 100, 200], [500] * 4) == 200        # 2 of 4 by step 200
    assert median_steps_to([None, None, 100], [500, 400, 500]) == ">400"   # fewer than half
    assert median_steps_to([100], [500]) == 100
    assert median_steps_to([], []) == ""


def test_report_command_prints_the_table(synthetic, tmp_path, capsys):
    from mbpo_lib.__main__ import main

    out = tmp_path / "results"
    assert main(["report", str(synthetic), "--out", str(out), "--threshold", f"{ENV}=400", "--at",
                 f"{ENV}=1000,1250", "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "steps_to_threshold_median" in printed and "0:1250 1:1000 2:>1500" not in printed
    assert "0:1000 1:1000 2:>1500" in printed
    assert "ignored, not run folders: Hopper-v5_sac_seed9, notes" in printed
    assert (out / SUMMARY_NAME).is_file()


# --- arms: named variants of a preset ------------------------------------------------------------


def test_arm_specs_parse_into_algo_budget_and_overrides():
    assert parse_arm("mbpo") == Arm("mbpo", "mbpo", None, ())
    assert parse_arm("sac-g10:algo=sac,updates_per_step=10") == Arm("sac-g10", "sac", None,
                                                                    ("updates_per_step=10",))
    assert parse_arm("sac-g1:algo=sac,steps=15000") == Arm("sac-g1", "sac", 15000, ())
    # commas inside brackets stay in their item; values as --set takes them
    k15 = parse_arm("k15: rollout_schedule=[1,15,15,15], ensemble.lr=3e-4 ,official_pool_timing=true")
    assert k15 == Arm("k15", "mbpo", None, ("rollout_schedule=[1,15,15,15]", "ensemble.lr=3e-4",
                                            "official_pool_timing=true"))
    assert parse_arm("real-ratio-0.5:real_ratio=0.5").name == "real-ratio-0.5"
    for arm in (k15, parse_arm("sac-g1:algo=sac,steps=15000"), parse_arm("mbpo")):
        assert parse_arm(arm.spec) == arm                                 # the spec text round-trips
    assert [arm.name for arm in parse_arms(["b", "a:real_ratio=0"])] == ["b", "a"]   # order kept


@pytest.mark.parametrize("text, message", [
    ("", "--arm needs NAME or NAME:key=value"),
    ("my arm:real_ratio=0", "the name 'my arm' must be a folder name"),
    ("a/b", "the name 'a/b' must be a folder name"),
    (".hidden", "not starting with '.'"),
    (":real_ratio=0", "the name '' must be a folder name"),
    (f"{ENV}_sac_seed0:real_ratio=0", "looks like a run folder"),
    ("x:", "nothing after ':'"),
    ("x:real_ratio=0,,k=1", "an empty item"),
    ("x:real_ratio=0,", "an empty item"),
    ("x:real_ratio", "'real_ratio' is not key=value"),
    ("x:=3", "'=3' is not key=value"),
    ("x:algo=ppo", "algo='ppo'; choose from mbpo, sac"),
    ("x:steps=5k", "steps='5k' is not a budget"),
    ("x:steps=0", "steps='0' is not a budget"),
    ("x:total_steps=500", "an arm's budget is steps=N"),
    ("x:seed=3", "the sweep sets the seeds itself"),
    ("x:real_ratio=0,real_ratio=1", "sets real_ratio more than once"),
    ("x:rollout_schedule=[1,15,15,15", "brackets do not pair up"),
    ("x:rollout_schedule=1,15]", "brackets do not pair up"),
])
def test_bad_arm_specs_are_refused_naming_the_spec(text, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        parse_arm(text)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_arm_names_must_be_unique():
    with pytest.raises(ValueError, match="--arm names a more than once"):
        parse_arms(["a", "b:real_ratio=0", "a:algo=sac"])


def test_plan_with_arms_orders_runs_by_arm_and_builds_each_arms_config(tmp_path):
    arms = parse_arms(["sac-g10:algo=sac,updates_per_step=10", "base", "long:algo=sac,steps=350",
                       "lr:ensemble.lr=3e-4,updates_per_step=5"])
    runs = plan([ENV], [], [0, 1], root=tmp_path, smoke=True, budgets={(ENV, "sac"): 300},
                overrides=["updates_per_step=3", "sac.gamma=0.98"], arms=arms)
    assert [run.label for run in runs] == [f"{arm}/{run_name(ENV, algo, seed)}" for arm, algo in (
        ("sac-g10", "sac"), ("base", "mbpo"), ("long", "sac"), ("lr", "mbpo")) for seed in (0, 1)]
    assert runs[0].run_dir == tmp_path.resolve() / "sac-g10" / f"{ENV}_sac_seed0"
    configs = {run.arm: run.config() for run in runs}
    # the sweep's --set first, then the arm's own: an arm's value wins
    assert [configs[name].updates_per_step for name in ("sac-g10", "base", "long", "lr")] == [10, 3, 3, 5]
    assert all(config.sac.gamma == 0.98 for config in configs.values())
    assert configs["lr"].ensemble.lr == 3e-4 and configs["sac-g10"].real_ratio == 1.0
    # an arm's steps= wins over the sweep's budgets; otherwise the (env, algo) budget, else the preset's
    assert [configs[name].total_steps for name in ("sac-g10", "base", "long")] == [300, 400, 350]
    with pytest.raises(ValueError, match="give arms or algos, not both"):
        plan([ENV], ["mbpo"], [0], root=tmp_path, arms=arms)
    with pytest.raises(ValueError, match="arm name '../up' is not a folder name"):
        plan([ENV], [], [0], root=tmp_path, arms=[Arm("../up")])


def test_invalid_arms_fail_before_anything_runs_each_named(tmp_path):
    arms = parse_arms(["good", "typo:no_such_field=1", "bad-lr:ensemble.lr=-1", "fine:real_ratio=0.5"])
    with pytest.raises(ValueError) as error:
        plan([ENV], [], [0, 1], root=tmp_path, smoke=True, arms=arms)
    message = str(error.value)
    assert message.startswith("2 of 4 arms have invalid settings, nothing was run")
    assert (f"--arm typo:no_such_field=1: {ENV}_mbpo_seed0: unknown MBPOConfig field(s) ['no_such_field']"
            in message)
    assert "--arm bad-lr:ensemble.lr=-1" in message and "lr" in message.split("--arm bad-lr")[1]
    assert "--arm good" not in message and "--arm fine" not in message
    assert list(tmp_path.iterdir()) == []


def test_cli_arm_errors_name_the_bad_value(tmp_path, capsys):
    from mbpo_lib.__main__ import main

    base = ["sweep", "--envs", ENV, "--root", str(tmp_path), "--smoke", "--no-ray"]
    for extra, message in ((["--arm", "a", "--algos", "sac"], "--algos sac with --arm: each arm names its"),
                           (["--arm", "a", "--arm", "a:real_ratio=0"], "--arm names a more than once"),
                           (["--arm", "a b"], "the name 'a b' must be a folder name"),
                           (["--arm", "x:rollout_start=sideways"], "--arm x:rollout_start=sideways: "
                                                                   f"{ENV}_mbpo_seed0: "),
                           (["--arm", "x:seed=1"], "the sweep sets the seeds itself"),
                           (["--arm", "x", "--steps", "sac=500"], "'sac' is neither an algorithm (mbpo)")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []                     # nothing ran


def test_an_arms_sweep_skips_the_runs_of_plain_sweeps_into_its_arm_folders(tmp_path, capsys):
    """The controls' SAC runs were made by plain sweeps into runs/controls/sac-g10 and sac-g1; the
    arms sweep over runs/controls must take them for its own (same folders, same configs)."""
    from mbpo_lib.__main__ import main

    def sweep_json(*args: str) -> list[dict]:
        assert main(["sweep", "--envs", ENV, "--seeds", "0", "--smoke", "--no-ray", *args]) == 0
        return json.loads(capsys.readouterr().out.splitlines()[-1])["runs"]

    root = tmp_path / "controls"
    (g10,) = sweep_json("--algos", "sac", "--steps", "200", "--set", "updates_per_step=10",
                        "--root", str(root / "sac-g10"))
    (g1,) = sweep_json("--algos", "sac", "--steps", "300", "--root", str(root / "sac-g1"))
    assert g10["status"] == g1["status"] == "trained"
    # a run written before a config field existed: its config.json lacks it, it had the default
    config_file = root / "sac-g1" / f"{ENV}_sac_seed0" / "config.json"
    old = json.loads(config_file.read_text())
    for name in ("official_pool_timing", "min_pool_size"):
        del old[name]
    config_file.write_text(json.dumps(old))
    files = [path for path in root.rglob("*") if path.is_file()]
    before = {path: path.stat().st_mtime_ns for path in files}
    runs = sweep_json("--root", str(root), "--steps", "200", "--arm", "sac-g10:algo=sac,updates_per_step=10",
                      "--arm", "sac-g1:algo=sac,steps=300")
    assert [(run["run"], run["status"], run["env_steps"]) for run in runs] == [
        (f"sac-g10/{ENV}_sac_seed0", "skipped", 200), (f"sac-g1/{ENV}_sac_seed0", "skipped", 300)]
    assert [run["arm"] for run in runs] == ["sac-g10", "sac-g1"]
    assert {path: path.stat().st_mtime_ns for path in files} == before        # nothing written
    # an arm whose settings differ from its folder's run is refused, naming the field
    assert main(["sweep", "--envs", ENV, "--seeds", "0", "--smoke", "--no-ray", "--root", str(root),
                 "--steps", "200", "--arm", "sac-g10:algo=sac,updates_per_step=5"]) == 1
    captured = capsys.readouterr()
    (failed,) = json.loads(captured.out.splitlines()[-1])["runs"]
    assert failed["status"] == "failed" and "updates_per_step: 10 there, 5 asked" in failed["error"]
    assert f"error: sac-g10/{ENV}_sac_seed0: " in captured.err
    assert {path: path.stat().st_mtime_ns for path in files} == before


def test_namespaced_env_ids_become_folder_names_and_come_back(tmp_path):
    assert run_name("my_pkg/Arm-v0", "mbpo", 3) == "my_pkg+Arm-v0_mbpo_seed3"
    assert env_from_folder("my_pkg+Arm-v0_mbpo_seed3") == "my_pkg/Arm-v0"
    assert env_from_folder(run_name(ENV, "sac", 0)) == ENV
    with pytest.raises(ValueError, match="'notes' is not a run folder name"):
        env_from_folder("notes")
    root = tmp_path / "runs"
    for seed, ret in enumerate((5.0, 1.0)):
        write_run(root, run_name("my_pkg/Arm-v0", "mbpo", seed), [(100, 0.0, 1.0), (200, ret, 1.0)], 200)
    done = report(root, tmp_path / "out", thresholds={"my_pkg/Arm-v0": 4.0})
    (row,) = done.rows
    assert (row["env_id"], row["reached"], row["steps_to_threshold_median"]) == ("my_pkg/Arm-v0", "1/2", 200)
    assert [path.name for path in done.figures] == ["my_pkg+Arm-v0_curves.png"]
    assert sorted(path.name for path in done.copies) == ["my_pkg+Arm-v0_mbpo_seed0.csv",
                                                         "my_pkg+Arm-v0_mbpo_seed1.csv"]


# --- the report of arms --------------------------------------------------------------------------


@pytest.fixture
def arms_root(tmp_path):
    """Arm folders with known steps to 1000: mbpo 1000, 1250, 1500 (lower median 1250); slow
    2000, 2500, never (2500); never: none of 3; same: 1500 x 3; broken: one damaged run."""
    root = tmp_path / "controls"

    def curve(reach: int | None, budget: int) -> list[tuple[int, float, float]]:
        return [(s, 1000.0 if reach is not None and s >= reach else 100.0, 1.0)
                for s in range(500, budget + 1, 250)]

    for seed, (reach, bias) in enumerate(((1000, 0.1), (1250, 0.3), (1500, -0.2))):
        rows = curve(reach, 2000)
        write_run(root / "mbpo", run_name(ENV, "mbpo", seed), rows, 2000,
                  q_bias=[0.0] * (len(rows) - 1) + [bias])
    for seed, reach in enumerate((2000, 2500, None)):
        write_run(root / "slow", run_name(ENV, "sac", seed), curve(reach, 3000), 3000)
    for seed in range(3):
        write_run(root / "never", run_name(ENV, "mbpo", seed), curve(None, 2000), 2000)
        write_run(root / "same", run_name(ENV, "mbpo", seed), curve(1500, 2000), 2000)
    write_run(root / "broken", run_name(ENV, "mbpo", 0), curve(1000, 2000), 2000)
    cut = root / "broken" / run_name(ENV, "mbpo", 0) / "metrics.csv"
    cut.write_bytes(cut.read_bytes()[:-20])                         # cut mid-row
    (root / "mbpo" / "notes").mkdir()
    (root / "empty").mkdir()
    return root


def test_collect_arms_finds_the_arm_folders_and_a_plain_root_as_before(arms_root, synthetic):
    with pytest.warns(RuntimeWarning, match="skipping the damaged run .*broken"):
        records, ignored, damaged = collect_arms(arms_root)
    assert [(r.arm, r.algo, r.seed) for r in records][:4] == [("mbpo", "mbpo", 0), ("mbpo", "mbpo", 1),
                                                             ("mbpo", "mbpo", 2), ("never", "mbpo", 0)]
    assert list(dict.fromkeys(r.arm for r in records)) == ["mbpo", "never", "same", "slow"]
    assert sorted(ignored) == ["empty", "mbpo/notes"]
    assert len(damaged) == 1 and damaged[0].startswith(f"broken/{ENV}_mbpo_seed0: ")
    assert "ends in the middle of a row" in damaged[0]
    assert [r.q_bias_normalized for r in records if r.arm == "mbpo"] == [0.1, 0.3, -0.2]
    assert all(r.q_bias_normalized is None for r in records if r.arm != "mbpo")
    plain, plain_ignored, _ = collect_arms(synthetic)                # run folders directly: a plain root
    assert {r.arm for r in plain} == {""} and sorted(plain_ignored) == ["Hopper-v5_sac_seed9", "notes"]


def test_report_of_arms_has_an_arm_column_intervals_and_the_q_bias(arms_root, tmp_path):
    out = tmp_path / "results"
    with pytest.warns(RuntimeWarning, match="skipping the damaged run"):
        done = report(arms_root, out)
    assert done.arms == ["mbpo", "never", "same", "slow"]
    rows = {row["arm"]: row for row in table(out / SUMMARY_NAME)}
    assert list(table(out / SUMMARY_NAME)[0])[:3] == ["arm", "env_id", "algo"]
    mbpo, slow, never, same = rows["mbpo"], rows["slow"], rows["never"], rows["same"]
    assert (mbpo["reached"], mbpo["steps_to_threshold_median"], mbpo["steps_to_threshold_ci95"]) == (
        "3/3", "1250", "1000-1500")
    assert float(mbpo["final_q_bias_normalized_median"]) == 0.1       # median of 0.1, 0.3, -0.2
    assert (slow["algo"], slow["budget"], slow["steps_to_threshold_ci95"]) == ("sac", "3000", "2000->3000")
    assert (never["reached"], never["steps_to_threshold_median"], never["steps_to_threshold_ci95"]) == (
        "0/3", ">2000", ">2000")
    assert same["steps_to_threshold_ci95"] == "1500-1500"              # equal seeds: zero width
    assert slow["final_q_bias_normalized_median"] == ""                # no such column in those runs
    assert "broken" not in rows and len(done.damaged) == 1
    # metrics copies per arm, the per-run table with its arm, one figure naming the arms
    assert (out / "slow" / f"{ENV}_sac_seed2.csv").read_bytes() == (
        arms_root / "slow" / f"{ENV}_sac_seed2" / "metrics.csv").read_bytes()
    assert len(done.copies) == 12 and all(path.parent.name in done.arms for path in done.copies)
    assert {row["arm"] for row in table(done.runs)} == set(done.arms)
    assert [path.name for path in done.figures] == [f"{ENV}_curves.png"]
    assert done.figures[0].stat().st_size > 10_000
    assert "final_q_bias_normalized_median" in done.table and "1000-1500" in done.table
    assert not any(name.endswith(".tmp") for name in os.listdir(out))
    assert done.comparison is None and not (out / COMPARISON_NAME).exists()


def test_an_arms_curve_is_the_median_and_quartiles_on_the_steps_all_seeds_cover(arms_root):
    with pytest.warns(RuntimeWarning):
        records, _, _ = collect_arms(arms_root)
    steps, median, low, high = arm_curve([r for r in records if r.arm == "mbpo"])
    assert steps == [500, 750, 1000, 1250, 1500, 1750, 2000]
    assert median == [100, 100, 100, 1000, 1000, 1000, 1000]           # seeds reach at 1000, 1250, 1500
    assert low[2] == 100 and high[2] == 550                              # 25th/75th of (1000, 100, 100)
    assert arm_curve([]) == ([], [], [], [])


def test_baseline_comparison_gives_known_ratios(arms_root, tmp_path):
    out = tmp_path / "results"
    with pytest.warns(RuntimeWarning):
        done = report(arms_root, out, baseline="mbpo", figures=False)
    rows = {row["arm"]: row for row in table(out / COMPARISON_NAME)}
    assert list(rows) == ["mbpo", "never", "same", "slow"]              # the baseline first
    assert done.arms[0] == "mbpo" and done.rows[0]["arm"] == "mbpo"
    mbpo, slow, never, same = rows["mbpo"], rows["slow"], rows["never"], rows["same"]
    assert (mbpo["steps_ratio"], mbpo["baseline_steps_median"]) == ("1.0", "1250")
    low, high = map(float, mbpo["steps_ratio_ci95"].split("-"))
    assert low < 1 < high
    # slow: 2500 / 1250; at best 2000 / 1500 (P = (7/27)^2 > 2.5 %), at worst censored
    assert (slow["steps_ratio"], slow["steps_ratio_ci95"], slow["reached"]) == ("2.0", "1.33-inf", "2/3")
    assert (same["steps_ratio"], same["steps_to_threshold_median"]) == ("1.2", "1500")
    # never: only bounded, beyond its budget 2000 over the baseline's 1250
    assert (never["steps_ratio"], never["steps_ratio_ci95"], never["reached"]) == (">1.6", "inf-inf", "0/3")
    assert (out / COMPARISON_NAME) == done.comparison and "steps_ratio_ci95" in done.comparison_table


def test_baseline_errors_name_the_arms_there_are(arms_root, synthetic, tmp_path, capsys):
    from mbpo_lib.__main__ import main

    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="no arm 'nope' here; the arms are "
                                                                         "mbpo, never, same, slow"):
        report(arms_root, tmp_path / "a", baseline="nope")
    assert not (tmp_path / "a").exists()                                 # checked before writing
    with pytest.raises(ValueError, match="--baseline 'mbpo' compares arms, but these runs are not in arm"):
        report(synthetic, tmp_path / "b", baseline="mbpo")
    assert main(["report", str(synthetic), "--baseline", "mbpo", "--no-figures"]) == 2
    assert "compares arms" in capsys.readouterr().err
    assert main(["report", str(arms_root), "--out", str(tmp_path / "c"), "--baseline", "slow",
                 "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "against the baseline arm slow" in captured.out and "comparison: " in captured.out
    assert captured.err.count("warning: skipped the damaged run broken/") == 1
    ratios = {row["arm"]: row["steps_ratio"] for row in table(tmp_path / "c" / COMPARISON_NAME)}
    assert ratios["mbpo"] == "0.5"


def test_an_arms_report_into_its_default_folder_can_be_run_again(arms_root):
    with pytest.warns(RuntimeWarning):
        first = report(arms_root, figures=False)
    with pytest.warns(RuntimeWarning):
        second = report(arms_root, figures=False)
    assert first.arms == second.arms == ["mbpo", "never", "same", "slow"]
    assert "report" not in second.ignored and sorted(second.ignored) == ["empty", "mbpo/notes"]
    assert (arms_root / "report" / "mbpo" / f"{ENV}_mbpo_seed0.csv").is_file()


@pytest.fixture
def scored_root(tmp_path):
    """Arms whose runs never reach 1000, with known last-3 means: a 200, 500, 10; b 50, 80 and an
    unfinished run; c one run whose last row is not evaluated and one with 2 evaluations only."""
    root = tmp_path / "scored"
    nan = float("nan")

    def rows(*returns: float) -> list[tuple[int, float, float]]:
        return [(1000 * (i + 1), ret, 1.0) for i, ret in enumerate(returns)]

    for seed, tail in enumerate(((100, 200, 300), (400, 500, 600), (0, 0, 30))):
        write_run(root / "a", run_name(ENV, "mbpo", seed), rows(900, *tail), 4000)
    for seed, tail in enumerate(((50, 50, 50), (70, 80, 90))):
        write_run(root / "b", run_name(ENV, "sac", seed), rows(5, *tail), 4000)
    write_run(root / "b", run_name(ENV, "sac", 2), rows(5, 6), 4000, done=False)
    write_run(root / "c", run_name(ENV, "sac", 0), rows(1, 2, 3, nan), 4000)
    write_run(root / "c", run_name(ENV, "sac", 1), rows(1, 2), 2000)
    return root


def test_a_score_is_the_mean_of_the_last_evaluations_with_intervals_and_differences(scored_root, tmp_path):
    out = tmp_path / "results"
    done = report(scored_root, out, baseline="b", score_last=3, figures=False)
    rows = {row["arm"]: row for row in table(out / SUMMARY_NAME)}
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert (a["score_last"], a["scored"], a["score_per_seed"]) == ("3", "3/3", "0:200.0 1:500.0 2:10.0")
    assert float(a["score_median"]) == 200.0                              # the median of 200, 500, 10
    interval = median_interval([200.0, 500.0, 10.0])
    assert a["score_ci95"] == f"{round(interval.low, 1)} to {round(interval.high, 1)}"
    # b: the unfinished run has no score; the lower median of 50 and 80 is 50
    assert (b["scored"], b["score_median"], b["score_per_seed"]) == ("2/3", "50.0", "0:50.0 1:80.0 2:none")
    # c: a last row without an evaluation, and a run with 2 evaluations, are not scored
    assert (c["scored"], c["score_median"], c["score_ci95"]) == ("0/2", "", "")
    assert a["reached"] == "0/3" and a["steps_to_threshold_median"] == ">4000"   # what scores are for
    per_run = {(r["arm"], r["seed"]): r["score"] for r in table(done.runs)}
    assert (per_run["a", "0"], per_run["b", "2"], per_run["c", "0"]) == ("200.0", "", "")
    # the comparison: each arm's median score minus b's, with difference_interval's bounds
    compared = {row["arm"]: row for row in table(out / COMPARISON_NAME)}
    assert list(compared) == ["b", "a", "c"]
    difference = difference_interval([200.0, 500.0, 10.0], [50.0, 80.0])
    assert (compared["a"]["score_median"], compared["a"]["baseline_score_median"]) == ("200.0", "50.0")
    assert float(compared["a"]["score_difference"]) == difference.estimate == 150.0
    assert compared["a"]["score_difference_ci95"] == (f"{round(difference.low, 1)} to "
                                                       f"{round(difference.high, 1)}")
    assert float(compared["b"]["score_difference"]) == 0.0
    assert (compared["c"]["score_difference"], compared["c"]["score_difference_ci95"]) == ("", "")
    assert "score_difference_ci95" in done.comparison_table and "score_per_seed" in done.table


def test_without_score_last_the_report_has_no_score_columns(scored_root, tmp_path):
    done = report(scored_root, tmp_path / "out", baseline="b", figures=False)
    for path in (done.summary, done.runs, done.comparison):
        assert not any(column.startswith("score") or "_score" in column for column in table(path)[0])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "3"])
def test_score_last_must_be_a_count(scored_root, tmp_path, bad):
    with pytest.raises(ValueError, match=rf"--score-last must be a whole number of evaluations >= 1 .*got "
                                         rf"{re.escape(repr(bad))}"):
        report(scored_root, tmp_path / "out", score_last=bad)
    assert not (tmp_path / "out").exists()                                # refused before writing


def test_the_report_command_scores_runs(scored_root, tmp_path, capsys):
    from mbpo_lib.__main__ import main

    out = tmp_path / "results"
    assert main(["report", str(scored_root), "--out", str(out), "--baseline", "b", "--score-last", "3",
                 "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "score_difference: the arm's median score minus the baseline's" in printed
    assert "0:200.0 1:500.0 2:10.0" in printed
    assert main(["report", str(scored_root), "--out", str(tmp_path / "no"), "--score-last", "0"]) == 2
    assert "--score-last must be a whole number of evaluations >= 1" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


# --- a real sweep through a Ray cluster on 127.0.0.1 -------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextlib.contextmanager
def ray_sandbox():
    """A short temp dir and an environment for Ray processes: their own auth token (nothing read
    from or written to ~/.ray), temp root, one thread each, and a marker variable that every
    process they start inherits. On exit, any process still carrying the marker (this sandbox's
    and no other) is SIGKILLed by its id and the temp dir removed."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[sweep]'; CI installs it)")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")   # short: Ray's socket paths must fit 107 bytes
    marker = f"MBPO_TEST_RAY_SANDBOX={temp}"
    env = {**CHILD_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_TMPDIR": temp,
           "MBPO_TEST_RAY_SANDBOX": temp}
    try:
        yield temp, env
    finally:
        for pid in _processes_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _processes_with(marker: str) -> list[int]:
    """PIDs of this user's processes whose environment holds ``marker`` (``NAME=value``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if entry.stat().st_uid == os.getuid() and marker.encode() in (
                        entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def ray_cluster():
    """A Ray head on 127.0.0.1 (2 CPUs, no dashboard, its own ports), started with ``ray start
    --block`` in a :func:`ray_sandbox`; yields (address, environment for its clients).

    Stopped whatever the test did: SIGTERM to that ``ray start`` (it drains and stops what it
    started), then SIGKILL to its process group, then the sandbox kills any straggler (Ray's
    workers run in sessions of their own)."""
    with ray_sandbox() as (temp, env):
        port, dash, agent, agent_grpc, runtime_env, metrics, node, objects = free_ports(8)
        command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                   "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
                   "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats",
                   f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={agent}",
                   f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
                   f"--metrics-export-port={metrics}", f"--node-manager-port={node}",
                   f"--object-manager-port={objects}"]
        log_path = Path(temp) / "ray_start.log"
        with open(log_path, "w") as log:
            head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in log_path.read_text():
                assert head.poll() is None, f"ray start failed:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "ray start: no cluster within 120 s"
                time.sleep(0.2)
            yield f"127.0.0.1:{port}", env
        finally:
            head.terminate()
            try:
                head.wait(timeout=45)                     # Ray drains for up to 30 s
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(head.pid, signal.SIGKILL)       # the group of our `ray start`
            except ProcessLookupError:
                pass
            head.wait(timeout=10)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mbpo_lib", *args]


@pytest.mark.slow
def test_a_sweep_on_a_ray_cluster_survives_a_killed_worker_skips_when_done_and_reports(ray_cluster, tmp_path):
    address, env = ray_cluster
    root, out = tmp_path / "sweep", tmp_path / "results"
    # MBPO long enough to be caught mid-run (10 epochs of 100 steps), SAC the smoke budget
    args = ["sweep", "--envs", ENV, "--algos", "mbpo,sac", "--seeds", "0", "--smoke", "--root", str(root),
            "--steps", "mbpo=1100,sac=400", "--address", address, "--max-retries", "2"]
    driver = subprocess.Popen(cli(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        mbpo_dir = root / f"{ENV}_mbpo_seed0"
        deadline = time.monotonic() + 150
        while not ((mbpo_dir / CHECKPOINT_NAME).exists() and (mbpo_dir / WORKER_NAME).exists()):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 150 s"
            time.sleep(0.05)
        worker = json.loads((mbpo_dir / WORKER_NAME).read_text())["pid"]
        os.kill(worker, signal.SIGKILL)                  # the Ray worker running that run, by its id
        stdout, stderr = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, stderr[-3000:]
    runs = {run["algo"]: run for run in json.loads(stdout.splitlines()[-1])["runs"]}
    assert runs["sac"]["status"] == "trained" and runs["sac"]["env_steps"] == 400
    mbpo = runs["mbpo"]                                  # Ray retried the task: it resumed, not restarted
    assert mbpo["status"] == "resumed" and 200 <= mbpo["from_step"] < 1100 and mbpo["env_steps"] == 1100
    rows = table(mbpo_dir / "metrics.csv")
    assert [int(row["env_steps"]) for row in rows] == list(range(200, 1101, 100))
    assert json.loads((mbpo_dir / WORKER_NAME).read_text())["pid"] != worker
    # the same sweep again: nothing to do, nothing written
    files = [path for path in root.rglob("*") if path.is_file()]
    before = {path: path.stat().st_mtime_ns for path in files}
    again = subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [run["status"] for run in json.loads(again.stdout.splitlines()[-1])["runs"]] == ["skipped"] * 2
    assert {path: path.stat().st_mtime_ns for path in files} == before
    shown = subprocess.run(cli("report", str(root), "--out", str(out)), env=CHILD_ENV, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    summary = {row["algo"]: row for row in table(out / SUMMARY_NAME)}
    assert summary["mbpo"]["budget"] == "1100" and summary["sac"]["budget"] == "400"
    assert all(row["seeds"] == row["finished"] == "1" for row in summary.values())
    assert (out / f"{ENV}_mbpo_seed0.csv").read_bytes() == (mbpo_dir / "metrics.csv").read_bytes()
    assert (out / f"{ENV}_curves.png").stat().st_size > 0


@pytest.mark.slow
def test_a_local_ray_sweep_resumes_a_run_and_stops_its_instance(tmp_path):
    with ray_sandbox() as (temp, env):
        root = tmp_path / "sweep"
        (run, _) = plan([ENV], ["sac"], [0, 1], root=root, smoke=True, budgets={(ENV, "sac"): 300})
        partial = MBPO(run.config(), run_dir=run.run_dir)         # a run left at step 250 of 300
        partial.train(steps=250, progress=False)
        partial.save(run.run_dir / CHECKPOINT_NAME)
        done = subprocess.run(cli("sweep", "--envs", ENV, "--algos", "sac", "--seeds", "0-1", "--smoke",
                                  "--steps", "300", "--root", str(root), "--num-cpus", "2"),
                              env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "on Ray (a local instance: 2 CPUs; 0 GPU per task)" in done.stdout
        runs = {run["seed"]: run for run in json.loads(done.stdout.splitlines()[-1])["runs"]}
        assert (runs[0]["status"], runs[0]["from_step"], runs[0]["env_steps"]) == ("resumed", 250, 300)
        assert (runs[1]["status"], runs[1]["env_steps"]) == ("trained", 300)
        deadline = time.monotonic() + 20                                   # the instance was stopped
        while (left := _processes_with(f"MBPO_TEST_RAY_SANDBOX={temp}")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == [], "Ray processes outlived the sweep's local instance"
