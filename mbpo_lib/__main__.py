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
    python -m mbpo_lib plot runs/h0 runs/h1 --output curves.png
    python -m mbpo_lib sweep --envs InvertedPendulum-v5,Hopper-v5 --algos mbpo,sac --seeds 0-4
    python -m mbpo_lib sweep --envs Hopper-v5 --seeds 0-4 --address auto --steps mbpo=125000,sac=125000
    python -m mbpo_lib report runs/sweep --out results --threshold Hopper-v5=3000

A run writes ``config.json``, ``metrics.csv``, ``metrics.jsonl`` and ``checkpoint.pt`` into its
run folder (default ``runs/<env>-<algo>-seed<seed>``). A sweep (:mod:`mbpo_lib.sweep`) runs every
(env, algo, seed) as a Ray task into ``<root>/<env>_<algo>_seed<k>``, skipping finished runs and
resuming interrupted ones; ``report`` aggregates those folders into a table and figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

from .config import PRESETS, apply_overrides, preset, schedule_variants
from .envs import evaluate
from .mbpo import CHECKPOINT_NAME, MBPO
from .runtime import default_device


def _train(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir or f"runs/{args.env}-{args.algo}-seed{args.seed}")
    checkpoint = run_dir / CHECKPOINT_NAME
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device() if args.device == "auto" else torch.device(args.device)
    if checkpoint.exists():
        if args.set:
            raise ValueError("--set cannot change a run that exists: a resumed run keeps its checkpoint's "
                             "config (choose a new --run-dir for other settings)")
        if not args.resume:
            print(f"error: {checkpoint} exists; pass --resume to continue that run, or choose another "
                  "--run-dir (nothing was changed)", file=sys.stderr)
            return 2
        trainer = MBPO.load(checkpoint, device=device)
        print(f"resuming {checkpoint} at env step {trainer.env_steps} of {trainer.config.total_steps}")
    else:
        overrides = {"seed": args.seed}
        if args.algo == "sac":   # SAC alone: all real data, no model, SAC's usual update ratio
            overrides.update(real_ratio=1.0, updates_per_step=1)
        for name in ("total_steps", "real_ratio", "updates_per_step", "checkpoint_every", "eval_episodes"):
            value = getattr(args, name)
            if value is not None:
                overrides[name] = value
        config = preset(args.env, schedule=args.schedule)
        if args.smoke:
            config = config.smoke()
        config = apply_overrides(config.with_overrides(**overrides), args.set)
        trainer = MBPO(config, device=device, run_dir=run_dir)
    try:
        history = trainer.train(progress=False if args.no_progress else None)
    except KeyboardInterrupt as stop:
        print(f"\n{stop}", file=sys.stderr)
        return 130
    last = history[-1] if history else {}
    print(json.dumps({"run_dir": str(run_dir), "env_steps": trainer.env_steps,
                      "eval_return": last.get("eval_return")}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    trainer = MBPO.load(args.checkpoint, run_dir=None)
    mean, std = evaluate(trainer.agent, trainer.config.env_id, episodes=args.episodes, seed=args.seed)
    print(json.dumps({"env_id": trainer.config.env_id, "env_steps": trainer.env_steps,
                      "episodes": args.episodes, "return_mean": mean, "return_std": std}))
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

    envs = sweep.parse_names(args.envs, PRESETS, "--envs")
    algos = sweep.parse_names(args.algos, sweep.ALGORITHMS, "--algos")
    seeds = sweep.parse_seeds(args.seeds)
    budgets = sweep.parse_budgets(args.total_steps, envs, algos)
    runs = sweep.plan(envs, algos, seeds, root=args.root, budgets=budgets, overrides=args.set,
                      smoke=args.smoke, schedule=args.schedule, device=args.device)
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
    done = sweep.report(args.root, args.out, thresholds=thresholds, at=at, figures=not args.no_figures)
    print(done.table)
    if done.ignored:
        print(f"\n(ignored, not run folders: {', '.join(done.ignored)})")
    print(f"\nsummary: {done.summary}\nper run: {done.runs}\nmetrics copies: {len(done.copies)} in "
          f"{done.summary.parent}" + "".join(f"\nfigure: {path}" for path in done.figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mbpo_lib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train MBPO (or SAC alone) on one task")
    train.add_argument("--env", required=True, choices=sorted(PRESETS), metavar="ENV_ID",
                       help=f"one of {', '.join(PRESETS)}")
    train.add_argument("--algo", choices=("mbpo", "sac"), default="mbpo")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-dir", "--out",
                       help="where metrics and checkpoints go (default runs/<env>-<algo>-seed<seed>)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run folder's checkpoint if it has one")
    train.add_argument("--smoke", action="store_true", help="the preset's tiny CI variant")
    train.add_argument("--schedule", default="official",
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
    train.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)
    ev = commands.add_parser("evaluate", help="evaluate a checkpoint's deterministic policy")
    ev.add_argument("checkpoint")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=123_456)
    ev.set_defaults(run=_evaluate)
    plot = commands.add_parser("plot", help="evaluation return against env steps of one or more runs")
    plot.add_argument("runs", nargs="+", help="run folders (with metrics.csv)")
    plot.add_argument("--output", help="PNG to write (default: <first run>/eval_return.png)")
    plot.set_defaults(run=_plot)
    sw = commands.add_parser(
        "sweep", help="many (env, algo, seed) runs as Ray tasks, local or on a cluster",
        description="Every (env, algo, seed) as a Ray task (1 CPU, a GPU share when the cluster has "
                    "GPUs) into <root>/<env>_<algo>_seed<k>. Finished runs are skipped, runs with a "
                    "checkpoint resume from it, so a sweep can simply be started again.")
    sw.add_argument("--envs", required=True, help=f"comma-separated, from {', '.join(PRESETS)}")
    sw.add_argument("--algos", default="mbpo,sac", help="comma-separated, from mbpo, sac (default both)")
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
        description="Per env and algorithm: seeds, median/mean return at the budget, median return at "
                    "fixed steps, steps to a return threshold (never reached: '>N', censored), training "
                    "seconds. Writes sweep_summary.csv, sweep_runs.csv, <env>_<algo>_seed<k>.csv and "
                    "<env>_curves.png into --out.")
    rp.add_argument("root", help="the sweep's --root (holds <env>_<algo>_seed<k> folders)")
    rp.add_argument("--out", help="output folder (default <root>/report; e.g. results to commit them)")
    rp.add_argument("--threshold", action="append", default=[], metavar="ENV=VALUE",
                    help="return threshold for steps-to-threshold (defaults: " + ", ".join(
                        f"{env} {value:g}" for env, value in _default_thresholds().items()) + ")")
    rp.add_argument("--at", action="append", default=[], metavar="ENV=S1,S2",
                    help="step counts to report the median return at (default per env, within the budget)")
    rp.add_argument("--no-figures", action="store_true", help="skip the curve figures")
    rp.set_defaults(run=_report)
    args = parser.parse_args(argv)
    if args.command == "train" and args.schedule not in schedule_variants(args.env):
        parser.error(f"--schedule {args.schedule!r}: {args.env} has {', '.join(schedule_variants(args.env))}")
    try:
        return args.run(args)
    except ValueError as error:   # bad settings or a bad checkpoint: a clear message, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


def _default_thresholds() -> dict[str, float]:
    from .sweep import DEFAULT_THRESHOLDS

    return dict(DEFAULT_THRESHOLDS)


if __name__ == "__main__":
    sys.exit(main())
