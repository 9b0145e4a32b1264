"""The self-augmentation evaluation (paper, Sec. 4.2): metrics, protocol and baselines.

Protocol. Every ground-truth photo is its own reference after a seeded transform: a
thin-plate-spline warp (TPS), a random rotation (RR) or a random crop (RC), made by
:func:`sscn.augment.make_reference`. The seed of photo ``index`` is
``seed * 1_000_003 + index`` (:func:`reference_seed`) for every kind, so a photo gets the
same references whatever ``limit`` or batch size is used, and ``save_dir`` writes them
as PNG files that other tools can be scored on. A fourth kind, ``same_class``, takes
another photo of the target's class as the reference, with more metrics: see :mod:`sscn.pairs`.

A *method* is any callable ``(gray_l B x 1 x H x W, ref_lab B x 3 x H x W) -> ab B x 2 x H x W``
(normalised as in :mod:`sscn.color`). Its ab joined with the target's own L gives the
result, compared with the ground truth on 8-bit RGB:

* PSNR: ``10 log10(255^2 / MSE)`` over the three channels, per image; identical images
  give ``inf``, which is kept (the mean is then ``inf`` and ``n_inf`` counts them).
* SSIM (Wang et al. 2004): Gaussian window sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03,
  data range 255, per channel then averaged; the same numbers as
  ``skimage.metrics.structural_similarity(..., channel_axis, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255)``.
* PSNR ab: PSNR of the a, b channels alone, both images' Lab computed from their 8-bit
  RGB, with a data range of 220 Lab units (ab in [-110, 110], i.e. 2 in the
  network's normalised units). It ignores L, which every method copies from the target.
"""
from __future__ import annotations

import argparse
import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .color import AB_SCALE, join_lab, lab_norm_to_rgb, rgb_to_lab, rgb_to_lab_norm, split_lab
from .errors import SSCNError
from .files import check_output, write_atomic, write_text

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

KIND_LABELS = {"tps": "TPS", "rotation": "RR", "crop": "RC", "tps_violent": "TPS violent"}
SEED_STRIDE = 1_000_003  # a prime larger than any dataset, so (seed, index) pairs never collide
AB_DATA_RANGE = 2 * AB_SCALE  # 220 Lab units
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
COLUMNS = ("method", "reference", "psnr", "ssim", "psnr_ab", "n_images", "n_inf", "size", "seed")  # CSV columns


# --------------------------------------------------------------------------- metrics


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the 8-bit picture a file would hold (clipped, rounded), as ``uint8``.

    ``uint8`` input is returned unchanged.
    """
    if rgb.dtype == torch.uint8:
        return rgb
    return (rgb.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def _pair(a: torch.Tensor, b: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``B x 3 x H x W`` (or ``3 x H x W``) pictures -> 8-bit values as float64, batched."""
    if a.shape != b.shape:
        raise SSCNError(f"{name}: the two images differ in shape ({tuple(a.shape)} vs {tuple(b.shape)}); resize one")
    if a.dim() == 3:
        a, b = a[None], b[None]
    if a.dim() != 4:
        raise SSCNError(f"{name}: expected B x C x H x W or C x H x W images, got shape {tuple(a.shape)}")
    return to_uint8(a).double().cpu(), to_uint8(b).double().cpu()


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    # peak^2 / 0 is inf in torch (no warning): identical images score inf, as they should
    return 10 * torch.log10(data_range**2 / mse)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of 8-bit RGB pictures, one value per image (``B``; a 0-d tensor for one image).

    ``a``, ``b``: ``B x 3 x H x W`` sRGB in [0, 1] (quantised to 8 bits first) or ``uint8``.
    ``10 log10(255^2 / MSE)``, MSE over channels and pixels; ``inf`` when identical.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "psnr")
    out = _psnr_from_mse(((a - b) ** 2).mean(dim=(1, 2, 3)), 255.0)
    return out[0] if single else out


