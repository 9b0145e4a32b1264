# %% [markdown]
# # 06 · Losses: what the network is asked to minimise
#
# [Open in Colab](https://colab.research.google.com/github/sscn-course/sscn/blob/main/notebooks/06_losses.ipynb)
# · CPU only · full run about 10 s, smoke run about 10 s of CPU time on a 2-core CPU
# · words in *italics* are explained in the [glossary](00_overview.ipynb#Glossary)
#
# **Stored outputs: full run**, on scikit-image's cat photo at 128 x 128 px. The smoke run
# (`SSCN_SMOKE=1`, what the test suite executes) uses 64 x 64 px; the numbers change a
# little, the pictures and the checks do not.
#
# SSCN is trained with five losses at once (paper, Sec. 3.3): smooth-L1 on the coarse
# and on the fine ab, a colour-histogram cross-entropy, a total-variation penalty on the
# fine ab, and the cross-entropy of the CAM classifier. This notebook takes each one
# apart on the pixels of a real photo, drafts it in a few lines, and checks the draft
# against `sscn.training.losses`.
#
# **What you will learn**
#
# - smooth-L1 (Formula 4), and why colorization avoids L2: with two plausible colours,
#   L2's best guess is their muddy average, L1's is one of them;
# - the soft-encoding of a pixel's colour over the Q ab bins and the colour-histogram
#   loss (Formula 5), as pictures;
# - what total variation measures and what it does to a noisy ab map;
# - the classification cross-entropy, and how the weighted sum (Formula 6) balances the
#   five terms;
# - beyond the paper: the contextual loss, which scores a result against a *different*
#   photo's colours by comparing feature sets rather than pixels.
#
# **The losses.** All ab are normalised ($ab / 110$). With $d = \hat{x} - x$ per pixel and
# channel, the paper's Formula 4 is the Huber loss with threshold $\delta$:
#
# $$\mathcal{L}_{\delta}(d) = \begin{cases} \tfrac{1}{2} d^2 & |d| < \delta \\
#   \delta\,\big(|d| - \tfrac{1}{2}\delta\big) & \text{otherwise.} \end{cases} \qquad \text{(Formula 4, the paper)}$$
#
# **Deviation: this package uses PyTorch's smooth-L1**, with $\beta$ = one ab unit $= 1/110$,
# averaged over the $N$ values:
#
# $$\mathcal{L}_{sl1}(\hat{x}, x) = \frac{1}{N} \sum \begin{cases} \tfrac{1}{2} d^2 / \beta & |d| < \beta \\
#   |d| - \tfrac{1}{2}\beta & \text{otherwise} \end{cases}
#   \;=\; \frac{1}{N} \sum \frac{\mathcal{L}_{\beta}(d)}{\beta}. \qquad \text{(this package)}$$
#
# Both have the same shape (quadratic below the threshold, linear above it), but
# smooth-L1 is the Huber loss *divided by* $\beta$: with $\beta = 1/110$ it is 110 times
# larger, so the package's weight $\lambda = 100$ acts like a weight of 11,000 on the
# paper's Huber form at the same threshold (exercise 6.1 checks it).
#
# The network also predicts, at $H/4 \times W/4$, a distribution $\hat{p}$ over the Q bins;
# the histogram loss is its cross-entropy with the soft-encoded ground truth $z$
# (notebook 01). The paper sums it over the pixels:
#
# $$\mathcal{L}_{hist} = -\sum_{i} \sum_{q=1}^{Q} z_{i,q} \log \hat{p}_{i,q}. \qquad \text{(Formula 5, the paper)}$$
#
# **Deviation: this package takes the mean** over the $hw$ positions of the
# $H/4 \times W/4$ grid, with the ground truth's ab averaged down to that grid before it is
# soft-encoded:
#
# $$\mathcal{L}_{hist} = -\frac{1}{hw} \sum_{i} \sum_{q=1}^{Q} z_{i,q} \log \hat{p}_{i,q}. \qquad \text{(this package)}$$
#
# The sum is $hw$ times the mean (1,024 times at 128 px, 4,096 at 256 px), so with the
# same weight 1 the sum would outweigh every other term, all of which are means here
# (exercise 6.2 measures it); the mean keeps the term between its entropy floor and
# $\log Q$, whatever the image size.
#
# Total variation, on the fine ab, with mean absolute differences of neighbours:
#
# $$\mathcal{L}_{tv}(\hat{ab}) = \operatorname{mean} |\hat{ab}_{i+1,j} - \hat{ab}_{i,j}|
#   + \operatorname{mean} |\hat{ab}_{i,j+1} - \hat{ab}_{i,j}|,$$
#
# and the classifier's cross-entropy $\mathcal{L}_{ce} = -\log \operatorname{softmax}(\hat{y})_{y}$.
# The total (Formula 6) weighs them 100 (coarse), 100 (fine), 0.1 (class), 1 (histogram)
# and 10 (TV).

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
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from skimage.filters import gaussian

