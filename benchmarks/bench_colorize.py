"""``sscn colorize`` end to end: time per stage and peak memory, before and after issue 7.

    python benchmarks/bench_colorize.py                          # 512x512, 1920x1080, 4000x3000 at 256 and 512
    python benchmarks/bench_colorize.py --inputs 4000x3000 --sizes 256 --repeats 5
    python benchmarks/bench_colorize.py --threads 1              # torch.set_num_threads(1) in every case
                                                                 # (default: as sscn colorize picks, from the load average)

Inputs: scikit-image's ``coffee`` (target) and ``chelsea`` (reference) photos, cropped
to each aspect ratio, resized to each input size with a little Gaussian grain (an
upsampled 600 px photo has none of a camera's fine detail, and without it JPEG and PNG
encode unrealistically fast) and written as JPEG (quality 95) to a temporary folder;
the reference has the target's size.

Each case (input size x working size) runs in fresh subprocesses, with the bundled
checkpoint, after one warm-up run:
- time: the in-process work of ``sscn colorize`` (decode both files, colorize, write
  the JPEG; imports and model load excluded), median of ``--repeats`` runs, the
  current code (channels-last weights, as the CLI loads them), the same with
  contiguous weights, and the code before issue 7 (copied below as
  ``colorize_before``, with the attention of then from ``bench_attention``),
  interleaved in one process so that all see the same machine load;
- stages of the current code: load (decode), prepare (full-size L, reference), the
  network's parts (the two passes of the reference encoder E, GCT, CAM, attention =
  tokens + selection + correspondence, LDT decoder, the rest), upsample (ab to full
  size), compose (Lab -> sRGB at full size), save (JPEG);
- the PNG encode time of the same result, for comparison with JPEG;
- peak memory: the peak RSS (Linux ``VmHWM``) of a process that runs one case once (one
  process per code version), and its growth over the RSS after imports and model load.
The machine and its load average (other users of a shared machine slow every number)
are printed with the table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

import sscn.models.sscn as sscn_module
from sscn.models.checkpoint import load_model
from sscn.color import join_lab, lab_norm_to_rgb, rgb_to_lab_norm, split_lab
from sscn.apps.colorize import Stopwatch, check_reference, colorize, save_image, working_shape
from sscn.io.data import decode_image, load_image
from sscn.models.attention import Correspondence

sys.path.insert(0, str(Path(__file__).parent))
from bench_attention import forward_before  # noqa: E402  (the attention before issue 7)
from machine import describe  # benchmarks/machine.py, beside this script

# --------------------------------------------- the code before issue 7, for the ratio


@torch.inference_mode()
def colorize_before(model, target_rgb, ref_rgb, size=256, k=None, r=None, dense=None, seed=0):
    """``sscn.apps.colorize.colorize`` as it was: full-size float Lab of both photos in torch."""
    device = next(model.parameters()).device
    full_l = split_lab(rgb_to_lab_norm(target_rgb.to(device)))[0][None]
    ref_lab = rgb_to_lab_norm(ref_rgb.to(device))[None]
    check_reference(ref_lab)
    h, w = working_shape(*full_l.shape[-2:], size)
    small_l = F.interpolate(full_l, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    rh, rw = working_shape(*ref_lab.shape[-2:], size)
    small_ref = F.interpolate(ref_lab, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
    out = model(small_l, small_ref, k=k, r=r, dense=dense, seed=seed)
    ab = F.interpolate(out.ab_fine, size=full_l.shape[-2:], mode="bilinear", align_corners=False)
    return lab_norm_to_rgb(join_lab(full_l, ab))[0].cpu()


def save_before(rgb, path, quality=95):
    array = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    options = {"quality": quality} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(array).save(path, **options)


def run_before(model, target, reference, size, out):
    """Load, colorize and save as before issue 7, with the attention of then as well."""
    current = Correspondence.forward
    Correspondence.forward = forward_before
    try:
        rgb = colorize_before(model, load_image(target), load_image(reference), size)
    finally:
        Correspondence.forward = current
    save_before(rgb, out)


# ------------------------------------------------------------------ the current code

NETWORK_PARTS = ("encoder E", "GCT", "CAM", "attention", "LDT decoder")


def instrument(model, watch: Stopwatch) -> None:
    """Charge the network's parts to ``watch``: forward hooks on its modules, wrappers on the token helpers."""
    parts = {"encoder E": model.encoder, "GCT": model.gct, "CAM": model.cam,
             "attention": model.correspondence, "LDT decoder": model.ldt}
    for name, module in parts.items():
        starts = []
        module.register_forward_pre_hook(lambda *_, starts=starts: starts.append(time.perf_counter()))

        def after(*_, name=name, starts=starts):
            watch.times[name] = watch.times.get(name, 0.0) + time.perf_counter() - starts.pop()

        module.register_forward_hook(after)

    def timed(function):
        def wrapper(*args, **kwargs):
            with watch("attention"):
                return function(*args, **kwargs)
        return wrapper

    model.tokens = timed(model.tokens)
    sscn_module.select_tokens = timed(sscn_module.select_tokens)


