"""The five training losses and their weighted sum (paper, Sec. 3.3, Formulas 4-6).

All ab tensors are normalised (``ab / 110``), ``B x 2 x H x W``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..bins import ABBins, default_bins
from ..models.ldt import resize


@dataclass
class LossWeights:
    """The paper's weights (Formula 6)."""

    coarse: float = 100.0
    fine: float = 100.0
    cls: float = 0.1
    hist: float = 1.0
    tv: float = 10.0


def smooth_l1(pred_ab: torch.Tensor, true_ab: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Formula 4. Smooth-L1 (Huber, beta 1/110: quadratic below one ab unit) averaged over pixels.

    L1-like for large errors, so a pixel with several plausible colours is not pulled to
    their gray average as strongly as L2 would pull it. ``weight``: optional ``B`` weights
    of the images (see :func:`sscn_loss`).
    """
    if weight is None:
        return F.smooth_l1_loss(pred_ab, true_ab, beta=1 / 110)
    return _weighted(F.smooth_l1_loss(pred_ab, true_ab, beta=1 / 110, reduction="none"), weight)


def _weighted(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each image's mean, weighted, averaged over the batch: all-ones weights give the plain mean."""
    return (values.flatten(1).mean(1) * weight.to(values)).mean()


def histogram_loss(hist_logits: torch.Tensor, true_ab: torch.Tensor, bins: ABBins | None = None,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Formula 5: cross-entropy between the predicted bin distribution ``B x Q x h x w`` and the
    soft-encoded ground truth (ab averaged down to ``h x w``); ``weight`` as for :func:`smooth_l1`."""
    bins = bins or default_bins()
    with torch.no_grad():
        target = bins.encode(resize(true_ab.float(), hist_logits.shape[-2:]))
    log_probs = F.log_softmax(hist_logits.float(), dim=1)
    cross_entropy = -(target * log_probs).sum(1)
    return cross_entropy.mean() if weight is None else _weighted(cross_entropy, weight)


def total_variation(ab: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels."""
    return (ab[..., 1:, :] - ab[..., :-1, :]).abs().mean() + (ab[..., :, 1:] - ab[..., :, :-1]).abs().mean()


def sscn_loss(output, true_ab: torch.Tensor, labels: torch.Tensor, weights: LossWeights | None = None, bins=None,
              colour_weight: torch.Tensor | None = None):
    """Formula 6. Returns (total, dict of each unweighted term as a float tensor).

    ``colour_weight``: optional ``B`` weights for the three terms that read the target's own
    colours (coarse, fine, histogram); 0 leaves an image out of them (a pair whose reference
    is another photo, scored by :mod:`sscn.training.contextual` instead), and an image counts as
    much as in an unweighted batch.
    """
    w = weights or LossWeights()
    terms = {
        "coarse": smooth_l1(output.ab_coarse.float(), true_ab, colour_weight),
        "fine": smooth_l1(output.ab_fine.float(), true_ab, colour_weight),
        "cls": F.cross_entropy(output.class_logits.float(), labels),
        "hist": histogram_loss(output.hist_logits, true_ab, bins, colour_weight),
        "tv": total_variation(output.ab_fine.float()),
    }
    total = sum(getattr(w, name) * value for name, value in terms.items())
    return total, terms
