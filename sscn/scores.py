"""The evaluation's scores on 8-bit RGB (paper, Sec. 4.1): PSNR, SSIM and PSNR of the ab
channels alone. Their definitions: ``docs/evaluation.md``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .color import AB_SCALE, rgb_to_lab
from .errors import SSCNError


AB_DATA_RANGE = 2 * AB_SCALE  # 220 Lab units


SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the 8-bit picture a file would hold (clipped, rounded), as ``uint8``.

    ``uint8`` input is returned unchanged.
    """
    if rgb.dtype == torch.uint8:
        return rgb
    return (rgb.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def _pair(a: torch.Tensor, b: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``B x 3 x H x W`` (or ``3 x H x W``) pictures -> 8-bit values as float64, batched."""
    if a.shape != b.shape:
        raise SSCNError(f"{name}: the two images differ in shape ({tuple(a.shape)} vs {tuple(b.shape)}); resize one")
    if a.dim() == 3:
        a, b = a[None], b[None]
    if a.dim() != 4:
        raise SSCNError(f"{name}: expected B x C x H x W or C x H x W images, got shape {tuple(a.shape)}")
    return to_uint8(a).double().cpu(), to_uint8(b).double().cpu()


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    # peak^2 / 0 is inf in torch (no warning): identical images score inf, as they should
    return 10 * torch.log10(data_range**2 / mse)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of 8-bit RGB pictures, one value per image (``B``; a 0-d tensor for one image).

    ``a``, ``b``: ``B x 3 x H x W`` sRGB in [0, 1] (quantised to 8 bits first) or ``uint8``.
    ``10 log10(255^2 / MSE)``, MSE over channels and pixels; ``inf`` when identical.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "psnr")
    out = _psnr_from_mse(((a - b) ** 2).mean(dim=(1, 2, 3)), 255.0)
    return out[0] if single else out


def psnr_ab(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of the a, b channels alone (data range 220 Lab units), per image.

    ``a``, ``b``: sRGB pictures as for :func:`psnr`; both are quantised to 8 bits and
    converted to Lab, so a method is judged on the colours its file would show.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "psnr_ab")
    ab_a, ab_b = rgb_to_lab(a / 255)[:, 1:], rgb_to_lab(b / 255)[:, 1:]
    out = _psnr_from_mse(((ab_a - ab_b) ** 2).mean(dim=(1, 2, 3)), AB_DATA_RANGE)
    return out[0] if single else out


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> torch.Tensor:
    """The 1-D Gaussian of ``scipy.ndimage.gaussian_filter``: radius ``int(truncate sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of 8-bit RGB pictures, one value per image.

    ``a``, ``b``: as for :func:`psnr`. Per channel,
    ``SSIM = (2 mu_a mu_b + C1)(2 cov_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))``
    with ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, local statistics under an 11 x 11 Gaussian
    window (sigma 1.5, population covariance), averaged over the pixels at least 5 px from
    the border (as skimage crops) and over the channels.
    """
    single = a.dim() == 3
    a, b = _pair(a, b, "ssim")
    g = gaussian_window()
    if min(a.shape[-2:]) < g.numel():
        raise SSCNError(f"ssim: images must be at least {g.numel()} px on each side (got {tuple(a.shape[-2:])})")
    channels = a.shape[1]
    # float32 filtering is ~7x faster on CPU than float64; centring the values first keeps
    # var = E[x^2] - E[x]^2 free of cancellation (variances are shift-invariant)
    centre = data_range / 2
    a, b, g = (a - centre).float(), (b - centre).float(), g.float()
    stats = torch.cat((a, b, a * a, b * b, a * b), dim=1)  # B x 5C x H x W
    # the window is separable; 'valid' filtering keeps exactly the pixels skimage averages
    stats = F.conv2d(stats, g.view(1, 1, 1, -1).expand(5 * channels, 1, 1, -1), groups=5 * channels)
    stats = F.conv2d(stats, g.view(1, 1, -1, 1).expand(5 * channels, 1, -1, 1), groups=5 * channels)
    mu_a, mu_b, aa, bb, ab = stats.double().split(channels, dim=1)
    var_a, var_b, cov = aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b
    mu_a, mu_b = mu_a + centre, mu_b + centre
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    out = s.mean(dim=(1, 2, 3))
    return out[0] if single else out


METRICS = {"psnr": psnr, "ssim": ssim, "psnr_ab": psnr_ab}  # name -> per-image metric on sRGB pictures
