"""The quantised ab plane of the colour-histogram loss (paper, Formula 5; Zhang et al. 2016).

The ab plane is cut into a grid of ``grid`` x ``grid`` cells whose centres sit on
multiples of ``grid``. The package keeps a bin when some sRGB colour falls into its
cell (:func:`gamut_bin_centers`, Q = 261 at grid 10); the set is computed here from
the sRGB cube, never downloaded, so Q is a property of the bin set.

The paper quotes Q = 313, the size of the file Zhang et al. ship (``pts_in_hull.npy``).
:func:`hull_bin_centers` rebuilds that set from the sRGB gamut: it keeps every corner
of every grid cell that overlaps the convex hull of the gamut's ab projection, which
is the 261 bins plus a ring of 52 bins that no 8-bit sRGB colour falls into. Notebook 01
compares these and other definitions (:func:`count_definitions`).
"""
from __future__ import annotations

import functools
from collections.abc import Iterator

import torch

from .color import AB_SCALE, WHITE_D65, XYZ_FROM_RGB, rgb_to_lab
from .errors import SSCNError

GRID = 10
SIGMA = 5.0
NEIGHBOURS = 10
ANNEAL_T = 0.38  # Zhang et al.'s annealed-mean temperature


def srgb_cube(steps: int = 64) -> torch.Tensor:
    """Every colour of a ``steps``^3 lattice of the sRGB cube, ``steps^3 x 3`` in [0, 1]."""
    axis = torch.linspace(0, 1, steps, dtype=torch.float64)
    return torch.cartesian_prod(axis, axis, axis)


