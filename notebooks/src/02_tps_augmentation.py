# %% [markdown]
# # 02 · Thin-plate-spline augmentation: training pairs with a known answer
#
# [Open in Colab](https://colab.research.google.com/github/sscn-course/sscn/blob/main/notebooks/02_tps_augmentation.ipynb)
# · CPU only · full run about 10 s, smoke run about 10 s of CPU time on a 2-core CPU
# · words in *italics* are explained in the [glossary](00_overview.ipynb#Glossary)
#
# **Stored outputs: full run**, on scikit-image's cat photo at 192 x 288 px with three
# warps per row in the gallery. The smoke run (`SSCN_SMOKE=1`, what the test suite
# executes) uses 128 x 192 px and two warps per row; the checks are the same.
#
# SSCN learns to colour a gray photo from a colour reference. Real (target, reference)
# pairs with a known right answer do not exist, so the paper makes them: the reference
# is **the target itself, warped** by a random thin-plate spline (TPS). The network sees
# the target's L channel and the warped colour photo; the answer it must produce is the
# target's own a, b channels, which we have. The evaluation builds references the same
# way, with TPS, random rotation (RR) and random crop (RC).
#
# **What you will learn**
#
# - what a thin-plate spline is and how its $(N+3) \times (N+3)$ linear system is solved;
# - how a TPS becomes a sampling grid for `torch.nn.functional.grid_sample`, and why the
#   spline maps the *output* back to the *input*;
# - gentle warps (the usual training pair) versus violent ones (no semantic match left);
# - the RR and RC references of the evaluation, and why every reference is seeded;
# - why self-augmentation gives a ground truth, and what copying the reference's colours
#   pixel for pixel scores.
#
# **The thin-plate spline.** Given $N$ control points $p_i = (x_i, y_i)$ and target values
# $v_i$, the TPS is the smooth function that passes through every $(p_i, v_i)$ with the
# least bending energy $\iint f_{xx}^2 + 2 f_{xy}^2 + f_{yy}^2 \,dx\,dy$ (Bookstein 1989):
#
# $$f(x, y) = a_1 + a_x x + a_y y + \sum_{i=1}^{N} w_i\, U(\lVert p_i - (x, y) \rVert),
#   \qquad U(r) = r^2 \log r, \quad U(0) = 0.$$
#
# The $N + 3$ unknowns $w$ and $a = (a_1, a_x, a_y)$ solve
#
# $$\begin{pmatrix} K & P \\ P^\top & 0 \end{pmatrix}
#   \begin{pmatrix} w \\ a \end{pmatrix} = \begin{pmatrix} v \\ 0 \end{pmatrix},
#   \qquad K_{ij} = U(\lVert p_i - p_j \rVert), \quad P = \begin{pmatrix} 1 & x_i & y_i \end{pmatrix}_{i=1..N}.$$
#
# The first $N$ rows make $f(p_i) = v_i$ exactly; the last three ($P^\top w = 0$) keep the
# radial part free of any affine component, so a pure affine motion gives $w = 0$. A 2-D
# warp is two such splines, one for each output coordinate, sharing the same matrix.

# %%
# On Google Colab, install the package first (this cell does nothing anywhere else).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "sscn @ git+https://github.com/sscn-course/sscn"
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", package]).returncode != 0:
        raise SystemExit(f"could not install sscn from {package.split('git+')[1]}; upload this repository to Colab "
                         "and run `pip install -e .` in it, or run the notebook locally (see README)")

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from sscn.color import rgb_to_lab_norm, split_lab
from sscn.io.data import sample_photos
from sscn.apps.notebook import apply_smoke, smoke_mode
from sscn.apps.viz import PANEL

SMOKE = smoke_mode()  # SSCN_SMOKE=1
plt.rcParams["figure.dpi"] = 80  # modest figures keep the stored notebook small

