"""Images in, tensors out: robust loading, image-folder datasets, the built-in sample
photos and the Imagenette download.

Every image becomes an sRGB float tensor ``3 x H x W`` in [0, 1]; datasets serve the
network's inputs (``gray_l``, ``ab``, normalised Lab, see ``sscn.color``) and, for
training and evaluation, a self-augmentation reference ``ref_lab`` (``sscn.augment``).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import struct
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..augment import ALL_REFERENCE_KINDS, make_reference
from ..color import rgb_to_lab_norm, split_lab
from ..errors import SSCNError
from .files import open_regular

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The only decoders Image.open may pick. Without the list Pillow picks one by the file's
# content, whatever its name: a PostScript file named photo.jpg would go to Ghostscript,
# an external program. (Pillow's JPEG decoder also opens MPO, the JPEG variant many cameras write.)
PIL_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
# Float images are read as 0..1. A little above 1 is clipped (a sharpened or bicubic-resized
# photo overshoots); far above 1 is 0..255 or 0..65535 data, which would come out all white.
FLOAT_OVERSHOOT = 0.1
UINT16_MAX = 65535

# The ten Imagenette classes (fast.ai), by ImageNet WordNet id.
IMAGENETTE_CLASSES = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}

IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz"
# The MD5 that torchvision's ``datasets.Imagenette`` checks for this archive. We know
# of no published SHA-256: with
# ``sha256=None`` the downloader relies on the MD5; pass ``sha256=`` to check one too.
IMAGENETTE_MD5 = "e793b78cc4c9e9a4ccc0c1155377a412"
IMAGENETTE_SHA256 = None


# ------------------------------------------------------------------- loading


def load_image(path) -> torch.Tensor:
    """Read an image file as sRGB float ``3 x H x W`` in [0, 1].

    Reads JPEG, PNG, BMP, GIF, TIFF and WebP only (``PIL_FORMATS``), whatever the file's
    name. Handles gray (L, 1), palette, CMYK, transparency (RGBA, LA, PA and palette
    transparency are composited on white), 16-bit gray (I;16, I, scaled from 0..65535),
    float gray in 0..1, EXIF orientation (a malformed EXIF block is ignored) and ICC
    profiles (converted to sRGB). Raises :class:`SSCNError` naming the file for a missing
    path, a folder, a device or pipe, an empty file, a file that is not such an image, a
    truncated image, values outside the range its type allows (32-bit integers above
    65535, floats far above 1) and an image over ``PIL.Image.MAX_IMAGE_PIXELS``.
    """
    return _to_tensor(decode_image(path))


def decode_image(path) -> Image.Image | torch.Tensor:
    """The file as an 8-bit RGB PIL image, or as a float tensor when it has more bits.

    A system refusal (no permission to read) stays an ``OSError``; see :func:`load_image`.
    """
    path = Path(path)
    if not path.exists():
        raise SSCNError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise SSCNError(f"{path} is a folder; pass an image file (for a folder of images use sscn.io.data.ImageFolder)")
    with open_regular(path, "image") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise SSCNError(f"{path} is empty (0 bytes); re-copy or re-download it")
        return _decode(handle, path)


def _decode(handle, path: Path) -> Image.Image | torch.Tensor:
    try:
        with warnings.catch_warnings():
            # refused below at the limit itself, rather than warned about up to twice the limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(handle, formats=PIL_FORMATS)  # reads from our handle, which decode_image closes
        _check_pixels(img, path)
        img.load()
        return to_rgb_image(_to_srgb(_orient(img)), str(path))
    except SSCNError:
        raise
    except Image.DecompressionBombError as err:
        raise SSCNError(f"{path} is too large to open safely ({err}); downscale it first, or if you trust the file "
                        "raise PIL.Image.MAX_IMAGE_PIXELS") from err
    except UnidentifiedImageError as err:
        raise SSCNError(f"{path} is not an image sscn reads; pass a JPEG, PNG, BMP, GIF, TIFF or WebP file") from err
    except (OSError, SyntaxError, ValueError, struct.error) as err:
        raise SSCNError(f"{path} could not be decoded ({err}); the file is truncated or corrupt, "
                        "re-copy or re-download it") from err


def _check_pixels(img: Image.Image, path: Path) -> None:
    """Refuse an image over ``PIL.Image.MAX_IMAGE_PIXELS`` before decoding it.

    Pillow itself only warns up to twice its limit, and a small PNG can decode to about
    180 megapixels, several GB of working memory.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:
        raise SSCNError(f"{path} is too large to open safely ({img.width} x {img.height} = "
                        f"{img.width * img.height:,} pixels, over the limit of {limit:,}); downscale it first, or if "
                        "you trust the file raise the limit (sscn colorize --max-pixels, or PIL.Image.MAX_IMAGE_PIXELS "
                        "in Python)")


