"""Self-augmentation: thin-plate-spline (TPS) warps, random rotation and random crop.

The training pair of SSCN is a photo and a warped copy of itself (DESIGN, step 6): the
warped copy is the colour reference, the photo's own ab channels are the ground
truth. The evaluation makes references the same way with TPS, random rotation (RR)
and random crop (RC) (step 7).

Conventions:

- images are ``B x C x H x W`` (or ``C x H x W``) float tensors with any number of
  channels (sRGB or normalised Lab), on any device;
- points are ``B x N x 2`` in ``grid_sample``'s normalised coordinates, ``(x, y)``
  order, ``align_corners=False``: ``(-1, -1)`` is the top-left corner of the top-left
  pixel and pixel ``j`` of ``W`` has its centre at ``x = (2 j + 1) / W - 1``;
- every random number is drawn on the CPU (from ``generator`` when given), then the
  result is moved to the images' device, so a seed gives the same parameters on any
  machine and device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import SSCNError

# Control-point displacement std, as a fraction of the image half-size (the half-size
# is 1 in normalised coordinates). Gentle: about 5 px at 128 px, enough that copying
# the reference pixel by pixel is wrong while every object keeps its place. Violent:
# a third of the half-size with control points 2/3 apart, so the grid folds over
# itself and no semantic match is left (the pairs that teach the network to fall
# back on its own prior).
TPS_GENTLE = 0.08
TPS_VIOLENT = 0.35
TPS_GRID = 4
ROTATION_DEGREES = 30.0
CROP_MIN_SCALE = 0.5
# A reference should only hold colours the photo holds: zero padding would add black (or, in
# normalised Lab, mid-gray) and "border" smears the edge pixels into streaks of one colour that
# skew the reference's statistics; reflection mirrors real content.
PADDING_MODE = "reflection"
# The random TPS references evaluate the spline exactly on every 2nd pixel and
# interpolate in between: 4x less work, which keeps on-the-fly references in the data
# loader cheap. At 128 px a gentle warp then lands at most 0.2 px (on average 0.003 px)
# from the exact spline, below what bilinear resampling resolves. Every maker uses the
# same value, so a seed gives one reference whichever path made it.
REFERENCE_STRIDE = 2

REFERENCE_KINDS = ("tps", "rotation", "crop")  # the evaluation's kinds (DESIGN, step 7)
ALL_REFERENCE_KINDS = ("tps", "tps_violent", "rotation", "crop")  # what make_reference accepts


# --------------------------------------------------------------------------- TPS


def tps_radial(squared_distance: torch.Tensor) -> torch.Tensor:
    """The TPS kernel ``U(r) = r^2 log r``, taken from ``r^2`` (``U(0) = 0``).

    ``r^2 log r = 0.5 r^2 log r^2``, which avoids a square root.
    """
    d2 = squared_distance
    # clamping keeps log finite; at d2 = 0 the product is then exactly 0
    return 0.5 * d2 * torch.log(d2.clamp_min(1e-30))


def _batched_points(points: torch.Tensor, name: str) -> torch.Tensor:
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.shape[-1] != 2:
        raise SSCNError(f"{name} has shape {tuple(points.shape)}; pass B x N x 2 (or N x 2) points in (x, y) order")
    return points


def tps_solve(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Fit the thin-plate spline ``f`` with ``f(dst_i) = src_i`` (the backward map).

    ``grid_sample`` pulls: an output pixel at ``x`` reads the input at ``f(x)``, so to
    move the content at ``src_i`` to ``dst_i`` the spline goes from ``dst`` to ``src``.
    Per output coordinate ``f(x) = a_1 + a_x x + a_y y + sum_i w_i U(|dst_i - x|)``;
    the ``N + 3`` unknowns solve ``[[K, P], [P^T, 0]] [w; a] = [src; 0]`` with
    ``K_ij = U(|dst_i - dst_j|)`` and ``P = [1, dst]``. The solve runs on the CPU in
    float64 (the system is small and can be ill-conditioned).

    src, dst: ``B x N x 2`` (or ``N x 2``), N >= 3 points not all on one line.
    Returns ``B x (N + 3) x 2`` float64 on src's device: rows ``0..N-1`` are ``w``,
    rows ``N..N+2`` are ``a_1, a_x, a_y``.
    """
    src, dst = _batched_points(src, "src"), _batched_points(dst, "dst")
    if src.shape != dst.shape:
        raise SSCNError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} differ; pass matching control points")
    if src.shape[1] < 3:
        raise SSCNError(f"a TPS needs at least 3 control points, got {src.shape[1]}")
    device = src.device
    src64 = src.detach().to("cpu", torch.float64)
    dst64 = dst.detach().to("cpu", torch.float64)
    batch, n = dst64.shape[:2]
    kernel = tps_radial(torch.cdist(dst64, dst64).square())
    affine = torch.cat((torch.ones(batch, n, 1, dtype=torch.float64), dst64), dim=2)
    system = torch.zeros(batch, n + 3, n + 3, dtype=torch.float64)
    system[:, :n, :n] = kernel
    system[:, :n, n:] = affine
    system[:, n:, :n] = affine.transpose(1, 2)
    rhs = torch.cat((src64, torch.zeros(batch, 3, 2, dtype=torch.float64)), dim=1)
    try:
        params = torch.linalg.solve(system, rhs)
    except RuntimeError as err:  # torch.linalg.LinAlgError is a RuntimeError
        raise SSCNError("the TPS system is singular: dst has repeated points or all points on one line; "
                        "pass distinct control points that span the plane") from err
    return params.to(device)


