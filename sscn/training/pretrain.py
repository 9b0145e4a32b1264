"""The classification pre-stage: the reference encoder E learns what is in a photo.

The paper's encoder is a VGG19 trained on ImageNet's 1.3 M photos; nothing can be
downloaded here, so this stage is the project's stand-in for that training: E (six
levels, batch norm) is trained as an image classifier on the photos we have, colour and
gray alike (in SSCN, E reads a colour reference *and* the coarse image, and GCT's own
encoder reads the gray target). Two linear heads on globally pooled features, one on
level 5 (the level the CAM classifier reads, paper Sec. 3.2) and one on level 6 (the
level the style vector reads), each trained with cross-entropy:

    loss = CE(W5 . GAP(F5), y) + CE(W6 . GAP(F6), y)      (label smoothing 0.1)

``sscn train --encoder-from OUT/last.pt`` (or ``--encoder-from bundled``, the pre-stage
shipped in ``sscn/checkpoints/``) starts SSCN from this encoder (both of its
copies: the reference encoder and GCT's gray encoder) and from the level-5 head as the
CAM classifier. ``sscn pretrain`` runs it; it resumes from ``OUT/last.pt``.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..color import rgb_to_lab_norm
from ..errors import SSCNError
from ..io import files
from ..io.checkpoints import kept_message, save_run_checkpoint
from ..models.classifier import EncoderClassifier, optimizer_groups
from ..models.pretrained import read_pretrained
from .config import PretrainConfig
from .precision import autocast_for, describe


def load_photos(root: Path, size: int, limit: int = 0, desc: str = "decode") -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every photo of an image folder, resized and centre-cropped to ``size``: (uint8 ``N x 3 x S x S``, labels, classes).

    8,353 photos at 128 px take 0.4 GB; decoding them once keeps JPEG decoding out of every step.
    A photo that fails to decode is left out with one warning (as ``sscn train`` and ``evaluate`` do).
    """
    from ..io.data import ImageFolder, decode_image, resize_center_crop

    folder = ImageFolder(root, size, limit=limit or None)
    images = torch.empty(len(folder), 3, size, size, dtype=torch.uint8)
    labels = torch.tensor(folder.labels, dtype=torch.int64)
    kept, failed = [], []
    for i, (path, _) in enumerate(tqdm(folder.samples, desc=desc, leave=False)):
        try:
            image = decode_image(path)
        except (SSCNError, OSError) as err:  # OSError: no permission to read it
            failed.append(err)
            continue
        images[len(kept)] = _uint8(resize_center_crop(image, size))
        kept.append(i)
    if failed:
        warnings.warn(f"skipped {len(failed)} of {len(folder)} photos in {root} that could not be decoded "
                      f"(first: {failed[0]})", stacklevel=2)
    if not kept:
        raise SSCNError(f"none of the {len(folder)} photos in {root} could be decoded")
    return images[:len(kept)], labels[kept], folder.classes


def _uint8(image) -> torch.Tensor:
    """An 8-bit PIL image (or a float ``3 x H x W`` tensor in [0, 1], from a 16-bit file) as ``3 x H x W`` uint8."""
    if isinstance(image, torch.Tensor):
        return (image.clamp(0, 1) * 255).round().to(torch.uint8)
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


def as_gray(rgb: torch.Tensor) -> torch.Tensor:
    """The photo as SSCN's encoders see a gray image: L / 100 in all three channels."""
    gray = (rgb_to_lab_norm(rgb)[:, :1] + 1) / 2
    return gray.expand(-1, 3, -1, -1)


