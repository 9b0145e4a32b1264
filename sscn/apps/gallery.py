"""``sscn gallery``: the model on real pairs, a gray photo and a *different* colour photo.

Each pair shows the gray target, the reference, the coarse (GCT) result and the final
result. The pairs are fixed, not picked by how well they come out:

* scikit-image's sample photos, :data:`SAMPLE_PAIRS` (subjects that share colours);
* with a dataset (``--data``, Imagenette's layout), one pair per class: the middle photo
  of the class (by file name) as the target and its reference by the same-class rule of
  ``sscn evaluate --kinds same_class`` (:mod:`sscn.evaluation.pairs`: the nearest other photo of
  the class by a gray-image descriptor).

With a folder of colour photos (``--reference-from FOLDER``), each target of ``--data`` (or,
without ``--data``, each sample target) is shown a second time, right after its fixed pair,
with the reference the finder (:mod:`sscn.apps.finder`) ranks first in ``FOLDER``, titled with
its score: the rule's choice and the finder's side by side. The finder is loaded once. It never
picks the target itself: a ``--data`` target is searched by its file, so the file and a
byte-identical copy are passed over, and for every target a file whose pixels at the gallery's
size are the target's is passed over too. A sample target has no file of its own: a file named
as the sample (``chelsea.png`` for ``chelsea``) is passed over, but a *near* copy (re-encoded,
shifted, cropped; e.g. ``sscn.io.data.sample_folder``'s crops) may be chosen, as for any
target a near copy of it in ``FOLDER`` may be.
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
    """The sample pairs as ``{"title", "target", "reference"}`` (square ``3 x size x size`` crops),
    with ``"subject"`` and ``"key"``: the target's name."""
    from ..io.data import sample_photos

    photos = dict(sample_photos(size=size))
    return [{"title": f"{t} <- {r}", "target": photos[t], "reference": photos[r], "subject": t, "key": t}
            for t, r in pairs if t in photos and r in photos]


def dataset_rows(data, split: str = "val", size: int = SIZE, progress: bool = False, source=None) -> list[dict]:
    """One pair per class of ``data`` (a folder, or Imagenette's root with ``split``): the
    middle photo of the class and its same-class reference (:func:`sscn.evaluation.pairs.same_class_pairs`).
    ``source``: ``data`` already opened (:func:`sscn.io.photos.open_photos`). Each row also has
    ``"subject"`` (its title), ``"key"`` (the target's name in the dataset, ``class/file.jpg``)
    and ``"target_path"``, ``"reference_path"`` (the files, or None for a source without files)."""
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
        rows.append({"title": prefix + name, "subject": prefix + name, "key": pair.target,
                     "target": photos.photos[pair.target_index][2],
                     "reference": photos.photos[pair.reference_index][2],
                     "target_path": _file_of(source, photos, pair.target_index),
                     "reference_path": _file_of(source, photos, pair.reference_index)})
    return rows


def _file_of(source, photos, position: int) -> Path | None:
    """The file of the photo at ``position`` of a photo set (None for a source without files)."""
    samples = getattr(source, "samples", None)
    if samples is None or getattr(source, "root", None) is None:
        return None
    return Path(samples[photos.photos.indices[position]][0])


def check_reference_folder(folder) -> None:
    """``--reference-from``: a folder with at least one image file, checked before any slow work
    (whether the files are usable colour photos is known once the finder has read them)."""
    from .finder import folder_photos

    if not folder_photos(folder):  # "is not a folder" is folder_photos' own error
        raise SSCNError(f"--reference-from {folder} holds no image file; pass a folder of colour JPEG or PNG photos")


def finder_row(finder, row: dict, size: int = SIZE) -> dict:
    """A row with ``row``'s target and the reference ``finder`` (a :class:`sscn.apps.finder.ReferenceFinder`)
    ranks first for it: ``{"title", "target", "reference", "reference_path", "match", ...}``.

    Passed over, so that the target is never its own reference: the target's file and a
    byte-identical copy (when ``row`` has a ``"target_path"``;
    :meth:`~sscn.apps.finder.ReferenceFinder.rank`), a file whose pixels at ``size`` are the
    target's, and, for a target without a file, a file named as its ``"key"``. A near copy of
    the target (re-encoded, shifted, cropped) may still be chosen."""
    from ..io.data import load_image, resize_center_crop
    from ..scores import to_uint8

    path = row.get("target_path")
    pixels = to_uint8(resize_center_crop(load_image(path) if path is not None else row["target"], size))
    key = Path(str(row.get("key") or "")).name
    subject = row.get("subject", row["title"])
    for match in finder.rank(path if path is not None else row["target"], top=len(finder.paths)):
        if path is None and key and key in (match.path.name, match.path.stem):
            continue
        try:
            reference = resize_center_crop(load_image(match.path), size).clamp(0, 1).contiguous()
        except (SSCNError, OSError):  # changed or removed since the finder read it: the next one
            continue
        if reference.shape == pixels.shape and torch.equal(to_uint8(reference), pixels):
            continue
        return {"title": f"{subject}: finder (score {match.score:.3f})", "subject": subject, "key": row.get("key"),
                "target": row["target"], "reference": reference, "target_path": path,
                "reference_path": match.path, "match": match}
    raise SSCNError(f"every photo in --reference-from {finder.folder} is the target {subject} or a copy of it; "
                    "pass a folder with other photos")


