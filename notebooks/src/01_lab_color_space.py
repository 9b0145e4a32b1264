# %% [markdown]
# # 01 · The Lab colour space and the ab bins
#
# [Open in Colab](https://colab.research.google.com/github/sscn-course/sscn/blob/main/notebooks/01_lab_color_space.ipynb)
# · CPU only · full run about 10 s, smoke run about 10 s of CPU time on a 2-core CPU
# · words in *italics* are explained in the [glossary](00_overview.ipynb#Glossary)
#
# **Stored outputs: full run**, checking the conversions on 100,000 random colours. The
# smoke run (`SSCN_SMOKE=1`, what the test suite executes) uses 10,000; the pictures and
# the checks are the same.
#
# SSCN never paints a whole RGB image. It is given the lightness L of the target photo
# and predicts the two colour channels a and b of CIE Lab; its colour-histogram loss
# (paper, Formula 5) compares a predicted distribution over Q quantised ab bins with a
# soft-encoded ground truth. This notebook builds both pieces from scratch and then
# checks them against `sscn.color` and `sscn.bins`.
#
# **What you will learn**
#
# - how an sRGB colour becomes CIE Lab, one step at a time (linearisation, XYZ, the
#   cube-root function f);
# - why Lab suits colorization: L carries the picture, a and b only the colour;
# - how the network's tensors are scaled: `L / 50 - 1` and `ab / 110`;
# - what the ab gamut looks like, how it is cut into bins of width 10, and how one pixel
#   is soft-encoded over its nearest bins (10 here, 5 in Zhang et al. 2016);
# - why this package has Q = 261 bins where the paper says 313, and which definition
#   gives exactly the paper's 313.
#
# **The equations.** Each sRGB channel $C \in [0, 1]$ is first made linear in light:
#
# $$C_\mathrm{lin} = \begin{cases} C / 12.92 & C \le 0.04045 \\
#   \left(\frac{C + 0.055}{1.055}\right)^{2.4} & \text{otherwise.} \end{cases}$$
#
# A 3 x 3 matrix takes linear RGB to CIE XYZ, which is divided by the D65 white
# $(X_n, Y_n, Z_n) = (0.95047, 1, 1.08883)$:
#
# $$\begin{pmatrix} X \\ Y \\ Z \end{pmatrix} =
#   \begin{pmatrix} 0.412453 & 0.357580 & 0.180423 \\ 0.212671 & 0.715160 & 0.072169 \\
#   0.019334 & 0.119193 & 0.950227 \end{pmatrix}
#   \begin{pmatrix} R_\mathrm{lin} \\ G_\mathrm{lin} \\ B_\mathrm{lin} \end{pmatrix}.$$
#
# A cube root, replaced by a straight line near black, makes equal steps look equal:
#
# $$f(t) = \begin{cases} t^{1/3} & t > (6/29)^3 \\
#   \frac{t}{3 (6/29)^2} + \frac{4}{29} & \text{otherwise,} \end{cases}$$
#
# $$L = 116 f(Y/Y_n) - 16, \qquad a = 500\,\big(f(X/X_n) - f(Y/Y_n)\big), \qquad
#   b = 200\,\big(f(Y/Y_n) - f(Z/Z_n)\big).$$
#
# L runs from 0 (black) to 100 (white); a goes from green (negative) to red, b from blue
# (negative) to yellow. The network sees $L/50 - 1$ and $ab/110$, both in about [-1, 1].
#
# **Soft-encoding** (Zhang et al. 2016, used by the paper's histogram loss): a pixel's
# true $ab = y$ becomes weights over the bin centres $c_q$,
#
# $$z_q \propto \exp\left(-\frac{\lVert y - c_q \rVert^2}{2 \sigma^2}\right)
#   \text{ for the } K \text{ centres nearest to } y, \quad z_q = 0 \text{ otherwise}, \quad
#   \sigma = 5, \quad \textstyle\sum_q z_q = 1.$$
#
# Zhang et al. take the $K = 5$ nearest centres; this package takes $K = 10$
# (`sscn.bins.NEIGHBOURS`), with the same $\sigma = 5$.

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
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from scipy.spatial import ConvexHull
from skimage import color as skcolor
from skimage import data as skdata