from sscn.bins import default_bins
from sscn.color import AB_SCALE, join_lab, lab_norm_to_rgb, lab_to_rgb, rgb_to_lab_norm, split_lab
from sscn.io.data import sample_photos
from sscn.apps.notebook import apply_smoke, smoke_mode
from sscn.apps.viz import PANEL, to_image

SMOKE = smoke_mode()  # SSCN_SMOKE=1
plt.rcParams["figure.dpi"] = 72  # modest figures keep the stored notebook small

# %% tags=["parameters"]
photo_name = "chelsea"
size = 128
pixel_y = 0.3  # the pixel whose soft-encoding is drawn, as fractions of the height and width
pixel_x = 0.62
share = 0.6  # the toy's share of photos in which the object is the first colour
noise_std = 12.0  # ab units, the noise added to the ab map in the TV section
blur_sigma = 1.5  # px, the smoothing applied to it
seed = 0

# %%
# smoke mode: these values replace the parameters above, except any that papermill set explicitly
apply_smoke(globals(), size=64)
torch.manual_seed(seed)
photo = sample_photos(size, names=(photo_name,))[0][1]
gray_l, true_ab = split_lab(rgb_to_lab_norm(photo))
bins = default_bins()
print(f"{photo_name}: {size} x {size} px; ab spans {true_ab.min() * AB_SCALE:.0f} .. {true_ab.max() * AB_SCALE:.0f} "
      f"Lab units; Q = {bins.num_bins} bins")


def show_ab(ab, ax, title):
    """The photo's own L with the given (normalised) ab."""
    ax.imshow(to_image(lab_norm_to_rgb(join_lab(gray_l, ab))))
    ax.set_title(title, fontsize=10)
    ax.axis("off")


# %% [markdown]
# ## 1. Smooth-L1 (Formula 4, as this package computes it)
#
# Draft it with `torch.where` and try it on a plausible wrong answer: the photo's own
# colours at half their saturation.

# %%
BETA = 1 / AB_SCALE  # one ab unit


def smooth_l1_draft(pred, true, beta=BETA):
    diff = (pred - true).abs()
    return torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta).mean()


faded = 0.5 * true_ab
print(f"smooth-L1(faded, truth) = {smooth_l1_draft(faded, true_ab).item():.5f}, "
      f"L2 = {F.mse_loss(faded, true_ab).item():.6f}  (normalised units)")

fig, axes = plt.subplots(1, 3, figsize=(4.5 * PANEL, 1.5 * PANEL))
for ax, span in zip(axes[:2], (30, 2)):
    e = torch.linspace(-span, span, 301)  # ab units
    ax.plot(e, 0.5 * (e / AB_SCALE) ** 2 / BETA, label="L2 (same curvature at 0)")
    ax.plot(e, (e / AB_SCALE).abs(), label="L1")
    ax.plot(e, [smooth_l1_draft(x / AB_SCALE, torch.zeros(())).item() for x in e], "k--", label="smooth-L1")
    ax.set(xlabel="error (ab units)", ylabel="penalty", title=f"error within +-{span} ab units",
           ylim=(0, 0.3 if span == 30 else 0.03))
axes[0].legend(fontsize=8)
show_ab(faded, axes[2], "half saturation")
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
from sscn.training.losses import smooth_l1  # noqa: E402

print("draft == sscn.training.losses.smooth_l1:", torch.allclose(smooth_l1_draft(faded, true_ab), smooth_l1(faded, true_ab)))

# %% [markdown]
# Below one ab unit, a difference nobody can see, the penalty is quadratic, so the
# gradient fades smoothly to zero; above it the penalty grows only linearly, so large
# errors pull no harder than small ones.
#
# ## 2. Why not L2: the averaging of colours
#
# A gray L channel often fits several colours: a car may be red or blue. Say that in
# the training photos this object is red in a share `share` of them and blue in the
# rest. One network output must serve them all, so the best it can do is the colour
# that minimises the *expected* loss. Search for it over the whole ab plane:

# %%
red, blue = torch.tensor([55.0, 45.0]), torch.tensor([-30.0, -45.0])  # Lab a, b
grid_a, grid_b = torch.meshgrid(torch.arange(-60.0, 70.5, 0.5), torch.arange(-60.0, 60.5, 0.5), indexing="ij")
candidates = torch.stack((grid_a, grid_b), -1).reshape(-1, 2) / AB_SCALE


