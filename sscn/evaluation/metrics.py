"""Metrics for a reference that is a different photo: colourfulness and palette similarity.

When the reference is another photo, PSNR / SSIM against the target's own colours
(:mod:`sscn.evaluation`) measure plausibility only: they cannot reward a colour that the
reference offers and the target never had. Two more numbers complete the picture; both
are computed on the 8-bit picture a file would hold (``sscn.scores.to_uint8``), as
PSNR and SSIM are.

* Colourfulness (Hasler and Suesstrunk 2003, "Measuring colourfulness in natural
  images"): with ``rg = R - G`` and ``yb = (R + G) / 2 - B`` over the pixels (8-bit
  values, 0..255), ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``
  (population standard deviations). A gray image scores 0; on the paper's scale 15 is
  "slightly", 33 "moderately", 59 "quite" and 82 "highly" colourful. A washed-out result
  scores well below its ground truth.
* Palette similarity: how much of the reference's palette reaches the result. Each
  pixel's ab (Lab from the 8-bit RGB) falls into the nearest of the project's ab bins
  (:func:`sscn.bins.default_bins`: the in-gamut centres of a 10-unit grid); the two
  normalised histograms ``h``, ``g`` are compared by their intersection
  ``sum_q min(h_q, g_q)`` (Swain and Ballard 1991): 1 when the two images use every
  bin in the same proportion, 0 when they share no bin. The pictures may differ in size.
"""
from __future__ import annotations

import torch

from ..bins import GRID, default_bins
from ..color import rgb_to_lab
from ..errors import SSCNError
from ..scores import to_uint8

# Hasler and Suesstrunk's weight of the mean opponent colour against its spread
MEAN_WEIGHT = 0.3


def _batched_uint8(rgb: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """``B x 3 x H x W`` or ``3 x H x W`` sRGB (float in [0, 1] or uint8) -> 8-bit values as float64, batched."""
    if rgb.dim() not in (3, 4) or rgb.shape[-3] != 3:
        raise SSCNError(f"{name}: expected sRGB images of shape B x 3 x H x W or 3 x H x W, got {tuple(rgb.shape)}")
    if rgb.shape[-1] < 1 or rgb.shape[-2] < 1:
        raise SSCNError(f"{name}: the image has no pixels (shape {tuple(rgb.shape)})")
    if rgb.is_floating_point() and not torch.isfinite(rgb).all():
        raise SSCNError(f"{name}: the image has NaN or infinite values; pass finite sRGB in [0, 1]")
    single = rgb.dim() == 3
    rgb = rgb[None] if single else rgb
    return to_uint8(rgb).double().cpu(), single


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's colourfulness ``M`` of sRGB pictures, one value per image.

    ``rgb``: ``B x 3 x H x W`` (or ``3 x H x W``) in [0, 1], quantised to 8 bits first, or
    ``uint8``. Returns ``B`` values (a 0-d tensor for one image), 0 for a gray image.
    """
    values, single = _batched_uint8(rgb, "colourfulness")
    red, green, blue = values.unbind(1)
    rg = (red - green).flatten(1)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    out = spread + MEAN_WEIGHT * centre
    return out[0] if single else out


def ab_histogram(rgb: torch.Tensor, bins=None) -> torch.Tensor:
    """The normalised histogram of each picture's ab over the ab bins: ``B x Q`` (rows sum to 1).

    ``rgb``: as for :func:`colourfulness`; ``bins``: an :class:`sscn.bins.ABBins` (default
    :func:`sscn.bins.default_bins`, Q = 261). Each pixel counts once, in the bin whose
    centre is nearest to its ab (Lab units, from the 8-bit RGB; :func:`nearest_bin`).
    """
    bins = default_bins() if bins is None else bins
    values, single = _batched_uint8(rgb, "ab_histogram")
    centers = bins.centers.double()
    ab = rgb_to_lab(values / 255)[:, 1:].flatten(2).transpose(1, 2)  # B x N x 2, Lab units
    nearest = nearest_bin(ab.reshape(-1, 2), centers).view(ab.shape[:2])
    counts = torch.zeros(len(values), len(centers), dtype=torch.float64)
    counts.scatter_add_(1, nearest, torch.ones_like(nearest, dtype=torch.float64))
    out = counts / counts.sum(dim=1, keepdim=True)
    return out[0] if single else out


def nearest_bin(ab: torch.Tensor, centers: torch.Tensor, grid: float = GRID) -> torch.Tensor:
    """Index of the nearest centre for each of ``N x 2`` ab values (Lab units) -> ``N`` (int64).

    When the centres lie on the ``grid`` lattice (the project's bins do), the nearest
    lattice point of a colour is ``round(ab / grid)``; a colour whose lattice point is one
    of the centres is looked up in a table, and only the others (none, for 8-bit sRGB
    colours and the default bins) are compared with every centre. Exact ties (a colour
    halfway between two centres) are rounded half to even.
    """
    cells = torch.round(centers / grid)
    if not torch.allclose(cells * grid, centers):
        return torch.cdist(ab, centers).argmin(dim=1)
    cells = cells.long()
    low = cells.min(dim=0).values
    span = cells.max(dim=0).values - low + 1
    table = torch.full((int(span[0]), int(span[1])), -1, dtype=torch.long)
    table[cells[:, 0] - low[0], cells[:, 1] - low[1]] = torch.arange(len(centers))
    pixel = torch.round(ab / grid).long() - low
    inside = ((pixel >= 0) & (pixel < span)).all(dim=1)
    index = torch.full((len(ab),), -1, dtype=torch.long)
    index[inside] = table[pixel[inside, 0], pixel[inside, 1]]
    missing = index < 0
    if missing.any():
        index[missing] = torch.cdist(ab[missing], centers).argmin(dim=1)
    return index


def histogram_intersection(h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``sum_q min(h_q, g_q)`` of normalised histograms ``... x Q``: in [0, 1], 1 when equal."""
    if h.shape != g.shape:
        raise SSCNError(f"histogram_intersection: shapes differ ({tuple(h.shape)} vs {tuple(g.shape)})")
    return torch.minimum(h, g).sum(dim=-1)


def palette_similarity(result: torch.Tensor, reference: torch.Tensor, bins=None) -> torch.Tensor:
    """How much of the reference's palette the result uses: the intersection of their ab histograms.

    ``result``, ``reference``: sRGB pictures as for :func:`colourfulness`, the same batch
    size, any (even different) sizes. Returns one value in [0, 1] per image.
    """
    if result.dim() != reference.dim() or (result.dim() == 4 and result.shape[0] != reference.shape[0]):
        raise SSCNError(f"palette_similarity: result {tuple(result.shape)} and reference {tuple(reference.shape)} "
                        "need the same number of images")
    return histogram_intersection(ab_histogram(result, bins), ab_histogram(reference, bins))
