"""Dense vs semantic-sparse correspondence: time and peak memory of the attention step.

    python benchmarks/bench_attention.py                       # CPU: 64, 128, 256, 512 px
    python benchmarks/bench_attention.py --sizes 64 128 256 512 1024 --device cuda

The step is the project's own ``Correspondence`` (Formulas 2-3) on the tokens of a
working size S (N = (S/4)^2 tokens of the width's feature size), sparse with
k = r = 256 (CAM ranking, token gather and all), dense over all N tokens. Both run
with one query chunk (the textbook attention), forward at inference and forward +
backward as in training. Peak memory is measured per case: on CUDA with
``max_memory_allocated``, on the CPU as the growth of the process's peak RSS in a
fresh subprocess. Prints one table, with the dense / sparse ratios per size.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from sscn.models.attention import Correspondence, select_tokens
from sscn.models.encoder import scaled


def build(size: int, width: float, device: str):
    torch.manual_seed(0)
    dim = sum(scaled(c, width) for c in (64, 128, 256, 512))
    n = (size // 4) ** 2
    module = Correspondence(dim, scaled(256, width), 32).to(device)
    query = torch.randn(1, n, dim, device=device)
    key = torch.randn(1, n, dim, device=device)
    ref_ab = torch.randn(1, n, 2, device=device)
    cam = torch.rand(1, n, device=device)
    return module, query, key, ref_ab, cam


def run_once(module, query, key, ref_ab, cam, mode: str, k: int, r: int, train: bool):
    n = query.shape[1]
    indices = None if mode == "dense" else select_tokens(cam, k, r, torch.Generator().manual_seed(0))
    if train:
        query.requires_grad_(True)
        out, _ = module(query, key, ref_ab, indices, chunk_size=n)
        out.square().mean().backward()
    else:
        with torch.inference_mode():
            module(query, key, ref_ab, indices, chunk_size=n)


def measure(size: int, mode: str, train: bool, device: str, width: float, k: int, r: int, repeats: int) -> dict:
    module, query, key, ref_ab, cam = build(size, width, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    run_once(module, query, key, ref_ab, cam, mode, k, r, train)  # warm-up
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_once(module, query, key, ref_ab, cam, mode, k, r, train)
        sync()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"time_s": statistics.median(times), "peak_mb": peak / 2**20}


def measure_isolated(args, size, mode, train) -> dict:
    """On the CPU, peak RSS only grows: each case runs in its own process."""
    if args.device == "cuda":
        try:
            return measure(size, mode, train, "cuda", args.width, args.k, args.r, args.repeats)
        except torch.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            return {"error": f"out of memory ({str(exc).splitlines()[0][:60]})"}
    code = (
        "import json,sys; sys.path.insert(0, %r); from bench_attention import measure; "
        "print(json.dumps(measure(%d, %r, %r, 'cpu', %r, %d, %d, %d)))"
    ) % (sys.path[0], size, mode, train, args.width, args.k, args.r, args.repeats)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--r", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-dense-gb", type=float, default=16.0, help="skip dense cases whose N x N matrix exceeds this")
    args = parser.parse_args()
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"attention step, width {args.width}, k = r = {args.k if args.k == args.r else (args.k, args.r)}, {machine}, torch {torch.__version__}")
    print(f"{'size':>5} {'tokens':>7} {'pass':>9} | {'dense ms':>9} {'sparse ms':>9} {'x time':>7} | {'dense MB':>9} {'sparse MB':>9} {'x mem':>7}")
    for size in args.sizes:
        n = (size // 4) ** 2
        for train in (False, True):
            sparse = measure_isolated(args, size, "sparse", train)
            dense_gb = n * n * 4 * (3 if train else 1) / 2**30
            if dense_gb > args.max_dense_gb:
                dense = {"error": f"not run: its {n} x {n} matrix needs about {dense_gb:.0f} GB"}
            else:
                dense = measure_isolated(args, size, "dense", train)
            row = f"{size:>5} {n:>7} {'fwd+bwd' if train else 'forward':>9} | "
            if "error" in dense or "error" in sparse:
                row += f"dense: {dense.get('error', 'ok')}; sparse: {sparse.get('error', '%.1f ms, %.1f MB' % (sparse['time_s'] * 1e3, sparse['peak_mb']))}"
            else:
                row += (
                    f"{dense['time_s'] * 1e3:>9.1f} {sparse['time_s'] * 1e3:>9.1f} {dense['time_s'] / sparse['time_s']:>6.1f}x | "
                    f"{dense['peak_mb']:>9.1f} {sparse['peak_mb']:>9.1f} {dense['peak_mb'] / max(sparse['peak_mb'], 1e-3):>6.1f}x"
                )
            print(row, flush=True)


if __name__ == "__main__":
    main()
