"""Training throughput: images per second of the real training step.

    python benchmarks/bench_train.py                              # CPU: widths 0.25 and 0.5, sparse and dense
    python benchmarks/bench_train.py --before --contiguous --threads 1   # before / after issue 7; 1 thread
    python benchmarks/bench_train.py --float32 --bf16 --pretrain          # precision paths and the pre-stage
    python benchmarks/bench_train.py --widths 0.25 --frozen               # sscn train --freeze-encoder
    python benchmarks/bench_train.py --device cuda --batch-size 32 --steps 50

One step is what ``sscn.training.train.train`` does per batch: ``make_batch`` (random flips and
the TPS references), the forward pass with labels, the five losses, backward and an Adam step, in the precision
``sscn train --precision auto`` picks (bf16 autocast where the device computes bf16 natively,
``sscn/training/precision.py``). The batches are the sample
photos at ``--size`` px (random labels), so no data loading is timed (as with
``preload``). Each width and attention mode runs in a fresh subprocess: two warm-up
steps, then ``--steps`` timed steps; images per second = batch / median step time.

The variants of one width and mode are interleaved step by step in that subprocess, so
they share the machine's load and their ratio holds where the absolute rates drift:
- ``now``: the step as ``sscn train`` runs it (channels-last weights and inputs);
- ``--contiguous``: the same with the default (NCHW) memory format;
- ``--before``: the step before issue 7: NCHW, and the correspondence's forward as it
  was then (``forward_before`` in ``bench_attention.py``: the scale applied to the
  N x S logits rather than the N x d queries);
- ``--float32``: the plain float32 eager path (``sscn train --precision float32``), the old default;
- ``--bf16``: bf16 autocast forced on, whether or not the device computes bf16 natively;
- ``--frozen``: the step of ``sscn train --encoder-from ... --freeze-encoder``: both
  encoders fixed (no weight gradients, batch norm in eval mode), the rest learning.

``--pretrain`` also times the pre-stage classifier's step (``sscn pretrain``: the
encoder with batch norm and its two heads, batch 64 of 112 px crops, AdamW) in the
same precisions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types

import torch

from sscn.color import rgb_to_lab_norm, split_lab
from sscn.apps.colorize import threads_for_load
from sscn.io.data import sample_photos
from sscn.training.losses import LossWeights, sscn_loss
from sscn.models import SSCN, SSCNConfig
from sscn.models.attention import Correspondence
from sscn.training.precision import autocast_for, describe as describe_precision
from sscn.models.classifier import EncoderClassifier
from sscn.training.pretrain import augment
from sscn.training.config import TrainConfig
from sscn.training.train import freeze_encoders, make_batch, step_generator
from bench_attention import forward_before  # beside this script
from machine import describe

VARIANTS = {"now": "as sscn train runs it", "contiguous": "now, NCHW memory format", "before": "before issue 7",
            "float32": "float32 (--precision float32)", "bf16": "bf16 autocast forced", "frozen": "encoders frozen"}


def precision_of(variant: str, device: str):
    """The forward pass's autocast context for a variant."""
    return autocast_for(torch.device(device), variant if variant in ("float32", "bf16") else "auto")


def channels_last_in(variant: str) -> bool:
    return variant in ("now", "float32", "bf16", "frozen") and TrainConfig.channels_last


