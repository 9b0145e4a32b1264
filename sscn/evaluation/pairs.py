"""Pairs of different photos: the same-class pair rule (a fixed gray descriptor, the nearest
photo of the class that is not a near-duplicate), its pairs file, and the same-class benchmark
(PSNR, SSIM, PSNR ab, colourfulness, palette similarity). The rule and its thresholds, as
measured: ``docs/evaluation.md``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..color import rgb_to_gray_l, rgb_to_lab_norm, split_lab
from ..errors import SSCNError
from ..io.files import open_regular, write_text


SAME_CLASS = "same_class"  # the reference kind's name in ``sscn evaluate --kinds``


SAME_CLASS_LABEL = "same class"


DESCRIPTOR_SIZE = 64  # px: the gray photo is resized to this before the descriptor is taken


LAYOUT_GRID = 8  # block means of L on an 8 x 8 grid


GRADIENT_GRID = 4  # orientation histograms on a 4 x 4 grid of cells


ORIENTATIONS = 8  # unsigned orientation bins (22.5 degrees each)


NEAR_DUPLICATE = 0.3  # descriptor distance below which two photos count as the same photo


DECIMALS = 6  # distances are rounded to this many decimals before comparing (ties -> key order)


ONE_CLASS = "all"  # the class of photos that come without one


PAIR_COLUMNS = ("target", "reference", "class", "distance")


def gray_descriptor(gray_l: torch.Tensor) -> torch.Tensor:
    """The fixed gray-image descriptor: ``B x 1 x H x W`` normalised L -> ``B x 192`` (unit rows, float64).

    64 layout values (8 x 8 block means of L, centred, unit length) and 128 gradient
    values (4 x 4 cells x 8 orientation bins of magnitude, unit length), both scaled by
    ``1 / sqrt(2)``. A flat image has no layout or gradients: its descriptor is 0.
    """
    if gray_l.dim() != 4 or gray_l.shape[1] != 1 or gray_l.shape[-2] < 1 or gray_l.shape[-1] < 1:
        raise SSCNError(f"gray_descriptor needs normalised L of shape B x 1 x H x W (H, W >= 1), "
                        f"got {tuple(gray_l.shape)}")
    if not torch.isfinite(gray_l).all():
        raise SSCNError("gray_descriptor: the image has NaN or infinite values; pass finite normalised L")
    x = gray_l.double()
    if x.shape[-2:] != (DESCRIPTOR_SIZE, DESCRIPTOR_SIZE):
        x = F.interpolate(x, size=(DESCRIPTOR_SIZE, DESCRIPTOR_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
    layout = F.adaptive_avg_pool2d(x, LAYOUT_GRID).flatten(1)
    layout = _unit(layout - layout.mean(dim=1, keepdim=True))
    gx = x[..., 1:-1, 2:] - x[..., 1:-1, :-2]  # central differences, B x 1 x 62 x 62
    gy = x[..., 2:, 1:-1] - x[..., :-2, 1:-1]
    magnitude = torch.sqrt(gx * gx + gy * gy)
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)  # unsigned: an edge and its reverse are one
    index = (angle / math.pi * ORIENTATIONS).long().clamp(max=ORIENTATIONS - 1)
    per_bin = torch.zeros(x.shape[0], ORIENTATIONS, *magnitude.shape[-2:], dtype=x.dtype)
    per_bin.scatter_(1, index, magnitude)
    gradients = _unit(F.adaptive_avg_pool2d(per_bin, GRADIENT_GRID).flatten(1))
    return torch.cat((layout, gradients), dim=1) / math.sqrt(2)


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm > 1e-12, x / norm.clamp(min=1e-12), torch.zeros_like(x))


@dataclass
class PhotoSet:
    """Every photo of a source at the working size, with what the pair rule needs.

    ``keys``: unique names (a file's path relative to the dataset root, ``class/file.jpg``,
    for an image folder; the given names otherwise); ``classes``: each photo's class;
    ``digests``: SHA-256 of each file's bytes (of the 8-bit pixels for in-memory photos);
    ``descriptors``: ``N x 192`` (:func:`gray_descriptor`); ``failed``: indices whose file
    could not be decoded (never paired).
    """

    photos: object  # sscn.io.photos.Photos over the whole source
    keys: list[str]
    classes: list[str]
    digests: list[str]
    descriptors: torch.Tensor
    failed: set[int] = field(default_factory=set)

    def index_of(self, key: str) -> int:
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = self._lookup = {k: i for i, k in enumerate(self.keys)}
        if key not in lookup:
            raise SSCNError(f"the pairs file names {_short(key)}, which is not a photo of this dataset; "
                            "pass the --data (and --split) the pairs were made on")
        return lookup[key]


def photo_set(source, size: int = 128, batch_size: int = 64, progress: bool = False) -> PhotoSet:
    """Load every photo of ``source`` (see :class:`sscn.io.photos.Photos`) once and describe it."""
    from ..io.photos import Photos
    from ..scores import to_uint8

    photos = Photos(source, size=size)
    samples, root = getattr(source, "samples", None), getattr(source, "root", None)
    file_backed = samples is not None and root is not None and hasattr(source, "classes")
    descriptors, keys, digests, classes = [], [], [], []
    bar = _progress(len(photos), progress, "describe")
    for start in range(0, len(photos), batch_size):
        batch = [photos[i] for i in range(start, min(start + batch_size, len(photos)))]
        rgb = torch.stack([item[2] for item in batch])
        descriptors.append(gray_descriptor(rgb_to_gray_l(rgb)))
        for index, name, picture in batch:
            if file_backed:
                path, label = samples[index][0], samples[index][1]
                keys.append(Path(path).relative_to(root).as_posix())
                classes.append(source.classes[label])
                digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
            else:
                keys.append(name)
                classes.append(ONE_CLASS)
                digests.append(hashlib.sha256(to_uint8(picture).numpy().tobytes()).hexdigest())
        bar.update(len(batch))
    bar.close()
    if len(set(keys)) != len(keys):
        raise SSCNError("two photos share a name; give every photo a unique name")
    failed = set()
    if file_backed:  # an ImageFolder serves the next readable photo for a file it cannot decode
        bad = {Path(p) for p in getattr(source, "failed", [])}
        failed = {i for i, (path, _) in enumerate(samples) if Path(path) in bad}
    return PhotoSet(photos, keys, classes, digests, torch.cat(descriptors), failed)


@dataclass(frozen=True)
class Pair:
    """A target and its reference: keys, class, descriptor distance, indices in the source."""

    target: str
    reference: str
    cls: str
    distance: float
    target_index: int = -1
    reference_index: int = -1


def same_class_pairs(photo_set_or_source, size: int = 128, near_duplicate: float = NEAR_DUPLICATE,
                     progress: bool = False) -> list[Pair]:
    """The same-class rule (module docstring): one :class:`Pair` per target that has a reference,
    in the order of the source. ``photo_set_or_source``: a :class:`PhotoSet` or a source for
    :func:`photo_set` (then loaded at ``size``)."""
    photos = photo_set_or_source if isinstance(photo_set_or_source, PhotoSet) else \
        photo_set(photo_set_or_source, size=size, progress=progress)
    by_class: dict[str, list[int]] = {}
    for index, cls in enumerate(photos.classes):
        if index not in photos.failed:
            by_class.setdefault(cls, []).append(index)
    pairs, unpaired = [], []
    for cls, members in by_class.items():
        members = np.asarray(members)
        desc = photos.descriptors[members]
        distance = np.round(torch.cdist(desc, desc).numpy(), DECIMALS)
        keys = [photos.keys[i] for i in members]
        by_key = np.argsort(np.asarray(keys, dtype=object), kind="stable")  # ties -> the key that sorts first
        for row, target in enumerate(members):
            best = None
            for column in by_key:
                candidate = members[column]
                d = distance[row, column]
                if candidate == target or d < near_duplicate or photos.digests[candidate] == photos.digests[target]:
                    continue
                if best is None or d < best[1]:
                    best = (candidate, d)
            if best is None:
                unpaired.append(photos.keys[target])
                continue
            pairs.append(Pair(photos.keys[target], photos.keys[best[0]], cls, float(best[1]), int(target),
                              int(best[0])))
    if unpaired:
        warnings.warn(f"{len(unpaired)} photo(s) have no other photo of their class to pair with and are left out "
                      f"(first: {unpaired[0]})", stacklevel=2)
    return sorted(pairs, key=lambda p: p.target_index)


def write_pairs(pairs: Sequence[Pair], path: str | Path, **checks) -> Path:
    """Write ``target,reference,class,distance`` CSV (distance with 6 decimals); returns the path.

    UTF-8; a file name that is not UTF-8 is written as its own bytes, so :func:`read_pairs`
    gives back the same key. Written atomically, replacing an earlier file; ``checks``
    (``inputs``, ``protected``, ``flag``) go to :func:`sscn.io.files.write_atomic`.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PAIR_COLUMNS)
    writer.writerows((p.target, p.reference, p.cls, f"{p.distance:.{DECIMALS}f}") for p in pairs)
    return write_text(path, buffer.getvalue(), True, **checks)