# EXIF orientation -> the transpose that shows the photo upright (as ImageOps.exif_transpose)
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}


def _orient(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag by hand.

    ``ImageOps.exif_transpose`` also rewrites the EXIF block, which raises when any tag has
    the wrong type (real camera files do this) although the pixels are fine; only the
    orientation is needed here. A block that cannot be parsed at all counts as no tag.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF; the pixels do not depend on it
            orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many types on malformed blocks
        return img
    method = _ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None
    return img if method is None else img.transpose(method)


def _srgb_profile():
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert an image with an embedded ICC profile (Adobe RGB, Display P3, CMYK press
    profiles, ...) to sRGB, the space the network and the output files use.

    Profiles that describe themselves as sRGB are taken as they are. A profile LittleCMS
    cannot read, or one that does not fit the image's mode, is ignored (the pixels are used
    as stored, as every viewer without colour management shows them). 16-bit and float
    images are reduced to 8 bits for the conversion only when they carry a profile.
    """
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS
        return img
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower():
            return img
        source = _cms_mode(img)
        out_mode = "RGBA" if source.mode in ("RGBA", "LA") else "RGB"
        if source.mode == "LA":  # LittleCMS converts gray without alpha; the alpha goes back on after
            alpha = source.getchannel("A")
            converted = ImageCms.profileToProfile(source.convert("L"), profile, _srgb_profile(), outputMode="RGB")
            converted.putalpha(alpha)
            return converted
        return ImageCms.profileToProfile(source, profile, _srgb_profile(), outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img


def _cms_mode(img: Image.Image) -> Image.Image:
    """The image in a mode LittleCMS converts (RGB, RGBA, CMYK, L or LA)."""
    mode = img.mode
    if mode in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return img
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode == "PA":
        return img.convert("RGBA")
    if mode == "1":
        return img.convert("L")
    rgb = to_rgb_image(img)  # 16-bit or float gray: to 8 bits for the conversion
    if isinstance(rgb, torch.Tensor):
        return Image.fromarray(rgb[0].mul(255).round().byte().numpy())  # 2-D uint8: mode L
    return rgb


def check_float_range(high: float, name: str) -> None:
    """Refuse float pixel values far above 1: 0..255 (or 0..65535) data read as 0..1 is all white."""
    if high > 1 + FLOAT_OVERSHOOT:
        raise SSCNError(f"{name} holds float values up to {high:g}, but float images must be in [0, 1]; "
                        "divide by 255 (or 65535) first, or pass 8-bit (uint8) data")


def to_rgb_image(img: Image.Image, name: str = "the image") -> Image.Image | torch.Tensor:
    """A PIL image of any mode as an 8-bit RGB PIL image, or as a float ``3 x H x W`` tensor in
    [0, 1] for 16-bit and float gray (whose extra precision 8 bits would lose).

    Integer gray is read as 0..65535 and refused above it (a 32-bit image whose range sscn
    cannot know); float gray as 0..1 (NaN as 0, clipped), refused far above 1. ``name``
    names the image in those messages.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = np.asarray(img, dtype=np.float32)
        finite = gray[np.isfinite(gray)]
        high = float(finite.max()) if finite.size else 0.0
        if mode == "F":
            check_float_range(high, name)
        else:  # integer gray: 16-bit PNGs load as I;16 or I, both on 0..65535
            if high > UINT16_MAX or (finite.size and finite.min() < 0):
                raise SSCNError(f"{name} is a 32-bit integer image with values from {finite.min():g} to {high:g}, "
                                "beyond 16 bits, so its range is unknown; convert it to 8 or 16 bits (0..65535) "
                                "or to float in [0, 1]")
            gray = gray / UINT16_MAX
        gray = np.nan_to_num(gray, nan=0.0, posinf=1.0, neginf=0.0)  # float TIFFs can hold NaN and inf
        return torch.from_numpy(np.clip(gray, 0, 1)).unsqueeze(0).expand(3, -1, -1).contiguous()
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA" or ("transparency" in img.info and mode in ("L", "RGB")):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous().float().div_(255)


