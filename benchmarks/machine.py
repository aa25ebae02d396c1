"""The machine a benchmark ran on, and how close each side comes to that machine's floor.

A ratio against a peer depends on the processor: on an AMD EPYC with AVX-512, oneDNN's kernels
(which ``matmul_precision="medium"`` selects) run float32 products about twice as fast as MKL's
AVX2 code; on one with AVX2 only they do not. So every benchmark prints first:

* ``cpu``: the processor's model name, its logical cores and the vector extensions that decide
  the kernels (``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_bf16``), read from ``/proc/cpuinfo``;
* ``peak``: the float32 throughput of large matrix products measured here, at the benchmark's
  thread count, through MKL (PyTorch's default) and, where :func:`mbpo_lib.product_rounding_error`
  shows that ``"medium"`` still computes exact float32 products on this machine, through oneDNN;
  the machine's float32 peak is the faster of the two;

and ends, beside its ``ratio`` lines, with one ``share_of_peak <name> <value>`` line per side:
the side's matrix-product FLOPs per call (counted by ``torch.utils.flop_counter`` while the
side's own code runs once, not by a formula) over its median time per call, as a fraction of
that peak. A side near 1 is bound by its products; the rest of its time is overhead (Python,
dispatch, small operations, memory traffic).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from mbpo_lib.precision import matmul_precision, product_rounding_error
from mbpo_lib.runtime import VECTOR_EXTENSIONS, cpu_name, vector_extensions  # noqa: F401 (re-exported)

# The shapes the peak is taken from: one large square product, and the batched shape of the
# ensemble's layers (7 members x 256 rows x 200 x 200), the best the benchmarks can hope for.
PEAK_SHAPES = ((1, 2048, 2048, 2048), (7, 256, 200, 200))


def product_flops(call: Callable[[], object], per_call: int = 1) -> float:
    """Matrix-product FLOPs of one ``call()`` divided by ``per_call`` (the calls it makes),
    counted by PyTorch's ``FlopCounterMode`` (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ... forward
    and backward) while the call runs once."""
    if per_call < 1:
        raise ValueError(f"per_call must be >= 1, got {per_call!r}")
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return counter.get_total_flops() / per_call


def float32_peak(device: torch.device | str = "cpu", threads: int | None = None,
                 repeats: int = 20, shapes: tuple[tuple[int, int, int, int], ...] = PEAK_SHAPES,
                 ) -> dict[str, float]:
    """Measured float32 GFLOP/s of the best of ``shapes`` (``(batch, m, k, n)``), best of
    ``repeats`` timings, at ``threads`` torch threads (None: as set). On a shared 2-core machine
    the best of 5 moved between 50 and 74 GFLOP/s from run to run; the best of 20 stayed
    within 74 to 77 (about 12 s).

    Keys: ``"highest"`` (PyTorch's default kernels), ``"medium"`` where that setting leaves
    products exact float32 on this machine (left out otherwise: then it is not a float32
    figure), and ``"peak"``, the larger of the two.
    """
    device = torch.device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    settings = ["highest"]
    if product_rounding_error("medium", device) == 0.0:
        settings.append("medium")
    g = torch.Generator().manual_seed(0)
    result: dict[str, float] = {}
    for setting in settings:
        best = 0.0
        for batch, m, k, n in shapes:
            a = torch.randn(batch, m, k, generator=g).to(device)
            b = torch.randn(batch, k, n, generator=g).to(device)
            out = torch.empty(batch, m, n, device=device)
            with matmul_precision(setting, device):
                torch.bmm(a, b, out=out)                          # warm-up: kernel choice, pages
                for _ in range(repeats):
                    start = time.perf_counter()
                    torch.bmm(a, b, out=out)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    best = max(best, 2.0 * batch * m * k * n / (time.perf_counter() - start) / 1e9)
        result[setting] = best
    result["peak"] = max(result.values())
    return result


def machine_lines(device: torch.device | str, threads: int) -> tuple[list[str], float]:
    """The ``cpu`` and ``peak`` lines a benchmark prints first, and the peak in GFLOP/s."""
    device = torch.device(device)
    peak = float32_peak(device, threads)
    lines = [f"cpu {cpu_name()}; {os.cpu_count()} logical cores; vector extensions: "
             f"{' '.join(vector_extensions()) or 'none of ' + ', '.join(VECTOR_EXTENSIONS)}"]
    if device.type == "cuda":
        lines.append(f"gpu {torch.cuda.get_device_name(device)}")
    kernels = ", ".join(f"{setting} {gflops:.0f}" for setting, gflops in peak.items() if setting != "peak")
    lines.append(f"peak float32 products at {threads} thread(s), GFLOP/s: {kernels}; "
                 f"peak {peak['peak']:.0f} (best of {', '.join('x'.join(map(str, s)) for s in PEAK_SHAPES)})")
    return lines, peak["peak"]


def share_of_peak_line(name: str, flops_per_call: float, seconds_per_call: list[float],
                       peak_gflops: float) -> str:
    """``share_of_peak <name> <value>``: product FLOPs over the median time, as a fraction of
    ``peak_gflops``."""
    if peak_gflops <= 0 or not seconds_per_call:
        raise ValueError(f"need a positive peak and some timings, got peak {peak_gflops!r} and "
                         f"{len(seconds_per_call)} timings")
    achieved = flops_per_call / statistics.median(seconds_per_call) / 1e9
    return f"share_of_peak {name} {achieved / peak_gflops:.3f}"