def augment(images: torch.Tensor, crop: int, gray_share: float, generator: torch.Generator) -> torch.Tensor:
    """Random ``crop`` px crops, horizontal flips and a ``gray_share`` of gray photos: float ``B x 3 x crop x crop``."""
    n, _, h, w = images.shape
    tops = torch.randint(0, h - crop + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, w - crop + 1, (n,), generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    grays = torch.rand(n, generator=generator) < gray_share
    out = torch.stack([img[:, t:t + crop, l:l + crop] for img, t, l in zip(images, tops, lefts)])
    out = torch.stack([o.flip(-1) if f else o for o, f in zip(out, flips)]).float() / 255
    if grays.any():
        out[grays] = as_gray(out[grays])
    return out


def lr_at(step: int, total: int, warmup: int, lr: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def accuracy(model: EncoderClassifier, images: torch.Tensor, labels: torch.Tensor, gray: bool, device,
             precision: str = "auto", channels_last: bool = True, batch_size: int = 128) -> dict:
    """Top-1 of both heads over whole (uncropped) photos: ``{"top1_l5": ..., "top1_l6": ..., "loss_l5": ...}``."""
    was_training = model.training
    model.eval()
    hits5 = hits6 = 0
    loss = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float() / 255
        x = as_gray(x) if gray else x
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[start:start + batch_size].to(device)
        with autocast_for(device, precision):
            l5, l6 = model(x)
        hits5 += int((l5.argmax(1) == y).sum())
        hits6 += int((l6.argmax(1) == y).sum())
        loss += float(F.cross_entropy(l5.float(), y, reduction="sum"))
    model.train(was_training)
    n = max(1, len(images))
    return {"top1_l5": hits5 / n, "top1_l6": hits6 / n, "loss_l5": loss / n}


def pretrain(cfg: PretrainConfig, progress: bool = True) -> dict:
    """Train (or resume) the pre-stage; writes ``last.pt``, ``metrics.jsonl`` and ``summary.json`` in ``out_dir``.

    The folder is locked while the run uses it (:func:`sscn.io.files.training_folder`), as ``sscn train``'s is.
    """
    from ..io.files import training_folder

    from .run import out_of_memory_message

    cfg.validate()
    with training_folder(cfg.out_dir, cfg.data_dir):
        try:
            return _pretrain(cfg, progress)
        except (MemoryError, RuntimeError) as exc:
            message = out_of_memory_message(exc, Path(cfg.out_dir) / "last.pt", cfg.batch_size, "image_size",
                                            cfg.image_size)
            if message is None:
                raise
            raise SSCNError(message) from None


def _pretrain(cfg: PretrainConfig, progress: bool) -> dict:
    stage = _Stage(cfg)
    print(f"pre-stage: {len(stage.train_x)} train / {len(stage.val_x)} val photos, {len(stage.classes)} classes, "
          f"{stage.total} steps of {cfg.batch_size}, {describe(stage.device, cfg.precision)}")
    stage.model.train()
    started = time.time()
    stopped_by = _loop(stage, started, progress)
    return stage.finish(stopped_by, started)


def _loop(stage: _Stage, started: float, progress: bool) -> str:
    """Step to the last step or the time limit; at each epoch's end (and the last step) log, validate
    when due and save. Says what stopped it."""
    cfg, per_epoch, total = stage.cfg, stage.per_epoch, stage.total
    tick, seen = time.time(), 0
    stopped_by = "epochs"
    bar = tqdm(total=total, initial=stage.step, disable=not progress, desc="pretrain", dynamic_ncols=True)
    try:  # the bar ends its line whatever stops the loop, so an error prints on a line of its own
        while stage.step < total:
            epoch, offset = divmod(stage.step, per_epoch)
            order = torch.randperm(len(stage.train_x), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
            for b in range(offset, per_epoch):
                loss, l5, y = stage.train_step(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
                seen += len(y)
                bar.update(1)
                end_of_epoch = b == per_epoch - 1
                out_of_time = cfg.time_limit_min and time.time() - started > cfg.time_limit_min * 60
                if end_of_epoch or stage.step == total or out_of_time:
                    now = time.time()
                    record = stage.record(loss, l5, y, seen / max(now - tick, 1e-9), now - started)
                    if round(stage.step / per_epoch) % cfg.val_every == 0 or stage.step == total or out_of_time:
                        stage.evaluate(record)
                        bar.set_postfix(gray=f"{record['val_gray_top1_l5']:.3f}",
                                        colour=f"{record['val_colour_top1_l5']:.3f}")
                    stage.keep(record)
                    seen, tick = 0, time.time()
                if out_of_time:
                    stopped_by = "time limit"
                    break
                if stage.step >= total:
                    break
            if stopped_by == "time limit":
                break
    finally:
        bar.close()
    return stopped_by


class _Stage:
    """One pre-stage run: its photos, schedule, classifier, optimizer and how far it got; set up
    (or resumed from ``last.pt``) on creation."""

    def __init__(self, cfg: PretrainConfig):
        from .run import prepare_out_dir, resolve_device

        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        root = Path(cfg.data_dir)
        if not (root / "train").is_dir() or not (root / "val").is_dir():
            raise SSCNError(f"{root} must hold train/ and val/ class folders (like imagenette2-144); "
                            "the val split stays unseen by training and measures it")
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_path, self.log_path = self.out_dir / "last.pt", self.out_dir / "metrics.jsonl"
        prepare_out_dir(self.out_dir, self.ckpt_path)  # before the photos are decoded: a folder it cannot write fails now

        self.train_x, self.train_y, self.classes = load_photos(root / "train", cfg.image_size, desc="decode train")
        self.val_x, self.val_y, val_classes = load_photos(root / "val", cfg.image_size, cfg.val_images, desc="decode val")
        if val_classes != self.classes:
            raise SSCNError(f"{root}/train and {root}/val hold different classes; they must match")
        self.per_epoch = len(self.train_x) // cfg.batch_size
        if self.per_epoch == 0:
            raise SSCNError(f"the training set has {len(self.train_x)} photos, fewer than one batch of {cfg.batch_size}")
        self.total = max(1, round(cfg.epochs * self.per_epoch))
        self.warmup = round(cfg.warmup_epochs * self.per_epoch)

        torch.manual_seed(cfg.seed)
        self.model = EncoderClassifier(cfg.width, cfg.norm, len(self.classes)).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        decay, no_decay = optimizer_groups(self.model)
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
        self.step, self.history, self.saved_step = 0, [], None
        if self.ckpt_path.exists():
            self._resume()

    def _resume(self) -> None:
        ckpt = read_pretrained(self.ckpt_path, resume=True)
        cfg = self.cfg
        if ckpt["config"]["width"] != cfg.width or ckpt["config"]["norm"] != cfg.norm or ckpt["classes"] != self.classes:
            raise SSCNError(f"{self.ckpt_path} was trained with another width, norm or class list; use a new out_dir")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step, self.history = ckpt["step"], ckpt.get("history", [])
        self.saved_step = self.step
        files.write_text(self.log_path, "".join(json.dumps(record) + "\n" for record in self.history))
        print(f"resumed from {self.ckpt_path.name} at step {self.step} of {self.total}")

    def train_step(self, index: torch.Tensor):
        """One update on the photos ``index``: (loss, level-5 logits, labels); stops on a loss that is not finite."""
        cfg, device = self.cfg, self.device
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * self.step + 1)
        x = augment(self.train_x[index], cfg.crop, cfg.gray_share, generator).to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.train_y[index].to(device)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.total, self.warmup, cfg.lr)
        with autocast_for(device, cfg.precision):
            l5, l6 = self.model(x)
        loss = (F.cross_entropy(l5.float(), y, label_smoothing=cfg.label_smoothing)
                + F.cross_entropy(l6.float(), y, label_smoothing=cfg.label_smoothing))
        if not torch.isfinite(loss):
            raise SSCNError(f"pre-stage diverged at step {self.step + 1} (loss {float(loss.detach())}); "
                            f"{kept_message(self.ckpt_path, self.saved_step)}; resume with a lower lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss, l5, y

    def record(self, loss: torch.Tensor, l5: torch.Tensor, y: torch.Tensor, images_per_s: float,
               elapsed_s: float) -> dict:
        """This step's training numbers."""
        return {"step": self.step, "epoch": self.step / self.per_epoch, "loss": float(loss.detach()),
                "lr": self.optimizer.param_groups[0]["lr"], "train_top1_l5": float((l5.argmax(1) == y).float().mean()),
                "images_per_s": images_per_s, "elapsed_s": elapsed_s}

    def evaluate(self, record: dict) -> None:
        """Add the validation accuracies, on gray and on colour photos, to ``record``."""
        for gray in (True, False):
            scores = accuracy(self.model, self.val_x, self.val_y, gray, self.device, self.cfg.precision,
                              self.cfg.channels_last)
            record.update({f"val_{'gray' if gray else 'colour'}_{k}": v for k, v in scores.items()})

    def keep(self, record: dict) -> None:
        """Append ``record`` to the history and ``metrics.jsonl``, then save ``last.pt``."""
        self.history.append(record)
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        save_run_checkpoint({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                             "step": self.step, "config": asdict(self.cfg), "classes": self.classes,
                             "history": self.history, "kind": "sscn-pretrain"},
                            self.ckpt_path, kept_message(self.ckpt_path, self.saved_step))
        self.saved_step = self.step

    def finish(self, stopped_by: str, started: float) -> dict:
        """The summary, also written to ``summary.json``."""
        history, cfg = self.history, self.cfg
        last = next((h for h in reversed(history) if "val_gray_top1_l5" in h), {})
        summary = {"steps": self.step, "total_steps": self.total, "stopped_by": stopped_by,
                   "wall_s": time.time() - started,
                   "val_gray_top1": last.get("val_gray_top1_l5"), "val_colour_top1": last.get("val_colour_top1_l5"),
                   "val_gray_top1_l6": last.get("val_gray_top1_l6"), "val_colour_top1_l6": last.get("val_colour_top1_l6"),
                   "val_images": len(self.val_x),
                   "images_per_s": float(np.median([h["images_per_s"] for h in history])) if history else None,
                   "precision": describe(self.device, cfg.precision), "config": asdict(cfg)}
        files.write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2))
        return summary
