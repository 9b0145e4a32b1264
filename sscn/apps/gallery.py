"""``sscn gallery``: the model on real pairs, a gray photo and a *different* colour photo.

Each pair shows the gray target, the reference, the coarse (GCT) result and the final
result. The pairs are fixed, not picked by how well they come out:

* scikit-image's sample photos, :data:`SAMPLE_PAIRS` (subjects that share colours);
* with a dataset (``--data``, Imagenette's layout), one pair per class: the middle photo
  of the class (by file name) as the target and its reference by the same-class rule of
  ``sscn evaluate --kinds same_class`` (:mod:`sscn.evaluation.pairs`: the nearest other photo of
  the class by a gray-image descriptor).
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import SSCNError

# (target, reference) among sscn.io.data.SAMPLE_NAMES: two different photos
SAMPLE_PAIRS = (("chelsea", "coffee"), ("coffee", "chelsea"), ("astronaut", "rocket"),
                ("retina", "immunohistochemistry"))
SIZE = 128  # px: the working size the bundled model was trained at; panels are shown at it
PAIRS_PER_ROW = 2
MAX_CLASSES = 200  # one pair per class: 100 lines of panels, a figure about 15,000 px high
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg"}
COLUMNS = ("gray target", "reference", "coarse (GCT)", "final (SSCN)")


def sample_rows(size: int = SIZE, pairs=SAMPLE_PAIRS) -> list[dict]:
    """The sample pairs as ``{"title", "target", "reference"}`` (square ``3 x size x size`` crops)."""
    from ..io.data import sample_photos

    photos = dict(sample_photos(size=size))
    return [{"title": f"{t} <- {r}", "target": photos[t], "reference": photos[r]}
            for t, r in pairs if t in photos and r in photos]


def dataset_rows(data, split: str = "val", size: int = SIZE, progress: bool = False, source=None) -> list[dict]:
    """One pair per class of ``data`` (a folder, or Imagenette's root with ``split``): the
    middle photo of the class and its same-class reference (:func:`sscn.evaluation.pairs.same_class_pairs`).
    ``source``: ``data`` already opened (:func:`sscn.io.photos.open_photos`)."""
    from ..io.data import IMAGENETTE_CLASSES
    from ..io.photos import open_photos
    from ..evaluation.pairs import photo_set, same_class_pairs

    prefix = f"{split}: " if (Path(data) / split).is_dir() else ""
    source = open_photos(data, split, size) if source is None else source
    check_classes(source, data)
    photos = photo_set(source, size=size, progress=progress)
    by_target = {p.target_index: p for p in same_class_pairs(photos)}
    rows = []
    for cls in sorted(set(photos.classes)):
        members = sorted((k, i) for i, k in enumerate(photos.keys) if photos.classes[i] == cls and i in by_target)
        if not members:
            continue
        pair = by_target[members[(len(members) - 1) // 2][1]]
        name = IMAGENETTE_CLASSES.get(cls, cls)
        # a folder name that is not UTF-8 is shown escaped (the figure's text must be valid Unicode)
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        rows.append({"title": prefix + name,
                     "target": photos.photos[pair.target_index][2],
                     "reference": photos.photos[pair.reference_index][2]})
    return rows


def check_classes(source, data) -> None:
    """Refuse a dataset with more classes than one figure can show, before any photo is read."""
    labels = getattr(source, "labels", None)
    count = len(set(labels)) if labels is not None else 0
    if count > MAX_CLASSES:
        raise SSCNError(f"--data {data} has {count:,} classes; the gallery shows one pair per class, at most "
                        f"{MAX_CLASSES}: pass a folder with fewer classes (make one with links to a few of them)")


def figure_format(out) -> str:
    """matplotlib's format name for a figure file, by its suffix."""
    try:
        return FIGURE_FORMATS[Path(out).suffix.lower()]
    except KeyError:
        raise SSCNError(f"--output {out} must end in .png, .jpg, .pdf or .svg") from None


def colorize_rows(model, rows: list[dict], size: int = SIZE) -> list[dict]:
    """Add ``"gray"``, ``"coarse"`` and ``"result"`` (sRGB ``3 x H x W``) to each row."""
    from ..color import gray_l_to_rgb, rgb_to_gray_l
    from .colorize import colorize

    for row in rows:
        result = colorize(model, row["target"], row["reference"], size=size)
        row.update(gray=gray_l_to_rgb(rgb_to_gray_l(row["target"])), coarse=result.coarse_rgb, result=result.rgb)
    return rows


def gallery_figure(rows: list[dict], per_row: int = PAIRS_PER_ROW, panel: float = 1.45, final: str = COLUMNS[3]):
    """``per_row`` pairs side by side, each four panels (:data:`COLUMNS`, the last titled ``final``) under its title."""
    from matplotlib.figure import Figure

    from .viz import to_image

    columns = (*COLUMNS[:3], final)
    lines = max(1, -(-len(rows) // per_row))
    cols = per_row * len(COLUMNS)
    header = 0.42  # inches above the first row: the column titles over the first pair titles
    fig = Figure(figsize=(panel * cols + 0.2 * (per_row - 1), (panel + 0.25) * lines + header))
    grid = fig.add_gridspec(lines, per_row, wspace=0.06, hspace=0.18, left=0.005, right=0.995, bottom=0.005,
                            top=1 - header / fig.get_figheight())
    for n in range(lines * per_row):
        cell = grid[n // per_row, n % per_row].subgridspec(1, len(COLUMNS), wspace=0.03)
        axes = [fig.add_subplot(cell[0, j]) for j in range(len(COLUMNS))]
        for j, ax in enumerate(axes):
            ax.set_axis_off()
            if n < len(rows):
                ax.imshow(to_image(rows[n][("gray", "reference", "coarse", "result")[j]]))
            if n < per_row:
                ax.text(0.5, 1.17, columns[j], transform=ax.transAxes, ha="center", va="bottom", fontsize=8.5,
                        color="0.25")
        if n < len(rows):
            axes[0].text(0.0, 1.03, rows[n]["title"], transform=axes[0].transAxes, ha="left", va="bottom",
                         fontsize=8, fontweight="bold")
    return fig


def save_figure(fig, out, dpi: int = 88, *, overwrite: bool = True, **checks) -> Path:
    """Save ``fig`` atomically (:func:`sscn.io.files.write_atomic`); a PNG is written with Pillow's
    strongest lossless compression. ``overwrite=False`` refuses an existing file; ``checks``
    (``inputs``, ``protected``) refuse an input or a file inside a data folder."""
    from ..io.files import write_atomic

    out = Path(out)
    fmt = figure_format(out)
    if fmt == "png":
        from PIL import Image

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        with Image.open(buffer) as image:
            picture = image.convert("RGB")

        def write(handle):
            picture.save(handle, format="PNG", optimize=True)
    else:
        def write(handle):
            fig.savefig(handle, format=fmt, dpi=dpi)
    return write_atomic(out, write, overwrite, **checks)


def run_gallery(out="sscn-gallery.png", data=None, split: str = "val", checkpoint=None, size: int = SIZE,
                progress: bool = True, overwrite: bool = False) -> Path:
    """Write the gallery: the sample pairs, plus one pair per class of ``data`` when given.

    The figure never replaces the checkpoint or a file inside ``data``, nor an existing file
    unless ``overwrite``; it is written atomically. Autograd is off inside, and only inside."""
    from ..models.checkpoint import bundled_checkpoint, checkpoint_path, load_model
    from ..io.photos import open_photos
    from ..io.files import check_output
    from .viz import final_title

    figure_format(out)
    checkpoint = checkpoint_path(checkpoint)
    if checkpoint is None and bundled_checkpoint() is None:
        raise SSCNError("no bundled checkpoint in this installation; pass --checkpoint PATH")
    checks = {"inputs": [("checkpoint", checkpoint or bundled_checkpoint())],
              "protected": [("--data", data)] if data is not None else [], "flag": "--output"}
    check_output(out, checks["inputs"], overwrite, "--output", checks["protected"])
    source = open_photos(data, split, size) if data is not None else None
    if source is not None:
        check_classes(source, data)
    with torch.no_grad():
        rows = sample_rows(size)
        if source is not None:
            rows += dataset_rows(data, split, size, progress=progress, source=source)
        if not rows:
            raise SSCNError("no pairs to show: this scikit-image has no sample photos; pass --data DIR")
        model = load_model(checkpoint)
        figure = gallery_figure(colorize_rows(model, rows, size), final=final_title(model, short=True))
        path = save_figure(figure, out, overwrite=overwrite, **checks)
    print(f"{len(rows)} pairs; figure: {path}")
    return path