def tps_evaluate(points: torch.Tensor, dst: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Evaluate the spline of :func:`tps_solve` at ``points`` (``B x M x 2``) -> ``B x M x 2``.

    ``dst`` (``B x N x 2``) are the spline's centres. Computed in ``points``' dtype.
    """
    dtype, device = points.dtype, points.device
    dst = dst.to(device=device, dtype=dtype)
    params = params.to(device=device, dtype=dtype)
    n = dst.shape[1]
    # |x - p|^2 = [x, y, |x|^2, 1] . [-2 p_x, -2 p_y, 1, |p|^2]: one batched matmul instead of
    # several passes over the B x M x N distances, the step that dominates the cost
    points_aug = torch.cat((points, points.square().sum(-1, keepdim=True), torch.ones_like(points[..., :1])), -1)
    dst_aug = torch.cat((-2 * dst, torch.ones_like(dst[..., :1]), dst.square().sum(-1, keepdim=True)), -1)
    squared = torch.bmm(points_aug, dst_aug.transpose(1, 2)).clamp_min_(0)
    weights, affine = params[:, :n], params[:, n:]
    linear = torch.baddbmm(affine[:, :1], points, affine[:, 1:])
    return torch.baddbmm(linear, tps_radial(squared), weights)


def pixel_centers(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised (x, y) of every pixel centre, ``H x W x 2`` (``align_corners=False``)."""
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def tps_grid(src: torch.Tensor, dst: torch.Tensor, height: int, width: int,
             dtype: torch.dtype = torch.float32, stride: int = 1) -> torch.Tensor:
    """The ``grid_sample`` grid of the TPS warp that moves ``src`` onto ``dst``.

    src, dst: ``B x N x 2`` normalised (x, y) control points. Returns ``B x H x W x 2``
    on src's device: sampling the input with it gives an image that shows, at each
    ``dst_i``, the input at ``src_i`` (exactly: a TPS interpolates its control points),
    and a smooth, minimum-bending deformation in between. The coordinates are
    normalised per axis, so on a non-square image the spline bends in that stretched
    frame; the interpolation stays exact.

    ``stride > 1`` evaluates the spline exactly on every ``stride``-th pixel centre
    (first and last included) and interpolates bilinearly in between: ``stride^2``
    times less work for a grid that is no longer exact between those pixels (see
    ``REFERENCE_STRIDE``).
    """
    src, dst = _batched_points(src, "src"), _batched_points(dst, "dst")
    if stride < 1:
        raise SSCNError(f"stride={stride}; pass 1 (exact) or a larger whole number of pixels")
    params = tps_solve(src, dst)
    batch = src.shape[0]
    if stride == 1:
        centers = pixel_centers(height, width, device=src.device, dtype=dtype).reshape(1, -1, 2)
        return tps_evaluate(centers.expand(batch, -1, -1), dst, params).reshape(batch, height, width, 2)
    rows, cols = -(-(height - 1) // stride) + 1, -(-(width - 1) // stride) + 1
    ys = torch.linspace(1 / height - 1, 1 - 1 / height, rows, device=src.device, dtype=dtype)
    xs = torch.linspace(1 / width - 1, 1 - 1 / width, cols, device=src.device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coarse_points = torch.stack((grid_x, grid_y), dim=-1).reshape(1, -1, 2).expand(batch, -1, -1)
    coarse = tps_evaluate(coarse_points, dst, params).reshape(batch, rows, cols, 2).permute(0, 3, 1, 2)
    # align_corners=True puts the output samples exactly on the pixel centres spanned by xs, ys
    fine = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return fine.permute(0, 2, 3, 1)


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.dim() not in (3, 4):
        raise SSCNError(f"images have shape {tuple(images.shape)}; pass C x H x W or B x C x H x W")
    if not images.is_floating_point():
        raise SSCNError(f"images have dtype {images.dtype}; convert them to float first (e.g. rgb / 255)")
    return (images.unsqueeze(0), True) if images.dim() == 3 else (images, False)


def _sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode=PADDING_MODE,
                         align_corners=False)


def tps_warp(images: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Warp ``B x C x H x W`` images so that the content at ``src`` lands on ``dst``.

    Bilinear sampling, reflection padding (see the module docstring). ``C x H x W``
    with ``N x 2`` points works too; the output has the input's shape. ``stride``: see
    :func:`tps_grid`.
    """
    batch, single = _as_batch(images)
    src, dst = _batched_points(src, "src"), _batched_points(dst, "dst")
    if src.shape[0] == 1 and batch.shape[0] > 1:
        src, dst = src.expand(batch.shape[0], -1, -1), dst.expand(batch.shape[0], -1, -1)
    if src.shape[0] != batch.shape[0]:
        raise SSCNError(f"{src.shape[0]} sets of control points for {batch.shape[0]} images; pass one set per image")
    grid = tps_grid(src.to(batch.device), dst.to(batch.device), batch.shape[-2], batch.shape[-1], stride=stride)
    warped = _sample(batch, grid)
    return warped[0] if single else warped


def control_lattice(grid: int = TPS_GRID, dtype=torch.float32) -> torch.Tensor:
    """A regular ``grid`` x ``grid`` lattice over [-1, 1]^2, ``grid^2 x 2`` (x, y), row by row."""
    if grid < 2:
        raise SSCNError(f"grid={grid}: a TPS lattice needs at least 2 x 2 control points")
    axis = torch.linspace(-1, 1, grid, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1).reshape(-1, 2)


def _strengths(strength, batch: int) -> torch.Tensor:
    strength = torch.as_tensor(strength, dtype=torch.float32).detach().cpu()
    if strength.dim() == 0:
        strength = strength.expand(batch)
    if strength.shape != (batch,):
        raise SSCNError(f"strength has shape {tuple(strength.shape)}; pass a float or one value per image ({batch})")
    if (strength < 0).any():
        raise SSCNError("strength is negative; pass a displacement std >= 0 (e.g. TPS_GENTLE)")
    return strength


def random_tps(images: torch.Tensor, strength=TPS_GENTLE, grid: int = TPS_GRID,
               generator: torch.Generator | None = None, stride: int = REFERENCE_STRIDE):
    """A random TPS warp of each image.

    ``src`` is a regular ``grid`` x ``grid`` lattice over the image; ``dst`` moves each
    point by a normal displacement of std ``strength`` (a float, or a length-B tensor
    for per-image strengths) in normalised coordinates. ``stride``: see
    :func:`tps_grid` and ``REFERENCE_STRIDE`` (1 gives the exact spline).

    images: ``B x C x H x W`` (or ``C x H x W``). Returns ``(warped, src, dst)`` with
    warped shaped like images and src, dst ``B x N x 2`` (``N x 2`` for one image) on
    the images' device.
    """
    batch, single = _as_batch(images)
    size = batch.shape[0]
    src = control_lattice(grid).expand(size, -1, -1)
    noise = torch.randn(src.shape, generator=generator)
    dst = src + noise * _strengths(strength, size).view(-1, 1, 1)
    src, dst = src.to(batch.device), dst.to(batch.device)
    warped = tps_warp(batch, src, dst, stride=stride)
    if single:
        return warped[0], src[0], dst[0]
    return warped, src, dst


# ---------------------------------------------------------------- RR and RC


def random_rotation(images: torch.Tensor, max_degrees: float = ROTATION_DEGREES,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each image about its centre by a uniform angle in ``[-max_degrees, max_degrees]``.

    The rotation is in pixel space (a circle stays a circle on non-square images);
    the uncovered corners are filled by reflection. Shape in = shape out.
    """
    if not max_degrees >= 0:
        raise SSCNError(f"max_degrees={max_degrees}; pass an angle >= 0 in degrees")
    batch, single = _as_batch(images)
    size, height, width = batch.shape[0], batch.shape[-2], batch.shape[-1]
    angles = (torch.rand(size, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_degrees)
    cos, sin = angles.cos(), angles.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack((torch.stack((cos, -sin * height / width, zero), -1),
                         torch.stack((sin * width / height, cos, zero), -1)), 1)
    grid = F.affine_grid(theta.to(device=batch.device, dtype=batch.dtype), list(batch.shape), align_corners=False)
    rotated = _sample(batch, grid)
    return rotated[0] if single else rotated


def random_crop(images: torch.Tensor, min_scale: float = CROP_MIN_SCALE,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random window of each image and resize it back to the input size.

    The window keeps the aspect ratio, its side is a uniform fraction in
    ``[min_scale, 1]`` of the image's side, its position uniform within the image.
    Bilinear resampling (the window is only ever enlarged). Shape in = shape out.
    """
    if not 0 < min_scale <= 1:
        raise SSCNError(f"min_scale={min_scale}; pass a fraction of the image side in (0, 1]")
    batch, single = _as_batch(images)
    size = batch.shape[0]
    scale = min_scale + (1 - min_scale) * torch.rand(size, generator=generator, dtype=torch.float64)
    shift = (torch.rand(size, 2, generator=generator, dtype=torch.float64) * 2 - 1) * (1 - scale).unsqueeze(1)
    zero = torch.zeros_like(scale)
    theta = torch.stack((torch.stack((scale, zero, shift[:, 0]), -1),
                         torch.stack((zero, scale, shift[:, 1]), -1)), 1)
    grid = F.affine_grid(theta.to(device=batch.device, dtype=batch.dtype), list(batch.shape), align_corners=False)
    cropped = _sample(batch, grid)
    return cropped[0] if single else cropped


# ------------------------------------------------------------ seeded references


@dataclass
class Reference:
    """A reference made from a photo by self-augmentation, reproducible from its seed.

    image: the reference, shaped like the photo it was made from; kind: one of
    ``"tps"``, ``"tps_violent"``, ``"rotation"``, ``"crop"``; seed: the seed of
    :func:`make_reference`; src, dst: the TPS control points (``None`` for RR and RC).
    """

    image: torch.Tensor
    kind: str
    seed: int
    src: torch.Tensor | None = None
    dst: torch.Tensor | None = None


def make_reference(image: torch.Tensor, kind: str, seed: int) -> Reference:
    """The self-augmentation reference of ``kind`` for ``image``, bit for bit the same per seed.

    image: ``C x H x W`` or ``B x C x H x W`` (sRGB, Lab, any channel count).
    kind: ``"tps"`` (gentle), ``"tps_violent"``, ``"rotation"`` (RR) or ``"crop"`` (RC).
    """
    if kind not in ALL_REFERENCE_KINDS:
        raise SSCNError(f"reference kind {kind!r} is unknown; pass one of {', '.join(ALL_REFERENCE_KINDS)}")
    generator = torch.Generator().manual_seed(int(seed))
    src = dst = None
    if kind in ("tps", "tps_violent"):
        strength = TPS_GENTLE if kind == "tps" else TPS_VIOLENT
        warped, src, dst = random_tps(image, strength, generator=generator)
    elif kind == "rotation":
        warped = random_rotation(image, generator=generator)
    else:
        warped = random_crop(image, generator=generator)
    return Reference(image=warped, kind=kind, seed=int(seed), src=src, dst=dst)


def training_references(images: torch.Tensor, generator: torch.Generator | None = None,
                        violent_share: float = 0.1) -> torch.Tensor:
    """Batched references for training: a TPS warp of every image in ``B x C x H x W``.

    Each image is warped violently with probability ``violent_share`` (drawn from
    ``generator``), gently otherwise. Pure TPS on purpose: no flip or colour change,
    so the reference's colours are exactly the ground truth's, only moved.
    """
    if not 0 <= violent_share <= 1:
        raise SSCNError(f"violent_share={violent_share}; pass a fraction in [0, 1]")
    batch, single = _as_batch(images)
    violent = torch.rand(batch.shape[0], generator=generator) < violent_share
    strength = torch.where(violent, torch.tensor(TPS_VIOLENT), torch.tensor(TPS_GENTLE))
    warped, _, _ = random_tps(batch, strength, generator=generator)
    return warped[0] if single else warped
