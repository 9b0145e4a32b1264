"""Reliability and safety: bad inputs end in one line on stderr and exit code 2 (never a
traceback), odd but valid images work, checkpoints are checked and saved atomically, and
a training run killed at any step resumes to the same weights as an uninterrupted one.

Everything runs a tiny random network (width 0.125) at a 32 px working size.
"""
import contextlib
import errno
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.models.checkpoint import load_model, read_checkpoint
from sscn.io.checkpoints import save_atomic
from sscn.apps.cli import main
from sscn.apps.colorize import colorize
from sscn.io.data import load_image
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.training.config import TrainConfig
from sscn.training.train import train

from cli_support import assert_one_line_error, garble_middle, ramp_photo as photo, run_cli, subprocess_env, tiny_model_file

ROOT = Path(__file__).resolve().parents[1]
TINY = SSCNConfig(width=0.125, k=8, r=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def save(array_or_image, path, **options) -> Path:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(path, **options)
    return path


def png16(path, array) -> Path:
    """Write an ``H x W x C`` uint16 array (C = 1, 2, 3 or 4) as a 16-bit PNG (Pillow writes 16-bit gray only)."""
    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
                           + _chunk(b"IEND", b""))
    return Path(path)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb(path, side=30000) -> Path:
    """A small PNG whose header claims ``side x side`` pixels: a decompression bomb.

    30000^2 is 5 times Pillow's limit (``MAX_IMAGE_PIXELS``, doubled for the error), and
    Pillow refuses it when it reads the header, before allocating anything.
    """
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                           + _chunk(b"IEND", b""))
    return Path(path)


def jpeg_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model"), TINY)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("photos")
    return {"target": save(photo(48, 64, 1), root / "target.png"),
            "reference": save(photo(40, 56, 2), root / "ref.jpg")}


# ------------------------------------------------------------------ bad image files

def _missing(path):
    return path


def _folder(path):
    path.mkdir()
    return path


def _not_an_image(path):
    path.write_text("this is a text file with an image's name")
    return path


def _html(path):
    path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    return path


def _truncated_jpeg(path):
    path.write_bytes(jpeg_bytes(photo(64, 64))[:400])
    return path


