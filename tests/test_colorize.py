"""sscn.apps.colorize and ``sscn colorize``: full-size output, the fast full-resolution path
against the plain torch maths of sscn.color, inputs of every kind, the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sscn.apps import colorize as colorize_module
from sscn.models.checkpoint import bundled_checkpoint, load_model
from sscn.io.checkpoints import save_atomic
from sscn.apps.cli import main
from sscn.color import XYZ_FROM_RGB, gray_l_to_rgb, join_lab, lab_norm_to_rgb, rgb_to_gray_l, rgb_to_lab, rgb_to_lab_norm, split_lab, srgb_to_linear
from sscn.apps.colorize import Stopwatch, colorize, full_resolution_l, reference_lab, save_image, working_shape
from sscn.io.data import decode_image, load_image
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.models.attention import Correspondence, select_tokens


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """``sscn colorize`` sets torch's thread count for its process; restore it after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SSCN(SSCNConfig(width=0.125, num_classes=5, k=8, r=8)).eval()


def photo(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth colourful ``3 x H x W`` image in [0, 1] (gradients plus a few blobs)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 8, generator=g)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def to_pil(rgb: torch.Tensor) -> Image.Image:
    return Image.fromarray((rgb * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def textbook(model, target_rgb, ref_lab_small, size, seed=0):
    """The pipeline in plain torch with sscn.color (the code before the fast path):
    full-size Lab of the target, network at the working size, ab upsampled, Lab -> sRGB."""
    full_l = split_lab(rgb_to_lab_norm(target_rgb))[0][None]
    h, w = working_shape(*full_l.shape[-2:], size)
    small_l = F.interpolate(full_l, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    out = model(small_l, ref_lab_small, seed=seed)
    ab = F.interpolate(out.ab_fine, size=full_l.shape[-2:], mode="bilinear", align_corners=False)
    return lab_norm_to_rgb(join_lab(full_l, ab))[0]


# ------------------------------------------------------------------ working size


@pytest.mark.parametrize("hw, size, expected", [
    ((3000, 4000), 256, (192, 256)),
    ((4000, 3000), 256, (256, 192)),
    ((170, 300), 256, (144, 256)),
    ((512, 512), 512, (512, 512)),
    ((1080, 1920), 512, (288, 512)),
    ((20, 2000), 256, (32, 256)),  # the short side never drops below 32
    ((100, 100), 64, (64, 64)),
])
def test_working_shape(hw, size, expected):
    shape = working_shape(*hw, size)
    assert shape == expected
    assert all(side % 16 == 0 and side >= 32 for side in shape)


@pytest.mark.parametrize("size", [0, 16, 100, 250])
def test_working_size_must_be_a_multiple_of_16(size):
    with pytest.raises(SSCNError, match="multiple of 16"):
        working_shape(300, 200, size)


# ------------------------------------------------------ the full-resolution pixels


def test_fast_l_from_8_bit_matches_sscn_color():
    rng = np.random.default_rng(0)
    colours = np.concatenate((rng.integers(0, 256, (3, 20_000)), np.repeat(np.arange(256)[None], 3, 0)), axis=1)
    image = torch.from_numpy(colours.astype(np.uint8)).reshape(3, -1, 4)
    _, f_y = full_resolution_l(image)
    reference = rgb_to_lab(image.double() / 255)[0].numpy()
    assert np.abs(116 * f_y - 16 - reference).max() < 1e-3


def test_fast_l_from_float_matches_sscn_color():
    image = torch.rand(3, 64, 40, generator=torch.Generator().manual_seed(0))
    image[:, 0, :5] = torch.tensor([0.0, 0.001, 0.04045, 0.5, 1.0])  # the ends and the knot of the sRGB curve
    luminance, f_y = full_resolution_l(image)
    lab = rgb_to_lab(image.double())
    assert np.abs(116 * f_y - 16 - lab[0].numpy()).max() < 1e-3
    luminance_expected = torch.einsum("c,chw->hw", torch.tensor(XYZ_FROM_RGB[1], dtype=torch.float64), srgb_to_linear(image.double()))
    assert np.abs(luminance - luminance_expected.numpy()).max() < 1e-6


def test_pil_and_tensor_inputs_give_the_same_l():
    rgb = photo(37, 53)
    pil = to_pil(rgb)
    from_pil = full_resolution_l(pil)[1]
    from_uint8 = full_resolution_l(torch.from_numpy(np.array(pil)).permute(2, 0, 1))[1]
    from_float = full_resolution_l(torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255)[1]
    assert np.array_equal(from_pil, from_uint8)
    assert np.abs(from_pil - from_float).max() < 1e-5


def test_result_equals_the_textbook_pipeline(model):
    """With a reference already at its working size both paths see the same network inputs."""
    target, reference = photo(170, 300), photo(144, 256, seed=1)
    result = colorize(model, target, reference, size=256)
    with torch.no_grad():
        expected = textbook(model, target, rgb_to_lab_norm(reference)[None], 256)
    assert result.rgb.shape == expected.shape == (3, 170, 300)
    assert (result.rgb - expected).abs().max() < 1e-4


def test_row_chunks_do_not_change_the_result(model, monkeypatch):
    """Chunking the rows is exact: at a fixed thread count the result is bit for bit the same."""
    target, reference = photo(90, 70), photo(96, 64, seed=1)
    threads, default = torch.get_num_threads(), colorize_module.CHUNK_PIXELS
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            monkeypatch.setattr(colorize_module, "CHUNK_PIXELS", default)  # one chunk: 90 x 70 pixels
            whole = colorize(model, target, reference, size=64).rgb
            monkeypatch.setattr(colorize_module, "CHUNK_PIXELS", 7 * 70)  # 13 chunks, the last one short
            assert torch.equal(colorize(model, target, reference, size=64).rgb, whole)
    finally:
        torch.set_num_threads(threads)


def test_threads_do_not_change_the_result_beyond_rounding(model):
    """Thread counts split reductions differently, so float32 sums may differ in the last bits
    (5e-7 measured on a Xeon with AMX); never by a visible amount."""
    target, reference = photo(90, 70), photo(96, 64, seed=1)
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2):
            torch.set_num_threads(count)
            results.append(colorize(model, target, reference, size=64).rgb)
    finally:
        torch.set_num_threads(threads)
    assert (results[0] - results[1]).abs().max() < 1e-4  # 8-bit output steps are 3.9e-3


def test_uint8_result_is_the_rounded_float_result(model):
    target, reference = photo(50, 80), photo(64, 96, seed=1)
    as_float = colorize(model, target, reference, size=64).rgb
    as_uint8 = colorize(model, target, reference, size=64, uint8=True).rgb
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == as_float.shape
    assert (as_uint8.float() - as_float * 255).abs().max() <= 0.5 + 1e-3


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_inference_attention_equals_the_training_path(model, dense, fused, monkeypatch):
    """colorize runs the network without autograd, where the attention works in place
    (fused kernel, or the explicit matrix normalised after the product)."""
    monkeypatch.setattr(model.correspondence, "fused_inference", fused)
    gray_l = rgb_to_gray_l(photo(48, 80))[None]
    ref_lab = rgb_to_lab_norm(photo(48, 80, seed=1))[None]
    with torch.enable_grad():
        trained = model(gray_l, ref_lab, dense=dense, seed=0)
    with torch.inference_mode():
        inferred = model(gray_l, ref_lab, dense=dense, seed=0)
    assert trained.ab_fine.requires_grad and not inferred.ab_fine.requires_grad
    assert (trained.ab_fine - inferred.ab_fine).abs().max() < 1e-5
    assert (trained.hist_logits - inferred.hist_logits).abs().max() < 1e-4


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_inference_attention_in_chunks_equals_training(fused, similarity):
    torch.manual_seed(0)
    attention = Correspondence(12, 8, 6, similarity=similarity)
    attention.fused_inference = fused
    query, key, ref_ab = torch.randn(2, 50, 12), torch.randn(2, 40, 12), torch.randn(2, 40, 2)
    indices = select_tokens(torch.rand(2, 40), 5, 10, torch.Generator().manual_seed(0))
    for chosen in (indices, None):
        trained, _ = attention(query, key, ref_ab, chosen)
        with torch.no_grad():
            inferred, _ = attention(query, key, ref_ab, chosen, chunk_size=7)
        assert trained.requires_grad and (trained - inferred).abs().max() < 1e-5


def test_colorize_uses_the_fused_attention_and_restores_the_setting(model, monkeypatch):
    seen = []
    forward = type(model.correspondence)._fused
    monkeypatch.setattr(type(model.correspondence), "_fused", staticmethod(lambda *a: seen.append(1) or forward(*a)))
    colorize(model, photo(40, 40), photo(40, 40, seed=1), size=32)
    assert seen and model.correspondence.fused_inference is False


def test_threads_for_load_is_between_one_and_torch_threads():
    assert 1 <= colorize_module.threads_for_load() <= torch.get_num_threads()


# ------------------------------------------------------------------------- inputs


def test_output_keeps_the_full_non_square_size(model):
    result = colorize(model, photo(170, 300), photo(120, 90, seed=1), size=64)
    assert result.rgb.shape == (3, 170, 300)
    assert result.fine_rgb.shape == result.coarse_rgb.shape == (3, 32, 64)
    assert 0 <= float(result.rgb.min()) and float(result.rgb.max()) <= 1


def test_colour_target_becomes_gray_first(model):
    rgb = photo(60, 90)
    gray = gray_l_to_rgb(rgb_to_gray_l(rgb))
    reference = photo(64, 64, seed=1)
    from_colour = colorize(model, rgb, reference, size=64).rgb
    from_gray = colorize(model, gray, reference, size=64).rgb
    assert (from_colour - from_gray).abs().max() < 1e-3


def test_pil_images_and_tensors_agree(model):
    target, reference = photo(70, 110), photo(80, 80, seed=1)
    target_pil, reference_pil = to_pil(target), to_pil(reference)
    from_pil = colorize(model, target_pil, reference_pil, size=64).rgb
    as_tensor = lambda pil: torch.from_numpy(np.array(pil)).permute(2, 0, 1)  # noqa: E731
    from_float = colorize(model, as_tensor(target_pil).float() / 255, as_tensor(reference_pil).float() / 255, size=64).rgb
    from_uint8 = colorize(model, as_tensor(target_pil), as_tensor(reference_pil), size=64).rgb
    assert torch.equal(from_pil, from_uint8)
    assert (from_pil - from_float).abs().max() < 0.02  # the references' resize: Pillow on 8 bits vs torch on floats


def test_rgba_and_16_bit_files_through_load_image(model, tmp_path):
    pixels = (photo(40, 60).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    alpha = np.full((40, 60, 1), 128, np.uint8)
    Image.fromarray(np.concatenate((pixels, alpha), axis=2), "RGBA").save(tmp_path / "rgba.png")
    deep = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    reference = photo(64, 64, seed=1)
    for name in ("rgba.png", "deep.png"):
        image = load_image(tmp_path / name)
        result = colorize(model, image, reference, size=64)
        assert result.rgb.shape == (3, 40, 60)
        with Image.open(tmp_path / name) as pil:  # the PIL image itself, converted by colorize
            assert (colorize(model, pil, reference, size=64).rgb - result.rgb).abs().max() < 0.02


def test_gray_reference_is_a_clear_error(model):
    gray = photo(64, 64).mean(0, keepdim=True).expand(3, -1, -1).contiguous()
    with pytest.raises(SSCNError, match="no colour"):
        colorize(model, photo(64, 64), gray, size=64)
    with pytest.raises(SSCNError, match="no colour"):
        colorize(model, photo(64, 64), to_pil(gray), size=64)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(1, 32, 32), "3 x H x W"),
    (torch.rand(2, 3, 32, 32), "3 x H x W"),
    (torch.ones(3, 32, 32, dtype=torch.int32), "uint8 or float"),
    (np.zeros((32, 32, 3)), "PIL image or a 3 x H x W tensor"),
    (torch.full((3, 32, 32), float("nan")), "NaN or infinite"),
    (torch.rand(3, 32, 32).index_put_((torch.tensor(0), torch.tensor(5), torch.tensor(7)), torch.tensor(float("inf"))),
     "NaN or infinite"),
])
def test_bad_inputs_are_clear_errors(model, bad, match):
    with pytest.raises(SSCNError, match=match):
        colorize(model, bad, photo(64, 64), size=64)