MAX_PAIRS_BYTES = 1 << 30  # a pairs file of a million photos is about 100 MB


def read_pairs(path: str | Path, photos: PhotoSet | None = None) -> list[Pair]:
    """Read a pairs CSV (:func:`write_pairs`); with ``photos``, resolve the keys to indices.

    A target may appear once; a photo paired with itself is refused (the file was edited
    or made by another rule). Bytes that are not UTF-8 are kept as they are (they may name a
    file whose name is not UTF-8). With ``photos``, a pair naming a photo that fails to
    decode is left out with a warning, never scored with another photo in its place.
    """
    path = Path(path)
    where = f"--pairs {path}"
    if not path.exists():
        raise SSCNError(f"{where}: no such file; pass a pairs CSV written by sscn evaluate --kinds same_class")
    with open_regular(path, "--pairs file") as handle:
        data = handle.read(MAX_PAIRS_BYTES + 1)
    if len(data) > MAX_PAIRS_BYTES:
        raise SSCNError(f"{where} is larger than {MAX_PAIRS_BYTES >> 20} MB; pass a pairs CSV written by sscn evaluate")
    text = data.decode("utf-8-sig", "surrogateescape")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None or not set(PAIR_COLUMNS[:2]) <= set(reader.fieldnames):
            raise SSCNError(f"{where}: expected the columns {','.join(PAIR_COLUMNS)}")
        rows = list(reader)
    except csv.Error as err:  # a NUL byte, a field over csv's size limit
        # line_num counts the lines read before the one that failed
        raise SSCNError(f"{where}, line {reader.line_num + 1}: {err}; pass a pairs CSV written by sscn evaluate") \
            from None
    pairs, seen, failed = [], set(), []
    for line, row in enumerate(rows, start=2):
        target, reference = row["target"], row["reference"]
        if not target or not reference:
            raise SSCNError(f"{where}, line {line}: a target and a reference are needed")
        if target == reference:
            raise SSCNError(f"{where}, line {line}: {_short(target)} is paired with itself")
        if target in seen:
            raise SSCNError(f"{where}, line {line}: {_short(target)} is listed twice")
        seen.add(target)
        try:
            distance = float(row.get("distance") or "nan")
        except ValueError:
            raise SSCNError(f"{where}, line {line}: distance {_short(row['distance'])} is not a number") from None
        ti = photos.index_of(target) if photos is not None else -1
        ri = photos.index_of(reference) if photos is not None else -1
        if photos is not None and {ti, ri} & photos.failed:
            failed.append(target if ti in photos.failed else reference)
            continue
        pairs.append(Pair(target, reference, row.get("class") or "", distance, ti, ri))
    if failed:
        warnings.warn(f"{len(failed)} pair(s) of {where} name a photo that could not be decoded and are left out "
                      f"of the scores (first: {_short(failed[0])})", stacklevel=2)
    if not pairs:
        raise SSCNError(f"{where} lists no pairs" + (" whose photos decode" if failed else ""))
    return pairs