def _truncated_png(path):
    buffer = io.BytesIO()
    Image.fromarray(photo(64, 64)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def _zero_bytes(path):
    path.write_bytes(b"")
    return path


def _bomb(path):
    return bomb(path)


def _dangling_link(path):
    path.symlink_to(path.with_name("gone.jpg"))
    return path


BAD_FILES = {
    "missing": (_missing, "no such file"),
    "folder": (_folder, "is a folder"),
    "not an image": (_not_an_image, "not an image"),
    "html page saved as .jpg": (_html, "not an image"),
    "truncated JPEG": (_truncated_jpeg, "truncated or corrupt"),
    "truncated PNG": (_truncated_png, "truncated or corrupt"),
    "zero bytes": (_zero_bytes, r"empty \(0 bytes\)"),
    "decompression bomb": (_bomb, "too large to open safely.*MAX_IMAGE_PIXELS"),
    "dangling symlink": (_dangling_link, "no such file"),
}


@pytest.mark.parametrize("role", ["target", "reference"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_colorize_bad_file_is_one_line(capsys, tmp_path, model_file, photos, role, case):
    make, match = BAD_FILES[case]
    bad = make(tmp_path / "bad.jpg")
    files = {**photos, role: bad}
    line = assert_one_line_error(capsys, ["colorize", files["target"], files["reference"], "--checkpoint", model_file,
                                          "--size", "32", "-o", tmp_path / "out.png"], match)
    assert "bad.jpg" in line or str(tmp_path) in line
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("case", ["missing", "zero bytes", "truncated JPEG", "decompression bomb"])
def test_load_image_api_raises_sscn_error(tmp_path, case):
    make, match = BAD_FILES[case]
    with pytest.raises(SSCNError, match=match):
        load_image(make(tmp_path / "bad.jpg"))


# ------------------------------------------------------------------ gray references

def _gray_l(path):
    return save(Image.fromarray(photo()).convert("L"), path.with_suffix(".png"))


def _gray_rgb_jpeg(path):
    gray = np.asarray(Image.fromarray(photo()).convert("L"))
    return save(np.stack([gray] * 3, -1), path.with_suffix(".jpg"), quality=70)


def _transparent(path):
    rgba = np.concatenate((photo(), np.zeros((48, 64, 1), np.uint8)), -1)  # every pixel fully transparent
    return save(Image.fromarray(rgba), path.with_suffix(".png"))


def _gray_16_bit(path):
    return png16(path.with_suffix(".png"), np.random.default_rng(0).integers(0, 65536, (40, 40, 1)).astype(np.uint16))


@pytest.mark.parametrize("make", [_gray_l, _gray_rgb_jpeg, _transparent, _gray_16_bit],
                         ids=["L mode", "gray RGB JPEG", "fully transparent RGBA", "16-bit gray"])
def test_gray_reference_is_refused_clearly(capsys, tmp_path, model_file, photos, make):
    reference = make(tmp_path / "gray")
    assert_one_line_error(capsys, ["colorize", photos["target"], reference, "--checkpoint", model_file, "--size", "32",
                                   "-o", tmp_path / "out.png"], "the reference photo has no colour")


# ------------------------------------------------------------------ odd images that must work

def _cmyk(path):
    return save(Image.fromarray(photo()).convert("CMYK"), path.with_suffix(".jpg"))


def _palette(path):
    return save(Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE), path.with_suffix(".png"))


def _palette_transparency(path):
    image = Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE)
    return save(image, path.with_suffix(".gif"), transparency=0)


def _rgba(path):
    alpha = np.full((48, 64, 1), 200, np.uint8)
    return save(Image.fromarray(np.concatenate((photo(), alpha), -1)), path.with_suffix(".png"))


def _rgb_16_bit(path):
    rgb = photo().astype(np.uint16) * 257
    return png16(path.with_suffix(".png"), rgb)


def _rgba_16_bit(path):
    rgba = np.concatenate((photo().astype(np.uint16) * 257, np.full((48, 64, 1), 65535, np.uint16)), -1)
    return png16(path.with_suffix(".png"), rgba)


def _animated_gif(path):
    frames = [Image.fromarray(photo(seed=s)).convert("P", palette=Image.Palette.ADAPTIVE) for s in range(3)]
    frames[0].save(path.with_suffix(".gif"), save_all=True, append_images=frames[1:])
    return path.with_suffix(".gif")


def _webp(path):
    return save(photo(), path.with_suffix(".webp"))


def _tiff_cmyk(path):
    return save(Image.fromarray(photo()).convert("CMYK"), path.with_suffix(".tif"))


WORKING_REFERENCES = {"CMYK JPEG": _cmyk, "palette PNG": _palette,
                      "palette GIF with transparency": _palette_transparency,
                      "RGBA PNG": _rgba, "16-bit RGB PNG": _rgb_16_bit, "16-bit RGBA PNG": _rgba_16_bit,
                      "animated GIF": _animated_gif, "WebP": _webp, "CMYK TIFF": _tiff_cmyk,
                      "20 x 4000": lambda p: save(photo(20, 4000), p.with_suffix(".png")),
                      "8 x 8": lambda p: save(photo(8, 8), p.with_suffix(".png"))}


def _gray_8(path):
    return save(Image.fromarray(photo()).convert("L"), path.with_suffix(".png"))


def _gray_16(path):
    return png16(path.with_suffix(".png"), np.random.default_rng(0).integers(0, 65536, (48, 64, 1)).astype(np.uint16))


def _one_bit(path):
    return save(Image.fromarray(photo()).convert("1"), path.with_suffix(".png"))


def _float_tiff_with_nan(path):
    values = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    values[0, :4] = [np.nan, np.inf, -np.inf, -3.0]
    return save(Image.fromarray(values), path.with_suffix(".tif"))


def _exif_rotated(path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": 64 x 48 stored, 48 x 64 shown
    return save(photo(), path.with_suffix(".jpg"), exif=exif)


WORKING_TARGETS = {"CMYK JPEG": (_cmyk, (48, 64)), "palette PNG": (_palette, (48, 64)), "RGBA PNG": (_rgba, (48, 64)),
                   "8-bit gray": (_gray_8, (48, 64)), "16-bit gray PNG": (_gray_16, (48, 64)),
                   "16-bit RGB PNG": (_rgb_16_bit, (48, 64)), "1-bit PNG": (_one_bit, (48, 64)),
                   "float TIFF with NaN and inf": (_float_tiff_with_nan, (48, 64)),
                   "EXIF rotated JPEG": (_exif_rotated, (64, 48)),
                   "8 x 8": (lambda p: save(photo(8, 8), p.with_suffix(".png")), (8, 8)),
                   "1 x 1": (lambda p: save(photo(1, 1), p.with_suffix(".png")), (1, 1)),
                   "4000 x 20": (lambda p: save(photo(20, 4000), p.with_suffix(".png")), (20, 4000)),
                   "20 x 4000": (lambda p: save(photo(4000, 20), p.with_suffix(".png")), (4000, 20))}


def _colorized_size(capsys, tmp_path, argv) -> tuple[int, int]:
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    assert err == "" and out.startswith("wrote ")
    with Image.open(tmp_path / "out.png") as result:
        assert result.mode == "RGB"
        return result.height, result.width


@pytest.mark.parametrize("case", list(WORKING_TARGETS))
def test_odd_targets_work(capsys, tmp_path, model_file, photos, case):
    make, shape = WORKING_TARGETS[case]
    target = make(tmp_path / "target")
    argv = ["colorize", target, photos["reference"], "--checkpoint", model_file, "--size", "32",
            "-o", tmp_path / "out.png"]
    assert _colorized_size(capsys, tmp_path, argv) == shape


@pytest.mark.parametrize("case", list(WORKING_REFERENCES))
def test_odd_references_work(capsys, tmp_path, model_file, photos, case):
    reference = WORKING_REFERENCES[case](tmp_path / "reference")
    argv = ["colorize", photos["target"], reference, "--checkpoint", model_file, "--size", "32",
            "-o", tmp_path / "out.png"]
    assert _colorized_size(capsys, tmp_path, argv) == (48, 64)


def test_loaded_odd_images_are_finite_and_in_range(tmp_path):
    makers = [_cmyk, _palette, _palette_transparency, _rgba, _rgb_16_bit, _rgba_16_bit, _gray_16, _one_bit,
              _float_tiff_with_nan, _exif_rotated, _animated_gif, _tiff_cmyk]
    for i, make in enumerate(makers):
        rgb = load_image(make(tmp_path / f"image{i}"))
        assert rgb.dtype == torch.float32 and rgb.shape[0] == 3, make.__name__
        assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1, make.__name__
    # 16 bits are read exactly (to the precision of 8 bits at least), not reinterpreted
    ramp = (np.arange(64, dtype=np.uint16) * 1040)[None, :, None].repeat(8, 0)
    deep = load_image(png16(tmp_path / "ramp.png", ramp))
    assert torch.allclose(deep[0, 0], torch.from_numpy(ramp[0, :, 0] / 65535).float(), atol=1 / 255)


def test_tiny_and_extreme_images_through_the_python_api(model_file):
    model = load_model(model_file)
    reference = torch.from_numpy(photo(40, 56)).permute(2, 0, 1).float() / 255
    for height, width in [(8, 8), (1, 1), (20, 4000), (4000, 20), (17, 33)]:
        target = torch.rand(3, height, width)
        result = colorize(model, target, reference, size=32)
        assert result.rgb.shape == (3, height, width)
        assert torch.isfinite(result.rgb).all()
    with pytest.raises(SSCNError, match="no colour"):
        colorize(model, reference, torch.full((3, 16, 16), 0.5), size=32)
    with pytest.raises(SSCNError, match="multiple of 16"):
        colorize(model, reference, reference, size=40)
    with pytest.raises(SSCNError, match="multiple of 16"):
        model(torch.zeros(1, 1, 40, 40), torch.zeros(1, 3, 40, 40))


# ------------------------------------------------------------------ options

@pytest.mark.parametrize("options, match", [
    (["--k", "-1"], r"k must be a whole number >= 0 \(got -1\)"),
    (["--r", "-5"], r"r must be a whole number >= 0 \(got -5\)"),
    (["--k", "0", "--r", "0"], "k \\+ r must be at least 1"),
    (["--size", "40"], "--size must be a multiple of 16"),
    (["--size", "8"], "--size must be a multiple of 16 and at least 32"),
    (["--size", "0"], "--size must be a multiple of 16"),
    (["--size", "-32"], "--size must be a multiple of 16"),
    (["-o", "OUT/out.txt"], "must end in .png"),
    (["--k", "many"], "argument --k: invalid int value"),
    (["--size", "3.5"], "argument --size: invalid int value"),
    (["--dense", "--sparse"], "not allowed with"),
    (["--seed", str(2**64)], "argument --seed: .* out of range"),
    (["--bogus"], "unrecognized arguments: --bogus \\(see sscn --help\\)"),
])
def test_colorize_bad_options_are_one_line(capsys, tmp_path, model_file, photos, options, match):
    options = [str(tmp_path / "out.txt") if o == "OUT/out.txt" else o for o in options]
    argv = ["colorize", photos["target"], photos["reference"], "--checkpoint", model_file, *options]
    if "-o" not in options:
        argv += ["-o", tmp_path / "out.png"]
    # arguments no sub-command knows are the top-level parser's to report
    assert_one_line_error(capsys, argv, match, prefix="sscn: error: " if "--bogus" in options else None)


def test_k_and_r_above_the_token_count_are_capped(capsys, tmp_path, model_file, photos):
    argv = ["colorize", photos["target"], photos["reference"], "--checkpoint", model_file, "--size", "32",
            "--k", "100000", "--r", "100000", "-o", tmp_path / "out.png"]
    assert _colorized_size(capsys, tmp_path, argv) == (48, 64)
    model = load_model(model_file, k=10**6, r=10**6)
    out = model(torch.zeros(1, 1, 32, 32), torch.rand(1, 3, 32, 32))
    assert out.indices.shape == (1, 64)  # every one of the 8 x 8 tokens, each once
    assert sorted(out.indices[0].tolist()) == list(range(64))


@pytest.mark.parametrize("overrides, match", [
    ({"k": -1}, r"k must be a whole number >= 0"), ({"r": 2.5}, "r must be a whole number"),
    ({"chunk_size": 0}, "chunk_size must be a whole number >= 1"), ({"k": True}, "k must be a whole number"),
    ({"width": 0.5}, "'width' is fixed by the checkpoint \\(it is 0.125\\)"),
    ({"num_bins": 10}, "'num_bins' is fixed by the checkpoint"),
])
def test_load_model_overrides_are_checked(model_file, overrides, match):
    with pytest.raises(SSCNError, match=match):
        load_model(model_file, **overrides)


def test_a_full_disk_on_output_is_one_line(capsys, tmp_path, model_file, photos, monkeypatch):
    import sscn.apps.colorize

    def full(rgb, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sscn.apps.colorize, "save_image", full)
    assert_one_line_error(capsys, ["colorize", photos["target"], photos["reference"], "--checkpoint", model_file,
                                   "--size", "32", "-o", tmp_path / "out.png"],
                          "No space left on device: .*out.png", code=1)


# ------------------------------------------------------------------ checkpoints

def _record_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """Where each record's bytes lie in a zip archive: ``{name: (start, size)}``."""
    offsets = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            handle.seek(info.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", handle.read(4))
            offsets[info.filename] = (info.header_offset + 30 + name_length + extra_length, info.compress_size)
    return offsets


def _flip(path: Path, offset: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    out.write_bytes(bytes(data))
    return out


def _largest_tensor_middle(path: Path) -> int:
    records = {name: span for name, span in _record_offsets(path).items() if "/data/" in name}
    start, size = max(records.values(), key=lambda span: span[1])
    return start + size // 2


class _RunsCode:
    """An object whose unpickling would run code (it creates a file): weights_only must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _bad_checkpoint(kind: str, good: Path, folder: Path) -> Path:
    path = folder / f"{kind.replace(' ', '_')}.pt"
    data = good.read_bytes()
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
    elif kind == "zero bytes":
        path.write_bytes(b"")
    elif kind.startswith("truncated"):
        fraction = {"truncated to 10%": 0.1, "truncated to half": 0.5, "truncated by 1 byte": None}[kind]
        path.write_bytes(data[:-1] if fraction is None else data[: int(len(data) * fraction)])
    elif kind == "flipped byte in a tensor":
        _flip(good, _largest_tensor_middle(good), path)
    elif kind == "flipped byte in the pickle":
        start, size = _record_offsets(good)[next(n for n in _record_offsets(good) if n.endswith("data.pkl"))]
        _flip(good, start + size // 2, path)
    elif kind == "flipped byte in the zip directory":
        _flip(good, len(data) - 40, path)
    elif kind == "text file":
        path.write_text("model weights, see the website")
    elif kind == "bare state dict":
        torch.save(torch.load(good, weights_only=True)["model"], path)
    elif kind == "unknown config field":
        ckpt = torch.load(good, weights_only=True)
        torch.save({**ckpt, "config": {**ckpt["config"], "colour_magic": 3}}, path)
    elif kind == "weights of another width":
        torch.save({"model": SSCN(SSCNConfig(width=0.25, k=8, r=8)).state_dict(), "config": TINY.to_dict()}, path)
    elif kind == "pickle that runs code":
        torch.save({"model": {}, "config": {}, "payload": _RunsCode(folder / "pwned")}, path)
    return path


BAD_CHECKPOINTS = {
    "missing": "checkpoint not found",
    "folder": "checkpoint path is a folder",
    "zero bytes": "corrupt or not an SSCN checkpoint",
    "truncated to 10%": "corrupt",
    "truncated to half": "corrupt",
    "truncated by 1 byte": "corrupt",
    "flipped byte in a tensor": "is corrupt .*CRC",
    "flipped byte in the pickle": "corrupt",
    "flipped byte in the zip directory": "corrupt",
    "text file": "corrupt or not an SSCN checkpoint",
    "bare state dict": "not an SSCN checkpoint \\(it lacks 'model' and 'config'\\)",
    "unknown config field": "fields this version does not know: \\['colour_magic'\\]",
    "weights of another width": "does not fit this network .*shape mismatches.*disagree with the config stored",
    "pickle that runs code": "corrupt or not an SSCN checkpoint \\(UnpicklingError\\)",
}


@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_one_line(capsys, tmp_path, model_file, photos, kind):
    path = _bad_checkpoint(kind, model_file, tmp_path)
    assert_one_line_error(capsys, ["colorize", photos["target"], photos["reference"], "--checkpoint", path,
                                   "--size", "32", "-o", tmp_path / "out.png"], BAD_CHECKPOINTS[kind])
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(SSCNError):
        load_model(path)


def test_a_flipped_bit_in_any_tensor_is_detected(tmp_path, model_file):
    """``torch.load`` alone would load these silently: the check compares each record's CRC-32."""
    tensors = [span for name, span in _record_offsets(model_file).items() if "/data/" in name]
    data = model_file.read_bytes()
    for start, size in tensors[:: max(1, len(tensors) // 12)]:
        corrupt = bytearray(data)
        corrupt[start + size - 1] ^= 0x01
        path = tmp_path / "flipped.pt"
        path.write_bytes(bytes(corrupt))
        with pytest.raises(SSCNError, match="CRC"):
            read_checkpoint(path)


@pytest.mark.skipif(not hasattr(torch.serialization, "set_crc32_options"), reason="torch without crc32 options")
def test_a_checkpoint_saved_without_checksums_still_loads(tmp_path, model_file):
    before = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(torch.load(model_file, weights_only=True), tmp_path / "nocrc.pt")
    finally:
        torch.serialization.set_crc32_options(before)
    with zipfile.ZipFile(tmp_path / "nocrc.pt") as archive:
        assert any(info.CRC == 0 and info.file_size for info in archive.infolist())
    assert load_model(tmp_path / "nocrc.pt").config.width == 0.125


def _fail_part_way(exception):
    real_save = torch.save

    def failing_save(obj, handle, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # half of the new file reaches the disk
        raise exception

    return failing_save


@pytest.mark.parametrize("failure", ["crash", "disk full on write", "disk full on fsync", "interrupt"])
def test_save_is_atomic(tmp_path, failure, monkeypatch):
    path = tmp_path / "ckpt" / "last.pt"
    first = {"model": {"w": torch.arange(1000.0)}, "config": {"width": 0.125}, "step": 1}
    save_atomic(first, path)
    second = {"model": {"w": torch.zeros(1000)}, "config": {"width": 0.125}, "step": 2}
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if failure == "disk full on fsync":
        def no_space(fd):
            raise full
        monkeypatch.setattr(os, "fsync", no_space)
        expected = OSError
    else:
        exception = {"crash": RuntimeError("killed mid-save"), "disk full on write": full,
                     "interrupt": KeyboardInterrupt()}[failure]
        monkeypatch.setattr(torch, "save", _fail_part_way(exception))
        expected = type(exception)
    with pytest.raises(expected):
        save_atomic(second, path)
    monkeypatch.undo()
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind
    kept = read_checkpoint(path)
    assert kept["step"] == 1 and torch.equal(kept["model"]["w"], first["model"]["w"])


# ------------------------------------------------------------------ sscn evaluate

@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory) -> Path:
    """Odd but valid photos: CMYK, 16-bit, palette, 8 x 8, 4000 x 20."""
    root = tmp_path_factory.mktemp("eval") / "photos"
    (root / "odd").mkdir(parents=True)
    _cmyk(root / "odd" / "a")
    _rgb_16_bit(root / "odd" / "b")
    _palette(root / "odd" / "c")
    save(photo(8, 8), root / "odd" / "d.png")
    save(photo(20, 4000), root / "odd" / "e.png")
    return root


def test_evaluate_takes_odd_photos(capsys, eval_folder, model_file):
    code, out, err = run_cli(capsys, ["evaluate", "--data", eval_folder, "--checkpoint", model_file, "--size", "32",
                                      "--kinds", "tps", "--methods", "copy", "sparse", "--no-progress"])
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| copy") or line.startswith("| sparse")]
    assert len(rows) == 2 and all("| 5 |" in row for row in rows)


@pytest.mark.parametrize("options, match", [
    (["--data", "MISSING"], "--data .*: no such folder"),
    (["--data", "FILE"], "--data .*: no such folder"),
    (["--data", "EMPTY"], "no images in"),
    (["--size", "40"], "--size must be a multiple of 16"),
    (["--size", "16"], "--size must be at least 32"),
    (["--device", "tpu"], "--device 'tpu' is not a device"),
    (["--out", "FILE"], "--out .* is a file"),
    (["--save-pairs", "FILE"], "--save-pairs .* is a file"),
    (["--sweep", "--sweep-k", "-1"], "--sweep-k: values must be >= 0"),
    (["--limit", "0"], "limit=0"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--kinds", "flip"], "--kinds: unknown \\['flip'\\]"),
    (["--methods", "magic"], "--methods: unknown \\['magic'\\]"),
    (["--checkpoint", "TRUNCATED"], "corrupt"),
    (["--baselines-only", "--sweep"], "--sweep needs a model"),
    (["--seed", str(2**40)], "--seed must be between"),
    (["--size", "big"], "argument --size: invalid int value"),
])
def test_evaluate_bad_inputs_are_one_line(capsys, tmp_path, eval_folder, model_file, options, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "half.pt").write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    names = {"MISSING": tmp_path / "missing", "FILE": tmp_path / "file.txt", "EMPTY": tmp_path / "empty",
             "TRUNCATED": tmp_path / "half.pt"}
    options = [names.get(o, o) for o in options]
    argv = ["evaluate", "--no-progress", "--kinds", "tps", "--limit", "1", "--methods", "copy", "sparse"]
    if "--data" not in options:
        argv += ["--data", eval_folder]
    if "--checkpoint" not in options:
        argv += ["--checkpoint", model_file]
    if "--size" not in options:
        argv += ["--size", "32"]
    if "--methods" in options or "--sweep" in options:
        argv = [a for a in argv if a not in ("--methods", "copy", "sparse")]
    assert_one_line_error(capsys, [*argv, *options], match)


# ------------------------------------------------------------------ sscn train

@pytest.fixture(scope="module")
def train_folder(tmp_path_factory) -> Path:
    """Two classes of two 32 px photos: two steps an epoch at batch size 2."""
    root = tmp_path_factory.mktemp("train") / "photos"
    for label in range(2):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(2):
            save(photo(32, 32, seed=10 * label + i), root / f"class{label}" / f"{i}.png")
    return root


TRAIN_ARGS = ["--image-size", "32", "--width", "0.125", "--batch-size", "2", "--topk", "4", "--random-tokens", "4",
              "--num-workers", "0", "--val-images", "2", "--val-every", "1000", "--log-every", "1", "--device", "cpu",
              "--seed", "0", "--precision", "float32"]


def _training_state(path: Path, kind: str) -> None:
    """A ``last.pt`` that cannot be resumed: weights only, truncated, or another width."""
    num_classes = 2
    if kind == "weights only":
        model = SSCN(SSCNConfig(width=0.125, num_classes=num_classes, k=4, r=4))
        save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, path)
    elif kind == "another width":
        model = SSCN(SSCNConfig(width=0.25, num_classes=num_classes, k=4, r=4))
        save_atomic({"model": model.state_dict(), "config": model.config.to_dict(), "optimizer": {}, "step": 1,
                     "rng": {}}, path)
    else:
        model = SSCN(SSCNConfig(width=0.125, num_classes=num_classes, k=4, r=4))
        save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, path)
        path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize("options, match", [
    (["--data-dir", "MISSING"], "image folder .* does not exist"),
    (["--data-dir", "FILE"], "image folder .* is a file"),
    (["--data-dir", "EMPTY"], "no images in"),
    (["--out-dir", "FILE"], "out_dir .* is a file"),
    (["--image-size", "40"], "image_size must be a multiple of 16"),
    (["--steps", "0"], "steps must be >= 1"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
    (["--width", "-1"], "width must be in \\(0, 4\\]"),
    (["--k", "-1"], "k must be >= 0"),
    (["--lr", "nan"], "lr must be a finite number > 0"),
    (["--beta1", "1.5"], "beta1 must be in \\[0, 1\\)"),
    (["--w-tv", "-10"], "w_tv must be a finite number >= 0"),
    (["--batch-size", "8"], "fewer than one batch of 8"),
    (["--similarity", "l2"], "similarity must be 'cosine' or 'dot'"),
    (["--init-from", "MISSING"], "checkpoint not found"),
    (["--init-from", "TINY"], "another config \\(num_classes: checkpoint 10 vs now 2\\)"),
    (["--vgg-weights", "imagenet"], "VGG19 weights exist only at width 1.0"),
    (["RESUME", "weights only"], "holds weights but no training state"),
    (["RESUME", "truncated"], "corrupt"),
    (["RESUME", "another width"], "another config \\(width: checkpoint 0.25 vs now 0.125\\)"),
    pytest.param(["--device", "cuda"], "no CUDA device here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")),
])
def test_train_bad_inputs_are_one_line(capsys, tmp_path, train_folder, model_file, options, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    out_dir = tmp_path / "run"
    if options[0] == "RESUME":
        out_dir.mkdir()
        _training_state(out_dir / "last.pt", options[1])
        options = []
    names = {"MISSING": tmp_path / "missing", "FILE": tmp_path / "file.txt", "EMPTY": tmp_path / "empty",
             "TINY": model_file}
    options = [names.get(o, o) for o in options]
    argv = ["train", *TRAIN_ARGS, "--steps", "1"]
    if "--data-dir" not in options:
        argv += ["--data-dir", train_folder]
    if "--out-dir" not in options:
        argv += ["--out-dir", out_dir]
    assert_one_line_error(capsys, [*argv, *options], match)


@pytest.mark.parametrize("field, value", [
    ("steps", "ten"), ("width", -1), ("width", math.nan), ("width", math.inf), ("lr", math.inf),
    ("image_size", 48.0), ("seed", None), ("seed", 2**40), ("k", 2.5), ("num_workers", -1), ("val_images", 0),
    ("precision", "fp16"), ("precision", True), ("beta1", "0.9"), ("beta2", 1.0), ("w_fine", math.nan), ("w_cls", -0.1), ("violent_share", math.nan),
    ("out_dir", 7), ("grad_clip", math.nan),
])
def test_train_config_names_the_bad_field(field, value):
    """As papermill passes them: a wrong type or an out-of-range value names its field."""
    with pytest.raises(SSCNError, match=rf"^training parameter {field} must"):
        TrainConfig(**{field: value}).validate()


def test_python_m_sscn_train_prints_one_line(capsys, tmp_path):
    from sscn.training.train import main as train_main

    argv = ["--data-dir", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "run"), "--device", "cpu"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sscn train: error: image folder")


# ------------------------------------------------------------------ a training run killed at any step

KILL_STEPS = 12


def _train_config(data_dir: Path, out_dir: Path) -> TrainConfig:
    return TrainConfig(data_dir=str(data_dir), out_dir=str(out_dir), image_size=32, width=0.125, batch_size=2,
                       steps=KILL_STEPS, k=4, r=4, num_workers=0, val_images=2, val_every=1000, log_every=1,
                       ckpt_every=1, device="cpu", seed=0, precision="float32")


@pytest.fixture(scope="module")
def uninterrupted(train_folder, tmp_path_factory) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("whole")
        train(_train_config(train_folder, out), progress=False)
    finally:
        torch.set_num_threads(threads)
    return read_checkpoint(out / "last.pt")


def _logged_steps(metrics: Path) -> int:
    try:
        return metrics.read_text().count("\n")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("kill_at", [2, 5, 9])
def test_training_killed_at_any_step_resumes_to_the_same_weights(tmp_path, train_folder, uninterrupted, kill_at):
    out = tmp_path / "run"
    env = subprocess_env(MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "sscn.training.train", "--data-dir", str(train_folder), "--out-dir", str(out),
               *TRAIN_ARGS, "--steps", str(KILL_STEPS), "--ckpt-every", "1"]
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    try:
        while _logged_steps(out / "metrics.jsonl") < kill_at:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the training run did not reach the kill step"
            time.sleep(0.005)
        process.kill()  # SIGKILL: no handler runs, no cleanup
    finally:
        process.kill()
        process.wait()
    killed_at = read_checkpoint(out / "last.pt")["step"]
    assert kill_at - 1 <= killed_at < KILL_STEPS

    summary = train(_train_config(train_folder, out), progress=False)  # the restart, resumed from last.pt
    assert summary["steps"] == KILL_STEPS and summary["steps_this_run"] == KILL_STEPS - killed_at
    resumed = read_checkpoint(out / "last.pt")
    assert resumed["model"].keys() == uninterrupted["model"].keys()
    expected = uninterrupted["model"]
    different = [name for name, value in resumed["model"].items() if not torch.equal(value, expected[name])]
    assert not different, f"killed at step {killed_at}: resumed weights differ in {different[:5]}"
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in uninterrupted["history"]]
    # the metrics log has each step once, and no temporary file is left from the killed save
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, KILL_STEPS + 1))
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.jsonl", "summary.json"]


# ------------------------------------------------------------------ the console script, for real

def test_console_script_prints_one_line_and_no_traceback(tmp_path, photos, model_file):
    script = shutil.which("sscn")
    if script is None:
        pytest.skip("the sscn console script is not installed (pip install -e .)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([script, "colorize", str(bomb(tmp_path / "bomb.png")), str(photos["reference"]),
                             "--checkpoint", str(model_file), "--size", "32", "-o", str(tmp_path / "out.png")],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sscn colorize: error: ") and "too large to open safely" in lines[0]


# ================================================================== second round (issue 17)
# Each test below failed on the code before its fix (see the numbered defects).

def _exif_block(entries) -> bytes:
    """A little-endian EXIF block with one IFD: ``entries`` are ``(tag, type, count, 4 value bytes)``."""
    ifd = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    ifd += b"".join(struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return b"Exif\x00\x00" + ifd + struct.pack("<I", 0)


def _malformed_exif_jpeg(path) -> Path:
    """64 x 48 stored, orientation 6 (shown 48 x 64), and ResolutionUnit typed ASCII instead of
    SHORT: Pillow reads it, but ``exif_transpose`` raises ``struct.error`` rewriting the block."""
    exif = _exif_block([(0x0112, 3, 1, struct.pack("<HH", 6, 0)), (0x0128, 2, 4, b"abc\x00")])
    return save(photo(48, 64), path, exif=exif)


def test_malformed_exif_loads_upright_everywhere(capsys, tmp_path, model_file, photos):
    """Defect 1: a wrongly typed EXIF tag stopped colorize, train and evaluate with a traceback."""
    path = _malformed_exif_jpeg(tmp_path / "camera.jpg")
    assert load_image(path).shape == (3, 64, 48)  # the orientation tag is still applied
    argv = _colorize_argv(path, photos["reference"], model_file, tmp_path / "out.png")
    assert _colorized_size(capsys, tmp_path, argv) == (64, 48)
    folder = tmp_path / "data" / "cls"
    folder.mkdir(parents=True)
    shutil.copy(path, folder / "a.jpg")
    save(photo(seed=3), folder / "b.png")
    from sscn.io.data import ImageFolder

    dataset = ImageFolder(tmp_path / "data", size=32)
    assert len(dataset) == 2 and torch.isfinite(dataset[0]["rgb"]).all() and not dataset.failed


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\nshowpage\n%%EOF\n"


def _ppm(path):
    buffer = io.BytesIO()
    Image.fromarray(photo()).save(buffer, "PPM")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("content", ["EPS", "PPM"])
def test_only_the_supported_formats_are_opened(capsys, tmp_path, model_file, photos, monkeypatch, content):
    """Defect 2: the file's content picked the decoder; PostScript named .jpg went to Ghostscript."""
    from PIL import EpsImagePlugin

    opened = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "load", lambda self, *a, **k: opened.append(self))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: opened.append(a))
    path = tmp_path / "photo.jpg"
    if content == "EPS":
        path.write_bytes(EPS)
    else:
        _ppm(path)
    with pytest.raises(SSCNError, match="not an image sscn reads; pass a JPEG, PNG, BMP, GIF, TIFF or WebP"):
        load_image(path)
    assert_one_line_error(capsys, ["colorize", path, photos["reference"], "--checkpoint", model_file, "--size", "32",
                                   "-o", tmp_path / "out.png"], "not an image sscn reads")
    assert not opened


def _colorize_argv(target, reference, model_file, out, *options):
    return ["colorize", target, reference, "--checkpoint", model_file, "--size", "32", "-o", out, *options]


@pytest.mark.parametrize("output", ["target", "reference", "target via another name", "hard link to the target"])
def test_output_never_replaces_an_input(capsys, tmp_path, model_file, output):
    """Defect 3: ``-o`` naming the target (or the reference) overwrote it silently, --overwrite or not."""
    target, reference = save(photo(seed=1), tmp_path / "t.png"), save(photo(seed=2), tmp_path / "r.png")
    before = target.read_bytes(), reference.read_bytes()
    out = {"target": target, "reference": reference, "target via another name": tmp_path / "." / "sub" / ".." / "t.png"}
    if output == "hard link to the target":
        os.link(target, tmp_path / "link.png")
        out[output] = tmp_path / "link.png"
    (tmp_path / "sub").mkdir()
    for extra in ([], ["--overwrite"]):
        assert_one_line_error(capsys, _colorize_argv(target, reference, model_file, out[output], *extra),
                              "is the (target|reference) photo; the result must not replace an input")
    assert (target.read_bytes(), reference.read_bytes()) == before


def test_one_file_as_target_reference_and_output_is_refused(capsys, tmp_path, model_file):
    one = save(photo(), tmp_path / "one.png")
    before = one.read_bytes()
    assert_one_line_error(capsys, _colorize_argv(one, one, model_file, one), "must not replace an input")
    assert one.read_bytes() == before


def test_default_output_name_never_replaces_a_file(capsys, tmp_path, model_file):
    """Defect 3: ``sscn colorize a.png a_colorized.jpg`` wrote its result over its own reference."""
    target = save(photo(seed=1), tmp_path / "a.png")
    reference = save(photo(seed=2), tmp_path / "a_colorized.jpg")
    before = reference.read_bytes()
    argv = ["colorize", target, reference, "--checkpoint", model_file, "--size", "32"]
    assert_one_line_error(capsys, argv, "is the reference photo")
    assert_one_line_error(capsys, [*argv, "--overwrite"], "is the reference photo")
    assert reference.read_bytes() == before
    # an earlier result under the default name is kept unless --overwrite says otherwise
    other = save(photo(seed=2), tmp_path / "ref.jpg")
    earlier = tmp_path / "a_colorized.jpg"
    argv = ["colorize", target, other, "--checkpoint", model_file, "--size", "32"]
    line = assert_one_line_error(capsys, argv, "already exists; pass --overwrite to replace it")
    assert "a_colorized.jpg" in line and earlier.read_bytes() == before
    code, out, err = run_cli(capsys, [*argv, "--overwrite"])
    assert code == 0 and err == "" and earlier.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_colorized.jpg", "ref.jpg"]


def test_symlinked_output_is_not_written_through(capsys, tmp_path, model_file, photos):
    """Defect 3: ``-o link`` wrote into the file the link points to."""
    precious = save(photo(seed=5), tmp_path / "precious.png")
    before = precious.read_bytes()
    (tmp_path / "out.png").symlink_to(precious)
    for extra in ([], ["--overwrite"]):
        assert_one_line_error(capsys, _colorize_argv(photos["target"], photos["reference"], model_file,
                                                     tmp_path / "out.png", *extra), "is a symbolic link")
    assert precious.read_bytes() == before and (tmp_path / "out.png").is_symlink()


def _save_half_then(exception):
    """``Image.save`` that writes half of the file, then fails with ``exception`` (a kill, Ctrl-C, a full disk)."""
    real_save = Image.Image.save

    def save_half(self, fp, format=None, **params):
        buffer = io.BytesIO()
        real_save(self, buffer, format=format or Path(fp).suffix[1:].replace("jpg", "jpeg"), **params)
        data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(fp, (str, os.PathLike)):
            Path(fp).write_bytes(data)
        else:
            fp.write(data)
        raise exception

    return save_half


@pytest.mark.parametrize("failure", ["interrupt", "disk full"])
def test_a_failed_save_keeps_the_previous_result(tmp_path, monkeypatch, failure):
    """Defect 3: the result was written in place, so Ctrl-C mid-save left a truncated file."""
    from sscn.apps.colorize import save_image

    out = tmp_path / "result.png"
    save_image(torch.from_numpy(photo()).permute(2, 0, 1), out)
    before = out.read_bytes()
    exception = KeyboardInterrupt() if failure == "interrupt" else OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", _save_half_then(exception))
    with pytest.raises(type(exception)):
        save_image(torch.from_numpy(photo(seed=9)).permute(2, 0, 1), out)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # no temporary file left


SIGTERM_DURING_SAVE = """
import os, signal, sys
from PIL import Image
from sscn.apps.cli import main

real_save = Image.Image.save
def save_then_terminate(self, fp, *args, **kwargs):
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "wb") as handle:
            handle.write(b"half a file")
    else:
        fp.write(b"half a file")
    os.kill(os.getpid(), signal.SIGTERM)
    real_save(self, fp, *args, **kwargs)
Image.Image.save = save_then_terminate
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("earlier", [None, b"the previous result"], ids=["new file", "earlier result, --overwrite"])
def test_sigterm_during_save_keeps_the_previous_result(tmp_path, model_file, photos, earlier):
    """Defect 3: SIGTERM mid-save left a truncated file where the previous result was (or a new one)."""
    out = tmp_path / "out" / "result.png"
    out.parent.mkdir()
    if earlier is not None:
        out.write_bytes(earlier)
    env = subprocess_env()
    argv = _colorize_argv(photos["target"], photos["reference"], model_file, out, *(["--overwrite"] if earlier else []))
    result = subprocess.run([sys.executable, "-c", SIGTERM_DURING_SAVE, *map(str, argv)],
                            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 128 + 15, result.stderr
    assert result.stderr.strip() == "sscn colorize: terminated"
    assert [p.name for p in out.parent.iterdir()] == ([] if earlier is None else ["result.png"])
    assert earlier is None or out.read_bytes() == earlier


@pytest.mark.parametrize("suffix, side, limit", [(".jpg", 65_501, "65,500"), (".webp", 16_384, "16,383")])
def test_a_result_too_wide_for_its_format_is_refused_before_work(capsys, tmp_path, model_file, photos, suffix, side,
                                                                  limit):
    """Defects 3 and 9: JPEG (65,500 px) and WebP (16,383 px) failed mid-write, with a traceback or two lines."""
    target = save(photo(2, side), tmp_path / "wide.png")
    out = tmp_path / f"out{suffix}"
    line = assert_one_line_error(capsys, _colorize_argv(target, photos["reference"], model_file, out),
                                 f"more than a .* file can hold \\({limit} px per side\\); write it as PNG or TIFF")
    assert "out.png" in line and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.png"]


# ------------------------------------------------------------------ evaluate: scores under the right names

def _corrupt_middle_png(path: Path) -> Path:
    """A PNG whose first and last bytes are intact (the dataset scan keeps it) but whose pixel data is garbage."""
    garble_middle(save(photo(40, 40, seed=7), path, format="PNG"))
    with pytest.raises(SSCNError, match="truncated or corrupt"):
        load_image(path)
    return path


def _per_image(out: Path) -> list[dict]:
    import csv

    with (out / "results_per_image.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_evaluate_never_scores_a_photo_under_a_corrupt_files_name(capsys, tmp_path):
    """Defect 4: the photo after a corrupt one was scored under both names, and the count was inflated."""
    data = tmp_path / "photos"
    (data / "cls").mkdir(parents=True)
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        save(photo(40, 40, seed=seed), data / "cls" / f"{name}.png")
    argv = ["evaluate", "--data", data, "--baselines-only", "--methods", "copy", "--kinds", "tps", "--size", "32",
            "--no-progress", "--out"]
    code, out, err = run_cli(capsys, [*argv, tmp_path / "clean"])
    assert code == 0, err
    _corrupt_middle_png(data / "cls" / "b.png")
    with pytest.warns(UserWarning, match="b.png .*left out of the scores"):
        code, out, err = run_cli(capsys, [*argv, tmp_path / "with-b"])
    assert code == 0, err
    assert out.splitlines()[-1].startswith("| copy | TPS |") and "| 2 | 0 | 32 |" in out.splitlines()[-1]
    clean, scored = _per_image(tmp_path / "clean"), _per_image(tmp_path / "with-b")
    # a and c keep their indices (hence their references) and their own scores; b is nowhere
    assert [(r["index"], r["name"], r["psnr"]) for r in scored] == [
        (r["index"], r["name"], r["psnr"]) for r in clean if r["name"] != "b"]


# ------------------------------------------------------------------ stale data and shared folders

def test_a_reused_save_pairs_folder_holds_only_the_new_pairs(capsys, tmp_path):
    """Defect 5: old ground-truth PNGs stayed beside the new references."""
    pairs = tmp_path / "pairs"
    for run, seeds in (("first", (1, 2, 3)), ("second", (4, 5))):
        data = tmp_path / run
        (data / "cls").mkdir(parents=True)
        for i, seed in enumerate(seeds):
            save(photo(40, 40, seed=seed), data / "cls" / f"{i}.png")
        code, _, err = run_cli(capsys, ["evaluate", "--data", data, "--baselines-only", "--methods", "gray",
                                        "--kinds", "tps", "--size", "32", "--no-progress", "--save-pairs", pairs])
        assert code == 0, err
    for folder in ("ground_truth", "target_gray", "reference_tps"):
        assert sorted(p.name for p in (pairs / folder).iterdir()) == ["00000.png", "00001.png"], folder
    from sscn.io.data import ImageFolder

    with Image.open(pairs / "ground_truth" / "00000.png") as image:
        truth = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    expected = (ImageFolder(tmp_path / "second", size=32)[0]["rgb"] * 255).round()
    assert torch.equal(truth.float(), expected)
    assert (pairs / "saved_pairs.csv").read_text().count("\n") == 3  # the header and this run's two pairs


def test_a_training_with_nothing_to_resume_starts_a_fresh_log(tmp_path, train_folder):
    """Defect 5: with no last.pt, a new run appended to the old metrics.jsonl (steps 1-6, then 1-3)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 7)))
    config = _train_config(train_folder, out)
    config.steps = 3
    train(config, progress=False)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_second_training_on_a_busy_folder_is_refused(tmp_path, train_folder):
    """Defect 5: two trainings on one out_dir both ran and interleaved one log."""
    import threading

    out = tmp_path / "run"
    first_logged, release = threading.Event(), threading.Event()
    failures = []

    def hold(record):  # the first run waits at its first log line while the second one starts
        first_logged.set()
        release.wait(300)

    def first_run():
        try:
            train(_train_config(train_folder, out), progress=False, on_log=hold)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            first_logged.set()

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert first_logged.wait(300) and not failures, failures
        with pytest.raises(SSCNError, match="out_dir .* is in use by another run; wait for it to finish"):
            train(_train_config(train_folder, out), progress=False)
    finally:
        release.set()
        thread.join(300)
    assert not failures, failures
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, KILL_STEPS + 1))
    train(_train_config(train_folder, out), progress=False)  # the folder is free again once the run ends


