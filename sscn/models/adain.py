"""Adaptive instance normalisation, the paper's Formula 1.

``AdaIN(x_i, y) = y_s,i * (x_i - mu(x_i)) / sigma(x_i) + y_b,i``, per sample and channel.
"""
from __future__ import annotations

import torch

EPS = 1e-5


def channel_stats(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std of ``B x C x H x W`` -> two ``B x C x 1 x 1``."""
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def adain(x: torch.Tensor, style_scale: torch.Tensor, style_bias: torch.Tensor) -> torch.Tensor:
    """Formula 1. ``x``: ``B x C x H x W``; ``style_scale``, ``style_bias``: ``B x C``."""
    mean, std = channel_stats(x)
    return style_scale[..., None, None] * (x - mean) / std + style_bias[..., None, None]
