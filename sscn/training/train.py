"""Training: the config, the loop, checkpoints, metrics (paper, Sec. 3.3 and 4.1).

One entry point for a laptop and for GPUs: ``train(TrainConfig(...))``, ``sscn train``,
notebook 07 through papermill, or ``torchrun --nproc_per_node=N -m sscn.training.train ...``
(DistributedDataParallel with a DistributedSampler).

Reproducibility: every random choice of a step (flips, TPS references, random tokens)
comes from a generator seeded by ``(seed, step)``, and the data order from the
sampler's ``(seed, epoch)``; a run resumed from its last checkpoint therefore ends
with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ..augment import training_references
from ..color import join_lab, lab_norm_to_rgb
from ..errors import SSCNError
from ..io import files
from ..io.checkpoints import kept_message, save_run_checkpoint
from ..io.data import ImageFolder, sample_folder
from ..io.files import training_folder
from ..models import SSCN
from ..models.checkpoint import check_checkpoint, check_config_match, read_checkpoint
from ..models.sscn import trainable_parameters
from .config import TrainConfig, add_arguments, config_from_args
from .contextual import reference_contextual_loss
from .losses import LossWeights, sscn_loss
from .precision import autocast_for, describe as describe_precision
from .run import out_of_memory_message, prepare_out_dir, resolve_device


class TrainingDiverged(SSCNError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def _distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world
    return 0, 0, 1


def _agree(flag: bool, world: int) -> bool:
    """True on every rank when it is true on any (ranks' clocks differ; they must stop together)."""
    if world == 1:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _diverged_message(terms: dict, total: torch.Tensor, step: int, ckpt_path: Path, saved_step: int | None) -> str:
    bad = [f"{name} = {float(value.detach())}" for name, value in terms.items() if not torch.isfinite(value)]
    if not bad and not torch.isfinite(total):
        bad = [f"total = {float(total.detach())}"]
    what = ", ".join(bad) if bad else "not finite on another process"
    kept = (f"the last checkpoint ({ckpt_path}, step {saved_step}) is kept" if saved_step is not None
            else "no checkpoint was written yet (see ckpt_every)")
    return (f"training diverged at step {step}: loss term {what}; {kept}. "
            "Resume with a lower lr, or set grad_clip (e.g. 1.0).")


def datasets(cfg: TrainConfig):
    """(training set, validation set) of ``cfg.data_dir``; the validation items carry fixed TPS references.

    ``"samples"``: the built-in photos (``sscn.io.data.sample_folder``) serve as both. A folder
    with ``train/`` (and ``val/``) uses those; any other folder of class folders serves as both.
    """
    if cfg.data_dir == "samples":
        root = sample_folder()
        train_dir = val_dir = root
    else:
        root = Path(cfg.data_dir)
        train_dir = root / "train" if (root / "train").is_dir() else root
        val_dir = root / "val" if (root / "val").is_dir() else train_dir
    train_set = ImageFolder(train_dir, cfg.image_size)
    val_set = ImageFolder(val_dir, cfg.image_size, reference="tps", seed=cfg.seed, limit=cfg.val_images)
    return train_set, val_set


def preload(dataset, device: torch.device, num_workers: int) -> dict[str, torch.Tensor]:
    """Decode every training image once: ``gray_l``, ``ab`` (float16) and ``label`` on ``device``.

    On a GPU this removes JPEG decoding from the step; the set at 128 px takes about
    0.4 GB in float16.
    """
    parts: dict[str, list] = {"gray_l": [], "ab": [], "label": []}
    loader = DataLoader(dataset, batch_size=256, num_workers=num_workers)
    for batch in tqdm(loader, desc="preload", leave=False):
        for key in parts:
            value = batch[key]
            parts[key].append(value.half() if value.is_floating_point() else value)
    return {key: torch.cat(values).to(device) for key, values in parts.items()}


def _rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # numpy's state as plain values so that ``weights_only=True`` can read it back
        "numpy": [torch.from_numpy(state) if isinstance(state, np.ndarray) else state for state in np.random.get_state()],
        "python": random.getstate(),
    }


