# %% [markdown]
# # 08 · Evaluation: self-augmentation, PSNR and SSIM
#
# How good is a colorization? With an exemplar-based method the answer depends on the
# reference, so the paper (Sec. 4.2) measures it where the right answer is known: the
# reference is the ground-truth photo itself after a transform, and the result is
# compared with that ground truth.
#
# **What you will learn**
#
# - how PSNR and SSIM are computed on 8-bit RGB, and why an identical image scores
#   an infinite PSNR;
# - the self-augmentation protocol: seeded TPS, random-rotation (RR) and random-crop (RC)
#   references that anyone can regenerate or save as files;
# - what simple baselines score (gray, the reference's colours copied pixel for pixel,
#   global colour transfer, luminance matching), so the network's numbers mean something;
# - how coarse, sparse and dense attention compare, how k and r matter (the paper's
#   Figure 8), and what the best and worst cases look like.
#
# **The metrics.** For 8-bit images $x, y$ of $N$ values (3 channels),
#
# $$\mathrm{MSE} = \frac{1}{N}\sum_i (x_i - y_i)^2, \qquad
#   \mathrm{PSNR} = 10 \log_{10} \frac{255^2}{\mathrm{MSE}} \ \mathrm{dB}.$$
#
# SSIM (Wang et al. 2004) compares local means $\mu$, variances $\sigma^2$ and the
# covariance $\sigma_{xy}$ under an 11 x 11 Gaussian window ($\sigma = 1.5$):
#
# $$\mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
#   {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}, \quad
#   C_1 = (0.01 \cdot 255)^2,\ C_2 = (0.03 \cdot 255)^2,$$
#
# averaged over the pixels (away from the border) and the three RGB channels. We also
# report PSNR on the a, b channels alone (data range 220 Lab units), which ignores the
# L channel that every method copies from the target.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sscn import evaluate as ev
from sscn.color import join_lab, lab_norm_to_rgb, rgb_to_lab_norm, split_lab
from sscn.data import sample_photos
from sscn.viz import PANEL, image_grid

SMOKE = os.environ.get("SSCN_SMOKE") == "1"
plt.rcParams["figure.dpi"] = 72  # modest figures keep the stored notebook small

# %% tags=["parameters"]
checkpoint = ""  # "" = the bundled checkpoint, if this installation has one
data_dir = ""  # "" = the built-in sample photos; else a folder of photos or Imagenette's root
split = "val"
size = 128
limit = 300  # photos (evenly spaced over the sorted folder); 0 = all
kinds = ["tps", "rotation", "crop"]
batch_size = 16
seed = 0
sweep_ks = [16, 32, 64, 128, 256]
sweep_rs = [0, 64, 128]
n_cases = 2  # best and worst cases shown

# %%
if SMOKE:  # seconds, on the sample photos
    data_dir, size, limit = "", 64, 8
    sweep_ks, sweep_rs, n_cases = [4, 16, 64], [0, 16], 1
torch.manual_seed(seed)
source = sample_photos() if not data_dir else ev.open_photos(data_dir, split, size)
limit = limit or None
count = min(len(source), limit or len(source))
print(f"{'photos' if data_dir else 'sample photos'}: {count} at {size} px, references: {kinds}")

# %% [markdown]
# ## 1. PSNR step by step
#
# Take one photo, throw its colour away (the "gray" result: ab = 0 with the photo's own L)
# and compute the PSNR by hand. Both images are quantised to 8 bits first, the way a
# saved PNG would hold them: a method's metric should not depend on float noise below
# what a file can show.

# %%
photo = ev.Photos(source, size=size)[0][2]
gray_l = split_lab(rgb_to_lab_norm(photo))[0]
result = lab_norm_to_rgb(join_lab(gray_l, torch.zeros(2, size, size)))

result8 = (result.clamp(0, 1) * 255).round()
truth8 = (photo.clamp(0, 1) * 255).round()
mse = ((result8.double() - truth8.double()) ** 2).mean()
psnr_draft = 10 * torch.log10(255**2 / mse)
print(f"MSE = {mse.item():.2f}, PSNR = {psnr_draft.item():.2f} dB")

