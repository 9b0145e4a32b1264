"""The protocol's pairs: each photo's seeded reference of one kind (TPS, RR, RC; paper
Sec. 4.2), batched as a :class:`Case`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..color import rgb_to_lab_norm, split_lab


# a method: (gray_l B x 1 x H x W, ref_lab B x 3 x H x W) -> ab B x 2 x H x W, normalised as in sscn.color
Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SEED_STRIDE = 1_000_003  # a prime larger than any dataset, so (seed, index) pairs never collide


def reference_seed(seed: int, index: int) -> int:
    """The seed of photo ``index``'s references: ``seed * 1_000_003 + index``."""
    return seed * SEED_STRIDE + index


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
    from ..augment import make_reference

    refs, seeds = [], []
    for index, _, rgb in photos:
        seeds.append(reference_seed(seed, index))
        refs.append(make_reference(rgb, kind, seeds[-1]).image.clamp(0, 1))
    truth = torch.stack([rgb for _, _, rgb in photos])
    reference = torch.stack(refs)
    gray_l = split_lab(rgb_to_lab_norm(truth))[0]
    indices, names = [p[0] for p in photos], [p[1] for p in photos]
    return Case(kind, indices, names, seeds, gray_l, rgb_to_lab_norm(reference), reference, truth)
