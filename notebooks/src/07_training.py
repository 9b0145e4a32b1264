# %% [markdown]
# # 07 · Training: the loop, checkpoints and a papermill run
#
# The network of notebooks 03-05 and the losses of notebook 06 come together here. This
# notebook *is* a training run: its `parameters` cell holds every setting, papermill
# overrides them from the command line, and the run writes its checkpoint, its metrics
# log and a small JSON summary. The loop itself lives in `sscn.train`, so the notebook,
# the `sscn train` command and `torchrun ... -m sscn.train` run the same code.
#
# **What you will learn**
#
# - what one training step does (paper, Sec. 3.3): a photo, its TPS-warped copy as the
#   reference, the forward pass, Formula 6, an Adam step;
# - how a run is made reproducible and resumable: seeded steps, atomic checkpoints,
#   a resumed run that ends with bit-identical weights;
# - how to watch a run (live loss curves, validation PSNR) and what the curves say;
# - how to run the same notebook at full size on a GPU with papermill, and what a full
#   run looked like.
#
# **The objective** (Formula 6) adds the five losses of notebook 06 with the paper's weights:
#
# $$\mathcal{L} = \lambda_{c}\,\mathcal{L}_{sl1}(\hat{ab}_{c}, ab)
#   + \lambda_{f}\,\mathcal{L}_{sl1}(\hat{ab}_{f}, ab)
#   + \lambda_{cls}\,\mathcal{L}_{ce}(\hat{y}, y)
#   + \lambda_{h}\,\mathcal{L}_{hist}(\hat{p}, ab)
#   + \lambda_{tv}\,\mathcal{L}_{tv}(\hat{ab}_{f}),$$
#
# $\lambda_c = \lambda_f = 100$, $\lambda_{cls} = 0.1$, $\lambda_h = 1$, $\lambda_{tv} = 10$,
# minimised with Adam (learning rate $10^{-4}$, $\beta = (0.9, 0.999)$) on 256 x 256 crops.
# The training pair is self-made (notebook 02): the target's L channel is the input, a
# thin-plate-spline warp of the target is the reference, and the target's own a, b
# channels are the answer.

# %%
import json
import os
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import clear_output, display
from torch.utils.data import DataLoader

from sscn.checkpoint import bundled_checkpoint, load_model, read_checkpoint
from sscn.color import join_lab, lab_norm_to_rgb
from sscn.errors import SSCNError
from sscn.evaluate import psnr
from sscn.losses import LossWeights, sscn_loss
from sscn.models import SSCN
from sscn.train import TrainConfig, datasets, make_batch, step_generator, train
from sscn.viz import PANEL, image_grid

SMOKE = os.environ.get("SSCN_SMOKE") == "1"
plt.rcParams["figure.dpi"] = 72  # modest figures keep the stored notebook small

# %% tags=["parameters"]
data_dir = "samples"  # "samples" = the built-in photos; else an image folder, e.g. imagenette-144 (train/ and val/)
out_dir = "runs/notebook07"  # checkpoint, metrics.jsonl, summary.json; a run there is resumed
image_size = 128
width = 0.25  # VGG19 width multiplier
batch_size = 16
steps = 2000
lr = 1e-4
k = 128  # top-k CAM tokens
r = 128  # random tokens
dense = False
similarity = "cosine"
device = "auto"
seed = 0
val_every = 200
val_images = 64
log_every = 20
ckpt_every = 200
num_workers = 2
preload = False  # decode the training set once into (GPU) memory
time_limit_min = 0.0  # 0 = no limit
metrics_json = "metrics.json"  # a relative path goes into out_dir
threads = 0  # CPU threads for torch; 0 = torch's default
n_samples = 4  # colorizations shown at the end

