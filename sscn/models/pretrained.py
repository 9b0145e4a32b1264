"""Loading the pre-stage: its checkpoint, its classifier, and its encoder and CAM head
into an SSCN (``sscn train --encoder-from``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SSCNError
from .classifier import EncoderClassifier


# the pre-stage shipped with the package: 40 epochs of imagenette2-144/train, the semantic recipe (MODEL_CARD.md)
BUNDLED_PRETRAIN = Path(__file__).parent.parent / "checkpoints" / "pretrain_imagenette2_128.pt"


def read_pretrained(path: str | Path, resume: bool = False) -> dict:
    """A pre-stage checkpoint (``"bundled"``: the shipped one), read and checked by
    :func:`sscn.models.checkpoint.read_checkpoint` (config, classes, weights; with ``resume`` the
    optimizer state, step and history too)."""
    from .checkpoint import read_checkpoint

    path = BUNDLED_PRETRAIN if str(path) == "bundled" else path
    return read_checkpoint(path, kind="pretrain-resume" if resume else "pretrain")


def pretrained_classifier(path: str | Path = "bundled") -> tuple[EncoderClassifier, list[str]]:
    """The pre-stage classifier of a checkpoint (``"bundled"``: the shipped one), in eval mode, and its classes."""
    ckpt = read_pretrained(path)
    classifier = EncoderClassifier(ckpt["config"]["width"], ckpt["config"]["norm"], len(ckpt["classes"]))
    classifier.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
    return classifier.eval(), list(ckpt["classes"])


def load_pretrained_encoder(model, path: str | Path, classes: list[str] | None = None) -> None:
    """Start an SSCN from a pre-stage checkpoint: its reference encoder, GCT's gray encoder
    (the first four levels of the same weights) and the CAM classifier (the head on the
    CAM's level). ``classes``: the training set's classes, which must be the pre-stage's."""
    ckpt = read_pretrained(path)
    saved, mine = ckpt["config"], model.config
    if saved["width"] != mine.width or saved["norm"] != mine.encoder_norm:
        raise SSCNError(f"{path} holds an encoder of width {saved['width']} with norm {saved['norm']!r}, this network "
                        f"has width {mine.width} and encoder_norm {mine.encoder_norm!r}; train with the same settings")
    if classes is not None and list(ckpt["classes"]) != list(classes):
        raise SSCNError(f"{path} was trained on other classes than this training set's; its CAM head would not fit")
    state = ckpt["model"]
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    for target in (model.encoder, model.gct.encoder):
        wanted = target.state_dict()
        target.load_state_dict({k: encoder[k] for k in wanted})
    head = "fc5" if mine.cam_level == 5 else "fc6" if mine.cam_level == 6 else None
    if head is not None:
        model.cam.fc.load_state_dict({"weight": state[f"{head}.weight"], "bias": state[f"{head}.bias"]})