def is_gray(rgb: torch.Tensor, tol: float = 0.03):
    """Whether an sRGB image has no colour (a useless reference).

    A pixel is coloured when its channels spread (max - min) by more than ``tol``; the
    image is gray when at most 1 % of its pixels are coloured, which forgives JPEG
    noise in gray photos. ``3 x H x W`` -> bool; ``B x 3 x H x W`` -> bool tensor ``B``.
    """
    spread = rgb.amax(dim=-3) - rgb.amin(dim=-3)
    coloured = (spread > tol).flatten(-2).float().mean(-1)
    gray = coloured <= 0.01
    return bool(gray) if rgb.dim() == 3 else gray


def resize_center_crop(rgb, size):
    """Resize so the image covers ``size``, then crop its centre to exactly ``size``.

    rgb: ``C x H x W`` or ``B x C x H x W`` tensor (or a PIL image, resized by Pillow
    and returned as one); size: an int (short side, square crop) or ``(height,
    width)``. Antialiased bilinear resampling; an image already of that size is
    returned as is.
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height < 1 or width < 1:
        raise SSCNError(f"size={size}; pass a positive int or (height, width)")
    if isinstance(rgb, Image.Image):
        in_w, in_h = rgb.size
        if (in_h, in_w) == (height, width):
            return rgb
        # the centred source window with the target's aspect ratio, resized in one step
        scale = max(height / in_h, width / in_w)
        box_w, box_h = width / scale, height / scale
        box = ((in_w - box_w) / 2, (in_h - box_h) / 2, (in_w + box_w) / 2, (in_h + box_h) / 2)
        return rgb.resize((width, height), Image.Resampling.BILINEAR, box=box)
    in_h, in_w = rgb.shape[-2:]
    if (in_h, in_w) == (height, width):
        return rgb
    scale = max(height / in_h, width / in_w)
    new_h, new_w = max(height, round(in_h * scale)), max(width, round(in_w * scale))
    if (new_h, new_w) != (in_h, in_w):
        batch = rgb.unsqueeze(0) if rgb.dim() == 3 else rgb
        batch = F.interpolate(batch, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        rgb = batch[0] if rgb.dim() == 3 else batch
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return rgb[..., top:top + height, left:left + width]


# ------------------------------------------------------------------ datasets

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
_JPEG_END, _PNG_END = b"\xff\xd9", b"IEND\xaeB`\x82"


def _looks_complete(path: Path) -> bool:
    """Cheap check from the first and last bytes: a known image type, not cut short."""
    try:
        size = path.stat().st_size
        if size < 16:
            return False
        with open(path, "rb") as handle:
            head = handle.read(12)
            handle.seek(-12, os.SEEK_END)
            tail = handle.read()
    except OSError:
        return False
    if head.startswith(b"\xff\xd8\xff"):
        return tail.rstrip(b"\x00\r\n ").endswith(_JPEG_END)
    if head.startswith(b"\x89PNG"):
        return tail.endswith(_PNG_END)
    if head.startswith(b"RIFF"):
        return head[8:12] == b"WEBP"
    return head.startswith(_MAGIC)


def _readable(path: Path) -> bool:
    if _looks_complete(path):
        return True
    try:  # unusual but possibly valid (trailing bytes after the JPEG end, say): decode to be sure
        decode_image(path)
        return True
    except (SSCNError, OSError):  # OSError: no permission to read it
        return False


def item_seed(seed: int, index: int) -> int:
    """A 63-bit seed for item ``index`` of a dataset seeded with ``seed`` (stable everywhere)."""
    digest = hashlib.blake2b(f"sscn:{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


_LAYOUT = ("expected one sub-folder per class holding the images, like ImageNet: "
           "root/<class>/<image>.jpg (for Imagenette: imagenette-144/train/n01440764/x.jpg, pass .../train)")


class ImageFolder(torch.utils.data.Dataset):
    """Photos in class sub-folders, served as the network's inputs.

    ``ImageFolder(root, size=128, reference=None, seed=0, limit=None)``: classes are
    the sorted sub-folder names (ImageNet wnids -> labels 0..K-1); ``class_names``
    gives Imagenette's human names where the wnids are Imagenette's. Each item is
    resized and centre-cropped to ``size`` (``resize_center_crop``) and is a dict

    - ``"gray_l"``: ``1 x H x W`` normalised L in [-1, 1]; ``"ab"``: ``2 x H x W``
      normalised ab; ``"rgb"``: ``3 x H x W`` in [0, 1];
    - ``"label"``: int64 scalar tensor; ``"index"``: the item's index;
    - with ``reference`` (``"tps"``, ``"tps_violent"``, ``"rotation"`` or ``"crop"``):
      ``"ref_lab"``, ``3 x H x W`` normalised Lab, made by ``make_reference`` with the
      seed ``item_seed(seed, index)``, so the same dataset gives the same references in
      any order, process or worker.

    ``limit`` keeps that many evenly spaced items of the sorted list (so every class
    stays represented). Files that are not readable images are dropped when the
    dataset is built, with one warning that counts them; the check reads only each
    file's first and last bytes (it catches empty, foreign and cut-short files). A
    file that still fails to decode later is replaced by the next readable item, with
    one warning, so an epoch never stops on a bad file.
    """

    def __init__(self, root, size=128, reference: str | None = None, seed: int = 0, limit: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            what = "is a file" if self.root.exists() else "does not exist"
            raise SSCNError(f"image folder {self.root} {what}; {_LAYOUT}")
        if reference is not None and reference not in ALL_REFERENCE_KINDS:
            raise SSCNError(f"reference={reference!r}; pass None or one of {', '.join(ALL_REFERENCE_KINDS)}")
        if limit is not None and limit < 1:
            raise SSCNError(f"limit={limit}; pass None (all images) or a positive count")
        self.size, self.reference, self.seed = size, reference, int(seed)
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = [(path, name) for name in self.classes
                 for path in sorted((self.root / name).iterdir()) if _is_image_name(path)]
        if not files:
            raise SSCNError(self._empty_message())
        found, skipped = [], []
        for item in files:
            (found if _readable(item[0]) else skipped).append(item)
        if skipped:
            warnings.warn(f"skipped {len(skipped)} unreadable image file(s) of {len(files)} in {self.root} "
                          f"(first: {skipped[0][0].relative_to(self.root)})", stacklevel=2)
        if not found:
            raise SSCNError(f"no readable images in {self.root}; {_LAYOUT}")
        # a folder without a readable image is no class: it would be a label no photo has
        present = {name for _, name in found}
        empty = [name for name in self.classes if name not in present]
        if empty:
            warnings.warn(f"skipped {len(empty)} class folder(s) of {self.root} without readable images "
                          f"({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''})", stacklevel=2)
            self.classes = [name for name in self.classes if name not in empty]
        label = {name: index for index, name in enumerate(self.classes)}
        readable = [(path, label[name]) for path, name in found]
        if limit is not None and limit < len(readable):
            keep = np.round(np.linspace(0, len(readable) - 1, limit)).astype(int)
            readable = [readable[i] for i in keep]
        self.samples = readable
        self._failed: set[int] = set()

    def _empty_message(self) -> str:
        loose = [p for p in self.root.iterdir() if _is_image_name(p)]
        if loose:
            return (f"{self.root} holds {len(loose)} images but no class sub-folders; {_LAYOUT} "
                    "(one folder is enough: root/all/<image>.jpg)")
        if {"train", "val"} & set(self.classes):
            return f"{self.root} looks like a dataset root with splits; pass {self.root / 'train'} (or val). {_LAYOUT}"
        return f"no images in {self.root}; {_LAYOUT}"

    @property
    def class_names(self) -> list[str]:
        return [IMAGENETTE_CLASSES.get(wnid, wnid) for wnid in self.classes]

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.item(index)

    def item(self, index: int, substitute: bool = True) -> dict:
        """Item ``index``. With ``substitute=False`` a file that fails to decode raises its
        :class:`SSCNError` (an ``OSError`` when it cannot be read) instead of being replaced
        by the next readable item: an evaluation must not score one photo under another's name."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        with _one_thread():
            if substitute:
                return self._get(index % len(self))
            return self._decoded(decode_image(self.samples[index][0]), index % len(self), index % len(self))

    def _get(self, index: int) -> dict:
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if candidate in self._failed:
                continue
            try:
                image = decode_image(self.samples[candidate][0])
            except (SSCNError, OSError) as err:  # OSError: no permission to read it
                self._failed.add(candidate)
                if len(self._failed) == 1:
                    warnings.warn(f"{err}; serving the next readable image instead (further failures are silent, "
                                  "see ImageFolder.failed)", stacklevel=2)
                continue
            return self._decoded(image, candidate, index)
        raise SSCNError(f"none of the {len(self)} images in {self.root} could be read; {_LAYOUT}")

    def _decoded(self, image, sample: int, index: int) -> dict:
        # resizing the 8-bit picture in Pillow is several times cheaper than in torch
        rgb = _to_tensor(resize_center_crop(image, self.size)).contiguous()
        return self._item(rgb, self.samples[sample][1], index)

    @property
    def failed(self) -> list[Path]:
        """Files that failed to decode in this process so far."""
        return [self.samples[i][0] for i in sorted(self._failed)]

    def _item(self, rgb: torch.Tensor, label: int, index: int) -> dict:
        lab = rgb_to_lab_norm(rgb)
        gray_l, ab = split_lab(lab)
        item = {"gray_l": gray_l, "ab": ab, "rgb": rgb, "label": torch.tensor(label, dtype=torch.int64),
                "index": index}
        if self.reference is not None:
            item["ref_lab"] = make_reference(lab, self.reference, item_seed(self.seed, index)).image
        return item


