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


def describe(device: str = "cpu", threads: int | None = None) -> str:
    """``"AMD EPYC ..., 2 cores, 1 torch thread, load average 1.1"`` or the CUDA device's name."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    text = f"{cpu_name()}, {os.cpu_count()} cores"
    if threads is not None:
        text += f", {threads} torch thread{'s' if threads > 1 else ''}, load average {os.getloadavg()[0]:.1f}"
    return text
