"""Colorize any photo: the network at a working size, the colours joined to the full-size L.

The network sees the target at the working size (long side ``size``, both sides
multiples of 16); its ab is upsampled to the input's full size and joined to the
target's own full-resolution L, so every detail of the input is kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import join_lab, lab_norm_to_rgb, rgb_to_lab_norm, split_lab
from .errors import SSCNError
from .models import SSCN
from .models.sscn import MULTIPLE

GRAY_CHROMA = 2.0  # mean ab chroma (Lab units) below which a reference has no colour to give


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The network's input size: long side ``size``, aspect kept, each side a multiple of 16 (>= 32)."""
    if size < 2 * MULTIPLE or size % MULTIPLE:
        raise SSCNError(f"--size must be a multiple of {MULTIPLE} and at least {2 * MULTIPLE} (got {size})")
    scale = size / max(height, width)
    snap = lambda v: max(2 * MULTIPLE, int(round(v * scale / MULTIPLE)) * MULTIPLE)  # noqa: E731
    return snap(height), snap(width)


def chroma(lab_norm: torch.Tensor) -> float:
    """Mean ab chroma in Lab units of a normalised Lab image."""
    return float((lab_norm[..., 1:, :, :] * 110).norm(dim=-3).mean())


def check_reference(ref_lab: torch.Tensor) -> None:
    if chroma(ref_lab) < GRAY_CHROMA:
        raise SSCNError(
            "the reference photo has no colour (it is gray), so there is nothing to transfer; "
            "choose a colour reference"
        )


@dataclass
class Colorized:
    rgb: torch.Tensor  # 3 x H x W in [0, 1], the input's full size
    coarse_rgb: torch.Tensor  # 3 x h x w at the working size (the GCT stage alone)
    fine_rgb: torch.Tensor  # 3 x h x w at the working size


@torch.inference_mode()
def colorize(
    model: SSCN,
    target_rgb: torch.Tensor,
    ref_rgb: torch.Tensor,
    size: int = 256,
    k: int | None = None,
    r: int | None = None,
    dense: bool | None = None,
    seed: int = 0,
) -> Colorized:
    """``target_rgb``, ``ref_rgb``: ``3 x H x W`` in [0, 1] (a colour target is made gray first)."""
    device = next(model.parameters()).device
    full_l = split_lab(rgb_to_lab_norm(target_rgb.to(device)))[0][None]
    ref_lab = rgb_to_lab_norm(ref_rgb.to(device))[None]
    check_reference(ref_lab)
    h, w = working_shape(*full_l.shape[-2:], size)
    small_l = F.interpolate(full_l, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    rh, rw = working_shape(*ref_lab.shape[-2:], size)
    small_ref = F.interpolate(ref_lab, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
    out = model(small_l, small_ref, k=k, r=r, dense=dense, seed=seed)
    ab = F.interpolate(out.ab_fine, size=full_l.shape[-2:], mode="bilinear", align_corners=False)
    rgb = lab_norm_to_rgb(join_lab(full_l, ab))[0]
    return Colorized(
        rgb=rgb.cpu(),
        coarse_rgb=lab_norm_to_rgb(join_lab(small_l, out.ab_coarse))[0].cpu(),
        fine_rgb=lab_norm_to_rgb(join_lab(small_l, out.ab_fine))[0].cpu(),
    )


def save_image(rgb: torch.Tensor, path, quality: int = 95) -> None:
    """Write ``3 x H x W`` in [0, 1] as 8-bit PNG or JPEG (by the suffix)."""
    from pathlib import Path

    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
        raise SSCNError(f"output {path} must end in .png, .jpg, .jpeg, .webp, .tif or .bmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    options = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    Image.fromarray(array).save(path, **options)