def test_reference_is_resized_in_srgb_to_its_working_shape():
    lab = reference_lab(photo(300, 200), 64)
    assert lab.shape == (1, 3, 64, 48)
    assert torch.allclose(lab, reference_lab(photo(300, 200), 64))


def test_stopwatch_records_every_stage(model):
    watch = Stopwatch()
    colorize(model, photo(40, 40), photo(40, 40, seed=1), size=32, watch=watch)
    assert list(watch.times) == ["prepare", "network", "upsample", "compose"]
    assert all(seconds >= 0 for seconds in watch.times.values())
    assert "network" in watch.summary() and watch.total() >= watch.times["network"]


# ---------------------------------------------------------------------- saving


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_save_image_float_and_uint8(tmp_path, suffix):
    rgb = photo(30, 50)
    save_image(rgb, tmp_path / f"float{suffix}")
    save_image((rgb * 255).round().to(torch.uint8), tmp_path / f"uint8{suffix}")
    with Image.open(tmp_path / f"float{suffix}") as a, Image.open(tmp_path / f"uint8{suffix}") as b:
        assert a.size == b.size == (50, 30)
        if suffix == ".png":
            assert np.array_equal(np.asarray(a), np.asarray(b))
            assert np.array_equal(np.asarray(a), (rgb * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def test_save_image_refuses_unknown_suffix(tmp_path):
    with pytest.raises(SSCNError, match=".png"):
        save_image(photo(8, 8), tmp_path / "out.gif")


# ------------------------------------------------------------------------- CLI


@pytest.fixture
def photo_files(tmp_path):
    target, reference = tmp_path / "target.png", tmp_path / "reference.jpg"
    to_pil(photo(170, 300)).save(target)
    to_pil(photo(90, 120, seed=1)).save(reference, quality=95)
    return target, reference


def test_cli_writes_a_jpeg_of_the_input_size_and_prints_timings(model, photo_files, tmp_path, capsys):
    checkpoint = save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, tmp_path / "tiny.pt")
    target, reference = photo_files
    assert main(["colorize", str(target), str(reference), "--checkpoint", str(checkpoint), "--size", "64"]) == 0
    written = tmp_path / "target_colorized.jpg"
    with Image.open(written) as image:
        assert image.format == "JPEG" and image.size == (300, 170) and image.mode == "RGB"
    printed = capsys.readouterr().out
    assert "300 x 170" in printed
    for stage in ("load", "model", "prepare", "network", "upsample", "compose", "save"):
        assert f"{stage} " in printed


def test_cli_gray_reference_is_one_line(model, photo_files, tmp_path, capsys):
    checkpoint = save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, tmp_path / "tiny.pt")
    target, _ = photo_files
    Image.new("RGB", (64, 64), (120, 120, 120)).save(tmp_path / "gray.png")
    assert main(["colorize", str(target), str(tmp_path / "gray.png"), "--checkpoint", str(checkpoint)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.skipif(bundled_checkpoint() is None, reason="no bundled checkpoint")
def test_cli_with_the_bundled_checkpoint(photo_files, tmp_path, capsys):
    target, reference = photo_files
    out = tmp_path / "out.png"
    assert main(["colorize", str(target), str(reference), "-o", str(out), "--size", "128"]) == 0
    with Image.open(out) as image:
        assert image.size == (300, 170)
        written = np.asarray(image.convert("RGB"))
    # the same photo through the Python API with the same model, given as the CLI gives it: 8-bit
    # images (their L read through a table) and channels-last weights. (Float inputs compute L
    # in float; the semantic model's sharp attention turns that rounding into up to 6 levels on
    # a few per cent of the pixels, so they are not the same input.)
    model = load_model(None).to(memory_format=torch.channels_last)
    result = colorize(model, decode_image(target), decode_image(reference), size=128, uint8=True)
    assert np.abs(written.astype(int) - result.rgb.permute(1, 2, 0).numpy().astype(int)).max() <= 1