def _lattice_ab(steps: int, chunk: int = 1 << 20) -> Iterator[torch.Tensor]:
    """The ab (``N x 2``, float64) of the ``steps``^3 sRGB lattice, a slab of red values at a time.

    Slabs keep memory flat, so ``steps=256`` (every 8-bit colour) also fits.
    """
    axis = torch.linspace(0, 1, steps, dtype=torch.float64)
    green_blue = torch.cartesian_prod(axis, axis)
    per_slab = max(1, chunk // len(green_blue))
    for start in range(0, steps, per_slab):
        red = axis[start : start + per_slab]
        rgb = torch.cat((red.repeat_interleave(len(green_blue))[:, None], green_blue.repeat(len(red), 1)), 1)
        yield rgb_to_lab(rgb.T.reshape(3, -1, 1))[1:, :, 0].T


def _occupied(cells: torch.Tensor) -> torch.Tensor:
    """The distinct rows of an integer ``N x 2`` tensor, sorted (a bincount: faster than unique here)."""
    low = cells.min(0).values
    span = cells.max(0).values - low + 1
    counts = torch.bincount((cells[:, 0] - low[0]) * span[1] + (cells[:, 1] - low[1]), minlength=int(span.prod()))
    key = counts.nonzero()[:, 0]
    return torch.stack((key // span[1] + low[0], key % span[1] + low[1]), 1)


@functools.lru_cache(maxsize=8)
def _lattice_cells(grid: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid cells (integer indices, ``N x 2``) hit by the lattice: (nearest centre, lower-left corner).

    Both follow from the half-grid cell ``k = floor(2 ab / grid)``: the nearest centre
    is ``floor((k + 1) / 2)`` and the lower-left corner ``floor(k / 2)``.
    """
    halves = _occupied(torch.cat([_occupied(torch.floor(2 * ab / grid).long()) for ab in _lattice_ab(steps)]))
    nearest = _occupied(torch.div(halves + 1, 2, rounding_mode="floor"))
    corner = _occupied(torch.div(halves, 2, rounding_mode="floor"))
    return nearest, corner


def gamut_bin_centers(grid: int = GRID, steps: int = 64) -> torch.Tensor:
    """Centres ``Q x 2`` (a, b in Lab units, float64, sorted by a then b) of the cells hit by an sRGB colour.

    A colour falls into the cell of its nearest centre (round ab / grid). The colours
    are a ``steps``^3 lattice of the sRGB cube; at grid 10 the default 64-step lattice
    hits the same 261 cells as all 16.7 million 8-bit colours (``steps=256``). The
    continuous cube touches one more cell, (20, -80), through a sliver of blues about
    0.002 wide in green that no 8-bit colour reaches.
    """
    if grid <= 0 or steps < 2:
        raise SSCNError(f"gamut_bin_centers needs grid > 0 and steps >= 2, got grid={grid}, steps={steps}")
    return (_lattice_cells(grid, steps)[0] * grid).double()


def _convex_hull(points: torch.Tensor) -> torch.Tensor:
    """Convex hull ``V x 2`` of ``N x 2`` points, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, points.tolist())))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return torch.tensor(half(pts) + half(pts[::-1]), dtype=torch.float64)


def _inside(points: torch.Tensor, polygon: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    """Boolean ``N``: which points lie in (or on) the counter-clockwise convex ``polygon``."""
    edge = polygon.roll(-1, 0) - polygon  # V x 2
    rel = points[:, None, :] - polygon[None]  # N x V x 2
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return (cross >= -tol * edge.norm(dim=1)).all(1)


def _grid_points(lo: torch.Tensor, hi: torch.Tensor, grid: int) -> torch.Tensor:
    """Every multiple of ``grid`` in the box [lo, hi] (a, b), ``N x 2`` sorted by a then b."""
    a = torch.arange(int(torch.floor(lo[0] / grid)), int(torch.ceil(hi[0] / grid)) + 1) * grid
    b = torch.arange(int(torch.floor(lo[1] / grid)), int(torch.ceil(hi[1] / grid)) + 1) * grid
    return torch.cartesian_prod(a, b).double()


@functools.lru_cache(maxsize=8)
def _gamut_hull(steps: int) -> torch.Tensor:
    return _convex_hull(torch.cat(list(_lattice_ab(steps))))


def hull_bin_centers(grid: int = GRID, steps: int = 16) -> torch.Tensor:
    """Zhang et al.'s bin set, rebuilt: centres ``Q x 2`` (Lab units, float64, sorted by a then b).

    Keeps every grid point that is a corner of a ``grid`` x ``grid`` cell overlapping the
    convex hull of the sRGB gamut's ab projection, that is every centre whose
    ``2 grid`` wide square meets the hull. At grid 10 these are the same 313 centres as
    ``pts_in_hull.npy``; the nearest rejected centre misses by 0.09 ab units, and the
    hull of an 8-step lattice already gives the same set.
    """
    if grid <= 0 or steps < 2:
        raise SSCNError(f"hull_bin_centers needs grid > 0 and steps >= 2, got grid={grid}, steps={steps}")
    hull = _gamut_hull(steps)
    square = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64) * grid
    grown = _convex_hull((hull[:, None, :] + square[None]).reshape(-1, 2))
    candidates = _grid_points(grown.min(0).values, grown.max(0).values, grid)
    return candidates[_inside(candidates, grown)]


class ABBins:
    """A set of ab bin centres with soft-encoding and decoding.

    ``centers``: ``Q x 2`` in Lab units (default :func:`gamut_bin_centers`); ``num_bins`` is Q.
    """

    def __init__(self, centers: torch.Tensor | None = None, sigma: float = SIGMA, neighbours: int = NEIGHBOURS):
        centers = gamut_bin_centers() if centers is None else torch.as_tensor(centers)
        if centers.dim() != 2 or centers.shape[1] != 2 or len(centers) == 0:
            raise SSCNError(f"ABBins needs centers of shape Q x 2 (a, b in Lab units), got {tuple(centers.shape)}")
        self.centers = centers.double().clone()
        self.sigma = sigma
        self.neighbours = min(neighbours, len(self.centers))

    @property
    def num_bins(self) -> int:
        return len(self.centers)

    def _centers_like(self, x: torch.Tensor) -> torch.Tensor:
        """Centres in the network's ab scale (ab / 110), on x's device and dtype."""
        return (self.centers / AB_SCALE).to(device=x.device, dtype=x.dtype)

    def encode(self, ab: torch.Tensor) -> torch.Tensor:
        """Soft-encode normalised ab ``B x 2 x H x W`` -> ``B x Q x H x W``, each pixel summing to 1.

        Each pixel is a Gaussian (sigma 5 ab units) over its nearest ``neighbours`` centres.
        """
        if ab.dim() != 4 or ab.shape[1] != 2:
            raise SSCNError(f"ABBins.encode needs normalised ab of shape B x 2 x H x W, got {tuple(ab.shape)}")
        b, _, h, w = ab.shape
        pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2) * AB_SCALE
        dist = torch.cdist(pixels, self._centers_like(ab) * AB_SCALE)  # N x Q
        near_dist, near_idx = dist.topk(self.neighbours, dim=1, largest=False)
        weights = torch.softmax(-near_dist**2 / (2 * self.sigma**2), dim=1)
        encoded = torch.zeros_like(dist).scatter_(1, near_idx, weights)
        return encoded.view(b, h, w, -1).permute(0, 3, 1, 2)

    def decode(self, probs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Distribution ``B x Q x H x W`` -> normalised ab ``B x 2 x H x W``.

        ``temperature=1`` is the mean; ``ANNEAL_T`` (0.38) the annealed mean of Zhang et al.
        """
        if probs.dim() != 4 or probs.shape[1] != self.num_bins:
            raise SSCNError(f"ABBins.decode needs B x {self.num_bins} x H x W probabilities, got {tuple(probs.shape)}")
        if temperature != 1.0:
            probs = torch.softmax(torch.log(probs.clamp(min=1e-12)) / temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", probs, self._centers_like(probs))

    def decode_logits(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Like :meth:`decode`, from unnormalised logits ``B x Q x H x W``.

        softmax(logits / T) is the annealed distribution, without the clamp of ``decode``.
        """
        return self.decode(torch.softmax(logits / temperature, dim=1))


@functools.lru_cache(maxsize=1)
def default_bins() -> ABBins:
    """The package's bins (:func:`gamut_bin_centers`, grid 10, sigma 5, 10 neighbours), built once."""
    return ABBins()


def _in_gamut_for_some_l(centers: torch.Tensor, l_steps: int = 1001) -> torch.Tensor:
    """Boolean ``N``: is the colour (L, a, b) inside the sRGB cube for some L in [0, 100]?

    Unclipped Lab -> linear RGB (skimage's inverse), with L sampled every 0.1.
    """
    lightness = torch.linspace(0, 100, l_steps, dtype=torch.float64)[:, None]  # L x 1
    fy = ((lightness + 16) / 116).expand(-1, len(centers))
    f = torch.stack((fy + centers[:, 0] / 500, fy, fy - centers[:, 1] / 200), -1)  # L x N x 3
    xyz = torch.where(f > 6 / 29, f**3, (f - 16 / 116) / 7.787) * torch.tensor(WHITE_D65, dtype=torch.float64)
    linear = xyz @ torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)).T
    return ((linear >= 0) & (linear <= 1)).all(-1).any(0)


