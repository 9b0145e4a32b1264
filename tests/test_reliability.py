"""Reliability and safety: bad inputs end in one line on stderr and exit code 2 (never a
traceback), odd but valid images work, checkpoints are checked and saved atomically, and
a training run killed at any step resumes to the same weights as an uninterrupted one.

Everything runs a tiny random network (width 0.125) at a 32 px working size.
"""
import errno
import io
import json
import math
import os
import re
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

from sscn.checkpoint import load_model, read_checkpoint, save_atomic
from sscn.cli import main
from sscn.colorize import colorize
from sscn.data import load_image
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
TINY = SSCNConfig(width=0.125, k=8, r=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def photo(height=48, width=64, seed=0) -> np.ndarray:
    """A colourful ``H x W x 3`` uint8 picture (smooth colour ramps plus noise)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    ramps = np.stack((xs / max(width - 1, 1), ys / max(height - 1, 1), 1 - xs / max(width - 1, 1)), -1) * 200
    return np.clip(ramps + rng.integers(0, 56, (height, width, 3)), 0, 255).astype(np.uint8)


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


def run_cli(capsys, argv):
    """``sscn.cli.main(argv)`` -> (exit code, stdout, stderr); argparse's exits are caught."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, argv, match, code=2, prefix=None) -> str:
    """The command fails with ``code`` and exactly one stderr line ``sscn CMD: error: ...`` matching ``match``."""
    got, _, err = run_cli(capsys, argv)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert got == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix or f"sscn {argv[0]}: error: "), lines[0]
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = SSCN(TINY)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_atomic({"model": model.state_dict(), "config": model.config.to_dict()}, path)
    return path


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
    import sscn.colorize

    def full(rgb, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sscn.colorize, "save_image", full)
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
              "--seed", "0", "--no-amp"]


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
    ("amp", 1), ("beta1", "0.9"), ("beta2", 1.0), ("w_fine", math.nan), ("w_cls", -0.1), ("violent_share", math.nan),
    ("out_dir", 7), ("grad_clip", math.nan),
])
def test_train_config_names_the_bad_field(field, value):
    """As papermill passes them: a wrong type or an out-of-range value names its field."""
    with pytest.raises(SSCNError, match=rf"^training parameter {field} must"):
        TrainConfig(**{field: value}).validate()


def test_python_m_sscn_train_prints_one_line(capsys, tmp_path):
    from sscn.train import main as train_main

    argv = ["--data-dir", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "run"), "--device", "cpu"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sscn train: error: image folder")


# ------------------------------------------------------------------ a training run killed at any step

KILL_STEPS = 12


def _train_config(data_dir: Path, out_dir: Path) -> TrainConfig:
    return TrainConfig(data_dir=str(data_dir), out_dir=str(out_dir), image_size=32, width=0.125, batch_size=2,
                       steps=KILL_STEPS, k=4, r=4, num_workers=0, val_images=2, val_every=1000, log_every=1,
                       ckpt_every=1, device="cpu", seed=0, amp=False)


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
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "sscn.train", "--data-dir", str(train_folder), "--out-dir", str(out),
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
