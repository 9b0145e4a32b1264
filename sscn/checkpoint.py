"""Checkpoints: atomic saves, safe loads (``weights_only=True``), config checks, the bundled model."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import SSCNError
from .models import SSCN, SSCNConfig

BUNDLED = Path(__file__).parent / "checkpoints" / "sscn_imagenette128.pt"


def save_atomic(obj, path: str | Path) -> Path:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``.

    A crash, a kill or a full disk mid-save leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint dict safely (no code runs from the file); clear errors for bad files."""
    path = Path(path)
    if not path.exists():
        raise SSCNError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise SSCNError(f"checkpoint path is a folder: {path}; pass the .pt file inside it")
    _check_crc(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise SSCNError(
            f"checkpoint {path} is corrupt or not an SSCN checkpoint ({type(exc).__name__}); "
            "re-download it or use an earlier one"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise SSCNError(f"{path} is not an SSCN checkpoint (it lacks 'model' and 'config')")
    return ckpt


def _check_crc(path: Path) -> None:
    """Compare every record of a checkpoint's zip archive with its stored CRC-32.

    ``torch.load`` checks the archive's structure but not the tensor bytes, so a flipped
    bit in the weights would load silently. Records saved without a checksum (CRC 0, see
    ``torch.serialization.set_crc32_options``) and files that are not zip archives (the
    legacy format, or a truncated file whose directory is gone) are left to ``torch.load``.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                with archive.open(info) as record:  # raises BadZipFile at the end on a CRC mismatch
                    while record.read(1 << 24):
                        pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise SSCNError(
            f"checkpoint {path} is corrupt ({exc}); re-download it or use an earlier one"
        ) from None


def config_from_dict(values: dict) -> SSCNConfig:
    known = SSCNConfig.__dataclass_fields__
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SSCNError(f"checkpoint config has fields this version does not know: {unknown}")
    return SSCNConfig(**values)


def load_state(model: SSCN, state: dict, source: str = "checkpoint",
               fix: str = "build the model from the checkpoint's own config (sscn.checkpoint.load_model)") -> None:
    """Load weights, naming mismatched config fields rather than listing tensor shapes."""
    mine = model.state_dict()
    wrong = [k for k, v in state.items() if k in mine and mine[k].shape != v.shape]
    missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
    if wrong or missing or extra:
        raise SSCNError(
            f"{source} does not fit this network ({len(wrong)} shape mismatches, {len(missing)} missing, "
            f"{len(extra)} unexpected tensors, e.g. {(wrong or missing or extra)[:3]}); {fix}"
        )
    model.load_state_dict(state)


def load_model(path: str | Path | None = None, map_location="cpu", **overrides) -> SSCN:
    """Build the network from a checkpoint's config and load its weights (eval mode).

    ``path=None`` loads the bundled checkpoint. ``overrides`` change inference-only fields
    (k, r, dense, chunk_size); anything else that differs is an error naming the field.
    """
    path = BUNDLED if path is None else Path(path)
    if path == BUNDLED and not path.exists():
        raise SSCNError("no bundled checkpoint in this installation; pass --checkpoint PATH")
    ckpt = read_checkpoint(path, map_location)
    values = dict(ckpt["config"])
    for key, value in overrides.items():
        if key not in ("k", "r", "dense", "chunk_size"):
            raise SSCNError(f"'{key}' is fixed by the checkpoint (it is {values.get(key)!r}); only k, r, dense, chunk_size can change")
        if value is None:
            continue
        least = {"k": 0, "r": 0, "chunk_size": 1}.get(key)
        if least is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            capped = "; a value above the number of reference tokens is capped at it" if least == 0 else ""
            raise SSCNError(f"{key} must be a whole number >= {least} (got {value!r}){capped}")
        values[key] = value
    model = SSCN(config_from_dict(values))
    load_state(model, ckpt["model"], str(path), fix="its weights disagree with the config stored beside them, "
               "so it was edited or written by another version of sscn; use the file its training run wrote")
    return model.eval()


def check_config_match(saved: dict, current: dict, fields=("width", "num_classes", "similarity", "attn_dim", "value_dim", "num_bins")) -> None:
    """Raise naming each architecture field where a checkpoint and the current config differ."""
    diff = {f: (saved.get(f), current.get(f)) for f in fields if saved.get(f) != current.get(f)}
    if diff:
        pretty = ", ".join(f"{f}: checkpoint {a!r} vs now {b!r}" for f, (a, b) in diff.items())
        raise SSCNError(f"checkpoint was made with another config ({pretty}); use a new output folder or the same settings")


def bundled_checkpoint() -> Path | None:
    return BUNDLED if BUNDLED.exists() else None
