"""The reference finder (sscn.apps.finder): near copies first, never the target itself, one-line
errors, and a per-photo feature cache that a changed photo invalidates."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import sscn.apps.finder
from sscn.apps.finder import ReferenceFinder, find_reference
from sscn.errors import SSCNError

from cli_support import scene

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    for seed in range(1, 7):
        Image.fromarray(scene(seed)).save(photos / ("more" if seed > 4 else ".") / f"other{seed}.png")
    target = tmp_path / "target.png"
    Image.fromarray(scene(0)).save(target)
    # a near copy: shifted by 3 px, rescaled and re-encoded as JPEG
    near = Image.fromarray(np.roll(scene(0), 3, axis=1)).resize((90, 90))
    near.save(photos / "near_copy.jpg", quality=80)
    return photos, target


def test_a_near_copy_ranks_above_unrelated_photos(folder):
    photos, target = folder
    matches = find_reference(target, photos, top=7, progress=False)
    assert matches[0].path.name == "near_copy.jpg", [m.describe() for m in matches]
    assert len(matches) == 7 and [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert all(-1.0 <= m.meaning <= 1.0 and -1.0 <= m.luminance <= 1.0 for m in matches)


def test_the_target_and_its_byte_identical_copy_are_never_chosen(folder):
    photos, target = folder
    shutil.copy(target, photos / "target.png")
    shutil.copy(target, photos / "more" / "copy_under_another_name.png")
    finder = ReferenceFinder(photos, progress=False)
    for query in (photos / "target.png", target):
        chosen = [m.path.name for m in finder.rank(query, top=10)]
        assert "target.png" not in chosen and "copy_under_another_name.png" not in chosen
        assert chosen[0] == "near_copy.jpg"


def test_a_folder_with_no_usable_photo_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photos = tmp_path / "gray_only"
    photos.mkdir()
    Image.fromarray(scene(1)).convert("L").save(photos / "gray.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    with pytest.raises(SSCNError, match="no usable colour photo .*2 of them gray or unreadable"):
        ReferenceFinder(photos, progress=False)
    Image.fromarray(scene(2)).save(photos / "colour.png")
    with pytest.warns(UserWarning, match="2 of 3 photos .* left out"):
        assert [p.name for p in ReferenceFinder(photos, progress=False).paths] == ["colour.png"]
    with pytest.raises(SSCNError, match="not a folder"):
        ReferenceFinder(tmp_path / "missing", progress=False)


def test_the_cache_reads_no_photo_again_until_one_changes(folder, monkeypatch):
    photos, target = folder
    listing = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    first = ReferenceFinder(photos, progress=False)
    assert first.reads == 7 and first.cache_path.is_file()
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == listing  # nothing written into the folder

    reads = []
    real = sscn.apps.finder.load_image
    monkeypatch.setattr(sscn.apps.finder, "load_image", lambda path: reads.append(path) or real(path))
    second = ReferenceFinder(photos, progress=False)
    assert reads == [] and second.reads == 0
    assert torch.equal(second.meaning, first.meaning) and second.paths == first.paths

    changed = photos / "more" / "other5.png"
    Image.fromarray(scene(0)).save(changed, compress_level=1)  # the target's pixels, other bytes
    third = ReferenceFinder(photos, progress=False)
    assert reads == [changed] and third.reads == 1
    row = third.paths.index(changed)
    assert not torch.equal(third.meaning[row], first.meaning[first.paths.index(changed)])
    assert third.rank(target, top=1)[0].path == changed  # the new content is what is searched


def test_a_damaged_cache_is_rebuilt(folder):
    photos, target = folder
    finder = ReferenceFinder(photos, progress=False)
    finder.cache_path.write_bytes(b"not a cache")
    again = ReferenceFinder(photos, progress=False)
    assert again.reads == 7 and again.rank(target)[0].path.name == "near_copy.jpg"


def test_sscn_colorize_chooses_its_reference_from_a_folder(folder, tmp_path, capsys):
    from sscn.apps.cli import main

    photos, target = folder
    out = tmp_path / "out.png"
    assert main(["colorize", str(target), "--reference-from", str(photos), "--show-top", "3", "--size", "64",
                 "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("reference: ") and "near_copy.jpg (score " in lines[0]
    assert [line.split(".")[0] for line in lines[1:3]] == ["  then 2", "  then 3"] and out.is_file()


@pytest.mark.parametrize("argv, message", [
    ([], "pass a REFERENCE photo or --reference-from FOLDER"),
    (["REF", "--reference-from", "FOLDER"], "pass a REFERENCE photo or --reference-from FOLDER"),
    (["--reference-from", "FOLDER", "--show-top", "0"], "--show-top must be at least 1"),
    (["--reference-from", "EMPTY"], "no usable colour photo"),
])
def test_reference_mistakes_are_one_line(folder, tmp_path, capsys, argv, message):
    from sscn.apps.cli import main

    photos, target = folder
    (tmp_path / "empty").mkdir()
    names = {"REF": str(photos / "other1.png"), "FOLDER": str(photos), "EMPTY": str(tmp_path / "empty")}
    code = main(["colorize", str(target), *[names.get(a, a) for a in argv], "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_the_python_api_chooses_a_reference_too(folder):
    from sscn.apps.colorize import colorize
    from sscn.io.data import load_image
    from sscn.models import SSCN, SSCNConfig

    photos, target = folder
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, num_classes=10, k=4, r=4)).eval()
    result = colorize(model, load_image(target), None, size=64, reference_from=photos)
    assert result.reference.path.name == "near_copy.jpg" and result.rgb.shape == (3, 96, 96)
    with pytest.raises(SSCNError, match="not both"):
        colorize(model, load_image(target), load_image(target), size=64, reference_from=photos)


def test_the_benchmark_pairs_of_the_finder_pass_over_the_target_and_its_copies(tmp_path, monkeypatch):
    """tools/measure_finder.py --pairs-out: each photo's best other photo, never itself, a
    byte-identical copy or a near duplicate, in the CSV that sscn evaluate --pairs reads."""
    import importlib.util
    from pathlib import Path

    from sscn.evaluation.pairs import read_pairs

    spec = importlib.util.spec_from_file_location(
        "measure_finder", Path(__file__).resolve().parent.parent / "tools" / "measure_finder.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    val = tmp_path / "val"
    for cls, seeds in (("a", (0, 1)), ("b", (2, 3))):
        (val / cls).mkdir(parents=True)
        for seed in seeds:
            Image.fromarray(scene(seed)).save(val / cls / f"{seed}.png")
    shutil.copy(val / "a" / "0.png", val / "b" / "copy_of_0.png")  # byte-identical, another class
    Image.fromarray(scene(2)).save(val / "a" / "near_2.jpg", quality=90)  # b/2 re-encoded: a near duplicate
    monkeypatch.setattr(tool, "NEAR_DUPLICATE", 0.0)
    pairs, _ = tool.finder_pairs(val, "bundled", progress=False)
    assert dict((p.target, p.reference) for p in pairs)["b/2.png"] == "a/near_2.jpg"  # without the rule: the copy
    monkeypatch.setattr(tool, "NEAR_DUPLICATE", 0.3)
    pairs, share = tool.finder_pairs(val, "bundled", progress=False)
    chosen = {p.target: p.reference for p in pairs}
    assert len(pairs) == 6 and 0.0 <= share <= 1.0
    assert chosen["a/0.png"] != "b/copy_of_0.png" and chosen["b/copy_of_0.png"] != "a/0.png"
    assert chosen["b/2.png"] != "a/near_2.jpg" and all(p.target != p.reference for p in pairs)
    tool.write_pairs(pairs, tmp_path / "pairs.csv")
    assert [(p.target, p.reference) for p in read_pairs(tmp_path / "pairs.csv")] == \
        [(p.target, p.reference) for p in pairs]
