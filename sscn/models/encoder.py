"""The reference encoder E: VGG19's layout from conv1_1 to conv5_4 with a width multiplier.

``E(rgb)`` returns the multi-level features ``F = [relu1_1, relu2_1, relu3_1, relu4_1,
relu5_1(, relu5_4)]`` at strides 1, 2, 4, 8, 16 (, 16) (paper, Sec. 3: the encoder shared
by the reference and the coarse image). The paper's reference encoder has six levels and
reads its style vector from the last and its CAM from the fifth; ``levels=6`` adds
conv5_2..conv5_4 as that sixth level. ``norm="batch"`` puts a batch norm after every
convolution (torchvision's ``vgg19_bn`` layout), which lets the encoder learn from
scratch. At ``width=1, norm="none"`` the layers sit at the same indices as
``torchvision.models.vgg19().features``, so ImageNet weights load one to one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SSCNError

# VGG19 up to conv5_4: channel counts, "M" for max-pool (torchvision's cfg "E")
VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
# the conv (0-based, counting convolutions only) whose ReLU each level taps:
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1, relu5_4
TAP_CONVS = (0, 2, 4, 8, 12, 15)
# indices in the plain (norm="none") Sequential of relu1_1 .. relu5_1, as in torchvision's vgg19
TAPS = (1, 6, 11, 20, 29)
NORMS = ("none", "batch")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width)))


def level_channels(width: float, levels: int = 5) -> list[int]:
    return [scaled(c, width) for c in (64, 128, 256, 512, 512, 512)][:levels]


class VGGEncoder(nn.Module):
    """VGG19 conv1_1 .. relu5_1 (or relu5_4). Input: sRGB ``B x 3 x H x W`` in [0, 1] (normalised inside).

    Output: list of ``levels`` feature maps with ``level_channels(width, levels)``
    channels at strides 1, 2, 4, 8, 16 (and 16 for the sixth level).
    """

    def __init__(self, width: float = 1.0, levels: int = 5, norm: str = "none"):
        super().__init__()
        if not 1 <= levels <= 6:
            raise SSCNError(f"the encoder has 1 to 6 levels (got {levels})")
        if norm not in NORMS:
            raise SSCNError(f"encoder norm must be one of {NORMS} (got {norm!r})")
        layers: list[nn.Module] = []
        taps: list[int] = []
        channels, conv_index = 3, 0
        for item in VGG19_LAYOUT:
            if conv_index > TAP_CONVS[levels - 1]:
                break  # ``levels=4`` stops at relu4_1 (stride 8)
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            out = scaled(item, width)
            layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            if conv_index in TAP_CONVS:
                taps.append(len(layers) - 1)
            channels, conv_index = out, conv_index + 1
        self.features = nn.Sequential(*layers)
        self.taps = tuple(taps)
        self.width, self.norm, self.levels = width, norm, levels
        self.channels = level_channels(width, levels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor, levels: int | None = None) -> list[torch.Tensor]:
        """The first ``levels`` feature maps (all by default); the layers after the last one asked for do not run."""
        levels = self.levels if levels is None else levels
        x = (rgb - self.mean) / self.std
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
                if len(feats) == levels:
                    break
        return feats

    def load_vgg19(self, source: str | Path | None = None) -> None:
        """Load ImageNet VGG19 weights (width 1, no batch norm only).

        ``source``: a path to a state dict of ``torchvision.models.vgg19`` (its
        ``features.N.*`` keys, or a whole-model state dict), or ``None`` for
        torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (downloaded by torchvision).
        """
        if self.width != 1.0:
            raise SSCNError(f"VGG19 weights exist only at width 1.0, this encoder has width {self.width}")
        if self.norm != "none":
            raise SSCNError("torchvision's VGG19 weights have no batch norm; build the encoder with norm='none'")
        if source is None:
            from torchvision.models import VGG19_Weights

            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
        else:
            from ..io.checkpoints import load_file

            path = Path(source)
            if not path.is_file():
                raise SSCNError(f"VGG19 weights file not found: {path}; pass a state dict saved from torchvision.models.vgg19")
            state = load_file(path, "VGG19 weights file")
        self.features.load_state_dict(self._vgg19_features(state, str(source or "torchvision's VGG19")))

    def _vgg19_features(self, state, source: str) -> dict:
        """This encoder's layers from a torchvision vgg19 state dict, checked as a checkpoint's weights are."""
        from ..io.checkpoints import check_tensors

        hint = "pass a state dict saved from torchvision.models.vgg19 (torch.save(model.state_dict(), path))"
        if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
            raise SSCNError(f"VGG19 weights {source} are a {type(state).__name__}, not a state dict of tensors; {hint}")
        wanted = self.features.state_dict()
        mine = {}
        for key, value in state.items():
            name = key.removeprefix("features.")
            if (name != key or key[:1].isdigit()) and name in wanted:
                mine[name] = value
        missing = set(wanted) - set(mine)
        if missing:
            raise SSCNError(f"VGG19 state dict {source} lacks {sorted(missing)[:4]}...; {hint}")
        check_tensors(mine, wanted, source, "weights", hint)
        return mine
