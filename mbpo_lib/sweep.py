"""Many (environment, algorithm, seed) runs as Ray tasks, and the report that aggregates them.

A sweep is the cross product ``envs x algos x seeds``. Each run is one Ray task (one CPU, and a
share of a GPU when the cluster has one) that trains in-process with one torch thread and writes
to its own folder ``<root>/<env>_<algo>_seed<k>`` (the names of
``benchmarks/sample_efficiency.py``'s results; a namespaced id ``my_pkg/Arm-v0`` is written
``my_pkg+Arm-v0`` in the name, :func:`env_from_folder` gives the id back).

A controlled experiment runs named variants of a preset instead, *arms* (:class:`Arm`,
``--arm NAME:algo=sac,steps=15000,updates_per_step=10``): the cross product ``arms x envs x
seeds``, each arm with its algorithm, budget and ``--set`` overrides, into
``<root>/<arm>/<env>_<algo>_seed<k>``. So an arm's folder is exactly the ``--root`` of a plain
sweep with the same settings, and runs made that way are recognised (and skipped) as the arm's.

A task is idempotent, so a sweep can simply be started again:

- a run folder with ``done.json`` (written atomically after the last step) is finished: skipped;
- a run folder with a checkpoint is resumed from it (exactly, on the CPU), so a run whose worker
  was lost continues on the next sweep, and Ray's own retries of a crashed task (``max_retries``)
  continue from the checkpoint too;
- otherwise the run starts from scratch.

A task of your own sweeps like a preset (``--envs MyEnv-v0 --env-module mypkg.envs
--termination never``): each run's config records ``env_module``, which every Ray worker imports
before it makes the env (so the module must be importable on every node, e.g. on the
``PYTHONPATH`` the cluster was started with), and the termination and reward functions by
import path.

A run folder made with other settings (another budget, another ``--set``) is refused with the
fields that differ, never silently mixed (a field the run's ``config.json`` predates counts as
its default). On a cluster, ``root`` must be on a filesystem every node sees, and every node
needs this package installed.

:func:`report` reads the run folders back (:func:`collect_arms`: a plain root, or a root of arm
folders): per arm, environment and algorithm the number of seeds, the median and mean
evaluation return at the budget, the median return at a few fixed step counts, the steps until
a return threshold is reached (runs that never reach it are censored: shown as ``>N``) with a
bootstrap interval (:mod:`mbpo_lib.intervals`), the final normalised Q bias where the runs log
it, and the training time; plus one learning-curve figure per environment. With a baseline arm
it also compares every arm's steps to the threshold with the baseline's (a ratio and its
interval).

Command line: ``python -m mbpo_lib sweep ...`` and ``python -m mbpo_lib report ...``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .config import (
    PRESETS,
    MBPOConfig,
    apply_overrides,
    flat_config,
    parse_override,
    preset,
    schedule_variants,
)
from .envs import near_preset
from .files import atomic_write, checkpoint_exists
from .intervals import Interval, difference_interval, lower_median, median_interval, ratio_interval
from .mbpo import CHECKPOINT_NAME, MBPO, read_metrics
from .task_functions import function_path

# Each algorithm as changes to the environment's preset. SAC alone: all real data, no model,
# SAC's usual one update per step (the same as ``python -m mbpo_lib train --algo sac``).
ALGORITHMS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "mbpo": MappingProxyType({}),
    "sac": MappingProxyType({"real_ratio": 1.0, "updates_per_step": 1}),
})
DONE_NAME = "done.json"          # written atomically once a run has reached its budget
WORKER_NAME = "worker.json"      # which process and host last worked on a run, from which step
SUMMARY_NAME = "sweep_summary.csv"
RUNS_NAME = "sweep_runs.csv"
COMPARISON_NAME = "comparison.csv"
RUN_FOLDER = re.compile(r"(?P<env>.+)_(?P<algo>[a-z0-9]+)_seed(?P<seed>\d+)")
# An arm's name is a folder name: letters, digits, '-', '_' and '.', not starting with '.'.
ARM_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
# The metrics.csv column of the normalised Q bias (written by runs that estimate it; absent in others).
Q_BIAS_COLUMN = "eval_q_bias_normalized"

# Returns that count as "solved" for steps-to-threshold, from the series' mbpo-reference.md
# ("What the published runs reach"): the pendulum's maximum; Hopper's and Walker2d's MBPO return
# at 75k and 100k steps; HalfCheetah's, Ant's and Humanoid's at the end of the paper's budget.
# InvertedDoublePendulum is not in the reference: close to v5's maximum (about 9,350).
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({
    "InvertedPendulum-v5": 1000.0,
    "InvertedDoublePendulum-v5": 9000.0,
    "Hopper-v5": 3000.0,
    "Walker2d-v5": 3500.0,
    "HalfCheetah-v5": 12000.0,
    "Ant-v5": 5500.0,
    "Humanoid-v5": 5500.0,
})
# Step counts at which the report gives the median return (those within the runs' budget), the
# points the paper's curves are read at (mbpo-reference.md) plus a few early ones.
REPORT_STEPS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "InvertedPendulum-v5": (1000, 3000, 5000, 15000),
    "InvertedDoublePendulum-v5": (5000, 10000, 20000),
    "Hopper-v5": (25000, 75000, 125000),
    "Walker2d-v5": (50000, 100000, 300000),
    "HalfCheetah-v5": (100000, 200000, 400000),
    "Ant-v5": (100000, 200000, 300000),
    "Humanoid-v5": (100000, 200000, 300000),
})


# --- parsing the command line's lists ------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"0-4"`` (inclusive range), ``"0,2,5"`` or a mix (``"0-2,7"``), in order.

    Raises ``ValueError`` naming the bad part for anything else: empty items, negative or
    non-integer seeds, a range whose end is below its start, or a seed given twice.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--seeds needs seeds such as '0-4' or '0,2,5', got {text!r}")
    seeds: list[int] = []
    for part in text.split(","):
        item = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item)
        if match is None:
            raise ValueError(f"--seeds {text!r}: {item!r} is not a seed or a range; seeds are ints >= 0 "
                             "written as '0-4' (inclusive), '0,2,5' or '0-2,7'")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"--seeds {text!r}: the range {item!r} ends below its start (write "
                             f"'{last}-{first}')")
        seeds.extend(range(first, last + 1))
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ValueError(f"--seeds {text!r} names seed(s) {repeated} more than once")
    return seeds


def parse_names(text: str, allowed: Iterable[str], what: str) -> list[str]:
    """A comma-separated list of names, each one of ``allowed`` (``what`` names the option in
    errors, e.g. ``"--envs"``), without repeats."""
    allowed = list(allowed)
    names = [name.strip() for name in text.split(",")] if isinstance(text, str) else []
    if not names or any(not name for name in names):
        raise ValueError(f"{what} needs a comma-separated list from {', '.join(allowed)}; got {text!r}")
    for name in names:
        if name not in allowed:
            raise ValueError(f"{what}: unknown {name!r}; choose from {', '.join(allowed)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} names {', '.join(repeated)} more than once")
    return names


def parse_envs(text: str, task: bool = False) -> list[str]:
    """``--envs``: comma-separated env ids without repeats. Presets always; other ids only with
    ``task`` (a termination given for tasks of your own), and never a preset's near-miss
    (``Hopper-v4``). Whether an id is registered is checked when :func:`plan` builds the configs."""
    names = [name.strip() for name in text.split(",")] if isinstance(text, str) else []
    if not names or any(not name for name in names):
        raise ValueError(f"--envs needs a comma-separated list of env ids (presets: {', '.join(PRESETS)}); "
                         f"got {text!r}")
    for name in names:
        if name not in PRESETS and (not task or near_preset(name) in PRESETS):
            close = near_preset(name)
            hint = f" (did you mean {close}?)" if close in PRESETS else ""
            raise ValueError(f"--envs: unknown {name!r}{hint}; choose from {', '.join(PRESETS)}, or give "
                             "--termination (and --env-module) for a task of your own")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--envs names {', '.join(repeated)} more than once")
    return names


def parse_budgets(text: str | None, envs: Sequence[str],
                  algos: Sequence[str]) -> dict[tuple[str, str], int | None]:
    """The budget (real steps, warm-up included) of each (env, algo); None keeps the preset's.

    ``text`` is ``"N"`` for every run, or comma-separated ``KEY=N`` where KEY is an algorithm
    (``"mbpo=5000,sac=20000"``), an environment (``"Hopper-v5=50000"``) or both
    (``"Hopper-v5/sac=50000"``); the most specific key wins (env/algo, then env, then algo, then a
    bare N).
    """
    budgets: dict[tuple[str, str], int | None] = {(env, algo): None for env in envs for algo in algos}
    if text is None or not text.strip():
        return budgets
    given: dict[str, int] = {}
    for part in text.split(","):
        key, sep, raw = part.strip().rpartition("=")
        if not sep:
            key, raw = "", part.strip()
        try:
            steps = int(raw)
        except ValueError:
            steps = 0
        if steps < 1:
            raise ValueError(f"--steps {text!r}: {raw!r} is not a budget (an int >= 1 of real steps)")
        env, _, algo = key.partition("/")
        valid = (key == "" or key in algos or key in envs or (env in envs and algo in algos))
        if not valid:
            raise ValueError(f"--steps {text!r}: {key!r} is neither an algorithm ({', '.join(algos)}), an "
                             f"env of this sweep ({', '.join(envs)}) nor ENV/ALGO")
        if key in given:
            raise ValueError(f"--steps {text!r} gives {key or 'the default'!r} twice")
        given[key] = steps
    for env, algo in budgets:
        for key in (f"{env}/{algo}", env, algo, ""):
            if key in given:
                budgets[env, algo] = given[key]
                break
    return budgets


# A Gymnasium id: an optional namespace, a name and a version (gymnasium's own pattern, simplified).
_GYM_ID = re.compile(r"(?:[\w:.-]+/)?[\w:.-]+-v\d+")


def parse_env_values(pairs: Iterable[str], what: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    """``ENV=VALUE`` pairs (``--threshold Hopper-v5=3000``) as a dict, the value through
    ``convert``; ``ENV`` must be a Gymnasium id (``Name-vN``, a task of your own included)."""
    values: dict[str, Any] = {}
    for text in pairs:
        env, sep, raw = text.partition("=")
        env = env.strip()
        if not sep or not _GYM_ID.fullmatch(env):
            raise ValueError(f"{what} takes ENV=VALUE with ENV a Gymnasium id such as "
                             f"{', '.join(list(PRESETS)[:2])} or MyTask-v0; got {text!r}")
        try:
            values[env] = convert(raw)
        except ValueError:
            raise ValueError(f"{what} {text!r}: {raw!r} is not a valid value") from None
    return values


def parse_step_list(text: str) -> tuple[int, ...]:
    """``"1000,3000,5000"`` as sorted step counts (ints >= 1); ``ValueError`` otherwise."""
    steps = tuple(int(item) for item in text.split(","))
    if min(steps) < 1:
        raise ValueError(f"step counts must be >= 1, got {text!r}")
    return tuple(sorted(set(steps)))


# --- arms: named variants of a preset ------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One named variant of a sweep's preset: its runs go to ``<root>/<name>/<run folder>``.

    ``algo``: a key of :data:`ALGORITHMS`. ``total_steps``: this arm's budget (None: the
    sweep's ``--steps``, else the preset's). ``overrides``: ``key=value`` texts as ``--set``
    takes them, applied after the sweep's own ``--set`` (so an arm's value wins).
    """

    name: str
    algo: str = "mbpo"
    total_steps: int | None = None
    overrides: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        """The arm as ``--arm`` takes it (``NAME`` alone for the preset as it is)."""
        items = ([f"algo={self.algo}"] if self.algo != "mbpo" else []) + (
            [f"steps={self.total_steps}"] if self.total_steps is not None else []) + list(self.overrides)
        return f"{self.name}:{','.join(items)}" if items else self.name


