"""The reference encoder E: VGG19's layout from conv1_1 to conv5_1 with a width multiplier.

``E(rgb)`` returns the multi-level features ``F = [relu1_1, relu2_1, relu3_1, relu4_1,
relu5_1]`` at strides 1, 2, 4, 8, 16 (paper, Sec. 3: the encoder shared by the
reference and the coarse image). At ``width=1`` the layers sit at the same indices as
``torchvision.models.vgg19().features``, so ImageNet weights load one to one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SSCNError

# VGG19 up to conv5_1: channel counts, "M" for max-pool (torchvision's cfg "E")
VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
# indices (in the Sequential) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
TAPS = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width)))


class VGGEncoder(nn.Module):
    """VGG19 conv1_1 .. relu5_1. Input: sRGB ``B x 3 x H x W`` in [0, 1] (normalised inside).

    Output: list of ``levels`` feature maps with ``scaled([64, 128, 256, 512, 512], width)``
    channels at strides 1, 2, 4, 8, 16.
    """

    def __init__(self, width: float = 1.0, levels: int = 5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = scaled(item, width)
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
                channels = out
        # keep layers up to the last tapped ReLU: ``levels=4`` stops at relu4_1 (stride 8)
        self.features = nn.Sequential(*layers[: TAPS[levels - 1] + 1])
        self.width = width
        self.channels = [scaled(c, width) for c in (64, 128, 256, 512, 512)][:levels]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb - self.mean) / self.std
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                feats.append(x)
        return feats

    def load_vgg19(self, source: str | Path | None = None) -> None:
        """Load ImageNet VGG19 weights (width 1 only).

        ``source``: a path to a state dict of ``torchvision.models.vgg19`` (its
        ``features.N.*`` keys, or a whole-model state dict), or ``None`` for
        torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (downloaded by torchvision).
        """
        if self.width != 1.0:
            raise SSCNError(f"VGG19 weights exist only at width 1.0, this encoder has width {self.width}")
        if source is None:
            from torchvision.models import VGG19_Weights

            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
        else:
            path = Path(source)
            if not path.is_file():
                raise SSCNError(f"VGG19 weights file not found: {path}; pass a state dict saved from torchvision.models.vgg19")
            state = torch.load(path, map_location="cpu", weights_only=True)
        mine = {}
        for key, value in state.items():
            name = key.removeprefix("features.")
            if name != key or key[0].isdigit():
                index = int(name.split(".")[0])
                if index < len(self.features):
                    mine[name] = value
        missing = set(self.features.state_dict()) - set(mine)
        if missing:
            raise SSCNError(f"VGG19 state dict lacks {sorted(missing)[:4]}...; is it a torchvision vgg19 state dict?")
        self.features.load_state_dict(mine)
