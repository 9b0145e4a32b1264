# %% [markdown]
# # 07 · Training: the loop, checkpoints and a papermill run
#
# [Open in Colab](https://colab.research.google.com/github/sscn-course/sscn/blob/main/notebooks/07_training.ipynb)
# · smoke run about 10 s of CPU time on a 2-core CPU · the full run (the bundled checkpoint's
# recipe) trained on a 2-core CPU at about 2.3 s per step (127 minutes), after its encoder's
# pre-stage (82 minutes);
# the CPU-sized run of section 5 trains for 20 minutes (27 minutes for the whole notebook here)
# · words in *italics* are explained in the [glossary](00_overview.ipynb#Glossary)
#
# **Stored outputs: smoke run**. The parameters cell holds the bundled checkpoint's
# recipe (128 px, width 0.25, batch 32, lr 2e-4, k = r = 64, 3,250 steps, on the encoders of
# the shipped classification pre-stage, frozen), a run of hours on a CPU. The
# smoke run (`SSCN_SMOKE=1`, what the test suite executes, and what is stored here)
# trains a network of width 0.125 from scratch (the shipped pre-stage has width 0.25 and
# knows Imagenette's classes, not the sample photos') for 30 steps of 4 photos at 32 px on
# the built-in sample photos, in seconds: it shows that the loop runs and what it writes, not what a
# real run learns (its validation photos are its training photos, so its validation PSNR
# measures fitting, not generalisation). "Run all" with the default `data_dir = "samples"`
# and no parameter runs these smoke settings too: 48 crops are not a training set. Section 5
# shows the curves of the real run that made the bundled checkpoint. A parameter given to
# papermill with `-p` always wins over the smoke values.
#
# The network of notebooks 03-05 and the losses of notebook 06 come together here. This
# notebook *is* a training run: its `parameters` cell holds every setting, papermill
# overrides them from the command line, and the run writes its checkpoint, its metrics
# log and a small JSON summary. The loop itself lives in `sscn.training.train`, so the notebook,
# the `sscn train` command and `torchrun ... -m sscn.training.train` run the same code.
#
# **What you will learn**
#
# - what one training step does (paper, Sec. 3.3): a photo, its TPS-warped copy as the
#   reference, the forward pass, Formula 6, an Adam step;
# - how a run is made reproducible and resumable: seeded steps, atomic checkpoints,
#   a resumed run that ends with bit-identical weights;
# - how to watch a run (live loss curves, validation PSNR) and what the curves say;
# - how to run the same notebook at full size with papermill, on the encoders of a
#   classification pre-stage, and what a full run looked like.
#
# **The objective** (Formula 6) adds the five losses of notebook 06 with the paper's weights
# (with this package's smooth-L1 and histogram forms, notebook 06):
#
# $$\mathcal{L} = \lambda_{c}\,\mathcal{L}_{sl1}(\hat{ab}_{c}, ab)
#   + \lambda_{f}\,\mathcal{L}_{sl1}(\hat{ab}_{f}, ab)
#   + \lambda_{cls}\,\mathcal{L}_{ce}(\hat{y}, y)
#   + \lambda_{h}\,\mathcal{L}_{hist}(\hat{p}, ab)
#   + \lambda_{tv}\,\mathcal{L}_{tv}(\hat{ab}_{f}),$$
#
# $\lambda_c = \lambda_f = 100$, $\lambda_{cls} = 0.1$, $\lambda_h = 1$, $\lambda_{tv} = 10$,
# minimised with Adam (learning rate $10^{-4}$, $\beta = (0.9, 0.999)$) on 256 x 256 crops in
# the paper. The bundled checkpoint was trained at 128 px with batch 32 and the learning
# rate scaled to $2 \cdot 10^{-4}$, on the encoders of a classification pre-stage that stay
# fixed (section 5, its model card); the paper's encoder comes from ImageNet training instead.
# The training pair is self-made (notebook 02): the target's L channel is the input, a
# thin-plate-spline warp of the target is the reference, and the target's own a, b
# channels are the answer.

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
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import clear_output, display
from torch.utils.data import DataLoader, DistributedSampler, default_collate

from sscn.models.checkpoint import bundled_checkpoint, load_model, read_checkpoint
from sscn.color import join_lab, lab_norm_to_rgb
from sscn.errors import SSCNError
from sscn.scores import psnr
from sscn.training.losses import LossWeights, sscn_loss
from sscn.models import SSCN
from sscn.apps.notebook import apply_smoke, explicit_parameters, smoke_mode
from sscn.training.config import TrainConfig
from sscn.training.train import datasets, make_batch, step_generator, train
from sscn.apps.viz import PANEL, image_grid