def _split_items(text: str, spec: str) -> list[str]:
    """``text`` split on the commas outside brackets and braces (``rollout_schedule=[1,15,15,15]``
    stays one item); ``ValueError`` naming ``spec`` when they do not pair up."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth < 0:
                break
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"--arm {spec!r}: its brackets do not pair up (write lists as key=[1,15,15,15])")
    items.append(text[start:])
    return [item.strip() for item in items]


def parse_arm(text: str) -> Arm:
    """An arm from ``"NAME"`` (the preset as it is) or ``"NAME:key=value,key=value,..."``.

    After the colon: ``algo=`` (mbpo or sac; default mbpo), ``steps=`` (this arm's budget in
    real steps, warm-up included; default the sweep's ``--steps``) and any other ``key=value``
    as ``--set`` takes it (``updates_per_step=10``, ``ensemble.lr=3e-4``,
    ``rollout_schedule=[1,15,15,15]``, ``official_pool_timing=true``), split on the commas
    outside brackets. ``NAME`` is a folder name: letters, digits, ``-``, ``_`` and ``.``.
    Raises ``ValueError`` naming the spec and the bad part; whether an override names a real
    field with a valid value is checked when :func:`plan` builds the configs.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("--arm needs NAME or NAME:key=value,... (e.g. sac-g10:algo=sac,updates_per_step=10),"
                         f" got {text!r}")
    name, colon, rest = text.strip().partition(":")
    name = name.strip()
    if not ARM_NAME.fullmatch(name):
        raise ValueError(f"--arm {text!r}: the name {name!r} must be a folder name of letters, digits, '-', "
                         "'_' and '.' (not starting with '.'), then ':' and the arm's key=value settings")
    if RUN_FOLDER.fullmatch(name):
        raise ValueError(f"--arm {text!r}: the name {name!r} looks like a run folder (<env>_<algo>_seed<k>), "
                         "which the report would take for a run; choose another")
    if not colon:
        return Arm(name)
    items = _split_items(rest, text)
    if items == [""]:
        raise ValueError(f"--arm {text!r}: nothing after ':' (write just {name!r} for the preset as it is)")
    algo, steps, overrides, seen = "mbpo", None, [], set()
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not item:
            raise ValueError(f"--arm {text!r}: an empty item (a stray comma?)")
        if not sep or not key:
            raise ValueError(f"--arm {text!r}: {item!r} is not key=value (algo=, steps= or a --set field)")
        if key in seen:
            raise ValueError(f"--arm {text!r} sets {key} more than once")
        seen.add(key)
        if key == "algo":
            if value not in ALGORITHMS:
                raise ValueError(f"--arm {text!r}: algo={value!r}; choose from {', '.join(ALGORITHMS)}")
            algo = value
        elif key == "steps":
            try:
                steps = int(value)
            except ValueError:
                steps = 0
            if steps < 1:
                raise ValueError(f"--arm {text!r}: steps={value!r} is not a budget (an int >= 1 of real "
                                 "steps)")
        elif key in ("total_steps", "seed"):
            raise ValueError(f"--arm {text!r}: {key}=...: an arm's budget is steps=N, and the sweep sets the "
                             "seeds itself (--seeds)")
        else:
            parse_override(item)          # the syntax here; the field and its value in plan()
            overrides.append(f"{key}={value}")
    return Arm(name, algo, steps, tuple(overrides))


def parse_arms(texts: Iterable[str]) -> list[Arm]:
    """Every ``--arm`` (:func:`parse_arm`), in the order given; names must be unique."""
    arms = [parse_arm(text) for text in texts]
    names = [arm.name for arm in arms]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--arm names {', '.join(repeated)} more than once; each arm needs its own name "
                         "(its folder under --root)")
    return arms


