"""sscn.color against scikit-image, plus the properties the network relies on."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import color as skcolor

from sscn.color import (
    denormalize_lab,
    gray_l_to_rgb,
    join_lab,
    lab_norm_to_rgb,
    lab_to_rgb,
    normalize_lab,
    rgb_to_gray_l,
    rgb_to_lab,
    rgb_to_lab_norm,
    split_lab,
)
from sscn.errors import SSCNError

CORNERS = np.array(list(itertools.product((0.0, 1.0), repeat=3)))


def as_image(colours: np.ndarray) -> torch.Tensor:
    """``N x 3`` colours -> a ``3 x N x 1`` image tensor."""
    return torch.from_numpy(np.ascontiguousarray(colours.T)).reshape(3, -1, 1)


def as_colours(image: torch.Tensor) -> np.ndarray:
    return image.reshape(3, -1).T.detach().cpu().numpy()


@pytest.fixture(scope="module")
def colours() -> np.ndarray:
    """The eight corners of the RGB cube and 100,000 random colours, float64."""
    rng = np.random.default_rng(0)
    return np.concatenate((CORNERS, rng.random((100_000, 3))))


def test_rgb_to_lab_matches_skimage(colours):
    ours = as_colours(rgb_to_lab(as_image(colours)))
    assert np.abs(ours - skcolor.rgb2lab(colours)).max() < 1e-3


def test_lab_to_rgb_matches_skimage(colours):
    lab = skcolor.rgb2lab(colours)
    ours = as_colours(lab_to_rgb(as_image(lab)))
    assert np.abs(ours - skcolor.lab2rgb(lab)).max() < 1e-4
    assert np.abs(ours - colours).max() < 1e-4


def test_float32_close_to_skimage(colours):
    image = as_image(colours).float()
    lab = rgb_to_lab(image)
    assert lab.dtype == torch.float32
    assert np.abs(as_colours(lab) - skcolor.rgb2lab(colours)).max() < 5e-3
    assert (lab_to_rgb(lab) - image).abs().max() < 1e-4


def test_known_values():
    """White, black and pure red, from the CIE definitions."""
    lab = rgb_to_lab(as_image(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])))
    expected = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20]], dtype=torch.float64)
    assert torch.allclose(lab.reshape(3, -1).T, expected, atol=1e-2)


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7), (1, 3, 1, 1)])
def test_shapes(shape):
    rgb = torch.rand(shape, dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert lab_to_rgb(lab).shape == rgb.shape
    gray_l, ab = split_lab(rgb_to_lab_norm(rgb))
    assert gray_l.shape[-3] == 1 and ab.shape[-3] == 2
    assert gray_l_to_rgb(rgb_to_gray_l(rgb)).shape == rgb.shape


def test_batched_equals_per_image():
    rgb = torch.rand(4, 3, 6, 5, dtype=torch.float64)
    batched = rgb_to_lab(rgb)
    for i in range(len(rgb)):
        assert torch.allclose(batched[i], rgb_to_lab(rgb[i]), rtol=0, atol=1e-10)


@pytest.mark.parametrize("corner", CORNERS.tolist(), ids=lambda c: "rgb" + "".join(str(int(v)) for v in c))
def test_gradients_finite_at_corners(corner):
    rgb = torch.tensor(corner, dtype=torch.float64).view(3, 1, 1).requires_grad_()
    lab = rgb_to_lab(rgb)
    lab.sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab_in = lab.detach().clone().requires_grad_()
    lab_to_rgb(lab_in).sum().backward()
    assert torch.isfinite(lab_in.grad).all()


def test_gradcheck_inside_the_cube():
    rgb = (torch.rand(3, 2, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))
    lab = rgb_to_lab(rgb).detach().requires_grad_()
    assert torch.autograd.gradcheck(lab_to_rgb, (lab,))


def test_out_of_gamut_lab_gives_valid_rgb():
    grid = torch.linspace(-200, 200, 21, dtype=torch.float64)
    L = torch.linspace(-20, 120, 15, dtype=torch.float64)
    lab = torch.cartesian_prod(L, grid, grid).T.reshape(3, -1, 1).requires_grad_()
    rgb = lab_to_rgb(lab)
    assert torch.isfinite(rgb).all()
    assert rgb.min() >= 0 and rgb.max() <= 1
    rgb.sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_normalisation_round_trip_and_range():
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    norm = normalize_lab(lab)
    assert torch.allclose(denormalize_lab(norm), lab)
    assert norm.abs().max() <= 1.0 + 1e-9
    assert torch.allclose(norm[:, 0], lab[:, 0] / 50 - 1) and torch.allclose(norm[:, 1:], lab[:, 1:] / 110)
    assert torch.allclose(lab_norm_to_rgb(rgb_to_lab_norm(rgb)), rgb, atol=1e-6)
    gray_l, ab = split_lab(norm)
    assert torch.equal(join_lab(gray_l, ab), norm)


def test_gray_has_no_colour():
    """ab = 0 is gray to within 1e-3: skimage's matrix maps white to (0.95046, 1, 1.08875), not exactly D65."""
    gray_l = rgb_to_gray_l(torch.rand(1, 3, 4, 4, dtype=torch.float64))
    gray = gray_l_to_rgb(gray_l)
    assert (gray.amax(1) - gray.amin(1)).max() < 1e-3
    lab = denormalize_lab(join_lab(gray_l, torch.zeros(1, 2, 4, 4, dtype=torch.float64)))
    expected = skcolor.lab2rgb(lab[0].permute(1, 2, 0).numpy())
    assert np.abs(gray[0].permute(1, 2, 0).numpy() - expected).max() < 1e-6


@pytest.mark.parametrize(
    "bad", [torch.zeros(2, 4, 3, 3), torch.zeros(3, 4), torch.zeros(3, 2, 2, dtype=torch.uint8)], ids=["4ch", "2d", "uint8"]
)
def test_bad_input_raises_a_named_error(bad):
    with pytest.raises(SSCNError, match="rgb_to_lab"):
        rgb_to_lab(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    on_gpu = rgb_to_lab(rgb.cuda())
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), lab, atol=1e-6)
    assert torch.allclose(lab_to_rgb(on_gpu).cpu(), lab_to_rgb(lab), atol=1e-6)
    assert torch.allclose(rgb_to_lab(rgb.float().cuda()).cpu().double(), lab, atol=5e-3)


unit = st.floats(0.0, 1.0, allow_nan=False)
colour = st.tuples(unit, unit, unit)


@settings(max_examples=60, deadline=None)
@given(st.lists(colour, min_size=1, max_size=16))
def test_property_round_trip(values):
    rgb = as_image(np.array(values, dtype=np.float64))
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-6


@settings(max_examples=60, deadline=None)
@given(st.lists(colour, min_size=1, max_size=16))
def test_property_lab_ranges(values):
    lab = rgb_to_lab(as_image(np.array(values, dtype=np.float64)))
    L, a, b = lab.unbind(0)
    assert torch.isfinite(lab).all()
    assert L.min() >= -1e-9 and L.max() <= 100 + 1e-6
    assert a.abs().max() <= 110 and b.abs().max() <= 110
    assert normalize_lab(lab).abs().max() <= 1 + 1e-9


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=16))
def test_property_any_lab_gives_rgb_in_range(values):
    rgb = lab_to_rgb(as_image(np.array(values, dtype=np.float64)))
    assert torch.isfinite(rgb).all()
    assert rgb.min() >= 0 and rgb.max() <= 1