SMOKE = smoke_mode()  # SSCN_SMOKE=1
plt.rcParams["figure.dpi"] = 72  # modest figures keep the stored notebook small

# %% tags=["parameters"]
# the defaults are the bundled checkpoint's recipe (sscn/checkpoints/MODEL_CARD.md), hours on a CPU on Imagenette
data_dir = "samples"  # samples: the built-in photos; else an image folder such as imagenette2-144 (train/ and val/)
out_dir = "runs/notebook07"  # checkpoint, metrics.jsonl, summary.json; a run there is resumed
encoder_from = "bundled"  # the pre-stage to start the encoders from (bundled: the shipped one); "" for none
freeze_encoder = True  # keep the pre-stage encoders fixed (needs encoder_from)
image_size = 128
width = 0.25  # VGG19 width multiplier
batch_size = 32
steps = 3250
lr = 2e-4  # the paper's 1e-4 at batch 8, scaled for batch 32
k = 64  # top-k CAM tokens
r = 64  # random tokens
dense = False
similarity = "cosine"
encoder_norm = "batch"  # the encoders' normalisation, as in the pre-stage ("none": the legacy network's layout)
style_level = 6  # the reference level the style vector reads (the legacy network: 5)
cam_level = 5  # the reference level the CAM classifier reads
device = "auto"
seed = 0
val_every = 250
val_images = 300
log_every = 50
ckpt_every = 50  # often: an interrupted CPU run loses little
num_workers = 0  # the training set is preloaded, so no loader processes are needed
preload = True  # decode the training set once into memory (the GPU's, on a GPU)
time_limit_min = 0.0  # minutes; 0: no limit
metrics_json = "metrics.json"  # a relative path goes into out_dir
threads = 0  # CPU threads for torch; 0: the torch default
n_samples = 4  # colorizations shown at the end

# %%
# The parameters are checked before any work: a wrong type or range stops here, naming the field.
def make_config() -> TrainConfig:
    config = TrainConfig(
        data_dir=data_dir, out_dir=out_dir, image_size=image_size, width=width, batch_size=batch_size, steps=steps,
        lr=lr, k=k, r=r, dense=dense, similarity=similarity, encoder_norm=encoder_norm, style_level=style_level,
        cam_level=cam_level, encoder_from=encoder_from, freeze_encoder=freeze_encoder, device=device, seed=seed,
        val_every=val_every, val_images=val_images, log_every=log_every, ckpt_every=ckpt_every,
        num_workers=num_workers, preload=preload, time_limit_min=time_limit_min,
    )
    config.validate()
    return config


make_config()
for name, value, ok in [("metrics_json", metrics_json, isinstance(metrics_json, str) and metrics_json != ""),
                        ("threads", threads, isinstance(threads, int) and not isinstance(threads, bool) and threads >= 0),
                        ("n_samples", n_samples, isinstance(n_samples, int) and not isinstance(n_samples, bool) and n_samples >= 0)]:
    if not ok:
        raise SSCNError(f"notebook parameter {name} is {value!r}; see the parameters cell for what it takes")
# "Run all" with the defaults (on Colab, say) must not start hours of training on the 48 sample
# crops, which are a smoke test and not a training set: with no parameter given, samples means smoke
if not SMOKE and data_dir == "samples" and not explicit_parameters():
    print("data_dir = 'samples' is 48 crops, not a training set: running the smoke settings; set data_dir "
          "to an Imagenette folder (papermill: -p data_dir DIR) for the real run")
    SMOKE = True
# smoke mode: seconds on a CPU with a tiny network at 32 px, trained from scratch (the shipped
# pre-stage has width 0.25 and Imagenette's classes), except for any parameter that papermill
# set explicitly (an explicit -p always wins)
apply_smoke(globals(), force=SMOKE, data_dir="samples", image_size=32, width=0.125, batch_size=4, steps=30, lr=1e-3,
            k=4, r=4, encoder_from="", freeze_encoder=False, val_every=15, val_images=4, log_every=3, ckpt_every=30,
            num_workers=0, preload=False, threads=1, n_samples=2)
if SMOKE and "out_dir" not in explicit_parameters():
    out_dir = tempfile.mkdtemp(prefix="sscn-07-")  # a fresh folder, so the smoke run never resumes an old one
