"""The command line: ``python -m mbpo_lib train``, ``evaluate``, ``plot``, ``sweep`` and ``report``.

Examples::

    python -m mbpo_lib train --env Hopper-v5 --seed 0                 # the paper's Hopper run
    python -m mbpo_lib train --env InvertedPendulum-v5 --smoke        # a tiny run (CI)
    python -m mbpo_lib train --env Hopper-v5 --run-dir runs/h0 --resume   # continue after a crash
    python -m mbpo_lib train --env Hopper-v5 --algo sac               # SAC alone, same budget
    python -m mbpo_lib train --env Hopper-v5 --set ensemble.max_epochs=30 --set real_ratio=0.1
    python -m mbpo_lib train --env Hopper-v5 --set ensemble.matmul_precision=medium \\
        --set sac.matmul_precision=medium                             # faster products
    python -m mbpo_lib evaluate runs/h0/checkpoint.pt --episodes 10
    python -m mbpo_lib evaluate runs/h0/checkpoint.pt --video h0.mp4   # and a clip of one episode
    python -m mbpo_lib plot runs/h0 runs/h1 --output curves.png
    python -m mbpo_lib sweep --envs InvertedPendulum-v5,Hopper-v5 --algos mbpo,sac --seeds 0-4
    python -m mbpo_lib sweep --envs Hopper-v5 --seeds 0-4 --address auto --steps mbpo=125000,sac=125000
    python -m mbpo_lib report runs/sweep --out results --threshold Hopper-v5=3000
    python -m mbpo_lib sweep --envs InvertedPendulum-v5 --steps 5000 --root runs/controls \
        --arm mbpo --arm sac-g10:algo=sac,updates_per_step=10 --arm k15:rollout_schedule=[1,15,15,15]
    python -m mbpo_lib report runs/controls --out results/controls --baseline mbpo   # arms vs mbpo
    python -m mbpo_lib train --env MyEnv-v0 --env-module mypkg.envs --termination never   # your task
    python -m mbpo_lib train --env Reacher-v5 --termination learned --reward mypkg.rewards:reacher
    python -m mbpo_lib sweep --envs MyEnv-v0 --env-module mypkg.envs --termination mypkg.envs:done

A run writes ``config.json``, ``metrics.csv``, ``metrics.jsonl`` and ``checkpoint.pt`` into its
run folder (default ``runs/<env>-<algo>-seed<seed>``). A sweep (:mod:`mbpo_lib.sweep`) runs every
(env, algo, seed) as a Ray task into ``<root>/<env>_<algo>_seed<k>`` (with ``--arm``: every (arm,
env, seed) into ``<root>/<arm>/<env>_<algo>_seed<k>``), skipping finished runs and resuming
interrupted ones; ``report`` aggregates those folders into a table and figures, and compares arms
with a ``--baseline`` arm.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

import torch

from .config import (
    PRESETS,
    MBPOConfig,
    apply_overrides,
    flat_config,
    parse_override,
    preset,
    schedule_variants,
)
from .envs import check_env_id, evaluate, near_preset
from .files import CheckpointWarning, CheckpointWriteError, checkpoint_exists, previous_checkpoint
from .mbpo import CHECKPOINT_NAME, MBPO, TrainingDivergedError
from .runtime import default_device

RUN_FILES = ("config.json", "metrics.csv", "metrics.jsonl", "config_history.jsonl", CHECKPOINT_NAME,
             previous_checkpoint(CHECKPOINT_NAME).name)


class UserError(ValueError):
    """A mistake on the command line: one ``error:`` line, exit status 2, nothing changed."""


def _device(text: str) -> torch.device:
    if text == "auto":
        return default_device()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {text!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {text}: this machine's PyTorch sees no CUDA GPU; use --device cpu "
                        "(or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {text}: there are {torch.cuda.device_count()} CUDA device(s), "
                        f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {text}: mbpo_lib runs on cpu or cuda")
    return device


def _asked_config(args: argparse.Namespace, env_id: str, seed: int, algo: str) -> MBPOConfig:
    """The config a fresh run of this command line gets."""
    overrides: dict = {"seed": seed}
    if algo == "sac":   # SAC alone: all real data, no model, SAC's usual update ratio
        overrides.update(real_ratio=1.0, updates_per_step=1)
    for name in ("total_steps", "real_ratio", "updates_per_step", "checkpoint_every", "eval_episodes"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    schedule = args.schedule or "official"
    if schedule not in schedule_variants(env_id):
        raise UserError(f"--schedule {schedule!r}: {env_id} has {', '.join(schedule_variants(env_id))}")
    task = {name: getattr(args, name) for name in TASK_FLAGS if getattr(args, name, None) is not None}
    if env_id not in PRESETS:
        check_env_id(env_id, task.get("env_module"))   # registered (after --env-module's import)?
    if env_id not in PRESETS and "termination" not in task:
        raise UserError(f"--env {env_id} has no preset, so give its termination: --termination never "
                        "(only time limits end it), --termination learned, or --termination "
                        "package.module:function")
    config = preset(env_id, schedule=schedule, **task)
    if args.smoke:
        config = config.smoke()
    return apply_overrides(config, args.set, **overrides)


# The flags that name a task of your own: MBPOConfig fields of the same names.
TASK_FLAGS = ("env_module", "termination", "reward")


def _resume_differences(args: argparse.Namespace, run: MBPOConfig) -> list[str]:
    """``"field: run's value -> command line's"`` for each setting the command line gives
    explicitly that differs from the run (flags left out are not compared)."""
    have = flat_config(run.to_dict())
    want: dict = {}
    differences = []
    run_algo = "sac" if run.real_ratio == 1.0 else "mbpo"
    if args.algo is not None and args.algo != run_algo:
        differences.append(f"algo: {run_algo!r} -> {args.algo!r}")
    if args.env is not None:
        want["env_id"] = args.env
    if args.seed is not None:
        want["seed"] = args.seed
    for name in TASK_FLAGS:
        if getattr(args, name, None) is not None:
            want[name] = getattr(args, name)
    for name in ("total_steps", "real_ratio", "updates_per_step", "checkpoint_every", "eval_episodes"):
        if getattr(args, name) is not None:
            want[name] = getattr(args, name)
    for pair in args.set:
        key, value = parse_override(pair)
        want[key] = list(value) if isinstance(value, tuple) else value
    if args.smoke or args.schedule is not None:   # what those flags make of the run's preset
        own = {name: getattr(run, name) for name in TASK_FLAGS}   # the run's task where not given
        task_args = argparse.Namespace(**{**vars(args), **{name: getattr(args, name, None) or own[name]
                                                           for name in TASK_FLAGS}})
        try:
            asked = flat_config(_asked_config(task_args, run.env_id, run.seed, run_algo).to_dict())
        except ValueError as error:
            differences.append(f"the command line's settings: {error}")
        else:
            base = preset(run.env_id, **{name: value for name, value in own.items() if value is not None},
                          env_kwargs=run.env_kwargs)
            touched = {"rollout_schedule"} if args.schedule is not None else set()
            if args.smoke:
                touched |= {key for key, value in flat_config(base.smoke().to_dict()).items()
                            if flat_config(base.to_dict()).get(key) != value} - {"total_steps"}
            want.update({key: asked[key] for key in touched if key not in want})
    differences += [f"{key}: {have.get(key, '(no such field)')!r} -> {value!r}"
                    for key, value in sorted(want.items()) if have.get(key) != value]
    return differences


def _load(checkpoint: str | Path, **kwargs) -> MBPO:
    """:meth:`MBPO.load`, printing a fall-back to the previous checkpoint as a ``warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CheckpointWarning)
        trainer = MBPO.load(checkpoint, **kwargs)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return trainer