# --- one run -------------------------------------------------------------------------------------


def env_folder(env_id: str) -> str:
    """``env_id`` as a file or folder name: a namespaced id's ``/`` becomes ``+`` (which no
    Gymnasium id contains), ``my_pkg/Arm-v0`` -> ``my_pkg+Arm-v0``."""
    return env_id.replace("/", "+")


def run_name(env_id: str, algo: str, seed: int) -> str:
    """The run folder's name: ``<env>_<algo>_seed<k>`` (as benchmarks/sample_efficiency.py), with
    a namespaced id's ``/`` written ``+`` (:func:`env_folder`)."""
    return f"{env_folder(env_id)}_{algo}_seed{seed}"


def env_from_folder(name: str) -> str:
    """The env id of a run folder's name (:func:`run_name`): ``my_pkg+Arm-v0_mbpo_seed0`` ->
    ``my_pkg/Arm-v0``. Raises ``ValueError`` for a name that is not a run folder's."""
    match = RUN_FOLDER.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a run folder name (<env>_<algo>_seed<k>)")
    return match["env"].replace("+", "/")


def run_config(env_id: str, algo: str, seed: int, *, total_steps: int | None = None, smoke: bool = False,
               overrides: Sequence[str] = (), schedule: str = "official", env_module: str | None = None,
               termination: str | None = None, reward: str | None = None) -> MBPOConfig:
    """The config of one run, built as ``python -m mbpo_lib train`` builds it: the env's preset
    (with its ``schedule`` variant, and the task's ``env_module``, ``termination`` and ``reward``
    where given; ``smoke()`` when ``smoke``), the seed, the algorithm's changes
    (:data:`ALGORITHMS`), the budget, then the ``key=value`` ``overrides``."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
    task = {name: value for name, value in (("env_module", env_module), ("termination", termination),
                                            ("reward", reward)) if value is not None}
    config = preset(env_id, schedule=schedule, **task)
    if smoke:
        config = config.smoke()
    changes: dict[str, Any] = {"seed": seed, **ALGORITHMS[algo]}
    if total_steps is not None:
        changes["total_steps"] = total_steps
    return apply_overrides(config, overrides, **changes)


@dataclass(frozen=True)
class SweepRun:
    """One (env, algo, seed) of a sweep: everything a task needs (picklable, no open state).

    ``root`` should be absolute (Ray workers do not share the driver's working directory).
    ``device`` is where the run trains: ``"cpu"``, ``"cuda"`` or ``"auto"``. ``env_module``,
    ``termination`` and ``reward``: a task of your own (:class:`~mbpo_lib.config.MBPOConfig`).
    ``arm``: the :class:`Arm` it belongs to (its folder under ``root``), None in a plain sweep.
    """

    env_id: str
    algo: str
    seed: int
    root: str
    total_steps: int | None = None
    smoke: bool = False
    overrides: tuple[str, ...] = ()
    schedule: str = "official"
    device: str = "cpu"
    env_module: str | None = None
    termination: str | None = None
    reward: str | None = None
    arm: str | None = None

    @property
    def name(self) -> str:
        return run_name(self.env_id, self.algo, self.seed)

    @property
    def label(self) -> str:
        """The run in logs: ``<arm>/<name>`` in an arm, else its name."""
        return f"{self.arm}/{self.name}" if self.arm else self.name

    @property
    def run_dir(self) -> Path:
        return Path(self.root) / self.arm / self.name if self.arm else Path(self.root) / self.name

    def config(self) -> MBPOConfig:
        return run_config(self.env_id, self.algo, self.seed, total_steps=self.total_steps, smoke=self.smoke,
                          overrides=self.overrides, schedule=self.schedule, env_module=self.env_module,
                          termination=self.termination, reward=self.reward)


def config_differences(have: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """``"field: A there, B asked"`` for each field where two ``MBPOConfig.to_dict()`` differ."""
    a, b = flat_config(have), flat_config(want)
    return [f"{key}: {a.get(key)!r} there, {b.get(key)!r} asked" for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]


def _as_read_now(have: Mapping[str, Any]) -> Mapping[str, Any]:
    """A run's ``config.json`` as this version reads it (:meth:`MBPOConfig.from_dict`): a field
    added since the run was written takes its default, as a checkpoint of that run loads, so a
    finished run is not refused for a field it predates (a new field's default keeps the old
    behaviour). A file ``from_dict`` refuses is compared as it is, naming its differences."""
    try:
        return MBPOConfig.from_dict(have).to_dict()
    except (ValueError, TypeError):
        return have


def _refuse_other_settings(run_dir: Path, have: Mapping[str, Any], want: MBPOConfig) -> None:
    differences = config_differences(_as_read_now(have), want.to_dict())
    if differences:
        raise ValueError(f"{run_dir} holds a run with other settings ({'; '.join(differences)}); a "
                         "sweep never mixes settings in one folder: choose another --root, or remove "
                         "that folder to start it again")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def run_one(run: SweepRun, *, threads: int | None = None) -> dict[str, Any]:
    """Bring one run to its budget: skip it when finished, resume it from its checkpoint, or
    start it; return a summary (``status``: ``"skipped"``, ``"resumed"`` or ``"trained"``).

    ``threads``: ``torch.set_num_threads`` for the run (None leaves torch's setting). Raises
    ``ValueError`` when the run folder holds a run with other settings.
    """
    import torch

    from .runtime import default_device

    if threads is not None:
        torch.set_num_threads(threads)
    config = run.config()
    run_dir = run.run_dir
    summary: dict[str, Any] = {"run": run.label, **({"arm": run.arm} if run.arm else {}),
                               "env_id": run.env_id, "algo": run.algo, "seed": run.seed,
                               "run_dir": str(run_dir), "total_steps": config.total_steps}
    done = run_dir / DONE_NAME
    if done.is_file():
        config_file = run_dir / "config.json"
        have = json.loads(config_file.read_text()) if config_file.is_file() else {}
        _refuse_other_settings(run_dir, have, config)
        record = json.loads(done.read_text())
        return {**summary, "status": "skipped", "from_step": record["env_steps"],
                "env_steps": record["env_steps"], "eval_return": record.get("eval_return"), "seconds": 0.0}
    device = default_device() if run.device == "auto" else torch.device(run.device)
    checkpoint = run_dir / CHECKPOINT_NAME
    if checkpoint_exists(checkpoint):   # or only its previous one: a crash between two renames
        trainer = MBPO.load(checkpoint, device=device)
        _refuse_other_settings(run_dir, trainer.config.to_dict(), config)
        status = "resumed"
    else:   # a fresh start (a folder without a checkpoint holds nothing worth keeping)
        trainer = MBPO(config, device=device, run_dir=run_dir)
        status = "trained"
    from_step = trainer.env_steps
    _write_json(run_dir / WORKER_NAME, {"pid": os.getpid(), "host": socket.gethostname(), "status": status,
                                        "from_step": from_step, "device": str(device),
                                        "started": time.time()})
    start = time.perf_counter()
    history = trainer.train(progress=False)
    seconds = time.perf_counter() - start
    eval_return = next((row["eval_return"] for row in reversed(history)
                        if not math.isnan(row["eval_return"])), None)
    _write_json(done, {"env_id": run.env_id, "algo": run.algo, "seed": run.seed,
                       "env_steps": trainer.env_steps, "total_steps": config.total_steps,
                       "eval_return": eval_return, "finished": time.time()})
    return {**summary, "status": status, "from_step": from_step, "env_steps": trainer.env_steps,
            "eval_return": eval_return, "seconds": round(seconds, 2)}


def _ray_task(run: SweepRun) -> dict[str, Any]:
    """The body of one Ray task: the run in this worker, one torch thread."""
    return run_one(run, threads=1)


# --- the sweep -----------------------------------------------------------------------------------


def plan(envs: Sequence[str], algos: Sequence[str], seeds: Sequence[int], *, root: str | Path = "runs/sweep",
         budgets: Mapping[tuple[str, str], int | None] | None = None, overrides: Sequence[str] = (),
         smoke: bool = False, schedule: str = "official", device: str = "cpu", env_module: str | None = None,
         termination: str | None = None, reward: str | None = None,
         arms: Sequence[Arm] | None = None) -> list[SweepRun]:
    """The runs of a sweep, each config built and validated here (bad settings fail before any
    task starts). ``budgets`` maps (env, algo) to a budget (None or missing: the preset's).
    ``env_module``, ``termination`` and ``reward`` apply to every run (a task of your own needs
    ``termination``; a function is recorded by its import path).

    Plain: the runs of ``envs x algos x seeds`` in that order, into ``root``. With ``arms``
    (:class:`Arm`; ``algos`` then empty, as each arm names its own): ``arms x envs x seeds``, in
    the arms' order (Ray starts tasks in the order they are submitted, so the first arms finish
    first), into ``<root>/<arm>``; an arm's budget is its ``total_steps``, else ``budgets``;
    ``overrides`` come before the arm's own. Every arm whose configs fail is named in one error.
    """
    for env in envs:
        if env not in PRESETS and termination is None:
            raise ValueError(f"unknown env {env!r}; choose from {', '.join(PRESETS)}, or give termination "
                             "(--termination) for a task of your own")
        if schedule not in schedule_variants(env):
            raise ValueError(f"--schedule {schedule!r}: {env} has {', '.join(schedule_variants(env))}")
    if arms and algos:
        raise ValueError("an arm names its own algorithm (NAME:algo=sac,...): give arms or algos, not both")
    arms = list(arms or ())
    for algo in [*algos, *(arm.algo for arm in arms)]:
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
    names = [arm.name for arm in arms]
    if len(set(names)) < len(names):
        raise ValueError(f"arm names must be unique, got {', '.join(names)}")
    for name in names:
        if not isinstance(name, str) or not ARM_NAME.fullmatch(name) or RUN_FOLDER.fullmatch(name):
            raise ValueError(f"arm name {name!r} is not a folder name of letters, digits, '-', '_' and '.' "
                             "(not starting with '.', not <env>_<algo>_seed<k>)")
    for text in overrides:
        key, _ = parse_override(text)
        if key in ("seed", "total_steps"):
            raise ValueError(f"--set {key}=...: a sweep sets {key} itself (use --seeds and --steps)")
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    root = str(Path(root).expanduser().resolve())
    budgets = budgets or {}
    if termination is not None and not isinstance(termination, str):
        termination = function_path(termination, "termination")
    if reward is not None and not isinstance(reward, str):
        reward = function_path(reward, "reward")
    if not arms:
        runs = [SweepRun(env, algo, int(seed), root, budgets.get((env, algo)), smoke, tuple(overrides),
                         schedule, device, env_module, termination, reward)
                for env in envs for algo in algos for seed in seeds]
        for run in runs:
            try:
                run.config()
            except ValueError as error:
                raise ValueError(f"{run.name}: {error}") from None
        return runs
    runs, failed = [], []
    for arm in arms:
        own = [SweepRun(env, arm.algo, int(seed), root,
                        arm.total_steps if arm.total_steps is not None else budgets.get((env, arm.algo)),
                        smoke, (*overrides, *arm.overrides), schedule, device, env_module, termination,
                        reward, arm.name)
               for env in envs for seed in seeds]
        for run in own:
            try:
                run.config()
            except ValueError as error:     # one line per arm: its runs share the cause
                failed.append(f"--arm {arm.spec}: {run.name}: {error}")
                break
        runs += own
    if failed:
        raise ValueError(f"{len(failed)} of {len(arms)} arms have invalid settings, nothing was run: "
                         + " | ".join(failed))
    return runs


def require_ray() -> Any:
    """``import ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError("sweeps run on Ray, which is not installed: pip install 'mbpo_lib[sweep]' "
                          "(or pip install 'ray>=2.9,<3'); --no-ray runs the sweep in this process, "
                          f"one run after another ({error})") from error
    return ray


def gpu_share(cluster_gpus: float, tasks: int) -> float:
    """The GPU fraction per task: the cluster's GPUs split over the tasks (at most 1 each, in
    Ray's 1e-4 steps), 0 without GPUs."""
    if cluster_gpus <= 0 or tasks < 1:
        return 0.0
    return max(1e-4, math.floor(min(1.0, cluster_gpus / tasks) * 1e4) / 1e4)


@dataclass
class SweepResult:
    """What a sweep did: one summary dict per run (see :func:`run_one`), ``status`` "failed"
    with an ``error`` for runs that raised."""

    root: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if run["status"] == "failed"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        return counts


def _describe(result: Mapping[str, Any]) -> str:
    if result["status"] == "failed":
        return f"{result['run']}: failed: {result['error']}"
    steps = (f"at {result['env_steps']} steps" if result["status"] == "skipped"
             else f"steps {result['from_step']} -> {result['env_steps']}")
    score = result.get("eval_return")
    score_text = f", eval_return {score:.1f}" if isinstance(score, (int, float)) else ""
    return f"{result['run']}: {result['status']} ({steps}{score_text}, {result['seconds']:.0f} s)"


def _failure(run: SweepRun, error: BaseException) -> dict[str, Any]:
    cause = getattr(error, "cause", None) or error     # a RayTaskError carries the task's exception
    message = str(cause).strip().splitlines()
    return {"run": run.label, **({"arm": run.arm} if run.arm else {}), "env_id": run.env_id, "algo": run.algo,
            "seed": run.seed, "run_dir": str(run.run_dir), "status": "failed",
            "error": f"{type(cause).__name__}: {message[-1] if message else ''}"}


def sweep(runs: Sequence[SweepRun], *, use_ray: bool = True, address: str | None = None,
          num_cpus: int | None = None, gpus_per_task: float | None = None, max_retries: int = 3,
          log: Callable[[str], Any] = print) -> SweepResult:
    """Run every run of ``runs`` (from :func:`plan`) to its budget; return what happened.

    With Ray (default): each run is a task with ``num_cpus=1``, ``num_gpus=gpus_per_task`` (None:
    the cluster's GPUs split evenly over the runs, 0 without GPUs; a run with a GPU share trains
    on CUDA) and ``max_retries`` (a task whose worker dies is retried and resumes from its
    checkpoint). ``address`` None starts a local Ray instance (``num_cpus`` CPUs, default all;
    node address 127.0.0.1, no dashboard) and stops it at the end; ``"auto"`` or ``host:port``
    joins an existing cluster; a Ray session this process already holds is used as it is and left
    running. Without Ray (``use_ray=False``) the runs go one after another in this process. A run
    that fails is reported (status "failed"), the others go on.
    """
    if not runs:
        raise ValueError("nothing to run: the sweep has no runs")
    result = SweepResult(root=runs[0].root)
    total = len(runs)

    def record(summary: dict[str, Any]) -> None:
        result.runs.append(summary)
        log(f"[{len(result.runs)}/{total}] {_describe(summary)}")

    if not use_ray:
        for run in runs:
            try:
                record(run_one(run))
            except Exception as error:   # report it, go on with the others
                record(_failure(run, error))
        return result
    if gpus_per_task is not None and not 0 <= gpus_per_task <= 1:
        raise ValueError(f"gpus_per_task must be in [0, 1], got {gpus_per_task}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     _node_ip_address="127.0.0.1", log_to_driver=True)
        else:
            ray.init(address=address, log_to_driver=True)
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
        share = gpu_share(cluster_gpus, total) if gpus_per_task is None else gpus_per_task
        if share > 0 and cluster_gpus == 0:
            raise ValueError(f"gpus_per_task={share} but the Ray cluster has no GPU: the tasks would wait "
                             "forever (use 0, or leave it unset to split the cluster's GPUs)")
        device = "cuda" if share > 0 else "cpu"
        where = "a local instance" if address is None else address
        log(f"sweep of {total} runs into {result.root} on Ray ({where}: "
            f"{ray.cluster_resources().get('CPU', 0):g} CPUs; {share:g} GPU per task)")
        task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=share, max_retries=max_retries,
                                             retry_exceptions=False, name="mbpo_sweep_run")
        pending = {task.remote(dataclasses.replace(run, device=device)): run for run in runs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                run = pending.pop(ref)
                try:
                    record(ray.get(ref))
                except Exception as error:   # the task raised, or its worker died past its retries
                    record(_failure(run, error))
    finally:
        if started_here:
            ray.shutdown()      # stops a local instance; only disconnects from a cluster
    return result


# --- the report ----------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """One run folder read back: its evaluation curve and bookkeeping.

    ``steps``/``returns``: the evaluated epochs (env steps with the warm-up counted, mean
    evaluation return). ``last_step``: the last logged env step. ``budget``: ``total_steps`` from
    config.json (the last step when there is none). ``seconds``: the summed ``seconds_total`` of
    its epochs (time in the training loop; work lost to a crash and redone is not counted).
    ``arm``: the arm folder it lies in ("" in a plain root). ``q_bias_normalized``: the last
    row's ``eval_q_bias_normalized`` (None where the run does not log it, or that cell is empty).
    """

    env_id: str
    algo: str
    seed: int
    path: Path
    steps: list[int]
    returns: list[float]
    last_step: int
    budget: int
    finished: bool
    seconds: float
    arm: str = ""
    q_bias_normalized: float | None = None

    def return_at(self, step: int) -> float | None:
        """The evaluation return of the policy at ``step``: the last evaluation at or before it;
        None when the run has not got that far or had no evaluation yet."""
        if self.last_step < step:
            return None
        before = [ret for s, ret in zip(self.steps, self.returns, strict=True) if s <= step]
        return before[-1] if before else None

    def steps_to(self, threshold: float) -> int | None:
        """The first evaluated step with a return >= ``threshold``; None when never (censored at
        ``last_step``)."""
        return next((s for s, ret in zip(self.steps, self.returns, strict=True) if ret >= threshold), None)

    @property
    def final_return(self) -> float | None:
        """The return at the budget (None for an unfinished run)."""
        return self.returns[-1] if self.finished and self.steps and self.steps[-1] == self.last_step else None

    def score(self, last: int) -> float | None:
        """The mean of the run's last ``last`` evaluation returns, the one at the budget among
        them: a score that averages over the swings from one evaluation to the next. None for an
        unfinished run, one whose last row was not evaluated, or one with fewer evaluations."""
        if self.final_return is None or len(self.returns) < last:
            return None
        return float(np.mean(self.returns[-last:]))


def read_run(folder: str | Path, arm: str = "") -> RunRecord:
    """Read ``<folder>/metrics.csv`` (and config.json, done.json when there) into a RunRecord;
    the env (:func:`env_from_folder`), algorithm and seed come from the folder's name
    ``<env>_<algo>_seed<k>``; ``arm`` is recorded as given."""
    folder = Path(folder)
    match = RUN_FOLDER.fullmatch(folder.name)
    if match is None:
        raise ValueError(f"{folder.name!r} is not a run folder name (<env>_<algo>_seed<k>)")
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise ValueError(f"{folder} has no metrics.csv")
    _check_complete_csv(metrics)
    rows = read_metrics(metrics)
    if not rows or "env_steps" not in rows[0] or "eval_return" not in rows[0]:
        raise ValueError(f"{metrics} has no rows with env_steps and eval_return")
    if any(math.isnan(row["env_steps"]) for row in rows):
        raise ValueError(f"{metrics} has a row without env_steps")
    evaluated = [(int(row["env_steps"]), row["eval_return"]) for row in rows]
    evaluated = [(s, ret) for s, ret in evaluated if not math.isnan(ret)]
    last_step = int(rows[-1]["env_steps"])
    config_file = folder / "config.json"
    budget = last_step
    if config_file.is_file():
        try:
            budget = int(json.loads(config_file.read_text(encoding="utf-8")).get("total_steps", last_step))
        except (ValueError, TypeError, AttributeError) as error:   # JSON, UTF-8 or a value not a count
            raise ValueError(f"{config_file} is not a run's config.json ({type(error).__name__}: "
                             f"{error})") from None
    finished = (folder / DONE_NAME).is_file() or last_step >= budget
    seconds = sum(value for row in rows if not math.isnan(value := row.get("seconds_total", math.nan)))
    q_bias = rows[-1].get(Q_BIAS_COLUMN, math.nan)
    return RunRecord(env_id=env_from_folder(folder.name), algo=match["algo"], seed=int(match["seed"]),
                     path=folder, steps=[s for s, _ in evaluated], returns=[ret for _, ret in evaluated],
                     last_step=last_step, budget=budget, finished=finished, seconds=seconds, arm=arm,
                     q_bias_normalized=None if math.isnan(q_bias) else q_bias)


def _check_complete_csv(path: Path) -> None:
    """Refuse a ``metrics.csv`` that is not UTF-8, or whose last row was cut off (a write that
    did not go through this library's atomic writer, or a copy that stopped short)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error})") from None
    if text and not text.endswith("\n"):
        raise ValueError(f"{path} ends in the middle of a row (its last line has no line end): truncated")
    lines = list(csv.reader(io.StringIO(text)))
    if lines and any(len(line) != len(lines[0]) for line in lines[1:]):
        bad = next(i for i, line in enumerate(lines[1:], start=2) if len(line) != len(lines[0]))
        raise ValueError(f"{path} line {bad} has a different number of cells than its header: truncated "
                         "or damaged")


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and RUN_FOLDER.fullmatch(path.name) is not None and (path / "metrics.csv").is_file()


def _holds_runs(folder: Path) -> bool:
    """Whether ``folder`` holds run folders directly (``<env>_<algo>_seed<k>`` with metrics.csv)."""
    return any(_is_run_folder(path) for path in folder.iterdir())


def _read_folder(folder: Path, arm: str, prefix: str) -> tuple[list[RunRecord], list[str], list[str]]:
    """The run folders directly under ``folder`` read back (``arm`` recorded in each), the other
    folders' names and one line per damaged run (names and lines start with ``prefix``)."""
    records, ignored, damaged = [], [], []
    for path in sorted(path for path in folder.iterdir() if path.is_dir()):
        if _is_run_folder(path):
            try:
                records.append(read_run(path, arm))
            except (ValueError, OSError) as error:
                damaged.append(f"{prefix}{path.name}: {error}")
                warnings.warn(f"skipping the damaged run {path}: {error}", RuntimeWarning, stacklevel=3)
        else:
            ignored.append(f"{prefix}{path.name}")
    return records, ignored, damaged


def _sort_records(records: list[RunRecord]) -> None:
    """Arm (as given), then env (presets' order), algorithm (mbpo, sac), seed."""
    algo_order = {name: i for i, name in enumerate(ALGORITHMS)}
    env_order = {name: i for i, name in enumerate(PRESETS)}
    records.sort(key=lambda r: (r.arm, env_order.get(r.env_id, len(env_order)), r.env_id,
                                algo_order.get(r.algo, len(algo_order)), r.algo, r.seed))


def collect_runs(root: str | Path) -> tuple[list[RunRecord], list[str], list[str]]:
    """The run folders directly under ``root`` (sorted by env, algorithm, seed), the names of
    the folders that were not run folders (ignored), and one line per damaged run folder that
    was skipped, naming the file and why (a warning is also issued for each)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder (a sweep's --root, e.g. runs/sweep)")
    records, ignored, damaged = _read_folder(root, "", "")
    _sort_records(records)
    return records, ignored, damaged


def collect_arms(root: str | Path) -> tuple[list[RunRecord], list[str], list[str]]:
    """The runs under ``root``, plain or in arm folders, as :func:`collect_runs` gives them.

    A root that holds run folders itself is plain: exactly :func:`collect_runs` (every record's
    ``arm`` is "", other folders are ignored, arm-like ones included). Otherwise each subfolder
    that holds run folders is an arm (``<root>/<arm>/<env>_<algo>_seed<k>``, as an arms sweep
    writes them): its runs carry ``arm``, sorted by arm name, env, algorithm and seed; ignored
    folders and damaged runs are named ``<arm>/<folder>`` (subfolders holding no run folder by
    their name alone). A damaged run is skipped with a warning, as in a plain root.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder (a sweep's --root, e.g. runs/sweep)")
    if _holds_runs(root):
        return collect_runs(root)
    records, ignored, damaged = [], [], []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        if not _holds_runs(folder):
            ignored.append(folder.name)
            continue
        got, other, broken = _read_folder(folder, folder.name, f"{folder.name}/")
        records += got
        ignored += other
        damaged += broken
    _sort_records(records)
    return records, ignored, damaged


def median_steps_to(reached: Sequence[int | None], bounds: Sequence[int]) -> int | str:
    """The step by which half the seeds had reached the threshold: the ceil(n/2)-th smallest of
    ``reached`` (None: never, censored at that run's ``bounds`` entry). When fewer than half got
    there it is only known to lie beyond the smallest censoring bound: ``">N"``."""
    n = len(reached)
    if n == 0:
        return ""
    got = sorted(step for step in reached if step is not None)
    k = math.ceil(n / 2)
    if len(got) >= k:
        return got[k - 1]
    return f">{min(bound for step, bound in zip(reached, bounds, strict=True) if step is None)}"


def _censored_steps(runs: Sequence[RunRecord], threshold: float) -> tuple[list[float], int | None]:
    """Each run's steps to ``threshold`` (``math.inf``: never, :mod:`mbpo_lib.intervals`' censored
    value) and the smallest censoring bound (the last step of a run that never got there)."""
    reached = [r.steps_to(threshold) for r in runs]
    bounds = [r.last_step for r, step in zip(runs, reached, strict=True) if step is None]
    return [math.inf if step is None else float(step) for step in reached], min(bounds, default=None)


def _step_text(value: float, bound: int | None) -> int | str:
    return int(value) if math.isfinite(value) else f">{bound}"


def interval_text(interval: Interval, bound: int | None) -> str:
    """A steps interval as the report prints it: ``1500-2250``; an infinite bound as ``>N`` with
    ``N`` the smallest censoring bound (``1500->5000``; both infinite: ``>5000``)."""
    if math.isinf(interval.low):
        return f">{bound}"
    return f"{_step_text(interval.low, bound)}-{_step_text(interval.high, bound)}"


def _round(value: float | None, digits: int = 1) -> float | str:
    if value is None or math.isnan(value):
        return ""
    return round(float(value), digits)


def report_steps(env_id: str, budget: int, at: Mapping[str, Sequence[int]] | None = None) -> tuple[int, ...]:
    """The step counts the report gives returns at for ``env_id``: ``at[env_id]`` when given,
    else :data:`REPORT_STEPS` within ``budget`` (none for a budget below them all)."""
    if at and env_id in at:
        return tuple(at[env_id])
    return tuple(step for step in REPORT_STEPS.get(env_id, ()) if step <= budget)


def check_score_last(score_last: int | None) -> None:
    """Refuse a ``score_last`` (how many of a run's last evaluations its score averages) that is
    not a whole number >= 1; None (no score) passes."""
    if score_last is None:
        return
    if isinstance(score_last, bool) or not isinstance(score_last, int) or score_last < 1:
        raise ValueError("--score-last must be a whole number of evaluations >= 1 (a run's score is the "
                         f"mean of its last N evaluation returns), got {score_last!r}")


def _scores(runs: Sequence[RunRecord], score_last: int) -> list[float]:
    return [score for r in runs if (score := r.score(score_last)) is not None]


def _score_cell(score: float | None) -> float | str:
    return "none" if score is None else _round(score)


def _score_text(interval: Interval) -> str:
    return f"{_round(interval.low)} to {_round(interval.high)}"


def _groups(records: Sequence[RunRecord]) -> dict[tuple[str, str, str], list[RunRecord]]:
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.arm, record.env_id, record.algo), []).append(record)
    return groups


def summarize(records: Sequence[RunRecord], thresholds: Mapping[str, float] | None = None,
              at: Mapping[str, Sequence[int]] | None = None,
              score_last: int | None = None) -> list[dict[str, Any]]:
    """One row per (arm, env, algo): seeds, finished seeds, budget, the median/mean/std of the
    final return (finished runs), the median of the final normalised Q bias (finished runs that
    log it; empty otherwise), the median return at fixed steps, steps to the threshold (median as
    :func:`median_steps_to`, its 95 % bootstrap interval as :func:`interval_text`, and per seed
    with censored runs as ``>N``), training seconds. The ``arm`` column only where records have
    one (an arms root).

    ``thresholds`` override :data:`DEFAULT_THRESHOLDS` per env; ``at`` overrides the fixed steps.
    With ``score_last`` N, also each run's score (:meth:`RunRecord.score`, the mean of its last N
    evaluations): ``score_last``, ``scored`` (runs with a score), ``score_median`` (the lower
    median, as for steps), ``score_ci95`` (its percentile-bootstrap interval, ``low to high``)
    and ``score_per_seed`` (``seed:score``, ``seed:none`` for a run without one).
    """
    check_score_last(score_last)
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    env_budget: dict[str, int] = {}
    for record in records:
        env_budget[record.env_id] = max(env_budget.get(record.env_id, 0), record.budget)
    rows = []
    for (arm, env, algo), runs in _groups(records).items():
        finals = [r.final_return for r in runs if r.final_return is not None]
        biases = [r.q_bias_normalized for r in runs if r.finished and r.q_bias_normalized is not None]
        budgets = sorted({r.budget for r in runs})
        row: dict[str, Any] = {
            **({"arm": arm} if arm else {}),
            "env_id": env, "algo": algo, "seeds": len(runs), "finished": sum(r.finished for r in runs),
            "budget": budgets[0] if len(budgets) == 1 else "/".join(map(str, budgets)),
            "final_return_median": _round(float(np.median(finals)) if finals else None),
            "final_return_mean": _round(float(np.mean(finals)) if finals else None),
            "final_return_std": _round(float(np.std(finals, ddof=1)) if len(finals) > 1 else None),
            "final_q_bias_normalized_median": _round(float(np.median(biases)) if biases else None, 3),
        }
        for step in report_steps(env, env_budget[env], at):
            values = [value for r in runs if (value := r.return_at(step)) is not None]
            row[f"median_return_at_{step}"] = _round(float(np.median(values)) if values else None)
        if score_last is not None:
            scores = _scores(runs, score_last)
            interval = median_interval(scores) if scores else None
            row.update(score_last=score_last, scored=f"{len(scores)}/{len(runs)}",
                       score_median=_round(interval.estimate) if interval else "",
                       score_ci95=_score_text(interval) if interval else "",
                       score_per_seed=" ".join(f"{r.seed}:{_score_cell(r.score(score_last))}" for r in runs))
        threshold = thresholds.get(env)
        if threshold is not None:
            reached = [r.steps_to(threshold) for r in runs]
            bounds = [r.last_step for r in runs]
            steps, bound = _censored_steps(runs, threshold)
            row.update(
                threshold=threshold,
                reached=f"{sum(step is not None for step in reached)}/{len(runs)}",
                steps_to_threshold_median=median_steps_to(reached, bounds),
                steps_to_threshold_ci95=interval_text(median_interval(steps), bound),
                steps_to_threshold=" ".join(f"{r.seed}:{_steps_text(r, threshold)}" for r in runs),
            )
        else:
            row.update(threshold="", reached="", steps_to_threshold_median="", steps_to_threshold_ci95="",
                       steps_to_threshold="")
        seconds = [r.seconds for r in runs]
        row.update(seconds_median=_round(float(np.median(seconds))),
                   seconds_sum=_round(float(np.sum(seconds))))
        rows.append(row)
    return rows


def _ratio_text(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def compare(records: Sequence[RunRecord], baseline: str, thresholds: Mapping[str, float] | None = None,
            confidence: float = 0.95, score_last: int | None = None) -> list[dict[str, Any]]:
    """Every arm's steps to the threshold against the ``baseline`` arm's, one row per (arm, env,
    algo) of an arms root (the baseline's own rows included, ratio 1).

    ``steps_ratio``: lower median of the arm's steps over the baseline's (:mod:`mbpo_lib.intervals`,
    censored runs as inf), > 1 where the arm needs more steps. Where one side's median is censored
    the ratio is only bounded, written ``>R`` (the arm's smallest censoring bound over the
    baseline's median) or ``<R``; both censored: empty. ``steps_ratio_ci95``: the bootstrap
    interval of the ratio (:func:`~mbpo_lib.intervals.ratio_interval`; ``inf`` for an unbounded
    end). With ``score_last`` N, also the scores (:meth:`RunRecord.score`): ``score_median`` and
    ``baseline_score_median`` (lower medians), ``score_difference`` (the arm's minus the
    baseline's) and ``score_difference_ci95`` (:func:`~mbpo_lib.intervals.difference_interval`,
    each side's runs resampled on their own), empty where a side has no scored run. Raises
    ``ValueError`` for records without arms, an unknown ``baseline`` (naming the arms there are),
    a baseline holding several algorithms for one env, or a ``score_last`` that is no count.
    """
    check_score_last(score_last)
    arms = list(dict.fromkeys(r.arm for r in records))
    if not any(arms):
        raise ValueError(f"--baseline {baseline!r} compares arms, but these runs are not in arm folders (a "
                         "plain root of <env>_<algo>_seed<k> folders); sweep with --arm to make arms")
    if baseline not in arms:
        raise ValueError(f"--baseline: no arm {baseline!r} here; the arms are {', '.join(arms)}")
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    groups = _groups(records)
    rows = []
    for (arm, env, algo), runs in groups.items():
        base = [r for r in records if r.arm == baseline and r.env_id == env]
        base_algos = sorted({r.algo for r in base})
        if len(base_algos) > 1:
            raise ValueError(f"--baseline {baseline!r} holds runs of {', '.join(base_algos)} for {env}: "
                             "compare against an arm with one algorithm")
        threshold = thresholds.get(env)
        row: dict[str, Any] = {"arm": arm, "env_id": env, "algo": algo,
                               "threshold": "" if threshold is None else threshold, "seeds": len(runs),
                               "reached": "", "steps_to_threshold_median": "", "baseline_reached": "",
                               "baseline_steps_median": "", "steps_ratio": "", "steps_ratio_ci95": ""}
        if threshold is not None:
            steps, bound = _censored_steps(runs, threshold)
            row.update(reached=f"{sum(map(math.isfinite, steps))}/{len(runs)}",
                       steps_to_threshold_median=_step_text(lower_median(steps), bound))
            if base:
                base_steps, base_bound = _censored_steps(base, threshold)
                mine, theirs = lower_median(steps), lower_median(base_steps)
                estimate, low, high = ratio_interval(steps, base_steps, confidence)
                if math.isfinite(mine) and math.isfinite(theirs):
                    ratio: float | str = round(estimate, 3)
                elif math.isfinite(theirs):
                    ratio = f">{_ratio_text(bound / theirs)}"
                elif math.isfinite(mine):
                    ratio = f"<{_ratio_text(mine / base_bound)}"
                else:
                    ratio = ""
                row.update(baseline_reached=f"{sum(map(math.isfinite, base_steps))}/{len(base)}",
                           baseline_steps_median=_step_text(theirs, base_bound), steps_ratio=ratio,
                           steps_ratio_ci95=f"{_ratio_text(low)}-{_ratio_text(high)}")
        if score_last is not None:
            scores, base_scores = _scores(runs, score_last), _scores(base, score_last)
            row.update(score_median=_round(lower_median(scores)) if scores else "",
                       baseline_score_median=_round(lower_median(base_scores)) if base_scores else "",
                       score_difference="", score_difference_ci95="")
            if scores and base_scores:
                difference = difference_interval(scores, base_scores, confidence)
                row.update(score_difference=_round(difference.estimate),
                           score_difference_ci95=_score_text(difference))
        rows.append(row)
    order = {name: i for i, name in enumerate([baseline, *[a for a in arms if a != baseline]])}
    rows.sort(key=lambda row: order[row["arm"]])      # stable: env and algo order kept within an arm
    return rows


COMPARISON_COLUMNS = ("arm", "env_id", "algo", "threshold", "seeds", "reached", "steps_to_threshold_median",
                      "baseline_reached", "baseline_steps_median", "steps_ratio", "steps_ratio_ci95")
SCORE_COMPARISON_COLUMNS = ("score_median", "baseline_score_median", "score_difference",
                            "score_difference_ci95")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The union of the rows' keys, the fixed-step columns in step order after the finals."""
    head = ["env_id", "algo", "seeds", "finished", "budget", "final_return_median", "final_return_mean",
            "final_return_std", "final_q_bias_normalized_median"]
    if any("arm" in row for row in rows):
        head.insert(0, "arm")
    tail = ["threshold", "reached", "steps_to_threshold_median", "steps_to_threshold_ci95",
            "steps_to_threshold", "seconds_median", "seconds_sum"]
    at = sorted({key for row in rows for key in row if key.startswith("median_return_at_")},
                key=lambda key: int(key.rsplit("_", 1)[1]))
    score = ["score_last", "scored", "score_median", "score_ci95", "score_per_seed"]
    return head + at + [key for key in score if any(key in row for row in rows)] + tail


def _csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as a plain aligned text table (only the columns some row fills)."""
    columns = [c for c in columns if any(row.get(c, "") != "" for row in rows)]
    cells = [[str(c) for c in columns]] + [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def plot_curves(records: Sequence[RunRecord], env_id: str, threshold: float | None = None):
    """Evaluation return against env steps for one env: a thin line per seed, and per algorithm
    the mean over seeds with a 95 % bootstrap band (:func:`mbpo_lib.diagnostics.learning_curves`,
    on the steps all its seeds cover); the paper's points within the runs' steps and the
    threshold (dotted) for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .diagnostics import PUBLISHED_RESULTS, learning_curves
    from .plotting import STYLE, series_style

    colors = STYLE["axes.prop_cycle"].by_key()["color"]
    runs = [r for r in records if r.env_id == env_id and r.steps]
    methods = {algo.upper(): [(r.steps, r.returns) for r in runs if r.algo == algo]
               for algo in dict.fromkeys(r.algo for r in runs)}
    last = max((r.steps[-1] for r in runs), default=0)
    reference = {name: [(step, ret) for step, ret in points if step <= last]
                 for name, points in PUBLISHED_RESULTS.get(env_id, {}).items()}
    with series_style():
        fig, ax = plt.subplots(figsize=(10.0, 4.5))
        for i, curves in enumerate(methods.values()):     # learning_curves colours methods in this order
            for steps, returns in curves:
                ax.plot(steps, returns, color=colors[i % len(colors)], alpha=0.35, lw=0.8)
        if threshold is not None:
            ax.axhline(threshold, color="0.5", ls=":", lw=1, label=f"threshold {threshold:g}")
        if methods:
            learning_curves(methods, reference={k: v for k, v in reference.items() if v} or None, ax=ax)
        ax.set(xlabel="real environment steps (random warm-up included; thin lines: each seed)",
               title=env_id)
    return fig


def arm_curve(runs: Sequence[RunRecord]) -> tuple[list[int], list[float], list[float], list[float]]:
    """One arm's curve over its seeds: the evaluated steps every seed covers, and at each the
    median, 25th and 75th percentile of the seeds' returns (:meth:`RunRecord.return_at`)."""
    runs = [r for r in runs if r.steps]
    if not runs:
        return [], [], [], []
    start, covered = max(r.steps[0] for r in runs), min(r.last_step for r in runs)
    steps = sorted({s for r in runs for s in r.steps if start <= s <= covered})
    if not steps:
        return [], [], [], []
    values = np.array([[r.return_at(s) for r in runs] for s in steps], dtype=float)
    median, low, high = (np.percentile(values, q, axis=1).tolist() for q in (50, 25, 75))
    return steps, median, low, high


def plot_arms(records: Sequence[RunRecord], env_id: str, threshold: float | None = None):
    """Evaluation return against env steps for one env of an arms root: per arm (and algorithm,
    where an arm holds several) the median over seeds with an interquartile band, on the steps all
    its seeds cover (:func:`arm_curve`); the legend names each arm and its seeds; the threshold
    dotted for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import STYLE, series_style

    colors = STYLE["axes.prop_cycle"].by_key()["color"]
    runs = [r for r in records if r.env_id == env_id]
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.arm, r.algo), []).append(r)
    several = {arm for arm in {a for a, _ in groups} if sum(a == arm for a, _ in groups) > 1}
    with series_style():
        fig, ax = plt.subplots(figsize=(10.0, 5.0))
        for i, ((arm, algo), group) in enumerate(groups.items()):
            steps, median, low, high = arm_curve(group)
            if not steps:
                continue
            color, style = colors[i % len(colors)], ("-", "--", ":")[(i // len(colors)) % 3]
            name = f"{arm} ({algo})" if arm in several else arm
            ax.plot(steps, median, color=color, ls=style, lw=1.8, label=f"{name}, {len(group)} seeds")
            ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
        if threshold is not None:
            ax.axhline(threshold, color="0.5", ls=":", lw=1, label=f"threshold {threshold:g}")
        ax.set(xlabel="real environment steps (random warm-up included)",
               ylabel="evaluation return", title=env_id)
        ax.legend(fontsize=8, loc="best", title="median over seeds, band 25th-75th percentile",
                  title_fontsize=8)
    return fig


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    def write(f) -> None:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)


def _steps_text(record: RunRecord, threshold: float | None) -> int | str:
    if threshold is None:
        return ""
    step = record.steps_to(threshold)
    return step if step is not None else f">{record.last_step}"


@dataclass
class Report:
    """What :func:`report` wrote: the summary rows, the files, the ignored folder names; with a
    baseline arm also the comparison rows, ``comparison.csv`` and its text table."""

    rows: list[dict[str, Any]]
    summary: Path
    runs: Path
    copies: list[Path]
    figures: list[Path]
    ignored: list[str]
    table: str
    damaged: list[str] = field(default_factory=list)
    arms: list[str] = field(default_factory=list)
    comparison_rows: list[dict[str, Any]] = field(default_factory=list)
    comparison: Path | None = None
    comparison_table: str = ""


def report(root: str | Path, out: str | Path | None = None, *, thresholds: Mapping[str, float] | None = None,
           at: Mapping[str, Sequence[int]] | None = None, figures: bool = True,
           baseline: str | None = None, score_last: int | None = None) -> Report:
    """Aggregate the run folders under ``root`` into ``out`` (default ``<root>/report``).

    ``root`` is plain or holds arm folders (:func:`collect_arms`). Writes, each atomically:
    ``sweep_summary.csv`` (:func:`summarize`), ``sweep_runs.csv`` (one row per run), a copy of
    each run's ``metrics.csv`` as ``<env>_<algo>_seed<k>.csv`` (in ``<arm>/`` for an arm's run;
    so results can be committed, ``runs/`` is not) and ``<env>_curves.png`` per env (unless
    ``figures`` is False; with arms, :func:`plot_arms`). With ``baseline`` (an arm's name):
    ``comparison.csv`` (:func:`compare`); the baseline is checked before anything is written.
    With ``score_last`` N, each run's score, the mean of its last N evaluation returns
    (:meth:`RunRecord.score`), in the summary, per run (``score``) and in the comparison (the
    difference of medians with its interval): for budgets where no run reaches the threshold.
    Returns a :class:`Report` whose ``table`` is the summary as text.
    """
    check_score_last(score_last)
    records, ignored, damaged = collect_arms(root)
    if not records:
        raise ValueError("no run folders (<env>_<algo>_seed<k> with metrics.csv, or "
                         f"<arm>/<env>_<algo>_seed<k>) in {root}")
    arms = list(dict.fromkeys(r.arm for r in records if r.arm))
    comparison_rows = (compare(records, baseline, thresholds, score_last=score_last) if baseline is not None
                       else [])
    if baseline is not None:            # the baseline arm's rows first, everywhere
        records = sorted(records, key=lambda r: r.arm != baseline)
        arms = sorted(arms, key=lambda arm: arm != baseline)
    out = Path(out) if out is not None else Path(root) / "report"
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve().parent == Path(root).resolve():   # the default <root>/report is no stray folder
        ignored = [name for name in ignored if name != out.name]
    merged = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    rows = summarize(records, thresholds, at, score_last)
    columns = _columns(rows)
    summary = out / SUMMARY_NAME
    atomic_write(summary, lambda f: f.write(_csv_bytes(rows, columns)))
    per_run = [{**({"arm": r.arm} if arms else {}), "env_id": r.env_id, "algo": r.algo, "seed": r.seed,
                "budget": r.budget, "last_step": r.last_step, "finished": r.finished,
                "final_return": _round(r.final_return), "threshold": merged.get(r.env_id, ""),
                "steps_to_threshold": _steps_text(r, merged.get(r.env_id)),
                "final_q_bias_normalized": _round(r.q_bias_normalized, 3),
                **({"score": _round(r.score(score_last))} if score_last is not None else {}),
                "seconds": _round(r.seconds)}
               for r in records]
    runs_csv = out / RUNS_NAME
    atomic_write(runs_csv, lambda f: f.write(_csv_bytes(per_run, list(per_run[0]))))
    copies = []
    for r in records:
        target = out / r.arm / f"{run_name(r.env_id, r.algo, r.seed)}.csv"
        data = (r.path / "metrics.csv").read_bytes()
        atomic_write(target, lambda f, data=data: f.write(data))
        copies.append(target)
    pictures = []
    if figures:
        for env in dict.fromkeys(r.env_id for r in records):
            path = out / f"{env_folder(env)}_curves.png"
            plot = plot_arms if arms else plot_curves
            _save_png(plot(records, env, merged.get(env)), path)
            pictures.append(path)
    blocks = []
    for env in dict.fromkeys(row["env_id"] for row in rows):
        env_rows = [row for row in rows if row["env_id"] == env]
        blocks.append(format_table(env_rows, columns))
    comparison, comparison_table = None, ""
    if baseline is not None:
        comparison = out / COMPARISON_NAME
        columns = COMPARISON_COLUMNS + (SCORE_COMPARISON_COLUMNS if score_last is not None else ())
        atomic_write(comparison, lambda f: f.write(_csv_bytes(comparison_rows, columns)))
        comparison_table = format_table(comparison_rows, columns)
    return Report(rows=rows, summary=summary, runs=runs_csv, copies=copies, figures=pictures, ignored=ignored,
                  table="\n\n".join(blocks), damaged=damaged, arms=arms, comparison_rows=comparison_rows,
                  comparison=comparison, comparison_table=comparison_table)