config = make_config()
if threads:
    torch.set_num_threads(threads)  # a tiny network on a shared CPU runs faster on one thread
metrics_path = Path(metrics_json) if Path(metrics_json).is_absolute() else Path(config.out_dir) / metrics_json
start = (f"encoders from the pre-stage {config.encoder_from!r}{', frozen' if config.freeze_encoder else ''}"
         if config.encoder_from else "from scratch")
print(f"training on {config.data_dir!r}: {config.steps} steps of {config.batch_size} at {config.image_size} px, "
      f"width {config.width}, k = {config.k}, r = {config.r}{' (dense)' if config.dense else ''}, lr {config.lr}, {start}")

# %% [markdown]
# ## 1. One training step, by hand
#
# `train()` repeats one step. Here it is, spelled out on the batch that `train()` itself
# draws first: the first `batch_size` photos of the training set in the order of epoch 0,
# shuffled by `seed` (a `DistributedSampler`, which with one process is a seeded shuffle,
# and with `torchrun` gives each process its share). Each target is flipped at random and
# gets a TPS-warped copy of itself as the reference (a share `violent_share` of them warped
# so violently that no semantic match is left, so the network also learns to cope with a
# poor reference). Every random choice of the step comes from one generator seeded by
# `(seed, step)` (`sscn.training.train.step_generator`): first the flips and the warps, then
# the CAM's random tokens. First the forward pass and the loss (Formula 6):

# %%
train_set, val_set = datasets(config)
print(f"{len(train_set)} training images in {len(train_set.classes)} classes, {len(val_set)} validation pairs")
sampler = DistributedSampler(train_set, num_replicas=1, rank=0, shuffle=True, seed=config.seed, drop_last=True)
sampler.set_epoch(0)
batch = default_collate([train_set[i] for i in list(sampler)[: config.batch_size]])
cpu = torch.device("cpu")
generator = step_generator(config.seed, 0)
gray_l, ab, ref_lab, labels = make_batch(batch, cpu, generator, config.violent_share)
tokens_state = generator.get_state()  # where the random tokens start: kept to replay the forward pass


def replay_tokens() -> torch.Generator:
    """A generator where this step's random tokens start: the forward pass's tokens again."""
    return torch.Generator().set_state(tokens_state)


again = make_batch(batch, cpu, step_generator(config.seed, 0), config.violent_share)

torch.manual_seed(config.seed)  # the weights train() starts from (its _new_model seeds the same way)
model = SSCN(config.model_config(len(train_set.classes)))
out = model(gray_l, ref_lab, labels, generator=generator)
weights = LossWeights()
total, terms = sscn_loss(out, ab, labels, weights)
for name, value in terms.items():
    print(f"{name:>6}: {value.item():8.4f} x {getattr(weights, name):5g} = {getattr(weights, name) * value.item():8.3f}")
print(f" total: {total.item():8.3f}")

fig = image_grid([[lab_norm_to_rgb(join_lab(gray_l[i], torch.zeros_like(ab[i]))), lab_norm_to_rgb(ref_lab[i]),
                   lab_norm_to_rgb(join_lab(gray_l[i], out.ab_fine[i].detach())), lab_norm_to_rgb(join_lab(gray_l[i], ab[i]))]
                  for i in range(min(2, len(gray_l)))],
                 ["gray target (input)", "TPS reference (input)", "untrained output", "ground truth"])
plt.show()

# %% [markdown]
# At initialisation the two smooth-L1 terms dominate (a random output is tens of ab
# units off, times 100), the histogram term sits near $\log Q$ (a uniform guess over the
# Q bins, $\log 261 = 5.56$) and the classifier near $\log(\text{classes})$.
#
# Then the step proper: back-propagate the total through the whole network (both stages,
# the attention, the decoder and the classifier at once) and let Adam move every weight.
# On its first step Adam moves each weight that has a gradient by about the learning
# rate, whatever the gradient's size (its update is the gradient divided by its own
# running magnitude). The same batch, with the same references and random tokens, then
# scores a lower loss.

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
optimizer.zero_grad()
total.backward()
parts = {"encoder": model.encoder, "coarse stage (GCT)": model.gct, "CAM classifier": model.cam,
         "attention": model.correspondence, "LDT decoder": model.ldt}
for name, part in parts.items():
    norm = math.sqrt(sum(float(p.grad.norm()) ** 2 for p in part.parameters() if p.grad is not None))
    print(f"gradient norm, {name:>18}: {norm:9.3f}")
