"""The evaluation: metrics against skimage, the seeded protocol, baselines, network methods, CLI."""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sscn.evaluation import baselines
from sscn.evaluation import cases
from sscn.evaluation import command
from sscn.evaluation import options
from sscn.evaluation import protocol
from sscn.evaluation import sweep as sweep_m
from sscn.evaluation import tables
from sscn.io import photos as photos_m
from sscn import scores as scores_m
from sscn.color import rgb_to_lab_norm
from sscn.errors import SSCNError


def _random_pair(seed: int, shape=(3, 37, 50), noise=0.08):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g)
    b = (a + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return a, b


def _to_numpy8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("seed", range(4))
def test_psnr_and_ssim_match_skimage(seed):
    a, b = _random_pair(seed, noise=0.02 + 0.05 * seed)
    if seed == 3:  # a bright, flat image: the case where float cancellation would show
        a, b = 0.9 + 0.1 * a, (0.9 + 0.1 * a + 0.01 * (b - a)).clamp(0, 1)
    a8, b8 = _to_numpy8(a), _to_numpy8(b)
    expected_psnr = peak_signal_noise_ratio(a8, b8, data_range=255)
    expected_ssim = structural_similarity(
        a8, b8, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert abs(scores_m.psnr(a, b).item() - expected_psnr) < 1e-3
    assert abs(scores_m.ssim(a, b).item() - expected_ssim) < 1e-4


def test_metrics_are_batched_and_accept_uint8():
    pairs = [_random_pair(s, shape=(3, 32, 32)) for s in range(3)]
    a, b = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    for metric in (scores_m.psnr, scores_m.ssim, scores_m.psnr_ab):
        batched = metric(a, b)
        assert batched.shape == (3,)
        singles = torch.stack([metric(x, y) for x, y in zip(a, b)])
        torch.testing.assert_close(batched, singles)
        torch.testing.assert_close(metric(scores_m.to_uint8(a), scores_m.to_uint8(b)), batched)


def test_psnr_ab_uses_a_220_unit_range():
    a = torch.full((3, 16, 16), 0.5)
    b = a.clone()
    b[0] = 0.6  # a little red: L and ab both change
    lab_a, lab_b = (rgb_to_lab_norm(scores_m.to_uint8(x).double() / 255) for x in (a, b))
    mse = ((lab_a[1:] - lab_b[1:]) ** 2).mean().item()  # normalised ab: data range 2
    assert scores_m.psnr_ab(a, b).item() == pytest.approx(10 * math.log10(4 / mse), abs=1e-6)


def test_identical_images_score_inf_and_one():
    a, _ = _random_pair(0)
    assert scores_m.psnr(a, a).item() == math.inf
    assert scores_m.psnr_ab(a, a).item() == math.inf
    assert scores_m.ssim(a, a).item() == 1.0
    assert protocol.summarize([30.0, math.inf, 20.0]) == (math.inf, 1)


def test_identical_result_is_reported_as_inf():
    # a gray photo: the gray baseline reproduces it exactly
    photo = torch.linspace(0, 1, 64).view(1, 1, 64).expand(3, 64, 64).contiguous()
    rows = protocol.evaluate({"gray": baselines.gray_method}, [photo], kinds=("tps",), size=64, progress=False)
    row = rows[0]
    assert (row.psnr, row.n_inf, row.ssim) == (math.inf, 1, 1.0)
    assert "| gray | TPS | inf | 1.0000 | inf | 1 | 1 | 64 |" in tables.results_table_markdown(rows)


def test_metric_errors_name_the_problem():
    with pytest.raises(SSCNError, match="shape"):
        scores_m.psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 9))
    with pytest.raises(SSCNError, match="at least 11 px"):
        scores_m.ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


# --------------------------------------------------------------------------- baselines


def test_baselines_shapes_and_meaning():
    ref_lab = rgb_to_lab_norm(torch.rand(2, 3, 16, 16))
    gray_l = ref_lab[:, :1]
    assert baselines.gray_method(gray_l, ref_lab).abs().max() == 0
    torch.testing.assert_close(baselines.copy_method(gray_l, ref_lab), ref_lab[:, 1:])
    mean = baselines.mean_ab_method(gray_l, ref_lab)
    torch.testing.assert_close(mean[:, :, 3, 5], ref_lab[:, 1:].mean(dim=(2, 3)))
    assert baselines.luminance_match_method(gray_l, ref_lab).shape == (2, 2, 16, 16)