from sscn.apps.notebook import apply_smoke, smoke_mode

SMOKE = smoke_mode()  # SSCN_SMOKE=1
plt.rcParams["figure.dpi"] = 80  # modest figures keep the stored notebook small
FIGSIZE = (10, 3.5)

# %% tags=["parameters"]
image_name = "chelsea"  # a colour photo from skimage.data: chelsea, astronaut, coffee, rocket
random_colours = 100_000  # random sRGB colours for the checks
lightness = 50  # L of the ab-plane picture
pixel_rgb = [0.85, 0.45, 0.2]  # the pixel we follow through the conversion and the encoding
seed = 0

# %%
# smoke mode: these values replace the parameters above, except any that papermill set explicitly
apply_smoke(globals(), random_colours=10_000)
rng = np.random.default_rng(seed)
print(f"photo: skimage.data.{image_name}, random colours: {random_colours:,}")

# %% [markdown]
# ## 1. sRGB to Lab, one step at a time
#
# Each equation above becomes one line of NumPy. The functions work on any array whose
# last axis holds the three channels.

# %%
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def linearise(c):
    """sRGB in [0, 1] -> linear light."""
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def f(t):
    """The cube root of Lab, a straight line below (6/29)^3 so its slope stays finite at black."""
    return np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)


def draft_rgb_to_lab(rgb):
    """... x 3 sRGB in [0, 1] -> ... x 3 Lab."""
    xyz = linearise(rgb) @ XYZ_FROM_RGB.T / WHITE_D65
    fx, fy, fz = np.moveaxis(f(xyz), -1, 0)
    return np.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), -1)


pixel = np.array(pixel_rgb)
print("sRGB            ", pixel.round(4))
print("linear RGB      ", linearise(pixel).round(4))
print("XYZ / white     ", (linearise(pixel) @ XYZ_FROM_RGB.T / WHITE_D65).round(4))
print("f(XYZ / white)  ", f(linearise(pixel) @ XYZ_FROM_RGB.T / WHITE_D65).round(4))
print("Lab             ", draft_rgb_to_lab(pixel).round(2))
print("skimage rgb2lab ", skcolor.rgb2lab(pixel[None, None])[0, 0].round(2))

# %% [markdown]
# ## 2. Why Lab: the picture is in L, the colour in ab
#
# Split a real photo. The L channel alone is a perfectly readable gray photo: it is the
# network's input. The ab channels alone, shown at a constant L of 50, are a flat map of
# colours with hardly any detail: that is what the network has to predict. The last panel
# counts the photo's pixels over the ab plane; most of them sit near the gray centre.

# %%
photo = getattr(skdata, image_name)()[..., :3] / 255.0  # H x W x 3
lab = draft_rgb_to_lab(photo)
ab_only = np.concatenate((np.full_like(lab[..., :1], 50.0), lab[..., 1:]), -1)

fig, axes = plt.subplots(1, 4, figsize=FIGSIZE)
axes[0].imshow(photo)
axes[0].set_title("sRGB photo")
axes[1].imshow(lab[..., 0], cmap="gray", vmin=0, vmax=100)
axes[1].set_title("L only (the input)")
axes[2].imshow(skcolor.lab2rgb(ab_only))
axes[2].set_title("ab only, L = 50 (the output)")
for ax in axes[:3]:
    ax.axis("off")
axes[3].hist2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=110, range=[[-110, 110], [-110, 110]], cmap="viridis", norm=LogNorm())
axes[3].set(title="the photo's ab values (pixels)", xlabel="a", ylabel="b", aspect="equal", facecolor="0.9")
fig.tight_layout()
plt.show()
print("spread (std) of L, a, b over the photo:", lab.reshape(-1, 3).std(0).round(1))

# %% [markdown]
# ## 3. The ab gamut and the bins
#
# Not every (L, a, b) is a colour a screen can show. At one lightness only a patch of the
# ab plane converts back into the sRGB cube (left: L = 50, the rest in gray). Over all
# lightnesses together the sRGB colours cover a larger region (right: 10,000 random
# colours, each drawn in its own colour). The ab plane is cut into 10 x 10 cells centred
# on multiples of 10. This package keeps a bin when some sRGB colour falls into its cell,
# that is when the bin is some colour's nearest centre (black dots). Zhang et al.'s
# 313 bins add a ring of 52 more (red circles); section 5 explains where they come from.

