"""What the reliability tests share: a colourful test photo, a photo-like scene per seed, running ``sscn`` in process, the
one-line error rule, and a PNG whose pixel data is garbage.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from sscn.io.checkpoints import save_atomic
from sscn.apps.cli import main
from sscn.models import SSCN, SSCNConfig

ROOT = Path(__file__).resolve().parents[1]


def ramp_photo(height=48, width=64, seed=0) -> np.ndarray:
    """A colourful ``H x W x 3`` uint8 picture (smooth colour ramps plus noise)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    ramps = np.stack((xs / max(width - 1, 1), ys / max(height - 1, 1), 1 - xs / max(width - 1, 1)), -1) * 200
    return np.clip(ramps + rng.integers(0, 56, (height, width, 3)), 0, 255).astype(np.uint8)


def run_cli(capsys, argv):
    """``sscn.apps.cli.main(argv)`` -> (exit code, stdout, stderr); argparse's exits are caught."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


PROGRESS = re.compile(r"^[\w ]+:\s+\d+%\|")  # a tqdm bar ("train:  50%|#####     | 1/2 [...]")


def shown_lines(err: str) -> list[str]:
    """The lines a terminal shows of ``err``, progress bars left out (a bar redraws itself after a carriage
    return; a run that fails mid-way has drawn one before its error, and a warning is not an error)."""
    lines = [line.split("\r")[-1].rstrip() for line in err.split("\n")]
    return [line for line in lines if line and not PROGRESS.match(line)]


def assert_one_line_error(capsys, argv, match, code=2, prefix=None, after_progress=False) -> str:
    """The command fails with ``code`` and exactly one stderr line ``sscn CMD: error: ...`` matching
    ``match``; with ``after_progress`` a progress bar drawn before the error is allowed."""
    got, _, err = run_cli(capsys, argv)
    assert "Traceback" not in err, err
    lines = shown_lines(err) if after_progress else err.strip().splitlines()
    assert got == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix or f"sscn {argv[0]}: error: "), lines[0]
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    return lines[0]


def garble_middle(path: Path) -> Path:
    """Keep a PNG's first and last bytes (a dataset scan keeps it) but garble its pixel data."""
    data = bytearray(Path(path).read_bytes())
    middle = len(data) // 2
    data[middle - 300: middle + 300] = np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes()
    Path(path).write_bytes(bytes(data))
    return Path(path)


def tiny_model_file(folder: Path, config: SSCNConfig) -> Path:
    """A random SSCN of ``config`` (seed 0) saved as a checkpoint ``folder/tiny.pt``."""
    torch.manual_seed(0)
    model = SSCN(config)
    path = Path(folder) / "tiny.pt"
    save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, path)
    return path


def subprocess_env(**extra: str) -> dict:
    """The environment of an ``sscn`` run in a child process: one thread, this checkout's package first."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def scene(seed: int, size: int = 96) -> np.ndarray:
    """A colourful photo-like picture: a few random blobs on a random gradient, distinct per seed."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size] / size
    picture = rng.uniform(0, 255, 3) * (1 - ys[..., None]) + rng.uniform(0, 255, 3) * ys[..., None]
    for _ in range(4):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.3)
        picture[(ys - cy) ** 2 + (xs - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    picture += rng.normal(0, 6, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8)
