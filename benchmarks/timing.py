"""The one timing helper the benchmarks share: interleaved repeats, medians, spread, ratio lines,
and the two pieces both use for their ``@medium`` sides (the precision report, a peer at "medium").

Ours and the peer run in turns (A B, B A, A B, ...) after warm-up, so a burst of load from
another job on the machine hits both sides alike rather than one; we report the median of the
repeats and their spread (min and max).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from mbpo_lib.precision import matmul_precision, product_rounding_error


def measure(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
            device: torch.device | str = "cpu",
            cpu_seconds: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall-clock seconds per call of each candidate, ``repeats`` times, after ``warmup`` untimed
    calls each.

    The candidates alternate within every repeat and the order flips each repeat. On a CUDA
    device the clock stops only after ``torch.cuda.synchronize``. Pass a dict as ``cpu_seconds``
    to also get the process's CPU seconds per call (user + system, all threads): on a machine
    shared with other jobs it is steadier than the wall clock, which also counts the time the
    process waited for a core.
    """
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu = {name: [] for name in names} if cpu_seconds is None else cpu_seconds
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            start, start_cpu = time.perf_counter(), time.process_time()
            candidates[name]()
            sync()
            times[name].append(time.perf_counter() - start)
            cpu.setdefault(name, []).append(time.process_time() - start_cpu)
    return times


def summary(seconds: list[float], scale: float = 1.0, unit: str = "s") -> str:
    """``median (min .. max, n=...)`` of ``seconds * scale``."""
    values = [s * scale for s in seconds]
    return (f"{statistics.median(values):.4g} {unit} (min {min(values):.4g} .. max {max(values):.4g}, "
            f"n={len(values)})")


def ratio_line(name: str, ours: list[float], peer: list[float]) -> str:
    """The closing line scripts read: ``ratio <name> <median(ours) / median(peer)>``.

    Pass wall-clock seconds for the ``<name>`` line; the benchmarks add ``<name>_cpu_time`` from
    the ``cpu_seconds`` of :func:`measure` on the CPU, where that is the steadier figure.
    """
    return f"ratio {name} {statistics.median(ours) / statistics.median(peer):.3f}"


def precision_report(device: torch.device | str) -> str:
    """The line each benchmark prints first: what matmul_precision "medium" does to a product here."""
    return (f"matmul_precision 'medium' on this machine: largest relative error of a product "
            f"{product_rounding_error('medium', device):.3g} (0: float32 arithmetic; 'highest': "
            f"{product_rounding_error('highest', device):.3g})")


def at_medium(call: Callable[[], object], device: torch.device | str) -> Callable[[], object]:
    """A peer's unchanged ``call``, run under matmul_precision("medium") as ``ours@medium`` is."""
    def call_at_medium() -> object:
        with matmul_precision("medium", device):
            return call()

    return call_at_medium