def _short(text, limit: int = 80) -> str:
    """``repr`` of a field from a file, cut short: a message stays one readable line."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


SAME_CLASS_METRICS = ("psnr", "ssim", "psnr_ab", "colourfulness", "colourfulness_truth", "palette")


COLUMNS = ("method", "reference", "psnr", "ssim", "psnr_ab", "colourfulness", "colourfulness_truth",
           "colourfulness_gap", "palette", "palette_truth", "n_images", "n_inf", "size")


@dataclass
class SameClassRow:
    """One method on the same-class pairs: means over the targets, and the per-target scores.

    ``colourfulness_gap``: mean ``|M(result) - M(ground truth)|``; ``palette_truth``: the
    palette similarity of the ground truth itself with the reference (the same for every
    method: how much of the reference's palette the target really has).
    """

    method: str
    psnr: float
    ssim: float
    psnr_ab: float
    colourfulness: float
    colourfulness_truth: float
    colourfulness_gap: float
    palette: float
    palette_truth: float
    n_images: int
    size: int
    n_inf: int = 0
    reference: str = SAME_CLASS
    pairs: list[Pair] = field(default_factory=list, repr=False)
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in COLUMNS}


def same_class_case(photos: PhotoSet, pairs: Sequence[Pair]):
    """The batched :class:`sscn.evaluation.cases.Case` of ``pairs`` (kind ``same_class``; its ``seeds``
    hold the reference indices, as there is no seed)."""
    from .cases import Case

    # never the next readable photo in place of one that fails to decode: that is an error here
    truth = torch.stack([_exact(photos, p.target_index) for p in pairs])
    reference = torch.stack([_exact(photos, p.reference_index) for p in pairs])
    return Case(SAME_CLASS, [p.target_index for p in pairs], [p.target for p in pairs],
                [p.reference_index for p in pairs], split_lab(rgb_to_lab_norm(truth))[0], rgb_to_lab_norm(reference),
                reference, truth)


def _exact(photos: PhotoSet, index: int) -> torch.Tensor:
    """Photo ``index`` of the source itself (an image folder would serve the next one for a bad file)."""
    if index in photos.failed:
        raise SSCNError(f"{photos.keys[index]!r} could not be decoded; it cannot be scored")
    return photos.photos._photo(index, substitute=False)[2]  # photo_set's Photos hold the whole source


def evaluate_same_class(methods: dict, source, size: int = 128, limit: int | None = None, batch_size: int = 16,
                        pairs: Sequence[Pair] | str | Path | None = None, save_dir: str | Path | None = None,
                        progress: bool = True) -> tuple[list[SameClassRow], list[Pair]]:
    """Score every method with another photo of the same class as the reference.

    ``source``: as for :class:`sscn.io.photos.Photos` (or a :class:`PhotoSet`); ``pairs``:
    the pairs to score (a list or a CSV file), default :func:`same_class_pairs`; ``limit``
    keeps that many evenly spaced pairs. Returns one :class:`SameClassRow` per method and
    the pairs scored. ``save_dir`` (a folder or an :class:`sscn.evaluation.saved.SavedPairs`) writes
    the PNGs as ``sscn evaluate --save-pairs`` does.
    """
    from .saved import SavedPairs
    from .protocol import colorize, summarize
    from ..scores import METRICS
    from .metrics import colourfulness, palette_similarity

    if not methods:
        raise SSCNError("evaluate_same_class needs at least one method")
    if batch_size < 1:
        raise SSCNError(f"batch_size must be >= 1 (got {batch_size})")
    if limit is not None and limit < 1:
        raise SSCNError(f"limit={limit}; pass None (every pair) or a positive count")
    photos = source if isinstance(source, PhotoSet) else photo_set(source, size=size, progress=progress)
    size = photos.photos.size
    if pairs is None:
        pairs = same_class_pairs(photos)
    elif isinstance(pairs, (str, Path)):
        pairs = read_pairs(pairs, photos)
    else:
        pairs = [p if p.target_index >= 0 else
                 Pair(p.target, p.reference, p.cls, p.distance, photos.index_of(p.target), photos.index_of(p.reference))
                 for p in pairs]
    if not pairs:
        raise SSCNError("no photo has another photo of its class to pair with; the same-class benchmark needs "
                        "at least two photos in a class")
    if limit is not None and limit < len(pairs):
        pairs = [pairs[i] for i in np.round(np.linspace(0, len(pairs) - 1, limit)).astype(int)]
    saved = SavedPairs.of(save_dir)
    per = {name: {m: [] for m in SAME_CLASS_METRICS} for name in methods}
    palette_truth = []
    bar = _progress(len(pairs), progress, "same class")
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        case = same_class_case(photos, chunk)
        if saved is not None:
            saved.add(case)
        truth_colourfulness = colourfulness(case.truth).tolist()
        palette_truth += palette_similarity(case.truth, case.reference).tolist()
        for name, method in methods.items():
            result = colorize(method, case.gray_l, case.ref_lab)
            scores = per[name]
            for metric_name, metric in METRICS.items():
                scores[metric_name] += metric(result, case.truth).tolist()
            scores["colourfulness"] += colourfulness(result).tolist()
            scores["colourfulness_truth"] += truth_colourfulness
            scores["palette"] += palette_similarity(result, case.reference).tolist()
        bar.update(len(chunk))
    bar.close()
    if saved is not None:
        saved.finish()
    rows = []
    for name, scores in per.items():
        arrays = {m: np.asarray(v, dtype=np.float64) for m, v in scores.items()}
        arrays["palette_truth"] = np.asarray(palette_truth, dtype=np.float64)
        mean_psnr, n_inf = summarize(arrays["psnr"])
        gap = np.abs(arrays["colourfulness"] - arrays["colourfulness_truth"])
        rows.append(SameClassRow(
            name, mean_psnr, float(arrays["ssim"].mean()), summarize(arrays["psnr_ab"])[0],
            float(arrays["colourfulness"].mean()), float(arrays["colourfulness_truth"].mean()), float(gap.mean()),
            float(arrays["palette"].mean()), float(arrays["palette_truth"].mean()), len(pairs), size, n_inf,
            SAME_CLASS, list(pairs), arrays,
        ))
    return rows, list(pairs)


def results_table_markdown(rows: Sequence[SameClassRow | dict]) -> str:
    """The same-class table in Markdown, one line per method, and the ground truth's own palette similarity."""
    lines = [
        "| method | reference | PSNR (dB) | SSIM | PSNR ab (dB) | colourfulness | colourfulness of the ground truth "
        "| abs. colourfulness gap | palette similarity | images | PSNR = inf | size |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    dicts = [row.as_dict() if isinstance(row, SameClassRow) else row for row in rows]
    for d in dicts:
        lines.append(
            f"| {d['method']} | {SAME_CLASS_LABEL} | {d['psnr']:.2f} | {d['ssim']:.4f} | {d['psnr_ab']:.2f} "
            f"| {d['colourfulness']:.1f} | {d['colourfulness_truth']:.1f} | {d['colourfulness_gap']:.1f} "
            f"| {d['palette']:.4f} | {d['n_images']} | {d.get('n_inf', 0)} | {d['size']} |"
        )
    if dicts:
        truth = dicts[0]["palette_truth"]
        lines += ["", f"Palette similarity of the ground truth itself with its reference: {truth:.4f}."]
    return "\n".join(lines)


def write_results(rows: Sequence[SameClassRow], pairs: Sequence[Pair], out_dir: str | Path,
                  stem: str = "results", **checks) -> dict[str, Path]:
    """Write ``<stem>.csv`` (means), ``<stem>.md``, ``<stem>_per_image.csv`` and ``pairs.csv`` under ``out_dir``.

    Each file is written atomically; ``checks`` (``inputs``, ``protected``) refuse one that
    is an input, such as the ``--pairs`` file this run read (:func:`sscn.io.files.write_atomic`)."""
    from .tables import results_paths, write_means  # evaluate imports this module

    out = Path(out_dir)
    checks.setdefault("flag", "--out")
    paths = {**results_paths(out, stem), "pairs": out / "pairs.csv"}
    write_means(rows, COLUMNS, results_table_markdown(rows), paths["csv"], paths["markdown"], **checks)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    names = (*SAME_CLASS_METRICS, "palette_truth")
    writer.writerow(["method", "target", "reference", *names])
    for row in rows:
        for i, pair in enumerate(row.pairs):
            writer.writerow([row.method, pair.target, pair.reference, *(f"{row.scores[m][i]:.6f}" for m in names)])
    write_text(paths["per_image"], buffer.getvalue(), True, **checks)
    write_pairs(pairs, paths["pairs"], **checks)
    return paths


def run_cli(args, methods: dict, source, stem: str = "results", save_dir=None, **checks) -> list[SameClassRow]:
    """The ``same_class`` kind of ``sscn evaluate``: print the table, write it (and the pairs) to ``--out``.

    ``save_dir``: the run's :class:`sscn.evaluation.saved.SavedPairs` (default: ``args.save_pairs``);
    ``checks``: ``inputs`` and ``protected`` for every file written."""
    progress = not getattr(args, "no_progress", False)
    photos = photo_set(source, size=args.size, progress=progress)
    pairs = read_pairs(args.pairs, photos) if getattr(args, "pairs", None) else same_class_pairs(photos)
    rows, pairs = evaluate_same_class(methods, photos, size=args.size, limit=args.limit, batch_size=args.batch_size,
                                      pairs=pairs, save_dir=save_dir or getattr(args, "save_pairs", None),
                                      progress=progress)
    print(results_table_markdown(rows))
    if getattr(args, "out", None):
        write_results(rows, pairs, args.out, stem, **checks)
    return rows


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="photo", disable=not enabled)
