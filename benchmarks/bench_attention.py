"""Dense vs semantic-sparse correspondence: time and peak memory of the attention step.

    python benchmarks/bench_attention.py                       # CPU: 64, 128, 256, 512 px, 1 thread
    python benchmarks/bench_attention.py --threads 2
    python benchmarks/bench_attention.py --sizes 64 128 256 512 1024 --device cuda

The step is the project's own ``Correspondence`` (Formulas 2-3) on the tokens of a
working size S (N = (S/4)^2 tokens of the width's feature size), sparse with
k = r = 256 (CAM ranking, token gather and all), dense over all N tokens, in one query
chunk. Three passes per size:
- ``forward``: inference as the model runs it by default (no autograd): the explicit
  N x S matrix, the textbook attention whose memory the paper's sparse selection saves;
- ``fused``: inference in PyTorch's fused attention kernel (``fused_inference = True``,
  as ``sscn colorize`` runs it), which never holds the N x S matrix;
- ``fwd+bwd``: forward + backward as in training (explicit matrix; gradients reach the
  queries, the keys and the weights).

Timing: for each size and pass, one fresh subprocess runs every case (sparse, dense and,
with ``--before``, both as they were before issue 7) twice to warm up, then
interleaves them ``--repeats`` times (fewer for very slow cases) and takes the medians,
so that all cases share the same machine load. Peak memory: one fresh subprocess per
case; on CUDA ``max_memory_allocated`` over what was allocated before the run, on the
CPU the peak RSS during the run (``VmHWM``, reset just before it) over the RSS before
it (a small run first initialises the libraries and threads, so their one-time cost
is not counted). The CPU default is one torch thread: on a machine shared with other
jobs, every multi-threaded operation waits for its slowest thread and the times stop
meaning anything (``--threads 2`` to compare). Prints one table with the dense / sparse
ratios per size, then the issue's targets (at 256 px: >= 5x less time and >= 6x less
memory; at 512 px: >= 20x less memory).
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

from sscn.models.attention import Correspondence, gather_tokens, select_tokens
from sscn.models.encoder import scaled
from machine import describe  # benchmarks/machine.py, beside this script

TARGETS = {256: {"time": 5.0, "memory": 6.0}, 512: {"memory": 20.0}}  # issue 7, sparse vs dense
PASSES = {"forward": "forward (inference, the explicit N x S matrix)", "fused": "forward in the fused kernel",
          "fwd+bwd": "forward + backward (training)"}


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


def forward_before(self, query, key, ref_ab, indices=None, chunk_size: int = 4096, return_attention: bool = False):
    """``Correspondence.forward`` before issue 7 (the scale applied to the N x S logits), for the ratio."""
    if indices is not None:
        key, ref_ab = gather_tokens(key, indices), gather_tokens(ref_ab, indices)
    q, k = self.to_q(query), self.to_k(key)
    v = torch.cat((self.to_v(key), ref_ab.to(key.dtype)), dim=-1)
    if self.similarity == "cosine":
        q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    scale = self.logits_scale()
    outputs, maps = [], []
    for start in range(0, q.shape[1], chunk_size):
        logits = torch.einsum("bnd,bsd->bns", q[:, start : start + chunk_size], k) * scale
        attn = torch.softmax(logits.float(), dim=-1).to(v.dtype)
        outputs.append(torch.einsum("bns,bsd->bnd", attn, v))
        if return_attention:
            maps.append(attn)
        del logits, attn
    return torch.cat(outputs, 1), (torch.cat(maps, 1) if return_attention else None)


def run_once(module, query, key, ref_ab, cam, case: str, k: int, r: int, train: bool):
    """``case``: "sparse" or "dense", plus " fused" for PyTorch's fused attention kernel at
    inference (``fused_inference = True``) or " before" for the code before issue 7."""
    n = query.shape[1]
    mode, _, variant = case.partition(" ")
    module.fused_inference = variant == "fused"
    forward = (lambda *a, **kw: forward_before(module, *a, **kw)) if variant == "before" else module
    with torch.inference_mode(not train):
        if train:
            query, key = query.detach().requires_grad_(True), key.detach().requires_grad_(True)
        indices = None if mode == "dense" else select_tokens(cam, k, r, torch.Generator().manual_seed(0))
        out, _ = forward(query, key, ref_ab, indices, chunk_size=n)
        if train:
            out.square().mean().backward()
            module.zero_grad(set_to_none=True)


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc (Linux), else None."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0). ``ru_maxrss`` cannot serve: after a
    fork it starts at the parent's RSS, so it can hide a child's smaller peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure_memory(size: int, case: str, train: bool, device: str, width: float, k: int, r: int) -> float:
    """MB that one run of ``case`` adds at its peak (run in a fresh process on the CPU)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    run_once(*build(32, width, device), case, k, r, train)  # libraries, threads, allocator: set up outside
    module, query, key, ref_ab, cam = build(size, width, device)
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _status_bytes("VmRSS")
        if base is None or not _reset_peak():
            raise RuntimeError("CPU peak memory needs Linux's /proc/self/status and /proc/self/clear_refs")
    run_once(module, query, key, ref_ab, cam, case, k, r, train)
    sync()
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else _status_bytes("VmHWM")
    return max(peak - base, 0) / 2**20


