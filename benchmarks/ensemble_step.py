"""One model step of the dynamics ensemble: ours against mbrl-lib, same run, same machine.

What one "step" is, on both sides: ``B`` rows of (obs, act) are normalised, each row goes
through one member picked at random among the 5 elites of a 7-member ensemble (4 hidden layers
of 200 SiLU units, inputs obs 11 + act 3 like Hopper, outputs reward + delta-s), a Gaussian
sample is drawn from that member and the next observation is ``obs + delta``.

* ours: ``DynamicsModel.step(obs, act, generator)`` (rows grouped by member, only the chosen
  member computed per row);
* peer: mbrl-lib 0.2.0's ``OneDTransitionRewardModel(GaussianMLP(...,
  propagation_method="random_model"), normalize=True).sample(act, state, rng=...)`` under
  ``torch.no_grad()``, which is what its ``ModelEnv.step`` calls (without the termination and
  reward functions). Its "random_model" gives every elite exactly B / 5 rows (a random
  permutation split in equal parts), so B must be a multiple of 5.

Neither model is trained: the speed does not depend on the weights. Install the peer with
``make bench`` (or see benchmarks/README.md). Ends with ``ratio step_<B> <ours/peer>`` lines
(wall clock) and, on the CPU, ``ratio step_<B>_cpu_time`` (process CPU time: steadier on a
machine shared with other jobs).
"""

from __future__ import annotations

import argparse

import torch
from mbrl_peer import ACT, ELITES, HIDDEN, LAYERS, MEMBERS, OBS, mbrl_model
from timing import measure, ratio_line, summary

from mbpo_lib.config import EnsembleConfig
from mbpo_lib.dynamics import DynamicsModel


def ours(rows: int, device: torch.device, seed: int = 0):
    model = DynamicsModel(OBS, ACT, EnsembleConfig(ensemble_size=MEMBERS, num_elites=ELITES,
                                                   hidden_dim=HIDDEN, num_layers=LAYERS),
                          device=device, seed=seed)
    g = torch.Generator(device=device).manual_seed(seed)
    obs = torch.randn(rows, OBS, generator=g, device=device)
    act = torch.rand(rows, ACT, generator=g, device=device) * 2 - 1
    model.normalizer.fit(torch.cat([obs, act], -1))
    return lambda: model.step(obs, act, generator=g)


def peer(rows: int, device: torch.device, seed: int = 0):
    import mbrl.models
    import mbrl.types

    model = mbrl_model(device, seed)
    model.set_elite(list(range(ELITES)))
    g = torch.Generator(device=device).manual_seed(seed)
    obs = torch.randn(rows, OBS, generator=g, device=device)
    act = torch.rand(rows, ACT, generator=g, device=device) * 2 - 1
    model.update_normalizer(mbrl.types.TransitionBatch(obs.cpu().numpy(), act.cpu().numpy(), None, None,
                                                       None, None))
    state = model.reset(obs, rng=g)

    def step():
        with torch.no_grad():   # as mbrl's ModelEnv.step does
            return model.sample(act, state, rng=g)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for both sides (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"ensemble step: {MEMBERS} members ({ELITES} elites), {LAYERS}x{HIDDEN} SiLU, obs {OBS} + "
          f"act {ACT}, float32, device {device}, torch {torch.__version__}, {args.threads} threads")
    ratios = []
    for rows in args.rows:
        if rows % ELITES:
            parser.error(f"--rows must be multiples of {ELITES} (the peer splits rows evenly)")
        cpu: dict[str, list[float]] = {}
        times = measure({"ours": ours(rows, device), "mbrl": peer(rows, device)},
                        repeats=args.repeats, warmup=args.warmup, device=device, cpu_seconds=cpu)
        for name, seconds in times.items():
            print(f"step {rows:>7} rows  {name:<5} wall {summary(seconds, 1e3, 'ms')}; "
                  f"cpu {summary(cpu[name], 1e3, 'ms')}")
        ratios.append(ratio_line(f"step_{rows}", times["ours"], times["mbrl"]))
        if device.type == "cpu":
            ratios.append(ratio_line(f"step_{rows}_cpu_time", cpu["ours"], cpu["mbrl"]))
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
