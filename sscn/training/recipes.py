"""Named training recipes: the settings of each shipped checkpoint, kept in one place.

``semantic``: the two-stage run below, whose checkpoints ship in ``sscn/checkpoints/``;
``bundled`` is another name for it (MODEL_CARD.md; the README's and notebook 07's papermill
command spell the same settings, tests/test_course.py checks all three against the
checkpoint's own record). ``legacy``: the network shipped before it (``--checkpoint legacy``).

The semantic SSCN is trained in two stages (MODEL_CARD.md): the encoder's classification
pre-stage (``sscn pretrain``), then SSCN on that encoder, frozen (``sscn train
--encoder-from ... --freeze-encoder``). ``tools/semantic_recipe.py`` runs both, on a CPU
or a GPU; the model card's commands are these settings spelt as flags.
"""
from __future__ import annotations

from ..errors import SSCNError
from .config import PretrainConfig, TrainConfig

# the pre-stage
PRETRAIN = {
    # 30 epochs reached 82.3 % gray top-1 on imagenette2-144/val; 40 for headroom
    "semantic": dict(width=0.25, norm="batch", image_size=128, crop=112, gray_share=0.5, batch_size=64,
                     epochs=40.0, lr=2e-3, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1, val_every=5),
}

# SSCN on the frozen pre-stage: the legacy model's data budget (3,250 steps of 32 = 104,000
# pairs), size and attention setting; checkpoints every 50 steps, so an interrupted CPU run loses little
TRAIN = {
    # the legacy network: it predates the pre-stage, so its encoders have no normalisation and
    # style and CAM read level 5; 3,250 steps of 32 at 128 px (3.4 minutes on one GPU)
    "legacy": dict(image_size=128, width=0.25, batch_size=32, lr=2e-4, k=64, r=64, steps=3250,
                   encoder_norm="none", style_level=5, cam_level=5, preload=True, val_every=1000,
                   val_images=300, log_every=100, ckpt_every=500, num_workers=8),
    "semantic": dict(image_size=128, width=0.25, batch_size=32, lr=2e-4, k=64, r=64, steps=3250,
                     freeze_encoder=True, preload=True, num_workers=0, log_every=50, val_every=250,
                     ckpt_every=50, val_images=300),
}

# the recipe of the checkpoints that ship (``--recipe bundled``)
BUNDLED = "semantic"
PRETRAIN["bundled"] = PRETRAIN[BUNDLED]
TRAIN["bundled"] = TRAIN[BUNDLED]

# the same recipes at toy size, for the end-to-end test of the recipe tool (any CPU, seconds)
TINY_PRETRAIN = dict(width=0.125, image_size=32, crop=32, batch_size=6, epochs=1.0, val_every=1, time_limit_min=0.0)
TINY_TRAIN = dict(image_size=32, width=0.125, batch_size=4, k=4, r=4, steps=3, val_every=3, val_images=4,
                  log_every=1, ckpt_every=1, time_limit_min=0.0)


def pretrain_config(name: str = "semantic", **overrides) -> PretrainConfig:
    """The named pre-stage recipe as a :class:`PretrainConfig`, ``overrides`` applied."""
    return PretrainConfig(**{**_named(PRETRAIN, name, "pre-stage"), **overrides})


def train_config(name: str = "semantic", **overrides) -> TrainConfig:
    """The named SSCN recipe as a :class:`TrainConfig`, ``overrides`` applied."""
    return TrainConfig(**{**_named(TRAIN, name, "training"), **overrides})


def _named(recipes: dict, name: str, what: str) -> dict:
    if name not in recipes:
        raise SSCNError(f"no {what} recipe named {name!r}; known: {', '.join(recipes)}")
    return recipes[name]