before = [p.detach().clone() for p in model.parameters()]
optimizer.step()
largest_move = max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before))
with torch.no_grad():
    after, _ = sscn_loss(model(gray_l, ref_lab, labels, generator=replay_tokens()), ab, labels, weights)
print(f"loss on this batch: {total.item():.3f} before the step, {after.item():.3f} after; "
      f"largest weight change {largest_move:.2e} (lr = {config.lr:g})")

# %% [markdown]
# Look at the gradient norms: the coarse stage gets <span class="out">279.913</span>, the CAM
# classifier <span class="out">0.174</span>, over a thousand times less (this smoke network's
# numbers). Adam scales each weight's step by its own gradient history, so a small
# gradient alone does not stop the head learning (exercise 7.1 sees its loss fall); what
# does is the encoder the two share: trained end to end, its features follow the colour
# terms, weighted 100 each against 0.1 for classification, and the CAM reads features that
# were never asked to separate classes (notebook 04; the legacy model card). That is
# notebook 04's finding seen from the training side, and the reason for the pre-stage:
# train the reference encoder as a classifier first (the bundled recipe then keeps it
# frozen, section 5).

# %%
# NBVAL_CHECK_OUTPUT
weighted = sum(getattr(weights, name) * value for name, value in terms.items())
print("total == sum of the weighted terms:", torch.allclose(total, weighted))
print("same (seed, step) -> same flips and references:", all(torch.equal(x, y) for x, y in zip((gray_l, ab, ref_lab), again)))
print("every part of the network received a gradient:",
      all(any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in part.parameters()) for part in parts.values()))
print("one Adam step lowered the loss on this batch:", bool(after < total))
print("Adam's first step moves no weight by more than lr (plus rounding):", largest_move <= config.lr * 1.001)

# %% [markdown]
# ## 2. Reproducible, resumable, observable
#
# `sscn.training.train.train(config)` adds to that step everything a long run needs:
#
# - **Checkpoints** every `ckpt_every` steps and at the end: `out_dir/last.pt` holds the
#   weights, the optimiser, the step, the random-number states and the metric history.
#   It is written to a temporary file and renamed into place, so a crash mid-save keeps
#   the previous one. Run the same configuration again and it **resumes**; because
#   every step's randomness is seeded by `(seed, step)` and the data order by
#   `(seed, epoch)`, a run stopped and resumed ends with the same weights, bit for bit,
#   as one that never stopped (`tests/test_train.py` checks this).
# - **Metrics**: every `log_every` steps a line of `out_dir/metrics.jsonl` (each loss term,
#   images per second) and every `val_every` steps the validation PSNR on fixed
#   (seeded) TPS pairs; `summary.json` at the end.
# - **Guards**: a loss that becomes NaN or infinite stops the run with the step and the
#   term named, and the last checkpoint kept; `time_limit_min` stops (and saves) a run
#   cleanly when the time is up.
# - **A pre-stage to start from**: `encoder_from` loads both encoders and the CAM
#   classifier from a classification pre-stage (`sscn pretrain`), and `freeze_encoder`
#   keeps them fixed, so the Adam steps move the rest of the network only. The step by hand
#   above trains every part, as the smoke run does.
#
# The callback below redraws the curves as records arrive (at most every two seconds).
# Then the check that the package's step is the one built by hand in section 1.

# %%
records = []
last_draw = [0.0]


def draw():
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(4 * PANEL, 1.6 * PANEL))
    steps_logged = [rec["step"] for rec in records]
    ax_loss.plot(steps_logged, [rec["loss"] for rec in records], color="black", label="total")
    for name in terms:
        ax_loss.plot(steps_logged, [getattr(weights, name) * rec[name] for rec in records], lw=1,
                     label=f"{getattr(weights, name):g} x {name}")
    ax_loss.set(xlabel="step", ylabel="weighted loss", yscale="log", title="training loss (Formula 6)")
    ax_loss.legend(fontsize=7, ncol=2)
    val = [(rec["step"], rec["val_psnr"]) for rec in records if "val_psnr" in rec]
    if val:
        ax_psnr.plot(*zip(*val), marker="o")
    ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (fine output)")
    fig.tight_layout()
    clear_output(wait=True)
    display(fig)
    plt.close(fig)


def on_log(record):
    records.append(record)
    if time.time() - last_draw[0] > 2:
        draw()
        last_draw[0] = time.time()


