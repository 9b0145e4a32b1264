"""Training throughput: images per second of the real training step.

    python benchmarks/bench_train.py                              # CPU: widths 0.25 and 0.5, sparse and dense
    python benchmarks/bench_train.py --before --contiguous --threads 1   # before / after issue 7; 1 thread
    python benchmarks/bench_train.py --device cuda --batch-size 32 --steps 50 --amp

One step is what ``sscn.train.train`` does per batch: ``make_batch`` (random flips and
the TPS references), the forward pass with labels (bf16 autocast on CUDA with
``--amp``), the five losses, backward and an Adam step. The batches are the sample
photos at ``--size`` px (random labels), so no data loading is timed (as with
``preload``). Each width and attention mode runs in a fresh subprocess: two warm-up
steps, then ``--steps`` timed steps; images per second = batch / median step time.

The variants of one width and mode are interleaved step by step in that subprocess, so
they share the machine's load and their ratio holds where the absolute rates drift:
- ``now``: the step as ``sscn train`` runs it (channels-last weights and inputs);
- ``--contiguous``: the same with the default (NCHW) memory format;
- ``--before``: the step before issue 7: NCHW, and the correspondence's forward as it
  was then (``forward_before`` in ``bench_attention.py``: the scale applied to the
  N x S logits rather than the N x d queries).
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
from sscn.colorize import threads_for_load
from sscn.data import sample_photos
from sscn.losses import LossWeights, sscn_loss
from sscn.models import SSCN, SSCNConfig
from sscn.models.attention import Correspondence
from sscn.train import TrainConfig, make_batch, step_generator
from bench_attention import forward_before  # beside this script
from machine import describe

VARIANTS = {"now": "as sscn train runs it", "contiguous": "now, NCHW memory format", "before": "before issue 7"}


def channels_last_in(variant: str) -> bool:
    return variant == "now" and TrainConfig.channels_last


def setup(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str, variant: str):
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=width, num_classes=10, k=k, r=r, dense=dense)).to(device).train()
    if channels_last_in(variant):
        model = model.to(memory_format=torch.channels_last)
    if variant == "before":
        for module in model.modules():
            if isinstance(module, Correspondence):
                module.forward = types.MethodType(forward_before, module)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    photos = torch.stack([rgb for _, rgb in sample_photos(size=size)])
    picks = torch.arange(batch_size) % len(photos)
    gray_l, ab = split_lab(rgb_to_lab_norm(photos[picks]))
    batch = {"gray_l": gray_l, "ab": ab, "label": torch.randint(0, 10, (batch_size,), generator=torch.Generator().manual_seed(0))}
    return model, optimizer, batch


def train_step(model, optimizer, batch, device: str, step: int, amp: bool, channels_last: bool) -> None:
    """As ``sscn.train.train``'s loop body (no logging, no checkpoints)."""
    generator = step_generator(0, step)
    gray_l, ab, ref_lab, labels = make_batch(batch, torch.device(device), generator, 0.1, channels_last)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
        out = model(gray_l, ref_lab, labels, generator=generator)
    total, _ = sscn_loss(out, ab, labels, LossWeights())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()


def measure(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str, amp: bool,
            steps: int, variants: list[str]) -> dict:
    """Images per second for each of ``variants`` (keys of ``VARIANTS``), their steps interleaved."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    runs = {name: setup(width, dense, k, r, size, batch_size, device, name) for name in variants}
    times = {name: [] for name in variants}
    for step in range(2 + steps):
        for name, (model, optimizer, batch) in runs.items():
            sync()
            start = time.perf_counter()
            train_step(model, optimizer, batch, device, step, amp, channels_last_in(name))
            sync()
            if step >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: batch_size / statistics.median(values) for name, values in times.items()}

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--k", type=int, default=64, help="top-k tokens (the bundled checkpoint's 64 at 128 px)")
    parser.add_argument("--r", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case (after two warm-up steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (as sscn train on CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads on the CPU (default: the cores the load average leaves idle, as sscn colorize)")
    parser.add_argument("--contiguous", action="store_true", help="also time the step in the NCHW memory format")
    parser.add_argument("--before", action="store_true", help="also time the step as it was before issue 7")
    args = parser.parse_args(argv)
    threads = args.threads or threads_for_load()
    variants = ["now"] + (["contiguous"] if args.contiguous else []) + (["before"] if args.before else [])
    print(f"training step at {args.size} px, batch {args.batch_size}, k = r = {args.k if args.k == args.r else (args.k, args.r)} "
          f"(sparse), {'bf16 autocast, ' if args.amp else ''}{describe(args.device, threads)}, torch {torch.__version__}")
    for width in args.widths:
        for dense in (False, True):
            call = (width, dense, args.k, args.r, args.size, args.batch_size, args.device, args.amp, args.steps, variants)
            code = (f"import json, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
                    f"torch.set_num_threads({threads}); from bench_train import measure; print(json.dumps(measure(*{call!r})))")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            label = f"width {width:<5} {'dense ' if dense else 'sparse'}"
            if done.returncode != 0:
                print(f"{label}: failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:100]}", flush=True)
                continue
            rate = json.loads(done.stdout.strip().splitlines()[-1])
            line = f"{label}: {rate['now']:7.1f} images/s"
            for name in variants[1:]:
                line += f"; {VARIANTS[name]} {rate[name]:7.1f} images/s (now {rate['now'] / rate[name]:.2f}x faster)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
