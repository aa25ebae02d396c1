"""Sample efficiency: MBPO against SAC alone on the same budget, several seeds, committed results.

Runs ``python -m mbpo_lib train`` once per (algorithm, seed) with the env's preset and the given
budget (every real step counted, the random warm-up included), ``--jobs`` processes at a time,
each with one thread. ``--algo sac`` is the same trainer with real_ratio 1 and one SAC update per
step. Each run's ``metrics.csv`` is copied to
``results/sample_efficiency/<env>_<algo>_seed<k>.csv``; a summary
(``results/sample_efficiency/<env>_summary.csv``) gives per run the first evaluated step with a
mean return at or above ``--threshold``, the final return and the trainer's own wall clock (the sum of its
epochs' ``seconds_total``), and the figure ``figures/<prefix>_sample_efficiency``
shows every run's evaluation curve with the mean per algorithm.

    .venv/bin/python benchmarks/sample_efficiency.py --env InvertedPendulum-v5 --steps 5000 --seeds 0 1 2

``--reuse`` keeps run folders (under ``runs/sample_efficiency/``) that already reached the budget,
so a summary can be remade without training again. Results are written atomically.

Issue 6's target: InvertedPendulum-v5 reaches 1000 within 5,000 steps for at least 2 of 3 seeds.
The last line is ``ratio mbpo_reached_<threshold> <k>/<n>`` (the seeds that got there).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mbpo_lib import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def finished_steps(run_dir: Path) -> int:
    """The last logged env step of a run folder (0 when it has no metrics yet)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return 0
    rows = read_metrics(path)
    return int(rows[-1]["env_steps"]) if rows else 0


def run(env: str, algo: str, seed: int, steps: int, runs: Path, device: str, reuse: bool) -> None:
    run_dir = runs / f"{env}_{algo}_seed{seed}"
    if reuse and finished_steps(run_dir) == steps:
        print(f"{algo} seed {seed}: finished run kept ({run_dir})")
        return
    if run_dir.exists():
        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "mbpo_lib", "train", "--env", env, "--algo", algo, "--seed", str(seed),
               "--steps", str(steps), "--run-dir", str(run_dir), "--threads", "1", "--no-progress",
               "--checkpoint-every", "0", "--device", device]
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env_vars, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{algo} seed {seed} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="InvertedPendulum-v5")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=["mbpo", "sac"], choices=("mbpo", "sac"))
    parser.add_argument("--threshold", type=float, default=1000.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--figure-prefix", default="05")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a run folder that already reached --steps instead of training it again")
    args = parser.parse_args()
    runs, results = ROOT / "runs" / "sample_efficiency", ROOT / "results" / "sample_efficiency"
    results.mkdir(parents=True, exist_ok=True)
    jobs = [(algo, seed) for seed in args.seeds for algo in args.algos]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: run(args.env, *job, args.steps, runs, args.device, args.reuse), jobs))
    curves, summary = {}, []
    for algo, seed in jobs:
        target = results / f"{args.env}_{algo}_seed{seed}.csv"
        partial = target.with_suffix(".csv.tmp")
        shutil.copyfile(runs / f"{args.env}_{algo}_seed{seed}" / "metrics.csv", partial)
        os.replace(partial, target)
        rows = read_metrics(target)
        curves[algo, seed] = [(row["env_steps"], row["eval_return"]) for row in rows]
        seconds = sum(row["seconds_total"] for row in rows)
        reached = next((int(row["env_steps"]) for row in rows if row["eval_return"] >= args.threshold), None)
        summary.append({"env_id": args.env, "algo": algo, "seed": seed, "budget": args.steps,
                        f"first_step_at_{args.threshold:g}": reached if reached is not None else "",
                        "final_eval_return": rows[-1]["eval_return"],
                        "best_eval_return": max(row["eval_return"] for row in rows),
                        "wall_seconds": round(seconds, 1),
                        "seconds_per_env_step": round(seconds / args.steps, 4)})
    summary_path = results / f"{args.env}_summary.csv"
    with open(summary_path.with_suffix(".csv.tmp"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    os.replace(summary_path.with_suffix(".csv.tmp"), summary_path)
    for row in summary:
        print(", ".join(f"{k}={v}" for k, v in row.items()))
    plot(args, curves)
    for algo in args.algos:
        column = f"first_step_at_{args.threshold:g}"
        got = sum(1 for row in summary if row["algo"] == algo and row[column] != "")
        print(f"ratio {algo}_reached_{args.threshold:g} {got}/{len(args.seeds)}")


def plot(args: argparse.Namespace, curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import mbpo_lib

    mbpo_lib.apply_style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {"mbpo": "#0072B2", "sac": "#D55E00"}
    for algo in args.algos:
        runs = [curves[algo, seed] for seed in args.seeds]
        for curve in runs:
            ax.plot(*zip(*curve, strict=True), color=colors[algo], alpha=0.3, lw=1)
        steps = np.array([s for s, _ in runs[0]])
        mean = np.nanmean([[r for _, r in curve] for curve in runs], axis=0)
        ax.plot(steps, mean, color=colors[algo], lw=2.5,
                label=f"{algo.upper()} (mean of {len(runs)} seeds; thin: each seed)")
    ax.axhline(args.threshold, color="0.5", ls=":", lw=1)
    ax.set(xlabel="real environment steps (random warm-up included)", ylabel="evaluation return",
           title=f"{args.env}: MBPO against SAC alone, same budget ({args.steps:,} steps)")
    ax.legend(fontsize=9)
    name = f"{args.figure_prefix}_{args.env.split('-')[0].lower()}_sample_efficiency"
    print(f"figure: {mbpo_lib.save_figure(fig, name)}")


if __name__ == "__main__":
    main()
