"""SSCN and pre-stage checkpoints: one check per kind (``read_checkpoint(path, kind=...)``),
the network built from a checkpoint's config (``load_model``), the bundled checkpoint.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..errors import SSCNError
from ..io.checkpoints import (EDITED, check_classes, check_history, check_optimizer, check_rng, check_step,
                              check_tensors, check_train_config, finite_number, load_file)
from .classifier import EncoderClassifier, optimizer_groups
from .encoder import NORMS
from .sscn import LEGACY, SSCN, SSCNConfig, trainable_parameters


CHECKPOINTS = Path(__file__).parent.parent / "checkpoints"
BUNDLED = CHECKPOINTS / "sscn_imagenette128.pt"
# the model shipped before the semantic run (MODEL_CARD.md, "The legacy model"), kept to compare with
LEGACY_CHECKPOINT = CHECKPOINTS / "sscn_legacy_imagenette128.pt"
NAMED = {"bundled": BUNDLED, "legacy": LEGACY_CHECKPOINT}


KINDS = (None, "sscn", "train", "pretrain", "pretrain-resume")


def read_checkpoint(path: str | Path, map_location="cpu", sscn_config: bool = True, kind: str | None = None) -> dict:
    """Load a checkpoint dict safely (no code runs from the file) and check it as ``kind`` (see the module).

    ``sscn_config=False`` is the older spelling of ``kind="pretrain"``.
    """
    kind = kind if kind is not None or sscn_config else "pretrain"
    return check_checkpoint(load_file(path, "checkpoint", map_location), path, kind)


def check_checkpoint(ckpt, path: str | Path, kind: str | None = "sscn") -> dict:
    """Raise an :class:`SSCNError` naming ``path`` and the field unless ``ckpt`` is a sound checkpoint of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    source = str(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        what = "a pre-stage" if (kind or "").startswith("pretrain") else "an SSCN"
        raise SSCNError(f"{source} is not {what} checkpoint (it lacks 'model' and 'config')")
    if kind in (None, "sscn", "train"):
        _check_sscn(ckpt, source, kind)
    else:
        _check_pretrain(ckpt, source, kind)
    return ckpt


def _check_sscn(ckpt: dict, source: str, kind: str) -> None:
    if ckpt.get("kind") == "sscn-pretrain":
        raise SSCNError(f"{source} is a pre-stage checkpoint (sscn pretrain's encoder classifier), not a colorization "
                        "network; start a training from it with sscn train --encoder-from, and pass an SSCN checkpoint "
                        "(sscn train's last.pt) here")
    config = config_from_dict(ckpt["config"], source)
    if kind is None:  # the weights as such: dense, real, finite
        check_tensors(ckpt["model"], None, source, "model")
        if "classes" in ckpt:
            check_classes(ckpt["classes"], source)
        return
    with torch.device("meta"):  # shapes without memory: a config far larger than its weights allocates nothing
        model = SSCN(config)
    check_tensors(ckpt["model"], model.state_dict(), source, "model",
                  "its weights disagree with the config stored beside them, so it was edited or written by another "
                  "version of sscn; use the file its training run wrote")
    if kind == "train":
        lacking = [key for key in ("optimizer", "step", "rng") if key not in ckpt]
        if lacking:
            raise SSCNError(f"{source} holds weights but no training state ({', '.join(lacking)}), so the run "
                            "cannot be resumed; move it away and pass it as init_from to start from its weights")
    if "classes" in ckpt or kind == "train":
        check_classes(ckpt.get("classes"), source, config.num_classes)
    if kind == "train":
        check_step(ckpt["step"], source)
        options = {frozen: [trainable_parameters(model, frozen)] for frozen in (False, True)}
        check_optimizer(ckpt["optimizer"], options, lambda groups: torch.optim.Adam(groups), source)
        check_rng(ckpt["rng"], source)
        if "history" in ckpt:
            check_history(ckpt["history"], source, ("step", "loss"))
        if "train_config" in ckpt:
            check_train_config(ckpt["train_config"], source)


def _check_pretrain(ckpt: dict, source: str, kind: str) -> None:
    if ckpt.get("kind") != "sscn-pretrain":
        raise SSCNError(f"{source} is not a pre-stage checkpoint (sscn pretrain writes one, its 'kind' is "
                        f"'sscn-pretrain', not {ckpt.get('kind')!r}); for an SSCN checkpoint use init_from")
    values = ckpt["config"]
    if not isinstance(values, dict) or any(key not in values for key in ("width", "norm")):
        raise SSCNError(f"{source} has a broken pre-stage config (a dict with at least width and norm expected); "
                        f"{EDITED}")
    # what builds the classifier; the run's other settings matter only to the run (sscn.training.config)
    for name, ok, rule in (("width", finite_number(values["width"]) and 0 < values["width"] <= 4, "a number in (0, 4]"),
                           ("norm", values["norm"] in NORMS, f"one of {NORMS}")):
        if not ok:
            raise SSCNError(f"{source} has a broken pre-stage config (pretrain parameter {name} must be {rule}, got "
                            f"{values[name]!r}); {EDITED}")
    classes = ckpt.get("classes")
    check_classes(classes, source)
    with torch.device("meta"):
        model = EncoderClassifier(values["width"], values["norm"], len(classes))
    check_tensors(ckpt["model"], model.state_dict(), source, "model",
                  "its weights disagree with the config and classes stored beside them; " + EDITED)
    if "step" in ckpt or kind == "pretrain-resume":
        check_step(ckpt.get("step"), source)
    if "history" in ckpt:  # a resumed run's summary reads images_per_s
        check_history(ckpt["history"], source, ("step", "loss", "images_per_s")[:3 if kind == "pretrain-resume" else 2])
    if kind == "pretrain-resume":
        if "optimizer" not in ckpt:
            raise SSCNError(f"{source} holds a pre-stage but no optimizer state, so the run cannot be resumed; "
                            "use a new out_dir (pass this file to sscn train --encoder-from to use it)")
        check_optimizer(ckpt["optimizer"], {"": optimizer_groups(model)},
                        lambda groups: torch.optim.AdamW(groups), source)


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
        raise SSCNError(f"checkpoint {source} has config fields this version does not know: {unknown}")
    for name, value in values.items():
        _check_field(name, value, known[name].type, source)
    # a checkpoint from before the six-level encoder stores none of its fields: it has the old layout
    return SSCNConfig(**{**LEGACY, **values})


def load_state(model: SSCN, state: dict, source: str = "checkpoint",
               fix: str = "build the model from the checkpoint's own config (sscn.models.checkpoint.load_model)") -> None:
    """Load weights, naming mismatched config fields rather than listing tensor shapes."""
    check_state(model, state, source, fix)
    model.load_state_dict(state)


def check_state(model: SSCN, state: dict, source: str = "checkpoint",
                fix: str = "build the model from the checkpoint's own config (sscn.models.checkpoint.load_model)") -> None:
    """Raise unless ``state`` fits ``model`` (``model`` may be on the meta device): :func:`check_tensors`."""
    check_tensors(state, model.state_dict(), source, "model", fix)


def load_model(path: str | Path | None = None, map_location="cpu", **overrides) -> SSCN:
    """Build the network from a checkpoint's config and load its weights (eval mode).

    ``path=None`` loads the bundled checkpoint, ``"legacy"`` the model it replaced (:func:`checkpoint_path`).
    ``overrides`` change inference-only fields (k, r, dense, chunk_size); anything else that
    differs is an error naming the field.
    """
    path = checkpoint_path(path) or BUNDLED
    if path in NAMED.values() and not path.exists():
        name = next(name for name, named in NAMED.items() if named == path)
        raise SSCNError(f"no {name} checkpoint in this installation; pass --checkpoint PATH")
    ckpt = read_checkpoint(path, map_location, kind="sscn")
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
    model = SSCN(config_from_dict(values, str(path)))  # read_checkpoint checked the weights against the config
    model.load_state_dict(ckpt["model"])
    return model.eval()


def check_config_match(saved: dict, current: dict, fields=("width", "num_classes", "similarity", "attn_dim", "value_dim", "num_bins",
                                                         "encoder_norm", "style_level", "cam_level")) -> None:
    """Raise naming each architecture field where a checkpoint and the current config differ."""
    saved = {**LEGACY, **saved}
    diff = {f: (saved.get(f), current.get(f)) for f in fields if saved.get(f) != current.get(f)}
    if diff:
        pretty = ", ".join(f"{f}: checkpoint {a!r} vs now {b!r}" for f, (a, b) in diff.items())
        raise SSCNError(f"checkpoint was made with another config ({pretty}); use a new output folder or the same settings")


def checkpoint_path(value: str | Path | None) -> Path | None:
    """A checkpoint named by its path or by one of :data:`NAMED` (``"bundled"``, ``"legacy"``); None stays None."""
    if value is None:
        return None
    return NAMED.get(str(value), Path(value))


def bundled_checkpoint() -> Path | None:
    return BUNDLED if BUNDLED.exists() else None
