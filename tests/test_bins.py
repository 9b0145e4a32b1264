"""The ab bins: Q as a computed property, soft-encoding, decoding, the paper's 313."""
from __future__ import annotations

import inspect
import itertools
import socket
from pathlib import Path

import pytest
import torch

import sscn
from sscn import bins as bins_module
from sscn.bins import ANNEAL_T, ABBins, count_definitions, default_bins, gamut_bin_centers, hull_bin_centers
from sscn.color import AB_SCALE, rgb_to_lab_norm
from sscn.errors import SSCNError

# Zhang et al.'s pts_in_hull.npy (the paper's 313 bins), column by column:
# a -> (lowest b, highest b); every multiple of 10 in between is a bin.
PTS_IN_HULL_COLUMNS = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100),
    -40: (-40, 100), -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100),
    10: (-80, 90), 20: (-80, 90), 30: (-90, 90), 40: (-100, 90), 50: (-100, 80),
    60: (-110, 80), 70: (-110, 80), 80: (-110, 70), 90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def random_ab(n: int = 4096, seed: int = 0) -> torch.Tensor:
    """Normalised ab ``1 x 2 x n x 1`` of random sRGB colours and the eight cube corners."""
    rgb = torch.rand(3, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    corners = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)), dtype=torch.float64).T
    rgb = torch.cat((rgb, corners), 1).reshape(1, 3, -1, 1)
    return rgb_to_lab_norm(rgb)[:, 1:]


def as_set(centers: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, centers.long().tolist()))


def test_q_is_a_property_of_the_bin_set():
    centers = gamut_bin_centers()
    assert default_bins().num_bins == len(centers) == 261
    assert len(as_set(centers)) == len(centers)
    assert torch.equal(centers, centers.round()) and (centers.long() % 10 == 0).all()
    assert centers.abs().max() <= 110


def test_lattice_density_moves_only_the_blue_sliver():
    """A denser lattice adds at most (20, -80), reached by blues 0.002 wide in green that no 8-bit colour hits."""
    coarse, dense = as_set(gamut_bin_centers()), as_set(gamut_bin_centers(steps=96))
    assert coarse <= dense and dense - coarse <= {(20, -80)}


def test_hull_bins_are_zhang_et_al_313():
    expected = {(a, b) for a, (low, high) in PTS_IN_HULL_COLUMNS.items() for b in range(low, high + 1, 10)}
    assert len(expected) == 313
    hull = hull_bin_centers()
    assert len(hull) == 313 and as_set(hull) == expected
    assert as_set(hull_bin_centers(steps=8)) == expected
    assert as_set(gamut_bin_centers()) < expected


def test_count_definitions():
    counts = count_definitions()
    assert all(isinstance(q, int) for q in counts.values())
    assert counts["nearest centre of an sRGB colour (this package)"] == default_bins().num_bins
    assert counts["corner of a cell overlapping the hull (Zhang et al.'s set)"] == 313
    assert counts["centre itself in the sRGB gamut at some L"] < default_bins().num_bins


def test_bins_are_computed_not_downloaded(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the bins must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    bins_module._lattice_cells.cache_clear()
    bins_module._gamut_hull.cache_clear()
    assert len(gamut_bin_centers(steps=16)) > 200 and len(hull_bin_centers()) == 313
    source = inspect.getsource(bins_module)
    assert not any(word in source for word in ("urlopen", "requests", "np.load", "torch.load", "torch.hub"))
    assert not list(Path(sscn.__file__).parent.rglob("*.npy"))


@pytest.mark.parametrize("centers", ["package", "hull"])
def test_soft_encoding_sums_to_one_over_ten_bins(centers):
    bins = default_bins() if centers == "package" else ABBins(hull_bin_centers())
    ab = random_ab(2048 - 8).reshape(2, 2, 32, 32)  # B x 2 x H x W
    encoded = bins.encode(ab)
    assert encoded.shape == (2, bins.num_bins, 32, 32)
    assert torch.allclose(encoded.sum(1), torch.ones(2, 32, 32, dtype=torch.float64))
    assert ((encoded > 0).sum(1) == 10).all()
    assert (encoded >= 0).all()


def test_soft_encoding_is_a_gaussian_of_the_distance():
    bins = default_bins()
    ab = torch.tensor([23.0, -41.0], dtype=torch.float64).view(1, 2, 1, 1) / AB_SCALE
    weights = bins.encode(ab)[0, :, 0, 0]
    kept = weights.nonzero()[:, 0]
    dist2 = ((bins.centers[kept] - torch.tensor([23.0, -41.0], dtype=torch.float64)) ** 2).sum(1)
    expected = torch.softmax(-dist2 / (2 * 5.0**2), 0)
    assert torch.allclose(weights[kept], expected)


def test_hull_bins_decode_what_they_encode():
    """With the 313 set every sRGB colour is surrounded by bins, so the mean comes back within 2 ab units."""
    bins = ABBins(hull_bin_centers())
    ab = random_ab()
    error = ((bins.decode(bins.encode(ab)) - ab) * AB_SCALE).norm(dim=1)
    assert error.max() < 2


def test_package_bins_decode_what_they_encode_inside_the_gamut():
    """The 261 set loses up to ~5 ab units at the gamut's rim (no bins beyond it); inside, within 2."""
    bins = default_bins()
    ab = random_ab()
    error = ((bins.decode(bins.encode(ab)) - ab) * AB_SCALE).norm(dim=1).flatten()
    cells = as_set(bins.centers / 10)
    nearest = torch.round(ab * AB_SCALE / 10).long()[0, :, :, 0].T.tolist()
    surrounded = torch.tensor([all((a + i, b + j) in cells for i in (-1, 0, 1) for j in (-1, 0, 1)) for a, b in nearest])
    assert surrounded.float().mean() > 0.8
    assert error[surrounded].max() < 2
    assert error.mean() < 0.5


def test_annealed_mean_sharpens():
    bins = default_bins()
    major, minor = (torch.tensor(c, dtype=torch.float64).view(1, 2, 1, 1) / AB_SCALE for c in ([40.0, 50.0], [-30.0, -20.0]))
    probs = 0.6 * bins.encode(major) + 0.4 * bins.encode(minor)
    mean, annealed = bins.decode(probs), bins.decode(probs, temperature=ANNEAL_T)
    distance = [(bins.decode(probs, temperature=t) - major).norm() * AB_SCALE for t in (1.0, ANNEAL_T, 0.2, 0.05)]
    assert all(far > near for far, near in zip(distance, distance[1:]))
    assert distance[-1] < 1  # a cold temperature picks the mode
    logits = torch.log(probs.clamp(min=1e-12))
    assert torch.allclose(bins.decode_logits(logits, ANNEAL_T), annealed, atol=1e-6)
    assert torch.allclose(bins.decode_logits(logits), mean, atol=1e-6)


def test_float32_and_shapes():
    bins = default_bins()
    ab = random_ab(256 - 8).float().reshape(1, 2, 16, 16)
    encoded = bins.encode(ab)
    assert encoded.dtype == torch.float32
    assert bins.decode(encoded).shape == ab.shape


def test_bad_inputs_raise_named_errors():
    with pytest.raises(SSCNError, match="encode"):
        default_bins().encode(torch.zeros(1, 3, 4, 4))
    with pytest.raises(SSCNError, match="decode"):
        default_bins().decode(torch.zeros(1, 5, 4, 4))
    with pytest.raises(SSCNError, match="centers"):
        ABBins(torch.zeros(5, 3))
    with pytest.raises(SSCNError, match="grid"):
        gamut_bin_centers(grid=0)
