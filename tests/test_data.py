"""Image loading, image-folder datasets, sample photos, the Imagenette download (sscn.io.data)."""
import hashlib
import io
import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.io import data
from sscn.io.data import (IMAGENETTE_CLASSES, SAMPLE_NAMES, SAMPLE_PAIRS, ImageFolder, download_imagenette,
                       imagenette_folder, is_gray, item_seed, load_image, resize_center_crop, sample_photos)
from sscn.errors import SSCNError

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE = Path(os.environ.get("SSCN_DATA", ROOT / ".." / "shared" / "data" / "imagenette-144"))
needs_imagenette = pytest.mark.skipif(not (IMAGENETTE / "train").is_dir(),
                                      reason="imagenette-144 not found (set SSCN_DATA)")


def photo(height=20, width=28, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def jpeg_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path):
    """Two classes, five good images (JPEG and PNG, one of them 16 x 40) and one corrupt file."""
    root = tmp_path / "photos"
    for name, files in {"n01440764": 3, "n03028079": 2}.items():
        (root / name).mkdir(parents=True)
        for i in range(files):
            array = photo(16, 40, i) if (name, i) == ("n03028079", 1) else photo(seed=10 * i + len(name))
            Image.fromarray(array).save(root / name / f"img{i}.{'png' if i % 2 else 'jpg'}")
    (root / "n03028079" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (root / "n03028079" / "notes.txt").write_text("not an image, ignored by extension")
    return root


# ------------------------------------------------------------------ load_image


def test_load_rgb_jpeg_and_png(tmp_path):
    array = photo()
    Image.fromarray(array).save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert rgb.shape == (3, 20, 28) and rgb.dtype == torch.float32
    assert torch.allclose(rgb, torch.from_numpy(array).permute(2, 0, 1) / 255)
    (tmp_path / "b.jpg").write_bytes(jpeg_bytes(array))
    assert load_image(tmp_path / "b.jpg").shape == (3, 20, 28)


def test_load_modes(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    rgb = load_image(tmp_path / "rgba.png")
    assert torch.allclose(rgb[:, 0, 0], torch.tensor([1.0, 0, 0])) and torch.allclose(rgb[:, 3, 0], torch.ones(3))

    Image.fromarray(photo()).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").shape == (3, 20, 28)
    palette = Image.fromarray(rgba, "RGBA").convert("P")
    palette.save(tmp_path / "palette_alpha.gif", transparency=palette.getpixel((0, 3)))
    assert torch.allclose(load_image(tmp_path / "palette_alpha.gif")[:, 3, 0], torch.ones(3))

    Image.fromarray(photo()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert load_image(tmp_path / "cmyk.jpg").shape == (3, 20, 28)

    gray = load_image(_save(Image.fromarray(photo()[..., 0]), tmp_path / "gray.png"))
    assert gray.shape == (3, 20, 28) and torch.equal(gray[0], gray[2])
    la = Image.fromarray(photo()[..., 0]).convert("LA")
    assert load_image(_save(la, tmp_path / "la.png")).shape == (3, 20, 28)


def _save(img, path):
    img.save(path)
    return path


def test_load_16_bit_png(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    rgb = load_image(tmp_path / "deep.png")
    assert rgb.shape == (3, 1, 3)
    assert torch.allclose(rgb[0, 0], torch.tensor([0.0, 32768 / 65535, 1.0]), atol=1e-6)


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file"),
    ("folder", "is a folder"),
    ("empty", "empty"),
    ("text", "not an image"),
    ("truncated", "truncated or corrupt"),
])
def test_load_errors_name_the_file(tmp_path, case, match):
    path = tmp_path / f"{case}.jpg"
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello")
    elif case == "truncated":
        path.write_bytes(jpeg_bytes(photo(64, 64))[:300])
    with pytest.raises(SSCNError, match=match) as info:
        load_image(path)
    assert path.name in str(info.value)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(photo(40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above twice the limit
    with pytest.raises(SSCNError, match="MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "big.png")


def test_is_gray():
    gray = torch.rand(1, 16, 16).expand(3, -1, -1)
    assert is_gray(gray) and is_gray(gray + 0.01 * torch.rand(3, 16, 16))
    assert not is_gray(torch.rand(3, 16, 16))
    assert is_gray(torch.stack((gray, torch.rand(3, 16, 16)))).tolist() == [True, False]


@pytest.mark.parametrize("size, shape", [(16, (16, 16)), ((12, 30), (12, 30)), ((20, 28), (20, 28))])
def test_resize_center_crop(size, shape):
    rgb = torch.rand(3, 20, 28)
    out = resize_center_crop(rgb, size)
    assert out.shape == (3, *shape)
    pil = resize_center_crop(Image.fromarray(photo()), size)
    assert pil.size == shape[::-1]
    assert resize_center_crop(torch.rand(2, 3, 20, 28), size).shape == (2, 3, *shape)


def test_resize_center_crop_keeps_the_centre():
    # a picture that is gray with a white centre column stays centred after the crop
    rgb = torch.zeros(3, 20, 40)
    rgb[..., 19:21] = 1
    out = resize_center_crop(rgb, 10)
    assert out.shape == (3, 10, 10) and out[0, 5].argmax() in (4, 5)


# --------------------------------------------------------------------- dataset


def test_folder_serves_items_and_skips_the_corrupt_file(folder):
    with pytest.warns(UserWarning, match="skipped 1 unreadable") as record:
        dataset = ImageFolder(folder, size=16)
    assert len(record) == 1 and "broken.jpg" in str(record[0].message)
    assert len(dataset) == 5 and dataset.classes == ["n01440764", "n03028079"]
    assert dataset.class_names == ["tench", "church"] and dataset.labels == [0, 0, 0, 1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = [dataset[i] for i in range(len(dataset))]
    item = items[-1]
    assert set(item) == {"gray_l", "ab", "rgb", "label", "index"}
    assert item["gray_l"].shape == (1, 16, 16) and item["ab"].shape == (2, 16, 16) and item["rgb"].shape == (3, 16, 16)
    assert item["label"].dtype == torch.int64 and int(item["label"]) == 1 and item["index"] == 4
    assert item["gray_l"].min() >= -1 and item["gray_l"].max() <= 1 and 0 <= item["rgb"].min() <= item["rgb"].max() <= 1
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=5)))
    assert batch["gray_l"].shape == (5, 1, 16, 16) and batch["label"].tolist() == [0, 0, 0, 1, 1]


def test_truncated_file_is_skipped_when_the_folder_is_read(tmp_path):
    root = tmp_path / "set"
    (root / "a").mkdir(parents=True)
    (root / "a" / "good.jpg").write_bytes(jpeg_bytes(photo(32, 32)))
    (root / "a" / "cut.jpg").write_bytes(jpeg_bytes(photo(64, 64, 1))[:400])
    (root / "a" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable image file\\(s\\) of 3"):
        dataset = ImageFolder(root, size=8)
    assert len(dataset) == 1


def test_jpeg_with_trailing_bytes_is_kept(tmp_path):
    (tmp_path / "set" / "a").mkdir(parents=True)
    (tmp_path / "set" / "a" / "tail.jpg").write_bytes(jpeg_bytes(photo()) + b"camera trailer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ImageFolder(tmp_path / "set", size=8)) == 1


def test_file_that_fails_later_is_replaced_by_the_next(folder):
    with pytest.warns(UserWarning):
        dataset = ImageFolder(folder, size=16)
    dataset.samples[1][0].write_bytes(b"")  # the file breaks after the dataset was built
    with pytest.warns(UserWarning, match="serving the next readable image"):
        item = dataset[1]
    assert torch.equal(item["rgb"], dataset[2]["rgb"]) and item["index"] == 1
    assert dataset.failed == [dataset.samples[1][0]]


@pytest.mark.parametrize("kind", ["tps", "rotation", "crop"])
def test_references_are_the_same_every_time(folder, kind):
    with pytest.warns(UserWarning):
        first = ImageFolder(folder, size=16, reference=kind, seed=3)
    with pytest.warns(UserWarning):
        second = ImageFolder(folder, size=16, reference=kind, seed=3)
    with pytest.warns(UserWarning):
        other_seed = ImageFolder(folder, size=16, reference=kind, seed=4)
    ref = first[2]["ref_lab"]
    assert ref.shape == (3, 16, 16)
    assert torch.equal(ref, first[2]["ref_lab"]) and torch.equal(ref, second[2]["ref_lab"])
    assert not torch.equal(ref, other_seed[2]["ref_lab"])
    unwarped = torch.cat((first[2]["gray_l"], first[2]["ab"]))
    assert (ref - unwarped).abs().max() > 1e-3
    assert item_seed(3, 2) != item_seed(3, 3) != item_seed(4, 2)


def test_limit_takes_evenly_spaced_items(folder):
    with pytest.warns(UserWarning):
        dataset = ImageFolder(folder, size=8, limit=2)
    assert len(dataset) == 2 and dataset.labels == [0, 1]


@pytest.mark.parametrize("layout, match", [
    ("missing", "does not exist"),
    ("empty", "no images"),
    ("loose", "no class sub-folders"),
    ("splits", "pass .*train"),
])
def test_folder_layout_errors_explain_the_layout(tmp_path, layout, match):
    root = tmp_path / "root"
    if layout != "missing":
        root.mkdir()
    if layout == "loose":
        Image.fromarray(photo()).save(root / "a.png")
    if layout == "splits":
        (root / "train" / "n01440764").mkdir(parents=True)
        (root / "val").mkdir()
        Image.fromarray(photo()).save(root / "train" / "n01440764" / "a.png")
    with pytest.raises(SSCNError, match=match) as info:
        ImageFolder(root)
    assert "root/<class>/<image>.jpg" in str(info.value)


def test_bad_dataset_arguments(folder):
    with pytest.raises(SSCNError, match="reference"):
        ImageFolder(folder, reference="flip")
    with pytest.raises(SSCNError, match="split"):
        imagenette_folder(folder.parent, split="test")
    with pytest.raises(SSCNError, match="no train/ folder"):
        imagenette_folder(folder)


def test_imagenette_folder_on_a_tiny_copy(folder):
    (folder.parent / "train").symlink_to(folder, target_is_directory=True)
    with pytest.warns(UserWarning):
        dataset = imagenette_folder(folder.parent, "train", size=8, reference="tps")
    assert len(dataset) == 5 and dataset[0]["ref_lab"].shape == (3, 8, 8)


@needs_imagenette
def test_real_imagenette_144():
    train, val = imagenette_folder(IMAGENETTE, "train"), imagenette_folder(IMAGENETTE, "val", reference="tps")
    assert (len(train), len(val)) == (4000, 1500)
    assert train.classes == sorted(IMAGENETTE_CLASSES) and train.class_names == list(IMAGENETTE_CLASSES.values())
    assert np.bincount(train.labels).tolist() == [400] * 10
    item = val[0]
    assert item["rgb"].shape == (3, 128, 128) and item["ref_lab"].shape == (3, 128, 128)


# --------------------------------------------------------------- sample photos


def test_sample_photos():
    photos = sample_photos(size=32, names=("chelsea", "coffee", "motorcycle"))
    assert [name for name, _ in photos] == ["chelsea", "coffee", "motorcycle"]
    for _, rgb in photos:
        assert rgb.shape == (3, 32, 32) and 0 <= rgb.min() and rgb.max() <= 1 and not is_gray(rgb)
    full = dict(sample_photos(names=("chelsea",)))
    assert full["chelsea"].shape == (3, 300, 451)
    assert {name for pair in SAMPLE_PAIRS for name in pair} <= set(SAMPLE_NAMES)
    with pytest.raises(SSCNError, match="no sample photo"):
        sample_photos(names=("camera",))


# ------------------------------------------------------------------- download


def make_archive(tmp_path, members=None):
    """A tiny imagenette2-160.tgz with one image per split; returns (path, sha256)."""
    archive = tmp_path / "source" / "imagenette2-160.tgz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in (members or {
            "imagenette2-160/train/n01440764/a.JPEG": jpeg_bytes(photo()),
            "imagenette2-160/val/n01440764/b.JPEG": jpeg_bytes(photo(seed=1)),
        }).items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_checks_extracts_and_skips(tmp_path):
    archive, sha = make_archive(tmp_path)
    dest = tmp_path / "data"
    root = download_imagenette(dest, url=archive.as_uri(), sha256=sha, md5=None, progress=False)
    assert root == dest / "imagenette2-160"
    assert len(imagenette_folder(root, "train", size=8)) == 1 and len(imagenette_folder(root, "val", size=8)) == 1
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract")]
    archive.unlink()  # from now on a download attempt would fail
    assert download_imagenette(dest, url=archive.as_uri(), sha256=sha, md5=None, progress=False) == root
    # archive present with the right hash, extraction missing: extract without downloading
    (dest / "imagenette2-160").rename(tmp_path / "moved")
    assert download_imagenette(dest, url=archive.as_uri(), sha256=sha, md5=None, progress=False) == root
    assert (root / "train" / "n01440764" / "a.JPEG").is_file()


def test_download_checksum_mismatch(tmp_path):
    archive, _ = make_archive(tmp_path)
    dest = tmp_path / "data"
    with pytest.raises(SSCNError, match="does not match its checksum"):
        download_imagenette(dest, url=archive.as_uri(), sha256="0" * 64, md5=None, progress=False)
    assert not (dest / "imagenette2-160").exists() and not (dest / "imagenette2-160.tgz").exists()
    # the default checksum is Imagenette's own, so another archive fails it too
    with pytest.raises(SSCNError, match="checksum"):
        download_imagenette(dest, url=archive.as_uri(), progress=False)


def test_download_without_checksum_prints_the_sha256(tmp_path, capsys):
    archive, sha = make_archive(tmp_path)
    download_imagenette(tmp_path / "data", url=archive.as_uri(), sha256=None, md5=None, progress=False)
    assert sha in capsys.readouterr().out


def test_download_refuses_path_traversal(tmp_path):
    archive, sha = make_archive(tmp_path, {"imagenette2-160/../../evil.txt": b"gotcha"})
    dest = tmp_path / "data"
    with pytest.raises(SSCNError, match="outside"):
        download_imagenette(dest, url=archive.as_uri(), sha256=sha, md5=None, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "imagenette2-160").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract")]


def test_download_unreachable_url(tmp_path):
    with pytest.raises(SSCNError, match="could not download"):
        download_imagenette(tmp_path / "data", url=(tmp_path / "nothing.tgz").as_uri(), md5=None, progress=False)


def test_imagenette_constants():
    assert data.IMAGENETTE_URL.endswith("imagenette2-160.tgz") and len(data.IMAGENETTE_MD5) == 32
    assert len(IMAGENETTE_CLASSES) == 10
