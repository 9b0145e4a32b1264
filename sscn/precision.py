"""Mixed precision: bf16 autocast where the hardware computes bf16 natively.

On a CUDA GPU and on a CPU with AVX-512 BF16 or AMX, bf16 autocast roughly halves a
training step; on a CPU without them (AVX2 only) PyTorch falls back to a slow generic
convolution for bf16 and the same step takes several times *longer*. ``autocast_for``
therefore turns autocast on only where it pays; ``amp=False`` (``--no-amp``) always
gives the plain float32 eager path.
"""
from __future__ import annotations

import contextlib

import torch


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


def autocast_for(device: torch.device, amp: bool = True):
    """The forward pass's context: bf16 autocast when ``amp`` and ``bf16_native(device)``, else nothing."""
    if amp and bf16_native(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device, amp: bool = True) -> str:
    if not amp:
        return "float32 (amp off)"
    if bf16_native(device):
        return "bf16 autocast"
    return f"float32 (this {device.type.upper()} has no native bf16; autocast would be slower)"
