"""The trainers' settings as flat dataclasses (``TrainConfig``, ``PretrainConfig``), their checks,
and one command-line flag per field. No torch here: ``sscn train --help`` answers at once.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields

from ..errors import SSCNError


PRECISIONS = ("auto", "float32", "bf16")  # sscn.training.precision
ENCODER_NORMS = ("batch", "none")  # sscn.models.encoder.NORMS (tests/test_layout.py checks they agree)


@dataclass
class TrainConfig:
    """Every hyper-parameter, with the paper's defaults where it gives one."""

    data_dir: str = "samples"  # an image folder with train/ (and val/) class folders, or "samples"
    out_dir: str = "runs/sscn"
    image_size: int = 256  # paper: 256 x 256
    width: float = 1.0  # VGG19 width multiplier (1.0 = the paper's VGG19)
    batch_size: int = 8
    steps: int = 1000
    lr: float = 1e-4  # Adam, paper
    beta1: float = 0.9
    beta2: float = 0.999
    k: int = 256  # paper: k = r = 256 of 4096 tokens at 256 px
    r: int = 256
    dense: bool = False
    similarity: str = "cosine"
    encoder_norm: str = "batch"  # "none": the first network's encoders, without normalisation
    style_level: int = 6  # the reference level the style vector reads (paper: the last)
    cam_level: int = 5  # the reference level the CAM classifier reads (paper: the fifth)
    encoder_from: str = ""  # a pre-stage checkpoint (sscn pretrain; "bundled": the shipped one) to start from
    freeze_encoder: bool = False  # keep the pre-stage encoders fixed (weights and batch-norm statistics)
    violent_share: float = 0.1  # share of violently warped (semantically unrelated) pairs
    same_class_share: float = 0.0  # share of pairs whose reference is another photo of the target's class
    w_coarse: float = 100.0
    w_fine: float = 100.0
    w_cls: float = 0.1
    w_hist: float = 1.0
    w_tv: float = 10.0
    w_cx: float = 0.0  # contextual loss of same-class results against their reference (sscn/training/contextual.py)
    cx_encoder: str = "bundled"  # the pre-stage checkpoint whose frozen encoder the contextual loss reads
    same_class_colour_losses: bool = True  # off: same-class pairs skip the losses that read the target's colours
    grad_clip: float = 0.0  # 0: off (the paper uses none)
    val_every: int = 200
    val_images: int = 64
    log_every: int = 10
    ckpt_every: int = 200
    time_limit_min: float = 0.0  # 0: no limit; else stop (and save) after this many minutes
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where native), float32 or bf16 (sscn/training/precision.py)
    num_workers: int = 2
    preload: bool = False  # decode the training set once and keep it in (device) memory
    channels_last: bool = True  # NHWC weights and inputs: 1.1-1.2x faster CPU steps (benchmarks/README.md)
    seed: int = 0
    vgg_weights: str = ""  # width 1.0: a torchvision vgg19 state dict, or "imagenet" to download
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning; not with encoder_from); ignored when resuming

    def model_config(self, num_classes: int):
        """The network's :class:`sscn.models.SSCNConfig` for ``num_classes`` classes."""
        from ..models import SSCNConfig  # here, not at the top: the models import torch, the CLI's --help must not

        return SSCNConfig(
            width=self.width, num_classes=num_classes, k=self.k, r=self.r, dense=self.dense, similarity=self.similarity,
            encoder_norm=self.encoder_norm, style_level=self.style_level, cam_level=self.cam_level,
        )

    def validate(self) -> None:
        """Reject wrong types and out-of-range settings with a message naming the field.

        Papermill's first cell calls it, so a bad ``-p`` value fails before any work.
        """
        check_field_types(self, "training parameter")
        checks = [
            (self.image_size >= 32 and self.image_size % 16 == 0, "image_size", "a multiple of 16, at least 32"),
            (0 < self.width <= 4, "width", "in (0, 4]"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.steps >= 1, "steps", ">= 1"),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "a finite number > 0"),
            (0 <= self.beta1 < 1, "beta1", "in [0, 1)"),
            (0 <= self.beta2 < 1, "beta2", "in [0, 1)"),
            *((0 <= getattr(self, name) < math.inf, name, "a finite number >= 0")
              for name in ("w_coarse", "w_fine", "w_cls", "w_hist", "w_tv", "w_cx")),
            (abs(self.seed) < 2**32, "seed", "an int between -2**32 and 2**32"),
            (self.k >= 0, "k", ">= 0"),
            (self.r >= 0, "r", ">= 0"),
            (self.dense or self.k + self.r >= 1, "k", "such that k + r >= 1 (or set dense)"),
            (0 <= self.violent_share <= 1, "violent_share", "in [0, 1]"),
            (0 <= self.same_class_share <= 1, "same_class_share", "in [0, 1]"),
            (self.w_cx == 0 or self.same_class_share > 0, "w_cx",
             "0 unless same_class_share > 0 (it scores results against a different photo's colours)"),
            (self.same_class_colour_losses or self.w_cx > 0, "same_class_colour_losses",
             "on unless w_cx > 0 (without them and the contextual loss, same-class pairs teach no colour)"),
            (not self.freeze_encoder or bool(self.encoder_from or self.init_from), "freeze_encoder",
             "used with encoder_from or init_from (a random encoder is not worth freezing)"),
            (not (self.init_from and self.encoder_from), "init_from",
             f"empty when encoder_from is set: both set the encoders, and init_from's would replace encoder_from's; "
             f"pass one of them (encoder_from is {self.encoder_from!r})"),
            (self.similarity in ("cosine", "dot"), "similarity", "'cosine' or 'dot'"),
            (self.encoder_norm in ("batch", "none"), "encoder_norm", "'batch' or 'none'"),
            (4 <= self.style_level <= 6, "style_level", "4, 5 or 6"),
            (4 <= self.cam_level <= 6, "cam_level", "4, 5 or 6"),
            (self.grad_clip >= 0, "grad_clip", ">= 0 (0: off)"),
            (self.val_every >= 1, "val_every", ">= 1"),
            (self.val_images >= 1, "val_images", ">= 1"),
            (self.log_every >= 1, "log_every", ">= 1"),
            (self.ckpt_every >= 1, "ckpt_every", ">= 1"),
            (self.time_limit_min >= 0, "time_limit_min", ">= 0 (0: no limit)"),
            (self.num_workers >= 0, "num_workers", ">= 0"),
            (self.precision in PRECISIONS, "precision", " or ".join(map(repr, PRECISIONS))),
            (device_name_ok(self.device), "device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise SSCNError(f"training parameter {name} must be {rule} (got {getattr(self, name)!r})")


def device_name_ok(name: str) -> bool:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (what :func:`resolve_device` takes)."""
    index = name[5:] if name.startswith("cuda:") else None
    return name in ("auto", "cpu", "cuda") or (index is not None and index.isascii() and index.isdigit())


def check_field_types(config, what: str) -> None:
    """Each field of a flat config dataclass has its declared type (``int``, ``float``, ``str``, ``bool``)."""
    for f in fields(config):
        value = getattr(config, f.name)
        expected = {"int": int, "float": (int, float), "str": str, "bool": bool}[f.type]
        if isinstance(value, bool) and f.type != "bool" or not isinstance(value, expected):
            kind = {"int": "an int", "float": "a number", "str": "a string", "bool": "True or False"}[f.type]
            raise SSCNError(f"{what} {f.name} must be {kind}, got {type(value).__name__} {value!r}")


MAX_EPOCHS = 1_000_000  # far beyond any run; bounds the step count (an infinite one cannot be counted)


@dataclass
class PretrainConfig:
    """The pre-stage's settings (a recipe that reached 83 % val top-1 on imagenette2-144 in 25 CPU-minutes)."""

    data_dir: str = ""  # a folder with train/ and val/ class folders (imagenette2-144)
    out_dir: str = "runs/pretrain"
    width: float = 0.25  # as the SSCN that will use it
    norm: str = "batch"
    image_size: int = 128  # photos are resized to this, the SSCN's working size
    crop: int = 112  # random training crops of the resized photo
    gray_share: float = 0.5  # share of each batch shown as gray (L only)
    batch_size: int = 64
    epochs: float = 30.0
    lr: float = 2e-3  # AdamW, linear warm-up then cosine decay to 0
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    val_every: int = 1  # epochs between validations (and checkpoints)
    val_images: int = 0  # 0: the whole val split
    time_limit_min: float = 0.0  # 0: no limit; else stop (and save) after this many minutes
    precision: str = "auto"  # auto (bf16 where native), float32 or bf16 (sscn/training/precision.py)
    channels_last: bool = True
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        from .config import check_field_types, device_name_ok

        check_field_types(self, "pretrain parameter")
        checks = [
            (bool(self.data_dir), "data_dir", "a folder with train/ and val/ class folders"),
            (0 < self.width <= 4, "width", "in (0, 4]"),
            (self.norm in ENCODER_NORMS, "norm", f"one of {ENCODER_NORMS}"),
            (32 <= self.crop <= self.image_size, "crop", "between 32 and image_size"),
            (0 <= self.gray_share <= 1, "gray_share", "in [0, 1]"),
            (self.batch_size >= 2, "batch_size", ">= 2 (batch norm needs two images)"),
            (0 < self.epochs <= MAX_EPOCHS, "epochs", f"a number > 0 and at most {MAX_EPOCHS:,}"),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "a finite number > 0"),
            (0 <= self.weight_decay < math.inf, "weight_decay", "a finite number >= 0"),
            (0 <= self.warmup_epochs <= MAX_EPOCHS, "warmup_epochs", f"a number >= 0 and at most {MAX_EPOCHS:,}"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)"),
            (self.val_every >= 1, "val_every", ">= 1"),
            (self.val_images >= 0, "val_images", ">= 0 (0: all)"),
            (0 <= self.time_limit_min < math.inf, "time_limit_min", "a finite number >= 0 (0: no limit)"),
            (device_name_ok(self.device), "device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
            (abs(self.seed) < 2**32, "seed", "an int between -2**32 and 2**32"),
            (self.precision in PRECISIONS, "precision", " or ".join(map(repr, PRECISIONS))),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise SSCNError(f"pretrain parameter {name} must be {rule} (got {getattr(self, name)!r})")


# one line per flag (sscn train --help, sscn pretrain --help); the default is appended to each
SHARED_HELP = {
    "data_dir": "image folder with train/ (and val/) class folders",
    "out_dir": "the run's folder: last.pt, metrics.jsonl, summary.json; a run resumes from its last.pt",
    "image_size": "working size in pixels (a multiple of 16)",
    "width": "VGG19 width multiplier (1.0: the paper's VGG19)",
    "batch_size": "images per step (per process)",
    "lr": "learning rate",
    "val_every": "steps between validations",
    "val_images": "validation photos",
    "time_limit_min": "stop (and save) after this many minutes; 0: no limit",
    "device": "auto (this process's GPU, else the CPU), cpu, cuda or cuda:N",
    "precision": "bf16 autocast or float32; auto: bf16 where the hardware computes it natively",
    "channels_last": "NHWC weights and inputs (1.1-1.2x faster CPU steps)",
    "seed": "seed of every random choice (data order, references, tokens)",
}
TRAIN_HELP = {
    **SHARED_HELP,
    "data_dir": "image folder with train/ (and val/) class folders, or 'samples' (the built-in photos)",
    "steps": "training steps in all (a resumed run continues to this count)",
    "lr": "Adam's learning rate (paper: 1e-4)",
    "beta1": "Adam's beta1", "beta2": "Adam's beta2",
    "k": "top-k CAM tokens of the sparse attention (paper: 256 of 4096)",
    "r": "random reference tokens of the sparse attention (paper: 256)",
    "dense": "attend to every reference token instead of k + r",
    "similarity": "attention score: cosine (with a learned temperature) or dot (the paper's / sqrt(d))",
    "encoder_norm": "the encoders' normalisation: batch, or none (the legacy network's layout)",
    "style_level": "the reference level the style vector reads (paper: the last, 6)",
    "cam_level": "the reference level the CAM classifier reads (paper: the fifth)",
    "encoder_from": "start the encoders and CAM head from this pre-stage checkpoint ('bundled': the shipped one)",
    "freeze_encoder": "keep the pre-stage encoders fixed (weights and batch-norm statistics)",
    "violent_share": "share of violently warped (semantically unrelated) pairs",
    "same_class_share": "share of pairs whose reference is another photo of the target's class",
    "w_coarse": "weight of the coarse ab smooth-L1 loss", "w_fine": "weight of the fine ab smooth-L1 loss",
    "w_cls": "weight of the CAM classification loss", "w_hist": "weight of the colour-histogram loss",
    "w_tv": "weight of the total-variation loss",
    "w_cx": "weight of the contextual loss of same-class results against their reference",
    "cx_encoder": "pre-stage checkpoint whose frozen encoder the contextual loss reads",
    "same_class_colour_losses": "same-class pairs also take the losses that read the target's colours",
    "grad_clip": "clip the gradient norm to this; 0: off (the paper uses none)",
    "val_every": "steps between validations (PSNR on fixed TPS pairs)",
    "val_images": "validation photos",
    "log_every": "steps between lines of metrics.jsonl",
    "ckpt_every": "steps between checkpoints",
    "num_workers": "data-loading worker processes",
    "preload": "decode the training set once and keep it in (device) memory",
    "vgg_weights": "width 1.0: a torchvision vgg19 state dict, or 'imagenet' to download it",
    "init_from": "start from this SSCN checkpoint's weights (fine-tuning; ignored when resuming)",
}
PRETRAIN_HELP = {
    **SHARED_HELP,
    "data_dir": "folder with train/ and val/ class folders (imagenette2-144)",
    "width": "encoder width multiplier (as the SSCN that will use it)",
    "norm": "the encoder's normalisation: batch or none",
    "image_size": "photos are resized to this (the SSCN's working size)",
    "crop": "random training crops of the resized photo",
    "gray_share": "share of each batch shown as gray (L only)",
    "epochs": "passes over the training photos",
    "lr": "AdamW's peak learning rate (linear warm-up, then cosine decay to 0)",
    "weight_decay": "AdamW's weight decay (weights only)",
    "warmup_epochs": "epochs of linear learning-rate warm-up",
    "label_smoothing": "label smoothing of the cross-entropy",
    "val_every": "epochs between validations (and checkpoints)",
    "val_images": "validation photos; 0: the whole val split",
}


# torchrun parses every "--" word of its command line, the script's included, and stops at
# one that abbreviates several of its own options: "--r" (--rdzv-*, --role, --run-path, ...)
# does. Under torchrun pass r as --random-tokens (and k as --topk, for symmetry).
ALIASES = {"k": ("--topk",), "r": ("--random-tokens",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (``--image-size 128``, ``--dense``, ``--precision float32``).

    ``--k`` and ``--r`` also read as ``--topk`` and ``--random-tokens``: use those under
    ``torchrun``, which rejects ``--r`` as an ambiguous abbreviation of its own options.
    """
    add_config_arguments(parser, TrainConfig)


def add_config_arguments(parser: argparse.ArgumentParser, config_class) -> None:
    """One flag per field of a flat config dataclass, each with its one-line help and default;
    booleans get ``--name`` / ``--no-name``."""
    helps = TRAIN_HELP if config_class is TrainConfig else PRETRAIN_HELP
    for f in fields(config_class):
        flags = ["--" + f.name.replace("_", "-"), *ALIASES.get(f.name, ())]
        default, text = f.default, helps[f.name] + " (default: %(default)s)"
        if f.type == "bool":
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text)
        elif f.name == "precision":
            parser.add_argument(*flags, dest=f.name, choices=PRECISIONS, default=default, help=text)
            # the flag of earlier versions, kept so that recorded commands still run
            parser.add_argument("--no-amp", dest=f.name, action="store_const", const="float32", help=argparse.SUPPRESS)
        else:
            parser.add_argument(*flags, dest=f.name, type={"int": int, "float": float, "str": str}[f.type],
                                default=default, help=text)


def config_from_args(args: argparse.Namespace, config_class=TrainConfig):
    """The config dataclass (``TrainConfig`` or ``PretrainConfig``) that ``add_config_arguments`` flags describe."""
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class)})
