"""The CAM measurements as a command and a figure: ``python -m sscn.apps.semantics``
(the measures: :mod:`sscn.evaluation.semantics`).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from ..errors import SSCNError
from ..evaluation.semantics import cam_panels, measure, one_per_class


def cam_figure(panels: list[dict], photos: torch.Tensor, class_names: list[str], k: int = 64):
    """One row per classifier of :func:`cam_panels`: each photo with the CAM of the predicted class
    (title: the class, with a tick or a cross where the truth is known) and its top-k tokens."""
    import matplotlib.pyplot as plt

    from .viz import PANEL, TOPK_COLOR, mark_tokens, overlay_map

    fig, axes = plt.subplots(len(panels), len(photos), figsize=(PANEL * 0.8 * len(photos), PANEL * 0.95 * len(panels)),
                             squeeze=False)
    for row, panel in zip(axes, panels):
        for col, ax in enumerate(row):
            name = class_names[int(panel["predicted"][col])]
            mark = "" if panel["correct"] is None else (" \u2713" if panel["correct"][col] else " \u2717")
            overlay_map(ax, photos[col], panel["cam"][col], f"{name}{mark}", gamma=1.0)
            mark_tokens(ax, panel["topk"][col], panel["cam"].shape[-1], TOPK_COLOR, f"top-{k}" if col == 0 else None, size=6)
        row[0].text(-0.06, 0.5, panel["name"], rotation=90, ha="right", va="center", fontsize=8,
                    transform=row[0].transAxes)
    axes[0, 0].legend(loc="lower left", fontsize=6, framealpha=0.8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    from ..models.checkpoint import load_model
    from ..io.data import ImageFolder
    from ..models.pretrained import pretrained_classifier

    parser = argparse.ArgumentParser(prog="python -m sscn.apps.semantics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="SSCN checkpoint, or legacy: the model bundled before the semantic run (default: the bundled one)")
    parser.add_argument("--pretrained", default="bundled",
                        help="pre-stage checkpoint that judges the object region (default: the bundled one)")
    parser.add_argument("--data", required=True, help="class folders of labelled photos (e.g. imagenette-144/val)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--r", type=int, default=64)
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    parser.add_argument("--figure", default=None,
                        help="instead of measuring, draw both classifiers' CAMs on one photo of 6 classes (PNG)")
    args = parser.parse_args(argv)
    try:
        from ..io.files import check_output

        for flag, out in (("--figure", args.figure), ("--out", args.out)):
            if out:  # before minutes of measuring: a path that cannot be written is said at once
                check_output(out, overwrite=True, flag=flag, protected=[("--data", args.data)])
        model = load_model(args.checkpoint)
        judge, judge_classes = pretrained_classifier(args.pretrained)
        folder = ImageFolder(args.data, args.size, reference="tps", seed=0, limit=args.limit)
        if list(folder.classes) != judge_classes:
            raise SSCNError(f"{args.data} has other classes than the pre-stage classifier; pass the same dataset's split")
        if args.figure:
            from ..io.data import IMAGENETTE_CLASSES
            from .gallery import save_figure

            chosen = one_per_class(folder, 6)
            photos = torch.stack([folder[i]["rgb"] for i in chosen])
            labels = torch.tensor([folder.labels[i] for i in chosen])
            names = [IMAGENETTE_CLASSES.get(c, c) for c in judge_classes]
            fig = cam_figure(cam_panels(model, judge, names, photos, labels, args.k), photos, names, args.k)
            save_figure(fig, args.figure, dpi=64, flag="--figure", protected=[("--data", args.data)])
            print(f"wrote {args.figure}")
            return 0
        result = measure(model, judge, folder, args.k, args.r)
    except SSCNError as exc:
        print(f"sscn.evaluation.semantics: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from ..io.files import write_text

        try:
            write_text(args.out, text + "\n", flag="--out", protected=[("--data", args.data)])
        except SSCNError as exc:
            print(f"sscn.evaluation.semantics: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