# %%
# The parameters first: a wrong type or range stops here, before any work, naming the field.
config = TrainConfig(
    data_dir=data_dir, out_dir=out_dir, image_size=image_size, width=width, batch_size=batch_size, steps=steps,
    lr=lr, k=k, r=r, dense=dense, similarity=similarity, device=device, seed=seed, val_every=val_every,
    val_images=val_images, log_every=log_every, ckpt_every=ckpt_every, num_workers=num_workers, preload=preload,
    time_limit_min=time_limit_min,
)
config.validate()
for name, value, ok in [("metrics_json", metrics_json, isinstance(metrics_json, str) and metrics_json != ""),
                        ("threads", threads, isinstance(threads, int) and not isinstance(threads, bool) and threads >= 0),
                        ("n_samples", n_samples, isinstance(n_samples, int) and not isinstance(n_samples, bool) and n_samples >= 0)]:
    if not ok:
        raise SSCNError(f"notebook parameter {name} is {value!r}; see the parameters cell for what it takes")

if SMOKE:  # seconds on a CPU: tiny network, 32 px, a fresh folder so nothing is resumed
    config = replace(config, data_dir="samples", image_size=32, width=0.125, batch_size=4, steps=30, lr=1e-3,
                     k=4, r=4, val_every=15, val_images=4, log_every=3, ckpt_every=30, num_workers=0,
                     out_dir=tempfile.mkdtemp(prefix="sscn-07-"))
    threads, n_samples = 1, 2
if threads:
    torch.set_num_threads(threads)  # a tiny network on a shared CPU runs faster on one thread
metrics_path = Path(metrics_json) if Path(metrics_json).is_absolute() else Path(config.out_dir) / metrics_json
print(f"training on {config.data_dir!r}: {config.steps} steps of {config.batch_size} at {config.image_size} px, "
      f"width {config.width}, k = {config.k}, r = {config.r}{' (dense)' if config.dense else ''}, lr {config.lr}")

# %% [markdown]
# ## 1. One training step, by hand
#
# `train()` repeats one step. Here it is, spelled out on a few photos of the training set:
# each target is flipped at random and gets a TPS-warped copy of itself as the reference
# (a share `violent_share` of them warped so violently that no semantic match is left,
# so the network also learns to cope with a poor reference). Every random choice of the
# step comes from one generator seeded by `(seed, step)` (`sscn.train.step_generator`):
# the flips, the warps and the CAM's random tokens.

# %%
train_set, val_set = datasets(config)
print(f"{len(train_set)} training images in {len(train_set.classes)} classes, {len(val_set)} validation pairs")
batch = next(iter(DataLoader(train_set, batch_size=min(4, config.batch_size))))
cpu = torch.device("cpu")
gray_l, ab, ref_lab, labels = make_batch(batch, cpu, step_generator(config.seed, 0), config.violent_share)
again = make_batch(batch, cpu, step_generator(config.seed, 0), config.violent_share)

torch.manual_seed(config.seed)
model = SSCN(config.model_config(len(train_set.classes)))
out = model(gray_l, ref_lab, labels, generator=step_generator(config.seed, 0))
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

# %%
# NBVAL_CHECK_OUTPUT
weighted = sum(getattr(weights, name) * value for name, value in terms.items())
print("total == sum of the weighted terms:", torch.allclose(total, weighted))
print("same (seed, step) -> same flips and references:", all(torch.equal(x, y) for x, y in zip((gray_l, ab, ref_lab), again)))

