"""The shipped checkpoints: the semantic SSCN and its pre-stage match their model card, and the
legacy model they replaced still loads, in its own layout, and scores as it did."""
import csv
import hashlib
import re
from pathlib import Path

import torch

from sscn.apps.cli import main
from sscn.models.checkpoint import BUNDLED, LEGACY_CHECKPOINT, load_model, read_checkpoint
from sscn.models.pretrained import BUNDLED_PRETRAIN, read_pretrained
from sscn.training.recipes import PRETRAIN, TRAIN

CARD = (Path(__file__).resolve().parent.parent / "sscn" / "checkpoints" / "MODEL_CARD.md").read_text()

# sha256 of sscn_imagenette128.pt as it shipped before the semantic run replaced it
LEGACY_SHA256 = "0d9a8d06a7343c404719a91290299aadf185f6ad418e9ce55c39c59d9d43ce94"
# what `sscn evaluate --size 64 --kinds tps crop --methods coarse sparse dense` gave for it on the
# 8 built-in sample photos, with the code of that time (float32; PSNR in dB)
LEGACY_SCORES = {("coarse", "tps"): 23.7891, ("sparse", "tps"): 30.3775, ("dense", "tps"): 30.7454,
                 ("coarse", "crop"): 23.1666, ("sparse", "crop"): 28.9227, ("dense", "crop"): 29.0331}


def test_the_legacy_checkpoint_is_the_file_that_shipped():
    assert hashlib.sha256(LEGACY_CHECKPOINT.read_bytes()).hexdigest() == LEGACY_SHA256


def test_the_legacy_checkpoint_loads_in_its_own_layout():
    model = load_model("legacy")  # its config predates encoder_norm / style_level / cam_level
    assert (model.config.encoder_norm, model.config.style_level, model.config.cam_level) == ("none", 5, 5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model.config.dense  # it colorized with dense attention by default


def test_the_legacy_checkpoint_scores_as_before(tmp_path, one_thread):
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", "legacy", "--size", "64", "--kinds", "tps", "crop",
                 "--methods", "coarse", "sparse", "dense", "--out", str(out), "--no-progress"]) == 0
    with open(out / "results.csv", newline="") as f:
        scores = {(row["method"], row["reference"]): float(row["psnr"]) for row in csv.DictReader(f)}
    assert scores.keys() == LEGACY_SCORES.keys()
    for key, before in LEGACY_SCORES.items():
        assert abs(scores[key] - before) < 0.01, (key, scores[key], before)


def test_the_bundled_sscn_is_the_semantic_recipe_of_its_model_card():
    ckpt = read_checkpoint(BUNDLED, kind="sscn")
    config, trained = ckpt["config"], ckpt["train_config"]
    assert (config["encoder_norm"], config["style_level"], config["cam_level"], config["width"]) == ("batch", 6, 5, 0.25)
    for name, value in TRAIN["bundled"].items():
        assert trained[name] == value, name
    assert ckpt["step"] == trained["steps"] == 3250 and trained["encoder_from"] == "RUN/pre/last.pt"
    assert "optimizer" not in ckpt and all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    # the card's "inference default" row names the mode the stored config uses
    row = re.search(r"\| inference default \| \*\*(\w+)\*\*", CARD).group(1)
    assert row == ("dense" if config["dense"] else "sparse")
    assert f"`dense: {str(config['dense']).lower()}`" in CARD
    model = load_model(None)
    assert model.config.dense == config["dense"] and model.config.k == 64 and model.config.r == 64


def test_the_bundled_pre_stage_is_the_semantic_recipe_of_its_model_card():
    ckpt = read_pretrained(BUNDLED_PRETRAIN)
    for name, value in PRETRAIN["bundled"].items():
        assert ckpt["config"][name] == value, name
    assert ckpt["step"] == 5200  # 40 epochs of 130 batches of 64 (8,353 photos, the last partial batch dropped)
    last = [entry for entry in ckpt["history"] if "val_gray_top1_l5" in entry][-1]
    assert last["epoch"] == 40.0
    assert f"{100 * last['val_gray_top1_l5']:.1f} %" in CARD  # the card quotes the final gray top-1