def expected(loss_of_error):
    """Expected loss of each candidate ab over the two possible truths, per channel summed."""
    return sum(weight * loss_of_error(candidates - colour / AB_SCALE).sum(-1)
               for weight, colour in ((share, red), (1 - share, blue)))


def huber(d):
    return torch.where(d.abs() < BETA, 0.5 * d**2 / BETA, d.abs() - 0.5 * BETA)


best_l2 = candidates[expected(lambda d: d**2).argmin()] * AB_SCALE
best_sl1 = candidates[expected(huber).argmin()] * AB_SCALE
mean = share * red + (1 - share) * blue
print(f"L2 optimum:        a = {best_l2[0]:6.1f}, b = {best_l2[1]:6.1f}   (the mean: a = {mean[0]:.1f}, b = {mean[1]:.1f})")
print(f"smooth-L1 optimum: a = {best_sl1[0]:6.1f}, b = {best_sl1[1]:6.1f}   (red: a = {red[0]:.1f}, b = {red[1]:.1f})")

swatches = [("red", red), ("blue", blue), ("L2 optimum", best_l2), ("smooth-L1 optimum", best_sl1)]
fig, axes = plt.subplots(1, 5, figsize=(5 * PANEL, 1.2 * PANEL), gridspec_kw={"width_ratios": [1, 1, 1, 1, 2.2]})
for ax, (name, ab) in zip(axes, swatches):
    patch = lab_to_rgb(torch.cat((torch.tensor([55.0]), ab)).view(3, 1, 1).expand(3, 8, 8))
    ax.imshow(to_image(patch))
    ax.set_title(name, fontsize=10)
    ax.axis("off")
t = torch.linspace(-0.2, 1.2, 141)
line = (red + t[:, None] * (blue - red)) / AB_SCALE
for name, loss_of_error in (("L2", lambda d: d**2), ("smooth-L1", huber)):
    value = sum(w * loss_of_error(line - c / AB_SCALE).sum(-1) for w, c in ((share, red), (1 - share, blue)))
    axes[4].plot(t, value / value.max(), label=name)
axes[4].set(xlabel="position on the line red (0) -> blue (1)", ylabel="expected loss (scaled)")
axes[4].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# L2's optimum is the mean of the possible colours, a muddy, desaturated colour that is
# right in no photo: this is the washed-out look of colorization networks trained with
# L2 (Zhang et al. 2016 show it at length). The
# smooth-L1 optimum is the per-channel median (within its one-unit quadratic zone), here
# the majority colour, red: a vivid
# answer that is right most of the time. (With three or more modes a per-channel median
# can still mix them; the histogram loss below is the principled answer, since it
# predicts a whole distribution.)
#
# ## 3. Soft-encoding and the colour-histogram loss (Formula 5)
#
# The ab plane is cut into Q bins of width 10 (notebook 01). A pixel's colour becomes a
# distribution $z$: a Gaussian ($\sigma = 5$) over its 10 nearest bin centres. Zhang et al.
# 2016, whose soft-encoding this is, use the same $\sigma$ over the 5 nearest; this package
# uses 10 (`sscn.bins.NEIGHBOURS`). Draft it for one pixel of the photo:

# %%
centers = bins.centers.float()  # Q x 2, Lab units
row, col = int(pixel_y * size), int(pixel_x * size)
pixel_ab = true_ab[:, row, col] * AB_SCALE
distance = (centers - pixel_ab).norm(dim=1)
nearest = distance.argsort()[:10]
weights = torch.exp(-distance[nearest] ** 2 / (2 * 5.0**2))
z_draft = torch.zeros(bins.num_bins).index_put_((nearest,), weights / weights.sum())
print(f"pixel ({row}, {col}): ab = ({pixel_ab[0]:.1f}, {pixel_ab[1]:.1f}); "
      f"weights of its 10 nearest bins: {', '.join(f'{w:.3f}' for w in z_draft[nearest].tolist())}")

# %%
# NBVAL_CHECK_OUTPUT
z_package = bins.encode(true_ab[None, :, row : row + 1, col : col + 1])[0, :, 0, 0]
print("draft == sscn.bins.ABBins.encode:", torch.allclose(z_draft, z_package, atol=1e-6))

# %%
bin_colours = lab_to_rgb(torch.cat((torch.full((1, bins.num_bins), 65.0), centers.T)).view(3, -1, 1))
bin_colours = bin_colours[..., 0].T.clamp(0, 1).numpy()
image_hist = bins.encode(true_ab[None]).mean((0, 2, 3))  # the photo's colour histogram, Q