def count_definitions(grid: int = GRID, steps: int = 64) -> dict[str, int]:
    """Q under several gamut definitions, for notebook 01's comparison with the paper's 313.

    Counts that depend on which colours hit a cell use the ``steps``^3 lattice and can
    move by a few bins with it (at ``steps=256``, every 8-bit colour, the floor and
    corner counts are 268 and 309); the hull counts are exact already at 8 steps.
    Takes well under a second at the defaults.
    """
    nearest, corner = _lattice_cells(grid, steps)
    shifts4 = torch.tensor([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
    shifts8 = torch.cartesian_prod(torch.arange(-1, 2), torch.arange(-1, 2))
    corners_of = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]])

    def grown(cells, shifts):
        return len(torch.unique((cells[:, None, :] + shifts[None]).reshape(-1, 2), dim=0))

    hull = _gamut_hull(16)
    box = _grid_points(hull.min(0).values - grid, hull.max(0).values + grid, grid)
    return {
        "nearest centre of an sRGB colour (this package)": len(nearest),
        "lower-left corner of an sRGB colour's cell (floor)": len(corner),
        "centre itself in the sRGB gamut at some L": int(_in_gamut_for_some_l(box).sum()),
        "centre inside the convex hull of the sRGB ab gamut": int(_inside(box, hull).sum()),
        "corner of a cell holding an sRGB colour": grown(corner, corners_of),
        "corner of a cell overlapping the hull (Zhang et al.'s set)": len(hull_bin_centers(grid)),
        "nearest centre, plus its 4 neighbours": grown(nearest, shifts4),
        "nearest centre, plus its 8 neighbours": grown(nearest, shifts8),
    }