def test_an_out_dir_inside_the_data_is_refused(capsys, tmp_path, train_folder):
    """Defect 10: an out_dir inside the data folder became an extra, empty class."""
    data = tmp_path / "data"
    shutil.copytree(train_folder, data)
    argv = ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", data, "--out-dir", data / "runs"]
    assert_one_line_error(capsys, argv, "out_dir .* is inside data_dir .*, where it would be read as a class")
    assert not (data / "runs").exists()
    assert_one_line_error(capsys, ["evaluate", "--data", data, "--baselines-only", "--size", "32", "--no-progress",
                                   "--save-pairs", data / "pairs"], "--save-pairs .* is inside --data")


# ------------------------------------------------------------------ checkpoint configs and weights

def _edited_checkpoint(model_file: Path, path: Path, config=None, scale=None) -> Path:
    ckpt = torch.load(model_file, weights_only=True)
    if config is not None:
        ckpt["config"] = config(dict(ckpt["config"]))
    if scale is not None:
        ckpt["model"] = {name: (v * scale if v.is_floating_point() else v) for name, v in ckpt["model"].items()}
    torch.save(ckpt, path)
    return path


BAD_CONFIGS = {
    "chunk_size 0": (lambda c: {**c, "chunk_size": 0}, "config chunk_size = 0, which must be a whole number >= 1"),
    "config a string": (lambda c: "abc", "has a config of type str, not a dict"),
    "width a string": (lambda c: {**c, "width": "0.25"}, "config width = '0.25', which must be a number in"),
    "k 2.5": (lambda c: {**c, "k": 2.5}, "config k = 2.5, which must be a whole number >= 0"),
    "temperature -1": (lambda c: {**c, "temperature": -1.0}, "config temperature = -1.0, which must be a number > 0"),
    "width 100": (lambda c: {**c, "width": 100}, r"config width = 100, which must be a number in \(0, 4\]"),
    "dense 1": (lambda c: {**c, "dense": 1}, "config dense = 1, which must be True or False"),
    "width nan": (lambda c: {**c, "width": math.nan}, "config width = nan"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_checkpoint_config_is_checked_before_the_model_is_built(capsys, tmp_path, model_file, photos, case):
    """Defect 6: wrong types or ranges in a checkpoint's config gave tracebacks (or a 94 GB allocation)."""
    edit, match = BAD_CONFIGS[case]
    path = _edited_checkpoint(model_file, tmp_path / "bad.pt", config=edit)
    with pytest.raises(SSCNError, match=match):
        load_model(path)
    assert_one_line_error(capsys, _colorize_argv(photos["target"], photos["reference"], path, tmp_path / "out.png"),
                          match)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("command", ["evaluate", "demo", "train --init-from"])
def test_a_bad_checkpoint_config_is_one_line_in_every_command(capsys, tmp_path, model_file, train_folder, command):
    path = _edited_checkpoint(model_file, tmp_path / "bad.pt", config=lambda c: {**c, "chunk_size": 0})
    argv = {"evaluate": ["evaluate", "--checkpoint", path, "--size", "32", "--limit", "1", "--kinds", "tps",
                         "--methods", "sparse", "--no-progress"],
            "demo": ["demo", "--checkpoint", path, "--size", "32", "-o", tmp_path / "demo.png"],
            "train --init-from": ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder,
                                  "--out-dir", tmp_path / "run", "--init-from", path]}[command]
    assert_one_line_error(capsys, argv, "config chunk_size = 0")


def test_a_config_larger_than_its_weights_allocates_nothing(tmp_path, model_file, monkeypatch):
    """Defect 6: the loader built the whole network of the config before comparing any shape."""
    path = _edited_checkpoint(model_file, tmp_path / "wide.pt", config=lambda c: {**c, "width": 4.0})
    built = []
    real_init = SSCN.__init__

    def record(self, config=None):
        real_init(self, config)
        built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(SSCN, "__init__", record)
    with pytest.raises(SSCNError, match="does not fit this network"):
        load_model(path)
    assert built == ["meta"]  # shapes compared on the meta device; no real width-4 network was made


@pytest.mark.parametrize("scale, match", [(math.nan, "NaN or infinite weights"), (1e30, "output is not finite")])
def test_broken_weights_are_an_error_not_a_black_image(capsys, tmp_path, model_file, photos, scale, match):
    """Defect 6: NaN or 1e30 weights gave an all-black image with exit code 0."""
    path = _edited_checkpoint(model_file, tmp_path / "broken.pt", scale=scale)
    assert_one_line_error(capsys, _colorize_argv(photos["target"], photos["reference"], path, tmp_path / "out.png"),
                          match)
    assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------ checkpoint files that are not files

class _FifoRelease:
    """Opens a FIFO's writing end now and then, so a reader that blocks on it (the code before
    the fix) gets an end of file instead of hanging the test."""

    def __init__(self, fifo: Path):
        import threading

        self.fifo, self.stop = fifo, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(0.2):
            try:
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # nobody reads it (ENXIO)
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("kind", ["/dev/null", "/dev/zero", "FIFO", "pipe"])
@pytest.mark.parametrize("role", ["checkpoint", "target"])
def test_only_regular_files_are_read(capsys, tmp_path, model_file, photos, kind, role):
    """Defect 7: /dev/zero was read until the kernel killed the process, a FIFO hung, a pipe was "corrupt"."""
    if not Path("/dev/null").exists() or not hasattr(os, "mkfifo"):
        pytest.skip("needs a POSIX system")
    read_end = None
    if kind == "FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif kind == "pipe":
        read_end, write_end = os.pipe()
        os.close(write_end)
        path = Path(f"/proc/self/fd/{read_end}")
        if not path.exists():
            pytest.skip("no /proc/self/fd")
    else:
        path = Path(kind)
    files = {"checkpoint": model_file, "target": photos["target"], role: path}
    try:
        with _FifoRelease(path) if kind == "FIFO" else contextlib.nullcontext():
            assert_one_line_error(capsys, _colorize_argv(files["target"], photos["reference"], files["checkpoint"],
                                                         tmp_path / "out.png"),
                                  "(image|checkpoint) .* is a (character device|named pipe), not a file; "
                                  "pass a regular file")
    finally:
        if read_end is not None:
            os.close(read_end)


def test_a_checkpoint_with_a_huge_compressed_record_is_refused_unread(tmp_path, model_file, monkeypatch):
    """Defect 8: the checksum check decompressed records torch never loads (4 GiB: 16 s of CPU)."""
    path = tmp_path / "padded.pt"
    shutil.copy(model_file, path)
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0]
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{prefix}/extra/blob", "w", force_zip64=True) as record:
            for _ in range(3 * model_file.stat().st_size // (1 << 20) + 8):  # zeros: a few kB compressed
                record.write(bytes(1 << 20))
    assert path.stat().st_size < model_file.stat().st_size + (1 << 20)
    assert torch.load(path, weights_only=True).keys() == torch.load(model_file, weights_only=True).keys()
    reads = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: reads.append(name) or real_open(
        self, name, *a, **k))
    with pytest.raises(SSCNError, match="records that expand to .* MB in a file of .* MB"):
        read_checkpoint(path)
    assert not reads  # refused from the directory alone, before any record is decompressed


