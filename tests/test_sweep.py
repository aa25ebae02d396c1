"""Sweeps and their report: parsing, skip and resume of run folders, the table's numbers on
hand-written runs, and a real sweep through a Ray cluster on 127.0.0.1 (a worker SIGKILLed
mid-run, retried by Ray, resumed from its checkpoint)."""

import contextlib
import csv
import json
import os
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

from mbpo_lib.mbpo import CHECKPOINT_NAME, MBPO, METRIC_COLUMNS
from mbpo_lib.sweep import (
    DONE_NAME,
    SUMMARY_NAME,
    WORKER_NAME,
    gpu_share,
    median_steps_to,
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


def write_run(root: Path, name: str, rows: list[tuple[int, float, float]], total_steps: int,
              done: bool = True) -> None:
    """A run folder with metrics.csv rows (env_steps, eval_return, seconds_total)."""
    folder = root / name
    folder.mkdir(parents=True)
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, restval="")
        writer.writeheader()
        for epoch, (steps, ret, seconds) in enumerate(rows):
            writer.writerow({"epoch": epoch, "env_steps": steps, "eval_return": ret,
                             "seconds_total": seconds})
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
