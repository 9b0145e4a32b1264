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
    from .run import prepare_out_dir, resolve_device

    device = resolve_device(cfg.device)
    root = Path(cfg.data_dir)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise SSCNError(f"{root} must hold train/ and val/ class folders (like imagenette2-144); "
                        "the val split stays unseen by training and measures it")
    out_dir = Path(cfg.out_dir)
    ckpt_path, log_path = out_dir / "last.pt", out_dir / "metrics.jsonl"
    prepare_out_dir(out_dir, ckpt_path)  # before the photos are decoded: a folder it cannot write fails now

    train_x, train_y, classes = load_photos(root / "train", cfg.image_size, desc="decode train")
    val_x, val_y, val_classes = load_photos(root / "val", cfg.image_size, cfg.val_images, desc="decode val")
    if val_classes != classes:
        raise SSCNError(f"{root}/train and {root}/val hold different classes; they must match")
    per_epoch = len(train_x) // cfg.batch_size
    if per_epoch == 0:
        raise SSCNError(f"the training set has {len(train_x)} photos, fewer than one batch of {cfg.batch_size}")
    total = max(1, round(cfg.epochs * per_epoch))
    warmup = round(cfg.warmup_epochs * per_epoch)

    torch.manual_seed(cfg.seed)
    model = EncoderClassifier(cfg.width, cfg.norm, len(classes)).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    decay, no_decay = optimizer_groups(model)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    step, history, saved_step = 0, [], None
    if ckpt_path.exists():
        ckpt = read_pretrained(ckpt_path, resume=True)
        if ckpt["config"]["width"] != cfg.width or ckpt["config"]["norm"] != cfg.norm or ckpt["classes"] != classes:
            raise SSCNError(f"{ckpt_path} was trained with another width, norm or class list; use a new out_dir")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, history = ckpt["step"], ckpt.get("history", [])
        saved_step = step
        files.write_text(log_path, "".join(json.dumps(record) + "\n" for record in history))
        print(f"resumed from {ckpt_path.name} at step {step} of {total}")

    def save() -> None:
        nonlocal saved_step
        save_run_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                             "config": asdict(cfg), "classes": classes, "history": history, "kind": "sscn-pretrain"},
                            ckpt_path, kept_message(ckpt_path, saved_step))
        saved_step = step

    def evaluate(record: dict) -> None:
        for gray in (True, False):
            scores = accuracy(model, val_x, val_y, gray, device, cfg.precision, cfg.channels_last)
            record.update({f"val_{'gray' if gray else 'colour'}_{k}": v for k, v in scores.items()})

    print(f"pre-stage: {len(train_x)} train / {len(val_x)} val photos, {len(classes)} classes, {total} steps "
          f"of {cfg.batch_size}, {describe(device, cfg.precision)}")
    model.train()
    started, tick, seen = time.time(), time.time(), 0
    stop_reason = "epochs"
    bar = tqdm(total=total, initial=step, disable=not progress, desc="pretrain", dynamic_ncols=True)
    try:  # the bar ends its line whatever stops the loop, so an error prints on a line of its own
        while step < total:
            epoch, offset = divmod(step, per_epoch)
            order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
            for b in range(offset, per_epoch):
                generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * step + 1)
                index = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x = augment(train_x[index], cfg.crop, cfg.gray_share, generator).to(device)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = train_y[index].to(device)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, warmup, cfg.lr)
                with autocast_for(device, cfg.precision):
                    l5, l6 = model(x)
                loss = (F.cross_entropy(l5.float(), y, label_smoothing=cfg.label_smoothing)
                        + F.cross_entropy(l6.float(), y, label_smoothing=cfg.label_smoothing))
                if not torch.isfinite(loss):
                    raise SSCNError(f"pre-stage diverged at step {step + 1} (loss {float(loss.detach())}); "
                                    f"{kept_message(ckpt_path, saved_step)}; resume with a lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                seen += len(x)
                bar.update(1)
                end_of_epoch = b == per_epoch - 1
                out_of_time = cfg.time_limit_min and time.time() - started > cfg.time_limit_min * 60
                if end_of_epoch or step == total or out_of_time:
                    now = time.time()
                    record = {"step": step, "epoch": step / per_epoch, "loss": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"],
                              "train_top1_l5": float((l5.argmax(1) == y).float().mean()),
                              "images_per_s": seen / max(now - tick, 1e-9), "elapsed_s": now - started}
                    if round(step / per_epoch) % cfg.val_every == 0 or step == total or out_of_time:
                        evaluate(record)
                        bar.set_postfix(gray=f"{record['val_gray_top1_l5']:.3f}", colour=f"{record['val_colour_top1_l5']:.3f}")
                    history.append(record)
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps(record) + "\n")
                    save()
                    seen, tick = 0, time.time()
                if out_of_time:
                    stop_reason = "time limit"
                    break
                if step >= total:
                    break
            if stop_reason == "time limit":
                break
    finally:
        bar.close()
    last = next((h for h in reversed(history) if "val_gray_top1_l5" in h), {})
    summary = {"steps": step, "total_steps": total, "stopped_by": stop_reason, "wall_s": time.time() - started,
               "val_gray_top1": last.get("val_gray_top1_l5"), "val_colour_top1": last.get("val_colour_top1_l5"),
               "val_gray_top1_l6": last.get("val_gray_top1_l6"), "val_colour_top1_l6": last.get("val_colour_top1_l6"),
               "val_images": len(val_x), "images_per_s": float(np.median([h["images_per_s"] for h in history])) if history else None,
               "precision": describe(device, cfg.precision), "config": asdict(cfg)}
    files.write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