def _resume(args: argparse.Namespace, run_dir: Path, device: torch.device) -> MBPO:
    """The run in ``run_dir``, refusing any setting on the command line that differs from it."""
    checkpoint = run_dir / CHECKPOINT_NAME
    if not checkpoint_exists(checkpoint):
        raise UserError(f"--resume: {run_dir} has no checkpoint ({CHECKPOINT_NAME}) to continue from "
                        "(a mistyped --run-dir? a run with --checkpoint-every 0 saves only at its end)")
    trainer = _load(checkpoint, device=device)
    run = trainer.config
    differences = _resume_differences(args, run)
    if differences:
        raise UserError(f"--resume: the command line differs from the run in {run_dir} ("
                        + "; ".join(differences) + "); a resumed run keeps its settings. Leave these "
                        "flags out, extend the budget with --total-steps N or --extend-by N, or choose "
                        "another --run-dir for other settings")
    target = args.extend_to or (run.total_steps + args.extend_by if args.extend_by else None)
    if target is not None:
        trainer.extend(target)
        print(f"budget extended from {run.total_steps} to {target} real steps", file=sys.stderr)
    print(f"resuming {trainer.last_checkpoint[0]} at env step {trainer.env_steps} of "
          f"{trainer.config.total_steps}", file=sys.stderr)
    return trainer