# %% tags=["parameters"]
photo_name = "chelsea"
height = 192
width = 288
grid = 4  # control points per side
gentle = 0.08  # displacement std, fraction of the half-size (sscn.augment.TPS_GENTLE)
violent = 0.35  # sscn.augment.TPS_VIOLENT
n_examples = 3  # warps per row in the gallery
copy_seeds = 8  # references of each kind whose copy error is averaged in section 6
seed = 0

# %%
# smoke mode: these values replace the parameters above, except any that papermill set explicitly
apply_smoke(globals(), height=128, width=192, n_examples=2)
torch.manual_seed(seed)
photo = dict(sample_photos(size=(height, width), names=(photo_name,)))[photo_name]
print(f"{photo_name}: {tuple(photo.shape)} sRGB in [0, 1]")


def show(ax, rgb, title):
    ax.imshow(rgb.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def to_pixels(points, h, w):
    """Normalised (x, y) in [-1, 1] (align_corners=False) -> pixel coordinates for plotting."""
    return (points[..., 0] + 1) * w / 2 - 0.5, (points[..., 1] + 1) * h / 2 - 0.5


# %% [markdown]
# ## 1. Control points in normalised coordinates
#
# `grid_sample` addresses an image with coordinates in $[-1, 1]$: $(-1, -1)$ is the
# top-left corner of the top-left pixel and, with `align_corners=False`, pixel $j$ of $W$
# has its centre at $x = (2j + 1)/W - 1$. We put a regular `grid` x `grid` lattice of
# control points `src` over the photo and move each by a normal displacement of standard
# deviation `gentle` (a fraction of the half-size, which is 1 in these units): `dst`.
# The warp must carry the photo's content at `src[i]` to `dst[i]`.

# %%
generator = torch.Generator().manual_seed(seed)
axis = torch.linspace(-1, 1, grid, dtype=torch.float64)
ys, xs = torch.meshgrid(axis, axis, indexing="ij")
src = torch.stack((xs, ys), dim=-1).reshape(-1, 2)  # N x 2, (x, y)
dst = src + gentle * torch.randn(src.shape, generator=generator, dtype=torch.float64)
print("N =", len(src), "control points; largest move:", f"{(dst - src).norm(dim=1).max():.3f}", "(half-size = 1)")

# %% [markdown]
# ## 2. Solving the system, step by step
#
# `grid_sample` *pulls*: each output pixel at $x$ reads the input at some location $f(x)$.
# So the spline we need maps the output back to the input, with the control points as
# its centres: $f(\text{dst}_i) = \text{src}_i$. We build $K$, $P$ and the full matrix in
# float64 (the system can be ill-conditioned when points come close) and solve it for both
# coordinates at once.

# %%
def U(squared_distance):
    """r^2 log r, computed from r^2 as 0.5 r^2 log r^2 (no square root), with U(0) = 0."""
    d2 = squared_distance
    return torch.where(d2 > 0, 0.5 * d2 * torch.log(d2.clamp_min(1e-300)), torch.zeros_like(d2))


n = len(dst)
K = U(((dst[:, None, :] - dst[None, :, :]) ** 2).sum(-1))  # N x N
P = torch.cat((torch.ones(n, 1, dtype=torch.float64), dst), dim=1)  # N x 3
L = torch.zeros(n + 3, n + 3, dtype=torch.float64)
L[:n, :n], L[:n, n:], L[n:, :n] = K, P, P.T
rhs = torch.cat((src, torch.zeros(3, 2, dtype=torch.float64)))  # (N + 3) x 2: v = src, one column per coordinate
params = torch.linalg.solve(L, rhs)
w, a = params[:n], params[n:]
print("system", tuple(L.shape), "| affine part a =\n", a.numpy().round(3))


def f(points):
    """The spline at points (M x 2): a_1 + a_x x + a_y y + sum_i w_i U(|dst_i - x|)."""
    squared = ((points[:, None, :] - dst[None, :, :]) ** 2).sum(-1)  # M x N
    return a[0] + points @ a[1:] + U(squared) @ w


print("f(dst) == src:", torch.allclose(f(dst), src, atol=1e-10),
      "| P^T w == 0:", bool((P.T @ w).abs().max() < 1e-10))

# %% [markdown]
# ## 3. From spline to sampling grid to warped photo
#
# Evaluate $f$ at every pixel centre: that is the `H x W x 2` grid `grid_sample` wants.
# Samples that fall outside the photo need a rule: zeros would add black, `"border"`
# smears the edge pixels into streaks of one colour; `"reflection"` mirrors real content,
# so the reference only holds colours the photo holds. `sscn.augment` uses reflection.
#
# To see the deformation, we warp a picture of the lattice lines with the same grid and lay
# it over the warped photo: the lines through the `src` points come out through the `dst`
# points (the outer control points sit on the photo's edge).

# %%
def pixel_centers(h, w):
    ys = (torch.arange(h, dtype=torch.float64) * 2 + 1) / h - 1
    xs = (torch.arange(w, dtype=torch.float64) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)  # H x W x 2


def lattice_lines(h, w, grid, thickness=2.0):
    """A 1 x H x W mask that is 1 on the inner lines of the control lattice.

    The outer lines lie on the photo's edge; reflection would smear them inwards.
    """
    centers, inner = pixel_centers(h, w), torch.linspace(-1, 1, grid, dtype=torch.float64)[1:-1]
    near = lambda coordinate, size: ((coordinate[..., None] - inner).abs() * size / 2 < thickness / 2).any(-1)  # noqa: E731
    return (near(centers[..., 0], w) | near(centers[..., 1], h)).float()[None]


grid_draft = f(pixel_centers(height, width).reshape(-1, 2)).reshape(height, width, 2)
warp = lambda image, g: F.grid_sample(image[None].float(), g[None].float(), mode="bilinear",  # noqa: E731
                                      padding_mode="reflection", align_corners=False)[0]
warped = warp(photo, grid_draft)
lines, warped_lines = lattice_lines(height, width, grid), warp(lattice_lines(height, width, grid), grid_draft)

fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL * width / height, PANEL))
show(axes[0], torch.where(lines > 0.5, torch.ones(3, 1, 1), photo), "photo, control points src")
axes[0].scatter(*to_pixels(src, height, width), s=12, c="yellow", edgecolors="black", linewidths=0.5)
show(axes[1], torch.where(warped_lines > 0.5, torch.ones(3, 1, 1), warped), "TPS-warped, points dst")
axes[1].scatter(*to_pixels(dst, height, width), s=12, c="yellow", edgecolors="black", linewidths=0.5)
for ax in axes:  # the same frame for both, with room for points moved off the photo
    ax.set_xlim(-0.1 * width, 1.1 * width)
    ax.set_ylim(1.1 * height, -0.1 * height)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Gentle and violent warps
