"""Run-time switches every notebook and script reads: FAST mode, the device, seeding, the CPU, setup check.

``MBPO_FAST=1`` asks for small budgets (CI and quick looks): the *same code path*, fewer steps.
:func:`fast_mode` is the one place that reads the variable, so every notebook agrees on it.
"""

from __future__ import annotations

import os
import platform
import random
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

FAST_ENV_VAR = "MBPO_FAST"

# The flags of /proc/cpuinfo that decide which float32 product kernels run on a CPU (AVX2 code,
# AVX-512 code such as oneDNN's, bfloat16 and AMX units): a timing means little without them.
VECTOR_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")

# Environments the setup check tries to build: a pendulum (the FAST-mode workhorse) and Hopper.
SETUP_CHECK_ENVS = ("InvertedPendulum-v5", "Hopper-v5")


def fast_mode() -> bool:
    """True when ``MBPO_FAST`` is ``"1"``; False when it is unset, empty or ``"0"``.

    Anything else is a typo we refuse to guess about (``"true"``, ``"yes"``, ``"2"``).
    """
    value = os.environ.get(FAST_ENV_VAR)
    if value is None or value.strip() in ("", "0"):
        return False
    if value.strip() == "1":
        return True
    raise ValueError(f"{FAST_ENV_VAR}={value!r} is not understood: use 1 (small budgets) or 0/unset")


def default_device() -> torch.device:
    """``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_name(cpuinfo: str | None = None) -> str:
    """The processor's model name, from ``/proc/cpuinfo`` (or the given text of one).

    Elsewhere (macOS, Windows) ``platform.processor()``; ``"unknown CPU"`` when neither says.
    Every timing the series reports names the CPU it came from: ratios and seconds change with it.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    if cpuinfo is None and platform.processor():
        return platform.processor()
    return "unknown CPU"


def vector_extensions(cpuinfo: str | None = None) -> list[str]:
    """Which of :data:`VECTOR_EXTENSIONS` the first processor's ``flags`` line lists (``[]``
    where there is no ``/proc/cpuinfo``)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [name for name in VECTOR_EXTENSIONS if name in flags]
    return []


def cpu_description() -> str:
    """One line for a timing's caption: ``"AMD EPYC 7B13, 2 logical cores, avx2"``."""
    extensions = ", ".join(vector_extensions()) or "no AVX2"
    return f"{cpu_name()}, {os.cpu_count()} logical cores, {extensions}"


def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    try:
        return path.read_text()
    except OSError:  # not Linux
        return ""


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators (CUDA too) and return a fresh
    CPU ``torch.Generator`` seeded with ``seed`` for code that takes an explicit generator.

    Same seed, same numbers on the CPU. On CUDA some kernels are nondeterministic by design;
    we do not force deterministic algorithms because they are slower.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds the legacy global that older code reads)
    torch.manual_seed(seed)  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def setup_report(env_ids: tuple[str, ...] = SETUP_CHECK_ENVS) -> dict[str, object]:
    """What this machine runs: versions, device, FAST mode, and whether MuJoCo envs step.

    Each env in ``env_ids`` is built, reset with a seed and stepped once with a random
    action; its entry is ``"ok (obs dim N, act dim M)"`` or the error it raised.
    """
    import gymnasium as gym

    report: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_description(),
        **{name: _version(name) for name in ("mbpo_lib", "torch", "gymnasium", "mujoco", "numpy")},
        "device": str(default_device()),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch_threads": torch.get_num_threads(),
        "fast_mode": fast_mode(),
    }
    for env_id in env_ids:
        try:
            env = gym.make(env_id)
            try:
                env.reset(seed=0)
                env.action_space.seed(0)
                env.step(env.action_space.sample())
                obs_dim = env.observation_space.shape[0]
                act_dim = env.action_space.shape[0]
            finally:
                env.close()
            report[env_id] = f"ok (obs dim {obs_dim}, act dim {act_dim})"
        except Exception as error:  # the report shows any failure instead of stopping
            report[env_id] = f"FAILED: {type(error).__name__}: {error}"
    return report
