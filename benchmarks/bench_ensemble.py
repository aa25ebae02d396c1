"""The dynamics ensemble against mbrl-lib: training updates per second and model-step throughput.

Hopper-v5 sizes: inputs obs 11 + act 3 = 14, outputs reward + delta-s = 12 (a mean and a
log-variance each), 7 members (5 elites), 4 hidden layers of 200 SiLU units, trained soft
log-variance bounds, float32.

* ``train``: minibatch updates per second, one update = one Adam step of all 7 members, each on
  its own bootstrap batch of 256 rows (drawing the batch included):
  - ``ours``: ``DynamicsModel.train_step`` on rows gathered from a bootstrap index, as ``fit``
    runs it (fused Adam, the paper's per-layer weight decay);
  - ``mbrl``: mbrl-lib 0.2.0's ``OneDTransitionRewardModel(GaussianMLP).update(batch, optimizer)``
    on batches from its ``BootstrapIterator``, with the Adam its ``ModelTrainer`` builds
    (weight decay 5e-5, its MBPO default), as its MBPO trains;
  - ``loop``: the same network as 7 separate ``nn.Linear`` MLPs run one after another in a
    Python loop, the same losses and the same fused Adam as ours: what batching the members buys.
* ``step``: transitions per second of one model step on 100,000 rows (one random elite per
  row, a Gaussian sample, next obs = obs + delta):
  - ``ours``: ``DynamicsModel.step(obs, act, generator)`` (rows grouped by member);
  - ``mbrl``: ``OneDTransitionRewardModel(GaussianMLP(..., propagation_method="random_model"))
    .sample(act, state, rng)`` under ``torch.no_grad()``, what its ``ModelEnv.step`` calls.

Each side runs in its own process (this script calls itself with ``--worker``), all with the
same environment: the same ``torch.set_num_threads`` and the same glibc allocator settings
(``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``; with glibc's defaults every
large tensor is a fresh ``mmap`` whose page faults make big-tensor loops slow and noisy). The
processes run in rounds, the order flipped every round, so a burst of load from another job
hits every side alike. Each process times ``--samples`` samples after a warm-up; the printed
figures are the median over all samples of all rounds, with min and max.

Every side but ``loop`` also runs as ``<side>@medium``: ours with
``EnsembleConfig(matmul_precision="medium")``, mbrl's unchanged code inside
``mbpo_lib.matmul_precision("medium", device)`` (see ``mbpo_lib/precision.py``; the script first
prints what that setting does to a product on this machine).

The script ends with ``ratio <name> <ours/peer>`` lines, throughput over throughput (above 1:
ours is faster): for ``train`` and ``step`` each, ``..._vs_mbrl`` (both as they ship),
``..._medium_vs_mbrl`` (ours at "medium" against mbrl as it ships) and
``..._medium_vs_mbrl_medium`` (both at "medium"); and ``ensemble_train_vs_loop``.
Targets (issue 3): train >= 1.5, step >= 3. It prints the CPU, its vector extensions and the
float32 peak measured here first, and ``share_of_peak <task>_<side> <value>`` lines last: each
side's matrix-product FLOPs per call over its time, as a fraction of that peak (``machine.py``).

Install the peer with ``make bench`` (see benchmarks/README.md), then e.g.
``.venv/bin/python benchmarks/bench_ensemble.py --rounds 3`` (``--device cuda`` on a GPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from machine import machine_lines, product_flops, share_of_peak_line
from mbrl_peer import ACT, ELITES, HIDDEN, LAYERS, MEMBERS, OBS, mbrl_model
from timing import at_medium, precision_report
from torch import nn
from torch.nn import functional as F

from mbpo_lib.config import EnsembleConfig
from mbpo_lib.dynamics import DynamicsModel
from mbpo_lib.models import PAPER_WEIGHT_DECAYS, GaussianEnsemble

BATCH, LR, DATA_ROWS = 256, 1e-3, 20_000
# A side is "<who>" (float32 products, PyTorch's default) or "<who>@medium" (the same code with
# matmul_precision "medium": ours through its config, mbrl's inside the same context).
SIDES = {"train": ("ours", "ours@medium", "mbrl", "mbrl@medium", "loop"),
         "step": ("ours", "ours@medium", "mbrl", "mbrl@medium")}
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def transitions(n: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A smooth, noisy, Hopper-sized system: ``(obs, act, rew, next_obs)``, float32."""
    g = torch.Generator().manual_seed(seed)
    A, B = torch.randn(OBS, OBS, generator=g) * 0.3, torch.randn(ACT, OBS, generator=g)
    obs = torch.randn(n, OBS, generator=g)
    act = torch.rand(n, ACT, generator=g) * 2 - 1
    next_obs = obs + 0.1 * torch.tanh(obs @ A + act @ B) + 0.01 * torch.randn(n, OBS, generator=g)
    rew = obs[:, 0] - 0.1 * (act ** 2).sum(-1)
    return tuple(t.to(device) for t in (obs, act, rew, next_obs))