# ------------------------------------------------------------------ one line, always

def test_a_file_name_stdout_cannot_encode(capsys, tmp_path, model_file, photos, monkeypatch):
    """Defect 9: the result was written, then printing its name raised (exit code 1)."""
    out = tmp_path / "résultat.png"
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main([str(a) for a in _colorize_argv(photos["target"], photos["reference"], model_file, out)])
    stdout.flush()
    printed = stdout.buffer.getvalue().decode("ascii")
    assert code == 0 and out.exists()
    assert printed.startswith("wrote ") and "r\\xe9sultat.png" in printed


def test_ctrl_c_during_start_up_is_one_line(capsys, monkeypatch):
    """Defect 9: Ctrl-C while the parser imported torch gave a traceback."""
    import sscn.apps.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(sscn.apps.cli, "build_parser", interrupted)
    try:
        code = main(["colorize", "a.png", "b.png"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped sscn.apps.cli.main")
    assert code == 130 and capsys.readouterr().err == "sscn: interrupted\n"


@pytest.mark.parametrize("argv, match", [
    (["train", "--device", "cuda:abc"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["evaluate", "--device", "meta"], "--device 'meta' is not a device sscn runs on"),
    (["evaluate", "--device", "mps"], "--device mps: no Apple GPU"),
    (["evaluate", "--device", "cuda:x"], "--device 'cuda:x' is not a device"),
])
def test_bad_devices_are_one_line(capsys, tmp_path, train_folder, model_file, argv, match):
    """Defect 9: ``train --device cuda:abc`` and ``evaluate --device meta`` (or mps) gave tracebacks."""
    import torch.backends.mps

    if "mps" in argv and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    extra = {"train": [*TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder, "--out-dir", tmp_path / "run"],
             "evaluate": ["--data", train_folder, "--checkpoint", model_file, "--size", "32", "--no-progress"]}
    assert_one_line_error(capsys, [argv[0], *extra[argv[0]], *argv[1:]], match)


@pytest.mark.parametrize("role", ["target", "checkpoint"])
def test_no_permission_is_reported_as_such_not_as_corrupt(capsys, tmp_path, model_file, photos, monkeypatch, role):
    """Defect 9: a file the user may not read was called corrupt ("re-download it")."""
    import builtins

    files = {"target": photos["target"], "checkpoint": model_file}
    refused = str(files[role])
    real_open, real_os_open = builtins.open, os.open

    def guard(name):
        if str(name) == refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), refused)

    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: guard(file) or real_open(file, *a, **k))
    monkeypatch.setattr(os, "open", lambda file, *a, **k: guard(file) or real_os_open(file, *a, **k))
    line = assert_one_line_error(capsys, _colorize_argv(files["target"], photos["reference"], files["checkpoint"],
                                                        tmp_path / "out.png"), "Permission denied", code=1)
    assert refused in line and "corrupt" not in line