summary = train(config, progress=False, on_log=on_log)
records = read_checkpoint(Path(config.out_dir) / "last.pt")["history"] or records  # a resumed run's whole history
draw()
print(f"{summary['steps']} steps ({summary['steps_this_run']} in this run), stopped by {summary['stopped_by']}, "
      f"{summary['wall_s']:.0f} s on {summary['device']}")

# %% [markdown]
# Is `train()`'s step the one built by hand in section 1? A second run of a single step
# starts from the same seeded weights and draws the same batch, flips, warps and tokens; if
# its weights after that step equal the hand-built model's, the section 1 code is the
# package's step. Four settings differ from the run above, none of them the step's maths:
# the network is trained from scratch and whole (`encoder_from = ""`, not frozen), as in
# section 1; in float32 (`precision`: on a CPU with native bf16 the default computes in
# bf16, section 1 does not); with photos decoded at each step (`preload` keeps them in
# float16) and in the default NCHW memory layout (`channels_last` reorders the sums of the
# convolutions, which changes the last bits).

# %%
one = replace(config, out_dir=tempfile.mkdtemp(prefix="sscn-07-one-step-"), steps=1, encoder_from="",
              freeze_encoder=False, init_from="", precision="float32", preload=False, channels_last=False,
              val_images=1, log_every=1, ckpt_every=1, time_limit_min=0.0)
one_step = train(one, progress=False)
package = read_checkpoint(Path(one.out_dir) / "last.pt")["model"]

# %%
# NBVAL_CHECK_OUTPUT
# the learned weights only: section 1's replayed forward pass moved the batch-norm running statistics again
moved = max(float((package[name] - value.detach()).abs().max()) for name, value in model.named_parameters())
print("train()'s first loss equals the hand-built step's:", math.isclose(one_step["first_loss"], total.item(), rel_tol=1e-5))
print("after one step, every weight of train()'s model equals the hand-built one's (within lr / 1000):",
      moved <= config.lr / 1000)

# %% [markdown]
# In the stored smoke run the total falls from 58.5 to 19.3 in 30 steps, and the
# validation PSNR is 20.05 dB at step 15 and 21.48 dB at step 30: enough to show that the
# loop runs, logs, validates and saves, far too short to show what the network learns.
# A real run looks like the bundled checkpoint's history in section 5, where the
# validation PSNR climbs from <span class="out">28.25</span> dB at step 250 to
# <span class="out">30.56</span> at step 3,250. A resumed run draws its whole history, read
# back from the checkpoint.
#
# ## 3. Sample colorizations
#
# The checkpoint is a complete model: `sscn.models.checkpoint.load_model` rebuilds the network
# from the configuration stored in it. Here it colours a few validation targets from
# their (seeded) TPS references.

# %%
trained = load_model(Path(config.out_dir) / "last.pt")
picks = np.linspace(0, len(val_set) - 1, min(n_samples, len(val_set))).round().astype(int).tolist()
rows, titles = [], []
for index in picks:
    item = val_set[index]
    with torch.no_grad():
        result = trained(item["gray_l"][None], item["ref_lab"][None], seed=0)
    rgb = lab_norm_to_rgb(join_lab(item["gray_l"], result.ab_fine[0]))
    rows.append([lab_norm_to_rgb(join_lab(item["gray_l"], torch.zeros_like(item["ab"]))),
                 lab_norm_to_rgb(item["ref_lab"]), rgb, item["rgb"]])
    titles.append(f"{psnr(rgb, item['rgb']).item():.1f} dB")
if rows:
    image_grid(rows, ["gray target", "reference", "SSCN", "ground truth"], titles)
    plt.show()

# %% [markdown]
# ## 4. The metrics file
#
# A papermill run is judged by what it writes: `metrics_json` holds the first and last
# loss, the validation PSNR at each check, the number of steps, the wall time and the
# settings. The test suite runs this notebook with tiny parameters and asserts on it.

# %%
speeds = [rec["images_per_s"] for rec in records[1:]] or [rec["images_per_s"] for rec in records]
metrics = {
    "first_loss": summary["first_loss"],
    "last_loss": summary["last_loss"],
    "val_psnr": summary["val_psnr"],
    "steps": summary["steps"],
    "steps_this_run": summary["steps_this_run"],
    "wall_s": summary["wall_s"],
    "images_per_s": float(np.median(speeds)) if speeds else None,
    "device": summary["device"],
    "loss_curve": [(rec["step"], rec["loss"]) for rec in records],
    "config": asdict(config),
}
metrics_path.parent.mkdir(parents=True, exist_ok=True)
metrics_path.write_text(json.dumps(metrics, indent=2))
print(f"loss {metrics['first_loss']:.3f} -> {metrics['last_loss']:.3f}; "
      f"val PSNR {', '.join(f'{p:.2f}' for _, p in metrics['val_psnr'])} dB; written to {metrics_path.name}")