def run_current(model, target, reference, size, out, watch=None):
    watch = watch or Stopwatch()
    with watch("load"):
        target_image, reference_image = decode_image(target), decode_image(reference)
    result = colorize(model, target_image, reference_image, size=size, uint8=True, watch=watch)
    with watch("save"):
        save_image(result.rgb, out)
    return result


def load_current():
    """The model as ``sscn colorize`` loads it now: channels-last weights."""
    return load_model(None).to(memory_format=torch.channels_last)


def measure_time(target: str, reference: str, size: int, repeats: int, before: bool) -> dict:
    """Median seconds of the current code, of the same with contiguous (not channels-last)
    weights, and of the code before issue 7, interleaved; plus the current code's stages."""
    model, contiguous = load_current(), load_model(None)
    out = Path(tempfile.mkdtemp()) / "out.jpg"
    run_current(model, target, reference, size, out)  # warm-up
    run_current(contiguous, target, reference, size, out)
    if before:
        run_before(contiguous, target, reference, size, out)
    times = {"current": [], "contiguous": [], "before": []}
    stages = []
    for _ in range(repeats):
        watch = Stopwatch()
        start = time.perf_counter()
        result = run_current(model, target, reference, size, out, watch)
        times["current"].append(time.perf_counter() - start)
        stages.append(watch.times)
        start = time.perf_counter()
        run_current(contiguous, target, reference, size, out)
        times["contiguous"].append(time.perf_counter() - start)
        if before:
            start = time.perf_counter()
            run_before(contiguous, target, reference, size, out)
            times["before"].append(time.perf_counter() - start)
    # one more run, with the network's parts instrumented (hooks cost a little, so not in the times above)
    parts = Stopwatch()
    instrument(model, parts)
    watch = Stopwatch()
    run_current(model, target, reference, size, out, watch)
    png = out.with_suffix(".png")
    start = time.perf_counter()
    save_image(result.rgb, png)
    png_s = time.perf_counter() - start
    median_stages = {name: statistics.median(s[name] for s in stages) for name in stages[0]}
    share = {name: parts.times.get(name, 0.0) / watch.times["network"] for name in NETWORK_PARTS}
    return {
        "threads": torch.get_num_threads(),
        "current_s": statistics.median(times["current"]),
        "contiguous_s": statistics.median(times["contiguous"]),
        "before_s": statistics.median(times["before"]) if before else None,
        "stages": median_stages,
        "network_parts": {name: share[name] * median_stages["network"] for name in NETWORK_PARTS},
        "png_s": png_s,
        "jpeg_mb": out.stat().st_size / 2**20,
        "png_mb": png.stat().st_size / 2**20,
    }


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB, from /proc (Linux).

    Not ``ru_maxrss``: after a fork it starts at the parent's RSS, which hides smaller peaks.
    """
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) / 1024 for line in handle if line.startswith(field + ":"))


def measure_memory(target: str, reference: str, size: int, version: str) -> dict:
    """Peak RSS of this (fresh) process over one run, and its growth over the RSS after model load."""
    model = load_current() if version == "current" else load_model(None)
    loaded_peak, base = _status_mb("VmHWM"), _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:  # restart the peak from here (Linux >= 4.0)
        handle.write("5")
    out = Path(tempfile.mkdtemp()) / "out.jpg"
    (run_current if version == "current" else run_before)(model, target, reference, size, out)
    peak = _status_mb("VmHWM")
    return {"peak_mb": max(peak, loaded_peak), "growth_mb": peak - base}


def in_subprocess(function: str, threads: int | None, *args) -> dict:
    """``function(*args)`` in a fresh process with ``threads`` torch threads (None: as ``sscn colorize`` picks)."""
    count = threads or "threads_for_load()"
    setup = f"import torch; from sscn.apps.colorize import threads_for_load; torch.set_num_threads({count}); "
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); {setup}"
            f"from bench_colorize import {function}; print(json.dumps({function}(*{args!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{function}{args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------- inputs


def make_inputs(folder: Path, width: int, height: int) -> tuple[str, str]:
    """The target (coffee) and reference (chelsea) photos at ``width x height`` with grain, as JPEG."""
    from skimage import data

    rng = np.random.default_rng(0)
    paths = []
    for name in ("coffee", "chelsea"):
        photo = ImageOps.fit(Image.fromarray(getattr(data, name)()), (width, height), Image.Resampling.BICUBIC)
        grain = rng.normal(0, 3, (height, width, 1)).astype(np.float32)
        pixels = np.clip(np.asarray(photo, np.float32) + grain, 0, 255).astype(np.uint8)
        path = folder / f"{name}_{width}x{height}.jpg"
        Image.fromarray(pixels).save(path, quality=95)
        paths.append(str(path))
    return paths[0], paths[1]

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", default=["512x512", "1920x1080", "4000x3000"], help="WIDTHxHEIGHT")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="working sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in each case (default: as sscn colorize picks them, from the load average)")
    parser.add_argument("--no-before", action="store_true", help="skip the code before issue 7")
    args = parser.parse_args(argv)
    before = not args.no_before
    threads = f"{args.threads} torch threads" if args.threads else "torch threads as sscn colorize picks them"
    print(f"sscn colorize, bundled checkpoint, {describe()}, torch {torch.__version__}, {threads}; load average {os.getloadavg()[0]:.1f} at the start")
    print("in-process seconds (decode, colorize, write JPEG; median); peak RSS of the whole process, "
          "its growth over imports + model in brackets")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.inputs:
            width, height = (int(v) for v in spec.lower().split("x"))
            target, reference = make_inputs(Path(tmp), width, height)
            for size in args.sizes:
                timing = in_subprocess("measure_time", args.threads, target, reference, size, args.repeats, before)
                memory = in_subprocess("measure_memory", args.threads, target, reference, size, "current")
                head = f"{width}x{height} at {size} ({timing['threads']} thr): {timing['current_s']:.2f} s, peak {memory['peak_mb']:.0f} MB (+{memory['growth_mb']:.0f})"
                if before:
                    old = in_subprocess("measure_memory", args.threads, target, reference, size, "before")
                    head += (f"; before: {timing['before_s']:.2f} s, peak {old['peak_mb']:.0f} MB (+{old['growth_mb']:.0f}); "
                             f"{timing['before_s'] / timing['current_s']:.1f}x faster, "
                             f"{old['growth_mb'] / max(memory['growth_mb'], 1):.1f}x less added memory")
                head += f"; channels-last weights {timing['contiguous_s'] / timing['current_s']:.2f}x faster than contiguous"
                print(head)
                stages = timing["stages"]
                total = sum(stages.values())
                network_rest = stages["network"] - sum(timing["network_parts"].values())
                pieces = [(n, s) for n, s in stages.items() if n != "network"]
                pieces[2:2] = list(timing["network_parts"].items()) + [("network, rest", network_rest)]
                print("    " + ", ".join(f"{n} {s * 1e3:.0f} ms ({100 * s / total:.0f}%)" for n, s in pieces))
                print(f"    save as JPEG q95 {stages['save'] * 1e3:.0f} ms ({timing['jpeg_mb']:.1f} MB) "
                      f"vs PNG {timing['png_s'] * 1e3:.0f} ms ({timing['png_mb']:.1f} MB)", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