# %% [markdown]
# At initialisation the two smooth-L1 terms dominate (a random output is tens of ab
# units off, times 100), the histogram term sits near $\log Q$ (a uniform guess over the
# Q bins) and the classifier near $\log(\text{classes})$.
#
# ## 2. Reproducible, resumable, observable
#
# `sscn.train.train(config)` adds to that step everything a long run needs:
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
#
# The callback below redraws the curves as records arrive (at most every two seconds).

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
# The total falls fastest in the first steps, where the network learns the overall
# colour statistics (the smooth-L1 terms shrink), then slowly as it learns to copy the
# reference's colours to the right places; that slow phase is where the validation PSNR
# climbs. A resumed run draws its whole history, read back from the checkpoint.
#
# ## 3. Sample colorizations
#
# The checkpoint is a complete model: `sscn.checkpoint.load_model` rebuilds the network
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
# ## 5. At full size
#
# On a GPU, run this very notebook with papermill and the real settings (Imagenette at
# 128 px here; the paper trains at 256 px):
#
# ```bash
# papermill notebooks/07_training.ipynb runs/07_full.ipynb \
#     -p data_dir data/imagenette-144 -p out_dir runs/imagenette128 \
#     -p image_size 128 -p width 0.25 -p batch_size 32 -p lr 2e-4 -p steps 20000 \
#     -p k 64 -p r 64 -p val_every 1000 -p val_images 300 -p log_every 100 -p ckpt_every 500 \
#     -p num_workers 8 -p preload True
# ```
#
# The executed copy (`runs/07_full.ipynb`) keeps the curves and the colorizations, and
# `runs/imagenette128/metrics.json` the numbers. Run the same command again after an
# interruption and it resumes from `last.pt`. The command line runs the same loop:
#
# ```bash
# sscn train --data-dir data/imagenette-144 --out-dir runs/imagenette128 --image-size 128 \
#     --width 0.25 --batch-size 32 --lr 2e-4 --steps 20000 --k 64 --r 64 --preload
# torchrun --nproc_per_node=4 -m sscn.train --data-dir data/imagenette-144 --out-dir runs/ddp \
#     --image-size 128 --width 0.25 --batch-size 32 --lr 2e-4 --steps 20000 --topk 64 --random-tokens 64
# ```
#
# `torchrun` starts one process per GPU (DistributedDataParallel; each process draws
# its own part of every epoch, so the effective batch is `batch_size` times the number of
# processes). Under `torchrun` write k and r as `--topk` and `--random-tokens`: torchrun
# reads the whole command line and rejects `--r` as an abbreviation of its own options.
#
# The bundled checkpoint came out of this loop; its settings and its history are stored
# in it:

# %%
bundled = bundled_checkpoint()
if bundled is None:
    print("this installation has no bundled checkpoint")
else:
    ckpt = read_checkpoint(bundled)
    history, setup = ckpt.get("history", []), ckpt.get("train_config", {})
    print("settings:", {key: setup.get(key) for key in ("image_size", "width", "batch_size", "lr", "k", "r", "amp")})
    if history:
        print(f"{ckpt['step']} steps in {history[-1]['elapsed_s']:.0f} s, "
              f"{np.median([rec['images_per_s'] for rec in history[1:]]):.0f} images per second")
        fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(4 * PANEL, 1.6 * PANEL))
        ax_loss.plot([rec["step"] for rec in history], [rec["loss"] for rec in history], color="black")
        ax_loss.set(xlabel="step", ylabel="total loss", title="bundled checkpoint: training loss")
        val = [(rec["step"], rec["val_psnr"]) for rec in history if "val_psnr" in rec]
        if val:
            ax_psnr.plot(*zip(*val), marker="o")
        ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR")
        fig.tight_layout()
        plt.show()

# %% [markdown]
# ## Conclusion
#
# - A training step is: flip, warp the target into its own reference, run the network,
#   add the five losses with the paper's weights, take an Adam step.
# - Seeding every step by `(seed, step)` and saving the random states makes a run
#   reproducible and exactly resumable; atomic checkpoints make it safe to kill.
# - One loop serves the notebook (papermill), `sscn train` and `torchrun`; the notebook's
#   parameters cell is checked before any work, and the metrics file is what a test or
#   a sweep reads back.
#
# Notebook 08 measures what the trained network is worth, against baselines.
#
# ## References
#
# - Y. Bai, C. Dong, Z. Chai, A. Wang, Z. Xu, C. Yuan. Semantic-Sparse Colorization Network
#   for Deep Exemplar-based Colorization. ECCV 2022 (Sec. 3.3, Formula 6; Sec. 4.1).
# - D. P. Kingma, J. Ba. Adam: A method for stochastic optimization. ICLR 2015.
# - S. Li et al. PyTorch Distributed: Experiences on accelerating data parallel training.
#   VLDB 2020.