def measure_time(size: int, cases: list[str], train: bool, device: str, width: float, k: int, r: int,
                 repeats: int, budget_s: float) -> dict:
    """Median seconds per case, the cases interleaved (so they share the machine's load); two warm-ups.

    Stops after ``repeats`` rounds, or after three once ``budget_s`` seconds have passed.
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    inputs = build(size, width, device)
    times = {case: [] for case in cases}
    for case in cases:
        for _ in range(2):
            run_once(*inputs, case, k, r, train)
    started = time.perf_counter()
    for round_ in range(repeats):
        for case in cases:
            sync()
            start = time.perf_counter()
            run_once(*inputs, case, k, r, train)
            sync()
            times[case].append(time.perf_counter() - start)
        if round_ >= 2 and time.perf_counter() - started > budget_s:
            break
    return {case: statistics.median(values) for case, values in times.items()}


def isolated(args, function: str, *call) -> dict | float:
    """Run ``function(*call)`` in a fresh process (CPU) or here (CUDA); errors come back as {"error": ...}."""
    if args.device == "cuda":
        try:
            return globals()[function](*call)
        except torch.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            return {"error": f"out of memory ({str(exc).splitlines()[0][:60]})"}
    code = (f"import json, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"torch.set_num_threads({args.threads}); from bench_attention import {function}; "
            f"print(json.dumps({function}(*{call!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per CPU case (default 1)")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--r", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed runs per row before repeats are cut to 3")
    parser.add_argument("--before", action="store_true", help="also time the code before issue 7, interleaved")
    parser.add_argument("--max-dense-gb", type=float, default=16.0, help="skip dense cases whose N x N matrices exceed this")
    args = parser.parse_args(argv)
    print(f"attention step, width {args.width}, k = r = {args.k if args.k == args.r else (args.k, args.r)}, "
          f"{describe(args.device, args.threads)}, torch {torch.__version__}")
    print(f"{'size':>5} {'tokens':>7} {'pass':>8} | {'dense ms':>9} {'sparse ms':>9} {'x time':>7} | "
          f"{'dense MB':>9} {'sparse MB':>9} {'x memory':>8}")
    common = (args.device, args.width, args.k, args.r)
    ratios = {}
    for size in args.sizes:
        n = (size // 4) ** 2
        for train in (False, True):
            dense_gb = n * n * 4 * (3 if train else 2) / 2**30
            modes = ["sparse"] + (["dense"] if dense_gb <= args.max_dense_gb else [])
            variants = [""] if train else ["", " fused"]  # training always holds the explicit matrix
            cases = [mode + variant for variant in variants for mode in modes]
            cases += [f"{mode} before" for mode in modes] if args.before else []
            times = isolated(args, "measure_time", size, cases, train, *common, args.repeats, args.budget)
            memory = {case: isolated(args, "measure_memory", size, case, train, *common) for case in cases}
            failed = [v["error"] for v in [times, *memory.values()] if isinstance(v, dict) and "error" in v]
            if failed:
                print(f"{size:>5} {n:>7} {'fwd+bwd' if train else 'forward':>8} | {failed[0]}", flush=True)
                continue
            for variant in variants:
                label = "fwd+bwd" if train else ("fused" if variant else "forward")
                row = f"{size:>5} {n:>7} {label:>8} | "
                sparse, dense = "sparse" + variant, "dense" + variant
                if "dense" not in modes:
                    print(row + f"sparse {times[sparse] * 1e3:.1f} ms, {memory[sparse]:.1f} MB; dense not run: "
                          f"its {n} x {n} matrices need about {dense_gb:.0f} GB", flush=True)
                    continue
                x_time, x_memory = times[dense] / times[sparse], memory[dense] / max(memory[sparse], 1e-3)
                ratios[size, label] = (x_time, x_memory)
                print(row + f"{times[dense] * 1e3:>9.1f} {times[sparse] * 1e3:>9.1f} {x_time:>6.1f}x | "
                      f"{memory[dense]:>9.1f} {memory[sparse]:>9.1f} {x_memory:>7.1f}x", flush=True)
            if args.before:
                old = " ".join(f"{mode} {times[mode + ' before'] * 1e3:.1f} ms {memory[mode + ' before']:.1f} MB" for mode in modes)
                gains = []
                for variant in variants:  # the code before issue 7 held the explicit matrix in every pass
                    faster = "/".join(f"{times[m + ' before'] / times[m + variant]:.2f}" for m in modes)
                    smaller = "/".join(f"{memory[m + ' before'] / max(memory[m + variant], 1e-3):.2f}" for m in modes)
                    name = "fwd+bwd" if train else ("fused" if variant else "forward")
                    gains.append(f"{name} now {faster}x faster, {smaller}x less memory")
                print(" " * 24 + f"before issue 7: {old}; " + "; ".join(gains) + f" ({'/'.join(modes)})", flush=True)
    for size, wanted in TARGETS.items():
        for label in ("forward", "fwd+bwd", "fused"):
            if (size, label) not in ratios:
                continue
            got = dict(zip(("time", "memory"), ratios[size, label]))
            # the fused kernel holds no N x S matrix in either mode: only its time compares
            verdicts = [f"{what} {got[what]:.1f}x (target >= {target:g}x: {'met' if got[what] >= target else 'NOT met'})"
                        for what, target in wanted.items() if label != "fused" or what == "time"]
            if not verdicts:
                continue
            print(f"target at {size} px, {PASSES[label]}: sparse vs dense " + ", ".join(verdicts))

if __name__ == "__main__":
    main()
