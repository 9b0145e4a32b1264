"""Training throughput: images per second of the real training step.

    python benchmarks/bench_train.py                              # CPU: widths 0.25 and 0.5, sparse and dense
    python benchmarks/bench_train.py --channels-last --threads 1  # also channels-last memory format; 1 thread
    python benchmarks/bench_train.py --device cuda --batch-size 32 --steps 50

One step is what ``sscn.train.train`` does per batch: ``make_batch`` (random flips and
the TPS references), the forward pass with labels (bf16 autocast on CUDA with
``--amp``), the five losses, backward and an Adam step. The batches are the sample
photos at ``--size`` px (random labels), so no data loading is timed (as with
``preload``). Each case runs in a fresh subprocess: two warm-up steps, then ``--steps``
timed steps; images per second = batch x steps / seconds. With ``--channels-last`` each
case also runs with the model and inputs in channels-last memory format, interleaved
step by step with the default format in the same process, and the ratio is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from sscn.color import rgb_to_lab_norm, split_lab
from sscn.colorize import threads_for_load
from sscn.data import sample_photos
from sscn.losses import LossWeights, sscn_loss
from sscn.models import SSCN, SSCNConfig
from sscn.train import make_batch, step_generator
from machine import describe  # benchmarks/machine.py, beside this script


def setup(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str, channels_last: bool):
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=width, num_classes=10, k=k, r=r, dense=dense)).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    photos = torch.stack([rgb for _, rgb in sample_photos(size=size)])
    picks = torch.arange(batch_size) % len(photos)
    gray_l, ab = split_lab(rgb_to_lab_norm(photos[picks]))
    batch = {"gray_l": gray_l, "ab": ab, "label": torch.randint(0, 10, (batch_size,), generator=torch.Generator().manual_seed(0))}
    return model, optimizer, batch


def train_step(model, optimizer, batch, device: str, step: int, amp: bool, channels_last: bool) -> None:
    """As ``sscn.train.train``'s loop body (no logging, no checkpoints)."""
    generator = step_generator(0, step)
    gray_l, ab, ref_lab, labels = make_batch(batch, torch.device(device), generator, 0.1)
    if channels_last:
        gray_l, ref_lab = gray_l.contiguous(memory_format=torch.channels_last), ref_lab.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
        out = model(gray_l, ref_lab, labels, generator=generator)
    total, _ = sscn_loss(out, ab, labels, LossWeights())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()


def measure(width: float, dense: bool, k: int, r: int, size: int, batch_size: int, device: str, amp: bool,
            steps: int, formats: list[str]) -> dict:
    """Images per second for each memory format in ``formats``, their steps interleaved."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    runs = {name: setup(width, dense, k, r, size, batch_size, device, name == "channels_last") for name in formats}
    times = {name: [] for name in formats}
    for step in range(2 + steps):
        for name, (model, optimizer, batch) in runs.items():
            sync()
            start = time.perf_counter()
            train_step(model, optimizer, batch, device, step, amp, name == "channels_last")
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
    parser.add_argument("--channels-last", action="store_true", help="also time the channels-last memory format")
    args = parser.parse_args(argv)
    threads = args.threads or threads_for_load()
    formats = ["contiguous"] + (["channels_last"] if args.channels_last else [])
    print(f"training step at {args.size} px, batch {args.batch_size}, k = r = {args.k if args.k == args.r else (args.k, args.r)} "
          f"(sparse), {'bf16 autocast, ' if args.amp else ''}{describe(args.device, threads)}, torch {torch.__version__}")
    for width in args.widths:
        for dense in (False, True):
            call = (width, dense, args.k, args.r, args.size, args.batch_size, args.device, args.amp, args.steps, formats)
            code = (f"import json, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
                    f"torch.set_num_threads({threads}); from bench_train import measure; print(json.dumps(measure(*{call!r})))")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            label = f"width {width:<5} {'dense ' if dense else 'sparse'}"
            if done.returncode != 0:
                print(f"{label}: failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:100]}", flush=True)
                continue
            rate = json.loads(done.stdout.strip().splitlines()[-1])
            line = f"{label}: {rate['contiguous']:7.1f} images/s"
            if args.channels_last:
                line += f"; channels-last {rate['channels_last']:7.1f} images/s ({rate['channels_last'] / rate['contiguous']:.2f}x)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
