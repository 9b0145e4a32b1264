"""Checkpoint files: atomic saves, safe loads (``weights_only``, CRC-checked) and the
checks every kind shares (tensors, optimizer state, random states, logged history).

Which fields each kind holds, and the network it must fit, is :mod:`sscn.models.checkpoint`'s.
"""
from __future__ import annotations

import math
import os
import random
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import SSCNError
from .files import open_regular, write_atomic


# torch.save stores its records uncompressed, so they add up to about the file's size; a file
# whose records expand to far more (a compressed record of GBs) is refused before its checksums
# are checked, which bounds that work by the file's size
EXPANSION_LIMIT = 2  # declared record bytes per byte of file, plus 1 MB


EDITED = "the file was edited or is not one sscn wrote; use the file its run wrote"


def save_atomic(obj, path: str | Path) -> Path:
    """``torch.save`` through :func:`sscn.io.files.write_atomic`: a temp file beside ``path``, synced, then renamed.

    A crash, a kill or a full disk mid-save leaves the previous file intact (the error is raised as it came).
    """
    return write_atomic(path, lambda handle: torch.save(obj, handle), overwrite=True)


def save_run_checkpoint(state: dict, path: str | Path, kept: str) -> Path:
    """:func:`save_atomic` for a run's ``last.pt``: a failed write (a full disk, an interrupt inside
    ``torch.save``, which reaches Python as a cryptic ``RuntimeError``) is one line that says the
    previous checkpoint, described by ``kept``, is kept."""
    try:
        return save_atomic(state, path)
    except (OSError, RuntimeError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "the write failed or was interrupted"
        raise SSCNError(f"could not write the checkpoint {path} ({reason}); {kept}. Free disk space if it is full, "
                        "then run the same command again to resume") from None


def kept_message(path: Path, step: int | None) -> str:
    """What a failed run leaves: ``the previous checkpoint (PATH, step N) is kept`` or that there is none."""
    if step is None:
        return "no checkpoint was written yet, so there is none to keep"
    return f"the previous checkpoint ({path}, step {step}) is kept"


def load_file(path: str | Path, what: str = "checkpoint", map_location="cpu"):
    """What a torch file holds, read safely: a regular file, its records' CRC-32 checked, no code run
    (``weights_only``); a missing, foreign or corrupt file is an :class:`SSCNError`. A system refusal
    (no permission) stays an ``OSError``."""
    path = Path(path)
    if not path.exists():
        raise SSCNError(f"{what} not found: {path}")
    if path.is_dir():
        raise SSCNError(f"{what} path is a folder: {path}; pass the .pt file inside it")
    with open_regular(path, what) as handle:
        _check_crc(handle, path)
        handle.seek(0)
        try:
            with warnings.catch_warnings():  # torch warns about sparse tensors it validates; they are refused below
                warnings.simplefilter("ignore")
                return torch.load(handle, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises several types for truncated or foreign files
            raise SSCNError(
                f"{what} {path} is corrupt or not an SSCN checkpoint ({type(exc).__name__}); "
                "re-download it or use an earlier one"
            ) from None


def _fail(source: str, field: str, problem: str) -> SSCNError:
    return SSCNError(f"checkpoint {source}: {field} {problem}; {EDITED}")


def check_tensors(state, reference: dict | None, source: str, field: str = "model", fix: str = EDITED) -> None:
    """``state`` holds exactly ``reference``'s tensors (a network's ``state_dict``, meta tensors will do):
    dense tensors with data, the same names and shapes, floating point where the network's are (its
    integer counters: the same dtype), and finite. ``reference=None``: any names, shapes and real dtypes."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise SSCNError(f"{source} is not a checkpoint sscn can read (its '{field}' is not a dict of tensors)")
    for name, tensor in state.items():
        _check_layout(tensor, source, f"{field}[{name!r}]")
    if reference is None:
        reference = state
    wrong = [k for k, v in state.items() if k in reference and reference[k].shape != v.shape]
    missing, extra = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
    if wrong or missing or extra:
        raise SSCNError(
            f"{source} does not fit this network (its {field} has {len(wrong)} shape mismatches, "
            f"{len(missing)} missing, {len(extra)} unexpected tensors, e.g. {(wrong or missing or extra)[:3]}); {fix}"
        )
    for name, tensor in state.items():
        want = reference[name]
        if want.is_floating_point() != tensor.is_floating_point() or (
                not want.is_floating_point() and want.dtype != tensor.dtype):
            kind = "floating point" if want.is_floating_point() else str(want.dtype).removeprefix("torch.")
            raise _fail(source, f"{field}[{name!r}]", f"is {str(tensor.dtype).removeprefix('torch.')}, not {kind}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SSCNError(f"checkpoint {source} has NaN or infinite weights (in {field}[{name!r}]); it comes from "
                            "a run that diverged or it is corrupt, use an earlier checkpoint")


def _check_layout(tensor: torch.Tensor, source: str, field: str) -> None:
    if tensor.layout != torch.strided:
        raise _fail(source, field, f"is a {str(tensor.layout).removeprefix('torch.')} tensor, not a dense one")
    if tensor.device.type == "meta":
        raise _fail(source, field, "is a meta tensor (a shape without data)")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise _fail(source, field, f"is {str(tensor.dtype).removeprefix('torch.')}, not real numbers")


def _check_float_tensor(value, like: torch.Tensor, source: str, field: str, nonnegative: bool = False) -> None:
    """One tensor of an optimizer's state: dense, floating, ``like``'s shape, finite (and >= 0)."""
    if not torch.is_tensor(value):
        raise _fail(source, field, f"is a {type(value).__name__}, not a tensor")
    _check_layout(value, source, field)
    if not value.is_floating_point():
        raise _fail(source, field, f"is {str(value.dtype).removeprefix('torch.')}, not floating point")
    if value.shape != like.shape:
        raise _fail(source, field, f"has shape {tuple(value.shape)}, its parameter {tuple(like.shape)}")
    if not bool(torch.isfinite(value).all()) or (nonnegative and bool((value < 0).any())):
        raise _fail(source, field, "holds NaN, infinite" + (" or negative" if nonnegative else "") + " values")


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_step(step, source: str, field: str = "step") -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _fail(source, field, f"is {step!r}, not a whole number >= 0")


def check_classes(classes, source: str, count: int | None = None) -> None:
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _fail(source, "classes", f"is {_short(classes)}, not a list of class names")
    if count is not None and len(classes) != count:
        raise _fail(source, "classes", f"names {len(classes)} classes, its config num_classes is {count}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__} ({text[:40]}...)"


# flags an Adam-type optimizer fills in when a state lacks them (torch.optim.Adam.__setstate__)
_OPTIMIZER_DEFAULTS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                       "differentiable": False, "decoupled_weight_decay": False, "fused": None}


def check_optimizer(saved, options: dict, make, source: str, field: str = "optimizer"):
    """An Adam-type ``state_dict`` that fits one of ``options`` (``{key: param groups}``, each a list of lists
    of parameters, meta ones will do); returns that key. ``make(groups)`` builds a fresh optimizer whose
    settings the saved ones must match in type (numbers finite, flags equal)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
            or not isinstance(saved.get("param_groups"), list):
        raise _fail(source, field, f"is {_short(saved)}, not an optimizer state (state and param_groups)")
    groups = saved["param_groups"]
    if not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        raise _fail(source, f"{field}.param_groups", "are not groups of parameter numbers")
    sizes = [len(g["params"]) for g in groups]
    key = next((k for k, option in options.items() if [len(g) for g in option] == sizes), None)
    if key is None:
        expected = " or ".join(str([len(g) for g in option]) for option in options.values())
        raise _fail(source, f"{field}.param_groups", f"hold {sizes} parameters, this network's optimizer {expected}")
    params = [p for group in options[key] for p in group]
    ids = [i for g in groups for i in g["params"]]
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ids) or sorted(ids) != list(range(len(params))):
        raise _fail(source, f"{field}.param_groups", "do not number their parameters 0 to N-1 once each")
    param_of = dict(zip(ids, params))  # load_state_dict pairs the saved numbers with the parameters in this order
    fresh = make([{"params": group} for group in options[key]]).state_dict()["param_groups"]
    for index, (group, default) in enumerate(zip(groups, fresh)):
        _check_group(group, default, source, f"{field}.param_groups[{index}]")
    for index, entry in saved["state"].items():
        where = f"{field}.state[{index!r}]"
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(params):
            raise _fail(source, where, "belongs to no parameter")
        if not isinstance(entry, dict) or any(k not in entry for k in ("step", "exp_avg", "exp_avg_sq")):
            raise _fail(source, where, "lacks step, exp_avg or exp_avg_sq")
        step = entry["step"]
        if torch.is_tensor(step):
            _check_layout(step, source, f"{where}.step")
            ok = step.numel() == 1 and not step.is_complex() and bool(torch.isfinite(step.float()).all()) \
                and float(step) >= 0
        else:
            ok = finite_number(step) and step >= 0
        if not ok:
            raise _fail(source, f"{where}.step", f"is {_short(step)}, not a count >= 0")
        for name, value in entry.items():
            if name != "step":
                _check_float_tensor(value, param_of[index], source, f"{where}.{name}", nonnegative=name != "exp_avg")
    return key


def _check_group(group: dict, default: dict, source: str, where: str) -> None:
    for name, want in default.items():
        if name == "params":
            continue
        if name not in group:
            if name in _OPTIMIZER_DEFAULTS and _OPTIMIZER_DEFAULTS[name] == want:
                continue  # torch fills it in as it was
            raise _fail(source, where, f"lacks {name!r}")
        value = group[name]
        if name == "foreach":
            ok = value is None or isinstance(value, bool)
        elif isinstance(want, bool) or want is None:
            ok = value is want or (name == "fused" and value in (None, False) and want in (None, False))
        elif isinstance(want, tuple):
            ok = isinstance(value, (tuple, list)) and len(value) == len(want) and all(
                finite_number(v) and 0 <= v < 1 for v in value)
        elif finite_number(want):
            ok = finite_number(value) and (value > 0 if name in ("lr", "eps") else value >= 0)
        else:
            ok = type(value) is type(want)
        if not ok:
            raise _fail(source, f"{where}[{name!r}]", f"is {_short(value)}, not like {want!r}")


def check_rng(rng, source: str, field: str = "rng") -> None:
    """The random states a run resumes with, each tried on a fresh generator (the process's own stay untouched)."""
    if not isinstance(rng, dict) or any(k not in rng for k in ("torch", "cuda", "numpy", "python")):
        raise _fail(source, field, f"is {_short(rng)}, not the torch, cuda, numpy and python random states")
    states = rng["cuda"] if isinstance(rng["cuda"], list) else [None]
    for name, value in [("torch", rng["torch"]), *((f"cuda[{i}]", v) for i, v in enumerate(states))]:
        if not torch.is_tensor(value) or value.dtype != torch.uint8 or value.layout != torch.strided \
                or value.device.type != "cpu" or value.dim() != 1:
            raise _fail(source, f"{field}.{name}", f"is {_short(value)}, not a generator state (a uint8 tensor)")
    try:
        torch.Generator().set_state(rng["torch"])
    except (RuntimeError, TypeError, ValueError):
        raise _fail(source, f"{field}.torch", "is not a CPU generator's state") from None
    numpy = rng["numpy"]
    try:
        if not isinstance(numpy, (list, tuple)) or len(numpy) != 5:
            raise ValueError
        values = tuple(v.numpy() if torch.is_tensor(v) else v for v in numpy)
        np.random.RandomState().set_state(values)
    except (TypeError, ValueError, IndexError, OverflowError, RuntimeError):
        raise _fail(source, f"{field}.numpy", "is not numpy's random state") from None
    try:
        random.Random().setstate(rng["python"])
    except (TypeError, ValueError, IndexError, OverflowError):
        raise _fail(source, f"{field}.python", "is not Python's random state") from None


def check_history(history, source: str, keys=("step", "loss"), field: str = "history") -> None:
    """The logged records: a list of dicts of plain values, each with ``keys`` (``step`` a whole number)."""
    if not isinstance(history, list):
        raise _fail(source, field, f"is {_short(history)}, not a list of records")
    for index, record in enumerate(history):
        where = f"{field}[{index}]"
        if not isinstance(record, dict) or not all(isinstance(k, str) for k in record):
            raise _fail(source, where, f"is {_short(record)}, not a record")
        if not all(v is None or isinstance(v, (str, int, float)) for v in record.values()):
            raise _fail(source, where, "holds values that are not numbers or text")
        for key in keys:
            value = record.get(key)
            if isinstance(value, bool) or not isinstance(value, int if key == "step" else (int, float)):
                raise _fail(source, f"{where}[{key!r}]", f"is {_short(value)}, not a number")


def check_train_config(values, source: str) -> None:
    """The run's settings (printed when a resumed run changes them; older runs stored ``amp``, a field since gone)."""
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise _fail(source, "train_config", f"is {_short(values)}, not a dict of settings")
    if not all(v is None or isinstance(v, (str, int, float)) for v in values.values()):
        raise _fail(source, "train_config", "holds values that are not settings (numbers, text, True or False)")
    if not isinstance(values.get("freeze_encoder", False), bool):
        raise _fail(source, "train_config['freeze_encoder']", "is not True or False")


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