#
# A gentle warp (`gentle` = 0.08 of the half-size, about 5 px at 128 px) moves every
# object a little: copying the reference pixel for pixel is wrong, finding the matching
# place is right. A violent warp (0.35, half the lattice spacing) folds the lattice over
# itself: the reference still holds the photo's colours but no longer in a layout the
# network can match. Training mixes in a share of violent pairs (`violent_share`, 10 % by
# default) so that the network also learns to fall back on its own prior. The gallery
# uses `sscn.augment.random_tps`, the package version of the steps above.

# %%
from sscn.augment import TPS_GENTLE, TPS_VIOLENT, random_tps  # noqa: E402

fig, axes = plt.subplots(2, n_examples, figsize=(n_examples * PANEL * width / height, 2 * PANEL), squeeze=False)
for row, (label, strength) in enumerate((("gentle", gentle), ("violent", violent))):
    generator = torch.Generator().manual_seed(seed)
    for col in range(n_examples):
        both = torch.stack((photo, lines.expand(3, -1, -1)))
        (out, out_lines), _, moved = random_tps(both, strength, grid=grid, generator=generator)
        show(axes[row, col], torch.where(out_lines > 0.5, torch.ones(3, 1, 1), out), f"{label} {strength}, #{col}")
plt.tight_layout()
plt.show()
print("package defaults: TPS_GENTLE =", TPS_GENTLE, "TPS_VIOLENT =", TPS_VIOLENT)

