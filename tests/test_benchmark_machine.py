"""benchmarks/machine.py: the CPU description, the FLOP count and the share-of-peak line that
every benchmark prints beside its ratios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import mbpo_lib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import machine  # noqa: E402 (benchmarks/ is not a package)


def test_cpu_description_is_the_library_s():
    assert machine.cpu_name is mbpo_lib.cpu_name and machine.vector_extensions is mbpo_lib.vector_extensions


def test_product_flops_counts_a_product_and_its_gradients():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, generator=g), torch.randn(4, 5, generator=g)
    assert machine.product_flops(lambda: a @ b) == 2 * 3 * 4 * 5
    batched = torch.randn(7, 3, 4, generator=g)
    assert machine.product_flops(lambda: torch.bmm(batched, batched.transpose(1, 2))) == 7 * 2 * 3 * 4 * 3
    # A linear layer trained one step: the forward product, then the weight gradient and, because
    # the input needs one too, the input gradient: three products of the same size.
    layer = torch.nn.Linear(4, 5)
    x = torch.randn(8, 4, generator=g, requires_grad=True)
    assert machine.product_flops(lambda: layer(x).sum().backward()) == 3 * 2 * 8 * 4 * 5
    # Per call: a block of 4 calls counted once, divided by 4.
    assert machine.product_flops(lambda: [a @ b for _ in range(4)], per_call=4) == 2 * 3 * 4 * 5
    with pytest.raises(ValueError, match="per_call must be >= 1, got 0"):
        machine.product_flops(lambda: a @ b, per_call=0)


def test_float32_peak_measures_every_exact_setting():
    peak = machine.float32_peak("cpu", repeats=2, shapes=((2, 64, 64, 64),))
    assert peak["highest"] > 0
    assert peak["peak"] == max(value for key, value in peak.items() if key != "peak")
    # "medium" counts as a float32 figure only where it leaves the products exact.
    exact = machine.product_rounding_error("medium", "cpu") == 0.0
    assert ("medium" in peak) == exact


def test_share_of_peak_line():
    # 2 GFLOP a call at a median of 2 s is 1 GFLOP/s: a quarter of a 4 GFLOP/s peak.
    assert machine.share_of_peak_line("x", 2e9, [1.0, 2.0, 3.0], 4.0) == "share_of_peak x 0.250"
    with pytest.raises(ValueError, match="positive peak"):
        machine.share_of_peak_line("x", 2e9, [1.0], 0.0)
    with pytest.raises(ValueError, match="0 timings"):
        machine.share_of_peak_line("x", 2e9, [], 4.0)