# %% [markdown]
# ## 5. At full size: the bundled checkpoint's recipe, and a CPU-sized run
#
# The parameters cell holds the recipe of the bundled checkpoint (its model card). It has
# two stages. First the encoder's classification pre-stage, `sscn pretrain --recipe semantic
# --data-dir DATA/imagenette2-144 --out-dir runs/pretrain` (40 epochs; the shipped one
# reached 84.7 % gray top-1 on `imagenette2-144/val`); or skip it and start from the
# shipped copy, `encoder_from bundled`. Then SSCN on that encoder, frozen: this command
# runs it through papermill. Every setting of the recipe is written out, so the command
# does not depend on the notebook's defaults, and `tests/test_course.py` checks it against
# the recipe stored in the checkpoint (`encoder_from runs/pretrain/last.pt` for your own
# pre-stage):
#
# ```bash
# papermill notebooks/07_training.ipynb runs/07_sscn.ipynb \
#     -p data_dir DATA/imagenette2-144 -p out_dir runs/sscn -p encoder_from bundled -p freeze_encoder True \
#     -p image_size 128 -p width 0.25 -p batch_size 32 -p lr 2e-4 -p k 64 -p r 64 -p steps 3250 \
#     -p encoder_norm batch -p style_level 6 -p cam_level 5 \
#     -p val_every 250 -p val_images 300 -p log_every 50 -p ckpt_every 50 -p num_workers 0 -p preload True
# ```
#
# The bundled run trained on a CPU, not a GPU: two cores of an AMD EPYC (AVX-512 BF16, no
# AMX), bf16 autocast, two threads. Its history below adds up to
# <span class="out">127 min</span> of training (<span class="out">3250 steps</span>,
# <span class="out">2.3 s</span> per step, <span class="out">14.6 pairs per second</span> in the median),
# stopped and resumed from its checkpoints on the way; the pre-stage before it took 82 minutes on
# one thread. The model it replaced, `--recipe legacy` (`--checkpoint legacy` loads it),
# trained from scratch, without a pre-stage and with the first layout (`encoder_norm none`,
# `style_level 5`), in about 200 s on one NVIDIA H200.
#
# A CPU-sized run stops itself after 20 minutes (`time_limit_min`) at 64 px:
#
# ```bash
# papermill notebooks/07_training.ipynb runs/07_cpu64.ipynb \
#     -p data_dir DATA/imagenette-144 -p out_dir runs/cpu64 \
#     -p image_size 64 -p width 0.25 -p batch_size 8 -p lr 1e-4 -p k 16 -p r 16 -p steps 100000 \
#     -p time_limit_min 20 -p val_every 50 -p val_images 50 -p log_every 25 -p ckpt_every 250 \
#     -p num_workers 0 -p preload True -p threads 2
# ```
#
# With the notebook's defaults it starts from the shipped pre-stage, frozen (the
# pre-stage's encoders work at 64 px too), and only the rest of the network learns. Run
# this way on this project's 2-core CPU (AMD EPYC, AVX-512 BF16, no AMX; bf16 autocast),
# otherwise idle, it stopped itself after its 20 minutes at step 7,636 (51 images per
# second, validations included); the loss fell from 31.4 to 14.6 and the validation PSNR
# (50 photos of `imagenette-144/val`, never trained on) rose from 22.75 dB at step 50 to
# 27.53 at step 1,000, 28.52 at step 5,000 and 28.66 at the end, nearly flat by then; the
# whole papermill run took 21 minutes. A 64 px network that has seen a small fraction of
# the recipe's pairs, not a usable model, but the frozen pre-stage makes each step cheap.
# `docs/training/cpu64_papermill_run.json` keeps this run's record. The same command from
# scratch in the legacy layout (add `-p encoder_from "" -p freeze_encoder False -p
# encoder_norm none -p style_level 5`), measured earlier while a training run shared the
# CPU, managed 192 steps in its 20 minutes (1.3 images per second) and 23.34 dB at step
# 150 (`docs/training/legacy_cpu64_papermill_run.json`).
#
# The executed copy (`runs/07_sscn.ipynb`) keeps the curves and the colorizations, and
# `runs/sscn/metrics.json` the numbers. Run the same command again after an interruption
# and it resumes from `last.pt`. With `SSCN_SMOKE=1` in the environment every parameter
# given with `-p` still wins; the notebook prints which ones it kept. The command line
# runs the same loop, with the recipe by name (`sscn/training/recipes.py`) or spelt out:
#
# ```bash
# sscn train --recipe bundled --data-dir DATA/imagenette2-144 --out-dir runs/sscn --encoder-from bundled
# sscn train --data-dir DATA/imagenette2-144 --out-dir runs/sscn --encoder-from bundled --freeze-encoder \
#     --image-size 128 --width 0.25 --batch-size 32 --lr 2e-4 --k 64 --r 64 --steps 3250 \
#     --val-every 250 --val-images 300 --log-every 50 --ckpt-every 50 --num-workers 0 --preload
# torchrun --nproc_per_node=4 -m sscn.training.train --data-dir DATA/imagenette2-144 --out-dir runs/ddp \
#     --encoder-from bundled --freeze-encoder --image-size 128 --width 0.25 --batch-size 32 --lr 2e-4 \
#     --steps 3250 --topk 64 --random-tokens 64
# ```
#
# The layout settings (`encoder_norm batch`, `style_level 6`, `cam_level 5`) are the
# defaults, and the pre-stage's: its encoders load only into a network of the same width
# and normalisation (README, "The encoder's classification pre-stage").
#
# `torchrun` starts one process per GPU (DistributedDataParallel; each process draws
# its own part of every epoch, so the effective batch is `batch_size` times the number of
# processes). Under `torchrun` write k and r as `--topk` and `--random-tokens`: torchrun
# reads the whole command line and rejects `--r` as an abbreviation of its own options.
#
# The bundled checkpoint came out of this loop; its settings and its history are stored
# in it. A resumed run restarts its clock (`elapsed_s`), so the training time is added up
# from the speed of each logged stretch of steps:

# %%
bundled = bundled_checkpoint()
if bundled is None:
    print("this installation has no bundled checkpoint")
else:
    ckpt = read_checkpoint(bundled)
    history, setup = ckpt.get("history", []), ckpt.get("train_config", {})
    print("settings:", {key: setup.get(key) for key in ("image_size", "width", "batch_size", "lr", "k", "r", "steps",
                                                        "encoder_norm", "style_level", "encoder_from", "freeze_encoder")})
    if history:
        # each record's images_per_s covers the steps since the record before it (validation and saving included)
        starts = [0] + [rec["step"] for rec in history[:-1]]
        seconds = sum((rec["step"] - start) * setup["batch_size"] / rec["images_per_s"]
                      for start, rec in zip(starts, history))
        print(f"{ckpt['step']} steps in {seconds / 60:.0f} min of training: {seconds / ckpt['step']:.1f} s per step, "
              f"{np.median([rec['images_per_s'] for rec in history]):.1f} pairs per second (median)")
        val = [(rec["step"], rec["val_psnr"]) for rec in history if "val_psnr" in rec]
        print("validation PSNR (dB) by step:", ", ".join(f"{step}: {value:.2f}" for step, value in val))
        fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(4 * PANEL, 1.6 * PANEL))
        ax_loss.plot([rec["step"] for rec in history], [rec["loss"] for rec in history], color="black")
        ax_loss.set(xlabel="step", ylabel="total loss", title="bundled checkpoint: training loss")
        if val:
            ax_psnr.plot(*zip(*val), marker="o")
        ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR")
        fig.tight_layout()
        plt.show()

# %% [markdown]
# ## Conclusion
#
# - A training step is: flip, warp the target into its own reference, run the network,
#   add the five losses with the paper's weights, back-propagate, take an Adam step.
# - Seeding every step by `(seed, step)` and saving the random states makes a run
#   reproducible and exactly resumable; atomic checkpoints make it safe to kill.
# - One loop serves the notebook (papermill), `sscn train` and `torchrun`; the notebook's
#   parameters cell is checked before any work, and the metrics file is what a test or
#   a sweep reads back.
#
# Notebook 08 measures what the trained network is worth, against baselines.

# %% [markdown]
# ## Exercises
#
# Each exercise has a worked solution in the cell after it; in Jupyter it starts
# collapsed, so try first, then click to reveal.