# settings that a resumed run may change without changing what it learns
_RUN_ONLY = {"out_dir", "steps", "time_limit_min", "val_every", "val_images", "log_every", "ckpt_every",
             "num_workers", "preload", "channels_last", "device", "init_from", "encoder_from", "data_dir", "amp", "precision"}


def _changed_settings(saved: dict, now: dict) -> list[str]:
    """``name old -> new`` for each training setting a resumed run changes (run-only ones excepted)."""
    return [f"{name} {saved[name]!r} -> {value!r}" for name, value in now.items()
            if name not in _RUN_ONLY and name in saved and saved[name] != value]


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def make_batch(batch: dict, device: torch.device, generator: torch.Generator, violent_share: float,
               channels_last: bool = False, same_class: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Targets (randomly flipped) and their TPS references, all drawn from ``generator``.

    ``same_class``: ``B x 3 x H x W`` Lab references (another photo of each target's class)
    with a ``B`` bool ``"use"`` mask as :func:`same_class_references` returns them; where the
    mask is set they replace the TPS reference (He et al. 2018's pairs; the loss still reads
    the target's own colours). ``channels_last``: the network's inputs (L and the reference)
    in NHWC, as the convolutions of a channels-last model want them."""
    gray_l = batch["gray_l"].to(device, torch.float32, non_blocking=True)
    ab = batch["ab"].to(device, torch.float32, non_blocking=True)
    flip = (torch.rand(len(gray_l), generator=generator) < 0.5).to(device)[:, None, None, None]
    gray_l, ab = torch.where(flip, gray_l.flip(-1), gray_l), torch.where(flip, ab.flip(-1), ab)
    target_lab = join_lab(gray_l, ab)
    ref_lab = training_references(target_lab, generator, violent_share)
    if same_class is not None:
        refs, use = same_class
        ref_lab = torch.where(use.to(device)[:, None, None, None], refs.to(device, torch.float32), ref_lab)
    if channels_last:
        gray_l, ref_lab = (x.contiguous(memory_format=torch.channels_last) for x in (gray_l, ref_lab))
    return gray_l, ab, ref_lab, batch["label"].to(device)


def same_class_references(indices: list[int], share: float, sampler, fetch, generator: torch.Generator, step: int):
    """(``B x 3 x H x W`` references, ``B`` bool mask) or None: for a ``share`` of the ``indices``
    (drawn from ``generator``) the Lab of another photo of the same class, drawn by ``sampler``
    (a :class:`sscn.training.same_class.SameClassSampler`) afresh at each ``step``; ``fetch(indices)`` ->
    ``(gray_l, ab)``. Only the chosen partners are fetched; a class with one photo keeps its
    TPS reference."""
    use = torch.rand(len(indices), generator=generator) < share
    partners = [sampler.draw(i, epoch=step) if chosen else None for i, chosen in zip(indices, use.tolist())]
    use &= torch.tensor([p is not None for p in partners])
    chosen = [p for p in partners if p is not None]
    if not chosen:
        return None
    gray_l, ab = fetch(chosen)
    found = join_lab(gray_l.float(), ab.float())
    refs = found.new_zeros((len(indices), *found.shape[1:]))
    refs[use.to(found.device)] = found
    return refs, use


def same_class_contextual(encoder, gray_l, ab_fine, ref_lab, same_class) -> tuple[torch.Tensor, float]:
    """(contextual loss of the same-class pairs' results against their references, their share
    of the batch); the loss is 0 for a batch without such pairs. Scaled by the share, it
    weighs each pair as the batch-mean losses do."""
    if same_class is None:
        return ab_fine.new_zeros(()), 0.0
    use = same_class[1].to(ab_fine.device)
    loss = reference_contextual_loss(encoder, gray_l[use], ab_fine[use], ref_lab[use])
    return loss, float(use.float().mean())


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, model: SSCN, frozen: bool, cfg: TrainConfig) -> None:
    """Adam's state from a checkpoint whose run had ``freeze_encoder=frozen``; a run that switched it keeps
    the moments of the parameters both train (the encoders' start fresh, or are dropped). The learning
    rate and betas are this run's (a resumed run may change them)."""
    params = optimizer.param_groups[0]["params"]
    before = trainable_parameters(model, frozen)
    if [id(p) for p in before] == [id(p) for p in params]:
        optimizer.load_state_dict(saved)
    else:
        staging = torch.optim.Adam(before)
        staging.load_state_dict(saved)
        optimizer.param_groups[0].update({k: v for k, v in staging.param_groups[0].items() if k != "params"})
        now = {id(p) for p in params}
        for p in before:
            if id(p) in now and p in staging.state:
                optimizer.state[p] = staging.state[p]
    for group in optimizer.param_groups:
        group.update(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def freeze_encoders(model: SSCN) -> list[torch.nn.Module]:
    """Fix the pre-stage's encoders (E, and GCT's gray encoder): no gradients, batch norm in eval mode.

    The reference encoder then keeps the classifier's semantics, and a step skips their
    weight gradients (``benchmarks/README.md`` has the speed)."""
    frozen = [model.encoder, model.gct.encoder]
    for module in frozen:
        module.requires_grad_(False)
        module.eval()
    return frozen


@torch.no_grad()
def validate(model: SSCN, loader, device) -> float:
    """Mean PSNR (8-bit RGB) of the fine result on the fixed validation pairs; each module's mode is kept."""
    from ..scores import psnr

    modes = {module: module.training for module in model.modules()}
    model.eval()
    scores = []
    for batch in loader:
        gray_l, ref_lab = batch["gray_l"].to(device), batch["ref_lab"].to(device)
        out = model(gray_l, ref_lab, seed=0)
        pred = lab_norm_to_rgb(join_lab(gray_l, out.ab_fine.float()))
        scores.append(psnr(pred.cpu(), batch["rgb"]))
    for module, training in modes.items():
        module.train(training)
    values = torch.cat(scores)
    return float(values[torch.isfinite(values)].mean())


def train(cfg: TrainConfig, progress: bool = True, on_log=None) -> dict:
    """Train (or resume) and return a summary; writes ``metrics.jsonl``, ``last.pt``, ``summary.json``.

    ``on_log(record)`` is called with each logged record (notebook 07 draws live plots with it).
    The output folder is locked while the run uses it, and a run with no ``last.pt`` to resume
    from starts a fresh ``metrics.jsonl`` (:func:`sscn.io.files.training_folder`).
    """
    cfg.validate()
    data_dir = None if cfg.data_dir == "samples" else cfg.data_dir
    with training_folder(cfg.out_dir, data_dir, rank=int(os.environ.get("RANK", "0"))):
        try:
            return _train(cfg, progress, on_log)
        except (MemoryError, RuntimeError) as exc:
            message = out_of_memory_message(exc, Path(cfg.out_dir) / "last.pt", cfg.batch_size, "image_size",
                                            cfg.image_size, ", or leave out --preload" if cfg.preload else "")
            if message is None:
                raise
            raise SSCNError(message) from None


def _train(cfg: TrainConfig, progress: bool, on_log) -> dict:
    run = _Run(cfg)
    start_step, started = run.step, time.time()
    stopped_by = _loop(run, started, progress, on_log)
    return run.finish(stopped_by, start_step, started)


def _loop(run: _Run, started: float, progress: bool, on_log) -> str:
    """Step until ``cfg.steps`` or the time limit, logging, validating and saving when due; says which stopped it."""
    cfg = run.cfg
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not progress or run.rank != 0, desc="train", dynamic_ncols=True)
    seen, tick = 0, time.time()
    stopped_by = "steps"
    try:  # the bar ends its line whatever stops the loop, so an error prints on a line of its own
        while run.step < cfg.steps:
            for indices, batch in run.feed.epoch_from(run.step):
                total, terms, images = run.train_step(indices, batch)
                seen += images * run.world
                bar.update(1)
                if _due(run.step, cfg.log_every, cfg.steps):
                    now = time.time()
                    record = run.record(total, terms, seen / max(now - tick, 1e-9), now - started)
                    seen, tick = 0, now
                    if run.rank == 0:
                        bar.set_postfix(loss=f"{record['loss']:.3f}", psnr=record.get("val_psnr", ""))
                        if on_log:
                            on_log(record)
                if _due(run.step, cfg.ckpt_every, cfg.steps):
                    run.save()
                if run.out_of_time(started):
                    stopped_by = "time limit"
                    break
                if run.step >= cfg.steps:
                    break
            if stopped_by == "time limit":  # saved once the epoch's loader (and its workers) is let go
                run.save()
                break
    finally:
        bar.close()
    return stopped_by


def _due(step: int, every: int, last: int) -> bool:
    """Every ``every`` steps, and at the last one."""
    return step % every == 0 or step == last


def _set_up_device(name: str, local_rank: int) -> torch.device:
    device = resolve_device(name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    return device


def _new_model(cfg: TrainConfig, classes: list[str], device: torch.device, fresh: bool) -> SSCN:
    """The network as it starts: seeded, with the requested encoder weights, in its memory layout, frozen parts fixed."""
    torch.manual_seed(cfg.seed)
    model = SSCN(cfg.model_config(len(classes))).to(device)
    if cfg.vgg_weights:
        model.encoder.load_vgg19(None if cfg.vgg_weights == "imagenet" else cfg.vgg_weights)
    if cfg.encoder_from and fresh:
        from ..models.pretrained import load_pretrained_encoder

        load_pretrained_encoder(model, cfg.encoder_from, classes)
    if cfg.channels_last:  # before the optimizer, so Adam's moments take the same layout
        model = model.to(memory_format=torch.channels_last)
    if cfg.freeze_encoder:
        freeze_encoders(model)
    return model


def _load_start_weights(model: SSCN, path: str) -> None:
    """``init_from``: another run's SSCN weights, for a fresh run (no optimizer state, no step)."""
    from ..models.checkpoint import load_state

    init = read_checkpoint(path, map_location="cpu", kind="sscn")
    check_config_match(init["config"], model.config.to_dict())
    load_state(model, init["model"], path)


def _set_rng_state(rng: dict) -> None:
    """The inverse of :func:`_rng_state`."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(tuple(v.numpy() if torch.is_tensor(v) else v for v in rng["numpy"]))
    random.setstate(rng["python"])


def _context_encoder(cfg: TrainConfig, device: torch.device):
    """The fixed classifier encoder the contextual loss compares features in, or None without that loss."""
    if cfg.w_cx <= 0:
        return None
    from ..models.pretrained import pretrained_classifier

    return pretrained_classifier(cfg.cx_encoder)[0].encoder.to(device).requires_grad_(False)


class _Feed:
    """The training batches: the sampler's order from any step on, and the same-class partners.

    The order depends only on ``(seed, epoch)``, so a resumed run continues mid-epoch with
    the batches an uninterrupted one would have drawn.
    """

    def __init__(self, cfg: TrainConfig, train_set, rank: int, world: int, device: torch.device):
        self.cfg, self.train_set, self.device = cfg, train_set, device
        self.sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
                                          drop_last=True)
        self.per_epoch = len(self.sampler) // cfg.batch_size
        if self.per_epoch == 0:
            raise SSCNError(f"the training set has {len(train_set)} images, fewer than one batch of {cfg.batch_size} "
                            "per process")
        self.cache = None
        self.partners = None

    def load(self) -> None:
        """Decode the photos onto the device (``preload``) and index the classes for same-class pairs."""
        self.cache = preload(self.train_set, self.device, self.cfg.num_workers) if self.cfg.preload else None
        if self.cfg.same_class_share > 0:
            from .same_class import SameClassSampler

            self.partners = SameClassSampler(self.train_set.labels, self.cfg.seed)

    def fetch(self, chosen: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(gray L, ab) of the photos ``chosen``, from the preloaded cache when there is one."""
        if self.cache is not None:
            where = torch.as_tensor(chosen, device=self.device)
            return self.cache["gray_l"][where], self.cache["ab"][where]
        return tuple(torch.stack([self.train_set[j][key] for j in chosen]) for key in ("gray_l", "ab"))

    def epoch_from(self, step: int):
        """``(indices, batch)`` pairs from ``step`` to the end of its epoch."""
        size = self.cfg.batch_size
        epoch, offset = divmod(step, self.per_epoch)
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)
        batches = [order[i : i + size] for i in range(offset * size, self.per_epoch * size, size)]
        if self.cache is not None:
            loader = ({key: value[torch.as_tensor(b, device=value.device)] for key, value in self.cache.items()}
                      for b in batches)
        else:
            loader = DataLoader(self.train_set, batch_sampler=batches, num_workers=self.cfg.num_workers,
                                pin_memory=self.device.type == "cuda")
        return zip(batches, loader)

    def same_class(self, indices: list[int], generator: torch.Generator, step: int):
        """The step's same-class references (see :func:`same_class_references`), or None without them."""
        if self.partners is None:
            return None
        # its own generator: the TPS draws stay those of a run without it
        pair_generator = torch.Generator().manual_seed(generator.initial_seed() + 2**40)
        return same_class_references(indices, self.cfg.same_class_share, self.partners, self.fetch, pair_generator, step)


class _Run:
    """One training run: its folder, model, optimizer and how far it got; set up (or resumed) on creation."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rank, local_rank, self.world = _distributed()
        self.device = _set_up_device(cfg.device, local_rank)
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_path, self.log_path = self.out_dir / "last.pt", self.out_dir / "metrics.jsonl"
        prepare_out_dir(self.out_dir, self.ckpt_path, clean=self.rank == 0)  # before the photos are decoded, not after the work

        self.train_set, val_set = datasets(cfg)
        self.classes = list(self.train_set.classes)
        resuming = self.ckpt_path.exists()
        self.model = _new_model(cfg, self.classes, self.device, fresh=not resuming)
        self.optimizer = torch.optim.Adam(trainable_parameters(self.model, cfg.freeze_encoder), lr=cfg.lr,
                                          betas=(cfg.beta1, cfg.beta2))
        self.weights = LossWeights(cfg.w_coarse, cfg.w_fine, cfg.w_cls, cfg.w_hist, cfg.w_tv)
        self.step, self.history, self.saved_step = 0, [], None
        if cfg.init_from and not resuming:
            _load_start_weights(self.model, cfg.init_from)
        if resuming:
            self._resume()
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[local_rank] if self.device.type == "cuda" else None)

        self.feed = _Feed(cfg, self.train_set, self.rank, self.world, self.device)
        self.val_loader = DataLoader(val_set, batch_size=max(1, min(32, cfg.batch_size * 4)), num_workers=0)
        if self.rank == 0:
            print(f"training on {self.device}: {describe_precision(self.device, cfg.precision)}")
        self.context_encoder = _context_encoder(cfg, self.device)  # before the (long) preload, so a wrong path fails at once
        self.feed.load()
        self.model.train()
        if cfg.freeze_encoder:
            freeze_encoders(self.model)

    def _resume(self) -> None:
        """Weights, optimizer, step, history and random state from ``last.pt``, each checked first."""
        ckpt = read_checkpoint(self.ckpt_path, map_location="cpu")
        check_config_match(ckpt["config"], self.model.config.to_dict())  # another architecture: say which setting
        check_checkpoint(ckpt, self.ckpt_path, "train")  # then every field a resume uses
        if ckpt["classes"] != self.classes:
            raise SSCNError(f"{self.ckpt_path} was trained on other classes than {self.cfg.data_dir} holds (its labels "
                            "would mean other classes); use the same data or a new out_dir")
        self.model.load_state_dict(ckpt["model"])
        frozen = len(ckpt["optimizer"]["param_groups"][0]["params"]) == len(trainable_parameters(self.model, True))
        load_optimizer(self.optimizer, ckpt["optimizer"], self.model, frozen, self.cfg)
        self.step, self.history = ckpt["step"], ckpt.get("history", [])
        self.saved_step = self.step
        _set_rng_state(ckpt["rng"])
        if self.rank == 0:
            if "history" in ckpt:
                # lines logged after this checkpoint (a kill before the next save) would be repeated
                files.write_text(self.log_path, "".join(json.dumps(record) + "\n" for record in self.history))
            print(f"resumed from {self.ckpt_path.name} at step {self.step}")
            changed = _changed_settings(ckpt.get("train_config", {}), asdict(self.cfg))
            if changed:  # allowed (a longer run, a new learning rate), but never silently
                print("settings differ from the checkpoint's run: " + ", ".join(changed))

    def train_step(self, indices: list[int], batch: dict) -> tuple[torch.Tensor, dict, int]:
        """One update on ``batch``: (total loss, its terms, images on this process); stops on a loss that is not finite."""
        cfg, device = self.cfg, self.device
        generator = step_generator(cfg.seed * self.world + self.rank, self.step)
        same_class = self.feed.same_class(indices, generator, self.step)
        gray_l, ab, ref_lab, labels = make_batch(batch, device, generator, cfg.violent_share, cfg.channels_last,
                                                 same_class)
        with autocast_for(device, cfg.precision):
            out = self.net(gray_l, ref_lab, labels, generator=generator)
        colour_weight = None
        if same_class is not None and not cfg.same_class_colour_losses:  # no colour loss on them (He et al. 2018): contextual only
            colour_weight = (~same_class[1]).to(device, torch.float32)
        total, terms = sscn_loss(out, ab, labels, self.weights, colour_weight=colour_weight)
        if cfg.w_cx > 0:
            terms["cx"], share = same_class_contextual(self.context_encoder, gray_l, out.ab_fine, ref_lab, same_class)
            total = total + cfg.w_cx * share * terms["cx"]
        self._stop_unless_finite(terms, total)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        return total, terms, len(gray_l)

    def _stop_unless_finite(self, terms: dict, total: torch.Tensor) -> None:
        finite = torch.stack([torch.isfinite(value) for value in terms.values()] + [torch.isfinite(total)])
        if self.world > 1:
            # every rank must stop together: a rank that left alone would hang the others' all-reduce
            finite = finite.to(torch.int32)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite.all()):
            raise TrainingDiverged(_diverged_message(terms, total, self.step + 1, self.ckpt_path, self.saved_step))

    def record(self, total: torch.Tensor, terms: dict, images_per_s: float, elapsed_s: float) -> dict:
        """Log this step: validate when due, append to the history and (rank 0) to ``metrics.jsonl``."""
        record = {"step": self.step, "loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()},
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": images_per_s, "elapsed_s": elapsed_s}
        if self.step % self.cfg.val_every == 0 or self.step == self.cfg.steps:
            record["val_psnr"] = validate(self.model, self.val_loader, self.device)
        self.history.append(record)
        if self.rank == 0:
            with open(self.log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
        return record

    def save(self) -> None:
        """``last.pt`` at this step (rank 0 writes; every rank remembers the step for the divergence message)."""
        kept = kept_message(self.ckpt_path, self.saved_step)
        self.saved_step = self.step
        if self.rank == 0:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "config": self.model.config.to_dict(),
                "train_config": asdict(self.cfg),
                "classes": self.classes,
                "rng": _rng_state(),
                "history": self.history,
            }
            save_run_checkpoint(state, self.ckpt_path, kept)

    def out_of_time(self, started: float) -> bool:
        """The time limit has passed (on any rank: they must stop together)."""
        return bool(self.cfg.time_limit_min) and _agree(time.time() - started > self.cfg.time_limit_min * 60, self.world)

    def finish(self, stopped_by: str, start_step: int, started: float) -> dict:
        """The summary, written to ``summary.json`` by rank 0; the process group is closed."""
        history, device = self.history, self.device
        summary = {
            "steps": self.step,
            "steps_this_run": self.step - start_step,
            "stopped_by": stopped_by,
            "wall_s": time.time() - started,
            "first_loss": history[0]["loss"] if history else math.nan,
            "last_loss": history[-1]["loss"] if history else math.nan,
            "val_psnr": [(h["step"], h["val_psnr"]) for h in history if "val_psnr" in h],
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "world_size": self.world,
            "precision": describe_precision(device, self.cfg.precision),
            "config": asdict(self.cfg),
        }
        if self.rank == 0:
            files.write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2))
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sscn train", description="Train SSCN (resumes from OUT_DIR/last.pt).")
    add_arguments(parser)
    try:
        summary = train(config_from_args(parser.parse_args(argv)))
    except SSCNError as exc:  # one line, as ``sscn train`` prints it (torchrun starts this entry point)
        print(f"sscn train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