# ------------------------------------------------------------------ wrong output without a warning, limits

def _tiff(path, array) -> Path:
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize("case, match", [
    ("32-bit integer", "32-bit integer image with values from .* beyond 16 bits"),
    ("float in 0..255", "holds float values up to 2.*, but float images must be in \\[0, 1\\]; divide by 255"),
])
def test_out_of_range_tiffs_are_refused_not_white(capsys, tmp_path, model_file, photos, case, match):
    """Defect 10: a 32-bit integer TIFF, or a float TIFF in 0..255, came out all white."""
    rng = np.random.default_rng(0)
    if case == "32-bit integer":
        path = _tiff(tmp_path / "deep.tif", rng.integers(0, 2**31 - 1, (48, 64)).astype(np.int32))
    else:
        path = _tiff(tmp_path / "float.tif", (rng.random((48, 64)) * 255).astype(np.float32))
    with pytest.raises(SSCNError, match=match):
        load_image(path)
    assert_one_line_error(capsys, _colorize_argv(path, photos["reference"], model_file, tmp_path / "out.png"), match)


def test_tiffs_in_range_still_work(tmp_path):
    """Only what cannot be read right is refused: 0..65535 in 32 bits works, and float a little over 1 is clipped."""
    ramp = np.arange(64 * 48, dtype=np.int32).reshape(48, 64) * 21
    assert torch.allclose(load_image(_tiff(tmp_path / "i.tif", ramp))[0], torch.from_numpy(ramp / 65535).float())
    values = np.random.default_rng(0).random((48, 64)).astype(np.float32) * 1.05
    assert load_image(_tiff(tmp_path / "f.tif", values)).max() == 1


