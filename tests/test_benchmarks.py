"""The benchmark scripts run end to end at toy sizes, so that they never rot.

Nothing here asserts a speed: timings belong to the scripts' own output (and to
``benchmarks/README.md``), where a busy machine cannot fail the suite. What is checked
is that each script runs, prints every row it promises and computes its ratios.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sscn.io.data import sample_folder

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "failed" not in done.stdout and "Traceback" not in done.stderr, done.stdout + done.stderr[-2000:]
    return done.stdout


def test_bench_attention(tmp_path):
    out = run_script("bench_attention.py", "--sizes", "64", "--k", "16", "--r", "16", "--width", "0.125",
                     "--repeats", "1", "--before", tmp_path=tmp_path)
    rows = [line for line in out.splitlines() if line.lstrip().startswith("64 ")]
    assert [row.split("|")[0].split()[-1] for row in rows] == ["forward", "fused", "fwd+bwd"]
    for row in rows:  # dense and sparse time and memory, then their ratios
        assert len(re.findall(r"\d+\.\d+x", row)) == 2, row
    assert "before issue 7:" in out


def test_bench_train(tmp_path):
    out = run_script("bench_train.py", "--widths", "0.125", "--size", "32", "--k", "4", "--r", "4",
                     "--steps", "1", "--threads", "1", "--contiguous", "--before", "--float32", "--bf16", "--frozen", "--pretrain",
                     "--pretrain-batch-size", "4", "--pretrain-crop", "32", tmp_path=tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("width 0.125")]
    assert len(lines) == 2  # sparse and dense
    for line in lines:  # contiguous, before, float32, bf16; then frozen encoders
        assert len(re.findall(r"now (\d+\.\d+)x faster", line)) == 4, line
        assert re.search(r"encoders frozen +\d+\.\d+ images/s \(\d+\.\d+x the rate of now\)", line), line
    pre = [line for line in out.splitlines() if line.startswith("pre-stage width 0.125")]
    assert len(pre) == 1 and len(re.findall(r"now (\d+\.\d+)x faster", pre[0])) == 2, out


def test_bench_colorize(tmp_path):
    out = run_script("bench_colorize.py", "--inputs", "80x48", "--sizes", "64", "--repeats", "1", "--threads", "1",
                     tmp_path=tmp_path)
    assert re.search(r"80x48 at 64 \(1 thr\): \d+\.\d+ s, peak \d+ MB", out), out
    assert "x faster" in out and "save as JPEG" in out and "vs PNG" in out


def test_bench_data(tmp_path):
    sample_folder(tmp_path / "data" / "train")
    out = run_script("bench_data.py", "--data", str(tmp_path / "data"), "--size", "32", "--batch-size", "4",
                     "--batches", "2", "--workers", "0", tmp_path=tmp_path)
    assert re.search(r"num_workers=0: +\d+\.\d+ samples/s with reference='tps', +\d+\.\d+ without", out), out
