"""Plot fine-tuning recipes against the issue-15 bar: TPS cost, same-class PSNR and palette.

Each run is a folder written by ``sscn evaluate --methods sparse dense --kinds tps same_class``
(``results.csv`` and ``same_class.csv``); the first is the control (self-augmented pairs
only, same budget) that the bar is measured from. Dense attention, all val photos.

    python tools/plot_ab.py "self-aug only=docs/results/ab/ft_self" "30 % same-class=docs/results/ab/ft_mix" \
        --baseline docs/results/sameclass1500 -o docs/results/ab/same_class_ab.png

With ``--floors TPS SAME PALETTE`` the bar is absolute instead (the semantic checkpoint's,
issue 29: dense TPS PSNR at least TPS, same-class PSNR at least SAME, palette similarity at
least PALETTE) and the panels show the scores themselves, not changes against the control.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PSNR_GAIN, TPS_COST = 0.5, 0.3  # the bar: at least +0.5 dB same-class, at most -0.3 dB TPS


def row(path: Path, method: str, reference: str) -> dict:
    with open(path, newline="") as handle:
        for record in csv.DictReader(handle):
            if record["method"] == method and record["reference"] == reference:
                return record
    raise SystemExit(f"{path} has no row for {method} / {reference}")


def scores(folder: Path) -> tuple[float, float, float]:
    """(dense TPS PSNR, dense same-class PSNR, dense same-class palette similarity)."""
    same = row(folder / "same_class.csv", "dense", "same_class")
    return float(row(folder / "results.csv", "dense", "tps")["psnr"]), float(same["psnr"]), float(same["palette"])


def meets(run: tuple[float, float, float], floors: tuple[float, float, float]) -> bool:
    """Whether (TPS, same-class PSNR, palette) reach every floor."""
    return all(value >= floor for value, floor in zip(run, floors))


def shade_bar(ax, corner: tuple[float, float], y_pad: float, lines: bool = False) -> None:
    """Shade the quarter above and right of ``corner`` (where the bar is met), widened so it shows;
    ``lines``: also draw the corner's two floors; then the grid and the legend."""
    cx, cy = corner
    ax.margins(0.15)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x1, y1 = max(x1, cx + 0.1), max(y1, cy + y_pad)
    if lines:
        ax.axvline(cx, color="tab:green", lw=1, ls="--")
        ax.axhline(cy, color="tab:green", lw=1, ls="--")
    ax.fill_between([cx, x1], cy, y1, color="tab:green", alpha=0.1, label="where the bar is met")
    ax.set(xlim=(x0, x1), ylim=(y0, y1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_absolute(runs, floors, baseline, output) -> None:
    """The two panels with the scores themselves and the floors of an absolute bar."""
    tps_floor, same_floor, palette_floor = floors
    fig, (ax_cost, ax_palette) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (label, (tps, same, palette)) in enumerate(runs):
        marker = "s" if i == 0 else "o"
        ax_cost.plot(tps, same, marker, ms=8, label=label + (" (meets the bar)" if meets((tps, same, palette), floors)
                                                             else ""))
        ax_palette.plot(same, palette, marker, ms=8, label=label)
    if baseline:
        base = row(baseline / "results.csv", "luminance_match", "same_class")
        ax_palette.plot(float(base["psnr"]), float(base["palette"]), "kx", ms=9, label="luminance-matched transfer")
    ax_cost.set(xlabel="TPS PSNR, dense (dB)", ylabel="same-class PSNR, dense (dB)",
                title="same-class PSNR against TPS")
    ax_palette.set(xlabel="same-class PSNR, dense (dB)", ylabel="palette similarity with the reference",
                   title="same-class PSNR against palette")
    for ax, corner in ((ax_cost, (tps_floor, same_floor)), (ax_palette, (same_floor, palette_floor))):
        shade_bar(ax, corner, 0.005, lines=True)
    fig.suptitle(f"fine-tuning recipes against the bar: TPS >= {tps_floor:.2f}, same class >= {same_floor:.2f} dB, "
                 f"palette >= {palette_floor:.3f} (val, all photos, 128 px)", fontsize=10)
    fig.tight_layout()
    fig.savefig(output, dpi=80)
    print("wrote", output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER, the control first")
    parser.add_argument("--baseline", type=Path, help="a same_class folder with the luminance_match row")
    parser.add_argument("-o", "--output", default="same_class_ab.png")
    parser.add_argument("--floors", nargs=3, type=float, metavar=("TPS", "SAME", "PALETTE"),
                        help="an absolute bar: dense TPS PSNR, same-class PSNR and palette similarity floors")
    args = parser.parse_args(argv)
    runs = [(label, scores(Path(folder))) for label, folder in (spec.split("=", 1) for spec in args.runs)]
    if args.floors:
        for label, run in runs:
            print(f"{label}: TPS {run[0]:.2f}, same class {run[1]:.2f} dB, palette {run[2]:.4f}: "
                  f"{'meets' if meets(run, args.floors) else 'misses'} the bar")
        plot_absolute(runs, tuple(args.floors), args.baseline, args.output)
        return
    (_, (tps0, same0, palette0)) = runs[0]
    fig, (ax_cost, ax_palette) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.axhline(PSNR_GAIN, color="tab:green", lw=1, ls="--", label=f"bar: +{PSNR_GAIN} dB, TPS cost <= {TPS_COST} dB")
    ax_cost.axvline(-TPS_COST, color="tab:green", lw=1, ls="--")
    ax_palette.axvline(PSNR_GAIN, color="tab:green", lw=1, ls="--", label="bar: +0.5 dB and a better palette")
    ax_palette.axhline(0, color="tab:green", lw=1, ls="--")
    for i, (label, (tps, same, palette)) in enumerate(runs):
        marker = "s" if i == 0 else "o"
        ax_cost.plot(tps - tps0, same - same0, marker, ms=8, label=label)
        ax_palette.plot(same - same0, palette - palette0, marker, ms=8, label=label)
    if args.baseline:
        base = row(args.baseline / "results.csv", "luminance_match", "same_class")
        ax_palette.plot(float(base["psnr"]) - same0, float(base["palette"]) - palette0, "kx", ms=9,
                        label="luminance-matched transfer")
    ax_cost.set(xlabel="TPS PSNR change, dense (dB)", ylabel="same-class PSNR change, dense (dB)",
                title="what the same-class gain costs on TPS")
    ax_palette.set(xlabel="same-class PSNR change, dense (dB)", ylabel="palette similarity change",
                   title="same-class PSNR against palette")
    for ax, corner in ((ax_cost, (-TPS_COST, PSNR_GAIN)), (ax_palette, (PSNR_GAIN, 0.0))):
        shade_bar(ax, corner, 0.01)
    fig.suptitle(f"fine-tuning recipes against the control '{runs[0][0]}' (val, all photos, 128 px)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