# %%
from sscn.bins import ABBins, count_definitions, default_bins, hull_bin_centers

bins = default_bins()  # the package's bins, grid 10
hull_centers = hull_bin_centers()  # Zhang et al.'s 313, rebuilt
package = {tuple(c) for c in bins.centers.long().tolist()}
ring = np.array([c for c in hull_centers.long().tolist() if tuple(c) not in package])

axis = np.linspace(-115, 115, 231)
a_plane, b_plane = np.meshgrid(axis, axis[::-1])
plane = np.stack((np.full_like(a_plane, lightness), a_plane, b_plane), -1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # skimage warns about the negative Z it clips
    plane_rgb = skcolor.lab2rgb(plane)
in_gamut = np.abs(draft_rgb_to_lab(plane_rgb) - plane).max(-1) < 0.5
plane_rgb[~in_gamut] = 0.85

sample = rng.random((10_000, 3))
sample_ab = draft_rgb_to_lab(sample)[:, 1:]
outline = sample_ab[ConvexHull(sample_ab).vertices]

fig, axes = plt.subplots(1, 2, figsize=FIGSIZE)
axes[0].imshow(plane_rgb, extent=(-115, 115, -115, 115))
axes[0].scatter(*bins.centers.numpy().T, s=2, c="k")
axes[0].set(title=f"ab plane at L = {lightness}, package bins", xlabel="a", ylabel="b")
axes[1].scatter(*sample_ab.T, s=1, c=sample, rasterized=True)
axes[1].scatter(*bins.centers.numpy().T, s=3, c="k", label=f"package bins (Q = {bins.num_bins})")
axes[1].scatter(*ring.T, s=14, facecolors="none", edgecolors="r", label=f"+ ring: Zhang et al. (Q = {len(hull_centers)})")
axes[1].fill(*outline.T, fill=False, ls="--", lw=0.8, color="0.3", label="convex hull of the sRGB ab")
axes[1].set(title="every L: sRGB colours and the bins", xlabel="a", ylabel="b", xlim=(-120, 120), ylim=(-125, 115))
axes[1].legend(loc="lower left", fontsize=7)
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Soft-encoding one pixel
#
# A pixel's ab is spread over its 10 nearest bins with Gaussian weights (sigma = 5; Zhang
# et al. spread it over 5), so
# the target of the histogram loss says "about here" instead of naming a single bin. The
# weighted mean of the centres (the decoded ab) lands back near the pixel's true ab.
# Tensors here use the network's scale, ab / 110, and the shape `B x 2 x H x W`.

# %%
pixel_ab = draft_rgb_to_lab(pixel)[1:]
encoded = bins.encode(torch.from_numpy(pixel_ab / 110).view(1, 2, 1, 1))[0, :, 0, 0]
decoded = bins.decode(encoded.view(1, -1, 1, 1))[0, :, 0, 0].numpy() * 110
kept = encoded.nonzero()[:, 0]
order = kept[encoded[kept].argsort(descending=True)]

fig, axes = plt.subplots(1, 2, figsize=FIGSIZE)
near = (np.abs(bins.centers.numpy() - pixel_ab) <= 30).all(1)
axes[0].scatter(*bins.centers.numpy()[near].T, s=12, c="0.75", label="bin centres")
dots = axes[0].scatter(*bins.centers.numpy()[kept].T, s=2000 * encoded[kept].numpy() + 10, c=encoded[kept].numpy(), cmap="viridis")
axes[0].plot(*pixel_ab, "rx", ms=10, mew=2, label="true ab")
axes[0].plot(*decoded, "w+", ms=12, mew=2, label="decoded (mean)")
axes[0].set(title=f"pixel {pixel_rgb}: its 10 weights", xlabel="a", ylabel="b", aspect="equal")
axes[0].set_facecolor("0.35")
axes[0].legend(loc="lower left", fontsize=7)
fig.colorbar(dots, ax=axes[0], label="weight")
distance = np.linalg.norm(bins.centers.numpy()[order] - pixel_ab, axis=1)
axes[1].bar(range(len(order)), encoded[order].numpy(), color="C0")
axes[1].set_xticks(range(len(order)), [f"{d:.1f}" for d in distance], fontsize=7)
axes[1].set(title="weights, by distance to the true ab", xlabel="distance in ab units", ylabel="weight")
fig.tight_layout()
plt.show()
print("true ab", pixel_ab.round(2), "decoded", decoded.round(2), "weights sum to", round(float(encoded.sum()), 6))

# %% [markdown]
# The same encoding over a whole photo (every fourth pixel): each pixel's weights add up
# to one and use exactly 10 bins.

# %%
# NBVAL_CHECK_OUTPUT
photo_ab = torch.from_numpy(lab[::4, ::4, 1:] / 110).permute(2, 0, 1)[None]  # 1 x 2 x H x W
photo_encoded = bins.encode(photo_ab)
print("soft-encodings sum to 1:", bool(torch.allclose(photo_encoded.sum(1), torch.ones(1, dtype=torch.float64))))
print("every pixel uses 10 bins:", bool(((photo_encoded > 0).sum(1) == 10).all()))

# %% [markdown]
# ## 5. How many bins? Q = 261 here, 313 in the paper
#
# The paper (following Zhang et al. 2016) says the ab plane is quantised with grid size 10
# into Q = 313 in-gamut bins. Zhang et al. ship those centres as a data file,
# `pts_in_hull.npy`; their paper says only that the bins kept are "in-gamut". This package computes its
# bins instead of downloading them, so we tried the definitions one might reasonably mean
# by "in-gamut" and counted (`sscn.bins.count_definitions`):

# %%
counts = count_definitions()
for name, q in counts.items():
    print(f"{q:4d}  {name}")

# %% [markdown]
# What we found:
#
# - **The package's definition**, a bin is some sRGB colour's nearest centre, gives
#   **261**. The 64-step lattice of the cube the package samples hits exactly the same
#   cells as all 16.7 million 8-bit colours; the continuous cube reaches one more,
#   (20, -80), through a thin sliver of blues that no 8-bit colour falls into (checked by
#   `tests/test_bins.py::test_lattice_density_moves_only_the_blue_sliver`).
# - Binning by the lower-left corner (floor) gives 265; keeping only centres that are
#   themselves colours at some L gives 229; centres inside
#   the convex hull of the gamut 233; adding every hit cell's 4 or 8 neighbours 323 and
#   347. None of these is 313, and a denser colour sampling moves them by a few bins, not
#   to 313.
# - **Exactly 313**: keep every corner of every 10 x 10 grid cell that overlaps the convex
#   hull of the sRGB gamut's ab projection (the dashed outline above). Equivalently: a
#   centre is kept when the 20 x 20 square around it meets the hull. Compared point by
#   point with the file, this gives *the same 313 centres*, not just the same count
#   (`tests/test_bins.py` stores the file's columns and checks it). Even the hull of an
#   8 x 8 x 8 lattice gives the same set (checked by
#   `tests/test_bins.py::test_hull_bins_are_zhang_et_al_313`), so the match is not a fluke
#   of sampling. The file's name, "points in hull", fits. We cannot know that Zhang et al. computed it this way; it is the one definition
#   we tried that reproduces their set exactly.
#
# The 313 set is the package's 261 plus a ring of 52 bins just outside the gamut, which no
# 8-bit sRGB colour has as its nearest centre. The ring matters for the soft-encoding: a
# colour on the rim of the gamut has bins on every side only when the ring is there.
# Without it, its 10 nearest bins all lie inward and the decoded mean is pulled inward,
# by up to about 5 ab units at the yellow corner of the cube, as the check below and the
# maps show; with the ring the round trip stays within half an ab unit.

# %%
hull_bins = ABBins(hull_centers)
check_rgb = np.concatenate((np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], float), rng.random((min(random_colours, 20_000), 3))))
check_ab = torch.from_numpy(draft_rgb_to_lab(check_rgb)[:, 1:].T / 110).reshape(1, 2, -1, 1)
errors = {}
for name, these in (("package, Q = 261", bins), ("Zhang et al., Q = 313", hull_bins)):
    errors[name] = ((these.decode(these.encode(check_ab)) - check_ab) * 110).norm(dim=1).flatten().numpy()
    print(f"{name}: decode(encode(ab)) misses by {errors[name].mean():.2f} on average, {errors[name].max():.2f} at most (ab units)")

fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
shown = np.arange(min(len(check_rgb), 6_000))  # the eight corners and the first random colours
for ax, (name, error) in zip(axes, errors.items()):
    on_top = shown[np.argsort(error[shown])]  # the largest errors drawn last
    dots = ax.scatter(*(check_ab[0, :, :, 0].numpy()[:, on_top] * 110), c=error[on_top], s=3, cmap="inferno", vmin=0, vmax=5, rasterized=True)
    ax.set(title=f"round-trip error, {name}", xlabel="a", aspect="equal")
axes[0].set_ylabel("b")
fig.colorbar(dots, ax=axes, label="ab units")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("Q =", bins.num_bins)
print("Zhang et al.'s set, rebuilt: Q =", len(hull_centers))
print("the package's bins lie inside it:", package < {tuple(c) for c in hull_centers.long().tolist()})
print("all centres on multiples of 10 within [-110, 110]:", bool((hull_centers % 10 == 0).all() and hull_centers.abs().max() <= 110))

# %% [markdown]
# The package keeps Q as a property of the bin set (`bins.num_bins`), so the network and
# the loss follow whichever set they are given: `ABBins(hull_bin_centers())` is the
# paper's 313.
#
# ## 6. The package version, and a check
#
# `sscn.color` is the same conversion in torch: batched (`B x 3 x H x W` or `3 x H x W`),
# differentiable (the network's losses back-propagate through it), on any device. It uses
# skimage's rounded constants ($(6/29)^3 \approx 0.008856$, $1/(3 (6/29)^2) \approx 7.787$),
# which is why our draft and skimage differ in the last digits near black.

