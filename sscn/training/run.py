"""What both trainers share: the device, the run's folder, the out-of-memory message.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import SSCNError
from ..io import files


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (this process's GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a missing GPU is a clear error."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SSCNError(f"training parameter device is {name!r} but there is no CUDA device here; pass 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SSCNError(f"training parameter device is {name!r} but there are {torch.cuda.device_count()} CUDA "
                        f"devices (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def prepare_out_dir(out_dir: Path, ckpt_path: Path, clean: bool = True) -> None:
    """The run's folder exists and takes files, checked before any slow work (decoding, preloading);
    with ``clean``, temporary files a killed save left are removed (the folder is locked, so none is
    being written)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SSCNError(f"out_dir {out_dir} is a file; pass a folder for the checkpoint and metrics")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise SSCNError(f"out_dir {out_dir} is not writable ({exc.strerror or exc}); pass a folder this user can "
                        "write to") from None
    if clean:
        files.clean_stale(out_dir, again=True, min_age=0.0)
        for stale in out_dir.glob(f".{ckpt_path.name}.*.tmp"):  # earlier versions' temporary names
            stale.unlink(missing_ok=True)


def out_of_memory_message(exc: BaseException, ckpt_path: Path, batch_size: int, size_name: str, size: int,
                          extra: str = "") -> str | None:
    """One line for running out of memory (what to make smaller), or None for any other error."""
    text = str(exc).lower()
    if not (isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", MemoryError))
            or "can't allocate memory" in text or "not enough memory" in text or "out of memory" in text):
        return None
    kept = (f"{ckpt_path} is kept, run the same command to resume from it" if ckpt_path.exists()
            else "no checkpoint was written yet")
    flag = "--" + size_name.replace("_", "-")
    return (f"out of memory; pass a smaller --batch-size (now {batch_size}) or {flag} (now {size}){extra}; {kept}")
