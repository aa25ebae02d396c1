"""Training throughput of the dynamics ensemble: ours against mbrl-lib, same run, same machine.

Both sides fit a 7-member ensemble (4 hidden layers of 200 SiLU units, inputs obs 11 + act 3
like Hopper, outputs reward + delta-s, trained log-variance bounds, float32) for a fixed number
of epochs on the same N transitions (default 20,000), with the same split: a holdout of
min(20 %, 5000) rows and the rest for training, where each member draws its own bootstrap
(with replacement) and takes minibatches of 256 rows, Adam at lr 1e-3:

* ours: ``DynamicsModel.fit_arrays(inputs, targets)`` with ``max_epochs`` set (it refits the
  normaliser, evaluates the holdout after every epoch, keeps each member's best weights and
  picks the elites);
* peer: what mbrl-lib 0.2.0's MBPO does per fit: ``update_normalizer``, a ``BootstrapIterator``
  (``permute_indices=False``: sampling with replacement, reshuffled every epoch) and
  ``ModelTrainer.train(train, val, num_epochs)``, which also evaluates the holdout (before the
  first epoch and after every epoch) and keeps the best weights. Its holdout iterator gets the
  whole holdout as one batch, as ours does (mbrl's own MBPO uses batches of 256 there, which is
  slower for it).

So both count the same evaluation work: ``epochs + 1`` holdout passes per fit. Reported:
seconds per fit and seconds per 1,000 minibatch updates (one update = one Adam step on a
``[7, 256]`` batch). Ends with ``ratio fit_per_1000_updates <ours/peer>`` (wall clock) and, on
the CPU, ``ratio fit_per_1000_updates_cpu_time`` (process CPU time: steadier on a machine
shared with other jobs).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from mbrl_peer import ACT, ELITES, HIDDEN, LAYERS, MEMBERS, OBS, mbrl_model
from timing import measure, ratio_line, summary

from mbpo_lib.config import EnsembleConfig
from mbpo_lib.dynamics import DynamicsModel

BATCH, LR = 256, 1e-3


def transitions(n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A smooth, noisy, Hopper-sized system: ``(obs, act, rew, next_obs)`` as float32 tensors."""
    g = torch.Generator().manual_seed(seed)
    A, B = torch.randn(OBS, OBS, generator=g) * 0.3, torch.randn(ACT, OBS, generator=g)
    obs = torch.randn(n, OBS, generator=g)
    act = torch.rand(n, ACT, generator=g) * 2 - 1
    next_obs = obs + 0.1 * torch.tanh(obs @ A + act @ B) + 0.01 * torch.randn(n, OBS, generator=g)
    rew = obs[:, 0] - 0.1 * (act ** 2).sum(-1)
    return obs, act, rew, next_obs


def holdout_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows for training and for the holdout, as ``fit_arrays`` sizes them."""
    n_holdout = min(int(n * 0.2), 5000)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    return perm[n_holdout:], perm[:n_holdout]


def ours(data, epochs: int, device: torch.device):
    config = EnsembleConfig(ensemble_size=MEMBERS, num_elites=ELITES, hidden_dim=HIDDEN, num_layers=LAYERS,
                            batch_size=BATCH, lr=LR, max_epochs=epochs)
    model = DynamicsModel(OBS, ACT, config, device=device, seed=0)
    inputs, targets = model.make_dataset(*(t.to(device) for t in data))

    def fit() -> int:
        report = model.fit_arrays(inputs, targets)
        return report.epochs * math.ceil(report.n_train / BATCH)

    return fit


def peer(data, epochs: int, device: torch.device):
    import mbrl.models
    from mbrl.types import TransitionBatch
    from mbrl.util.replay_buffer import BootstrapIterator, TransitionIterator

    model = mbrl_model(device, 0)
    # mbrl-lib's MBPO default: one L2 coefficient for all parameters (ours: the paper's per layer)
    trainer = mbrl.models.ModelTrainer(model, optim_lr=LR, weight_decay=5e-5)
    obs, act, rew, next_obs = (t.numpy() for t in data)
    done = np.zeros(len(obs), dtype=bool)
    train_rows, holdout_rows = (rows.numpy() for rows in holdout_split(len(obs)))
    batch = TransitionBatch(obs, act, next_obs, rew, done, done)
    train, holdout = batch[train_rows], batch[holdout_rows]
    rng = np.random.default_rng(0)

    def fit() -> int:
        model.update_normalizer(train)
        train_iter = BootstrapIterator(train, BATCH, MEMBERS, shuffle_each_epoch=True,
                                       permute_indices=False, rng=rng)
        val_iter = TransitionIterator(holdout, len(holdout), shuffle_each_epoch=False, rng=rng)
        trainer.train(train_iter, dataset_val=val_iter, num_epochs=epochs, silent=True)
        return epochs * len(train_iter)

    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed fit")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed fits per side before timing (the first also checks the update counts)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for both sides (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = transitions(args.transitions)
    fits = {"ours": ours(data, args.epochs, device), "mbrl": peer(data, args.epochs, device)}
    updates = {name: fit() for name, fit in fits.items()}  # also checks both do the same work
    if len(set(updates.values())) != 1:
        raise SystemExit(f"the two fits do different numbers of updates: {updates}")
    n_updates = updates["ours"]
    print(f"ensemble fit: {MEMBERS} members, {LAYERS}x{HIDDEN} SiLU, obs {OBS} + act {ACT}, float32, "
          f"{args.transitions} transitions, batch {BATCH} per member, {args.epochs} epochs = {n_updates} "
          f"updates per fit, device {device}, torch {torch.__version__}, {args.threads} threads")
    cpu: dict[str, list[float]] = {}
    times = measure(fits, repeats=args.repeats, warmup=max(args.warmup - 1, 0), device=device,
                    cpu_seconds=cpu)
    for name, seconds in times.items():
        print(f"fit              {name:<5} wall {summary(seconds)}; cpu {summary(cpu[name])}")
    for name, seconds in times.items():
        print(f"per 1000 updates {name:<5} wall {summary(seconds, 1000 / n_updates)}; "
              f"cpu {summary(cpu[name], 1000 / n_updates)}")
    print(ratio_line("fit_per_1000_updates", times["ours"], times["mbrl"]))
    if device.type == "cpu":
        print(ratio_line("fit_per_1000_updates_cpu_time", cpu["ours"], cpu["mbrl"]))


if __name__ == "__main__":
    main()