# %% [markdown]
# ## 5. The evaluation's references: TPS, random rotation, random crop
#
# The evaluation (notebook 08) scores a result against the photo it came from, with three
# kinds of reference: a gentle TPS warp, a random rotation about the centre (RR, up to
# 30 degrees, corners filled by reflection) and a random crop (RC, a window of 50-100 % of
# the side, enlarged back). `make_reference(image, kind, seed)` builds each from a seed
# alone, on the CPU's random generator, so the same seed gives the same reference bit for
# bit on any machine, and a results table can always be regenerated.

# %%
from sscn.augment import REFERENCE_KINDS, make_reference  # noqa: E402

references = [make_reference(photo, kind, seed) for kind in REFERENCE_KINDS]
fig, axes = plt.subplots(1, 1 + len(references), figsize=((1 + len(references)) * PANEL * width / height, PANEL))
show(axes[0], photo, "ground truth")
for ax, ref in zip(axes[1:], references):
    show(ax, ref.image, f"{ref.kind} (seed {ref.seed})")
plt.tight_layout()
plt.show()
print("same seed, same reference:", all(torch.equal(r.image, make_reference(photo, r.kind, seed).image) for r in references))

# %% [markdown]
# ## 6. Why self-augmentation gives a ground truth
#
# The network gets the target's L channel and the reference; it predicts a, b. Because
# the reference is the target moved around, the right a, b are the target's own, and the
# loss can compare against them at every pixel. A reference only warps *where* colours
# are, never *which* colours, so what the network must learn is correspondence: find, for
# each target pixel, the reference pixel that shows the same thing.
#
# How much does correspondence matter? Copy the reference's a, b at the same pixel and
# measure the error against the truth: the further a reference moves content, the worse
# the copy, and the more a network gains by matching. How far one reference moves
# content depends on its random draw as much as on its kind (the crop of seed 0 above
# keeps almost the whole photo), so we average over `copy_seeds` references of each kind
# and show the range.

# %%
truth_ab = split_lab(rgb_to_lab_norm(photo))[1]


def copy_error(reference):
    """Mean |ab error| in Lab units when the reference's ab are copied at the same pixel."""
    copied_ab = split_lab(rgb_to_lab_norm(reference.clamp(0, 1)))[1]
    return ((copied_ab - truth_ab).abs().mean() * 110).item()


print(f"{'the photo itself':>16}: {copy_error(photo):5.2f} Lab units")
for kind in (*REFERENCE_KINDS, "tps_violent"):
    errors = [copy_error(make_reference(photo, kind, s).image) for s in range(seed, seed + copy_seeds)]
    print(f"{kind:>16}: mean |ab error| {sum(errors) / len(errors):5.2f} Lab units over {copy_seeds} seeds "
          f"(from {min(errors):.2f} to {max(errors):.2f}; seed {seed}: {errors[0]:.2f})")

# %% [markdown]
# On average the ordering follows how far each kind moves content: a gentle TPS warp
# (2.9 Lab units) < a random rotation (3.9) < a random crop (5.2) < a violent warp (5.5).
# Single draws spread widely: a crop that keeps almost the whole photo (seed 0, shown in
# section 5) is nearly free to copy (<span class="out">seed 0: 1.04</span>), another crop
# costs <span class="out">7.71</span>, more than a violent warp. The evaluation (notebook 08) therefore averages over many photos, each
# with its own seeded reference.

