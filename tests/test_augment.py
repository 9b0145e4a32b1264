"""TPS warp, random rotation and crop, seeded references (sscn.augment)."""
import math

import numpy as np
import pytest
import torch
from scipy.interpolate import RBFInterpolator

from sscn.augment import (REFERENCE_KINDS, TPS_GENTLE, TPS_VIOLENT, Reference, control_lattice, make_reference,
                          pixel_centers, random_crop, random_rotation, random_tps, tps_evaluate, tps_grid, tps_solve,
                          tps_warp, training_references)
from sscn.errors import SSCNError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def lattice(batch, grid=4):
    return control_lattice(grid).expand(batch, -1, -1)


def displaced(batch, strength, seed=0, grid=4):
    generator = torch.Generator().manual_seed(seed)
    src = lattice(batch, grid)
    return src, src + strength * torch.randn(src.shape, generator=generator)


@pytest.mark.parametrize("batch, height, width", [(1, 32, 32), (4, 24, 40)])
def test_zero_displacement_is_the_identity(batch, height, width):
    images = torch.rand(batch, 3, height, width)
    src = lattice(batch)
    assert (tps_grid(src, src, height, width) - pixel_centers(height, width)).abs().max() < 1e-5
    assert (tps_warp(images, src, src) - images).abs().max() < 1e-5


@pytest.mark.parametrize("strength", [TPS_GENTLE, TPS_VIOLENT])
def test_spline_interpolates_its_control_points(strength):
    src, dst = displaced(3, strength, seed=1)
    params = tps_solve(src, dst)
    assert params.shape == (3, 16 + 3, 2) and params.dtype == torch.float64
    assert (tps_evaluate(dst.double(), dst, params) - src).abs().max() < 1e-9
    assert (tps_evaluate(dst, dst, params) - src).abs().max() < 1e-4  # float32, as the grid is computed


def test_grid_at_dst_pixels_equals_src():
    height, width = 24, 40
    generator = torch.Generator().manual_seed(2)
    flat = torch.randperm(height * width, generator=generator)[:12]
    rows, cols = flat // width, flat % width
    dst = pixel_centers(height, width)[rows, cols].unsqueeze(0)
    src = dst + 0.1 * torch.randn(dst.shape, generator=generator)
    grid = tps_grid(src, dst, height, width)
    assert grid.shape == (1, height, width, 2)
    assert (grid[0, rows, cols] - src[0]).abs().max() < 1e-4


def test_warp_moves_content_from_src_to_dst():
    # a linear image (its own x and y coordinates) is reproduced exactly by bilinear sampling
    height, width = 33, 45
    ramp = pixel_centers(height, width).permute(2, 0, 1).unsqueeze(0).double()
    generator = torch.Generator().manual_seed(3)
    flat = torch.randperm(height * width, generator=generator)[:9]
    rows, cols = flat // width, flat % width
    dst = pixel_centers(height, width)[rows, cols].unsqueeze(0)
    src = (dst + 0.1 * torch.randn(dst.shape, generator=generator)).clamp(-0.9, 0.9)
    warped = tps_warp(ramp, src, dst)
    assert (warped[0, :, rows, cols].T - src[0]).abs().max() < 1e-4


def test_solve_agrees_with_scipy_thin_plate_spline():
    src, dst = displaced(1, 0.2, seed=4)
    points = torch.rand(1, 50, 2, dtype=torch.float64) * 2 - 1
    ours = tps_evaluate(points, dst, tps_solve(src, dst))[0].numpy()
    scipy_tps = RBFInterpolator(dst[0].double().numpy(), src[0].double().numpy(), kernel="thin_plate_spline", degree=1)
    np.testing.assert_allclose(ours, scipy_tps(points[0].numpy()), atol=1e-9)


def test_strided_grid_stays_close_to_the_exact_one():
    src, dst = displaced(4, TPS_GENTLE, seed=5)
    exact = tps_grid(src, dst, 64, 48)
    strided = tps_grid(src, dst, 64, 48, stride=2)
    pixels = (strided - exact).abs() * 32  # normalised units -> pixels
    assert pixels.mean() < 0.01 and pixels.max() < 0.5


def test_degenerate_control_points_raise():
    collinear = torch.tensor([[[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]])
    with pytest.raises(SSCNError, match="singular"):
        tps_solve(collinear, collinear)
    with pytest.raises(SSCNError, match="B x N x 2"):
        tps_solve(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3))


@pytest.mark.parametrize("batch, height, width", [(1, 32, 32), (4, 24, 40)])
def test_random_makers_keep_shape_and_dtype(batch, height, width):
    images = torch.rand(batch, 3, height, width)
    generator = torch.Generator().manual_seed(0)
    warped, src, dst = random_tps(images, generator=generator)
    assert warped.shape == images.shape and warped.dtype == images.dtype
    assert src.shape == dst.shape == (batch, 16, 2)
    for make in (random_rotation, random_crop):
        out = make(images, generator=generator)
        assert out.shape == images.shape and out.dtype == images.dtype
    assert training_references(images, generator).shape == images.shape
    single, src1, _ = random_tps(images[0], generator=generator)
    assert single.shape == images.shape[1:] and src1.shape == (16, 2)


def test_per_image_strength():
    images = torch.rand(3, 3, 20, 20)
    strength = torch.tensor([0.0, TPS_GENTLE, 0.0])
    warped, src, dst = random_tps(images, strength, generator=torch.Generator().manual_seed(0))
    assert torch.equal(src[0], dst[0]) and not torch.equal(src[1], dst[1])
    assert (warped[0] - images[0]).abs().max() < 1e-4 and (warped[1] - images[1]).abs().max() > 1e-3
    with pytest.raises(SSCNError, match="one value per image"):
        random_tps(images, torch.ones(2))


