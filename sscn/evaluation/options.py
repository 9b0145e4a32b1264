"""The options of ``sscn evaluate``. No torch here: ``sscn evaluate --help`` answers at once."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sscn evaluate``."""
    parser.add_argument("--checkpoint", default=None, help="model checkpoint, or legacy: the model bundled before the semantic run (default: the bundled one, if any)")
    parser.add_argument("--data", default=None,
                        help="folder of photos, or Imagenette's root (uses --split); "
                        "default: the built-in sample photos")
    parser.add_argument("--split", default="val", help="subfolder of --data to use when it exists (default: val)")
    parser.add_argument("--size", type=int, default=128, help="square working size in pixels (default: 128)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced photos (default: all)")
    parser.add_argument("--kinds", nargs="+", default=None, metavar="KIND",
                        help="reference kinds (default: tps rotation crop); same_class: another photo of the "
                        "target's class (sscn.evaluation.pairs), scored also on colourfulness and palette similarity")
    parser.add_argument("--pairs", default=None, metavar="FILE",
                        help="score the same_class kind on the (target, reference) pairs of this CSV "
                        "(as written to --out/pairs.csv) instead of choosing them; implies --kinds same_class")
    parser.add_argument("--baselines-only", action="store_true", help="score only the baselines (no model needed)")
    parser.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                        help="score only these methods (baselines: gray copy mean_ab luminance_match; "
                        "network: coarse sparse dense)")
    parser.add_argument("--sweep", action="store_true",
                        help="also sweep k and r of the sparse attention (on the first of --kinds)")
    parser.add_argument("--sweep-k", type=int, nargs="+", default=None, metavar="K", help="k values of --sweep")
    parser.add_argument("--sweep-r", type=int, nargs="+", default=None, metavar="R", help="r values of --sweep")
    parser.add_argument("--save-pairs", default=None, metavar="DIR",
                        help="write every (gray, reference, ground truth) pair as PNG, listed in DIR/saved_pairs.csv "
                        "(an earlier run's pairs there are removed first)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write results.csv, results.md and results_per_image.csv here (and pairs.csv, the "
                        "same-class pairs); they replace an earlier run's, never an input")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the references (default: 0)")
    parser.add_argument("--batch-size", type=int, default=16, help="photos per batch (default: 16)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