def psnr_ab(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of the a, b channels alone (data range 220 Lab units), per image.

    ``a``, ``b``: sRGB pictures as for :func:`psnr`; both are quantised to 8 bits and
    converted to Lab, so a method is judged on the colours its file would show.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "psnr_ab")
    ab_a, ab_b = rgb_to_lab(a / 255)[:, 1:], rgb_to_lab(b / 255)[:, 1:]
    out = _psnr_from_mse(((ab_a - ab_b) ** 2).mean(dim=(1, 2, 3)), AB_DATA_RANGE)
    return out[0] if single else out


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> torch.Tensor:
    """The 1-D Gaussian of ``scipy.ndimage.gaussian_filter``: radius ``int(truncate sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of 8-bit RGB pictures, one value per image.

    ``a``, ``b``: as for :func:`psnr`. Per channel,
    ``SSIM = (2 mu_a mu_b + C1)(2 cov_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))``
    with ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, local statistics under an 11 x 11 Gaussian
    window (sigma 1.5, population covariance), averaged over the pixels at least 5 px from
    the border (as skimage crops) and over the channels.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "ssim")
    g = gaussian_window()
    if min(a.shape[-2:]) < g.numel():
        raise SSCNError(f"ssim: images must be at least {g.numel()} px on each side (got {tuple(a.shape[-2:])})")
    channels = a.shape[1]
    # float32 filtering is ~7x faster on CPU than float64; centring the values first keeps
    # var = E[x^2] - E[x]^2 free of cancellation (variances are shift-invariant)
    centre = data_range / 2
    a, b, g = (a - centre).float(), (b - centre).float(), g.float()
    stats = torch.cat((a, b, a * a, b * b, a * b), dim=1)  # B x 5C x H x W
    # the window is separable; 'valid' filtering keeps exactly the pixels skimage averages
    stats = F.conv2d(stats, g.view(1, 1, 1, -1).expand(5 * channels, 1, 1, -1), groups=5 * channels)
    stats = F.conv2d(stats, g.view(1, 1, -1, 1).expand(5 * channels, 1, -1, 1), groups=5 * channels)
    mu_a, mu_b, aa, bb, ab = stats.double().split(channels, dim=1)
    var_a, var_b, cov = aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b
    mu_a, mu_b = mu_a + centre, mu_b + centre
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    out = s.mean(dim=(1, 2, 3))
    return out[0] if single else out


METRICS = {"psnr": psnr, "ssim": ssim, "psnr_ab": psnr_ab}  # name -> per-image metric on sRGB pictures


def summarize(values: Sequence[float] | np.ndarray) -> tuple[float, int]:
    """(mean, count of infinite values): an ``inf`` is kept in the mean, never dropped."""
    values = np.asarray(values, dtype=np.float64)
    return (float(values.mean()) if values.size else float("nan")), int(np.isinf(values).sum())


# --------------------------------------------------------------------------- baselines


def gray_method(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
    """ab = 0: the gray target itself."""
    return gray_l.new_zeros(gray_l.shape[0], 2, *gray_l.shape[-2:])


def copy_method(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
    """The reference's ab at the same pixel (no correspondence at all)."""
    return _ref_at_target_size(gray_l, ref_lab)[:, 1:]


