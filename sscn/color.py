"""sRGB <-> CIE Lab (D65, 2 degree observer) in torch, and the network's normalisation.

Every function takes and returns ``B x 3 x H x W`` (or ``3 x H x W``) tensors, works on
any device and float dtype, and is differentiable. The constants are the ones
scikit-image uses, so ``rgb_to_lab`` agrees with ``skimage.color.rgb2lab``.

The network sees Lab normalised as ``L / 50 - 1`` and ``ab / 110`` (DESIGN, "Inputs"),
so L and ab both live roughly in [-1, 1].
"""
from __future__ import annotations

import torch

from .errors import SSCNError

# sRGB primaries -> CIE XYZ (the matrix skimage.color uses), and the D65 white point.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
WHITE_D65 = (0.95047, 1.0, 1.08883)
L_SCALE, AB_SCALE = 50.0, 110.0

_EPSILON = 0.008856  # (6/29)^3: below it the cube root is replaced by a line
_KAPPA = 7.787  # slope of that line, 1/3 (29/6)^2


def _check_image(x: torch.Tensor, name: str, what: str) -> None:
    """Raise early, naming the input, when ``x`` is not a float ``... x 3 x H x W`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise SSCNError(f"{name} expects a torch.Tensor ({what}), got {type(x).__name__}")
    if not x.is_floating_point():
        raise SSCNError(f"{name} expects a float tensor ({what}), got {x.dtype}; for 8-bit images use x.float() / 255")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise SSCNError(f"{name} expects {what} shaped B x 3 x H x W or 3 x H x W, got {tuple(x.shape)}")


def _matrix(rows, like: torch.Tensor, invert: bool = False) -> torch.Tensor:
    m = torch.tensor(rows, dtype=torch.float64)
    if invert:
        m = torch.linalg.inv(m)
    return m.to(device=like.device, dtype=like.dtype)


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply the channel axis (dim -3) of ``x`` by a 3 x 3 matrix."""
    return torch.einsum("ij,...jhw->...ihw", matrix, x)


def _white(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(WHITE_D65, dtype=like.dtype, device=like.device).view(3, 1, 1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    # clamp inside pow so the unused branch of torch.where never yields NaN gradients
    high = ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    high = 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(linear > 0.0031308, high, linear * 12.92)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (``... x 3 x H x W``) -> Lab with L in [0, 100], a and b in about [-128, 127]."""
    _check_image(rgb, "rgb_to_lab", "sRGB in [0, 1]")
    xyz = _apply(_matrix(XYZ_FROM_RGB, rgb), srgb_to_linear(rgb)) / _white(rgb)
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (``... x 3 x H x W``) -> sRGB clipped to [0, 1]; out-of-gamut colours clip, never NaN."""
    _check_image(lab, "lab_to_rgb", "Lab with L in [0, 100]")
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    # a negative fz has no real colour; skimage clips it to 0 as well
    f = torch.stack((fy + a / 500, fy, (fy - b / 200).clamp(min=0)), dim=-3)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.2068966) ** 3, (f - 16 / 116) / _KAPPA) * _white(lab)
    linear = _apply(_matrix(XYZ_FROM_RGB, lab, invert=True), xyz)
    return linear_to_srgb(linear.clamp(min=0)).clamp(0, 1)


def normalize_lab(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> the network's scale: ``L / 50 - 1`` and ``ab / 110``."""
    _check_image(lab, "normalize_lab", "Lab with L in [0, 100]")
    L, ab = lab[..., :1, :, :], lab[..., 1:, :, :]
    return torch.cat((L / L_SCALE - 1, ab / AB_SCALE), dim=-3)


def denormalize_lab(lab_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_lab`."""
    _check_image(lab_norm, "denormalize_lab", "normalised Lab")
    L, ab = lab_norm[..., :1, :, :], lab_norm[..., 1:, :, :]
    return torch.cat(((L + 1) * L_SCALE, ab * AB_SCALE), dim=-3)


def rgb_to_lab_norm(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> normalised Lab (``... x 3 x H x W``)."""
    return normalize_lab(rgb_to_lab(rgb))


def lab_norm_to_rgb(lab_norm: torch.Tensor) -> torch.Tensor:
    """Normalised Lab -> sRGB in [0, 1]."""
    return lab_to_rgb(denormalize_lab(lab_norm))


def split_lab(lab_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised Lab -> (gray_l ``... x 1 x H x W``, ab ``... x 2 x H x W``)."""
    return lab_norm[..., :1, :, :], lab_norm[..., 1:, :, :]


def join_lab(gray_l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(gray_l, ab) in the network's scale -> normalised Lab."""
    return torch.cat((gray_l, ab), dim=-3)


def rgb_to_gray_l(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB -> the normalised L channel ``... x 1 x H x W`` (the network's gray input)."""
    return split_lab(rgb_to_lab_norm(rgb))[0]


def gray_l_to_rgb(gray_l: torch.Tensor) -> torch.Tensor:
    """Normalised L -> a gray sRGB picture (ab = 0), for display."""
    return lab_norm_to_rgb(join_lab(gray_l, torch.zeros_like(gray_l).expand_as(torch.cat((gray_l, gray_l), -3))))
