"""Contextual loss (Mechrez et al. 2018) on the pre-stage encoder's features.

Pairs whose reference is another photo need a loss that does not read the target's own
colours: He et al. 2018 (Deep Exemplar-based Colorization) train them with a perceptual
loss alone, no chrominance loss; Zhang et al. 2019 (Deep Exemplar-based Video Colorization)
use this contextual loss, which asks the result to carry the reference's colours wherever
its content matches, in whatever place. An L1 against the target's own colours cannot ask for that (it
rewards colours the reference may not have), so the loss compares feature *sets*: each
reference feature should have a close result feature, regardless of position. Here the
features come from the project's own pre-stage classifier (``sscn pretrain``, trained on
colour and gray photos), never from downloaded VGG weights; notebook 06 shows that they
see hue far more than saturation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..color import join_lab, lab_norm_to_rgb

BANDWIDTH = 0.1  # h of Mechrez et al.'s Eq. 3
LEVELS = (3, 4, 5)  # 32, 16 and 8 px maps at 128 px; level 2 would need 4,096^2 distances per image


def contextual_similarity(x: torch.Tensor, y: torch.Tensor, h: float = BANDWIDTH) -> torch.Tensor:
    """CX(X, Y) of Mechrez et al. 2018 (Eq. 1-4) for ``B x C x N`` and ``B x C x M`` features -> ``B``.

    Distances are cosine distances after centring both sets on the mean of Y; each row is
    normalised by its nearest distance, so a feature counts as matched when one reference
    feature is much closer than the others. 1 when every y has its own identical x.
    """
    mu = y.mean(dim=2, keepdim=True)
    x, y = F.normalize(x - mu, dim=1), F.normalize(y - mu, dim=1)
    distance = (1 - torch.einsum("bci,bcj->bij", x, y)).clamp_min(0)  # B x N x M
    relative = distance / (distance.min(dim=2, keepdim=True).values + 1e-5)
    weight = torch.exp((1 - relative) / h)
    cx = weight / weight.sum(dim=2, keepdim=True)
    return cx.max(dim=1).values.mean(dim=1)


def contextual_loss(x: torch.Tensor, y: torch.Tensor, h: float = BANDWIDTH) -> torch.Tensor:
    """-log CX(X, Y) averaged over the batch (Mechrez et al.'s Eq. 5); ``B x C x H x W`` maps."""
    cx = contextual_similarity(x.flatten(2), y.flatten(2), h)
    return -torch.log(cx.clamp_min(1e-6)).mean()


def reference_contextual_loss(encoder, gray_l: torch.Tensor, ab: torch.Tensor, ref_lab: torch.Tensor,
                              levels: tuple[int, ...] = LEVELS) -> torch.Tensor:
    """The result (``gray_l`` with predicted ``ab``) against its reference, through a frozen
    ``encoder`` (levels counted from 1), averaged over ``levels``. Gradients reach ``ab`` only."""
    deepest = max(levels)
    with torch.no_grad():
        wanted = encoder(lab_norm_to_rgb(ref_lab.float()), deepest)
    got = encoder(lab_norm_to_rgb(join_lab(gray_l.float(), ab.float())), deepest)
    return sum(contextual_loss(got[n - 1], wanted[n - 1]) for n in levels) / len(levels)