def ab_plane(ax, title):
    ax.scatter(centers[:, 0], centers[:, 1], s=6, c=bin_colours, marker="s")
    ax.set(xlabel="a", ylabel="b", title=title, aspect="equal", xlim=(-90, 100), ylim=(-115, 100))


fig, axes = plt.subplots(1, 3, figsize=(4.2 * PANEL, 1.5 * PANEL))
axes[0].imshow(to_image(photo))
axes[0].plot(col, row, "w+", ms=14, mew=2)
axes[0].set_title("photo, pixel marked", fontsize=10)
axes[0].axis("off")
ab_plane(axes[1], "one pixel's soft-encoding (zoom)")
axes[1].scatter(centers[nearest, 0], centers[nearest, 1], s=2500 * z_draft[nearest], facecolors="none", edgecolors="k")
for q in nearest.tolist():
    axes[1].annotate(f"{z_draft[q]:.2f}", centers[q].tolist(), xytext=(0, -11), textcoords="offset points",
                     ha="center", fontsize=7)
axes[1].plot(*pixel_ab, "kx")
axes[1].set(xlim=(pixel_ab[0] - 25, pixel_ab[0] + 25), ylim=(pixel_ab[1] - 25, pixel_ab[1] + 25))
ab_plane(axes[2], "the photo's histogram (area ~ mass)")
axes[2].scatter(centers[:, 0], centers[:, 1], s=1500 * image_hist, facecolors="none", edgecolors="k", lw=0.7)
fig.tight_layout()
plt.show()

# %% [markdown]
# Each marker is a bin, drawn in its own colour (at L = 65); the circles' areas are the
# weights. The photo's histogram, the mean of all its pixels' encodings, shows which
# colours the photo uses: a cat is a narrow range of oranges and browns.
#
# The network predicts logits over the Q bins at $H/4 \times W/4$; the ground truth's
# ab is averaged down to that size and soft-encoded, and the loss is the cross-entropy.
# Draft it and score three predictions: a uniform guess, a confident guess (the encoding
# of the faded colours) and the truth's own encoding, the best possible: the
# cross-entropy then equals the entropy of $z$, not zero, since $z$ is soft.

