"""The command line: ``python -m mbpo_lib train ...`` and ``python -m mbpo_lib evaluate ...``.

Examples::

    python -m mbpo_lib train --env Hopper-v5 --seed 0                 # the paper's Hopper run
    python -m mbpo_lib train --env InvertedPendulum-v5 --smoke        # a tiny run (CI)
    python -m mbpo_lib train --env Hopper-v5 --run-dir runs/h0 --resume   # continue after a crash
    python -m mbpo_lib train --env Hopper-v5 --algo sac               # SAC alone, same budget
    python -m mbpo_lib train --env Hopper-v5 --set ensemble.max_epochs=30 --set real_ratio=0.1
    python -m mbpo_lib evaluate runs/h0/checkpoint.pt --episodes 10
    python -m mbpo_lib plot runs/h0 runs/h1 --output curves.png

A run writes ``config.json``, ``metrics.csv``, ``metrics.jsonl`` and ``checkpoint.pt`` into its
run folder (default ``runs/<env>-<algo>-seed<seed>``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import torch

from .config import PRESETS, MBPOConfig, preset, schedule_variants
from .envs import evaluate
from .mbpo import CHECKPOINT_NAME, MBPO
from .runtime import default_device


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` (``ensemble.hidden_dim=100``, ``sac.gamma=0.98``, ``real_ratio=0.1``) with
    the value read as JSON where it parses (numbers, true/false, null, lists), else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes key=value (e.g. ensemble.max_epochs=30), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), tuple(value) if isinstance(value, list) else value


def apply_overrides(config: MBPOConfig, pairs: list[str]) -> MBPOConfig:
    changes: dict[str, Any] = {}
    for text in pairs:
        key, value = parse_override(text)
        head, _, field = key.partition(".")
        if field:
            if head not in ("ensemble", "sac"):
                raise ValueError(f"--set {key}: only ensemble.<field> and sac.<field> are nested")
            changes.setdefault(head, {})[field] = value
        else:
            changes[key] = value
    return config.with_overrides(**changes) if changes else config


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
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
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
    args = parser.parse_args(argv)
    if args.command == "train" and args.schedule not in schedule_variants(args.env):
        parser.error(f"--schedule {args.schedule!r}: {args.env} has {', '.join(schedule_variants(args.env))}")
    try:
        return args.run(args)
    except ValueError as error:   # bad settings or a bad checkpoint: a clear message, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
