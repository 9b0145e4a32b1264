"""Different-photo references: the same-class pair rule and file, its metrics, the benchmark, the
training helper and the gallery (sscn.evaluation.pairs, sscn.evaluation.metrics, sscn.apps.gallery)."""
from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.evaluation import baselines
from sscn.evaluation import command
from sscn.evaluation import options
from sscn.evaluation import protocol
from sscn import scores as scores_m
from sscn.evaluation import metrics as M
from sscn.evaluation import pairs as P
from sscn.training import same_class
from sscn.io.data import ImageFolder
from sscn.errors import SSCNError

SIDE = 48  # px of the test photos


def smooth_photo(seed: int, side: int = SIDE) -> np.ndarray:
    """A photo-like image: a random 4 x 4 field of colours, smoothly upsampled (uint8 H x W x 3)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.array(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))


@pytest.fixture
def folder(tmp_path):
    """Two classes of smooth photos, plus in class "a" an exact copy and a re-encoded copy.

    a/: p0..p3, p0_copy.png (same bytes as p0.png), p1_twin.png (p1's pixels, other PNG bytes)
    b/: q0..q2;  c/: one photo (no partner)
    """
    root = tmp_path / "photos"
    for cls, seeds in {"a": range(4), "b": range(10, 13), "c": range(20, 21)}.items():
        (root / cls).mkdir(parents=True)
        for i, seed in enumerate(seeds):
            Image.fromarray(smooth_photo(seed)).save(root / cls / f"{'pqr'[ord(cls) - 97]}{i}.png")
    (root / "a" / "p0_copy.png").write_bytes((root / "a" / "p0.png").read_bytes())
    Image.fromarray(smooth_photo(1)).save(root / "a" / "p1_twin.png", compress_level=0)
    return root


def pairs_of(root, size=32):
    with pytest.warns(UserWarning, match="no other photo of their class"):
        return P.same_class_pairs(ImageFolder(root, size=size), size=size)


# --------------------------------------------------------------------------- the pair rule


def test_pairs_stay_in_the_class_and_never_pair_a_photo_with_itself_or_its_copy(folder):
    pairs = pairs_of(folder)
    assert [p.target for p in pairs] == ["a/p0.png", "a/p0_copy.png", "a/p1.png", "a/p1_twin.png", "a/p2.png",
                                         "a/p3.png", "b/q0.png", "b/q1.png", "b/q2.png"]  # c/r0.png has no partner
    for p in pairs:
        assert p.target != p.reference
        assert p.target.split("/")[0] == p.reference.split("/")[0] == p.cls
        assert p.distance >= P.NEAR_DUPLICATE
    by_target = {p.target: p.reference for p in pairs}
    assert by_target["a/p0.png"] != "a/p0_copy.png" and by_target["a/p0_copy.png"] != "a/p0.png"
    assert by_target["a/p1.png"] != "a/p1_twin.png" and by_target["a/p1_twin.png"] != "a/p1.png"


def test_the_reference_is_the_nearest_eligible_photo(folder):
    source = ImageFolder(folder, size=32)
    photos = P.photo_set(source, size=32)
    with pytest.warns(UserWarning):
        pairs = P.same_class_pairs(photos)
    for p in pairs:
        i = p.target_index
        others = [j for j in range(len(photos.keys)) if photos.classes[j] == photos.classes[i] and j != i
                  and photos.digests[j] != photos.digests[i]]
        distances = {j: float((photos.descriptors[i] - photos.descriptors[j]).norm()) for j in others}
        eligible = {j: d for j, d in distances.items() if d >= P.NEAR_DUPLICATE}
        best = min(eligible.values())
        assert p.distance == pytest.approx(best, abs=1e-6)
        # the tie-break: among references at the best distance, the key that sorts first
        tied = sorted(photos.keys[j] for j, d in eligible.items() if abs(d - best) < 1e-6)
        assert p.reference == tied[0]


def test_ties_go_to_the_name_that_sorts_first(folder):
    # p0.png and p0_copy.png have the same pixels, so every other photo is equally far from both
    by_target = {p.target: p for p in pairs_of(folder)}
    for target in ("a/p2.png", "a/p3.png"):
        if by_target[target].reference in ("a/p0.png", "a/p0_copy.png"):
            assert by_target[target].reference == "a/p0.png"
    # make p0 the nearest photo to p2 for sure: p2 becomes p0 plus a faint gradient
    p0 = np.asarray(Image.open(folder / "a" / "p0.png")).astype(int)
    ramp = np.linspace(-30, 30, SIDE).astype(int)[None, :, None]
    Image.fromarray(np.clip(p0 + ramp, 0, 255).astype(np.uint8)).save(folder / "a" / "p2.png")
    pair = {p.target: p for p in pairs_of(folder)}["a/p2.png"]
    assert pair.reference == "a/p0.png" and pair.distance >= P.NEAR_DUPLICATE


def test_the_rule_is_deterministic_and_independent_of_listing_order(folder):
    first, again = pairs_of(folder), pairs_of(folder)
    assert first == again
    # the same photos as an in-memory list in another order, one class: the same choice within class a
    photos = [(f"{p.parent.name}_{p.name}", torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
               .float() / 255) for p in sorted((folder / "a").iterdir())]
    forward = P.same_class_pairs(photos, size=32)
    backward = P.same_class_pairs(photos[::-1], size=32)
    assert {(p.target, p.reference) for p in forward} == {(p.target, p.reference) for p in backward}


def test_pairs_file_round_trip_and_errors(folder, tmp_path):
    pairs = pairs_of(folder)
    path = P.write_pairs(pairs, tmp_path / "pairs.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "target,reference,class,distance"
    assert lines[1].startswith("a/p0.png,") and len(lines) == 1 + len(pairs)
    photos = P.photo_set(ImageFolder(folder, size=32), size=32)
    back = P.read_pairs(path, photos)
    assert [(p.target, p.reference, p.target_index, p.reference_index) for p in back] == \
        [(p.target, p.reference, p.target_index, p.reference_index) for p in pairs]
    assert [p.distance for p in back] == pytest.approx([p.distance for p in pairs], abs=1e-6)
    bad = tmp_path / "bad.csv"
    bad.write_text("target,reference,class,distance\na/p0.png,a/p0.png,a,0\n")
    with pytest.raises(SSCNError, match="paired with itself"):
        P.read_pairs(bad)
    bad.write_text("target,reference,class,distance\na/p0.png,a/nope.png,a,0.5\n")
    with pytest.raises(SSCNError, match="nope.png"):
        P.read_pairs(bad, photos)


def test_descriptor_sees_only_the_gray_image():
    from sscn.color import gray_l_to_rgb, rgb_to_gray_l

    rgb = torch.from_numpy(smooth_photo(3)).permute(2, 0, 1).double()[None] / 255
    gray = gray_l_to_rgb(rgb_to_gray_l(rgb))  # the same L, no colour
    d = P.gray_descriptor(rgb_to_gray_l(torch.cat((rgb, gray, rgb.flip(-1)))))
    assert d.shape == (3, 192)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3, dtype=torch.float64))
    assert float((d[0] - d[1]).norm()) < 1e-6  # a photo and its gray version: one descriptor
    assert float((d[0] - d[2]).norm()) > P.NEAR_DUPLICATE  # mirrored: another layout
    assert P.gray_descriptor(torch.zeros(1, 1, 32, 32)).abs().max() == 0  # flat: no layout, no gradients


# --------------------------------------------------------------------------- metrics


def test_colourfulness_of_a_gray_image_is_zero():
    values = torch.rand(1, 8, 8).expand(3, -1, -1)
    assert M.colourfulness(values).item() == 0.0


def test_colourfulness_by_hand():
    # two pixels: pure red and pure blue. rg = (255, 0); yb = (127.5, -255)
    rgb = torch.tensor([[255, 0], [0, 0], [0, 255]], dtype=torch.uint8).view(3, 1, 2)
    std_rg, std_yb = 127.5, 191.25  # population standard deviations
    mean_rg, mean_yb = 127.5, -63.75
    expected = math.sqrt(std_rg**2 + std_yb**2) + 0.3 * math.sqrt(mean_rg**2 + mean_yb**2)
    assert M.colourfulness(rgb).item() == pytest.approx(expected, abs=1e-9)


def test_colourfulness_matches_a_numpy_implementation():
    rgb = torch.rand(2, 3, 9, 7)
    got = M.colourfulness(rgb)
    for i in range(2):
        x = scores_m.to_uint8(rgb[i]).numpy().astype(np.float64)
        rg, yb = x[0] - x[1], 0.5 * (x[0] + x[1]) - x[2]
        expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        assert got[i].item() == pytest.approx(expected, abs=1e-9)


def _solid(rgb, height=4, width=4):
    return torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1).expand(3, height, width).contiguous()


def test_palette_similarity_of_an_image_with_itself_is_one():
    rgb = torch.from_numpy(smooth_photo(5)).permute(2, 0, 1).float() / 255
    assert M.palette_similarity(rgb, rgb).item() == pytest.approx(1.0, abs=1e-12)
    # the size does not matter, only the proportions
    assert M.palette_similarity(_solid((0.8, 0.1, 0.1), 4, 4), _solid((0.8, 0.1, 0.1), 9, 5)).item() == 1.0


def test_palette_similarity_by_hand():
    red, blue, gray = (0.9, 0.1, 0.1), (0.1, 0.2, 0.9), (0.5, 0.5, 0.5)
    half = torch.cat((_solid(red, 2, 4), _solid(gray, 2, 4)), dim=1)  # half red, half gray
    assert M.palette_similarity(half, _solid(red)).item() == pytest.approx(0.5)
    # 1/4 red, 3/4 blue against half red, half blue: min(1/4, 1/2) + min(3/4, 1/2) = 3/4
    quarter = torch.cat((_solid(red, 1, 4), _solid(blue, 3, 4)), dim=1)
    halves = torch.cat((_solid(red, 2, 4), _solid(blue, 2, 4)), dim=1)
    assert M.palette_similarity(quarter, halves).item() == pytest.approx(0.75)
    assert M.palette_similarity(_solid(red), _solid(blue)).item() == 0.0
    # a gray image has all its ab in the neutral bin
    histogram = M.ab_histogram(_solid(gray))
    from sscn.bins import default_bins

    neutral = int(((default_bins().centers) == 0).all(dim=1).nonzero())
    assert histogram[neutral].item() == 1.0 and histogram.sum().item() == pytest.approx(1.0)


def test_nearest_bin_lookup_equals_the_brute_force_nearest_centre():
    from sscn.bins import default_bins
    from sscn.color import rgb_to_lab

    centers = default_bins().centers
    values = torch.arange(0, 256, 5, dtype=torch.float64) / 255
    ab = rgb_to_lab(torch.cartesian_prod(values, values, values).T.reshape(3, -1, 1))[1:].flatten(1).T
    torch.testing.assert_close(M.nearest_bin(ab, centers), torch.cdist(ab, centers).argmin(dim=1))
    off_grid = centers + 0.5  # not a lattice: the brute-force path
    torch.testing.assert_close(M.nearest_bin(ab, off_grid), torch.cdist(ab, off_grid).argmin(dim=1))


# --------------------------------------------------------------------------- the benchmark and the CLI


def test_benchmark_scores_every_method_with_the_same_code(folder):
    methods = baselines.baseline_methods()
    with pytest.warns(UserWarning):
        rows, pairs = P.evaluate_same_class(methods, ImageFolder(folder, size=32), size=32, batch_size=4,
                                            progress=False)
    assert [r.method for r in rows] == list(methods) and all(r.n_images == len(pairs) == 9 for r in rows)
    by = {r.method: r for r in rows}
    assert by["gray"].colourfulness < 0.5  # 8-bit rounding of Lab gray leaves at most a trace of colour
    assert by["gray"].colourfulness_gap == pytest.approx(by["gray"].colourfulness_truth, abs=0.5)
    assert by["copy"].palette > by["mean_ab"].palette  # copying the reference's ab carries its palette
    assert len({r.palette_truth for r in rows}) == 1
    # the per-photo scores are what the metric functions give for the same result
    case = P.same_class_case(P.photo_set(ImageFolder(folder, size=32), size=32), pairs[:2])
    result = protocol.colorize(methods["luminance_match"], case.gray_l, case.ref_lab)
    np.testing.assert_allclose(by["luminance_match"].scores["palette"][:2],
                               M.palette_similarity(result, case.reference).numpy())
    np.testing.assert_allclose(by["luminance_match"].scores["psnr"][:2], scores_m.psnr(result, case.truth).numpy())


def test_cli_writes_pairs_and_scores_them_again(folder, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    common = ["--baselines-only", "--data", str(folder), "--size", "32", "--no-progress"]
    with pytest.warns(UserWarning):
        assert command.run_cli(parser.parse_args([*common, "--kinds", "same_class", "--out", str(tmp_path / "one")])) == 0
    printed = capsys.readouterr().out
    assert "| luminance_match | same class |" in printed and "palette similarity" in printed
    for name in ("results.csv", "results.md", "pairs.csv", "results_per_image.csv"):
        assert (tmp_path / "one" / name).exists()
    assert command.run_cli(parser.parse_args([*common, "--pairs", str(tmp_path / "one" / "pairs.csv"),
                                         "--out", str(tmp_path / "two")])) == 0
    for name in ("results.csv", "pairs.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()
    # mixed with a self-augmented kind, both tables are written side by side
    with pytest.warns(UserWarning):
        assert command.run_cli(parser.parse_args([*common, "--kinds", "tps", "same_class", "--out",
                                             str(tmp_path / "three")])) == 0
    assert {p.name for p in (tmp_path / "three").iterdir()} >= {"results.csv", "same_class.csv", "pairs.csv"}
    with open(tmp_path / "three" / "same_class.csv") as handle:
        assert [row["method"] for row in csv.DictReader(handle)] == list(baselines.BASELINES)
    with pytest.raises(SSCNError, match="--pairs"):
        command.run_cli(parser.parse_args([*common, "--kinds", "tps", "--pairs", str(tmp_path / "one" / "pairs.csv")]))


# --------------------------------------------------------------------------- training


def test_sampler_draws_another_photo_of_the_class_reproducibly():
    labels = [0] * 5 + [1] * 3 + [2]
    sampler = same_class.SameClassSampler(labels, seed=7)
    draws = {(i, e): sampler.draw(i, e) for i in range(8) for e in range(20)}
    assert all(d != i and labels[d] == labels[i] for (i, _), d in draws.items())
    assert draws == {(i, e): same_class.SameClassSampler(labels, seed=7).draw(i, e) for i in range(8) for e in range(20)}
    assert {draws[(0, e)] for e in range(20)} == {1, 2, 3, 4}  # every other member comes up
    other = same_class.SameClassSampler(labels, seed=8)
    assert any(other.draw(i, e) != draws[(i, e)] for i in range(8) for e in range(20))
    assert sampler.draw(8) is None  # the only photo of class 2


def test_same_class_references_dataset(folder):
    from sscn.color import rgb_to_lab_norm

    dataset = ImageFolder(folder, size=32, reference="tps")
    wrapped = same_class.SameClassReferences(dataset, seed=1)
    for index in range(len(dataset)):
        item = wrapped[index]
        if item["ref_index"] < 0:  # the lone photo of class c keeps its TPS reference
            torch.testing.assert_close(item["ref_lab"], dataset[index]["ref_lab"])
            continue
        assert item["ref_index"] != index and dataset.labels[item["ref_index"]] == dataset.labels[index]
        torch.testing.assert_close(item["ref_lab"], rgb_to_lab_norm(dataset[item["ref_index"]]["rgb"]))
    before = [wrapped[i]["ref_index"] for i in range(len(dataset))]
    wrapped.set_epoch(1)
    assert before != [wrapped[i]["ref_index"] for i in range(len(dataset))]


# --------------------------------------------------------------------------- the gallery


def test_gallery_figure_from_a_folder(folder, tmp_path):
    from sscn.apps import gallery
    from sscn.models.sscn import SSCN, SSCNConfig

    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, k=8, r=8)).eval()
    with pytest.warns(UserWarning):
        rows = gallery.dataset_rows(folder, size=32)
    assert [r["title"] for r in rows] == ["a", "b"]  # class c has no pair
    rows = gallery.colorize_rows(model, gallery.sample_rows(32, pairs=gallery.SAMPLE_PAIRS[:1]) + rows, size=32)
    assert all(r[k].shape == (3, 32, 32) for r in rows for k in ("gray", "reference", "coarse", "result"))
    assert not torch.equal(rows[1]["target"], rows[1]["reference"])
    path = gallery.save_figure(gallery.gallery_figure(rows), tmp_path / "gallery.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.width > image.height > 0


def test_gallery_command_refuses_to_replace_a_file(tmp_path, capsys):
    from sscn.apps.cli import main

    existing = tmp_path / "gallery.png"
    existing.write_bytes(b"not yours")
    assert main(["gallery", "-o", str(existing), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err and existing.read_bytes() == b"not yours"
    assert main(["gallery", "-o", str(tmp_path / "g.txt"), "--no-progress"]) == 2


def test_the_final_column_says_which_attention_made_it():
    from sscn.apps.viz import final_title
    from sscn.models import SSCN, SSCNConfig

    sparse = SSCN(SSCNConfig(width=0.125, num_classes=3, k=16, r=8))
    assert final_title(sparse) == "final (SSCN, sparse k=16, r=8)" and final_title(sparse, short=True) == "final (sparse)"
    sparse.config.dense = True
    assert final_title(sparse) == "final (SSCN, dense)" and final_title(sparse, short=True) == "final (dense)"
    assert final_title(None) == "final (SSCN)"