# %%
quarter = (size // 4, size // 4)


def histogram_loss_draft(logits, ab):
    target = bins.encode(F.adaptive_avg_pool2d(ab, logits.shape[-2:]))
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def logits_of(ab):
    """Logits whose softmax is the soft-encoding of ``ab`` at H/4 x W/4."""
    return bins.encode(F.adaptive_avg_pool2d(ab[None], quarter)).clamp_min(1e-8).log()


predictions = {"uniform": torch.zeros(1, bins.num_bins, *quarter), "faded colours": logits_of(faded),
               "the truth itself": logits_of(true_ab)}
for name, logits in predictions.items():
    print(f"{name:>17}: histogram loss = {histogram_loss_draft(logits, true_ab[None]).item():.3f}")
print(f"       log Q = {np.log(bins.num_bins):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
from sscn.training.losses import histogram_loss  # noqa: E402

print("draft == sscn.training.losses.histogram_loss:",
      all(torch.allclose(histogram_loss_draft(lg, true_ab[None]), histogram_loss(lg, true_ab[None]))
          for lg in predictions.values()))
print("uniform prediction scores log Q:",
      torch.allclose(histogram_loss(predictions["uniform"], true_ab[None]), torch.tensor(np.log(bins.num_bins)).float()))

# %%
target = bins.encode(F.adaptive_avg_pool2d(true_ab[None], quarter))
per_pixel = -(target * F.log_softmax(predictions["faded colours"], dim=1)).sum(1)[0]
fig, axes = plt.subplots(1, 2, figsize=(2.6 * PANEL, 1.3 * PANEL))
show_ab(faded, axes[0], "prediction: faded colours")
shown = axes[1].imshow(per_pixel, cmap="magma")
axes[1].set_title("histogram loss per position", fontsize=10)
axes[1].axis("off")
fig.colorbar(shown, ax=axes[1], fraction=0.046)
fig.tight_layout()
plt.show()

# %% [markdown]
# The confident wrong guess scores *worse* than the uniform one: cross-entropy charges
# $-\log \hat{p}$ for the mass the truth puts where the prediction put (almost) none. Where
# the photo is nearly gray, fading moves a colour by less than a bin and the loss stays
# low; where the colour is saturated the faded colour lands in other bins and the loss is
# high. So the network learns to hedge with a spread-out distribution where it is unsure,
# and unlike smooth-L1 a distribution can put mass on both the red and the blue bins of
# the toy above.
#
# ## 4. Total variation: smooth colour, sharp where L is sharp
#
# Colour in a photo changes slowly; the L channel carries the fine detail. Total
# variation adds up the differences between neighbouring ab values, so it is small for
# smooth colour and large for speckled colour. Add noise to the ab map, then smooth it:

# %%
def total_variation_draft(ab):
    vertical = (ab[..., 1:, :] - ab[..., :-1, :]).abs().mean()
    horizontal = (ab[..., :, 1:] - ab[..., :, :-1]).abs().mean()
    return vertical + horizontal


generator = torch.Generator().manual_seed(seed)
noisy = true_ab + noise_std / AB_SCALE * torch.randn(true_ab.shape, generator=generator)
smoothed = torch.from_numpy(gaussian(noisy.numpy(), sigma=blur_sigma, channel_axis=0)).float()
maps = {"truth": true_ab, "noisy": noisy, "smoothed": smoothed}
fig, axes = plt.subplots(1, 3, figsize=(3 * PANEL, 1.2 * PANEL))
for ax, (name, ab) in zip(axes, maps.items()):
    show_ab(ab.clamp(-1, 1), ax, f"{name}: TV = {total_variation_draft(ab).item():.4f}")
fig.tight_layout()
plt.show()
for name, ab in maps.items():
    print(f"{name:>8}: 10 x TV = {10 * total_variation_draft(ab).item():.3f}, "
          f"100 x smooth-L1 to the truth = {100 * smooth_l1(ab, true_ab).item():.3f}")

# %%
# NBVAL_CHECK_OUTPUT
from sscn.training.losses import total_variation  # noqa: E402

print("draft == sscn.training.losses.total_variation:",
      all(torch.allclose(total_variation_draft(ab), total_variation(ab)) for ab in maps.values()))
print("smoothing lowers TV:", bool(total_variation(smoothed) < total_variation(noisy)))

# %% [markdown]
# Noise multiplies TV about twelvefold; smoothing brings it back to about the truth's own
# value and, here, also brings the map much closer to the truth (the smooth-L1 term
# falls). But the truth's TV is not zero, and blurring harder would keep lowering TV
# while colour bleeds across edges and the smooth-L1 term rises again: with weights 10
# and 100 the network is asked for smooth colour only where smoothness costs little
# accuracy.
#
# ## 5. The classifier's cross-entropy
#
# The CAM (notebook 04) is only meaningful if the classifier on the reference's features
# recognises the class, so its cross-entropy is trained alongside, with a small weight
# (0.1) because it only steers which reference tokens the attention keeps.

# %%
class_logits = torch.tensor([[2.0, 0.5, -1.0, 0.0]])
label = torch.tensor([0])
ce_draft = -(class_logits[0, label] - class_logits[0].exp().sum().log())
print(f"-log softmax(logits)[label] = {ce_draft.item():.4f}")

# %%
# NBVAL_CHECK_OUTPUT
print("draft == torch.nn.functional.cross_entropy:", torch.allclose(ce_draft, F.cross_entropy(class_logits, label)))

# %% [markdown]
# ## 6. The weighted total (Formula 6)
#
# `sscn.training.losses.sscn_loss(output, true_ab, labels)` takes the network's output (the two ab
# predictions, the histogram logits, the class logits) and returns the total with each
# unweighted term. Feed it the stand-ins built above: the faded colours as the coarse
# result, the smoothed noisy map as the fine one.

# %%
from sscn.training.losses import LossWeights, sscn_loss  # noqa: E402

output = SimpleNamespace(ab_coarse=faded[None], ab_fine=smoothed[None], hist_logits=predictions["faded colours"],
                         class_logits=class_logits)
total, terms = sscn_loss(output, true_ab[None], label)
paper = LossWeights()
for name, value in terms.items():
    weight = getattr(paper, name)
    print(f"{name:>6}: {value.item():8.4f} x {weight:5g} = {weight * value.item():7.3f}")
print(f" total: {total.item():8.3f}")

# %%
# NBVAL_CHECK_OUTPUT
by_hand = (100 * smooth_l1_draft(faded, true_ab) + 100 * smooth_l1_draft(smoothed, true_ab) + 0.1 * ce_draft
           + 1 * histogram_loss_draft(predictions["faded colours"], true_ab[None]) + 10 * total_variation_draft(smoothed))
print("paper weights 100, 100, 0.1, 1, 10:", [getattr(paper, n) for n in ("coarse", "fine", "cls", "hist", "tv")])
print("drafted total == sscn.training.losses.sscn_loss:", torch.allclose(by_hand, total))

# %% [markdown]
# The weights put the five terms on comparable scales: an error of a few ab units is a
# few hundredths in normalised units, which the factor 100 turns into a term of order
# one, like the histogram cross-entropy (between its entropy floor and $\log Q$ = 5.6);
# TV and the classifier get small weights because they steer, they do not colour.
#
# ## 7. Beyond the paper: a contextual loss for a different photo as the reference
#
# Every loss above compares the result with the *target's own* colours, pixel by pixel.
# That is right when the reference is the target warped (self-augmentation, notebook 02),
# and wrong when it is another photo: a red car as the reference for a gray blue car
# should give a red car, which smooth-L1 punishes. He et al. 2018 train such pairs without
# their chrominance loss (with a perceptual loss alone); Zhang et al. 2019, for video, use a
# **contextual loss** (Mechrez et al. 2018), which compares *sets* of features and so
# ignores where a feature sits. With features $x_i$ of the result and $y_j$ of the
# reference, both centred on the mean of $y$, cosine distances $d_{ij}$ are divided by
# each $x_i$'s nearest one and turned into affinities:
#
# $$\tilde d_{ij} = \frac{d_{ij}}{\min_k d_{ik} + \epsilon}, \quad
#   w_{ij} = e^{(1 - \tilde d_{ij}) / h}, \quad CX_{ij} = \frac{w_{ij}}{\sum_k w_{ik}}, \quad
#   \mathcal{L}_{cx} = -\log \frac{1}{M} \sum_j \max_i CX_{ij} \qquad (h = 0.1).$$
#
# Each reference feature asks: is there a result feature that is clearly *its* match?
# The features come from the project's own pre-stage classifier (`sscn pretrain`,
# notebook 04), which saw colour and gray photos and is also the bundled model's frozen
# reference encoder; no downloaded VGG weights are needed. Training uses it through
# `sscn train --same-class-share 0.3 --w-cx 1`. The model card
# (`sscn/checkpoints/MODEL_CARD.md`, "Same-class references in training, on this
# checkpoint") fine-tunes the bundled model with 10 % and 30 % same-class references,
# with and without the contextual loss: it changed nothing measurable (same-class dense
# PSNR 22.57 dB with or without it at 30 %, 22.16 dB at 10 %; alone, -0.04 dB against
# the control). The legacy model's card (`sscn/checkpoints/LEGACY_MODEL_CARD.md`) has
# the earlier runs, fine-tunes of that model with an earlier, 9-epoch pre-stage as the
# features.
#
# Score five candidate results for the gray cat against the cat in its own colours as
# the reference: the colours themselves, the same colours moved 12 px to the right, half
# saturation, gray, and another palette (a and b swapped). The package averages the loss
# over three levels of the encoder; the table shows each.

# %%
from sscn.models.pretrained import pretrained_classifier  # noqa: E402

features = pretrained_classifier("bundled")[0].encoder.requires_grad_(False)  # the shipped pre-stage


def contextual_similarity_draft(x, y, h=0.1):
    """CX of one image's features, x: C x N (result), y: C x M (reference)."""
    mu = y.mean(dim=1, keepdim=True)
    x, y = x - mu, y - mu
    x, y = x / x.norm(dim=0, keepdim=True), y / y.norm(dim=0, keepdim=True)
    d = (1 - x.T @ y).clamp_min(0)  # N x M; clamp: rounding can push a cosine past 1
    d_rel = d / (d.min(dim=1, keepdim=True).values + 1e-5)
    w = torch.exp((1 - d_rel) / h)
    cx = w / w.sum(dim=1, keepdim=True)
    return cx.max(dim=0).values.mean()


LEVELS = (3, 4, 5)  # 32, 16 and 8 px maps at 128 px


def cx_loss_draft(ab, level):
    got = features(lab_norm_to_rgb(join_lab(gray_l, ab))[None], level)[level - 1][0].flatten(1)
    wanted = features(lab_norm_to_rgb(join_lab(gray_l, true_ab))[None], level)[level - 1][0].flatten(1)
    return -torch.log(contextual_similarity_draft(got, wanted))


candidates = {"its own colours": true_ab, "moved 12 px": torch.roll(true_ab, 12, dims=-1),
              "half saturation": faded, "gray": torch.zeros_like(true_ab), "a and b swapped": true_ab.flip(0)}
cx_table = {}
print(f"{'':>16}  100 x smooth-L1 | contextual at levels {LEVELS} -> mean")
for name, ab in candidates.items():
    per_level = torch.stack([cx_loss_draft(ab, n) for n in LEVELS]).clamp_min(0) + 0.0  # rounding gives -0.0
    cx_table[name] = (100 * smooth_l1_draft(ab, true_ab), per_level.mean())
    print(f"{name:>16}: {cx_table[name][0].item():14.3f} | " + "  ".join(f"{v:.3f}" for v in per_level.tolist())
          + f" -> {cx_table[name][1].item():.3f}")
fig, axes = plt.subplots(1, len(candidates), figsize=(len(candidates) * PANEL, 1.25 * PANEL))
for ax, (name, ab) in zip(axes, candidates.items()):
    show_ab(ab, ax, f"{name}\nL1 {cx_table[name][0].item():.2f} · CX {cx_table[name][1].item():.3f}")
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
from sscn.training.contextual import reference_contextual_loss  # noqa: E402

moved = candidates["moved 12 px"]
package = reference_contextual_loss(features, gray_l[None], moved[None], join_lab(gray_l, true_ab)[None])
draft = torch.stack([cx_loss_draft(moved, n) for n in LEVELS]).mean()
print("draft == sscn.training.contextual.reference_contextual_loss:", torch.allclose(draft, package, atol=1e-5))

# %% [markdown]
# Moving the colours by 12 px costs smooth-L1 about a quarter of what gray costs
# (<span class="out">4.072</span> against <span class="out">15.294</span>), because every
# pixel near an edge between two colours now has the wrong one; the contextual loss does
# not notice (the same colours are still there, on the same kinds of texture). That is
# the signal a different-photo reference needs: *use these colours*, not *put them exactly
# here*. The other palette is the real departure (<span class="out">0.144</span>), and it
# costs most at level 5, where the classifier decides.
#
# Its limits are as plain. Half saturation is free (<span class="out">0.000</span>) and
# even gray costs only <span class="out">0.008</span>: features trained to classify gray
# and colour photos alike hardly see how saturated a colour is, or whether there is any,
# so this loss says "these hues, not those" and little about "how much". And it knows
# nothing of the target's own colours, so training keeps smooth-L1 on every pair and adds
# the contextual loss only where the reference is another photo.
#
# ## Conclusion
#
# - Smooth-L1 compares ab pixel by pixel; unlike L2 its optimum under ambiguity is a
#   real colour (the median), not the gray average. This package's smooth-L1 is the
#   paper's Huber form divided by $\beta = 1/110$, so its weights act 110 times stronger.
# - The histogram loss turns each pixel's colour into a soft distribution over the Q
#   bins and asks the network to predict it: it can hold several plausible colours at
#   once, and its floor is the entropy of the soft encoding. The paper sums it over the
#   pixels; this package averages it over the $H/4 \times W/4$ grid.
# - Total variation rewards smooth colour; it is weighted low so that edges survive.
# - The contextual loss (Mechrez et al. 2018; Zhang et al. 2019 use it for references that
#   are other photos, where He et al. 2018 drop their chrominance loss) compares feature sets instead of pixels: it rewards the reference's colours
#   wherever they fit, not the target's colours where they were.
# - Notebook 07 trains the network on this sum.

# %% [markdown]
# ## Exercises
#
# Each exercise has a worked solution in the cell after it; in Jupyter it starts
# collapsed, so try first, then click to reveal.

# %% [markdown]
# ### Exercise 6.1
#
# Check the relation between the paper's Huber form and PyTorch's smooth-L1 numerically:
# `F.huber_loss(pred, true, delta=d)` against `F.smooth_l1_loss(pred, true, beta=d)` for
# the faded colours, with $d = 1/110$ and $d = 1$. Then find the weight on the paper's Huber
# form whose gradient equals that of the package's $100 \cdot \mathcal{L}_{sl1}$.

# %% tags=["solution"]
# Solution 6.1
for delta in (BETA, 1.0):
    huber_value = F.huber_loss(faded, true_ab, delta=delta)
    smooth_value = F.smooth_l1_loss(faded, true_ab, beta=delta)
    print(f"delta = {delta:.5f}: Huber {huber_value.item():.6f}, smooth-L1 {smooth_value.item():.6f}, "
          f"smooth-L1 * delta == Huber: {torch.allclose(smooth_value * delta, huber_value)}")
pred = faded.clone().requires_grad_(True)
(100 * smooth_l1(pred, true_ab)).backward()
grad_package = pred.grad.clone()
pred.grad = None
(100 / BETA * F.huber_loss(pred, true_ab, delta=BETA)).backward()
print("weight on the Huber form with the same gradient:", round(100 / BETA),
      "| gradients equal:", torch.allclose(grad_package, pred.grad))

# %% [markdown] tags=["solution"]
# $\mathcal{L}_{sl1} = \mathcal{L}_{\beta} / \beta$ for every $\beta$, so the two agree only at
# $\beta = 1$. With $\beta = 1/110$ the package's $100 \cdot \mathcal{L}_{sl1}$ is
# $11{,}000 \cdot \mathcal{L}_{\beta}$: anyone who copies the paper's weight 100 onto the
# Huber form gets a colour term 110 times weaker relative to the histogram, TV and
# classification terms.

# %% [markdown]
# ### Exercise 6.2
#
# Compute the histogram loss the paper's way, summed over the positions instead of
# averaged, for the faded-colour prediction of section 3, at this notebook's size and at
# 256 px. Put it beside the other weighted terms of section 6.

# %% tags=["solution"]
# Solution 6.2
mean_hist = histogram_loss(predictions["faded colours"], true_ab[None])
positions = quarter[0] * quarter[1]
print(f"mean over {positions} positions: {mean_hist.item():.3f}; sum: {positions * mean_hist.item():,.0f}")
print(f"at 256 px the sum would be about {(256 // 4) ** 2 * mean_hist.item():,.0f}")
print("the other weighted terms of section 6:",
      {name: round(getattr(paper, name) * value.item(), 3) for name, value in terms.items() if name != "hist"})

# %% [markdown] tags=["solution"]
# Summed, the histogram term is about a thousand times the largest other term at
# 128 px (7,409 against 7.4 for the coarse smooth-L1 in the stored run) and grows with the
# image's area, so it would decide the gradient alone. Either
# the sum comes with much smaller weights or with sums in the other terms too; the
# package's mean keeps every term an average and the paper's weights usable at any size.

# %% [markdown]
# ### Exercise 6.3
#
# The best possible histogram loss is not zero. Compute the entropy
# $-\sum_q z_q \log z_q$ of the truth's soft encoding, averaged over the positions, and
# check that it equals the "the truth itself" row of section 3.

# %% tags=["solution"]
# Solution 6.3
z = bins.encode(F.adaptive_avg_pool2d(true_ab[None], quarter))
entropy = -(z * z.clamp_min(1e-12).log()).sum(1).mean()
best = histogram_loss(predictions["the truth itself"], true_ab[None])
print(f"entropy of z: {entropy.item():.4f}, loss of the truth's own encoding: {best.item():.4f}, "
      f"equal: {torch.allclose(entropy, best, atol=1e-4)}")

# %% [markdown] tags=["solution"]
# Cross-entropy is entropy plus the Kullback-Leibler divergence,
# $H(z, \hat{p}) = H(z) + \mathrm{KL}(z \,\|\, \hat{p})$, and the divergence is zero only
# when $\hat{p} = z$. A soft target spreads each pixel over 10 bins, so $H(z)$ is well
# above zero; a loss curve that levels off there has learned all it can.

# %% [markdown]
# ## References
#
# - Y. Bai, C. Dong, Z. Chai, A. Wang, Z. Xu, C. Yuan. Semantic-Sparse Colorization Network
#   for Deep Exemplar-based Colorization. ECCV 2022 (Sec. 3.3, Formulas 4-6).
# - R. Zhang, P. Isola, A. A. Efros. Colorful Image Colorization. ECCV 2016 (soft-encoding,
#   over the 5 nearest bins where this package takes 10; the classification view of colour,
#   the desaturation of L2).
# - R. Mechrez, I. Talmi, L. Zelnik-Manor. The Contextual Loss for Image Transformation with
#   Non-Aligned Data. ECCV 2018 (Eq. 1-5).
# - M. He, D. Chen, J. Liao, P. V. Sander, L. Yuan. Deep Exemplar-based Colorization.
#   SIGGRAPH 2018 (training on pairs of different photos: a perceptual loss, no chrominance
#   loss).
# - B. Zhang, M. He, J. Liao, P. V. Sander, L. Yuan, A. Bermak, D. Chen. Deep Exemplar-based
#   Video Colorization. CVPR 2019 (the contextual loss against the reference).
# - P. J. Huber. Robust estimation of a location parameter. Annals of Mathematical
#   Statistics 35(1), 1964.
# - L. I. Rudin, S. Osher, E. Fatemi. Nonlinear total variation based noise removal
#   algorithms. Physica D 60, 1992.
#
# ---
#
# [← 05 · Semantic-sparse attention](05_semantic_sparse_attention.ipynb) · [all notebooks](00_overview.ipynb) · [07 · Training →](07_training.ipynb)