def test_rotation_and_crop_limits():
    images = torch.rand(2, 3, 21, 31)
    assert (random_rotation(images, max_degrees=0) - images).abs().max() < 1e-5
    assert (random_crop(images, min_scale=1.0) - images).abs().max() < 1e-5
    # rotation turns about the centre: the centre pixel of an odd-sized image stays put
    rotated = random_rotation(images, max_degrees=90, generator=torch.Generator().manual_seed(1))
    assert (rotated[:, :, 10, 15] - images[:, :, 10, 15]).abs().max() < 1e-5
    # a crop enlarged back samples only inside the image: a ramp keeps within its range
    ramp = pixel_centers(21, 31)[..., 0].expand(1, 1, 21, 31)
    cropped = random_crop(ramp, min_scale=0.5, generator=torch.Generator().manual_seed(2))
    assert cropped.min() >= ramp.min() - 1e-6 and cropped.max() <= ramp.max() + 1e-6
    with pytest.raises(SSCNError, match="min_scale"):
        random_crop(images, min_scale=0)
    with pytest.raises(SSCNError, match="max_degrees"):
        random_rotation(images, max_degrees=-1)


def test_rotation_is_a_rotation_in_pixel_space():
    # on a non-square image a bar must keep its length whatever the angle
    height, width = 40, 80
    ys, xs = torch.meshgrid(torch.arange(height) - 19.5, torch.arange(width) - 39.5, indexing="ij")
    bar = ((xs.abs() < 8) & (ys.abs() < 1)).float().expand(1, 1, height, width)
    for seed in range(3):
        rotated = random_rotation(bar, max_degrees=90, generator=torch.Generator().manual_seed(seed))[0, 0]
        weight = rotated * (xs ** 2 + ys ** 2 < 15 ** 2)  # ignore reflections near the border
        weight = weight / weight.sum()
        mean_x, mean_y = (weight * xs).sum(), (weight * ys).sum()
        cov_xx = (weight * (xs - mean_x) ** 2).sum()
        cov_yy = (weight * (ys - mean_y) ** 2).sum()
        cov_xy = (weight * (xs - mean_x) * (ys - mean_y)).sum()
        trace, det = cov_xx + cov_yy, cov_xx * cov_yy - cov_xy ** 2
        major = trace / 2 + torch.sqrt(trace ** 2 / 4 - det)
        assert math.isclose(float(major), (16 ** 2 - 1) / 12, rel_tol=0.15)  # a uniform bar 16 px long


@pytest.mark.parametrize("kind", ["tps", "tps_violent", "rotation", "crop"])
def test_reference_is_reproducible_from_its_seed(kind):
    image = torch.rand(3, 24, 32)
    first, again, other = (make_reference(image, kind, seed) for seed in (7, 7, 8))
    assert isinstance(first, Reference) and first.kind == kind and first.seed == 7
    assert torch.equal(first.image, again.image)
    assert not torch.equal(first.image, other.image)
    assert first.image.shape == image.shape
    if kind.startswith("tps"):
        assert first.src.shape == first.dst.shape == (16, 2)
    else:
        assert first.src is None and first.dst is None


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_reference_works_batched_on_any_channel_count(channels):
    images = torch.rand(2, channels, 16, 20)
    for kind in REFERENCE_KINDS:
        assert make_reference(images, kind, 0).image.shape == images.shape


def test_unknown_kind_and_bad_images():
    with pytest.raises(SSCNError, match="unknown"):
        make_reference(torch.rand(3, 8, 8), "flip", 0)
    with pytest.raises(SSCNError, match="float"):
        make_reference(torch.zeros(3, 8, 8, dtype=torch.uint8), "tps", 0)
    with pytest.raises(SSCNError, match="B x C x H x W"):
        make_reference(torch.rand(8, 8), "tps", 0)


def test_training_references_share_of_violent_warps():
    images = torch.rand(8, 3, 16, 16)
    gentle = training_references(images, torch.Generator().manual_seed(0), violent_share=0.0)
    violent = training_references(images, torch.Generator().manual_seed(0), violent_share=1.0)
    again = training_references(images, torch.Generator().manual_seed(0), violent_share=0.0)
    assert torch.equal(gentle, again)
    # same control-point noise, larger strength: the violent warps move the content further
    assert (violent - images).abs().mean() > (gentle - images).abs().mean()
    with pytest.raises(SSCNError, match="violent_share"):
        training_references(images, violent_share=1.5)


@CUDA
@pytest.mark.parametrize("kind", ["tps", "tps_violent", "rotation", "crop"])
def test_cuda_reference_matches_cpu(kind):
    image = torch.rand(2, 3, 24, 40)
    cpu = make_reference(image, kind, 3)
    gpu = make_reference(image.cuda(), kind, 3)
    assert gpu.image.is_cuda
    assert (gpu.image.cpu() - cpu.image).abs().max() < 1e-3
    if cpu.src is not None:
        assert torch.equal(gpu.src.cpu(), cpu.src) and torch.equal(gpu.dst.cpu(), cpu.dst)


@CUDA
def test_cuda_training_references_and_identity():
    images = torch.rand(4, 3, 32, 32, device="cuda")
    assert training_references(images, torch.Generator().manual_seed(0)).is_cuda
    src = lattice(4).cuda()
    assert (tps_warp(images, src, src) - images).abs().max() < 1e-5