def _train(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be an int >= 1, got {args.threads}")
    if args.video_every is not None and args.video_every < 1:
        raise UserError(f"--video-every must be an int >= 1 (epochs), got {args.video_every}")
    if (args.extend_to or args.extend_by) and not args.resume:
        raise UserError("--total-steps and --extend-by extend a run that exists: add --resume")
    if args.extend_to and args.extend_by:
        raise UserError("give --total-steps N or --extend-by N, not both")
    if args.resume and args.overwrite:
        raise UserError("--resume continues the run in --run-dir, --overwrite replaces it: choose one")
    if not args.resume and args.env is None:
        raise UserError("--env is required (unless --resume continues a run)")
    device = _device(args.device)
    if args.resume and args.run_dir is None and (args.env is None):
        raise UserError("--resume needs --run-dir (or --env, --algo and --seed naming the default folder)")
    run_dir = Path(args.run_dir or f"runs/{args.env}-{args.algo or 'mbpo'}-seed{args.seed or 0}")
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if args.resume:
        trainer = _resume(args, run_dir, device)
    else:
        config = _asked_config(args, args.env, args.seed or 0, args.algo or "mbpo")
        if existing and not args.overwrite:
            raise UserError(f"{run_dir} holds a run ({', '.join(existing)}); pass --resume to continue it, "
                            "--overwrite to replace it, or choose another --run-dir (nothing was changed)")
        for name in existing:   # --overwrite: the old run's files go, nothing else in the folder
            (run_dir / name).unlink()
        trainer = MBPO(config, device=device, run_dir=run_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    callbacks = []
    if args.video_every is not None:   # a clip into the run folder every N epochs (mbpo_lib.render)
        from .render import RenderingUnavailable, check_rendering, epoch_video_callback

        try:
            callbacks.append(epoch_video_callback(run_dir, args.video_every))
            check_rendering(trainer.config.env_id)
        except RenderingUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        history = trainer.train(progress=False if args.no_progress else None, callbacks=callbacks)
    except KeyboardInterrupt as stop:
        print(f"\n{stop}", file=sys.stderr)
        return 130
    last = history[-1] if history else {}
    print(json.dumps({"run_dir": str(run_dir), "env_steps": trainer.env_steps,
                      "eval_return": last.get("eval_return")}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.video is not None:   # a bad path fails before any work
        from .render import RenderingUnavailable, check_clip_path, check_rendering, render_episode, write_clip

        check_clip_path(args.video)
    trainer = _load(args.checkpoint, run_dir=None)
    env_id = trainer.config.env_id
    if args.video is not None:
        try:
            check_rendering(env_id)
        except RenderingUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    mean, std = evaluate(trainer.agent, env_id, episodes=args.episodes, seed=args.seed,
                         env_module=trainer.config.env_module, **trainer.config.env_kwargs)
    result = {"env_id": env_id, "env_steps": trainer.env_steps,
              "episodes": args.episodes, "return_mean": mean, "return_std": std}
    if args.video is not None:   # the first evaluated episode: evaluate starts it from reset(seed)
        episode = render_episode(env_id, trainer.agent, seed=args.seed,
                                 title=f"{env_id}, after {trainer.env_steps:,} steps")
        result.update(video=str(write_clip(episode, args.video)), video_return=episode.episode_return)
    print(json.dumps(result))
    return 0


def _plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import apply_style

    apply_style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for folder in args.runs:
        path = Path(folder) / "metrics.csv"
        if not path.is_file():
            raise ValueError(f"{folder} has no metrics.csv (is it a run folder of python -m mbpo_lib train?)")
        with open(path) as f:
            rows = [row for row in csv.DictReader(f) if row["eval_return"] not in ("", "nan")]
        ax.plot([int(r["env_steps"]) for r in rows], [float(r["eval_return"]) for r in rows], marker="o",
                ms=3, label=Path(folder).name)
    ax.set(xlabel="real environment steps (warm-up included)", ylabel="evaluation return")
    ax.legend(fontsize=9)
    output = Path(args.output or Path(args.runs[0]) / "eval_return.png")
    fig.savefig(output, dpi=120, bbox_inches="tight")
    print(output)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from . import sweep

    envs = sweep.parse_envs(args.envs, task=args.termination is not None)
    if args.arm and args.algos is not None:
        raise UserError(f"--algos {args.algos} with --arm: each arm names its algorithm (NAME:algo=sac,...; "
                        "default mbpo), so leave --algos out")
    arms = sweep.parse_arms(args.arm)
    algos = [] if arms else sweep.parse_names(args.algos or "mbpo,sac", sweep.ALGORITHMS, "--algos")
    seeds = sweep.parse_seeds(args.seeds)
    budgets = sweep.parse_budgets(args.total_steps, envs, algos or list(dict.fromkeys(a.algo for a in arms)))
    runs = sweep.plan(envs, algos, seeds, root=args.root, budgets=budgets, overrides=args.set,
                      smoke=args.smoke, schedule=args.schedule, device=args.device,
                      env_module=args.env_module, termination=args.termination, reward=args.reward,
                      arms=arms)
    try:
        result = sweep.sweep(runs, use_ray=not args.no_ray, address=args.address, num_cpus=args.num_cpus,
                             gpus_per_task=args.gpus_per_task, max_retries=args.max_retries)
    except (ImportError, ConnectionError) as error:   # no Ray installed, or no cluster at --address
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items())
    print(f"sweep done: {counts}; results in {result.root} (python -m mbpo_lib report {result.root})")
    print(json.dumps({"root": result.root, "runs": result.runs}))
    for failed in result.failed:
        print(f"error: {failed['run']}: {failed['error']}", file=sys.stderr)
    return 1 if result.failed else 0


def _report(args: argparse.Namespace) -> int:
    from . import sweep

    thresholds = sweep.parse_env_values(args.threshold, "--threshold", float)
    at = sweep.parse_env_values(args.at, "--at", sweep.parse_step_list)
    with warnings.catch_warnings():   # a damaged run is reported below as one warning: line
        warnings.simplefilter("ignore", RuntimeWarning)
        done = sweep.report(args.root, args.out, thresholds=thresholds, at=at, figures=not args.no_figures,
                            baseline=args.baseline, score_last=args.score_last)
    print(done.table)
    if done.comparison is not None:
        scores = ("" if args.score_last is None else "; score_difference: the arm's median score minus the "
                  "baseline's, with its 95% interval")
        print(f"\nagainst the baseline arm {args.baseline} (steps_ratio: the arm's median steps to the "
              f"threshold over the baseline's; > 1 is slower{scores}):\n{done.comparison_table}")
    if done.ignored:
        print(f"\n(ignored, not run folders: {', '.join(done.ignored)})")
    for line in done.damaged:
        print(f"warning: skipped the damaged run {line}", file=sys.stderr)
    print(f"\nsummary: {done.summary}\nper run: {done.runs}\nmetrics copies: {len(done.copies)} in "
          f"{done.summary.parent}" + "".join(f"\nfigure: {path}" for path in done.figures)
          + (f"\ncomparison: {done.comparison}" if done.comparison is not None else ""))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported as one ``error:`` line (and where to find help), rc 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _env_id(text: str) -> str:
    """A preset's id, or any other id (a task of your own: whether it is registered is checked
    once --env-module is imported); a preset's near-miss (``Hopper-v4``) is refused with a hint."""
    if text in PRESETS:
        return text
    close = near_preset(text)
    if close in PRESETS:
        raise argparse.ArgumentTypeError(f"unknown env id {text!r}; did you mean {close}? mbpo_lib trains on "
                                         f"{', '.join(PRESETS)} (and on tasks of your own: --env-module)")
    if not text or any(char.isspace() for char in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Gymnasium id (e.g. Hopper-v5 or MyEnv-v0)")
    return text


def _add_task_flags(parser: argparse.ArgumentParser) -> None:
    """--env-module, --termination and --reward: a task of your own (train and sweep)."""
    parser.add_argument("--env-module", metavar="MODULE",
                        help="module to import first, the one that registers your env id with "
                             "gymnasium.register (e.g. mypkg.envs); recorded in the run's config")
    parser.add_argument("--termination", metavar="RULE",
                        help="where model rollouts end: 'never' (only time limits end the task), 'learned' "
                             "(a classifier fitted with the model), 'package.module:function' (fn(obs, act, "
                             "next_obs) -> bool [B]), or 'preset' (a preset's exact rule, its default); "
                             "required for an env without a preset")
    parser.add_argument("--reward", metavar="FUNCTION",
                        help="'package.module:function' (fn(obs, act, next_obs) -> [B]) used in rollouts "
                             "instead of the model's predicted reward")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m mbpo_lib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train MBPO (or SAC alone) on one task")
    train.add_argument("--env", type=_env_id, metavar="ENV_ID",
                       help=f"one of {', '.join(PRESETS)}, or a task of your own with --termination "
                            "(with --resume: the run's, if left out)")
    _add_task_flags(train)
    train.add_argument("--algo", choices=("mbpo", "sac"), help="mbpo (default) or sac alone")
    train.add_argument("--seed", type=int, help="seed of a new run (default 0)")
    train.add_argument("--run-dir", "--out",
                       help="where metrics and checkpoints go (default runs/<env>-<algo>-seed<seed>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run folder's run from its checkpoint; any setting given on "
                            "the command line must be the run's own")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run in --run-dir (its config, metrics and checkpoints)")
    train.add_argument("--total-steps", dest="extend_to", type=int, metavar="N",
                       help="with --resume: raise the run's budget to N real steps")
    train.add_argument("--extend-by", type=int, metavar="N",
                       help="with --resume: raise the run's budget by N real steps")
    train.add_argument("--smoke", action="store_true", help="the preset's tiny CI variant")
    train.add_argument("--schedule",
                       help="rollout schedule variant (Hopper-v5 also has 'paper appendix')")
    train.add_argument("--steps", dest="total_steps", type=int,
                       help="budget in real steps, warm-up included (default: the preset's)")
    train.add_argument("--set", "--preset-override", dest="set", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="override a preset field, e.g. --set real_ratio=0.1 --set ensemble.max_epochs=30 "
                            "(repeatable; see mbpo_lib.MBPOConfig)")
    train.add_argument("--real-ratio", type=float)
    train.add_argument("--updates-per-step", type=int)
    train.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints (0: only at the end)")
    train.add_argument("--eval-episodes", type=int)
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    train.add_argument("--threads", type=_positive, help="torch.set_num_threads, >= 1 (default: torch's)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--video-every", type=int, metavar="N",
                       help="write a clip of the deterministic policy into the run folder every N epochs "
                            "(video_step<steps>.mp4; off by default)")
    train.set_defaults(run=_train)
    ev = commands.add_parser("evaluate", help="evaluate a checkpoint's deterministic policy")
    ev.add_argument("checkpoint")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=123_456)
    ev.add_argument("--video", metavar="PATH",
                    help="also write a clip of the first evaluated episode (.mp4, .gif or .webp)")
    ev.set_defaults(run=_evaluate)
    plot = commands.add_parser("plot", help="evaluation return against env steps of one or more runs")
    plot.add_argument("runs", nargs="+", help="run folders (with metrics.csv)")
    plot.add_argument("--output", help="PNG to write (default: <first run>/eval_return.png)")
    plot.set_defaults(run=_plot)
    sw = commands.add_parser(
        "sweep", help="many (env, algo, seed) runs as Ray tasks, local or on a cluster",
        description="Every (env, algo, seed) as a Ray task (1 CPU, a GPU share when the cluster has "
                    "GPUs) into <root>/<env>_<algo>_seed<k>; with --arm, every (arm, env, seed) into "
                    "<root>/<arm>/<env>_<algo>_seed<k>, submitted in the arms' order. Finished runs are "
                    "skipped, runs with a checkpoint resume from it, so a sweep can simply be started again.")
    sw.add_argument("--envs", required=True, help=f"comma-separated, from {', '.join(PRESETS)}, or tasks "
                                                  "of your own with --termination (and --env-module)")
    _add_task_flags(sw)
    sw.add_argument("--algos", help="comma-separated, from mbpo, sac (default both; not with --arm)")
    sw.add_argument("--arm", action="append", default=[], metavar="SPEC",
                    help="a named variant of the preset (repeatable, run in the order given): NAME alone "
                         "(the preset as it is) or NAME:algo=sac,steps=15000,updates_per_step=10 (algo= "
                         "mbpo|sac, default mbpo; steps= this arm's budget, default --steps; any other "
                         "key=value as --set, after the sweep's --set; lists as key=[1,15,15,15])")
    sw.add_argument("--seeds", default="0-4", help="'0-4' (inclusive), '0,2,5' or '0-2,7' (default 0-4)")
    sw.add_argument("--root", default="runs/sweep", help="where the run folders go (default runs/sweep); "
                    "on a cluster, a path every node sees")
    sw.add_argument("--steps", dest="total_steps", metavar="BUDGETS",
                    help="budget in real steps, warm-up included: N for all, or per algorithm/env "
                         "'mbpo=5000,sac=20000', 'Hopper-v5=50000', 'Hopper-v5/sac=50000' (default: "
                         "each preset's)")
    sw.add_argument("--set", "--preset-override", dest="set", action="append", default=[],
                    metavar="KEY=VALUE", help="override a preset field in every run, as train's --set "
                                              "(e.g. --set checkpoint_every=1)")
    sw.add_argument("--smoke", action="store_true", help="the presets' tiny CI variants")
    sw.add_argument("--schedule", default="official", help="rollout schedule variant, for every env")
    sw.add_argument("--address", help="an existing Ray cluster ('auto' or host:port; one with token "
                                      "authentication also needs RAY_AUTH_MODE=token and its token); "
                                      "default: start a local instance on 127.0.0.1 and stop it at the end")
    sw.add_argument("--num-cpus", type=int, help="CPUs of the local instance (default: all)")
    sw.add_argument("--gpus-per-task", type=float,
                    help="GPU share per run (default: the cluster's GPUs split over the runs, 0 without)")
    sw.add_argument("--max-retries", type=int, default=3,
                    help="Ray retries of a run whose worker died; each resumes from the checkpoint (3)")
    sw.add_argument("--no-ray", action="store_true",
                    help="no Ray: the runs one after another in this process (debugging)")
    sw.add_argument("--device", default="auto",
                    help="with --no-ray: auto (CUDA when present), cpu, cuda (on Ray: from the GPU share)")
    sw.set_defaults(run=_sweep)
    rp = commands.add_parser(
        "report", help="aggregate a sweep's run folders into a table, metrics copies and figures",
        description="Per arm (in a root of arm folders), env and algorithm: seeds, median/mean return "
                    "at the budget, median return at fixed steps, steps to a return threshold (never "
                    "reached: '>N', censored) with a 95% bootstrap interval, the final normalised Q bias "
                    "where runs log it, training seconds. Writes sweep_summary.csv, sweep_runs.csv, "
                    "[<arm>/]<env>_<algo>_seed<k>.csv and <env>_curves.png into --out (and comparison.csv "
                    "with --baseline).")
    rp.add_argument("root", help="the sweep's --root (holds <env>_<algo>_seed<k> folders, or arm folders "
                                 "holding them)")
    rp.add_argument("--out", help="output folder (default <root>/report; e.g. results to commit them)")
    rp.add_argument("--threshold", action="append", default=[], metavar="ENV=VALUE",
                    help="return threshold for steps-to-threshold (defaults: " + ", ".join(
                        f"{env} {value:g}" for env, value in _default_thresholds().items()) + ")")
    rp.add_argument("--at", action="append", default=[], metavar="ENV=S1,S2",
                    help="step counts to report the median return at (default per env, within the budget)")
    rp.add_argument("--no-figures", action="store_true", help="skip the curve figures")
    rp.add_argument("--baseline", metavar="ARM",
                    help="with arm folders: compare every arm's steps to the threshold with this arm's "
                         "(a ratio of medians with a bootstrap interval; also written as comparison.csv)")
    rp.add_argument("--score-last", type=int, metavar="N",
                    help="also score each finished run by the mean of its last N evaluation returns (for "
                         "budgets where runs never reach the threshold): the median score with a bootstrap "
                         "interval, and with --baseline the difference of medians with its interval")
    rp.set_defaults(run=_report)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TrainingDivergedError, CheckpointWriteError) as error:
        # bad settings, a bad checkpoint, a broken environment or a diverged run: a clear message,
        # no traceback (EnvironmentDataError is a ValueError). Anything else is a bug: its traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2


def _default_thresholds() -> dict[str, float]:
    from .sweep import DEFAULT_THRESHOLDS

    return dict(DEFAULT_THRESHOLDS)


if __name__ == "__main__":
    sys.exit(main())
