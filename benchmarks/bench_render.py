"""Frames per second of rendering at the default size (320 x 240), so notebooks can budget clips.

What is timed, per task (Hopper-v5 and InvertedPendulum-v5 by default), after a warm-up:

* ``episode``: ``mbpo_lib.render_episode``'s work per frame: one env step and one
  ``env.render()`` through MuJoCo's OpenGL renderer (headless: EGL, on a machine without a GPU
  Mesa's software rasteriser llvmpipe), plus the return label drawn with Pillow;
* ``state``: drawing a given state, ``mbpo_lib.render_state`` (set ``qpos``/``qvel``,
  ``mj_forward``, render): what each half of ``render_imagined``'s frames costs;
* ``encode_mp4``: H.264 encoding of those frames (PyAV, x264 ``crf 23``, one thread).

The CPU's model name, ``LP_NUM_THREADS`` (llvmpipe's threads; unset: one per core) and the
backend are printed first. Ends with ``frames_per_second <task>_<what> <value>`` lines.
Run: ``.venv/bin/python benchmarks/bench_render.py`` (``LP_NUM_THREADS=1`` for one core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def timed(fn, frames: int, rounds: int) -> list[float]:
    """Frames per second of ``fn(i)`` over ``rounds`` blocks of ``frames`` calls."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(frames):
            fn(i)
        rates.append(frames / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="Hopper-v5,InvertedPendulum-v5")
    parser.add_argument("--frames", type=int, default=60, help="frames per timed block")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import mbpo_lib
    from mbpo_lib import render

    render.setup_headless_gl()
    print(f"CPU: {mbpo_lib.cpu_description()}")
    threads = os.environ.get("LP_NUM_THREADS", "unset")
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')} LP_NUM_THREADS={threads} "
          f"size={render.DEFAULT_SIZE[0]}x{render.DEFAULT_SIZE[1]}")
    lines = []
    for env_id in args.envs.split(","):
        env = render._render_env(env_id, 0, render.DEFAULT_SIZE, None)
        rng = np.random.default_rng(0)
        act_dim = env.action_space.shape[0]
        frames: list[np.ndarray] = []

        def episode_frame(i: int, env=env, rng=rng, act_dim=act_dim, frames=frames) -> None:
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, act_dim).astype(np.float32))
            if terminated or truncated:
                env.reset()
            frames.append(render.label_frame(render._frame(env), [f"return {i:.1f}   step {i}"]))

        base = env.unwrapped
        qpos, qvel = base.data.qpos.copy(), base.data.qvel.copy()

        def state_frame(i: int, env=env, qpos=qpos, qvel=qvel) -> None:
            render.render_state(env, qpos + 0.001 * i, qvel)

        timed(episode_frame, 10, 1)                         # warm-up: the GL context, the first frames
        results = {"episode": timed(episode_frame, args.frames, args.rounds),
                   "state": timed(state_frame, args.frames, args.rounds)}
        clip = np.stack(frames[-args.frames:])
        results["encode_mp4"] = timed(lambda i, clip=clip: render.encode_clip(clip, "mp4", fps=30),
                                      1, args.rounds)
        results["encode_mp4"] = [rate * len(clip) for rate in results["encode_mp4"]]
        env.close()
        for what, rates in results.items():
            median = statistics.median(rates)
            print(f"{env_id:>22} {what:>10}: {median:7.1f} frames/s "
                  f"(min {min(rates):.1f}, max {max(rates):.1f})")
            lines.append(f"frames_per_second {env_id}_{what} {median:.1f}")
    print(f"mbpo_lib {mbpo_lib.__version__}")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
