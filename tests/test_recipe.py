"""The semantic recipe end to end at toy size: the CPU command, the GPU script and the photo packer."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sscn.models.checkpoint import load_model, read_checkpoint
from sscn.models.pretrained import pretrained_classifier, read_pretrained
from sscn.training.recipes import PRETRAIN, TRAIN, pretrain_config, train_config
from test_pretrain import _striped_folder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import semantic_recipe  # noqa: E402

BUNDLE = {"pretrain.pt", "pretrain_metrics.jsonl", "pretrain_summary.json", "sscn.pt", "sscn_metrics.jsonl",
          "sscn_summary.json", "recipe.json"}


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    return _striped_folder(tmp_path_factory.mktemp("stripes"), per_class=4)


def test_recipes_are_valid_configs():
    for name in PRETRAIN:
        pretrain_config(name, data_dir="x").validate()
    for name in TRAIN:
        cfg = train_config(name, encoder_from="x")
        cfg.validate()
        assert cfg.steps * cfg.batch_size == 104_000  # the legacy model's budget
        assert cfg.freeze_encoder == (name != "legacy")  # the legacy network predates the pre-stage
    assert TRAIN["bundled"] == TRAIN["semantic"] and PRETRAIN["bundled"] == PRETRAIN["semantic"]  # what ships


def test_the_cpu_recipe_runs_end_to_end_and_resumes(stripes, tmp_path, one_thread):
    out, bundle = tmp_path / "run", tmp_path / "bundle"
    argv = ["--data", str(stripes), "--out", str(out), "--tiny", "--quiet", "--device", "cpu", "--precision", "float32",
            "--bundle", str(bundle), "--sparse"]
    assert semantic_recipe.main(argv) == 0
    assert {p.name for p in bundle.iterdir()} == BUNDLE
    # the shipped SSCN: float16 weights, no training state, loads as a model with the recipe's settings
    shipped = read_checkpoint(bundle / "sscn.pt")
    assert "optimizer" not in shipped and all(v.dtype == torch.float16 for v in shipped["model"].values()
                                              if v.is_floating_point())
    model = load_model(bundle / "sscn.pt")
    recipe = json.loads((bundle / "recipe.json").read_text())
    assert model.config.width == recipe["train"]["width"] and model.config.dense is False
    assert shipped["train_config"]["freeze_encoder"] and shipped["train_config"]["encoder_from"] == "RUN/pre/last.pt"
    # what ships names no folder of the machine that trained it: the run is RUN, the data DATA
    assert shipped["train_config"]["data_dir"] == f"DATA/{stripes.name}"
    assert read_pretrained(bundle / "pretrain.pt")["config"]["out_dir"] == "RUN/pre"
    for name in BUNDLE - {"pretrain.pt", "sscn.pt"}:
        assert str(tmp_path) not in (bundle / name).read_text() and str(stripes) not in (bundle / name).read_text(), name
    # its encoder is the pre-stage's, unchanged by training (frozen)
    pre_model, classes = pretrained_classifier(bundle / "pretrain.pt")
    assert classes == shipped["classes"] == ["class0", "class1", "class2"]
    assert torch.equal(model.encoder.features[0].weight, pre_model.encoder.features[0].weight)
    assert read_pretrained(bundle / "pretrain.pt")["kind"] == "sscn-pretrain"
    # the same command again resumes both stages, which are done: nothing more is trained
    before = read_checkpoint(out / "sscn" / "last.pt")["step"]
    assert semantic_recipe.main(argv) == 0
    assert read_checkpoint(out / "sscn" / "last.pt")["step"] == before == recipe["train"]["steps"]


def test_the_gpu_script_runs_at_toy_size_on_the_cpu(stripes, tmp_path):
    """The command a GPU session runs first: same path, DEVICE=cpu and --tiny here."""
    env = {**os.environ, "DEVICE": "cpu", "OMP_NUM_THREADS": "1", "RUN_DIR": str(tmp_path / "run")}
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_recipe.sh"), str(stripes), str(tmp_path / "out"), "--tiny",
                           "--precision", "float32"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in (tmp_path / "out").iterdir()} == BUNDLE | {"log.txt"}
    assert "bundled into" in (tmp_path / "out" / "log.txt").read_text()


def test_packed_photos_keep_names_and_shrink(stripes, tmp_path):
    from pack_photos import pack

    count = pack(stripes, tmp_path / "packed", size=24, quality=80, val_limit=4, progress=False)
    val = sorted((tmp_path / "packed" / "val").rglob("*.JPEG"))
    train = sorted((tmp_path / "packed" / "train").rglob("*.JPEG"))
    assert count == len(train) + len(val) == 12 + 4
    assert {p.parent.name for p in train} == {"class0", "class1", "class2"}
    from PIL import Image

    with Image.open(train[0]) as image:
        assert min(image.size) == 24
    with pytest.raises(SystemExit, match="not empty"):
        pack(stripes, tmp_path / "packed", size=24, quality=80, val_limit=4, progress=False)
