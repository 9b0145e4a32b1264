"""Property-based tests (hypothesis) of the colour conversions, the ab bins and the
self-augmentation references.

They complement tests/test_color.py (float64 round trip, Lab ranges, any float64 Lab
gives RGB in range) with what the network actually runs: float32, the normalised scale,
gradients, extreme normalised Lab, and the augmentations at any size from 8 px.
The example counts come from the profile in the root conftest.py.
"""
import numpy as np
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from sscn.augment import ALL_REFERENCE_KINDS, make_reference, training_references
from sscn.bins import default_bins
from sscn.color import lab_norm_to_rgb, lab_to_rgb, rgb_to_lab, rgb_to_lab_norm

unit = st.floats(0.0, 1.0, allow_nan=False, width=32)
pixels = st.lists(st.tuples(unit, unit, unit), min_size=1, max_size=32)


def as_image(values, dtype=torch.float32) -> torch.Tensor:
    """``N`` triples -> a ``3 x 1 x N`` image."""
    return torch.tensor(np.asarray(values, dtype=np.float64).T[:, None, :], dtype=dtype)


# ------------------------------------------------------------------ colour conversions

@given(pixels)
def test_float32_normalised_round_trip(values):
    """sRGB -> normalised Lab -> sRGB in float32 (the network's path) is within a quarter of an 8-bit step."""
    rgb = as_image(values)
    lab_norm = rgb_to_lab_norm(rgb)
    assert torch.isfinite(lab_norm).all()
    assert lab_norm[0].min() >= -1 - 1e-5 and lab_norm[0].max() <= 1 + 1e-5
    assert lab_norm[1:].abs().max() <= 1
    assert (lab_norm_to_rgb(lab_norm) - rgb).abs().max() < 1 / 1020


@given(st.floats(0, 100), st.floats(-110, 110), st.floats(-110, 110))
def test_in_gamut_lab_round_trips(L, a, b):
    """Lab -> sRGB -> Lab gives the same Lab back whenever the colour needed no clipping."""
    lab = torch.tensor([L, a, b], dtype=torch.float64).view(3, 1, 1)
    rgb = lab_to_rgb(lab)
    assume(bool(((rgb > 1e-6) & (rgb < 1 - 1e-6)).all()))  # out of gamut: clipped, so no way back
    assert (rgb_to_lab(rgb) - lab).abs().max() < 1e-6


extreme = st.floats(-4.0, 4.0, allow_nan=False, width=32) | st.sampled_from([-1.0, 1.0, -4.0, 4.0, 0.0])


@given(st.lists(st.tuples(extreme, extreme, extreme), min_size=1, max_size=32))
def test_any_normalised_lab_gives_finite_rgb_and_gradients(values):
    """The network can predict any ab (and the reference can hold any Lab): never NaN, forward or backward.

    Normalised values up to 4 are four times the range: L far below black and above
    white, ab at 440 Lab units.
    """
    lab_norm = as_image(values).requires_grad_(True)
    rgb = lab_norm_to_rgb(lab_norm)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    (rgb * torch.linspace(0.5, 1.5, rgb.numel()).view_as(rgb)).sum().backward()
    assert torch.isfinite(lab_norm.grad).all()


@given(pixels)
def test_rgb_to_lab_gradients_are_finite_everywhere_in_the_cube(values):
    """Including exact 0 and 1 and the knots of the piecewise curves, where a cube root's slope is infinite."""
    rgb = as_image(values).requires_grad_(True)
    rgb_to_lab_norm(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()


@given(st.lists(st.floats(0.0, 1.0, width=32), min_size=2, max_size=32, unique=True))
def test_gray_has_no_chroma_and_l_grows_with_gray(levels):
    levels = sorted(levels)
    lab_norm = rgb_to_lab_norm(as_image([(v, v, v) for v in levels]))
    assert lab_norm[1:].abs().max() < 1e-3  # under 0.11 Lab units
    assert (lab_norm[0, 0, 1:] >= lab_norm[0, 0, :-1]).all()


@given(st.lists(st.tuples(st.floats(-1.5, 1.5, width=32), st.floats(-1.5, 1.5, width=32)), min_size=1, max_size=16))
def test_soft_encoding_of_any_ab_is_a_distribution(values):
    """Any normalised ab, in gamut or far outside it, soft-encodes to weights on at most 10 bins summing to 1."""
    bins = default_bins()
    ab = torch.tensor(np.asarray(values, dtype=np.float32).T[None, :, None, :])
    encoded = bins.encode(ab)
    assert torch.isfinite(encoded).all() and encoded.min() >= 0
    assert torch.allclose(encoded.sum(1), torch.ones(1, 1, len(values)), atol=1e-5)
    assert ((encoded > 0).sum(1) <= bins.neighbours).all()
    decoded = bins.decode(encoded)  # a weighted mean of bin centres stays within them
    assert decoded.abs().max() <= bins.centers.abs().max() / 110 + 1e-5


# ------------------------------------------------------------------ augmentations

sizes = st.integers(8, 72)
seeds = st.integers(0, 2**63 - 1)


@given(st.sampled_from(ALL_REFERENCE_KINDS), sizes, sizes, st.sampled_from([1, 3]), seeds, st.integers(0, 2**32 - 1))
def test_reference_is_a_pure_function_of_its_seed(kind, height, width, channels, seed, content):
    """Any size from 8 px: the shape and dtype are kept, the same seed gives the same bits, and
    the reference only moves the photo's values (bilinear sampling, reflection at the border),
    so each channel stays within the photo's range."""
    image = torch.rand(channels, height, width, generator=torch.Generator().manual_seed(content))
    first, again = make_reference(image, kind, seed), make_reference(image.clone(), kind, seed)
    assert first.image.shape == image.shape and first.image.dtype == image.dtype
    assert torch.equal(first.image, again.image)
    assert torch.isfinite(first.image).all()
    low, high = image.amin((1, 2), keepdim=True), image.amax((1, 2), keepdim=True)
    assert (first.image >= low - 1e-5).all() and (first.image <= high + 1e-5).all()
    if first.src is not None:
        assert torch.equal(first.src, again.src) and torch.equal(first.dst, again.dst)


@given(st.sampled_from(ALL_REFERENCE_KINDS), sizes, sizes, st.floats(-1.0, 1.0, width=32), seeds)
def test_reference_of_a_flat_image_is_flat(kind, height, width, value, seed):
    image = torch.full((3, height, width), value)
    assert (make_reference(image, kind, seed).image - value).abs().max() < 1e-5


@given(st.integers(1, 2), st.integers(8, 40), st.integers(8, 40), st.floats(0.0, 1.0), st.integers(0, 2**63 - 1))
def test_training_references_depend_only_on_the_generator_seed(batch, height, width, violent_share, seed):
    images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed % 2**32))
    first = training_references(images, torch.Generator().manual_seed(seed), violent_share)
    again = training_references(images, torch.Generator().manual_seed(seed), violent_share)
    assert first.shape == images.shape and torch.equal(first, again)
    assert torch.isfinite(first).all()