# %% [markdown]
# ## 7. The package version
#
# `sscn.augment.tps_grid(src, dst, height, width)` is the function drafted above, batched
# (`B x N x 2` points) and on any device: it solves in float64 on the CPU and evaluates
# the grid in float32 with one batched matrix product for all the distances. (The random
# references evaluate it on every second pixel and interpolate between, which is four
# times cheaper and at most 0.2 px off for a gentle warp (sscn/augment.py, the comment on
# `REFERENCE_STRIDE`; `tests/test_augment.py::test_strided_grid_stays_close_to_the_exact_one`
# checks a looser 0.5 px); `tps_grid` itself is exact.)
# Check that the draft and the package agree, that zero displacement is the identity, and
# that every control point lands on its target.

# %%
# NBVAL_CHECK_OUTPUT
from sscn.augment import control_lattice, tps_grid, tps_warp  # noqa: E402

package_grid = tps_grid(src[None].float(), dst[None].float(), height, width)[0]
print("draft grid == sscn.augment.tps_grid:", torch.allclose(package_grid.double(), grid_draft, atol=1e-5))
identity = control_lattice(grid)[None]
images = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(0))
print("zero displacement is the identity (max error < 1e-5):",
      bool((tps_warp(images, identity.expand(2, -1, -1), identity.expand(2, -1, -1)) - images).abs().max() < 1e-5))
on_pixels = pixel_centers(24, 40)[[3, 12, 20, 7], [5, 30, 11, 38]].float()[None]
moved_from = on_pixels + 0.05 * torch.randn(on_pixels.shape, generator=torch.Generator().manual_seed(1))
landed = tps_grid(moved_from, on_pixels, 24, 40)[0, [3, 12, 20, 7], [5, 30, 11, 38]]
print("control points land on their targets (max error < 1e-4):", bool((landed - moved_from[0]).abs().max() < 1e-4))

# %% [markdown]
# ## 8. In the data pipeline
#
# `sscn.io.data.ImageFolder(root, size=128, reference="tps")` serves, for every photo,
# `gray_l`, `ab`, `rgb`, `label` and a `ref_lab` made by `make_reference` with a seed
# derived from the dataset's seed and the item's index, so each epoch, worker and
# machine sees the same references. The trainer instead warps whole batches with
# `sscn.augment.training_references(images, generator, violent_share=0.1)`, on the GPU
# when there is one. `benchmarks/bench_data.py` measures the pipeline's throughput:
#
# ```
# python benchmarks/bench_data.py --data imagenette-144
# ```
#
# ## Conclusion
#
# - A TPS is an affine map plus radial bumps $w_i U(r)$, fixed by an $(N+3) \times (N+3)$
#   linear system; it passes through its control points exactly and bends as little as
#   possible in between.
# - `grid_sample` pulls, so the spline maps output pixels back to input positions
#   ($f(\text{dst}_i) = \text{src}_i$).
# - Warping the target gives a reference whose colours are exactly the target's, moved:
#   the target's own a, b are the ground truth. Gentle warps teach correspondence,
#   violent ones teach the network not to rely on it blindly.
# - Every reference is made from a seed on the CPU's generator, so any result can be
#   regenerated.

# %% [markdown]
# ## Exercises
#
# Each exercise has a worked solution in the cell after it; in Jupyter it starts
# collapsed, so try first, then click to reveal.

# %% [markdown]
# ### Exercise 2.1
#
# The last three rows of the TPS system ($P^\top w = 0$) keep the radial part free of any
# affine component. Check the consequence: move the control points by an affine map,
# $\text{dst}_i = A\,\text{src}_i + t$, solve the system as in section 2 and look at $w$
# and at the affine part $a$. What should $a$ be?

