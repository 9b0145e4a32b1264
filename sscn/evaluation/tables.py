"""The evaluation's tables: Markdown and CSV of the means, per-image scores.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..io.files import csv_text, write_text
from ..scores import METRICS
from .protocol import COLUMNS, KIND_LABELS, ResultRow


def results_table_markdown(rows: Sequence[ResultRow | dict]) -> str:
    """A Markdown table, one line per (method, reference kind)."""
    lines = [
        "| method | reference | PSNR (dB) | SSIM | PSNR ab (dB) | images | PSNR = inf | size |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        d = row.as_dict() if isinstance(row, ResultRow) else row
        label = KIND_LABELS.get(d["reference"], d["reference"])
        lines.append(
            f"| {d['method']} | {label} | {d['psnr']:.2f} | {d['ssim']:.4f} | {d['psnr_ab']:.2f} "
            f"| {d['n_images']} | {d.get('n_inf', 0)} | {d['size']} |"
        )
    return "\n".join(lines)


def sweep_table_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`sweep_kr`'s rows."""
    lines = ["| k | r | tokens | PSNR (dB) | SSIM | PSNR ab (dB) |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in rows:
        k, r = ("dense", "-") if d["k"] is None else (d["k"], d["r"])
        lines.append(f"| {k} | {r} | {d['tokens']} | {d['psnr']:.2f} | {d['ssim']:.4f} | {d['psnr_ab']:.2f} |")
    return "\n".join(lines)


def write_means(rows, columns: Sequence[str], markdown: str, csv_path: Path, markdown_path: Path, **checks) -> None:
    """Each row's means (``row.as_dict()``) as a CSV with ``columns``, and the Markdown table beside it.

    ``checks``: ``inputs`` and ``protected`` for :func:`sscn.io.files.write_atomic`."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(row.as_dict() for row in rows)
    write_text(csv_path, buffer.getvalue(), True, **checks)
    write_text(markdown_path, markdown + "\n", True, **checks)


def write_results(rows: Sequence[ResultRow], out_dir: str | Path, stem: str = "results", **checks) -> dict[str, Path]:
    """Write ``<stem>.csv`` (means), ``<stem>.md`` (the Markdown table) and
    ``<stem>_per_image.csv`` (every photo's scores) under ``out_dir``; returns the paths.

    Each file is written atomically and replaces an earlier run's; ``checks`` (``inputs``,
    ``protected``) refuse a path that is an input (:func:`sscn.io.files.write_atomic`)."""
    out = Path(out_dir)
    checks.setdefault("flag", "--out")
    paths = results_paths(out, stem)
    write_means(rows, COLUMNS, results_table_markdown(rows), paths["csv"], paths["markdown"], **checks)
    lines = [("method", "reference", "index", "name", "psnr", "ssim", "psnr_ab")]
    for row in rows:
        for i, (index, name) in enumerate(zip(row.indices, row.names)):
            lines.append((row.method, row.reference, index, name, *(f"{row.scores[m][i]:.6f}" for m in METRICS)))
    write_text(paths["per_image"], csv_text(lines), True, **checks)
    return paths


def results_paths(out_dir: str | Path, stem: str = "results") -> dict[str, Path]:
    """The files :func:`write_results` writes."""
    out = Path(out_dir)
    return {"csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md", "per_image": out / f"{stem}_per_image.csv"}
