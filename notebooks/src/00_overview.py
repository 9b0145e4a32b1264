# %% [markdown]
# # 00 · Overview: colour a gray photo from a colour reference
#
# [Open in Colab](https://colab.research.google.com/github/sscn-course/sscn/blob/main/notebooks/00_overview.ipynb)
# · CPU only · full run about 8 s, smoke run about 10 s of CPU time on a 2-core CPU
# · the [glossary](#Glossary) at the end explains the terms in *italics*
#
# **Stored outputs: full run**, with the bundled trained checkpoint
# (`sscn_imagenette128.pt`): four demo pairs at a working size of 256 px, the sanity
# check on the sample photos at 128 px. The smoke run (`SSCN_SMOKE=1`, what the test
# suite executes) shows two pairs at 128 px (one self-augmented, one with a different
# photo as the reference) and checks at 64 px.
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
# > **What this course reproduces, and what it does not.** Every part of SSCN, built and
# > trained, but small: 8,353 Imagenette photos of 10 classes instead of ImageNet, 128 px
# > instead of 256, a 2-core CPU for all the compute. The paper's finding that sparse
# > attention beats dense (36.32 against 35.25 dB at 256 px) does not carry over: here dense
# > beats sparse (k = r = 64) by 3.35 / 2.87 / 1.89 dB (TPS / RR / RC, the table below). The
# > CAM now names the right class for 81 % of the references (the legacy model: 26 %), yet its
# > top tokens barely pay: +0.07 dB against random tokens on the object region and -0.71 dB
# > over the whole image (the model card, all 1,500 val photos; notebook 04 runs the same test
# > on 200). So the bundled model attends densely by default, and the demo's final column
# > says so ("final (SSCN, dense)").
#
# **What you will see here**
#
# - the two stages side by side on real photos, with the bundled checkpoint;
# - `sscn demo`, the same thing from the command line;
# - the bundled checkpoint's evaluation against baselines that need no learning.
#
# **The course.** Each notebook builds one part from the paper's equations, then imports
# the package's version and prints a check that both agree; each of 01-08 ends with
# exercises whose worked solutions start collapsed. Times are the CPU time of a full run
# on a 2-core CPU, measured by the build tool; the wall time is longer when other jobs
# share the machine. No GPU is needed anywhere, not even for training (the bundled
# checkpoint was trained on a 2-core CPU); one only makes training faster.
#
# | notebook | what it builds | full run (CPU time) |
# | --- | --- | --- |
# | [01 · Lab colour space](01_lab_color_space.ipynb) | sRGB to Lab, the ab bins, why Q = 313 in the paper and 261 here | 10 s |
# | [02 · TPS augmentation](02_tps_augmentation.ipynb) | thin-plate splines: training pairs from one photo | 10 s |
# | [03 · Global colour transfer](03_global_color_transfer.ipynb) | AdaIN and the coarse stage | 5 s |
# | [04 · CAM classifier](04_cam_classifier.ipynb) | class activation maps rank the reference's tokens; the classifier pre-stage; do the top-CAM tokens pay? | 1.5 min (on Imagenette) |
# | [05 · Semantic-sparse attention](05_semantic_sparse_attention.ipynb) | the correspondence, the LDT decoder, the whole forward pass, the k / r explorer | 9 s |
# | [06 · Losses](06_losses.ipynb) | the five losses and their weights | 10 s |
# | [07 · Training](07_training.ipynb) | one step by hand, the training loop, papermill | smoke run: 10 s; the bundled checkpoint's recipe trains for hours on a 2-core CPU (an 82-min pre-stage, then 127 min) |
# | [08 · Evaluation](08_evaluation.ipynb) | self-augmentation, PSNR and SSIM, baselines, k and r, the paper beside us | 33 s |
#
# Every notebook runs as it is in Jupyter or on Colab (the "Open in Colab" link at its
# top; its first code cell installs the package there). The Colab links and the install
# cell point at the repository's
# [planned home on GitHub](https://github.com/sscn-course/sscn/tree/main/notebooks/) and
# work once it is published; until then, run the notebooks locally (the README's quick
# start). Each notebook states whether its stored outputs come from the full run or
# from the smoke run (`SSCN_SMOKE=1`, which shrinks sizes and steps so that the test
# suite can execute every notebook in minutes).

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
import time

