# %% [markdown]
# # 00 · Overview: colour a gray photo from a colour reference
#
# **The task.** Exemplar-based colorization takes a gray photo (the *target*) and a colour
# photo (the *reference*) and paints the target with the reference's colours, matched by
# meaning: sky to sky, fur to fur. The Semantic-Sparse Colorization Network (SSCN;
# Bai et al., ECCV 2022) does it in two stages:
#
# 1. **Global colour transfer (coarse).** An encoder-decoder paints the target with the
#    reference's overall colour style through AdaIN (Formula 1):
#    $\mathrm{AdaIN}(x_i, y) = y_{s,i} \frac{x_i - \mu(x_i)}{\sigma(x_i)} + y_{b,i}$.
# 2. **Local details transfer (fine).** Tokens of the coarse image attend to a *sparse*
#    set of reference tokens, the top-k positions of a class activation map plus r
#    random ones (Formulas 2-3), and a U-Net decoder turns the attended colours into the
#    final a, b channels.
#
# **What you will see here**
#
# - the two stages side by side on real photos, with the bundled checkpoint;
# - `sscn demo`, the same thing from the command line;
# - the bundled checkpoint's evaluation against baselines that need no learning.
#
# The following notebooks build every part: 01 Lab colour space, 02 TPS augmentation,
# 03 global colour transfer, 04 the CAM classifier, 05 semantic-sparse attention (with
# the k / r explorer), 06 the losses, 07 training, 08 evaluation.

# %%
import os
import time

import matplotlib.pyplot as plt
import torch

from sscn.checkpoint import bundled_checkpoint, load_model
from sscn.demo import DEMO_PAIRS, demo_rows
from sscn.viz import demo_figure

SMOKE = os.environ.get("SSCN_SMOKE") == "1"
plt.rcParams["figure.dpi"] = 80
_ = torch.set_grad_enabled(False)

# %% tags=["parameters"]
size = 256  # working size: the long side the network sees
pairs = 4  # how many of the demo pairs to show

# %%
if SMOKE:
    size, pairs = 128, 2
if size % 16 or size < 32:
    raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
model = load_model(bundled_checkpoint())
cfg = model.config
print(f"bundled checkpoint: width {cfg.width}, k = {cfg.k}, r = {cfg.r}, {cfg.similarity} attention, "
      f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")

# %% [markdown]
# ## The two stages on real photos
#
# Each row: the gray target, the reference, the coarse result of the global colour
# transfer, the final result after the sparse attention, and the ground truth. The first
# references are the targets themselves after a random rotation, thin-plate-spline warp
# or crop (the paper's self-augmentation), so the ground truth is known; the last pair
# uses a different photo as the reference.

# %%
start = time.perf_counter()
rows, seconds = demo_rows(model, size=size, pairs=DEMO_PAIRS[:pairs])
fig = demo_figure(rows)
plt.show()
for row, s in zip(rows, seconds):
    print(f"{row['title']:<32} {s:.2f} s")

# %% [markdown]
# The coarse stage only knows the reference's global statistics, so its colours are
# right on average but spill across objects; the fine stage copies colours from the
# matching places of the reference. The same figure comes from the command line:
#
# ```bash
# sscn demo                                   # writes sscn-demo.png
# sscn colorize gray.jpg reference.jpg -o out.jpg --size 256
# ```

# %% [markdown]
# ## How good is it? The evaluation table
#
# The numbers below were measured on the 1,500 validation photos of Imagenette
# (imagenette-144) at 128 px with `sscn evaluate` (notebook 08 explains the protocol):
# each photo's reference is made from the photo itself by a thin-plate-spline warp (TPS),
# a random rotation (RR) or a random crop (RC), with fixed seeds, and the result is
# scored against the ground truth by PSNR and SSIM on 8-bit RGB. The baselines need no
# learning: gray (no colour), the reference's colours copied at the same pixel, the
# reference's mean colour everywhere, and a luminance-matched colour transfer.

# %%
table = bundled_checkpoint().parent / "MODEL_CARD.md"
text = table.read_text() if table.exists() else ""
start_marker, end_marker = "<!-- results -->", "<!-- /results -->"
if start_marker in text:
    from IPython.display import Markdown, display

    display(Markdown(text.split(start_marker)[1].split(end_marker)[0]))
else:
    print("the model card has no results table yet")

# %% [markdown]
# ## A quick check you can rerun
#
# The same harness on scikit-image's sample photos (a handful of images, so the numbers
# are only a sanity check): the network should beat the gray baseline.

# %%
from sscn.data import sample_photos
from sscn.evaluate import baseline_methods, evaluate, network_methods

photos = sample_photos(size=64 if SMOKE else 128)
methods = {**baseline_methods(["gray", "copy"]), **network_methods(model, include=("sparse", "dense"))}
results = evaluate(methods, photos, kinds=("tps",), progress=False)
scores = {row.method: row.psnr for row in results}
for name, value in scores.items():
    print(f"{name:<8} {value:6.2f} dB")
print("network beats gray:", min(scores["sparse"], scores["dense"]) > scores["gray"])  # NBVAL_CHECK_OUTPUT
