"""The methods scored beside SSCN: gray, copy, mean ab (Reinhard et al. 2001), luminance
match (Welsh et al. 2002), and the network's coarse, sparse and dense results.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F

from ..errors import SSCNError
from .cases import Method


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
            methods[name] = network_method(model, coarse_only=True)
        elif name == "sparse":
            methods[name] = network_method(model, dense=False, k=k, r=r, seed=seed)
        elif name == "dense":
            methods[name] = network_method(model, dense=True)
        else:
            raise SSCNError(f"unknown network method {name!r}; choose from coarse, sparse, dense")
    return methods


def network_method(model: torch.nn.Module, coarse_only: bool = False, **options) -> Method:
    def method(gray_l: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(gray_l.to(device), ref_lab.to(device), coarse_only=coarse_only, **options)
        return (out.ab_coarse if coarse_only else out.ab_fine).float().cpu()

    return method