# %%
from sscn.color import denormalize_lab, lab_to_rgb, normalize_lab, rgb_to_lab

colours = np.concatenate((check_rgb[:8], rng.random((random_colours, 3))))
ours = rgb_to_lab(torch.from_numpy(colours.T.copy()).reshape(3, -1, 1)).reshape(3, -1).T.numpy()
reference = skcolor.rgb2lab(colours)
err_skimage = np.abs(ours - reference).max()
err_draft = np.abs(ours - draft_rgb_to_lab(colours)).max()
back = lab_to_rgb(torch.from_numpy(reference.T.copy()).reshape(3, -1, 1)).reshape(3, -1).T.numpy()
err_round_trip = np.abs(back - colours).max()
print(f"largest difference: vs skimage {err_skimage:.1e}, vs our draft {err_draft:.1e} (Lab units), RGB round trip {err_round_trip:.1e}")

photo_lab = rgb_to_lab(torch.from_numpy(photo).permute(2, 0, 1))
photo_norm = normalize_lab(photo_lab)
print(f"network scale: L/50 - 1 in [{photo_norm[0].min():.2f}, {photo_norm[0].max():.2f}], ab/110 in [{photo_norm[1:].min():.2f}, {photo_norm[1:].max():.2f}]")

# %%
# NBVAL_CHECK_OUTPUT
print("sscn.color agrees with skimage:", err_skimage < 1e-3)
print("sscn.color agrees with the draft:", err_draft < 1e-3)
print("Lab -> RGB round trip within 1e-4:", err_round_trip < 1e-4)
print("normalisation round trip:", bool(torch.allclose(denormalize_lab(photo_norm), photo_lab)))

# %% [markdown]
# ## Conclusion
#
# - Lab separates what the network is given (L) from what it predicts (ab); the network
#   sees both scaled to about [-1, 1].
# - The histogram loss needs bins: grid 10, each pixel a Gaussian over its 10 nearest (5
#   in Zhang et al. 2016).
#   This package keeps the 261 cells that sRGB colours fall into; the paper's 313 are those
#   plus a ring outside the gamut, the corners of every cell that overlaps the gamut's
#   convex hull, and that ring keeps the decoded colours of saturated pixels unbiased.
#   Q = 261 is a deviation from the paper; `ABBins(hull_bin_centers())` restores 313.
# - `sscn.color` matches scikit-image to machine precision and is differentiable.

# %% [markdown]
# ## Exercises
#
# Each exercise has a worked solution in the cell after it; in Jupyter it starts
# collapsed, so try first, then click to reveal.