# %%
# NBVAL_CHECK_OUTPUT
to_numpy = lambda x: x.permute(1, 2, 0).to(torch.uint8).numpy()  # noqa: E731
print("drafted PSNR == sscn.evaluate.psnr:", torch.allclose(psnr_draft, ev.psnr(result, photo)))
reference_psnr = peak_signal_noise_ratio(to_numpy(truth8), to_numpy(result8), data_range=255)
print("sscn.evaluate.psnr agrees with skimage:", abs(ev.psnr(result, photo).item() - reference_psnr) < 1e-3)
print("sscn.evaluate.ssim agrees with skimage:",
      abs(ev.ssim(result, photo).item() - structural_similarity(
          to_numpy(truth8), to_numpy(result8), channel_axis=2, gaussian_weights=True, sigma=1.5,
          use_sample_covariance=False, data_range=255)) < 1e-4)
print("identical images: PSNR =", ev.psnr(photo, photo).item(), "SSIM =", ev.ssim(photo, photo).item())

# %% [markdown]
# An identical result has MSE 0 and PSNR $+\infty$. `sscn.evaluate` keeps such images:
# a mean over images that contains one is $+\infty$, and every result row counts them
# (`n_inf`) instead of silently dropping the best cases.
#
# ## 2. The self-augmentation protocol
#
# For photo number `index` the references are made with the seed
# `seed * 1_000_003 + index` (`ev.reference_seed`), whatever else is evaluated with it,
# so every number below can be reproduced, and `evaluate(..., save_dir=...)` (or
# `sscn evaluate --save-pairs DIR`) writes every (gray target, reference, ground truth)
# triple as PNG so other tools can be scored on the very same pairs
# (`ev.score_saved`).

# %%
photos = ev.Photos(source, size=size)
case_rows = []
for kind in kinds:
    case = ev.make_cases([photos[0]], kind, seed)
    case_rows.append(case.reference[0])
fig = image_grid([[photo, *case_rows]], ["ground truth", *[f"{ev.KIND_LABELS[k]} reference" for k in kinds]])
plt.show()

# %% [markdown]
# A *method* is any function `(gray_l B x 1 x H x W, ref_lab B x 3 x H x W) -> ab B x 2 x H x W`.
# The baselines, scored by the same code:
#
# - **gray**: ab = 0, the lower bound of doing nothing;
# - **copy**: the reference's ab at the same pixel: right wherever the transform moved
#   little, so it rewards references that are barely transformed;
# - **mean_ab**: the reference's mean ab everywhere. This is all that Reinhard et al.'s
#   statistics transfer can do for a gray target: it matches each channel's mean and
#   standard deviation, and the target's ab have no spread to scale;
# - **luminance_match**: Welsh et al.'s gray-target version: remap the reference's L to
#   the target's mean and spread, then give each pixel the mean ab of the reference
#   pixels of similar L.

# %% [markdown]
# ## 3. The network
#
# With `checkpoint = ""` the bundled checkpoint is used when this installation has one;
# otherwise a tiny randomly initialised network stands in, so the code runs end to end
# (its numbers are meaningless).

# %%
from sscn.checkpoint import bundled_checkpoint, load_model  # noqa: E402
from sscn.models.sscn import SSCN, SSCNConfig  # noqa: E402

path = checkpoint or bundled_checkpoint()
if path:
    model = load_model(path)
    print("model: the trained checkpoint", os.path.basename(str(path)))
else:
    model = SSCN(SSCNConfig(width=0.125, k=16, r=16)).eval()
    print("model: no checkpoint available, a randomly initialised tiny SSCN (width 0.125); its scores mean nothing")
print(f"attention: k = {model.config.k}, r = {model.config.r}, similarity = {model.config.similarity}")

# %% [markdown]
# ## 4. The results table

# %%
methods = {**ev.baseline_methods(), **ev.network_methods(model, seed=seed)}
rows = ev.evaluate(methods, source, kinds, size=size, limit=limit, batch_size=batch_size, seed=seed, progress=False)
display(Markdown(ev.results_table_markdown(rows)))

# %%
by_key = {(r.method, r.reference): r for r in rows}
names = list(methods)
fig, axes = plt.subplots(1, 2, figsize=(4 * PANEL, 1.6 * PANEL))
width = 0.8 / len(kinds)
for i, kind in enumerate(kinds):
    x = np.arange(len(names)) + (i - (len(kinds) - 1) / 2) * width
    axes[0].bar(x, [by_key[(n, kind)].psnr for n in names], width, label=ev.KIND_LABELS[kind])
    axes[1].bar(x, [by_key[(n, kind)].ssim for n in names], width, label=ev.KIND_LABELS[kind])
for ax, label in zip(axes, ("PSNR (dB)", "SSIM")):
    ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(label)
