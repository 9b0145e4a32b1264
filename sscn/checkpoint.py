"""Checkpoints: atomic saves, safe loads (``weights_only=True``), config checks, the bundled model."""
from __future__ import annotations

import math
import os
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import SSCNError
from .files import open_regular
from .models import SSCN, SSCNConfig
from .models.sscn import LEGACY

BUNDLED = Path(__file__).parent / "checkpoints" / "sscn_imagenette128.pt"
# torch.save stores its records uncompressed, so they add up to about the file's size; a file
# whose records expand to far more (a compressed record of GBs) is refused before its checksums
# are checked, which bounds that work by the file's size
EXPANSION_LIMIT = 2  # declared record bytes per byte of file, plus 1 MB


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


def read_checkpoint(path: str | Path, map_location="cpu", sscn_config: bool = True) -> dict:
    """Load a checkpoint dict safely (no code runs from the file); clear errors for bad files.

    Only a regular file is read (not a device, a pipe or a socket). Its records are checked
    against their CRC-32, its ``config`` against the types and ranges of :class:`SSCNConfig`,
    and its weights must be finite. A system refusal (no permission) stays an ``OSError``.
    """
    path = Path(path)
    if not path.exists():
        raise SSCNError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise SSCNError(f"checkpoint path is a folder: {path}; pass the .pt file inside it")
    with open_regular(path, "checkpoint") as handle:
        _check_crc(handle, path)
        handle.seek(0)
        try:
            ckpt = torch.load(handle, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises several types for truncated or foreign files
            raise SSCNError(
                f"checkpoint {path} is corrupt or not an SSCN checkpoint ({type(exc).__name__}); "
                "re-download it or use an earlier one"
            ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise SSCNError(f"{path} is not an SSCN checkpoint (it lacks 'model' and 'config')")
    if sscn_config:  # a pre-stage checkpoint (sscn.pretrain) checks its own config
        config_from_dict(ckpt["config"], str(path))
    _check_weights(ckpt["model"], path)
    return ckpt


def _check_weights(state, path: Path) -> None:
    """The state dict maps names to tensors, and every floating-point weight is finite."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise SSCNError(f"{path} is not an SSCN checkpoint (its 'model' is not a dict of tensors)")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SSCNError(f"checkpoint {path} has NaN or infinite weights (in {name}); it comes from a run that "
                            "diverged or it is corrupt, use an earlier checkpoint")


def _check_crc(handle, path: Path) -> None:
    """Compare every record of a checkpoint's zip archive with its stored CRC-32.

    ``torch.load`` checks the archive's structure but not the tensor bytes, so a flipped
    bit in the weights would load silently. Records saved without a checksum (CRC 0, see
    ``torch.serialization.set_crc32_options``) and files that are not zip archives (the
    legacy format, or a truncated file whose directory is gone) are left to ``torch.load``.
    Records that expand to more than ``EXPANSION_LIMIT`` times the file are refused unread.
    """
    try:
        if not zipfile.is_zipfile(handle):
            return
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            records = archive.infolist()
            _check_expansion(records, os.fstat(handle.fileno()).st_size, path)
            for info in records:
                if info.CRC == 0:
                    continue
                with archive.open(info) as record:  # raises BadZipFile at the end on a CRC mismatch
                    while record.read(1 << 24):
                        pass
    except SSCNError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise SSCNError(
            f"checkpoint {path} is corrupt ({exc}); re-download it or use an earlier one"
        ) from None


def _check_expansion(records: list[zipfile.ZipInfo], size: int, path: Path) -> None:
    declared = sum(info.file_size for info in records)
    if declared > EXPANSION_LIMIT * size + (1 << 20):
        raise SSCNError(f"checkpoint {path} holds records that expand to {declared / 1e6:,.0f} MB in a file of "
                        f"{size / 1e6:,.1f} MB; torch.save writes them uncompressed, so this is not an SSCN "
                        "checkpoint as saved; use the file its training run wrote")


# what each config field must be, beyond its type (fields not listed: the type alone)
_CONFIG_RULES = {
    "width": (lambda v: 0 < v <= 4, "in (0, 4]"),
    "num_classes": (lambda v: v >= 1, ">= 1"),
    "k": (lambda v: v >= 0, ">= 0"),
    "r": (lambda v: v >= 0, ">= 0"),
    "similarity": (lambda v: v in ("cosine", "dot"), "'cosine' or 'dot'"),
    "temperature": (lambda v: v > 0, "> 0"),
    "attn_dim": (lambda v: v >= 1, ">= 1"),
    "value_dim": (lambda v: v >= 1, ">= 1"),
    "num_bins": (lambda v: v >= 1, ">= 1"),
    "chunk_size": (lambda v: v >= 1, ">= 1"),
}
_TYPES = {"int": (int, "a whole number"), "float": ((int, float), "a number"), "bool": (bool, "True or False"),
          "str": (str, "a string")}


def _check_field(name: str, value, kind: str, source: str) -> None:
    """Raise naming the field when ``value`` has the wrong type or is out of range."""
    expected, what = _TYPES.get(kind, (object, kind))
    rule, rule_text = _CONFIG_RULES.get(name, (lambda v: True, ""))
    wrong_type = not isinstance(value, expected) or (isinstance(value, bool) and kind != "bool")
    if wrong_type or (isinstance(value, float) and not math.isfinite(value)) or not rule(value):
        must = f"{what}{' ' + rule_text if rule_text else ''}"
        raise SSCNError(f"checkpoint {source} has config {name} = {value!r}, which must be {must}; the file was "
                        "edited or is not an SSCN checkpoint, use the file its training run wrote")


def config_from_dict(values: dict, source: str = "checkpoint") -> SSCNConfig:
    """An :class:`SSCNConfig` from a checkpoint's ``config``, every field's type and range checked
    first (a string width or a zero chunk size would fail deep inside the network)."""
    if not isinstance(values, dict):
        raise SSCNError(f"checkpoint {source} has a config of type {type(values).__name__}, not a dict of settings; "
                        "it is not an SSCN checkpoint, use the file its training run wrote")
    known = SSCNConfig.__dataclass_fields__
    unknown = sorted(set(values) - set(known), key=str)
    if unknown:
        raise SSCNError(f"checkpoint config has fields this version does not know: {unknown}")
    for name, value in values.items():
        _check_field(name, value, known[name].type, source)
    # a checkpoint from before the six-level encoder stores none of its fields: it has the old layout
    return SSCNConfig(**{**LEGACY, **values})


def load_state(model: SSCN, state: dict, source: str = "checkpoint",
               fix: str = "build the model from the checkpoint's own config (sscn.checkpoint.load_model)") -> None:
    """Load weights, naming mismatched config fields rather than listing tensor shapes."""
    check_state(model, state, source, fix)
    model.load_state_dict(state)


def check_state(model: SSCN, state: dict, source: str = "checkpoint",
                fix: str = "build the model from the checkpoint's own config (sscn.checkpoint.load_model)") -> None:
    """Raise unless ``state`` has exactly ``model``'s tensors and shapes (``model`` may be on the meta device)."""
    mine = model.state_dict()
    wrong = [k for k, v in state.items() if k in mine and mine[k].shape != v.shape]
    missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
    if wrong or missing or extra:
        raise SSCNError(
            f"{source} does not fit this network ({len(wrong)} shape mismatches, {len(missing)} missing, "
            f"{len(extra)} unexpected tensors, e.g. {(wrong or missing or extra)[:3]}); {fix}"
        )


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
    config = config_from_dict(values, str(path))
    fix = ("its weights disagree with the config stored beside them, so it was edited or written by another "
           "version of sscn; use the file its training run wrote")
    with torch.device("meta"):  # shapes without memory: a config far larger than its weights allocates nothing
        check_state(SSCN(config), ckpt["model"], str(path), fix)
    model = SSCN(config)
    load_state(model, ckpt["model"], str(path), fix)
    return model.eval()


def check_config_match(saved: dict, current: dict, fields=("width", "num_classes", "similarity", "attn_dim", "value_dim", "num_bins",
                                                         "encoder_norm", "style_level", "cam_level")) -> None:
    """Raise naming each architecture field where a checkpoint and the current config differ."""
    saved = {**LEGACY, **saved}
    diff = {f: (saved.get(f), current.get(f)) for f in fields if saved.get(f) != current.get(f)}
    if diff:
        pretty = ", ".join(f"{f}: checkpoint {a!r} vs now {b!r}" for f, (a, b) in diff.items())
        raise SSCNError(f"checkpoint was made with another config ({pretty}); use a new output folder or the same settings")


def bundled_checkpoint() -> Path | None:
    return BUNDLED if BUNDLED.exists() else None