def test_luminance_match_recovers_colour_that_follows_lightness():
    # dark blue on the left, light yellow on the right: ab is a function of L
    rgb = torch.zeros(1, 3, 32, 32)
    rgb[:, :, :, :16] = torch.tensor([0.1, 0.1, 0.6]).view(1, 3, 1, 1)
    rgb[:, :, :, 16:] = torch.tensor([0.9, 0.9, 0.2]).view(1, 3, 1, 1)
    lab = rgb_to_lab_norm(rgb)
    ab = baselines.luminance_match_method(lab[:, :1], lab.flip(-1))  # the reference mirrored
    assert (ab - lab[:, 1:]).abs().max() < 0.02
    assert (baselines.mean_ab_method(lab[:, :1], lab) - lab[:, 1:]).abs().max() > 0.3


# --------------------------------------------------------------------------- the protocol


def test_same_seed_same_references_and_numbers():
    photos = [(f"p{i}", _random_pair(i, shape=(3, 32, 32))[0]) for i in range(3)]
    batch = list(photos_m.Photos(photos, size=32))
    for kind in ("tps", "rotation", "crop"):
        first, again, other = (cases.make_cases(batch, kind, s) for s in (0, 0, 1))
        assert torch.equal(first.reference, again.reference)
        assert not torch.equal(first.reference, other.reference)
        assert first.seeds == [cases.reference_seed(0, i) for i in range(3)] == [0, 1, 2]
    methods = baselines.baseline_methods(["copy", "mean_ab"])
    one = protocol.evaluate(methods, photos, size=32, batch_size=2, progress=False)
    two = protocol.evaluate(methods, photos, size=32, batch_size=3, progress=False)
    assert [r.as_dict() for r in one] == [r.as_dict() for r in two]
    # a photo keeps its references whichever other photos are evaluated with it
    last = protocol.evaluate(methods, photos, kinds=("tps",), size=32, limit=2, progress=False)
    assert last[0].indices == [0, 2]
    assert list(last[0].scores["psnr"]) == [one[0].scores["psnr"][0], one[0].scores["psnr"][2]]


def test_saved_pairs_can_be_scored_by_another_tool(tmp_path):
    from PIL import Image

    photos = [_random_pair(i, shape=(3, 32, 32))[0] for i in range(2)]
    rows = protocol.evaluate({"gray": baselines.gray_method}, photos, kinds=("crop",), size=32, save_dir=tmp_path / "pairs",
                       progress=False)
    for folder in ("target_gray", "ground_truth", "reference_crop"):
        assert sorted(p.name for p in (tmp_path / "pairs" / folder).iterdir()) == ["00000.png", "00001.png"]
    assert (tmp_path / "pairs" / "saved_pairs.csv").read_text().splitlines()[1] == "0,00000,crop,0"
    # an "external tool" that returns the gray target scores what the gray baseline scores
    (tmp_path / "out" / "crop").mkdir(parents=True)
    for name in ("00000.png", "00001.png"):
        Image.open(tmp_path / "pairs" / "target_gray" / name).save(tmp_path / "out" / "crop" / name)
    external = protocol.score_saved(tmp_path / "pairs", tmp_path / "out")
    assert external[0].psnr == pytest.approx(rows[0].psnr, abs=1e-9)
    assert external[0].ssim == pytest.approx(rows[0].ssim, abs=1e-9)


def test_results_are_written(tmp_path):
    photos = [_random_pair(0, shape=(3, 32, 32))[0]]
    rows = protocol.evaluate(baselines.baseline_methods(["gray"]), photos, kinds=("tps", "rotation"), size=32, progress=False)
    paths = tables.write_results(rows, tmp_path)
    assert paths["csv"].read_text().splitlines()[0] == ",".join(protocol.COLUMNS)
    assert len(paths["per_image"].read_text().splitlines()) == 1 + 2
    assert paths["markdown"].read_text().count("\n") == 2 + 2
    best = rows[0].ranked()
    assert best[0][0] == 0