axes[0].set_ylim(bottom=min(r.psnr for r in rows) - 2)
axes[1].set_ylim(bottom=min(r.ssim for r in rows) - 0.02)
axes[0].legend(title="reference")
axes[0].set_title("baselines and the network's stages")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. How many reference tokens? (k and r, the paper's Figure 8)
#
# Sparse attention keeps the top-k CAM tokens and r random others. The sweep scores
# every (k, r) on TPS references, with dense attention (every token) as the line to beat.

# %%
sweep = ev.sweep_kr(model, source, sweep_ks, sweep_rs, kind=kinds[0], size=size, limit=limit,
                    batch_size=batch_size, seed=seed, progress=False)
display(Markdown(ev.sweep_table_markdown(sweep)))
fig, ax = plt.subplots(figsize=(2.2 * PANEL, 1.6 * PANEL))
for r_value in sweep_rs:
    points = [s for s in sweep if s["r"] == r_value]
    ax.plot([s["k"] for s in points], [s["psnr"] for s in points], "o-", label=f"r = {r_value}")
dense = next(s for s in sweep if s["k"] is None)
ax.axhline(dense["psnr"], color="k", ls="--", label=f"dense ({dense['tokens']} tokens)")
ax.set_xscale("log", base=2)
ax.set_xlabel("k (top CAM tokens)")
ax.set_ylabel("PSNR (dB)")
ax.set_title(f"{ev.KIND_LABELS[kinds[0]]} references, {size} px")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Best and worst cases
#
# Each result row keeps every photo's score, so the extremes can be rebuilt from their
# seeds and looked at: where does the network succeed, and where does it fail?

# %%
shown, kind = "sparse", kinds[0]
ranked = by_key[(shown, kind)].ranked("psnr")
picks = [("best", c) for c in ranked[:n_cases]] + [("worst", c) for c in ranked[::-1][:n_cases]]
grid, titles = [], []
for label, (index, name, score) in picks:
    panels = ev.reproduce_case(methods[shown], source, index, kind, size=size, seed=seed)
    grid.append([panels["gray"], panels["reference"], panels["result"], panels["truth"]])
    titles.append(f"{label}: {score:.1f} dB")
fig = image_grid(grid, ["gray target", f"{ev.KIND_LABELS[kind]} reference", shown, "ground truth"], titles)
plt.show()

# %% [markdown]
# ## 7. The full run
#
# The numbers above come from a few photos (or, in smoke mode, the sample photos and
# possibly an untrained network). The baselines on all 1,500 Imagenette validation
# photos at 128 px, seed 0 (PSNR in dB / SSIM), made in 4.5 minutes on 2 CPU cores by
#
# ```
# sscn evaluate --baselines-only --data path/to/imagenette-144 --split val --size 128 --out results
# ```
#
# | method | TPS | RR | RC |
# | --- | --- | --- | --- |
# | gray | 22.71 / 0.9328 | 22.71 / 0.9328 | 22.71 / 0.9328 |
# | copy | 29.71 / 0.9441 | inf (1 photo) / 0.9281 | 26.70 / 0.9207 |
# | mean_ab | 25.15 / 0.9324 | 25.15 / 0.9323 | 24.94 / 0.9308 |
# | luminance_match | 27.50 / 0.9384 | 27.53 / 0.9386 | 26.34 / 0.9282 |
#
# The infinite PSNR is real: photo 323's random rotation is 0.024 degrees, so its
# reference equals the photo to 8 bits and copying it reproduces the ground truth
# exactly. Over the other 1,499 photos copy scores 28.59 dB on RR. The gray and
# mean_ab rows barely depend on the reference kind, since neither looks at where
# the reference's colours are.
#
# Add `--checkpoint CKPT --sweep` (no `--baselines-only`) for the network's rows and the
# k / r sweep.
#
# ## Conclusion
#
# - PSNR and SSIM are computed on 8-bit RGB, the way a saved result would be judged;
#   an exact result scores $+\infty$ dB and is counted, not dropped.
# - The self-augmentation references are seeded per photo and can be saved, so the
#   same pairs can score any tool.
# - Copying the reference's colours pixel for pixel is a strong baseline, because
#   self-augmented references move pixels only a little (least with TPS, most with
#   crops); a colorization network earns its keep by beating it.
#
# ## References
#
# - Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli. Image quality assessment: from
#   error visibility to structural similarity. IEEE TIP 13(4), 2004.
# - E. Reinhard, M. Ashikhmin, B. Gooch, P. Shirley. Color transfer between images. IEEE
#   CG&A 21(5), 2001.
# - T. Welsh, M. Ashikhmin, K. Mueller. Transferring color to greyscale images. SIGGRAPH 2002.