# %% [markdown]
# ### Exercise 7.1
#
# Overfit one batch: a network that cannot drive the loss of a single batch towards its
# floor has a bug. Take the batch of section 1 and a fresh network, and repeat the step
# of section 1 on it (same references, same random tokens) for a few dozen steps. How far
# does the loss fall, and which terms fall most?

# %% tags=["solution"]
# Solution 7.1
torch.manual_seed(config.seed)
overfit = SSCN(config.model_config(len(train_set.classes)))
overfit_optimizer = torch.optim.Adam(overfit.parameters(), lr=1e-3)
overfit_steps = 40 if SMOKE else 100
history_one_batch = []
for step in range(overfit_steps):
    out_one = overfit(gray_l, ref_lab, labels, generator=replay_tokens())  # section 1's tokens at every step
    loss_one, terms_one = sscn_loss(out_one, ab, labels, weights)
    overfit_optimizer.zero_grad()
    loss_one.backward()
    overfit_optimizer.step()
    history_one_batch.append({"total": loss_one.item(), **{n: getattr(weights, n) * v.item() for n, v in terms_one.items()}})
first_one, last_one = history_one_batch[0], history_one_batch[-1]
for name in first_one:
    print(f"{name:>6}: {first_one[name]:8.3f} -> {last_one[name]:8.3f} (weighted)")

# %% [markdown] tags=["solution"]
# In the stored run (40 steps on section 1's batch of 4 photos) the total falls from
# <span class="out">44.471</span> (section 1's loss: the same weights, batch and tokens) to
# <span class="out">5.554</span>. The coarse smooth-L1 term falls most
# (<span class="out">29.966</span> to <span class="out">1.929</span>, weighted), the fine term
# from <span class="out">8.469</span> to <span class="out">1.528</span>, the histogram term from
# <span class="out">5.544</span> to <span class="out">1.952</span>, and the classifier's term
# from <span class="out">0.197</span> to <span class="out">0.043</span> (four photos are easy
# to tell apart). A loss that does not fall
# on a single batch points to a bug (a detached tensor, a wrong target, a learning rate
# of zero); a loss that falls this fast on one batch says nothing about new photos,
# which is what the validation PSNR measures.

# %% [markdown]
# ### Exercise 7.2
#
# Papermill replaces the values of the parameters cell; the smoke switch replaces some of
# them again, unless papermill set them. Read `sscn.apps.notebook.apply_smoke` and predict what
# this notebook would train with `SSCN_SMOKE=1` and `papermill ... -p steps 100 -p lr 5e-4`.
# Then check your answer without running papermill: call `apply_smoke` on a dictionary of
# this notebook's defaults, pretending that papermill set `steps` and `lr`.

# %% tags=["solution"]
# Solution 7.2
from unittest import mock  # noqa: E402

import sscn.apps.notebook  # noqa: E402

defaults = {"steps": 3250, "lr": 2e-4, "batch_size": 32, "image_size": 128}
with mock.patch.dict(os.environ, {"SSCN_SMOKE": "1"}), \
        mock.patch.object(sscn.apps.notebook, "explicit_parameters", return_value={"steps", "lr"}):
    pretend = {**defaults, "steps": 100, "lr": 5e-4}  # what papermill's injected cell would have set
    sscn.apps.notebook.apply_smoke(pretend, steps=30, lr=1e-3, batch_size=4, image_size=32)
print(pretend)

# %% [markdown] tags=["solution"]
# The explicit values win (`steps` 100, `lr` 5e-4) and the notebook says so in a line
# starting "SSCN_SMOKE=1 IGNORED"; the others take their smoke values (batch 4 at 32 px).
# Papermill writes its values into a cell of their own that starts with `# Parameters`,
# and `sscn.apps.notebook.explicit_parameters` reads the names back from the kernel's history.

# %% [markdown]
# ## References
#
# - Y. Bai, C. Dong, Z. Chai, A. Wang, Z. Xu, C. Yuan. Semantic-Sparse Colorization Network
#   for Deep Exemplar-based Colorization. ECCV 2022 (Sec. 3.3, Formula 6; Sec. 4.1).
# - D. P. Kingma, J. Ba. Adam: A method for stochastic optimization. ICLR 2015.
# - S. Li et al. PyTorch Distributed: Experiences on accelerating data parallel training.
#   VLDB 2020.
# - A. Karpathy. A recipe for training neural networks. 2019 (overfit one batch first).
#
# ---
#
# [← 06 · Losses](06_losses.ipynb) · [all notebooks](00_overview.ipynb) · [08 · Evaluation →](08_evaluation.ipynb)