@contextlib.contextmanager
def _one_thread():
    """Run torch single-threaded for one item (DataLoader workers already are).

    An item's tensors are small (3 x 128 x 128): splitting each operation over threads
    costs more in synchronisation than it gains, and on a busy machine, where the
    other thread waits for a core, an item takes ten times longer.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def imagenette_folder(root, split: str = "train", size=128, **kw) -> ImageFolder:
    """The ``split`` (``"train"`` or ``"val"``) of an Imagenette-style folder ``root/<split>/<wnid>/*.jpg``.

    Works for imagenette-144 and for the extracted ``imagenette2-160`` archive. Extra
    keywords go to :class:`ImageFolder` (``reference``, ``seed``, ``limit``).
    """
    if split not in ("train", "val"):
        raise SSCNError(f"split={split!r}; pass 'train' or 'val'")
    root = Path(root)
    if not (root / split).is_dir():
        raise SSCNError(f"{root} has no {split}/ folder; pass the Imagenette root that holds train/ and val/ "
                        "(download it with sscn.io.data.download_imagenette)")
    return ImageFolder(root / split, size=size, **kw)


# ------------------------------------------------------------ sample photos

# The colour photos bundled with scikit-image (no download needed).
SAMPLE_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "retina", "immunohistochemistry",
                "hubble_deep_field", "motorcycle")
# (target, reference) pairs for demos: a name paired with itself means "the target's
# own TPS-warped copy" (the training setting, ground truth known); the others pair
# photos whose subjects share colours.
SAMPLE_PAIRS = (
    ("chelsea", "chelsea"),
    ("coffee", "coffee"),
    ("astronaut", "rocket"),
    ("rocket", "astronaut"),
    ("retina", "immunohistochemistry"),
)


def _sample_array(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def sample_photos(size=None, names=SAMPLE_NAMES) -> list[tuple[str, torch.Tensor]]:
    """The colour photos scikit-image ships: ``[(name, rgb 3 x H x W in [0, 1])]``.

    With ``size`` (an int or ``(height, width)``) each is resized and centre-cropped
    (``resize_center_crop``). Photos a scikit-image install lacks are left out.
    """
    photos = []
    for name in names:
        if name not in SAMPLE_NAMES:
            raise SSCNError(f"no sample photo {name!r}; pass names from {', '.join(SAMPLE_NAMES)}")
        try:
            array = _sample_array(name)
        except (ImportError, OSError, ValueError):
            continue
        rgb = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float().div_(255)
        photos.append((name, rgb if size is None else resize_center_crop(rgb, size).contiguous()))
    return photos


# Square crops of each sample photo for ``sample_folder``: (centre x, centre y) as fractions
# of the photo's width and height, and the side as a fraction of its short side.
SAMPLE_CROPS = ((0.5, 0.5, 1.0), (0.5, 0.5, 0.6), (0.3, 0.3, 0.6), (0.7, 0.3, 0.6), (0.3, 0.7, 0.6), (0.7, 0.7, 0.6))
SAMPLE_FOLDER_SIZE = 144  # px, like imagenette-144
SAMPLE_FOLDER_VERSION = 1  # bump when the crops change, so a stale cache is not reused


def cache_dir() -> Path:
    """Where sscn keeps files it can rebuild: ``$XDG_CACHE_HOME/sscn`` (default ``~/.cache/sscn``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sscn"


def sample_folder(dest=None) -> Path:
    """The sample photos as a tiny image-folder dataset: ``dest/<photo name>/<name>_<i>.png``.

    One class per photo, ``len(SAMPLE_CROPS)`` fixed square crops of it (the whole
    centre square, then crops of 0.6 of the short side around the centre and the four
    quadrants), each saved as a ``SAMPLE_FOLDER_SIZE`` px PNG. The result is the same
    on every machine, so training on ``data_dir="samples"`` is reproducible without a
    download.

    dest: the folder to write (default ``cache_dir() / "samples-v<version>"``). A folder
    already there is reused. It is built in a temporary folder beside ``dest`` and
    renamed into place, so an interrupted build leaves nothing half-written and
    processes that build it at the same time (ranks of a distributed run) all end up
    with one complete copy. Returns ``dest``.
    """
    dest = Path(dest) if dest is not None else cache_dir() / f"samples-v{SAMPLE_FOLDER_VERSION}"
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    if dest.exists() and not dest.is_dir():
        raise SSCNError(f"{dest} is a file; pass a folder for the sample dataset")
    photos = sample_photos()
    if not photos:
        raise SSCNError("this scikit-image installation has none of the sample photos; "
                        "reinstall scikit-image or train on a folder of photos (data_dir)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for name, rgb in photos:
            image = Image.fromarray(rgb.mul(255).round().byte().permute(1, 2, 0).numpy())
            width, height = image.size
            (scratch / name).mkdir()
            for i, (cx, cy, fraction) in enumerate(SAMPLE_CROPS):
                side = fraction * min(width, height)
                left = min(max(cx * width - side / 2, 0), width - side)
                top = min(max(cy * height - side / 2, 0), height - side)
                crop = image.resize((SAMPLE_FOLDER_SIZE, SAMPLE_FOLDER_SIZE), Image.Resampling.BILINEAR,
                                    box=(left, top, left + side, top + side))
                crop.save(scratch / name / f"{name}_{i}.png")
        try:
            os.replace(scratch, dest)  # atomic; refused when another process got there first
        except OSError:
            if not (dest.is_dir() and any(dest.iterdir())):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


# ----------------------------------------------------------------- download


def file_hash(path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (``"sha256"`` or ``"md5"``)."""
    digest = hashlib.new(algorithm)
    with open_regular(path, "file") as handle:  # a pipe or device would never end
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, sha256: str | None, md5: str | None) -> bool:
    """True when the file matches every checksum given; prints the SHA-256 when none is given."""
    if sha256 is None and md5 is None:
        print(f"no checksum given; SHA-256 of {path.name}: {file_hash(path)} -- compare it with a trusted source")
        return True
    ok = True
    if sha256 is not None:
        ok &= file_hash(path, "sha256") == sha256.lower()
    if md5 is not None:
        ok &= file_hash(path, "md5") == md5.lower()
    return ok


def _fetch(url: str, target: Path, progress: bool) -> None:
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name)
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise SSCNError(f"could not download {url} ({err}); check the network or pass a local file:// url") from err
    os.replace(partial, target)


def _safe_members(archive: tarfile.TarFile, where: Path) -> list[tarfile.TarInfo]:
    """The archive's members, refusing any that would land outside ``where``."""
    base = where.resolve()
    members = []
    for member in archive.getmembers():
        target = (base / member.name).resolve()
        if member.name.startswith(("/", "\\")) or not target.is_relative_to(base):
            raise SSCNError(f"the archive entry {member.name!r} points outside the target folder; "
                            "refusing to extract an unsafe archive")
        if member.issym() or member.islnk():
            link = (target.parent / member.linkname).resolve() if member.issym() else (base / member.linkname).resolve()
            if not link.is_relative_to(base):
                raise SSCNError(f"the archive link {member.name!r} -> {member.linkname!r} points outside the "
                                "target folder; refusing to extract an unsafe archive")
        if member.isdev():
            raise SSCNError(f"the archive entry {member.name!r} is a device file; refusing to extract it")
        members.append(member)
    return members


def download_imagenette(dest, url: str = IMAGENETTE_URL, sha256: str | None = IMAGENETTE_SHA256,
                        md5: str | None = IMAGENETTE_MD5, progress: bool = True) -> Path:
    """Download and extract Imagenette (or any ``.tgz`` dataset) into the folder ``dest``.

    The archive is saved as ``dest/<name>.tgz`` and checked against ``sha256`` and
    ``md5`` (the defaults: the MD5 torchvision publishes for ``IMAGENETTE_URL``, no
    SHA-256 known). With neither, the SHA-256 is printed for you to compare with a
    trusted source. An archive already there with matching checksums is not
    downloaded again, an extracted folder already there is not extracted again.
    Extraction goes into a temporary folder beside ``dest`` and is renamed into place,
    so an interrupted run never leaves a half-extracted dataset; entries that would
    escape ``dest`` are refused. Returns the extracted top-level folder (for the
    default url ``dest/imagenette2-160``, holding ``train/`` and ``val/``).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "download.tgz"
    archive_path = dest / name
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else Path(name).stem
    extracted = dest / stem
    if extracted.is_dir():
        return extracted
    if archive_path.exists() and not _verify(archive_path, sha256, md5):
        print(f"{archive_path} does not match its checksum; downloading it again")
        archive_path.unlink()
    if not archive_path.exists():
        _fetch(url, archive_path, progress)
        if not _verify(archive_path, sha256, md5):
            bad = archive_path.with_name(archive_path.name + ".bad")
            os.replace(archive_path, bad)
            raise SSCNError(f"the download of {url} does not match its checksum (kept as {bad}); "
                            "retry, and if it fails again check the url and the expected checksum")
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive_path) as archive:
                members = _safe_members(archive, scratch)
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(scratch, members=members, filter="data")
                else:
                    archive.extractall(scratch, members=members)
        except tarfile.TarError as err:
            raise SSCNError(f"{archive_path} is not a readable tar archive ({err}); "
                            "delete it and download again") from err
        tops = list(scratch.iterdir())
        # one top-level folder (as in Imagenette's archive) becomes dest/<stem>; loose entries move together
        os.replace(tops[0] if len(tops) == 1 and tops[0].is_dir() else scratch, extracted)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return extracted