def test_float_tensors_in_0_255_are_refused(model_file):
    """Defect 10: float tensors in 0..255 passed to the Python API were not range-checked."""
    model = load_model(model_file)
    rgb = torch.from_numpy(photo()).permute(2, 0, 1).float()
    with pytest.raises(SSCNError, match="target_rgb holds float values up to .*; divide by 255"):
        colorize(model, rgb, rgb / 255, size=32)
    with pytest.raises(SSCNError, match="ref_rgb holds float values up to"):
        colorize(model, rgb / 255, rgb, size=32)
    assert colorize(model, rgb / 255, (rgb / 255 * 1.05), size=32).rgb.shape == (3, 48, 64)  # overshoot: clipped


@pytest.mark.parametrize("command", ["colorize", "evaluate", "demo"])
def test_the_working_size_has_an_upper_bound(capsys, tmp_path, model_file, photos, command):
    """Defect 10: ``--size 65536`` ended in a MemoryError traceback."""
    argv = {"colorize": _colorize_argv(photos["target"], photos["reference"], model_file, tmp_path / "out.png"),
            "evaluate": ["evaluate", "--checkpoint", model_file, "--no-progress", "--limit", "1"],
            "demo": ["demo", "--checkpoint", model_file, "-o", tmp_path / "demo.png"]}[command]
    assert_one_line_error(capsys, [*argv, "--size", "65536"], "--size must be at most 2048")


