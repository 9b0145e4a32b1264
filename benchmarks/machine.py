"""One line naming the machine a benchmark ran on (its figures mean little without it)."""
from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


# the instruction sets that decide the training precision and speed (sscn/training/precision.py)
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX"}


def cpu_flags() -> str:
    """``"AVX2, AVX-512, AVX-512 BF16"``: which of :data:`FLAGS` this CPU has (Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = set(next(line.split(":", 1)[1].split() for line in handle if line.startswith("flags")))
    except (OSError, StopIteration):
        return "flags unknown"
    return ", ".join(name for flag, name in FLAGS.items() if flag in flags) or "none of AVX2, AVX-512, AMX"


def describe(device: str = "cpu", threads: int | None = None) -> str:
    """``"AMD EPYC (AVX2, ...), 2 cores, 1 torch thread, load average 1.1"`` or the CUDA device's name."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    text = f"{cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores"
    if threads is not None:
        text += f", {threads} torch thread{'s' if threads > 1 else ''}, load average {os.getloadavg()[0]:.1f}"
    return text
