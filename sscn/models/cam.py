"""The CAM classifier (paper, Sec. 3.2): which reference positions carry its semantics.

Level 5 of the reference features -> global average pooling -> a linear classifier
(trained with cross-entropy on the image's class). The class activation map
``CAM_c = sum_k w_{c,k} F5_k`` (Zhou et al. 2016) of the true class (training) or the
predicted one (inference), resized to ``H/4 x W/4`` and flattened, ranks the
reference tokens for the semantic-sparse selection.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def class_activation_map(fc: nn.Linear, feats: torch.Tensor, cls: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``CAM_c = sum_k w_{c,k} F_k`` of class ``cls`` (``B``) for the linear head ``fc`` over pooled
    ``feats`` (``B x C x h x w``), resized bilinearly to ``size``: ``B x H x W``, unnormalised."""
    cam = torch.einsum("bc,bchw->bhw", fc.weight[cls], feats)[:, None]
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]


class CAMClassifier(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, feats5: torch.Tensor, token_hw: tuple[int, int], labels: torch.Tensor | None = None):
        """``feats5``: ``B x C x h x w``. Returns (class logits ``B x num_classes``,
        CAM ``B x (H/4 * W/4)`` scaled to [0, 1] per image)."""
        logits = self.fc(feats5.mean(dim=(2, 3)))
        cls = logits.argmax(1) if labels is None else labels
        cam = class_activation_map(self.fc, feats5, cls, token_hw).flatten(1)
        low, high = cam.amin(1, keepdim=True), cam.amax(1, keepdim=True)
        return logits, (cam - low) / (high - low).clamp(min=1e-6)