def test_images_over_the_pixel_limit_are_refused_and_the_limit_can_be_raised(capsys, tmp_path, model_file, photos):
    """Defect 10: Pillow only warns between its limit and twice it; a 0.65 MB PNG decoded to 96 megapixels (2.7 GB)."""
    path = bomb(tmp_path / "big.png", side=9800)  # 96 million pixels, over the 89.5 million limit, under twice it
    with pytest.raises(SSCNError, match=r"9800 x 9800 = 96,040,000 pixels, over the limit of 89,478,485"):
        load_image(path)
    argv = _colorize_argv(path, photos["reference"], model_file, tmp_path / "out.png")
    assert_one_line_error(capsys, argv, "too large to open safely .*raise the limit \\(sscn colorize --max-pixels")
    # with a higher limit the header passes, and the (fake) pixel data is what fails
    assert_one_line_error(capsys, [*argv, "--max-pixels", "100000000"], "truncated or corrupt")
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the command's limit does not outlive it


# ------------------------------------------------------------------ 16-bit and ICC profiles (decided, documented)

def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_profile(description: str = "red and green swapped") -> bytes:
    """A minimal ICC v2 RGB profile (matrix and gamma 2.2) whose red and green primaries are
    sRGB's swapped: pure red stored in a file with it is shown as pure green."""
    xyz = lambda v: b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)  # noqa: E731
    text = description.encode() + b"\0"
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 79),
            (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
            (b"rXYZ", xyz((0.3850649, 0.7168786, 0.0971045))),  # sRGB's green (D50)
            (b"gXYZ", xyz((0.4360747, 0.2225045, 0.0139322))),  # sRGB's red
            (b"bXYZ", xyz((0.1430804, 0.0606169, 0.7141733))),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    table, data, offset = b"", b"", 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = struct.pack(">I4sI4s4s4s12s4s4sIII8sI12s4s44s", offset + len(data), b"", 0x02100000, b"mntr", b"RGB ",
                         b"XYZ ", b"\0" * 12, b"acsp", b"", 0, 0, 0, b"", 0, _s15(0.9642) + _s15(1.0) + _s15(0.8249),
                         b"", b"")
    return header + struct.pack(">I", len(tags)) + table + data


def test_an_icc_profile_is_converted_to_srgb(tmp_path):
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    for suffix in (".png", ".jpg", ".tif"):
        path = save(red, tmp_path / f"profiled{suffix}", icc_profile=rgb_profile())
        rgb = load_image(path)[:, 4, 4]
        assert rgb[1] > 0.9 and rgb[0] < 0.1 and rgb[2] < 0.1, (suffix, rgb)  # shown green, as the profile says


@pytest.mark.parametrize("profile", ["describes itself as sRGB", "unreadable"])
def test_srgb_and_unreadable_profiles_keep_the_pixels(tmp_path, profile):
    icc = rgb_profile("sRGB IEC61966-2.1 (edited)") if profile.startswith("describes") else b"not a profile" * 20
    path = save(photo(), tmp_path / "p.png", icc_profile=icc)
    assert torch.equal(load_image(path), torch.from_numpy(photo()).permute(2, 0, 1).float() / 255)


def test_16_bit_colour_is_reduced_to_8_bits_and_16_bit_gray_kept(tmp_path):
    deep = (np.random.default_rng(0).integers(0, 65536, (8, 8, 3))).astype(np.uint16)
    rgb = load_image(png16(tmp_path / "rgb16.png", deep))
    assert torch.equal(rgb, torch.from_numpy((deep >> 8).astype(np.float32) / 255).permute(2, 0, 1))
    gray = load_image(png16(tmp_path / "gray16.png", deep[..., :1]))
    assert torch.allclose(gray[0], torch.from_numpy(deep[..., 0] / 65535).float())