def mean_ab_method(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
    """Global colour transfer: the reference's mean ab at every pixel.

    This is all of Reinhard et al.'s (2001) statistics transfer that applies to a gray
    target: Reinhard shifts and scales each channel of the target to the reference's
    mean and standard deviation, but the target's ab have no spread (std 0) to scale,
    so only the reference's means survive.
    """
    ab = ref_lab[:, 1:].mean(dim=(2, 3), keepdim=True)
    return ab.expand(-1, -1, *gray_l.shape[-2:])


def luminance_match_method(
    gray_l: torch.Tensor, ref_lab: torch.Tensor, bins: int = 64, bandwidth: float = 1.0
) -> torch.Tensor:
    """Welsh et al.'s (2002) gray-target form of Reinhard's transfer, global and pixel-wise.

    The reference's L is remapped to the target's mean and standard deviation (Welsh's
    luminance remapping); each target pixel then takes the mean ab of the reference
    pixels of similar remapped L: a Nadaraya-Watson regression of ab on L over ``bins``
    L bins with a Gaussian kernel of ``bandwidth`` bins. Welsh matches single jittered
    samples on L and a 5 x 5 standard deviation; the regression is its deterministic,
    batched counterpart. Bins far from any reference pixel fall back to the mean ab.
    """
    ref_lab = _ref_at_target_size(gray_l, ref_lab)
    ref_l, ref_ab = ref_lab[:, :1], ref_lab[:, 1:]
    batch = gray_l.shape[0]
    mu_t, sd_t = gray_l.mean(dim=(1, 2, 3), keepdim=True), gray_l.std(dim=(1, 2, 3), keepdim=True)
    mu_r, sd_r = ref_l.mean(dim=(1, 2, 3), keepdim=True), ref_l.std(dim=(1, 2, 3), keepdim=True)
    remapped = (ref_l - mu_r) * (sd_t / sd_r.clamp(min=1e-6)) + mu_t

    def bin_of(l: torch.Tensor) -> torch.Tensor:  # normalised L in [-1, 1] -> bin index
        return ((l.clamp(-1, 1) + 1) / 2 * bins).long().clamp(max=bins - 1).flatten(1)

    ref_bins = bin_of(remapped)  # B x HW
    sums = ref_ab.new_zeros(batch, 2, bins).scatter_add_(2, ref_bins[:, None].expand(-1, 2, -1), ref_ab.flatten(2))
    counts = ref_ab.new_zeros(batch, 1, bins).scatter_add_(2, ref_bins[:, None], torch.ones_like(ref_l.flatten(2)))
    reach = 3 * math.ceil(bandwidth)
    offsets = torch.arange(-reach, reach + 1, dtype=ref_ab.dtype, device=ref_ab.device)
    kernel = torch.exp(-0.5 * (offsets / bandwidth) ** 2)

    def smooth(x: torch.Tensor) -> torch.Tensor:  # B x C x bins, blurred along the bins
        return F.conv1d(x.reshape(-1, 1, bins), kernel.view(1, 1, -1), padding=offsets.numel() // 2).view_as(x)

    # one pseudo-pixel of the global mean keeps empty bins defined
    mean_ab = ref_ab.mean(dim=(2, 3))[..., None]
    table = (smooth(sums) + mean_ab) / (smooth(counts) + 1)  # B x 2 x bins
    target_bins = bin_of(gray_l)
    ab = table.gather(2, target_bins[:, None].expand(-1, 2, -1))
    return ab.view(batch, 2, *gray_l.shape[-2:])


BASELINES: dict[str, Method] = {
    "gray": gray_method,
    "copy": copy_method,
    "mean_ab": mean_ab_method,
    "luminance_match": luminance_match_method,
}


def baseline_methods(names: Iterable[str] | None = None) -> dict[str, Method]:
    """The baselines by name (default: all of :data:`BASELINES`)."""
    names = list(BASELINES) if names is None else list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise SSCNError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    return {n: BASELINES[n] for n in names}


def _ref_at_target_size(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
    if ref_lab.shape[-2:] != gray_l.shape[-2:]:
        ref_lab = F.interpolate(ref_lab, size=gray_l.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    return ref_lab


# --------------------------------------------------------------------------- network methods


def network_methods(
    model: torch.nn.Module,
    k: int | None = None,
    r: int | None = None,
    seed: int = 0,
    include: Iterable[str] = ("coarse", "sparse", "dense"),
) -> dict[str, Method]:
    """Methods from an SSCN model: ``"coarse"`` (GCT alone, ``ab_coarse``), ``"sparse"``
    (semantic-sparse attention with ``k``, ``r``, default the model's config) and
    ``"dense"`` (every reference token). The random tokens are drawn with ``seed`` for
    every batch, so the numbers do not depend on what ran before.
    """
    methods = {}
    for name in include:
        if name == "coarse":
            methods[name] = _network_method(model, coarse_only=True)
        elif name == "sparse":
            methods[name] = _network_method(model, dense=False, k=k, r=r, seed=seed)
        elif name == "dense":
            methods[name] = _network_method(model, dense=True)
        else:
            raise SSCNError(f"unknown network method {name!r}; choose from coarse, sparse, dense")
    return methods


def _network_method(model: torch.nn.Module, coarse_only: bool = False, **options) -> Method:
    def method(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(gray_l.to(device), ref_lab.to(device), coarse_only=coarse_only, **options)
        return (out.ab_coarse if coarse_only else out.ab_fine).float().cpu()

    return method


# --------------------------------------------------------------------------- the protocol


def reference_seed(seed: int, index: int) -> int:
    """The seed of photo ``index``'s references: ``seed * 1_000_003 + index``."""
    return seed * SEED_STRIDE + index


class Photos:
    """Ground-truth photos as ``(index, name, rgb 3 x size x size)``, from any source.

    ``source``: a dataset whose items are dicts with ``"rgb"`` (``sscn.data.ImageFolder``),
    a list of ``(name, rgb)`` pairs (``sscn.data.sample_photos()``), a list of ``3 x H x W``
    tensors, or a folder path. Photos are resized and centre-cropped to ``size``.
    ``limit`` keeps that many evenly spaced photos (so every class of a sorted folder
    stays represented); each keeps its index in the whole source, hence its references.
    """

    def __init__(self, source, size: int = 128, limit: int | None = None):
        if isinstance(source, (str, Path)):
            source = open_photos(source, size=size)
        if limit is not None and limit < 1:
            raise SSCNError(f"limit={limit}; pass None (every photo) or a positive count")
        self.source, self.size = source, size
        total = len(source)
        if total == 0:
            raise SSCNError("the evaluation set is empty; check --data (a folder of images)")
        if limit is None or limit >= total:
            self.indices = list(range(total))
        else:
            self.indices = np.round(np.linspace(0, total - 1, limit)).astype(int).tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[int, str, torch.Tensor]:
        return self._photo(position, substitute=True)

    def _photo(self, position: int, substitute: bool) -> tuple[int, str, torch.Tensor]:
        from .data import resize_center_crop

        index = self.indices[position]
        item = self._item(index, substitute)
        if isinstance(item, dict):
            rgb, name = item["rgb"], _item_name(self.source, index)
        elif isinstance(item, (tuple, list)):
            name, rgb = item[0], item[1]
        else:
            rgb, name = item, f"{index:05d}"
        rgb = torch.as_tensor(rgb).float()
        if rgb.dim() != 3 or rgb.shape[0] != 3 or rgb.numel() == 0:
            raise SSCNError(f"photo {name!r} has shape {tuple(rgb.shape)}; pass 3 x H x W sRGB in [0, 1] "
                            "with at least one pixel")
        if not torch.isfinite(rgb).all():
            raise SSCNError(f"photo {name!r} has NaN or infinite values; pass finite sRGB in [0, 1]")
        return index, str(name), resize_center_crop(rgb, self.size).clamp(0, 1).contiguous()

    def _item(self, index: int, substitute: bool):
        from .data import ImageFolder

        if isinstance(self.source, ImageFolder):
            return self.source.item(index, substitute=substitute)
        return self.source[index]

    def readable(self, positions: Iterable[int]) -> list[tuple[int, str, torch.Tensor]]:
        """The photos at ``positions`` that decode; each one that does not is left out with a warning.

        Indexing an image folder serves the next readable photo for a file that fails to
        decode; scores must never go under a name whose photo was not the one scored."""
        photos = []
        for position in positions:
            try:
                photos.append(self._photo(position, substitute=False))
            except (SSCNError, OSError) as err:  # OSError: no permission to read it
                warnings.warn(f"{err}; left out of the scores", stacklevel=2)
        return photos


def _item_name(dataset, index: int) -> str:
    for attribute in ("paths", "files", "samples"):
        entries = getattr(dataset, attribute, None)
        if entries is not None:
            entry = entries[index]
            entry = entry[0] if isinstance(entry, (tuple, list)) else entry
            return Path(entry).stem
    return f"{index:05d}"


def open_photos(root: str | Path, split: str = "val", size: int = 128):
    """A folder of photos: ``root/split`` when it exists (Imagenette's layout), else ``root``."""
    from . import data

    root = Path(root)
    if not root.is_dir():
        raise SSCNError(f"--data {root}: no such folder; pass a folder of images (or Imagenette's root with val/)")
    if (root / split).is_dir():
        return data.imagenette_folder(root, split, size)
    return data.ImageFolder(root, size=size)


@dataclass
class Case:
    """One evaluation pair, batched: indices and names of the photos and their tensors."""

    kind: str
    indices: list[int]
    names: list[str]
    seeds: list[int]
    gray_l: torch.Tensor  # B x 1 x H x W
    ref_lab: torch.Tensor  # B x 3 x H x W
    reference: torch.Tensor  # B x 3 x H x W sRGB
    truth: torch.Tensor  # B x 3 x H x W sRGB


def make_cases(photos: Sequence[tuple[int, str, torch.Tensor]], kind: str, seed: int = 0) -> Case:
    """The seeded references of ``kind`` for a batch of ``(index, name, rgb)`` photos."""
    from .augment import make_reference

    refs, seeds = [], []
    for index, _, rgb in photos:
        seeds.append(reference_seed(seed, index))
        refs.append(make_reference(rgb, kind, seeds[-1]).image.clamp(0, 1))
    truth = torch.stack([rgb for _, _, rgb in photos])
    reference = torch.stack(refs)
    gray_l = split_lab(rgb_to_lab_norm(truth))[0]
    indices, names = [p[0] for p in photos], [p[1] for p in photos]
    return Case(kind, indices, names, seeds, gray_l, rgb_to_lab_norm(reference), reference, truth)


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
    from .augment import REFERENCE_KINDS

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


# --------------------------------------------------------------------------- saved pairs


SAVED_LISTING = "saved_pairs.csv"  # not pairs.csv: that is the same-class pairs file --out writes
PAIR_FOLDERS = ("target_gray", "ground_truth")  # and reference_<kind>


class SavedPairs:
    """The ``--save-pairs`` folder of one run: ``target_gray/``, ``ground_truth/`` and
    ``reference_<kind>/`` PNGs named ``<index>.png`` (five digits), listed in
    ``saved_pairs.csv`` (``index,name,kind,seed``).

    Made once per run: it first removes an earlier run's pairs (:func:`clear_pairs`), so no
    old ground truth stays beside this run's references, then every PNG and the listing go
    through :func:`sscn.files.write_atomic`. None of them may be one of the ``inputs``
    (``(role, path)`` pairs) or lie in a ``protected`` folder: that is refused before
    anything is removed or written.
    """

    def __init__(self, save_dir: str | Path, inputs=(), protected=()):
        self.root = Path(save_dir)
        self.inputs, self.protected = list(inputs), list(protected)
        if self.root.exists() and not self.root.is_dir():
            raise SSCNError(f"--save-pairs {self.root} is a file; pass a folder")
        for role, source in self.inputs:
            if source is not None and _managed(self.root, Path(source)):
                raise SSCNError(f"--save-pairs {self.root} holds the {role} {source}, which this run would remove "
                                "or replace; choose another --save-pairs folder")
        for data_flag, folder in self.protected:
            if folder is not None and self.root.resolve().is_relative_to(Path(folder).resolve()):
                raise SSCNError(f"--save-pairs {self.root} is inside {data_flag} {folder}, where its PNGs would be "
                                "read as photos; pass a folder outside the data")
        check_output(self.root / SAVED_LISTING, self.inputs, True, "--save-pairs", self.protected)
        clear_pairs(self.root)
        self.rows: list[tuple] = []
        self.written: set[tuple[str, int]] = set()

    @classmethod
    def of(cls, save_dir) -> "SavedPairs | None":
        """``save_dir`` as a :class:`SavedPairs` (a new one for a path, itself when it is one)."""
        if save_dir is None or isinstance(save_dir, SavedPairs):
            return save_dir
        return cls(save_dir)

    def add(self, case: Case) -> None:
        """Write the PNGs of ``case``; a photo's gray target and ground truth once per run."""
        gray = lab_norm_to_rgb(join_lab(case.gray_l, torch.zeros_like(case.ref_lab[:, 1:])))
        folders = {"target_gray": gray, "ground_truth": case.truth, f"reference_{case.kind}": case.reference}
        for folder, images in folders.items():
            for index, image in zip(case.indices, images):
                if (folder, index) in self.written:
                    continue
                self.written.add((folder, index))
                self._png(self.root / folder / f"{index:05d}.png", image)
        self.rows += zip(case.indices, case.names, [case.kind] * len(case.indices), case.seeds)

    def finish(self) -> Path:
        """Write the listing of every pair saved so far in this run (replacing the previous listing)."""
        return write_text(self.root / SAVED_LISTING, _csv_text([("index", "name", "kind", "seed"), *self.rows]),
                          True, inputs=self.inputs, protected=self.protected, flag="--save-pairs")

    def _png(self, path: Path, image: torch.Tensor) -> None:
        from PIL import Image

        picture = Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy())
        write_atomic(path, lambda handle: picture.save(handle, format="PNG"), True, inputs=self.inputs,
                     protected=self.protected, flag="--save-pairs")


def _managed(root: Path, path: Path) -> bool:
    """Whether ``path`` is a file a :class:`SavedPairs` on ``root`` removes or replaces."""
    try:
        path, root = path.resolve(), root.resolve()
    except OSError:
        return False
    if path == root / SAVED_LISTING:
        return True
    folder = path.parent
    return (folder.parent == root and (folder.name in PAIR_FOLDERS or folder.name.startswith("reference_"))
            and path.suffix == ".png" and path.stem.isdigit())


def _csv_text(rows) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def clear_pairs(save_dir: str | Path) -> None:
    """Remove an earlier run's pairs from ``save_dir``: ``saved_pairs.csv`` and the numbered PNGs
    of the folders :class:`SavedPairs` writes (nothing else), so that no old ground truth or
    gray target is left beside this run's references."""
    root = Path(save_dir)
    (root / SAVED_LISTING).unlink(missing_ok=True)
    for folder in (*(root / name for name in PAIR_FOLDERS), *root.glob("reference_*")):
        if folder.is_dir() and not folder.is_symlink():
            for old in folder.glob("*.png"):
                if old.stem.isdigit():
                    old.unlink()


def _read_png(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path, formats=["PNG"]) as image:  # never a decoder picked by the content alone
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()


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
        result = torch.stack([_read_png(f) for f in files])
        truth = torch.stack([_read_png(t) for t in truths])
        arrays = {name: metric(result, truth).numpy() for name, metric in METRICS.items()}
        mean_psnr, n_inf = summarize(arrays["psnr"])
        indices = [int(f.stem) for f in files]
        rows.append(
            ResultRow(method, kind_dir.name, mean_psnr, float(arrays["ssim"].mean()), float(arrays["psnr_ab"].mean()),
                      len(files), int(result.shape[-1]), n_inf, 0, indices, [f.stem for f in files], arrays)
        )
    return rows


# --------------------------------------------------------------------------- k / r sweep (paper, Fig. 8)


def sweep_kr(
    model: torch.nn.Module,
    dataset_or_images,
    ks: Sequence[int],
    rs: Sequence[int],
    kind: str = "tps",
    size: int = 128,
    limit: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """PSNR / SSIM of sparse attention for every ``(k, r)``, plus dense attention (``k = r = None``).

    Returns dicts ``{"k", "r", "tokens", "psnr", "ssim", "psnr_ab", "n_images"}``; ``tokens``
    is ``k + r`` capped at the number of reference tokens ``(size / 4)^2``. ``k = r = 0`` is skipped.
    """
    pairs = [(k, r) for k in ks for r in rs if k + r > 0]
    if not pairs:
        raise SSCNError("sweep_kr needs some (k, r) with k + r >= 1")
    methods = {f"k={k} r={r}": _network_method(model, dense=False, k=k, r=r, seed=seed) for k, r in pairs}
    methods["dense"] = _network_method(model, dense=True)
    pairs.append((None, None))
    rows = evaluate(methods, dataset_or_images, kinds=(kind,), size=size, limit=limit, batch_size=batch_size,
                    seed=seed, progress=progress)
    total = (size // 4) ** 2
    return [
        {"k": k, "r": r, "tokens": total if k is None else min(k + r, total), "psnr": row.psnr, "ssim": row.ssim,
         "psnr_ab": row.psnr_ab, "n_images": row.n_images}
        for (k, r), row in zip(pairs, rows)
    ]


# --------------------------------------------------------------------------- reporting

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

    ``checks``: ``inputs`` and ``protected`` for :func:`sscn.files.write_atomic`."""
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
    ``protected``) refuse a path that is an input (:func:`sscn.files.write_atomic`)."""
    out = Path(out_dir)
    checks.setdefault("flag", "--out")
    paths = results_paths(out, stem)
    write_means(rows, COLUMNS, results_table_markdown(rows), paths["csv"], paths["markdown"], **checks)
    lines = [("method", "reference", "index", "name", "psnr", "ssim", "psnr_ab")]
    for row in rows:
        for i, (index, name) in enumerate(zip(row.indices, row.names)):
            lines.append((row.method, row.reference, index, name, *(f"{row.scores[m][i]:.6f}" for m in METRICS)))
    write_text(paths["per_image"], _csv_text(lines), True, **checks)
    return paths


def results_paths(out_dir: str | Path, stem: str = "results") -> dict[str, Path]:
    """The files :func:`write_results` writes."""
    out = Path(out_dir)
    return {"csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md", "per_image": out / f"{stem}_per_image.csv"}


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sscn evaluate``."""
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the bundled one, if any)")
    parser.add_argument("--data", default=None,
                        help="folder of photos, or Imagenette's root (uses --split); "
                        "default: the built-in sample photos")
    parser.add_argument("--split", default="val", help="subfolder of --data to use when it exists (default: val)")
    parser.add_argument("--size", type=int, default=128, help="square working size in pixels (default: 128)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced photos (default: all)")
    parser.add_argument("--kinds", nargs="+", default=None, metavar="KIND",
                        help="reference kinds (default: tps rotation crop); same_class: another photo of the "
                        "target's class (sscn.pairs), scored also on colourfulness and palette similarity")
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
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_cli(args: argparse.Namespace) -> int:
    """``sscn evaluate``: print the Markdown table (and the k / r sweep with ``--sweep``).

    Every check that needs no photo comes first, among them that no output (``--out``'s
    tables and pairs file, ``--save-pairs``' PNGs and listing) is an input (the ``--pairs``
    file, the checkpoint) or lies inside ``--data``: an input is never written or removed.
    """
    from .augment import REFERENCE_KINDS
    from .pairs import SAME_CLASS, read_pairs

    pairs_file = getattr(args, "pairs", None)
    if pairs_file and args.kinds and SAME_CLASS not in args.kinds:
        raise SSCNError(f"--pairs scores the {SAME_CLASS} kind; add it to --kinds (or drop --kinds)")
    # a kind named twice is scored once (it would count every photo twice)
    kinds = tuple(dict.fromkeys(args.kinds or ((SAME_CLASS,) if pairs_file else REFERENCE_KINDS)))
    known = set(REFERENCE_KINDS) | set(KIND_LABELS) | {SAME_CLASS}
    if set(kinds) - known:
        raise SSCNError(f"--kinds: unknown {sorted(set(kinds) - known)}; choose from {sorted(known)}")
    if args.size < 32:
        raise SSCNError(f"--size must be at least 32 px (got {args.size})")
    network = not args.baselines_only and (args.sweep or not args.methods
                                           or bool({"coarse", "sparse", "dense"} & set(args.methods)))
    if network and args.size % 16:
        raise SSCNError(f"--size must be a multiple of 16 for the network (got {args.size}); "
                        "the baselines alone (--baselines-only) take any size")
    for flag, values in (("--sweep-k", args.sweep_k), ("--sweep-r", args.sweep_r)):
        if values and min(values) < 0:
            raise SSCNError(f"{flag}: values must be >= 0 (got {min(values)}); values above the token count are capped")
    if args.sweep and args.sweep_k is not None and args.sweep_r is not None and max(args.sweep_k + args.sweep_r) == 0:
        raise SSCNError("--sweep: every (k, r) is k = r = 0, which attends to nothing; pass a --sweep-k or "
                        "--sweep-r above 0")
    if abs(args.seed) >= 2**32:
        raise SSCNError(f"--seed must be between -2**32 and 2**32 (got {args.seed})")
    for flag, folder in (("--out", args.out), ("--save-pairs", args.save_pairs)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise SSCNError(f"{flag} {folder} is a file; pass a folder")
    try:
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto"
                              else args.device)
    except RuntimeError:
        raise SSCNError(f"--device {args.device!r} is not a device; pass auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SSCNError(f"--device {args.device}: no CUDA device here; pass cpu (or auto)")
    if args.baselines_only and args.sweep:
        raise SSCNError("--sweep needs a model; drop --baselines-only")
    checkpoint = None
    if not args.baselines_only:
        from .checkpoint import bundled_checkpoint

        checkpoint = args.checkpoint or bundled_checkpoint()
        if checkpoint is None:
            raise SSCNError("no --checkpoint given and no bundled checkpoint found; "
                            "pass --checkpoint CKPT or --baselines-only")
    same_class, kinds = SAME_CLASS in kinds, tuple(k for k in kinds if k != SAME_CLASS)
    if args.sweep and not kinds:
        raise SSCNError("--sweep runs on a self-augmented kind; add tps, rotation or crop to --kinds")
    checks = {"inputs": [("--pairs file", pairs_file), ("checkpoint", checkpoint)],
              "protected": [("--data", args.data)] if args.data is not None else []}
    if pairs_file:
        read_pairs(pairs_file)  # a malformed file is refused before the work
    _check_outputs(args, kinds, same_class, checks)
    if args.data is None:
        from .data import sample_photos

        print("no --data given: evaluating on the built-in sample photos")
        source = sample_photos()
    else:
        source = open_photos(args.data, args.split, args.size)
    model = None
    methods = baseline_methods()
    if checkpoint is not None:
        from .checkpoint import load_model

        model = load_model(checkpoint).to(device)
        methods.update(network_methods(model, seed=args.seed))
    if args.methods:
        unknown = sorted(set(args.methods) - set(methods))
        if unknown:
            raise SSCNError(f"--methods: unknown {unknown}; choose from {sorted(methods)}")
        methods = {name: methods[name] for name in args.methods}
    sweep_values = _sweep_values(args, model) if args.sweep else None
    progress = not args.no_progress
    # one folder of saved pairs for the whole run: cleared once, shared by every kind
    saved = SavedPairs(args.save_pairs, **checks) if args.save_pairs is not None else None
    if kinds:
        rows = evaluate(methods, source, kinds, size=args.size, limit=args.limit, batch_size=args.batch_size,
                        seed=args.seed, save_dir=saved, progress=progress)
        print(results_table_markdown(rows))
        if args.out:
            write_results(rows, args.out, **checks)
    if same_class:  # its own table (more metrics); results.* when it is the only kind, else same_class.*
        from .pairs import run_cli as run_same_class

        if kinds:
            print()
        run_same_class(args, methods, source, stem=SAME_CLASS if kinds else "results", save_dir=saved, **checks)
    if args.sweep:
        ks, rs = sweep_values
        sweep = sweep_kr(model, source, ks, rs, kind=kinds[0], size=args.size, limit=args.limit,
                         batch_size=args.batch_size, seed=args.seed, progress=progress)
        print()
        print(sweep_table_markdown(sweep))
        if args.out:
            out = Path(args.out)
            write_text(out / "sweep.md", sweep_table_markdown(sweep) + "\n", True, flag="--out", **checks)
            table = [list(sweep[0]), *([row[key] for key in sweep[0]] for row in sweep)]
            write_text(out / "sweep.csv", _csv_text(table), True, flag="--out", **checks)
    return 0


def _check_outputs(args, kinds, same_class: bool, checks: dict) -> None:
    """Refuse, before any work, an output of this run that would land on an input or in ``--data``."""
    paths = []
    if args.out is not None:
        out = Path(args.out)
        if kinds:
            paths += results_paths(out).values()
        if same_class:
            paths += [*results_paths(out, "same_class" if kinds else "results").values(), out / "pairs.csv"]
        if args.sweep:
            paths += [out / "sweep.md", out / "sweep.csv"]
    for path in paths:
        check_output(path, checks["inputs"], True, "--out", checks["protected"])
    if args.save_pairs is not None:
        root = Path(args.save_pairs)
        for role, source in checks["inputs"]:
            if source is not None and _managed(root, Path(source)):
                raise SSCNError(f"--save-pairs {root} holds the {role} {source}, which this run would remove "
                                "or replace; choose another --save-pairs folder")
        check_output(root / SAVED_LISTING, checks["inputs"], True, "--save-pairs", checks["protected"])


def _sweep_values(args, model) -> tuple[list[int], list[int]]:
    """The k and r values of ``--sweep`` (default: around the model's own), checked before any work."""
    config = model.config
    ks = sorted(set(args.sweep_k or {0, config.k // 2, config.k, 2 * config.k}))
    rs = sorted(set(args.sweep_r or {0, config.r}))
    if max(ks) + max(rs) == 0:
        raise SSCNError("--sweep: every (k, r) is k = r = 0, which attends to nothing; pass a --sweep-k or "
                        "--sweep-r above 0")
    return ks, rs
