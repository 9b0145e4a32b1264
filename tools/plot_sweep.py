"""Plot a k / r sweep of ``sscn evaluate --sweep`` (its sweep.csv): PSNR against k, one line per r,
dense attention as the line to beat; more sweeps (another checkpoint's) are drawn dashed beside it.

    python tools/plot_sweep.py docs/results/sweep100 --beside legacy=docs/results/legacy/sweep100 \
        -o docs/results/sweep100/sweep.png
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_sweep(folder: str | Path) -> tuple[dict[int, list[tuple[int, float]]], float | None]:
    """``{r: [(k, psnr), ...]}`` and the dense PSNR (None when the sweep has no dense row)."""
    lines: dict[int, list[tuple[int, float]]] = {}
    dense = None
    with open(Path(folder) / "sweep.csv", newline="") as f:
        for row in csv.DictReader(f):
            if not row["k"]:  # the dense row: every token, no k or r
                dense = float(row["psnr"])
                continue
            lines.setdefault(int(row["r"]), []).append((int(row["k"]), float(row["psnr"])))
    return {r: sorted(points) for r, points in sorted(lines.items())}, dense


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", help="a folder with sweep.csv")
    parser.add_argument("--beside", action="append", default=[], metavar="NAME=FOLDER", help="another sweep, dashed")
    parser.add_argument("-o", "--output", default="sweep.png")
    args = parser.parse_args(argv)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    sweeps = [("bundled", args.sweep, "-")] + [(*item.split("=", 1), "--") for item in args.beside]
    for name, folder, style in sweeps:
        lines, dense = read_sweep(folder)
        for n, (r, points) in enumerate(lines.items()):
            ks, psnrs = zip(*points)
            ax.plot(ks, psnrs, style, marker="o", color=f"C{n}", label=f"{name}, r = {r}")
        if dense is not None:
            ax.axhline(dense, linestyle=style, color="black", linewidth=1, label=f"{name}, dense")
    ax.set_xscale("symlog", linthresh=32)
    ax.set_xlim(0, 600)
    ax.set(xlabel="k (top-CAM tokens of 1,024)", ylabel="PSNR (dB), TPS", title="k / r sweep")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
