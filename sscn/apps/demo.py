"""``sscn demo``: the bundled checkpoint on scikit-image's sample photos, in one figure.

Each row: the gray target, the reference, the coarse (GCT) result, the final result and
the ground truth. Three references are made from the targets themselves (TPS, rotation,
crop), so the ground truth is known; three are different photos, as a user brings them
(no ground truth panel; ``sscn gallery`` shows more such pairs).
"""
from __future__ import annotations

import time

import torch

from ..augment import make_reference
from ..errors import SSCNError

# (target, reference photo, how the reference is made): "tps"/"rotation"/"crop" of the
# target itself, or "photo" for another photo as it is
# ("rocket", "astronaut") stays last: notebook 00 always shows DEMO_PAIRS[-1]
DEMO_PAIRS = (("chelsea", "chelsea", "rotation"), ("coffee", "coffee", "tps"), ("astronaut", "astronaut", "crop"),
              ("chelsea", "coffee", "photo"), ("astronaut", "rocket", "photo"), ("rocket", "astronaut", "photo"))


def demo_rows(model, size: int = 256, pairs=DEMO_PAIRS):
    """Colorize each demo pair; returns a list of dicts for :func:`sscn.apps.viz.demo_figure` and the seconds per image."""
    from .colorize import colorize
    from ..color import rgb_to_gray_l, gray_l_to_rgb
    from ..io.data import sample_photos

    photos = dict(sample_photos(size=size))
    rows, times = [], []
    for seed, (target_name, ref_name, kind) in enumerate(pairs):
        target = photos[target_name]
        reference = photos[ref_name] if kind == "photo" else make_reference(photos[ref_name], kind, seed).image
        start = time.perf_counter()
        result = colorize(model, target, reference, size=size)
        times.append(time.perf_counter() - start)
        rows.append({
            "title": f"{target_name} <- {ref_name}" + ("" if kind == "photo" else f" ({kind})"),
            "gray": gray_l_to_rgb(rgb_to_gray_l(target)),
            "reference": reference,
            "coarse": result.coarse_rgb,
            "result": result.rgb,
            "truth": target if ref_name == target_name else None,
        })
    return rows, times


def lab_check() -> str:
    """The Lab round trip on the sample photos, as a sentence (shown when no checkpoint is bundled)."""
    from ..color import lab_to_rgb, rgb_to_lab
    from ..io.data import sample_photos

    worst = max(float((lab_to_rgb(rgb_to_lab(rgb.double())) - rgb.double()).abs().max()) for _, rgb in sample_photos(size=128))
    return f"sRGB -> Lab -> sRGB round trip on the sample photos: max error {worst:.1e}"


def run_demo(out="sscn-demo.png", checkpoint=None, size: int = 256, show: bool = False,
             overwrite: bool = False) -> None:
    """Write the demo figure: checked (:func:`sscn.io.files.check_output`) before any work, written
    atomically, never over the checkpoint, nor over an existing file unless ``overwrite``.
    Autograd is off inside, and only inside."""
    import matplotlib

    if not show:
        matplotlib.use("Agg")
    from ..models.checkpoint import bundled_checkpoint, checkpoint_path, load_model
    from ..io.files import check_output, write_atomic
    from .gallery import figure_format
    from .viz import demo_figure, final_title

    fmt = figure_format(out)
    checkpoint = checkpoint_path(checkpoint)
    if checkpoint is None and bundled_checkpoint() is None:
        raise SSCNError(f"no bundled checkpoint in this installation ({lab_check()}); pass --checkpoint PATH")
    checks = {"inputs": [("checkpoint", checkpoint or bundled_checkpoint())], "flag": "--output"}
    check_output(out, checks["inputs"], overwrite, "--output")
    with torch.no_grad():
        model = load_model(checkpoint)
        rows, times = demo_rows(model, size)
    fig = demo_figure(rows, final_title(model))
    write_atomic(out, lambda handle: fig.savefig(handle, format=fmt, dpi=80, bbox_inches="tight"), overwrite,
                 **checks)
    for row, seconds in zip(rows, times):
        print(f"{row['title']:<32} {seconds:.2f} s")
    device = next(model.parameters()).device
    print(f"{sum(times) / len(times):.2f} s per image at working size {size} on {device}; figure: {out}")
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    else:
        import matplotlib.pyplot as plt

        plt.close(fig)  # demo_figure goes through pyplot: free it (a notebook may call this often)
