"""Mixed precision: a visible choice, bf16 autocast by default where the hardware computes bf16 natively.

On a CUDA GPU and on a CPU with AVX-512 BF16 or AMX, bf16 autocast roughly halves a
training step; on a CPU without them (AVX2 only) PyTorch falls back to a slow generic
convolution for bf16 and the same step takes several times *longer*. So the precision
is one of three settings (``--precision`` of ``sscn train`` and ``sscn pretrain``):

- ``auto``: bf16 autocast where :func:`bf16_native`, else float32; the environment
  variable ``SSCN_PRECISION=float32|bf16`` overrides what ``auto`` picks (the test suite
  uses it to run its numerics tests in bf16 on every CPU);
- ``float32``: the plain float32 eager path, on any hardware;
- ``bf16``: bf16 autocast, even where it is emulated (slow, but the same numbers).

Inference (``sscn colorize``) always runs in float32.
"""
from __future__ import annotations

import contextlib
import os

import torch

from .config import PRECISIONS

ENV = "SSCN_PRECISION"


def bf16_native(device: torch.device) -> bool:
    """True where bf16 matrix maths runs in hardware (a CUDA GPU with bf16, AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:  # oneDNN's own check of the CPU's instruction sets
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(precision: str) -> None:
    from ..errors import SSCNError

    if precision not in PRECISIONS:
        raise SSCNError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")


def resolve(device: torch.device, precision: str = "auto") -> str:
    """``"bf16"`` or ``"float32"``: what ``precision`` means on ``device`` (see the module's doc)."""
    check_precision(precision)
    if precision == "auto":
        forced = os.environ.get(ENV, "")
        if forced:
            if forced not in PRECISIONS[1:]:
                from ..errors import SSCNError

                raise SSCNError(f"{ENV} must be float32 or bf16 (got {forced!r}); unset it for the hardware's choice")
            return forced
        return "bf16" if bf16_native(device) else "float32"
    return precision


def autocast_for(device: torch.device, precision: str = "auto"):
    """The forward pass's context: bf16 autocast when ``precision`` resolves to bf16, else nothing."""
    if resolve(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device, precision: str = "auto") -> str:
    """One line for a run's log: the precision in use and why."""
    used = resolve(device, precision)
    if precision != "auto":
        why = "--precision " + precision
    elif os.environ.get(ENV):
        why = f"{ENV}={os.environ[ENV]}"
    elif used == "bf16":
        why = f"auto: this {device.type.upper()} computes bf16 natively"
    else:
        why = f"auto: this {device.type.upper()} has no native bf16, where autocast would be slower"
    name = "bf16 autocast" if used == "bf16" else "float32"
    return f"{name} ({why})"
