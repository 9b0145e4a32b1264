"""Local Details Transfer (LDT), the fine stage (paper, Sec. 3.2).

The coarse image's features (levels 1-4 of ``E(I_c)``) and the attended reference
features (Formula 3) are fused at several scales in a U-Net decoder, which predicts
the final ab and the logits of a distribution over the Q ab bins (used by the
histogram loss, Formula 5).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if x.shape[-2:] == tuple(size):
        return x
    if x.shape[-1] > size[-1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class LDTDecoder(nn.Module):
    """``forward(feats [l1..l4] of E(I_c), attended B x A x H/4 x W/4, gray_l, ab_coarse)``
    -> (ab_fine ``B x 2 x H x W``, hist_logits ``B x Q x H/4 x W/4``)."""

    def __init__(self, enc_channels: list[int], attended_channels: int, num_bins: int):
        super().__init__()
        c1, c2, c3, c4 = enc_channels[:4]
        a = attended_channels
        self.fuse8 = conv_block(c4 + a, c4)
        self.fuse4 = conv_block(c4 + c3 + a, c3)
        self.fuse2 = conv_block(c3 + c2 + a, c2)
        self.fuse1 = conv_block(c2 + c1 + a, c1)
        self.hist_head = nn.Conv2d(c3, num_bins, 1)
        # the head also sees L, the coarse ab and the warped reference ab at full size
        self.ab_head = nn.Sequential(nn.Conv2d(c1 + 1 + 2 + 2, c1, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c1, 2, 3, padding=1))

    def forward(self, feats, attended, gray_l, ab_coarse):
        l1, l2, l3, l4 = feats[:4]
        x = self.fuse8(torch.cat((l4, resize(attended, l4.shape[-2:])), 1))
        x = self.fuse4(torch.cat((resize(x, l3.shape[-2:]), l3, attended), 1))
        hist_logits = self.hist_head(x)
        x = self.fuse2(torch.cat((resize(x, l2.shape[-2:]), l2, resize(attended, l2.shape[-2:])), 1))
        x = self.fuse1(torch.cat((resize(x, l1.shape[-2:]), l1, resize(attended, l1.shape[-2:])), 1))
        warped_ab = resize(attended[:, -2:], l1.shape[-2:])
        ab_fine = torch.tanh(self.ab_head(torch.cat((x, gray_l, ab_coarse, warped_ab), 1)))
        return ab_fine, hist_logits
