"""The precision of float32 matrix products, set around this library's own work only.

Both of MBPO's hot loops, the ensemble's training and rollouts and SAC's G updates per step, are
mostly matrix products. PyTorch lets a program permit lower-precision arithmetic inside float32
products (:func:`torch.set_float32_matmul_precision`); everything else stays float32: the
outputs, the accumulation, the parameters, the gradients, Adam's moments. Here the permission is
given only while a model or an agent computes, and taken back after, so a user's own code keeps
PyTorch's settings.

Three settings, the first two with PyTorch's names:

* ``"highest"`` (the default everywhere): float32 products, as PyTorch does by default.
* ``"medium"``: products may round their inputs to bfloat16 (8 significant bits) on the CPU and
  to TensorFloat-32 (11 bits) on CUDA (Ampere or newer), accumulating in float32. On the CPU it
  also hands the products to oneDNN instead of MKL. What that costs and buys depends on the
  processor, and :func:`product_rounding_error` measures it:

  - on a CPU with AMX (Intel Sapphire Rapids and newer) oneDNN really computes in bfloat16;
  - on the AMD EPYC these notebooks were built on (AVX-512 with the bfloat16 instructions, no
    AMX) oneDNN keeps float32 arithmetic: the error is 0, the same as ``"highest"``. The
    products still run 2.2x faster than under ``"highest"``, because MKL gives an AMD processor
    its AVX2 code and oneDNN runs AVX-512.

* ``"auto"``: ``"medium"`` where :func:`product_rounding_error` measures that it leaves the
  products exact float32 on this device (the fast kernels at no cost in precision: the EPYC
  above, and CPUs with AVX2 only, where oneDNN has no bfloat16 kernel), ``"highest"`` everywhere
  else (CUDA, where ``"medium"`` means TF32; a CPU with AMX). :func:`resolve_matmul_precision`
  says which, measured once per device and process. Not the default: summing in another order
  changes a seeded run's numbers from the first product on, so committed runs made at
  ``"highest"`` would no longer reproduce.

The switches are PyTorch's global flags: ``torch.backends.mkldnn.matmul.fp32_precision`` and
``torch.backends.cuda.matmul.fp32_precision`` from torch 2.9 on, and
``torch.set_float32_matmul_precision`` before that. Another thread's products that run during
the context are affected too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch

MATMUL_PRECISIONS = ("highest", "medium", "auto")
# What each setting asks of each backend's fp32_precision flag (torch >= 2.9).
_NEW_API = {"cpu": ("mkldnn", {"highest": "ieee", "medium": "bf16"}),
            "cuda": ("cuda", {"highest": "ieee", "medium": "tf32"})}


def check_matmul_precision(value: object, owner: str = "matmul_precision") -> str:
    """``value`` if it names a setting, else a ``ValueError`` listing the allowed ones."""
    if value not in MATMUL_PRECISIONS:
        raise ValueError(f"{owner} must be one of {MATMUL_PRECISIONS}, got {value!r} "
                         "('highest': float32 products; 'medium': products may round their inputs "
                         "to bfloat16 on the CPU or TensorFloat-32 on CUDA, and run faster; 'auto': "
                         "'medium' where it leaves products exact float32 on the device, else 'highest')")
    return str(value)


def resolve_matmul_precision(precision: str, device: torch.device | str) -> str:
    """The concrete setting (``"highest"`` or ``"medium"``) that ``precision`` means on ``device``:
    ``"auto"`` is ``"medium"`` where :func:`product_rounding_error` of ``"medium"`` is 0 there, else
    ``"highest"``; the other two are themselves."""
    check_matmul_precision(precision)
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _auto(str(device))


@functools.cache
def _auto(device: str) -> str:
    return "medium" if product_rounding_error("medium", device) == 0.0 else "highest"


def _backend_flag(device_type: str) -> object | None:
    """The object holding ``fp32_precision`` for this device type's matmuls, or None (old torch,
    or a device type this module does not know)."""
    if device_type not in _NEW_API:
        return None
    backend = getattr(torch.backends, _NEW_API[device_type][0], None)
    matmul = getattr(backend, "matmul", None)
    return matmul if matmul is not None and hasattr(matmul, "fp32_precision") else None


@contextmanager
def matmul_precision(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the block's float32 matrix products on ``device`` at ``precision``, then restore.

    ``"highest"`` changes nothing (it does not override a user's own global setting either);
    ``"auto"`` is what :func:`resolve_matmul_precision` makes of it on ``device``.
    """
    precision = resolve_matmul_precision(precision, device)
    if precision == "highest":
        yield
        return
    device_type = torch.device(device).type
    flag = _backend_flag(device_type)
    if flag is not None:
        before = flag.fp32_precision
        flag.fp32_precision = _NEW_API[device_type][1][precision]
        try:
            yield
        finally:
            flag.fp32_precision = before
    elif device_type in _NEW_API:                 # torch < 2.9: the process-wide setting
        before = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(precision)
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(before)
    else:                                         # e.g. "mps": nothing to switch
        yield


def product_rounding_error(precision: str, device: torch.device | str = "cpu", size: int = 256) -> float:
    """What ``precision`` really does to float32 products on this machine: the largest relative
    error of ``X @ I`` (batched and plain), ``X`` float32 with all 24 mantissa bits in use.

    0.0 means the inputs were not rounded (float32 arithmetic; e.g. ``"medium"`` on a CPU that
    has no fast bfloat16 kernel, where oneDNN computes in float32); up to ``2**-8`` means
    bfloat16 inputs, up to ``2**-11`` TensorFloat-32 (round to nearest; twice that if the
    hardware truncates).
    """
    if precision == "auto":
        raise ValueError("product_rounding_error measures 'highest' or 'medium'; 'auto' is one of them "
                         "on each device (resolve_matmul_precision says which), got 'auto'")
    check_matmul_precision(precision)
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = (1.0 + torch.rand(2, size, size, generator=g)).to(device)   # in [1, 2): 23 random bits
    eye = torch.eye(size, device=device)
    with matmul_precision(precision, device):
        products = (torch.bmm(x, eye.expand(2, size, size)), x[0] @ eye)
    return max(float(((p - xi) / xi).abs().max()) for p, xi in zip(products, (x, x[0]), strict=True))