def ours_model(device: torch.device, precision: str = "highest") -> DynamicsModel:
    config = EnsembleConfig(ensemble_size=MEMBERS, num_elites=ELITES, hidden_dim=HIDDEN, num_layers=LAYERS,
                            batch_size=BATCH, lr=LR, matmul_precision=precision)
    return DynamicsModel(OBS, ACT, config, device=device, seed=0)


def bootstrap_batches(n: int, device: torch.device) -> Callable[[], torch.Tensor]:
    """Row indices ``[E, BATCH]`` of successive minibatches of per-member bootstraps, as ``fit``
    draws them (with replacement, reshuffled every epoch)."""
    g = torch.Generator(device=device).manual_seed(0)
    state = {"order": None, "next": n}

    def rows() -> torch.Tensor:
        if state["next"] + BATCH > n:
            bootstrap = torch.randint(n, (MEMBERS, n), generator=g, device=device)
            shuffle = torch.argsort(torch.randn(MEMBERS, n, generator=g, device=device), dim=1)
            state["order"], state["next"] = torch.gather(bootstrap, 1, shuffle), 0
        start, state["next"] = state["next"], state["next"] + BATCH
        return state["order"][:, start:start + BATCH]

    return rows


def train_ours(device: torch.device, precision: str = "highest") -> Callable[[], object]:
    model = ours_model(device, precision)
    inputs, targets = model.make_dataset(*transitions(DATA_ROWS, device))
    model.normalizer.fit(inputs)
    inputs = model.normalizer(inputs)
    rows = bootstrap_batches(DATA_ROWS, device)

    def update():
        index = rows()
        return model.train_step(inputs[index], targets[index])

    return update