# %% [markdown]
# ### Exercise 1.1
#
# The rim bias of 261 bins against 313: take the six most saturated sRGB colours (pure
# red, green, blue, cyan, magenta, yellow), soft-encode their ab with each bin set and
# decode again. Which colour is pulled furthest towards gray by the package's bins, by
# how much, and in which direction?

# %% tags=["solution"]
# Solution 1.1
corners = {"red": [1, 0, 0], "green": [0, 1, 0], "blue": [0, 0, 1], "cyan": [0, 1, 1], "magenta": [1, 0, 1],
           "yellow": [1, 1, 0]}
corner_ab = torch.from_numpy(draft_rgb_to_lab(np.array(list(corners.values()), float))[:, 1:].T / 110).reshape(1, 2, -1, 1)
for label, these in (("Q = 261", bins), ("Q = 313", hull_bins)):
    back = these.decode(these.encode(corner_ab))
    shift = ((back - corner_ab) * 110)[0, :, :, 0].T  # colours x 2, Lab units
    inward = ((back.norm(dim=1) - corner_ab.norm(dim=1)) * 110)[0, :, 0]  # negative: towards gray
    print(label + ": " + ", ".join(f"{name} {d.norm():.1f} ({i:+.1f} in chroma)"
                                   for name, d, i in zip(corners, shift, inward)))

# %% [markdown] tags=["solution"]
# Yellow is pulled furthest, by 4.7 ab units, almost all of it towards gray (4.6 units
# of chroma lost), then green (3.3); with Zhang et al.'s 313 bins no corner moves by more
# than 0.4. The package's bins stop at the cells that sRGB colours fall into, so a colour
# on the rim of the gamut has bins only on its inner side, and the weighted mean of its
# 10 nearest centres lands inside. A network trained on these targets learns slightly
# paler versions of the most saturated colours, yellow most of all.

# %% [markdown]
# ### Exercise 1.2
#
# The network sees $L / 50 - 1$ and $ab / 110$. Over every 8-bit sRGB colour (a 64-step
# lattice of the cube is enough), what are the ranges of L, a and b, and do the
# normalised values stay inside $[-1, 1]$? How much of $[-1, 1]$ does each ab channel use?

# %% tags=["solution"]
# Solution 1.2
steps = np.linspace(0, 1, 64)
lattice = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
lattice_lab = rgb_to_lab(torch.from_numpy(lattice.T.copy()).reshape(3, -1, 1)).reshape(3, -1)
normalised = normalize_lab(lattice_lab.reshape(3, -1, 1)).reshape(3, -1)
for name, raw, scaled in zip("Lab", lattice_lab, normalised):
    print(f"{name}: [{raw.min():7.2f}, {raw.max():7.2f}] -> normalised [{scaled.min():5.2f}, {scaled.max():5.2f}]")
print("inside [-1, 1]:", bool(normalised.abs().max() <= 1))

# %% [markdown] tags=["solution"]
# L spans exactly [0, 100], so $L / 50 - 1$ fills $[-1, 1]$. The ab channels use less:
# a runs from -86 to 98 and b from -108 to 94 Lab units, so $ab / 110$ stays inside
# $[-1, 1]$ with a margin (a uses [-0.78, 0.89], b [-0.98, 0.86]). That margin is why the
# network can end its ab head with a tanh, whose range is $(-1, 1)$, and still reach
# every sRGB colour.

# %% [markdown]
# ## References
#
# - Yunpeng Bai, Chao Dong, Zenghao Chai, Andong Wang, Zhengzhuo Xu, Chun Yuan,
#   "Semantic-Sparse Colorization Network for Deep Exemplar-based Colorization", ECCV 2022
#   (the histogram loss, Formula 5).
# - Richard Zhang, Phillip Isola, Alexei A. Efros, "Colorful Image Colorization", ECCV 2016
#   (the ab bins, the soft-encoding, the annealed mean).
# - IEC 61966-2-1 (sRGB) and CIE 15 (colorimetry, CIE Lab); `skimage.color.rgb2lab`.
#
# ---
#
# [← 00 · Overview](00_overview.ipynb) · [all notebooks](00_overview.ipynb) · [02 · TPS augmentation →](02_tps_augmentation.ipynb)
