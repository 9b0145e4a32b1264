"""The self-augmentation evaluation (paper, Sec. 4.2): every method on every reference kind
(TPS, RR, RC), scored by PSNR, SSIM and PSNR ab. The protocol and its scores: ``docs/evaluation.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..color import join_lab, lab_norm_to_rgb
from ..errors import SSCNError
from ..io.photos import Photos
from ..scores import METRICS
from .cases import Method, make_cases
from .saved import SavedPairs, read_png




KIND_LABELS = {"tps": "TPS", "rotation": "RR", "crop": "RC", "tps_violent": "TPS violent"}


COLUMNS = ("method", "reference", "psnr", "ssim", "psnr_ab", "n_images", "n_inf", "size", "seed")  # CSV columns


def summarize(values: Sequence[float] | np.ndarray) -> tuple[float, int]:
    """(mean, count of infinite values): an ``inf`` is kept in the mean, never dropped."""
    values = np.asarray(values, dtype=np.float64)
    return (float(values.mean()) if values.size else float("nan")), int(np.isinf(values).sum())


def colorize(method: Method, gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
    """Run ``method`` and join its ab with the target's own L -> sRGB ``B x 3 x H x W`` in [0, 1]."""
    ab = method(gray_l, ref_lab)
    if ab.shape != (gray_l.shape[0], 2, *gray_l.shape[-2:]):
        expected = (gray_l.shape[0], 2, *gray_l.shape[-2:])
        raise SSCNError(f"a method must return ab of shape B x 2 x H x W = {expected}, got {tuple(ab.shape)}")
    return lab_norm_to_rgb(join_lab(gray_l, ab.to(gray_l)))


@dataclass
class ResultRow:
    """One method on one reference kind: means over the photos, and the per-photo scores."""

    method: str
    reference: str
    psnr: float
    ssim: float
    psnr_ab: float
    n_images: int
    size: int
    n_inf: int = 0  # photos scored inf PSNR (identical to the ground truth); kept in the mean
    seed: int = 0
    indices: list[int] = field(default_factory=list, repr=False)
    names: list[str] = field(default_factory=list, repr=False)
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # psnr, ssim, psnr_ab per photo

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in COLUMNS}

    def ranked(self, metric: str = "psnr") -> list[tuple[int, str, float]]:
        """``(index, name, score)`` from best to worst."""
        order = np.argsort(-self.scores[metric], kind="stable")
        return [(self.indices[i], self.names[i], float(self.scores[metric][i])) for i in order]


def evaluate(
    methods: dict[str, Method],
    dataset_or_images,
    kinds: Sequence[str] | None = None,
    size: int = 128,
    limit: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    save_dir: str | Path | None = None,
    progress: bool = True,
) -> list[ResultRow]:
    """Score every method on every reference kind; one :class:`ResultRow` per (method, kind).

    ``dataset_or_images``: see :class:`Photos`. The references are made once per photo and
    kind and shared by all methods. ``save_dir`` (a folder, or a :class:`SavedPairs` shared
    with other calls of one run) also writes the pairs as PNG, with a fresh
    ``saved_pairs.csv`` listing them. Rows come method by method, kinds in the given order.
    """
    from ..augment import REFERENCE_KINDS

    kinds = tuple(dict.fromkeys(REFERENCE_KINDS if kinds is None else kinds))  # a kind named twice is scored once
    if not methods:
        raise SSCNError("evaluate needs at least one method")
    if batch_size < 1:
        raise SSCNError(f"batch_size must be >= 1 (got {batch_size})")
    photos = Photos(dataset_or_images, size=size, limit=limit)
    saved = SavedPairs.of(save_dir)
    per = {(m, k): {"indices": [], "names": [], "psnr": [], "ssim": [], "psnr_ab": []} for m in methods for k in kinds}
    starts = range(0, len(photos), batch_size)
    bar = _progress(len(photos) * len(kinds), progress)
    for start in starts:
        batch = photos.readable(range(start, min(start + batch_size, len(photos))))
        for kind in kinds if batch else ():
            case = make_cases(batch, kind, seed)
            if saved is not None:
                saved.add(case)
            for name, method in methods.items():
                result = colorize(method, case.gray_l, case.ref_lab)
                scores = per[(name, kind)]
                scores["indices"] += case.indices
                scores["names"] += case.names
                for metric_name, metric in METRICS.items():
                    scores[metric_name] += metric(result, case.truth).tolist()
            bar.update(len(batch))
    bar.close()
    if saved is not None:
        saved.finish()
    rows = []
    for (name, kind), scores in per.items():
        arrays = {m: np.asarray(scores[m], dtype=np.float64) for m in ("psnr", "ssim", "psnr_ab")}
        mean_psnr, n_inf = summarize(arrays["psnr"])
        rows.append(
            ResultRow(
                name, kind, mean_psnr, summarize(arrays["ssim"])[0], summarize(arrays["psnr_ab"])[0],
                len(scores["indices"]), size, n_inf, seed, scores["indices"], scores["names"], arrays,
            )
        )
    return rows


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluate", unit="pair", disable=not enabled)


def reproduce_case(
    method: Method, dataset_or_images, index: int, kind: str, size: int = 128, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Recompute one photo's pair and result (for best / worst grids): sRGB ``3 x H x W`` tensors
    ``gray``, ``reference``, ``result``, ``truth``."""
    photos = Photos(dataset_or_images, size=size)
    case = make_cases([photos[index]], kind, seed)
    result = colorize(method, case.gray_l, case.ref_lab)
    gray = lab_norm_to_rgb(join_lab(case.gray_l, torch.zeros_like(case.ref_lab[:, 1:])))
    return {"gray": gray[0], "reference": case.reference[0], "result": result[0], "truth": case.truth[0]}


def score_saved(pairs_dir: str | Path, results_dir: str | Path, method: str = "external") -> list[ResultRow]:
    """Score another tool's results on saved pairs.

    ``results_dir/<kind>/<index>.png`` is the tool's colorization of
    ``pairs_dir/target_gray/<index>.png`` with ``pairs_dir/reference_<kind>/<index>.png``;
    it is compared as it is (the tool's own L) with ``pairs_dir/ground_truth/<index>.png``.
    """
    pairs_dir, results_dir = Path(pairs_dir), Path(results_dir)
    rows = []
    for kind_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        files = sorted(kind_dir.glob("*.png"))
        if not files:
            continue
        truths = [pairs_dir / "ground_truth" / f.name for f in files]
        missing = [str(t) for t in truths if not t.exists()]
        if missing:
            raise SSCNError(f"{kind_dir}: no ground truth for {missing[:3]}; were the pairs saved to {pairs_dir}?")
        result = torch.stack([read_png(f) for f in files])
        truth = torch.stack([read_png(t) for t in truths])
        arrays = {name: metric(result, truth).numpy() for name, metric in METRICS.items()}
        mean_psnr, n_inf = summarize(arrays["psnr"])
        indices = [int(f.stem) for f in files]
        rows.append(
            ResultRow(method, kind_dir.name, mean_psnr, float(arrays["ssim"].mean()), float(arrays["psnr_ab"].mean()),
                      len(files), int(result.shape[-1]), n_inf, 0, indices, [f.stem for f in files], arrays)
        )
    return rows