def setup(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str, variant: str):
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=width, num_classes=10, k=k, r=r, dense=dense)).to(device).train()
    if channels_last_in(variant):
        model = model.to(memory_format=torch.channels_last)
    if variant == "before":
        for module in model.modules():
            if isinstance(module, Correspondence):
                module.forward = types.MethodType(forward_before, module)
    if variant == "frozen":
        freeze_encoders(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    photos = torch.stack([rgb for _, rgb in sample_photos(size=size)])
    picks = torch.arange(batch_size) % len(photos)
    gray_l, ab = split_lab(rgb_to_lab_norm(photos[picks]))
    batch = {"gray_l": gray_l, "ab": ab, "label": torch.randint(0, 10, (batch_size,), generator=torch.Generator().manual_seed(0))}
    return model, optimizer, batch


def train_step(model, optimizer, batch, device: str, step: int, variant: str, channels_last: bool) -> None:
    """As ``sscn.training.train.train``'s loop body (no logging, no checkpoints)."""
    generator = step_generator(0, step)
    gray_l, ab, ref_lab, labels = make_batch(batch, torch.device(device), generator, 0.1, channels_last)
    with precision_of(variant, device):
        out = model(gray_l, ref_lab, labels, generator=generator)
    total, _ = sscn_loss(out, ab, labels, LossWeights())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()


def measure(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str,
            steps: int, variants: list[str]) -> dict:
    """Images per second for each of ``variants`` (keys of ``VARIANTS``), their steps interleaved."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    runs = {name: setup(width, dense, k, r, size, batch_size, device, name) for name in variants}
    times = {name: [] for name in variants}
    for step in range(2 + steps):
        for name, (model, optimizer, batch) in runs.items():
            sync()
            start = time.perf_counter()
            train_step(model, optimizer, batch, device, step, name, channels_last_in(name))
            sync()
            if step >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: batch_size / statistics.median(values) for name, values in times.items()}


def measure_pretrain(width: float, crop: int, batch_size: int, device: str, steps: int, variants: list[str]) -> dict:
    """Images per second of the pre-stage's step (``sscn.training.pretrain``) for each precision variant, interleaved."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    photos = torch.stack([(rgb * 255).round().to(torch.uint8) for _, rgb in sample_photos(size=crop + 16)])
    images = photos[torch.arange(batch_size) % len(photos)]
    labels = torch.arange(batch_size, device=device) % 10
    runs = {}
    for name in variants:
        torch.manual_seed(0)
        model = EncoderClassifier(width, "batch", 10).to(device).to(memory_format=torch.channels_last)
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3))
    times = {name: [] for name in variants}
    for step in range(2 + steps):
        for name, (model, optimizer) in runs.items():
            sync()
            start = time.perf_counter()
            x = augment(images, crop, 0.5, torch.Generator().manual_seed(step)).to(device)
            x = x.contiguous(memory_format=torch.channels_last)
            with precision_of(name, device):
                l5, l6 = model(x)
            loss = torch.nn.functional.cross_entropy(l5.float(), labels) + torch.nn.functional.cross_entropy(l6.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sync()
            if step >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: batch_size / statistics.median(values) for name, values in times.items()}


def run_case(call: str, label: str, variants: list[str]) -> None:
    """Run ``call`` (a measure* call) in a fresh subprocess and print its rates and ratios."""
    code = (f"import json, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"torch.set_num_threads({torch.get_num_threads()}); import bench_train; print(json.dumps(bench_train.{call}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{label}: failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:100]}", flush=True)
        return
    rate = json.loads(done.stdout.strip().splitlines()[-1])
    line = f"{label}: {rate['now']:7.1f} images/s"
    for name in variants[1:]:
        ratio = (f"{rate[name] / rate['now']:.2f}x the rate of now" if name == "frozen"
                 else f"now {rate['now'] / rate[name]:.2f}x faster")
        line += f"; {VARIANTS[name]} {rate[name]:7.1f} images/s ({ratio})"
    print(line, flush=True)

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--k", type=int, default=64, help="top-k tokens (the bundled checkpoint's 64 at 128 px)")
    parser.add_argument("--r", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case (after two warm-up steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--float32", action="store_true", help="also time the plain float32 path (sscn train --precision float32)")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast forced on")
    parser.add_argument("--pretrain", action="store_true", help="also time the pre-stage classifier's step")
    parser.add_argument("--pretrain-batch-size", type=int, default=64)
    parser.add_argument("--pretrain-crop", type=int, default=112)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads on the CPU (default: the cores the load average leaves idle, as sscn colorize)")
    parser.add_argument("--contiguous", action="store_true", help="also time the step in the NCHW memory format")
    parser.add_argument("--before", action="store_true", help="also time the step as it was before issue 7")
    parser.add_argument("--frozen", action="store_true", help="also time the step with both encoders frozen")
    args = parser.parse_args(argv)
    threads = args.threads or threads_for_load()
    torch.set_num_threads(threads)
    variants = (["now"] + (["contiguous"] if args.contiguous else []) + (["before"] if args.before else [])
                + (["float32"] if args.float32 else []) + (["bf16"] if args.bf16 else [])
                + (["frozen"] if args.frozen else []))
    print(f"training step at {args.size} px, batch {args.batch_size}, k = r = {args.k if args.k == args.r else (args.k, args.r)} "
          f"(sparse), now in {describe_precision(torch.device(args.device))}; {describe(args.device, threads)}, "
          f"torch {torch.__version__}")
    for width in args.widths:
        for dense in (False, True):
            call = f"measure{(width, dense, args.k, args.r, args.size, args.batch_size, args.device, args.steps, variants)!r}"
            run_case(call, f"width {width:<5} {'dense ' if dense else 'sparse'}", variants)
    if args.pretrain:
        pre_variants = ["now"] + [v for v in variants if v in ("float32", "bf16")]
        for width in args.widths:
            case = (width, args.pretrain_crop, args.pretrain_batch_size, args.device, args.steps, pre_variants)
            call = f"measure_pretrain{case!r}"
            run_case(call, f"pre-stage width {width:<5} batch {args.pretrain_batch_size} at {args.pretrain_crop} px",
                     pre_variants)


if __name__ == "__main__":
    main()
