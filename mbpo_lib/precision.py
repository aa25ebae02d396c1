"""The precision of float32 matrix products, set around this library's own work only.

Both of MBPO's hot loops, the ensemble's training and rollouts and SAC's G updates per step, are
mostly matrix products. PyTorch lets a program permit lower-precision arithmetic inside float32
products (:func:`torch.set_float32_matmul_precision`); everything else stays float32: the
outputs, the accumulation, the parameters, the gradients, Adam's moments. Here the permission is
given only while a model or an agent computes, and taken back after, so a user's own code keeps
PyTorch's settings.

Two settings, with PyTorch's names:

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

The switches are PyTorch's global flags: ``torch.backends.mkldnn.matmul.fp32_precision`` and
``torch.backends.cuda.matmul.fp32_precision`` from torch 2.9 on, and
``torch.set_float32_matmul_precision`` before that. Another thread's products that run during
the context are affected too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

MATMUL_PRECISIONS = ("highest", "medium")
# What each setting asks of each backend's fp32_precision flag (torch >= 2.9).
_NEW_API = {"cpu": ("mkldnn", {"highest": "ieee", "medium": "bf16"}),
            "cuda": ("cuda", {"highest": "ieee", "medium": "tf32"})}


def check_matmul_precision(value: object, owner: str = "matmul_precision") -> str:
    """``value`` if it names a setting, else a ``ValueError`` listing the allowed ones."""
    if value not in MATMUL_PRECISIONS:
        raise ValueError(f"{owner} must be one of {MATMUL_PRECISIONS}, got {value!r} "
                         "('highest': float32 products; 'medium': products may round their inputs "
                         "to bfloat16 on the CPU or TensorFloat-32 on CUDA, and run faster)")
    return str(value)


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

    ``"highest"`` changes nothing (it does not override a user's own global setting either).
    """
    check_matmul_precision(precision)
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
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = (1.0 + torch.rand(2, size, size, generator=g)).to(device)   # in [1, 2): 23 random bits
    eye = torch.eye(size, device=device)
    with matmul_precision(precision, device):
        products = (torch.bmm(x, eye.expand(2, size, size)), x[0] @ eye)
    return max(float(((p - xi) / xi).abs().max()) for p, xi in zip(products, (x, x[0]), strict=True))
