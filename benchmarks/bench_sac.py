"""SAC gradient updates per second at Hopper-v5 sizes: ours against stable-baselines3.

What one "update" is, on every side: draw a batch of 256 transitions from a replay buffer of
10,000 random Hopper-sized rows (obs 11, act 3), then one SAC step of both critics, the actor
and the temperature (hidden 256 x 2, Adam, lr 3e-4, automatic temperature, target -|A|) and
the Polyak step of the target critics.

* ``ours``: ``mbpo_lib.SAC.update(buffer.sample(256, generator))``;
* ``sb3``: stable-baselines3's ``SAC.train(gradient_steps=K, batch_size=256)`` (its own replay
  buffer, ``MlpPolicy`` with ``net_arch=[256, 256]``, ``ent_coef="auto"``);
* ``plain``: a minimal eager PyTorch SAC written here (two separate critic networks, three
  Adam optimisers, critic then actor then temperature, as most tutorials write it): the
  baseline that shows what our design choices buy;
* ``ours@medium`` and ``sb3@medium``: the same, with ``SACConfig(matmul_precision="medium")``
  for ours and stable-baselines3's unchanged code inside ``mbpo_lib.matmul_precision("medium",
  device)`` (see ``mbpo_lib/precision.py``; the script first prints what that setting does to a
  product on this machine);
* on CUDA, ``compiled``: ours with ``compile=True, cuda_graph=True`` (``torch.compile`` of the
  losses and the whole update replayed as one CUDA graph), against ``ours``.

Each candidate runs in its own process (fresh allocator, same environment variables and thread
count), in alternating order over several rounds so load from other jobs hits all sides alike.
In each process the update is warmed up, then timed in blocks of ``--updates`` updates.
Install the peer with ``pip install -e .[bench]``.

Where the time goes: the update is mostly 256 x 256 matrix products. Counted by torch's FLOP
counter (``machine.product_flops``), ours does 0.563 GFLOP of products per update, 16.8 products
of 256 x 256 x 256 (forward: actor on s and s', target critics, critics twice; backward: the
critics' weight and input gradients for L_Q, only input gradients through the critics for L_pi,
the actor's gradients), stable-baselines3 and the plain SAC 0.635 GFLOP, 18.9 such products
(they also compute the critics' weight gradients in the actor step and then discard them). The rest of
our gain is overhead: one backward and one fused Adam call for all losses, the twin critics as
one batched network, no ``torch.distributions`` objects, the sampling on tensors.

Ends with ``ratio <name> <ours/peer>`` lines, the ratio of median time per update (below 1:
ours is faster), and ``share_of_peak <side> <value>`` lines: each side's matrix-product FLOPs
per update (counted by ``torch.utils.flop_counter`` on one block) over its time, as a fraction
of the float32 peak measured first on this machine (``machine.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_lines, product_flops, share_of_peak_line  # noqa: E402
from timing import (  # noqa: E402 (the shared helper next to this file)
    at_medium,
    measure,
    precision_report,
    ratio_line,
    summary,
)

OBS, ACT, HIDDEN, BATCH, ROWS = 11, 3, (256, 256), 256, 10_000


def random_rows(device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(ROWS, OBS, generator=g), torch.rand(ROWS, ACT, generator=g) * 2 - 1,
            torch.randn(ROWS, generator=g), torch.randn(ROWS, OBS, generator=g),
            (torch.rand(ROWS, generator=g) < 0.01))


def make_ours(device: torch.device, updates: int, compiled: bool = False, precision: str = "highest"):
    from mbpo_lib.buffer import ReplayBuffer
    from mbpo_lib.config import SACConfig
    from mbpo_lib.sac import SAC

    buffer = ReplayBuffer(ROWS, OBS, ACT, device=device)
    buffer.add_batch(*random_rows(device))
    options = {"compile": True, "cuda_graph": True} if compiled else {}
    sac = SAC(OBS, ACT, SACConfig(matmul_precision=precision), device=device, seed=0, **options)
    g = torch.Generator(device=device).manual_seed(0)

    def run():
        for _ in range(updates):
            sac.update(buffer.sample(BATCH, g))

    return run


def make_sb3(device: torch.device, updates: int):
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import configure

    class Spaces(gym.Env):   # Hopper's spaces without the simulator: SB3 only reads the shapes
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float64)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(OBS), {}

        def step(self, action):
            return np.zeros(OBS), 0.0, False, False, {}

    model = SB3SAC("MlpPolicy", Spaces(), batch_size=BATCH, buffer_size=ROWS, learning_starts=0,
                   policy_kwargs={"net_arch": list(HIDDEN)}, device=device, seed=0, verbose=0)
    model.set_logger(configure(None, []))
    obs, act, rew, next_obs, done = (x.numpy() for x in random_rows(device))
    for i in range(ROWS):
        model.replay_buffer.add(obs[i:i + 1], next_obs[i:i + 1], act[i:i + 1], rew[i:i + 1],
                                done[i:i + 1], [{}])
    return lambda: model.train(gradient_steps=updates, batch_size=BATCH)


def make_plain(device: torch.device, updates: int):
    """The textbook eager SAC: separate modules and optimisers, critic step then actor step."""
    import copy

    import torch.nn.functional as F
    from torch import nn

    from mbpo_lib.buffer import ReplayBuffer

    torch.manual_seed(0)

    def mlp(n_in, n_out):
        return nn.Sequential(nn.Linear(n_in, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]),
                             nn.ReLU(), nn.Linear(HIDDEN[1], n_out)).to(device)

    actor, q1, q2 = mlp(OBS, 2 * ACT), mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)
    q1_target, q2_target = copy.deepcopy(q1), copy.deepcopy(q2)
    log_alpha = torch.zeros((), device=device, requires_grad=True)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    critic_opt = torch.optim.Adam([*q1.parameters(), *q2.parameters()], lr=3e-4)
    alpha_opt = torch.optim.Adam([log_alpha], lr=3e-4)
    buffer = ReplayBuffer(ROWS, OBS, ACT, device=device)
    buffer.add_batch(*random_rows(device))
    g = torch.Generator(device=device).manual_seed(0)

    def policy(obs):
        mean, log_std = actor(obs).chunk(2, -1)
        dist = torch.distributions.Normal(mean, log_std.clamp(-20, 2).exp())
        u = dist.rsample()
        a = torch.tanh(u)
        return a, (dist.log_prob(u) - torch.log(1 - a.pow(2) + 1e-6)).sum(-1)

    def step():
        obs, act, rew, next_obs, done = buffer.sample(BATCH, g)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            next_a, next_logp = policy(next_obs)
            x = torch.cat([next_obs, next_a], -1)
            next_q = torch.min(q1_target(x), q2_target(x)).squeeze(-1) - alpha * next_logp
            y = rew + 0.99 * (1 - done) * next_q
        x = torch.cat([obs, act], -1)
        critic_loss = 0.5 * (F.mse_loss(q1(x).squeeze(-1), y) + F.mse_loss(q2(x).squeeze(-1), y))
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        a, logp = policy(obs)
        x = torch.cat([obs, a], -1)
        actor_loss = (alpha * logp - torch.min(q1(x), q2(x)).squeeze(-1)).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        alpha_loss = -(log_alpha * (logp.detach() + -ACT)).mean()
        alpha_opt.zero_grad()
        alpha_loss.backward()
        alpha_opt.step()
        with torch.no_grad():
            for net, target in ((q1, q1_target), (q2, q2_target)):
                for p, tp in zip(net.parameters(), target.parameters(), strict=True):
                    tp.mul_(0.995).add_(p, alpha=0.005)
        return critic_loss.item(), actor_loss.item()

    def run():
        for _ in range(updates):
            step()

    return run


# "<who>@medium": the same code with matmul_precision "medium" (ours through its config).
BUILDERS = {"ours": make_ours, "sb3": make_sb3, "plain": make_plain,
            "ours@medium": lambda device, updates: make_ours(device, updates, precision="medium"),
            "sb3@medium": lambda device, updates: at_medium(make_sb3(device, updates), device),
            "compiled": lambda device, updates: make_ours(device, updates, compiled=True)}


def worker(args: argparse.Namespace) -> None:
    """One candidate in this process: warm up, then time blocks of updates; print JSON."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    run = BUILDERS[args.worker](device, args.updates)
    times = measure({args.worker: run}, repeats=args.repeats, warmup=args.warmup, device=device)
    per_update = [t / args.updates for t in times[args.worker]]
    # A replayed CUDA graph runs no PyTorch operators that a FLOP counter could see.
    flops = None if args.worker == "compiled" else product_flops(run, per_call=args.updates)
    print(json.dumps({"name": args.worker, "seconds_per_update": per_update, "flops": flops}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--peers", nargs="+", default=["sb3", "plain"], choices=("sb3", "plain"))
    parser.add_argument("--rounds", type=int, default=3, help="processes per candidate, alternating")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per process")
    parser.add_argument("--updates", type=int, default=100, help="updates per timed block")
    parser.add_argument("--warmup", type=int, default=1, help="untimed blocks per process")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads in every process (default 1: matrices of 256 gain "
                             "little from a second thread, and on a shared machine OpenMP threads that "
                             "wait for a busy core make every candidate many times slower)")
    parser.add_argument("--worker", choices=tuple(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    if "sb3" in args.peers and importlib.util.find_spec("stable_baselines3") is None:
        parser.error("stable-baselines3 is not installed: pip install -e .[bench] (or --peers plain)")
    allocator = {k: v for k, v in os.environ.items()
                 if k.startswith(("MALLOC_", "PYTORCH_CUDA_ALLOC_CONF", "LD_PRELOAD", "OMP_", "MKL_"))}
    names = ["ours", "ours@medium", *args.peers] + (["sb3@medium"] if "sb3" in args.peers else []) + (
        ["compiled"] if args.device == "cuda" else [])
    print(f"SAC update at Hopper sizes: obs {OBS}, act {ACT}, hidden {HIDDEN}, batch {BATCH}; device "
          f"{args.device}, torch {torch.__version__}, {args.threads} thread(s); {args.rounds} processes x "
          f"{args.repeats} blocks x {args.updates} updates per candidate; environment of every process: "
          f"{allocator or 'no allocator or thread variables set'}", flush=True)
    print(precision_report(args.device), flush=True)
    machine, peak = machine_lines(args.device, args.threads)
    print("\n".join(machine), flush=True)
    results: dict[str, list[float]] = {name: [] for name in names}
    flops: dict[str, float | None] = {}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else reversed(names):
            command = [sys.executable, __file__, "--worker", name, "--device", args.device,
                       "--repeats", str(args.repeats), "--updates", str(args.updates),
                       "--warmup", str(args.warmup), "--threads", str(args.threads)]
            out = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
            if out.returncode != 0:
                sys.exit(f"{name} failed:\n{out.stderr}")
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            results[name] += measured["seconds_per_update"]
            flops[name] = measured["flops"]
    for name, seconds in results.items():
        counted = "" if flops[name] is None else f"; {flops[name] / 1e9:.3f} GFLOP of products"
        print(f"{name:<11} {summary(seconds, 1e3, 'ms')} per update; "
              f"{1.0 / statistics.median(seconds):.0f} updates/s at the median{counted}")
    lines = [ratio_line(f"sac_update_time_vs_{peer}", results["ours"], results[peer]) for peer in args.peers]
    lines += [ratio_line(f"sac_update_time_medium_vs_{peer}", results["ours@medium"], results[peer])
              for peer in args.peers]
    if "sb3@medium" in results:
        lines.append(ratio_line("sac_update_time_medium_vs_sb3_medium", results["ours@medium"],
                                results["sb3@medium"]))
    if "compiled" in results:
        lines.append(ratio_line("sac_update_time_compiled_vs_eager", results["compiled"], results["ours"]))
    lines += [share_of_peak_line(f"sac_update_{name}", flops[name], seconds, peak)
              for name, seconds in results.items() if flops[name] is not None]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
