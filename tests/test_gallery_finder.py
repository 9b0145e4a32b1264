"""``sscn gallery --reference-from FOLDER``: beside each fixed pair, the same target with the
reference the finder (sscn.apps.finder) picks from FOLDER; a bad FOLDER is one line before any
slow work, and the finder never hands a target its own photo back.

A tiny random network (width 0.125) colorizes at the gallery's own 128 px (the CLI has no
--size); the rows are read off the figure's input by wrapping gallery.gallery_figure.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.apps import gallery
from sscn.io.data import sample_photos
from sscn.models import SSCNConfig

from cli_support import assert_one_line_error, run_cli, scene, tiny_model_file

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = SSCNConfig(width=0.125, num_classes=2, k=4, r=4)


def as_array(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def targets() -> list[str]:
    """The sample targets this scikit-image has (the gallery leaves out a pair it lacks)."""
    return [row["key"] for row in gallery.sample_rows(32)]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model"), TINY)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def shown(monkeypatch) -> list:
    """The rows of the last figure the gallery drew."""
    rows = []
    real = gallery.gallery_figure

    def spy(given, *args, **kwargs):
        rows[:] = given
        return real(given, *args, **kwargs)

    monkeypatch.setattr(gallery, "gallery_figure", spy)
    return rows


def others(folder: Path, seeds=range(1, 5)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        Image.fromarray(scene(seed)).save(folder / f"other{seed}.png")
    return folder


def test_each_sample_target_gets_the_finders_reference_beside_its_pair(tmp_path, capsys, model_file, shown):
    folder = others(tmp_path / "photos")
    for name, rgb in sample_photos(size=96):  # near copies: shifted by 2 px, re-encoded as JPEG
        Image.fromarray(np.roll(as_array(rgb), 2, axis=1)).save(folder / f"near_{name}.jpg", quality=85)
    out = tmp_path / "gallery.png"
    code, stdout, err = run_cli(capsys, ["gallery", "--reference-from", folder, "--checkpoint", model_file,
                                         "-o", out, "--no-progress"])
    assert code == 0, err
    names = targets()
    assert names and len(shown) == 2 * len(names) and out.is_file()
    for i, name in enumerate(names):
        fixed, found = shown[2 * i], shown[2 * i + 1]
        assert fixed["title"].startswith(f"{name} <- ") and "match" not in fixed
        assert found["title"].startswith(f"{name}: finder (score ") and torch.equal(found["target"], fixed["target"])
        assert found["reference_path"] == folder / f"near_{name}.jpg", found["match"].describe()
        assert found["title"] == f"{name}: finder (score {found['match'].score:.3f})"
        assert found["reference"].shape == fixed["target"].shape
        assert f"{name}: the finder chose {folder / f'near_{name}.jpg'} (score " in stdout
    assert f"{2 * len(names)} pairs ({len(names)} with the finder's reference)" in stdout


def data_folder(root: Path) -> Path:
    """Two classes of three distinct scenes each."""
    for cls, seeds in (("a", (10, 11, 12)), ("b", (20, 21, 22))):
        (root / cls).mkdir(parents=True)
        for seed in seeds:
            Image.fromarray(scene(seed)).save(root / cls / f"{seed}.png")
    return root


@pytest.mark.parametrize("case", ["missing", "a file", "no image", "missing, with --data"])
def test_a_bad_folder_is_one_line_before_any_slow_work(tmp_path, capsys, model_file, monkeypatch, case):
    import sscn.apps.finder
    import sscn.io.photos
    import sscn.models.checkpoint

    def slow(*args, **kwargs):
        raise AssertionError("slow work before the --reference-from folder was checked")

    for module, name in ((sscn.models.checkpoint, "load_model"), (sscn.io.photos, "open_photos"),
                         (sscn.apps.finder, "pretrained_classifier")):
        monkeypatch.setattr(module, name, slow)
    folder = tmp_path / "missing"
    if case == "a file":
        folder = tmp_path / "photo.png"
        Image.fromarray(scene(1)).save(folder)
    elif case == "no image":
        folder = tmp_path / "notes"
        folder.mkdir()
        (folder / "readme.txt").write_text("no photos here")
    out = tmp_path / "gallery.png"
    argv = ["gallery", "--reference-from", f"{folder}/", "--checkpoint", model_file, "-o", out, "--no-progress"]
    if case.endswith("--data"):
        argv += ["--data", data_folder(tmp_path / "data")]
    expected = "holds no image file" if case == "no image" else "is not a folder; pass a folder of colour photos"
    line = assert_one_line_error(capsys, argv, f"--reference-from .*{expected}")
    assert "Traceback" not in line and not out.exists()


def test_a_folder_of_gray_photos_is_one_line_and_no_figure(tmp_path, capsys, model_file, monkeypatch):
    import sscn.models.checkpoint

    monkeypatch.setattr(sscn.models.checkpoint, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    folder = tmp_path / "gray"
    folder.mkdir()
    Image.fromarray(scene(1)).convert("L").save(folder / "gray.png")
    out = tmp_path / "gallery.png"
    assert_one_line_error(capsys, ["gallery", "--reference-from", folder, "--checkpoint", model_file, "-o", out,
                                   "--no-progress"], "no usable colour photo in .*gray")
    assert not out.exists()


def test_the_finder_never_gives_a_target_its_own_photo(tmp_path, capsys, model_file, shown):
    # --data: the reference folder holds a byte-identical copy of every photo of the data
    data = data_folder(tmp_path / "data")
    copies = others(tmp_path / "copies", seeds=(1,))
    shutil.copytree(data, copies / "same_bytes")
    code, stdout, err = run_cli(capsys, ["gallery", "--data", data, "--reference-from", copies, "--checkpoint",
                                         model_file, "-o", tmp_path / "g1.png", "--no-progress"])
    assert code == 0, err
    found = [row for row in shown if row is not None and "match" in row]
    assert [row["title"].split(":")[0] for row in found] == ["a", "b"]
    for row in found:
        assert row["reference_path"].read_bytes() != row["target_path"].read_bytes(), row["match"].describe()
        assert not torch.equal(row["reference"], row["target"])
    places = {i for i, row in enumerate(shown) if row is not None and "match" in row}
    assert places == {i + 1 for i, row in enumerate(shown)  # each right after its class's fixed pair
                      if row is not None and row.get("target_path") is not None and "match" not in row}
    assert all(torch.equal(shown[i]["target"], shown[i - 1]["target"]) for i in places)

    # --data's own folder as the reference folder: the target file itself is there
    code, _, err = run_cli(capsys, ["gallery", "--data", data, "--reference-from", data, "--checkpoint", model_file,
                                    "-o", tmp_path / "g2.png", "--no-progress"])
    assert code == 0, err
    for row in (row for row in shown if row is not None and "match" in row):
        assert row["reference_path"] != row["target_path"]
        assert row["reference_path"].read_bytes() != row["target_path"].read_bytes()

    # the sample targets: their own pixels, as the 128 px picture and as the full photo, under other names
    names = targets()
    samples = others(tmp_path / "samples", seeds=(1, 2))
    full = dict(sample_photos())
    for row in gallery.sample_rows():
        Image.fromarray(as_array(row["target"])).save(samples / f"{row['key']}_128.png")
        Image.fromarray(as_array(full[row["key"]])).save(samples / f"{row['key']}_full.png")
        Image.fromarray(as_array(row["target"])).save(samples / f"{row['key']}.png")  # the sample's own name
    code, _, err = run_cli(capsys, ["gallery", "--reference-from", samples, "--checkpoint", model_file,
                                    "-o", tmp_path / "g3.png", "--no-progress"])
    assert code == 0, err
    found = [row for row in shown if "match" in row]
    assert [row["key"] for row in found] == names
    for row in found:
        name = row["key"]
        assert row["reference_path"].name not in (f"{name}_128.png", f"{name}_full.png", f"{name}.png"), \
            row["match"].describe()
        assert not torch.equal(gallery_pixels(row["reference"]), gallery_pixels(row["target"]))


def gallery_pixels(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)