# The baselines on the 8 built-in sample photos at 64 px, seed 0: (PSNR dB, SSIM, PSNR ab dB).
# Produced by
#   python -c "from sscn.evaluation import baselines, protocol, tables; from sscn.io import data; print(tables.results_table_markdown(
#       protocol.evaluate(baselines.baseline_methods(), data.sample_photos(size=64), size=64, progress=False)))"
SAMPLE_BASELINES = {
    ("gray", "tps"): (20.80, 0.8757, 23.04),
    ("gray", "rotation"): (20.80, 0.8757, 23.04),
    ("gray", "crop"): (20.80, 0.8757, 23.04),
    ("copy", "tps"): (29.12, 0.9265, 31.31),
    ("copy", "rotation"): (28.22, 0.8928, 30.46),
    ("copy", "crop"): (27.24, 0.9061, 29.50),
    ("mean_ab", "tps"): (25.50, 0.9163, 27.81),
    ("mean_ab", "rotation"): (25.51, 0.9165, 27.81),
    ("mean_ab", "crop"): (25.55, 0.9178, 27.90),
    ("luminance_match", "tps"): (29.63, 0.9367, 31.85),
    ("luminance_match", "rotation"): (29.62, 0.9368, 31.82),
    ("luminance_match", "crop"): (28.48, 0.9314, 30.80),
}


def test_baselines_on_sample_photos_give_fixed_values():
    from sscn.io.data import sample_photos

    rows = protocol.evaluate(baselines.baseline_methods(), sample_photos(size=64), size=64, progress=False)
    assert [(r.method, r.reference) for r in rows] == list(SAMPLE_BASELINES)
    for row in rows:
        psnr, ssim, psnr_ab = SAMPLE_BASELINES[(row.method, row.reference)]
        assert row.n_images == 8 and row.n_inf == 0
        # two decimals for dB, four for SSIM, give or take one unit in the last place
        assert row.psnr == pytest.approx(psnr, abs=0.01), row
        assert row.ssim == pytest.approx(ssim, abs=1e-4), row
        assert row.psnr_ab == pytest.approx(psnr_ab, abs=0.01), row


# --------------------------------------------------------------------------- network methods and CLI


def test_network_methods_run_on_a_tiny_model():
    from sscn.io.data import sample_photos
    from sscn.models.sscn import SSCN, SSCNConfig

    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, k=8, r=8)).eval()
    methods = baselines.network_methods(model)
    assert list(methods) == ["coarse", "sparse", "dense"]
    photos = sample_photos(size=64, names=("astronaut", "chelsea"))
    case = cases.make_cases(list(photos_m.Photos(photos, size=64)), "tps", 0)
    for method in methods.values():
        ab = method(case.gray_l, case.ref_lab)
        assert ab.shape == (2, 2, 64, 64) and torch.isfinite(ab).all()
    sweep = sweep_m.sweep_kr(model, photos, ks=[0, 4], rs=[0, 4], size=64, limit=1, progress=False)
    assert [(s["k"], s["r"], s["tokens"]) for s in sweep] == [(0, 4, 4), (4, 0, 4), (4, 4, 8), (None, None, 256)]
    assert all(math.isfinite(s["psnr"]) for s in sweep)


def test_cli_baselines_only(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    args = parser.parse_args(["--baselines-only", "--size", "64", "--limit", "2", "--kinds", "tps",
                              "--out", str(tmp_path), "--no-progress"])
    assert command.run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "| copy | TPS |" in printed and "| 2 |" in printed
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.md").exists()
    with pytest.raises(SSCNError, match="--kinds"):
        command.run_cli(parser.parse_args(["--baselines-only", "--kinds", "flip"]))
    with pytest.raises(SSCNError, match="--data"):
        command.run_cli(parser.parse_args(["--baselines-only", "--data", str(tmp_path / "missing")]))


def test_cli_with_a_checkpoint_and_sweep(tmp_path, capsys):
    from sscn.models.sscn import SSCN, SSCNConfig

    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, k=8, r=8))
    torch.save({"model": model.state_dict(), "config": model.config.to_dict()}, tmp_path / "tiny.pt")
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    args = parser.parse_args(["--checkpoint", str(tmp_path / "tiny.pt"), "--size", "64", "--limit", "1",
                              "--kinds", "crop",
                              "--sweep", "--sweep-k", "4", "--sweep-r", "4", "--out", str(tmp_path / "out"),
                              "--device", "cpu", "--no-progress"])
    assert command.run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "| sparse | RC |" in printed and "| dense | - | 256 |" in printed
    assert (tmp_path / "out" / "sweep.csv").read_text().splitlines()[0] == "k,r,tokens,psnr,ssim,psnr_ab,n_images"