class LoopedEnsemble(nn.Module):
    """The same network as ``GaussianEnsemble``, as E separate ``nn.Linear`` MLPs."""

    def __init__(self, reference: GaussianEnsemble) -> None:
        super().__init__()
        self.members = nn.ModuleList()
        for e in range(reference.ensemble_size):
            layers = nn.ModuleList()
            for layer in reference.layers:
                linear = nn.Linear(layer.in_features, layer.out_features)
                with torch.no_grad():
                    linear.weight.copy_(layer.weight[e].T)
                    linear.bias.copy_(layer.bias[e, 0])
                layers.append(linear)
            self.members.append(layers)
        self.max_logvar = nn.Parameter(reference.max_logvar.detach().clone())
        self.min_logvar = nn.Parameter(reference.min_logvar.detach().clone())

    def member_loss(self, layers: nn.ModuleList, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for linear in layers[:-1]:
            x = F.silu(linear(x))
        mean, raw = layers[-1](x).chunk(2, dim=-1)
        logvar = GaussianEnsemble.bound_logvar(self, raw)   # the same soft-bound formula
        return ((mean - y) ** 2 * torch.exp(-logvar) + logvar).mean()


def train_loop(device: torch.device) -> Callable[[], object]:
    reference = GaussianEnsemble(OBS + ACT, OBS + 1, MEMBERS, HIDDEN, LAYERS,
                                 generator=torch.Generator().manual_seed(0))
    net = LoopedEnsemble(reference).to(device)
    weights = [p for layers in net.members for p in layers.parameters() if p.dim() == 2]
    groups = [{"params": [layers[i].weight for layers in net.members], "weight_decay": wd}
              for i, wd in enumerate(PAPER_WEIGHT_DECAYS)]
    groups.append({"params": [p for p in net.parameters() if all(p is not w for w in weights)],
                   "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=LR, fused=True)
    model = ours_model(device)
    inputs, targets = model.make_dataset(*transitions(DATA_ROWS, device))
    model.normalizer.fit(inputs)
    inputs = model.normalizer(inputs)
    rows = bootstrap_batches(DATA_ROWS, device)

    def update():
        index = rows()
        x, y = inputs[index], targets[index]
        losses = [net.member_loss(layers, x[e], y[e]) for e, layers in enumerate(net.members)]
        loss = torch.stack(losses).sum() + 0.01 * (net.max_logvar.sum() - net.min_logvar.sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return update


def train_mbrl(device: torch.device) -> Callable[[], object]:
    import numpy as np
    from mbrl.types import TransitionBatch
    from mbrl.util.replay_buffer import BootstrapIterator

    model = mbrl_model(device, 0)
    # what mbrl's ModelTrainer builds: Adam over all parameters with one weight decay
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=5e-5)
    obs, act, rew, next_obs = (t.cpu().numpy() for t in transitions(DATA_ROWS, torch.device("cpu")))
    done = np.zeros(DATA_ROWS, dtype=bool)
    data = TransitionBatch(obs, act, next_obs, rew, done, done)
    model.update_normalizer(data)
    iterator = BootstrapIterator(data, BATCH, MEMBERS, shuffle_each_epoch=True, permute_indices=False,
                                 rng=np.random.default_rng(0))
    batches = iter(iterator)

    def update():
        nonlocal batches
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(iterator)
            batch = next(batches)
        return model.update(batch, optimizer)

    return update


def step_ours(device: torch.device, rows: int, precision: str = "highest") -> Callable[[], object]:
    model = ours_model(device, precision)
    g = torch.Generator(device=device).manual_seed(0)
    obs = torch.randn(rows, OBS, generator=g, device=device)
    act = torch.rand(rows, ACT, generator=g, device=device) * 2 - 1
    model.normalizer.fit(torch.cat([obs, act], -1))
    model.fitted = True   # random weights time the same as trained ones; step refuses an unfitted model
    return lambda: model.step(obs, act, generator=g)


def step_mbrl(device: torch.device, rows: int) -> Callable[[], object]:
    import mbrl.types

    model = mbrl_model(device, 0)
    model.set_elite(list(range(ELITES)))
    g = torch.Generator(device=device).manual_seed(0)
    obs = torch.randn(rows, OBS, generator=g, device=device)
    act = torch.rand(rows, ACT, generator=g, device=device) * 2 - 1
    model.update_normalizer(mbrl.types.TransitionBatch(obs.cpu().numpy(), act.cpu().numpy(), None, None,
                                                       None, None))
    state = model.reset(obs, rng=g)

    def step():
        with torch.no_grad():   # as mbrl's ModelEnv.step does
            return model.sample(act, state, rng=g)

    return step


def worker(task: str, side: str, args: argparse.Namespace) -> None:
    """Build one side, warm it up, time ``args.samples`` samples; print them as JSON."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    who, _, precision = side.partition("@")
    precision = precision or "highest"
    if task == "train":
        build = {"ours": train_ours, "mbrl": train_mbrl, "loop": train_loop}[who]
        call = build(device, precision) if who == "ours" else build(device)
        per_sample = args.updates
    else:
        build = {"ours": step_ours, "mbrl": step_mbrl}[who]
        call = build(device, args.rows, precision) if who == "ours" else build(device, args.rows)
        per_sample = 1
    if who != "ours" and precision == "medium":   # a peer's own code, run under the same setting
        call = at_medium(call, device)
    for _ in range(args.warmup):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = []
    for _ in range(args.samples):
        start = time.perf_counter()
        for _ in range(per_sample):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append((time.perf_counter() - start) / per_sample)
    print(json.dumps({"seconds": seconds, "flops": product_flops(call)}))


def run_rounds(task: str, args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call of every side over all rounds, and each side's product FLOPs per call."""
    env = {**os.environ, **ALLOCATOR, "OMP_NUM_THREADS": str(args.threads)}
    seconds: dict[str, list[float]] = {side: [] for side in SIDES[task]}
    flops: dict[str, float] = {}
    for r in range(args.rounds):
        order = SIDES[task] if r % 2 == 0 else tuple(reversed(SIDES[task]))
        for side in order:
            command = [sys.executable, __file__, "--worker", task, side, "--device", args.device,
                       "--threads", str(args.threads), "--samples", str(args.samples),
                       "--warmup", str(args.warmup), "--updates", str(args.updates), "--rows", str(args.rows)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                                  cwd=os.path.dirname(os.path.abspath(__file__)))
            if done.returncode:
                raise SystemExit(f"{task}/{side} failed:\n{done.stderr[-3000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            seconds[side] += measured["seconds"]
            flops[side] = measured["flops"]
    return seconds, flops


def describe(seconds: list[float], per_call: float, unit: str) -> str:
    rates = sorted(per_call / s for s in seconds)
    return (f"{statistics.median(rates):10.4g} {unit} (min {rates[0]:.4g} .. max {rates[-1]:.4g}, "
            f"n={len(rates)})")


def throughput_ratios(task: str, seconds: dict[str, list[float]]) -> list[str]:
    """ours / mbrl as each ships (float32), ours at "medium" against mbrl as it ships (the
    target's comparison), and both at "medium" (what is left once mbrl takes the same setting)."""
    median = {side: statistics.median(values) for side, values in seconds.items()}
    pairs = (("vs_mbrl", "ours", "mbrl"), ("medium_vs_mbrl", "ours@medium", "mbrl"),
             ("medium_vs_mbrl_medium", "ours@medium", "mbrl@medium"))
    return [f"ratio {task}_{name} {median[peer] / median[ours]:.3f}" for name, ours, peer in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (and OMP_NUM_THREADS) of every process (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per side, run in flipped order")
    parser.add_argument("--samples", type=int, default=5, help="timed samples per process")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per process first")
    parser.add_argument("--updates", type=int, default=20, help="training updates per timed sample")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed model step")
    parser.add_argument("--tasks", nargs="+", choices=tuple(SIDES), default=tuple(SIDES))
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    if args.rows % ELITES:
        parser.error(f"--rows must be a multiple of {ELITES} (mbrl's random_model splits rows evenly)")
    print(f"ensemble: {MEMBERS} members ({ELITES} elites), {LAYERS}x{HIDDEN} SiLU, in {OBS + ACT}, out "
          f"{OBS + 1} (+ log-variance), float32, device {args.device}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {args.rounds} rounds x {args.samples} samples per side, "
          f"{', '.join(f'{k}={v}' for k, v in ALLOCATOR.items())}")
    print(precision_report(args.device))
    machine, peak = machine_lines(args.device, args.threads)
    print("\n".join(machine), flush=True)
    ratios, shares = [], []
    if "train" in args.tasks:
        seconds, flops = run_rounds("train", args)
        for side, values in seconds.items():
            print(f"train  {side:<11} {describe(values, 1.0, 'updates/s')}   [7 x {BATCH} rows per update, "
                  f"{flops[side] / 1e9:.3f} GFLOP of products]")
        loop_ratio = statistics.median(seconds["loop"]) / statistics.median(seconds["ours"])
        ratios += throughput_ratios("ensemble_train", seconds)
        ratios.append(f"ratio ensemble_train_vs_loop {loop_ratio:.3f}")
        shares += [share_of_peak_line(f"ensemble_train_{side}", flops[side], values, peak)
                   for side, values in seconds.items()]
    if "step" in args.tasks:
        seconds, flops = run_rounds("step", args)
        for side, values in seconds.items():
            print(f"step   {side:<11} {describe(values, args.rows, 'transitions/s')}   "
                  f"[{args.rows} rows per call, {flops[side] / 1e9:.2f} GFLOP of products]")
        ratios += throughput_ratios("ensemble_step", seconds)
        shares += [share_of_peak_line(f"ensemble_step_{side}", flops[side], values, peak)
                   for side, values in seconds.items()]
    print("\n".join(ratios + shares))
    assert all(math.isfinite(float(line.split()[-1])) for line in ratios)


if __name__ == "__main__":
    main()
