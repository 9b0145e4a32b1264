"""Global Color Transfer (GCT), the coarse stage (paper, Sec. 3.1, Formula 1).

The gray target is encoded by VGG19-style sub-layers; a symmetric decoder with AdaIN
after its conv layers paints it with the reference's global colour style
``y = (y_s, y_b)``, which an MLP reads off the last level of the reference features.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .adain import adain, channel_stats
from .encoder import VGGEncoder


class StyleMLP(nn.Module):
    """Last reference level ``B x C5 x h x w`` -> AdaIN scales and biases for each decoder conv.

    The level is summarised by its per-channel mean and std (the statistics AdaIN speaks in).
    """

    def __init__(self, in_channels: int, out_channels: list[int], hidden: int = 256):
        super().__init__()
        self.out_channels = out_channels
        self.net = nn.Sequential(
            nn.Linear(2 * in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * sum(out_channels))
        )
        nn.init.zeros_(self.net[-1].weight)  # start as plain instance norm: scale 1, bias 0
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, ref_top: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        mean, std = channel_stats(ref_top)
        y = self.net(torch.cat((mean, std), 1).flatten(1))
        scales, biases = y.split(sum(self.out_channels), dim=1)
        return [(1 + s, b) for s, b in zip(scales.split(self.out_channels, 1), biases.split(self.out_channels, 1))]


class AdaINBlock(nn.Module):
    """Upsample x2, join the encoder skip, then two conv + AdaIN + ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.adain_channels = [out_channels, out_channels]

    def forward(self, x, skip, styles):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = F.relu(adain(self.conv1(torch.cat((x, skip), 1)), *styles[0]))
        return F.relu(adain(self.conv2(x), *styles[1]))


class GlobalColorTransfer(nn.Module):
    """Coarse stage. ``forward(gray_l B x 1 x H x W, ref_top B x C5 x H/16 x W/16) -> ab_coarse B x 2 x H x W``."""

    def __init__(self, width: float, ref_channels: int, norm: str = "none"):
        super().__init__()
        self.encoder = VGGEncoder(width, levels=4, norm=norm)
        c1, c2, c3, c4 = self.encoder.channels
        self.blocks = nn.ModuleList([AdaINBlock(c4, c3, c3), AdaINBlock(c3, c2, c2), AdaINBlock(c2, c1, c1)])
        self.style = StyleMLP(ref_channels, [c for b in self.blocks for c in b.adain_channels])
        self.head = nn.Conv2d(c1, 2, 3, padding=1)

    def forward(self, gray_l: torch.Tensor, ref_top: torch.Tensor) -> torch.Tensor:
        # L in [-1, 1] -> a gray sRGB-like picture in [0, 1] for the VGG-style encoder
        f1, f2, f3, f4 = self.encoder(((gray_l + 1) / 2).expand(-1, 3, -1, -1))
        styles = self.style(ref_top)
        x = f4
        for i, (block, skip) in enumerate(zip(self.blocks, (f3, f2, f1))):
            x = block(x, skip, styles[2 * i : 2 * i + 2])
        return torch.tanh(self.head(x))