import matplotlib.pyplot as plt
import torch

from sscn.models.checkpoint import bundled_checkpoint, load_model
from sscn.apps.demo import DEMO_PAIRS, demo_rows
from sscn.apps.notebook import apply_smoke, smoke_mode
from sscn.apps.viz import demo_figure, final_title

SMOKE = smoke_mode()  # SSCN_SMOKE=1
plt.rcParams["figure.dpi"] = 80
_ = torch.set_grad_enabled(False)

# %% tags=["parameters"]
size = 256  # working size: the long side the network sees
pairs = 4  # how many of the demo pairs to show (the last one always has a different photo as its reference)

# %%
# smoke mode: these values replace the parameters above, except any that papermill set explicitly
apply_smoke(globals(), size=128, pairs=2)
if size % 16 or size < 32:
    raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
model = load_model(bundled_checkpoint())
cfg = model.config
print(f"bundled checkpoint: width {cfg.width}, k = {cfg.k}, r = {cfg.r}, {cfg.similarity} attention, "
      f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
print(f"attention by default: {'dense (every reference token)' if cfg.dense else f'sparse (k = {cfg.k}, r = {cfg.r})'}")

# %% [markdown]
# ## The two stages on real photos
#
# Each row: the gray target, the reference, the coarse result of the global colour
# transfer, the final result after the attention (the checkpoint's default, printed above
# and in the column's title), and the ground truth. The first references are the targets
# themselves after a random rotation, *TPS* warp or crop (the paper's
# *self-augmentation*), so the ground truth is known; the last pair uses a different
# photo as the reference (the rocket painted from the astronaut), where there is no
# ground truth (its panel stays empty).

# %%
chosen = (*DEMO_PAIRS[: max(pairs - 1, 0)], DEMO_PAIRS[-1])  # the different-photo pair is always shown
start = time.perf_counter()
rows, seconds = demo_rows(model, size=size, pairs=chosen)
fig = demo_figure(rows, final_title(model))  # the final column names its attention: dense, or sparse with k and r
plt.show()
for row, s in zip(rows, seconds):
    print(f"{row['title']:<32} {s:.2f} s")

# %% [markdown]
# The coarse stage only knows the reference's global statistics, so at best its colours
# are right on average; where they go is not its business. The fine stage copies colours
# from the matching places of the reference.
# On the three self-augmented rows the final result is hard to tell from the ground truth
# at this size: the cat's yellow-green eyes, the red cup and saucer, the orange suit and the
# flag. The one visible flaw is a gray-green patch on the saucer's right rim. The coarse
# column shows how little the coarse stage takes from the reference: the cat and the coffee
# cup come out nearly gray.
# The last row shows the limit of a model trained on self-augmented pairs: with an
# unrelated reference there is no matching place, only features that match more or less.
# (The legacy model, `sscn demo --checkpoint legacy`, painted the rocket's night sky
# there with the orange and red of the astronaut's suit and flag.)
# The bundled model leaves most of the night sky gray, but paints vertical red bands
# along the towers and on both sides of the rocket, and tints the right-hand tower purple.
# (The seconds per image above were measured on a shared 2-core CPU and vary with its
# load.) The same figure comes from the command line:
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
# Notebook 08 puts these numbers beside the paper's and explains what can and cannot be
# compared: the paper trains at 256 px with ImageNet-trained encoders, this checkpoint
# at 128 px on 8,353 Imagenette photos, with a reference encoder pre-trained as a
# classifier on the same photos and then frozen (notebook 04).
#
# ## A quick check you can rerun
#
# The same harness on scikit-image's sample photos (a handful of images, so the numbers
# are only a sanity check). The checked cell names the model and states that the network,
# sparse and dense alike, beats the copy baseline (the reference's ab taken at the same
# pixel, with no matching at all), a stronger claim than beating gray; the test suite
# reruns it and compares, so a copy of this notebook made with an untrained or missing
# checkpoint fails.

# %%
from sscn.io.data import sample_photos
from sscn.evaluation.baselines import baseline_methods, network_methods
from sscn.evaluation.protocol import evaluate

photos = sample_photos(size=64 if SMOKE else 128)
methods = {**baseline_methods(["gray", "copy"]), **network_methods(model, include=("sparse", "dense"))}
results = evaluate(methods, photos, kinds=("tps",), progress=False)
scores = {row.method: row.psnr for row in results}
for name, value in scores.items():
    print(f"{name:<8} {value:6.2f} dB")

# %%
# NBVAL_CHECK_OUTPUT
print("model:", bundled_checkpoint().name)
print("the network beats copy:", min(scores["sparse"], scores["dense"]) > scores["copy"])

# %% [markdown]
# ## Glossary
#
# - **Lab (CIE L\*a\*b\*)**: a colour space with lightness L (0 black to 100 white) and two
#   colour axes, a (green to red) and b (blue to yellow). The network is given L and
#   predicts a and b, scaled as `L / 50 - 1` and `ab / 110` (notebook 01).
# - **ab bins**: the ab plane cut into cells of width 10; Q of them are kept (313 in the
#   paper, 261 here). The histogram head predicts a distribution over them (notebooks 01, 06).
# - **target, reference**: the gray photo to colour and the colour photo whose colours it
#   takes.
# - **TPS (thin-plate spline)**: a smooth warp fixed by moving a few control points; it
#   turns one photo into a reference whose colours are the photo's own, moved (notebook 02).
# - **self-augmentation**: making the reference from the target itself (TPS warp, random
#   rotation RR, random crop RC), so the right answer, the target's own colours, is
#   known: for training pairs and for the evaluation (notebooks 02, 08).
# - **RR (random rotation)**: a self-augmented reference: the photo turned about its centre
#   by a seeded random angle of up to 30 degrees, corners filled by reflection (notebooks
#   02, 08).
# - **RC (random crop)**: a self-augmented reference: a seeded random window of 50-100 % of
#   the photo's side, enlarged back to full size (notebooks 02, 08).
# - **AdaIN (adaptive instance normalisation)**: give each feature channel the mean and
#   standard deviation a style vector asks for, keeping its spatial pattern; the coarse
#   stage paints with it (notebook 03).
# - **style vector**: $y = (y_s, y_b)$, one scale and one bias per channel of each AdaIN
#   layer, computed by the style MLP from the reference's deepest features; the only way
#   the reference reaches the coarse stage (notebook 03).
# - **GCT, coarse stage**: the global colour transfer that paints the target in the
#   reference's overall style, without looking at where its colours are (notebook 03).
# - **CAM (class activation map)**: for a classifier with global average pooling, the
#   map $\sum_k w_{c,k} f_k(x, y)$ whose mean is the class score; SSCN uses it to rank the
#   reference's positions (notebook 04).
# - **linear probe**: a fresh linear layer trained on **frozen** features, to see what they
#   already hold; notebook 04 trains one as a CAM classifier on the encoder's level-5
#   features.
# - **token**: the feature vector of one position of the $H/4 \times W/4$ grid (levels
#   1-4 of the encoder, resized and joined); attention compares tokens (notebook 05).
# - **semantic-sparse attention**: attention over only k top-CAM and r random reference
#   tokens instead of all of them (**dense** attention) (notebook 05).
# - **LDT, fine stage**: the local details transfer: the attention plus the decoder that
#   fuses the attended reference with the coarse image at several scales (notebook 05).
# - **k and r**: how many reference tokens semantic-sparse attention keeps: the k that the
#   CAM ranks highest and r drawn at random (k = r = 64 of 1,024 at 128 px here) (notebook 05).
# - **temperature**: the number that divides the similarities before the softmax of the
#   attention; small makes each target token pick one reference token, large averages
#   many. Here it is learned (notebook 05).
# - **histogram head**: the 1 x 1 convolution on the token grid that gives Q logits per
#   position, a distribution over the ab bins, which the histogram loss trains (notebook 05).
# - **pre-stage**: training the reference encoder as an image classifier first, so that its
#   CAM marks the object, then training SSCN on it; the bundled model's encoder is one,
#   frozen (notebook 04, the model card).
# - **legacy model**: the checkpoint bundled before the semantic one, trained from scratch
#   without a pre-stage; `load_model("legacy")` or `--checkpoint legacy` loads it for
#   comparison (notebook 04).
# - **object region**: the top quarter (at or above the 75th percentile) of the true class's
#   CAM on the ground-truth photo, under a **judge**: the pre-stage classifier
#   (`sscn pretrain`, its level-5 head). It tests whether top-CAM tokens colour the object
#   better than random ones; the judge is independent for the legacy model, not for the
#   bundled one, whose encoder and CAM come from it (notebook 04, `sscn.evaluation.semantics`).
# - **soft-encoding**: spreading one pixel's ab over its nearest bins with Gaussian
#   weights (sigma 5) instead of putting it all in one bin; the target of the histogram
#   loss. Zhang et al. 2016 use the 5 nearest bins, this package 10 (notebook 01).
# - **smooth-L1, Huber loss**: a per-value loss, quadratic below a threshold and linear
#   above it. The paper's Formula 4 is the Huber loss; this package uses PyTorch's
#   smooth-L1 with $\beta$ = one ab unit, the Huber loss divided by $\beta$, on the coarse
#   and the fine ab (notebook 06).
# - **total variation (TV)**: the mean absolute difference between neighbouring values of
#   the fine ab, down and across; penalising it smooths noise (notebook 06).
# - **histogram loss**: the cross-entropy between the predicted distribution over the ab
#   bins and the soft-encoded ground truth (paper, Formula 5; notebook 06).
# - **contextual loss**: a loss that asks whether the result's features find close
#   matches among the reference's, wherever they are (Mechrez et al. 2018), for references
#   that are other photos (notebook 06).
# - **same-class pairs**: a target and a different photo of its own class as the
#   reference, chosen by a fixed gray-image rule; the benchmark for real references
#   (notebook 08).
# - **reference finder**: `sscn colorize TARGET --reference-from FOLDER` picks the reference
#   itself: it ranks the folder's colour photos by two similarities of their gray versions
#   to the target's, of meaning (the pre-stage encoder's pooled features) and of
#   luminance (the same-class pair rule's gray descriptor), after He et al. 2018
#   (`sscn/apps/finder.py`).
# - **colourfulness**: Hasler and Suesstrunk's measure of how colourful a picture is
#   (0 for gray); a washed-out result scores low (notebook 08).
# - **palette similarity**: how much of the reference's palette (its histogram over the ab
#   bins) reaches the result, from 0 to 1 (notebook 08).
# - **smoke mode**: `SSCN_SMOKE=1` shrinks every notebook's sizes and steps so that the
#   test suite runs them in minutes; each notebook's first cell says what changes.
# - **PSNR, SSIM**: the scores of a result against the ground truth, in dB and in [0, 1]
#   (notebook 08).
#
# ## References
#
# - Yunpeng Bai, Chao Dong, Zenghao Chai, Andong Wang, Zhengzhuo Xu, Chun Yuan,
#   "Semantic-Sparse Colorization Network for Deep Exemplar-based Colorization", ECCV 2022.
#
# ---
#
# [all notebooks](00_overview.ipynb) · next: [01 · Lab colour space →](01_lab_color_space.ipynb)
