"""The command line: ``python -m mbpo_lib train ...`` and ``python -m mbpo_lib evaluate ...``.

Examples::

    python -m mbpo_lib train --env Hopper-v5 --seed 0                 # the paper's Hopper run
    python -m mbpo_lib train --env InvertedPendulum-v5 --smoke        # a tiny run (CI)
    python -m mbpo_lib train --env Hopper-v5 --run-dir runs/h0 --resume   # continue after a crash
    python -m mbpo_lib train --env Hopper-v5 --algo sac               # SAC alone, same budget
    python -m mbpo_lib evaluate runs/h0/checkpoint.pt --episodes 10

A run writes ``config.json``, ``metrics.csv``, ``metrics.jsonl`` and ``checkpoint.pt`` into its
run folder (default ``runs/<env>-<algo>-seed<seed>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .config import PRESETS, preset, schedule_variants
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
        config = config.with_overrides(**overrides)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mbpo_lib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train MBPO (or SAC alone) on one task")
    train.add_argument("--env", required=True, choices=sorted(PRESETS), metavar="ENV_ID",
                       help=f"one of {', '.join(PRESETS)}")
    train.add_argument("--algo", choices=("mbpo", "sac"), default="mbpo")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-dir",
                       help="where metrics and checkpoints go (default runs/<env>-<algo>-seed<seed>)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run folder's checkpoint if it has one")
    train.add_argument("--smoke", action="store_true", help="the preset's tiny CI variant")
    train.add_argument("--schedule", default="official",
                       help="rollout schedule variant (Hopper-v5 also has 'paper appendix')")
    train.add_argument("--steps", dest="total_steps", type=int,
                       help="budget in real steps, warm-up included (default: the preset's)")
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
