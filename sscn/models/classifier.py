"""The pre-stage classifier: the reference encoder E with a linear head on pooled level 5
(the CAM's, paper Sec. 3.2) and one on level 6 (the style vector's).
"""
from __future__ import annotations

import torch
from torch import nn

from .encoder import VGGEncoder


class EncoderClassifier(nn.Module):
    """E with a linear head on pooled level 5 (the CAM's) and one on pooled level 6 (the style's).

    ``forward(rgb B x 3 x H x W in [0, 1]) -> (logits5, logits6)``, each ``B x num_classes``.
    """

    def __init__(self, width: float, norm: str, num_classes: int):
        super().__init__()
        self.encoder = VGGEncoder(width, levels=6, norm=norm)
        c5, c6 = self.encoder.channels[4:6]
        self.fc5 = nn.Linear(c5, num_classes)
        self.fc6 = nn.Linear(c6, num_classes)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f5, f6 = self.encoder(rgb)[4:6]
        return self.fc5(f5.mean(dim=(2, 3))), self.fc6(f6.mean(dim=(2, 3)))


def optimizer_groups(model: EncoderClassifier) -> list[list[nn.Parameter]]:
    """AdamW's two groups: weights (decayed), then biases and batch-norm scales (not decayed)."""
    return [[p for p in model.parameters() if p.ndim > 1], [p for p in model.parameters() if p.ndim <= 1]]
