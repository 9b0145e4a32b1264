"""Plot the loss and validation PSNR of one or more training runs (their metrics.jsonl).

    python tools/plot_metrics.py docs/training/legacy_run_metrics.jsonl \
        docs/training/longer_run_metrics.jsonl -o docs/training/legacy_curves.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="metrics.jsonl files written by sscn train")
    parser.add_argument("-o", "--output", default="curves.png")
    args = parser.parse_args()
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.5))
    for path in args.metrics:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        label = Path(path).stem.replace("_metrics", "")
        ax_loss.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=label)
        val = [r for r in rows if "val_psnr" in r]
        ax_psnr.plot([r["step"] for r in val], [r["val_psnr"] for r in val], marker="o", label=label)
    ax_loss.set(xlabel="step", ylabel="total loss (Formula 6)", title="training loss", yscale="log")
    ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (TPS references)")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