# %% tags=["solution"]
# Solution 2.1
A = torch.tensor([[1.1, 0.2], [-0.1, 0.9]], dtype=torch.float64)
shift = torch.tensor([0.05, -0.1], dtype=torch.float64)
affine_dst = src @ A.T + shift
K_affine = U(((affine_dst[:, None, :] - affine_dst[None, :, :]) ** 2).sum(-1))
P_affine = torch.cat((torch.ones(n, 1, dtype=torch.float64), affine_dst), dim=1)
L_affine = torch.zeros(n + 3, n + 3, dtype=torch.float64)
L_affine[:n, :n], L_affine[:n, n:], L_affine[n:, :n] = K_affine, P_affine, P_affine.T
solution = torch.linalg.solve(L_affine, torch.cat((src, torch.zeros(3, 2, dtype=torch.float64))))
w_affine, a_affine = solution[:n], solution[n:]
print("largest |w|:", f"{w_affine.abs().max().item():.1e}")
inverse = torch.linalg.inv(A)
print("a == the inverse map (x -> A^-1 (x - t)):",
      torch.allclose(a_affine[1:], inverse.T, atol=1e-10) and torch.allclose(a_affine[0], -inverse @ shift, atol=1e-10))

# %% [markdown] tags=["solution"]
# The weights $w$ vanish (to rounding), and the affine part is exactly the inverse of the
# motion: the spline maps $\text{dst}$ back to $\text{src}$, so it is $x \mapsto A^{-1}(x - t)$,
# whose first row of $a$ is $-A^{-1} t$ and whose other two rows are $(A^{-1})^\top$. An affine
# motion needs no bending, and the bending energy of the solution is zero.

# %% [markdown]
# ### Exercise 2.2
#
# How strong may a warp be before copying the reference at the same pixel stops being a
# good guess? Compute the mean copy error of section 6 for TPS strengths from 0.02 to 0.5
# (`random_tps(photo[None], strength, grid=grid, generator=...)`, a few seeds each) and find
# where it passes the error of the reference's mean colour everywhere.

# %% tags=["solution"]
# Solution 2.2
mean_colour_error = ((truth_ab.mean(dim=(1, 2), keepdim=True) - truth_ab).abs().mean() * 110).item()
print(f"the photo's own mean colour everywhere: {mean_colour_error:.2f} Lab units")
for strength in (0.02, 0.05, 0.08, 0.15, 0.25, 0.35, 0.5):
    errors = []
    for s in range(4):
        warped_photo = random_tps(photo[None], strength, grid=grid, generator=torch.Generator().manual_seed(s))[0][0]
        errors.append(copy_error(warped_photo))
    print(f"strength {strength:4.2f}: copy error {sum(errors) / len(errors):5.2f} Lab units")

# %% [markdown] tags=["solution"]
# The copy error grows steadily with the strength: 1.3 Lab units at 0.02, 2.9 at the
# gentle 0.08 of the training pairs, and it passes the error of painting the photo's
# own mean colour everywhere (5.2) between 0.25 and 0.35, the violent strength. Beyond
# that, copying the reference pixel for pixel is worse than knowing only the photo's
# average colour: a violent pair leaves the network nothing to copy, which is what it
# is for.

# %% [markdown]
# ## References
#
# - F. L. Bookstein. Principal warps: thin-plate splines and the decomposition of
#   deformations. IEEE TPAMI 11(6), 1989.
# - Y. Bai, C. Dong, Z. Chai, A. Wang, Z. Xu, C. Yuan. Semantic-Sparse Colorization Network
#   for Deep Exemplar-based Colorization. ECCV 2022.
# - M. Jaderberg, K. Simonyan, A. Zisserman, K. Kavukcuoglu. Spatial transformer networks.
#   NeurIPS 2015 (sampling grids and bilinear sampling).
#
# ---
#
# [← 01 · Lab colour space](01_lab_color_space.ipynb) · [all notebooks](00_overview.ipynb) · [03 · Global colour transfer →](03_global_color_transfer.ipynb)
