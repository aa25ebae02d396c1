"""The README's gallery: two short GIFs, made by mbpo_lib's own code from seeded runs.

* ``figures/gallery_inverted_pendulum.gif``: MBPO on InvertedPendulum-v5 (the preset, seed 0),
  trained until its evaluation return first reaches 1000, then one episode of its deterministic
  policy from ``reset(seed=0)``, the first 250 steps (10 s);
* ``figures/gallery_hopper_imagined.gif``: a Hopper-v5 dynamics model (the preset's ensemble)
  fitted on 5,000 random-action steps, rolled out 50 steps open-loop from a real start state
  under random actions, drawn beside the real Hopper (``render_imagined``; the real episode
  runs with ``terminate_when_unhealthy=False``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/make_gallery.py`` (about 5 minutes on a
laptop CPU). Each GIF is checked to be at most ``mbpo_lib.render.MAX_CLIP_BYTES``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import mbpo_lib

ROOT = Path(__file__).resolve().parent.parent
SIZE = (240, 180)


def inverted_pendulum(out: Path) -> None:
    config = mbpo_lib.preset("InvertedPendulum-v5", seed=0, total_steps=5_000)
    trainer = mbpo_lib.MBPO(config, device="cpu")
    trainer.train(callbacks=[lambda mbpo, row: row["eval_return"] >= 1000], progress=False)
    row = trainer.history[-1]
    print(f"InvertedPendulum-v5: evaluation return {row['eval_return']:.0f} at step {trainer.env_steps:,}")
    episode = mbpo_lib.render_episode(config.env_id, trainer.agent, seed=0, max_steps=250, size=SIZE,
                                      title=f"MBPO after {trainer.env_steps:,} steps")
    mbpo_lib.write_clip(episode, out)


def hopper_imagined(out: Path) -> None:
    rng = np.random.default_rng(0)
    env = mbpo_lib.make_env("Hopper-v5", seed=0)
    steps = mbpo_lib.ReplayBuffer(5_000, 11, 3, device="cpu")
    obs, _ = env.reset(seed=0)
    for _ in range(5_000):
        act = rng.uniform(-1, 1, 3).astype(np.float32)
        next_obs, rew, terminated, truncated, _ = env.step(act)
        steps.add(obs, act, float(rew), next_obs, bool(terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    model = mbpo_lib.DynamicsModel(11, 3, mbpo_lib.preset("Hopper-v5").ensemble, seed=0)
    report = model.fit(steps)
    print(f"Hopper-v5 model: holdout MSE {report.elite_holdout_mse:.4f} after {report.epochs} epochs")
    actions = rng.uniform(-1, 1, (50, 3))
    rollout = mbpo_lib.render_imagined(model, "Hopper-v5", actions=actions, k=50, seed=1, model_seed=0,
                                       size=SIZE, env_kwargs={"terminate_when_unhealthy": False})
    mbpo_lib.write_clip(rollout, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("pendulum", "hopper"))
    args = parser.parse_args()
    mbpo_lib.seed_everything(0)
    torch.set_num_threads(1)
    jobs = {"pendulum": (inverted_pendulum, "gallery_inverted_pendulum.gif"),
            "hopper": (hopper_imagined, "gallery_hopper_imagined.gif")}
    for name, (make, filename) in jobs.items():
        if args.only in (None, name):
            start = time.perf_counter()
            path = ROOT / "figures" / filename
            make(path)
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB in "
                  f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
