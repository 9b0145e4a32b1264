"""Training (sscn.training.train): a batch overfits, resuming is exact, DDP runs, NaNs stop cleanly,
bad settings are refused, and notebook 07 runs under papermill.

Everything is tiny (width 0.125, 32 px) and single-threaded: on a busy CPU, torch's
thread pool waiting for a second core costs more than it gains at this size.
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sscn.training.train as train_module
from sscn.augment import training_references
from sscn.models.checkpoint import read_checkpoint
from sscn.color import join_lab, rgb_to_lab_norm, split_lab
from sscn.io.data import SAMPLE_CROPS, ImageFolder, sample_folder, sample_photos
from sscn.errors import SSCNError
from sscn.training.losses import sscn_loss
from sscn.models import SSCN, SSCNConfig
from sscn.training.config import TrainConfig, add_arguments, config_from_args
from sscn.training.train import TrainingDiverged, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data_dir="samples", image_size=32, width=0.125, batch_size=8, k=4, r=4, num_workers=0,
            val_images=4, val_every=1000, log_every=1, ckpt_every=1000, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """A private cache folder (``XDG_CACHE_HOME``), so ``data_dir="samples"`` writes under tmp."""
    home = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        sample_folder()
        yield home


def test_sample_folder(tmp_path):
    root = sample_folder(tmp_path / "samples")
    names = [name for name, _ in sample_photos()]
    assert sorted(p.name for p in root.iterdir()) == sorted(names)
    dataset = ImageFolder(root, 32)
    assert len(dataset) == len(names) * len(SAMPLE_CROPS)
    assert dataset.classes == sorted(names)
    # reused, not rebuilt; no temporary folders left beside it
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    assert sample_folder(root) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["samples"]
    # the same bytes on a second build
    again = sample_folder(tmp_path / "again")
    assert all((again / p.relative_to(root)).read_bytes() == p.read_bytes() for p in stamp)


def test_sample_folder_refuses_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SSCNError, match="is a file"):
        sample_folder(tmp_path / "file")


def test_a_single_batch_overfits():
    """Formula 6 on one fixed batch of real photos: the total falls at least 5x."""
    torch.manual_seed(0)
    photos = torch.stack([rgb for _, rgb in sample_photos(size=32)[:4]])
    lab = rgb_to_lab_norm(photos)
    gray_l, ab = split_lab(lab)
    ref_lab = training_references(join_lab(gray_l, ab), torch.Generator().manual_seed(0), violent_share=0.0)
    labels = torch.arange(len(photos))
    model = SSCN(SSCNConfig(width=0.125, num_classes=len(photos), k=4, r=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, fine = [], []
    for step in range(300):  # 100 to 150 steps are enough
        out = model(gray_l, ref_lab, labels, seed=0)
        total, terms = sscn_loss(out, ab, labels)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
        fine.append(terms["fine"].item())
        if losses[-1] < losses[0] / 6 and fine[-1] < fine[0] / 6:
            break
    assert all(map(math.isfinite, losses))
    assert min(losses[-5:]) < losses[0] / 5, f"loss {losses[0]:.3f} -> {losses[-1]:.3f} after {len(losses)} steps"
    # not only the easy terms: the fine colours themselves are learnt
    assert min(fine[-5:]) < fine[0] / 5, f"fine smooth-L1 {fine[0]:.4f} -> {fine[-1]:.4f}"


@pytest.mark.usefixtures("auto_and_forced_bf16")  # numbers that depend on the training precision
def test_resume_gives_the_same_weights(tmp_path, cache_home):
    steps = 8  # 48 sample images / batch 8: six steps an epoch, so the run crosses an epoch
    whole = train(TrainConfig(**TINY, steps=steps, out_dir=str(tmp_path / "whole")), progress=False)
    first = train(TrainConfig(**TINY, steps=steps // 2, out_dir=str(tmp_path / "split")), progress=False)
    assert first["steps"] == steps // 2
    second = train(TrainConfig(**TINY, steps=steps, out_dir=str(tmp_path / "split")), progress=False)
    assert second["steps"] == steps and second["steps_this_run"] == steps - steps // 2
    a = read_checkpoint(tmp_path / "whole" / "last.pt")
    b = read_checkpoint(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == steps
    assert a["model"].keys() == b["model"].keys()
    different = [name for name in a["model"] if not torch.equal(a["model"][name], b["model"][name])]
    assert not different, f"resumed weights differ: {different[:5]}"
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    assert whole["last_loss"] == second["last_loss"]
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, steps + 1))


# (relative tolerance of the losses, absolute one of the weights in lr) per precision. The losses: float32
# rounding, or bf16's 8-bit mantissa (measured 9e-4 and 1.1e-3 apart). The weights: Adam moves a weight by
# about lr per step whatever its gradient's size (at most 1.003 lr in 3 steps with the default betas), so where a
# gradient is near zero, rounding can flip its sign; in float32 that is rare (one run's 3 steps, 3 lr), in bf16
# common (16 % of weights moved over lr apart), and two runs moving opposite ways part by up to 2 x 3 lr
CHANNELS_LAST_TOLERANCE = {"float32": (1e-4, 3), "bf16": (1e-2, 6.1)}


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_channels_last_changes_speed_not_learning(tmp_path, cache_home, precision):
    """The NHWC memory format (the default, for speed) computes the same steps up to rounding,
    in either precision (pinned here: ``auto`` would pick by the CPU)."""
    runs = [train(TrainConfig(**TINY, steps=3, channels_last=flag, precision=precision,
                              out_dir=str(tmp_path / str(flag))), progress=False)
            for flag in (True, False)]
    a, b = (read_checkpoint(tmp_path / str(flag) / "last.pt") for flag in (True, False))
    rel, lrs = CHANNELS_LAST_TOLERANCE[precision]
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], rel=rel)
    assert runs[0]["last_loss"] == pytest.approx(runs[1]["last_loss"], rel=rel)
    assert runs[0]["precision"].startswith("bf16" if precision == "bf16" else "float32")
    conv = next(name for name, value in a["model"].items() if value.dim() == 4)
    assert a["model"][conv].is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(a["model"][conv], b["model"][conv], atol=lrs * TrainConfig.lr)


def test_resume_names_the_settings_it_changes(tmp_path, cache_home, capsys):
    train(TrainConfig(**TINY, steps=1, out_dir=str(tmp_path)), progress=False)
    capsys.readouterr()
    train(TrainConfig(**{**TINY, "lr": 2e-4}, steps=2, out_dir=str(tmp_path)), progress=False)
    out = capsys.readouterr().out
    assert "resumed from last.pt at step 1" in out
    # a longer run (steps) is what resuming is for; a new learning rate is worth a line
    assert "settings differ from the checkpoint's run: lr 0.0001 -> 0.0002" in out and "steps" not in out.split("run:")[1]


@pytest.mark.usefixtures("auto_and_forced_bf16")  # numbers that depend on the training precision
def test_training_writes_metrics_and_validates(tmp_path, cache_home):
    logged = []
    cfg = TrainConfig(**{**TINY, "val_every": 2, "log_every": 2}, steps=4, out_dir=str(tmp_path))
    summary = train(cfg, progress=False, on_log=logged.append)
    assert [r["step"] for r in logged] == [2, 4]
    assert [step for step, _ in summary["val_psnr"]] == [2, 4]
    assert all(10 < psnr < 60 for _, psnr in summary["val_psnr"])
    assert set(logged[0]) >= {"loss", "coarse", "fine", "cls", "hist", "tv", "images_per_s", "val_psnr"}
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["steps"] == 4 and saved["world_size"] == 1 and saved["stopped_by"] == "steps"


def test_time_limit_stops_and_saves(tmp_path, cache_home):
    summary = train(TrainConfig(**TINY, steps=50, time_limit_min=1e-6, out_dir=str(tmp_path)), progress=False)
    assert summary["stopped_by"] == "time limit" and summary["steps"] == 1
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_two_process_ddp_run(tmp_path, cache_home):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(cache_home)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "sscn.training.train", "--data-dir", "samples", "--out-dir", str(out), "--image-size", "32",
               "--width", "0.125", "--batch-size", "2", "--topk", "4", "--random-tokens", "4", "--steps", "3",
               "--num-workers", "0", "--val-images", "2", "--log-every", "1", "--device", "cpu"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["steps"] == 3 and math.isfinite(summary["last_loss"])
    assert read_checkpoint(out / "last.pt")["step"] == 3
    # one metrics line per logged step: only rank 0 writes
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_nan_stops_training_and_keeps_the_checkpoint(tmp_path, cache_home, monkeypatch):
    calls = []

    def poisoned(output, true_ab, labels, weights=None, bins=None, colour_weight=None):
        total, terms = sscn_loss(output, true_ab, labels, weights, bins, colour_weight)
        calls.append(1)
        if len(calls) == 3:
            terms = {**terms, "hist": terms["hist"] * math.nan}
            total = total + terms["hist"]
        return total, terms

    monkeypatch.setattr(train_module, "sscn_loss", poisoned)
    cfg = TrainConfig(**{**TINY, "ckpt_every": 2}, steps=6, out_dir=str(tmp_path))
    with pytest.raises(TrainingDiverged, match=r"step 3: loss term hist = nan") as info:
        train(cfg, progress=False)
    assert "last.pt, step 2" in str(info.value)
    assert isinstance(info.value, SSCNError)
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


@pytest.mark.parametrize("field, value", [
    ("image_size", 40), ("image_size", 16), ("width", 0.0), ("batch_size", 0), ("steps", 0), ("lr", -1e-4),
    ("lr", math.nan), ("k", -1), ("r", -2), ("violent_share", 1.5), ("similarity", "l2"), ("val_every", 0),
    ("log_every", 0), ("ckpt_every", 0), ("grad_clip", -1.0), ("device", "tpu"), ("time_limit_min", -1.0),
    # wrong types, as a papermill -p or a typo would give them
    ("image_size", "128"), ("steps", 10.5), ("lr", "1e-4"), ("dense", "yes"), ("batch_size", True),
    ("data_dir", None),
])
def test_validate_names_the_bad_field(field, value):
    with pytest.raises(SSCNError, match=rf"training parameter {field} must"):
        TrainConfig(**{field: value}).validate()


def test_validate_accepts_the_defaults_and_ints_for_floats():
    TrainConfig().validate()
    TrainConfig(width=1, lr=1, time_limit_min=2).validate()
    with pytest.raises(SSCNError, match="k must be such that k \\+ r >= 1"):
        TrainConfig(k=0, r=0).validate()
    TrainConfig(k=0, r=0, dense=True).validate()


def test_command_line_flags_map_to_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--image-size", "64", "--width", "0.5", "--dense", "--precision", "float32",
                                              "--data-dir", "photos"]))
    assert (cfg.image_size, cfg.width, cfg.dense, cfg.precision, cfg.data_dir) == (64, 0.5, True, "float32", "photos")
    assert config_from_args(parser.parse_args([])) == TrainConfig()
    assert parser.parse_args(["--no-amp"]).precision == "float32"  # the earlier flag, in recorded commands
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp16"])


def test_notebook_07_under_papermill(tmp_path, cache_home, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.delenv("SSCN_SMOKE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    metrics = tmp_path / "metrics.json"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "07_training.ipynb"), str(tmp_path / "out.ipynb"),
        # from scratch: the notebook's default pre-stage (the shipped one) has width 0.25 and Imagenette's classes
        parameters=dict(data_dir="samples", image_size=32, width=0.125, batch_size=4, steps=40, lr=1e-3, k=4, r=4,
                        encoder_from="", freeze_encoder=False,
                        val_every=20, val_images=4, log_every=5, num_workers=0, threads=1, n_samples=2,
                        out_dir=str(tmp_path / "run"), metrics_json=str(metrics)),
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
    )
    result = json.loads(metrics.read_text())
    assert result["steps"] == 40
    assert result["last_loss"] < result["first_loss"]
    assert [step for step, _ in result["val_psnr"]] == [20, 40]
    assert result["wall_s"] > 0
    assert (tmp_path / "run" / "last.pt").exists()


def test_notebook_07_run_all_with_its_defaults_is_the_smoke_run(tmp_path, cache_home, monkeypatch):
    """"Run all" on Colab (no SSCN_SMOKE, no parameter) must not start the full recipe on the 48
    sample crops: it says so and runs the smoke settings, in seconds."""
    papermill = pytest.importorskip("papermill")
    import nbformat

    monkeypatch.delenv("SSCN_SMOKE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    papermill.execute_notebook(str(ROOT / "notebooks" / "07_training.ipynb"), str(tmp_path / "out.ipynb"),
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    printed = "".join(out.get("text", "") for cell in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
                      if cell.cell_type == "code" for out in cell.outputs)
    assert "is 48 crops, not a training set: running the smoke settings" in printed
    assert "training on 'samples': 30 steps of 4 at 32 px" in printed


def notebook_cells(path):
    """(cells before the parameters cell, the parameters cell, the cell after it), as source text."""
    import nbformat

    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    return [c.source for c in cells[:at]], cells[at].source, cells[at + 1].source


@pytest.mark.parametrize("override, message", [
    ("image_size = 'big'", "training parameter image_size must be an int"),
    ("lr = -1.0", "training parameter lr must be a finite number > 0"),
    ("steps = 10.0", "training parameter steps must be an int"),
    ("threads = -1", "notebook parameter threads"),
    ("metrics_json = ''", "notebook parameter metrics_json"),
    ("encoder_from = ''", "training parameter freeze_encoder must be used with encoder_from"),  # frozen by default
])
def test_notebook_07_rejects_a_bad_parameter_in_its_first_cell(tmp_path, monkeypatch, override, message):
    """The cell after ``parameters`` (where papermill injects its values) validates them before any work."""
    monkeypatch.delenv("SSCN_SMOKE", raising=False)
    monkeypatch.chdir(tmp_path)
    setup, parameters, first = notebook_cells(ROOT / "notebooks" / "07_training.ipynb")
    namespace = {}
    for source in (*setup, parameters, override):
        exec(source, namespace)
    with pytest.raises(SSCNError, match=message):
        exec(first, namespace)
    assert list(tmp_path.iterdir()) == []


def test_same_class_references_replace_the_chosen_share():
    from sscn.training.same_class import SameClassSampler

    labels = [0, 0, 0, 1, 1, 2]
    photos = torch.arange(len(labels), dtype=torch.float32)[:, None, None, None].expand(-1, 3, 4, 4) / 10
    fetch = lambda chosen: (photos[chosen, :1], photos[chosen, 1:])  # noqa: E731
    sampler = SameClassSampler(labels, seed=0)
    indices = [0, 1, 2, 3, 4, 5]
    refs, use = train_module.same_class_references(indices, 1.0, sampler, fetch, torch.Generator().manual_seed(0), 0)
    assert use.tolist() == [True] * 5 + [False]  # class 2 has one photo: it keeps its TPS reference
    for i in range(5):
        partner = int(round(float(refs[i, 0, 0, 0]) * 10))
        assert partner != i and labels[partner] == labels[i]
        torch.testing.assert_close(refs[i], join_lab(photos[partner, :1], photos[partner, 1:]))
    assert train_module.same_class_references(indices, 0.0, sampler, fetch, torch.Generator(), 0) is None
    half = [train_module.same_class_references(indices * 50, 0.5, sampler, fetch, torch.Generator().manual_seed(s), s)
            for s in range(4)]
    share = sum(float(u.float().mean()) for _, u in half) / 4
    assert 0.35 < share < 0.5  # half of the five that have a partner, none of the sixth

    # make_batch puts them where the mask says and leaves the TPS references elsewhere
    batch = {"gray_l": photos[:, :1] * 0, "ab": photos[:, 1:] * 0, "label": torch.tensor(labels)}
    _, _, plain, _ = train_module.make_batch(batch, torch.device("cpu"), torch.Generator().manual_seed(1), 0.1)
    _, _, mixed, _ = train_module.make_batch(batch, torch.device("cpu"), torch.Generator().manual_seed(1), 0.1,
                                             same_class=(refs, use))
    torch.testing.assert_close(mixed[use], refs[use])
    torch.testing.assert_close(mixed[~use], plain[~use])


@pytest.mark.parametrize("preload", [False, True])
def test_training_with_same_class_references(tmp_path, cache_home, preload):
    cfg = TrainConfig(**TINY, steps=2, same_class_share=0.5, preload=preload, out_dir=str(tmp_path))
    summary = train(cfg, progress=False)
    assert summary["steps"] == 2 and math.isfinite(summary["last_loss"])
    with pytest.raises(SSCNError, match="same_class_share"):
        TrainConfig(same_class_share=1.5).validate()


@pytest.mark.usefixtures("auto_and_forced_bf16")  # numbers that depend on the training precision
def test_training_with_the_contextual_loss(tmp_path, cache_home):
    """Same-class pairs add the contextual loss against their reference (read through the
    bundled pre-stage encoder), logged as its own term; without such pairs it has no meaning."""
    cfg = TrainConfig(**{**TINY, "log_every": 1}, steps=2, same_class_share=1.0, w_cx=1.0, out_dir=str(tmp_path))
    train(cfg, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["cx"] > 0 and math.isfinite(r["cx"]) for r in records)
    for r in records:  # every pair is same-class here, so the contextual term enters at its full weight
        weighted = 100 * r["coarse"] + 100 * r["fine"] + 0.1 * r["cls"] + r["hist"] + 10 * r["tv"] + r["cx"]
        assert r["loss"] == pytest.approx(weighted, rel=1e-4)
    with pytest.raises(SSCNError, match="w_cx"):
        TrainConfig(w_cx=1.0).validate()


@pytest.mark.usefixtures("auto_and_forced_bf16")  # numbers that depend on the training precision
def test_same_class_pairs_without_the_target_colour_losses(tmp_path, cache_home):
    """He et al. 2018's split (no colour loss on pairs with another photo as the reference), with
    Zhang et al. 2019's contextual loss: such pairs learn from the contextual loss alone; with every pair same-class, the colour terms are 0."""
    cfg = TrainConfig(**TINY, steps=2, same_class_share=1.0, w_cx=1.0, same_class_colour_losses=False,
                      out_dir=str(tmp_path))
    train(cfg, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert r["coarse"] == r["fine"] == r["hist"] == 0 and r["cx"] > 0 and r["cls"] > 0
    with pytest.raises(SSCNError, match="same_class_colour_losses"):
        TrainConfig(same_class_share=0.3, same_class_colour_losses=False).validate()