def with_finder_rows(finder, rows: list[dict], size: int = SIZE) -> list[dict]:
    """``rows``, each followed by its :func:`finder_row`."""
    return [r for row in rows for r in (row, finder_row(finder, row, size))]


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
    """Add ``"gray"``, ``"coarse"`` and ``"result"`` (sRGB ``3 x H x W``) to each row (None: a gap, left as is)."""
    from ..color import gray_l_to_rgb, rgb_to_gray_l
    from .colorize import colorize

    for row in rows:
        if row is None:
            continue
        result = colorize(model, row["target"], row["reference"], size=size)
        row.update(gray=gray_l_to_rgb(rgb_to_gray_l(row["target"])), coarse=result.coarse_rgb, result=result.rgb)
    return rows


def gallery_figure(rows: list[dict], per_row: int = PAIRS_PER_ROW, panel: float = 1.45, final: str = COLUMNS[3]):
    """``per_row`` pairs side by side, each four panels (:data:`COLUMNS`, the last titled ``final``) under its
    title; a row that is None leaves its place empty."""
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
            if n < len(rows) and rows[n] is not None:
                ax.imshow(to_image(rows[n][("gray", "reference", "coarse", "result")[j]]))
            if n < per_row:
                ax.text(0.5, 1.17, columns[j], transform=ax.transAxes, ha="center", va="bottom", fontsize=8.5,
                        color="0.25")
        if n < len(rows) and rows[n] is not None:
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
                progress: bool = True, overwrite: bool = False, reference_from=None) -> Path:
    """Write the gallery: the sample pairs, plus one pair per class of ``data`` when given.

    ``reference_from``: a folder of colour photos; each target of ``data`` (without ``data``:
    each sample target) is shown again, right after its pair, with the reference the finder
    picks from the folder (:func:`finder_row`). The figure never replaces the checkpoint or a
    file inside ``data`` or ``reference_from``, nor an existing file unless ``overwrite``; it
    is written atomically. Autograd is off inside, and only inside."""
    from ..models.checkpoint import bundled_checkpoint, checkpoint_path, load_model
    from ..io.photos import open_photos
    from ..io.files import check_output
    from .console import say  # a file name the console cannot show is escaped, as sscn colorize does
    from .viz import final_title

    figure_format(out)
    checkpoint = checkpoint_path(checkpoint)
    if checkpoint is None and bundled_checkpoint() is None:
        raise SSCNError("no bundled checkpoint in this installation; pass --checkpoint PATH")
    protected = [(flag, folder) for flag, folder in (("--data", data), ("--reference-from", reference_from))
                 if folder is not None]
    checks = {"inputs": [("checkpoint", checkpoint or bundled_checkpoint())], "protected": protected,
              "flag": "--output"}
    check_output(out, checks["inputs"], overwrite, "--output", checks["protected"])
    if reference_from is not None:
        check_reference_folder(reference_from)
    source = open_photos(data, split, size) if data is not None else None
    if source is not None:
        check_classes(source, data)
    with torch.no_grad():
        finder = None
        if reference_from is not None:  # loaded once; it refuses a folder without a usable colour photo
            from .finder import ReferenceFinder

            finder = ReferenceFinder(reference_from, progress=progress)
        rows = sample_rows(size)
        if finder is not None and source is None:
            rows = with_finder_rows(finder, rows, size)
        if source is not None:
            found = dataset_rows(data, split, size, progress=progress, source=source)
            if finder is not None:
                if len(rows) % PAIRS_PER_ROW:  # a class's two pairs share a line of the figure
                    rows.append(None)
                found = with_finder_rows(finder, found, size)
            rows += found
        shown = [row for row in rows if row is not None]
        if not shown:
            raise SSCNError("no pairs to show: this scikit-image has no sample photos; pass --data DIR")
        for row in shown:
            if "match" in row:
                say(f"{row['subject']}: the finder chose {row['match'].describe()}")
        model = load_model(checkpoint)
        figure = gallery_figure(colorize_rows(model, rows, size), final=final_title(model, short=True))
        path = save_figure(figure, out, overwrite=overwrite, **checks)
    chosen = sum("match" in row for row in shown)
    found_by = f" ({chosen} with the finder's reference)" if chosen else ""
    print(f"{len(shown)} pairs{found_by}; figure: {path}")
    return path

