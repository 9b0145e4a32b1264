"""Colorize any photo: the network at a working size, the colours joined to the full-size L.

The network sees the target at the working size (long side ``size``, both sides
multiples of 16); its ab is upsampled to the input's full size and joined to the
target's own full-resolution L, so every detail of the input is kept.

Only L is needed at full resolution, and only the last step (Lab -> sRGB) produces
full-resolution colour, so those two steps are written for speed and bounded memory:
numpy in float32, row chunks (in parallel threads; numpy releases the GIL), the sRGB
linearisation of 8-bit input read from a 256-entry table, and piecewise curves
written without branches. A 12-megapixel photo needs a few hundred MB, not GB.
"""
from __future__ import annotations

import functools
import numbers
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..color import (
    _EPSILON,
    _KAPPA,
    AB_SCALE,
    L_SCALE,
    WHITE_D65,
    XYZ_FROM_RGB,
    join_lab,
    lab_norm_to_rgb,
    rgb_to_lab_norm,
    srgb_to_linear,
)
from ..errors import SSCNError
from ..io.files import write_atomic
from ..models import SSCN
from ..models.sscn import MULTIPLE

GRAY_CHROMA = 2.0  # mean ab chroma (Lab units) below which a reference has no colour to give
# Largest working size: the network was trained at 128 px and the result keeps the photo's own
# size anyway; above this the encoders' feature maps alone need many GB.
MAX_SIZE = 2048
# File types a result can be written as, and the longest side each can hold (libjpeg: 65,500 px;
# WebP: 16,383 px); Pillow's encoders fail only after starting to write.
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".bmp": "BMP"}
MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}
CHUNK_PIXELS = 1 << 18  # pixels per row chunk: a chunk's float32 temporaries stay in the CPU's cache

# the knots of the piecewise curves (the values sscn.color uses)
_F_KNOT = 0.2068966  # (6/29): below it the inverse cube is a line
_SRGB_KNOT = 0.0031308  # linear light below which sRGB is a line
_SRGB_KNOT_CODE = 0.04045  # the same knot in sRGB code values


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The network's input size: long side ``size``, aspect kept, each side a multiple of 16 (>= 32)."""
    check_size(size)
    _check_not_empty(height, width, "the image")
    scale = size / max(height, width)
    snap = lambda v: max(2 * MULTIPLE, int(round(v * scale / MULTIPLE)) * MULTIPLE)  # noqa: E731
    return snap(height), snap(width)


def _is_int(value) -> bool:
    """A whole number as Python or numpy has it; not a float (2.0 included) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_size(size: int) -> None:
    """The working size must be a multiple of 16 between 32 and ``MAX_SIZE``."""
    if not _is_int(size):
        raise SSCNError(f"--size must be a whole number, a multiple of {MULTIPLE} such as 256 (got {size!r})")
    if size < 2 * MULTIPLE or size % MULTIPLE:
        raise SSCNError(f"--size must be a multiple of {MULTIPLE} and at least {2 * MULTIPLE} (got {size})")
    if size > MAX_SIZE:
        raise SSCNError(f"--size must be at most {MAX_SIZE} (got {size}); the result keeps the photo's full size "
                        "whatever the working size")


def chroma(lab_norm: torch.Tensor) -> float:
    """Mean ab chroma in Lab units of a normalised Lab image."""
    return float((lab_norm[..., 1:, :, :] * 110).norm(dim=-3).mean())


def check_attention(k, r, dense, flag: str = "") -> None:
    """``k``, ``r``: None or a whole number >= 0, not both 0; ``dense``: None or a bool, never
    together with k or r (dense attention uses every token, so they would be ignored).

    ``flag`` is put before each name in the messages (``"--"`` for the command line).
    """
    for name, value in (("k", k), ("r", r)):
        if value is not None and (not _is_int(value) or value < 0):
            raise SSCNError(f"{flag}{name} must be a whole number >= 0 (got {value!r}); a value above the number of "
                            "reference tokens is capped at it")
    if k == 0 and r == 0:
        raise SSCNError(f"k + r must be at least 1: the attention needs some reference tokens; "
                        f"raise {flag}k or {flag}r")
    if dense is not None and not isinstance(dense, (bool, np.bool_)):
        raise SSCNError(f"{flag}dense must be True, False or None (got {dense!r})")
    if dense and (k is not None or r is not None):
        given = " ".join(f"{flag}{name}{' ' if flag else '='}{value}" for name, value in (("k", k), ("r", r))
                         if value is not None)
        raise SSCNError(f"{flag}dense attends to every reference token, so {given} would be ignored; "
                        f"drop {flag}dense, or drop {given} (k and r choose the tokens of sparse attention)")


def check_seed(seed) -> None:
    """None (torch's global random state) or a whole number a torch generator takes."""
    if seed is not None and (not _is_int(seed) or abs(seed) >= 2**63):
        raise SSCNError(f"seed must be a whole number between -2**63 and 2**63, or None (got {seed!r})")


def check_model(model) -> torch.device:
    """An ``nn.Module`` with float32 weights (inference runs in float32); returns its device."""
    if not isinstance(model, torch.nn.Module):
        raise SSCNError(f"model must be an SSCN network (sscn.models.checkpoint.load_model()), got {type(model).__name__}")
    tensors = [*model.parameters(), *model.buffers()]
    if not tensors:
        raise SSCNError("the model has no weights; pass an SSCN network (sscn.models.checkpoint.load_model())")
    kinds = {str(t.dtype).removeprefix("torch.") for t in tensors if t.is_floating_point() or t.is_complex()}
    kinds |= {str(p.dtype).removeprefix("torch.") for p in model.parameters()}
    if kinds != {"float32"}:
        raise SSCNError(f"the model's weights are {', '.join(sorted(kinds))}, but colorize runs in float32; "
                        "pass model.float()")
    return tensors[0].device


def _check_not_empty(height: int, width: int, name: str) -> None:
    if height < 1 or width < 1:
        raise SSCNError(f"{name} is empty ({width} x {height} px); pass an image of at least 1 x 1 px")


def check_reference(ref_lab: torch.Tensor) -> None:
    if chroma(ref_lab) < GRAY_CHROMA:
        raise SSCNError(
            "the reference photo has no colour (it is gray), so there is nothing to transfer; "
            "choose a colour reference"
        )


@dataclass
class Colorized:
    rgb: torch.Tensor  # 3 x H x W in [0, 1], the input's full size (uint8 in 0..255 with ``uint8=True``)
    coarse_rgb: torch.Tensor  # 3 x h x w at the working size (the GCT stage alone)
    fine_rgb: torch.Tensor  # 3 x h x w at the working size
    reference: object = None  # with ``reference_from``: the chosen photo (a sscn.apps.finder.Match)


class Stopwatch:
    """Wall time per named stage: ``with watch("network"): ...``; ``watch.times`` maps names to seconds.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs at the end of each stage so that
    asynchronous device work is charged to the stage that queued it.
    """

    def __init__(self, sync=None):
        self.times: dict[str, float] = {}
        self.sync = sync

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return sum(self.times.values())

    def summary(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.times.items())


def threads_for_load() -> int:
    """Intra-op threads worth using now: the cores the last minute's load average leaves idle (>= 1).

    On a machine busy with other jobs every multi-threaded operation waits for its slowest
    thread: on a shared 2-core machine (load average about 3), ``sscn colorize`` of a
    12-megapixel photo took 5.2 s with 2 threads and 1.0 s with 1 (benchmarks/README.md).
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return torch.get_num_threads()
    idle = int((os.cpu_count() or 1) - load + 0.5)
    return max(1, min(torch.get_num_threads(), idle))


# --------------------------------------------------------- full-resolution pixels


def _for_rows(work, height: int, width: int) -> None:
    """Call ``work(top, bottom)`` on row chunks of about ``CHUNK_PIXELS`` pixels.

    Chunks run on as many threads as torch's intra-op setting allows (numpy releases the
    GIL); ``torch.set_num_threads(1)`` makes the whole pipeline single-threaded.
    """
    rows = max(1, CHUNK_PIXELS // max(width, 1))
    chunks = [(top, min(top + rows, height)) for top in range(0, height, rows)]
    workers = min(torch.get_num_threads(), len(chunks))
    if workers <= 1:
        for top, bottom in chunks:
            work(top, bottom)
        return
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda chunk: work(*chunk), chunks):
            pass


@functools.lru_cache(maxsize=None)
def _luminance_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 8-bit code value of R, G and B: its share of the relative luminance Y (float32).

    ``Y = table_r[r] + table_g[g] + table_b[b]`` is the Y row of sRGB -> XYZ applied to
    the linearised channels, so 8-bit input needs no power function at full resolution.
    """
    linear = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255).numpy()
    return tuple((linear * weight / WHITE_D65[1]).astype(np.float32) for weight in XYZ_FROM_RGB[1])


def _linearise(code: np.ndarray) -> np.ndarray:
    """sRGB code values (float, any range) -> linear light, as ``sscn.color.srgb_to_linear``.

    The two pieces of the curve meet at the knot, so ``curve(max(x, knot)) + line(min(x, knot))
    - line(knot)`` is the piecewise function without a branch (faster than ``np.where``).
    """
    high = np.maximum(code, _SRGB_KNOT_CODE)
    high += 0.055
    high *= 1 / 1.055
    np.power(high, 2.4, out=high)
    low = np.minimum(code, _SRGB_KNOT_CODE)
    low -= _SRGB_KNOT_CODE
    low *= 1 / 12.92
    high += low
    return high


def _lab_f(y: np.ndarray, out: np.ndarray) -> None:
    """CIE's ``f(t)`` (cube root above (6/29)^3, a line below), branch-free, into ``out``."""
    np.maximum(y, _EPSILON, out=out)
    np.cbrt(out, out=out)
    low = np.minimum(y, _EPSILON)
    low -= _EPSILON
    low *= _KAPPA
    out += low


def _lab_f_inverse(f: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_lab_f` (cube above 6/29, a line below), in place."""
    low = np.minimum(f, _F_KNOT)
    low -= _F_KNOT
    low *= 1 / _KAPPA
    np.maximum(f, _F_KNOT, out=f)
    cube = f * f
    f *= cube
    f += low
    return f


def _encode_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB code values, in place (branch-free, as :func:`_linearise`)."""
    low = np.minimum(linear, _SRGB_KNOT)
    low -= _SRGB_KNOT
    low *= 12.92
    np.maximum(linear, _SRGB_KNOT, out=linear)
    np.power(linear, 1 / 2.4, out=linear)
    linear *= 1.055
    linear -= 0.055
    linear += low
    return linear


def full_resolution_l(image) -> tuple[np.ndarray, np.ndarray]:
    """The target's relative luminance Y and ``f(Y) = (L + 16) / 116``, each ``H x W`` float32.

    ``image``: an 8-bit RGB PIL image, a ``uint8`` or float ``3 x H x W`` tensor (sRGB,
    float in [0, 1]). 8-bit input is linearised through a table; float input through the
    sRGB curve in float32. Agrees with ``sscn.color.rgb_to_lab`` to about 1e-4 L units.
    """
    planes = _planes(image)
    height, width = planes[0].shape
    luminance = np.empty((height, width), np.float32)
    f_y = np.empty((height, width), np.float32)
    tables = _luminance_tables() if planes[0].dtype == np.uint8 else None

    def work(top: int, bottom: int) -> None:
        y = luminance[top:bottom]
        for channel, (plane, weight) in enumerate(zip(planes, XYZ_FROM_RGB[1])):
            if tables is not None and channel == 0:
                np.take(tables[0], plane[top:bottom], out=y)
                continue
            if tables is not None:
                share = np.take(tables[channel], plane[top:bottom])
            else:
                share = _linearise(plane[top:bottom].astype(np.float32))
                share *= weight / WHITE_D65[1]
            if channel == 0:
                y[...] = share
            else:
                y += share
        _lab_f(y, f_y[top:bottom])

    _for_rows(work, height, width)
    return luminance, f_y


def _planes(image) -> list[np.ndarray]:
    """Three ``H x W`` numpy planes (uint8 or float32) of an RGB PIL image or a ``3 x H x W`` tensor."""
    if isinstance(image, Image.Image):
        return [np.asarray(band) for band in image.split()]
    return list(image.cpu().numpy())


def _rgb_from_lab(luminance, f_y, ab_scaled, uint8: bool) -> torch.Tensor:
    """Full-resolution Lab -> sRGB ``3 x H x W`` (float32 in [0, 1], or a uint8 view of ``H x W x 3``).

    ``luminance``, ``f_y``: from :func:`full_resolution_l`; ``ab_scaled``: ``2 x H x W``
    float32 holding ``a / 500`` and ``b / 200`` (the offsets of ``f(X)`` and ``f(Z)`` from
    ``f(Y)``). Same maths as ``sscn.color.lab_to_rgb``, with ``Y`` taken as it is.
    """
    height, width = f_y.shape
    to_rgb = np.linalg.inv(np.array(XYZ_FROM_RGB, dtype=np.float64)) * np.array(WHITE_D65)[None]
    rows = [[np.float32(v) for v in row] for row in to_rgb]
    if uint8:
        out = np.empty((height, width, 3), np.uint8)
    else:
        out_tensor = torch.empty(3, height, width)
        out = out_tensor.numpy()

    def work(top: int, bottom: int) -> None:
        f = f_y[top:bottom]
        y = luminance[top:bottom]
        x = _lab_f_inverse(f + ab_scaled[0, top:bottom])
        fz = f - ab_scaled[1, top:bottom]
        np.maximum(fz, 0, out=fz)  # a negative f(Z) has no real colour; sscn.color clips it too
        z = _lab_f_inverse(fz)
        linear, term = np.empty_like(f), np.empty_like(f)
        for channel, (wx, wy, wz) in enumerate(rows):
            np.multiply(x, wx, out=linear)
            np.multiply(y, wy, out=term)
            linear += term
            np.multiply(z, wz, out=term)
            linear += term
            np.clip(linear, 0, 1, out=linear)
            code = _encode_srgb(linear)
            if uint8:
                code *= 255
                code += 0.5
                np.copyto(out[top:bottom, :, channel], code, casting="unsafe")
            else:
                np.clip(code, 0, 1, out=out[channel, top:bottom])

    _for_rows(work, height, width)
    return torch.from_numpy(out).permute(2, 0, 1) if uint8 else out_tensor


# ------------------------------------------------------------------------ inputs


def _as_image(image, name: str):
    """A PIL image or a ``3 x H x W`` tensor -> an 8-bit RGB PIL image or a float32 CPU tensor.

    PIL images in other modes go through ``sscn.io.data``'s conversion (alpha on white,
    16-bit gray to float); uint8 tensors stay 8-bit (as a PIL image).
    """
    if isinstance(image, Image.Image):
        _check_not_empty(image.height, image.width, name)
        if image.mode == "RGB":
            return image
        from ..io.data import to_rgb_image

        return to_rgb_image(image, name)
    if not isinstance(image, torch.Tensor):
        raise SSCNError(f"{name} must be a PIL image or a 3 x H x W tensor, got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise SSCNError(f"{name} must be shaped 3 x H x W (RGB), got {tuple(image.shape)}")
    _check_not_empty(*image.shape[1:], name)
    if image.dtype == torch.uint8:
        return Image.fromarray(image.permute(1, 2, 0).contiguous().cpu().numpy())
    if not image.is_floating_point():
        raise SSCNError(f"{name} must be uint8 or float in [0, 1], got {image.dtype}")
    image = image.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(image).all()):  # one NaN pixel would spread through the network to every output pixel
        raise SSCNError(f"{name} holds NaN or infinite values; pass RGB values in [0, 1]")
    from ..io.data import FLOAT_OVERSHOOT, check_float_range

    low, high = (float(v) for v in torch.aminmax(image))
    if low < -FLOAT_OVERSHOOT:  # normalised data (ImageNet's mean and std) would come out black, with no error
        raise SSCNError(f"{name} holds float values down to {low:g}, but float images must be in [0, 1]; undo any "
                        "normalisation (mean/std) first, or pass 8-bit (uint8) data")
    check_float_range(high, name)
    # a little outside [0, 1] (a resized or sharpened photo overshoots) is clipped, as sscn.io.data does
    return image.clamp(0, 1) if low < 0 or high > 1 else image


def _size_of(image) -> tuple[int, int]:
    return (image.height, image.width) if isinstance(image, Image.Image) else tuple(image.shape[-2:])


def _resize_f(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of a float32 plane (Pillow; same as torch's ``antialias=True``)."""
    if plane.shape == (height, width):
        return plane
    return np.asarray(Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR))


def reference_lab(reference, size: int) -> torch.Tensor:
    """The reference at its working size as normalised Lab ``1 x 3 x h x w``.

    Resized in sRGB with an antialiased bilinear filter (Pillow for 8-bit images), then
    converted, so a 12-megapixel reference costs one resize, not a full-size Lab image.
    """
    image = _as_image(reference, "ref_rgb")
    height, width = working_shape(*_size_of(image), size)
    if isinstance(image, Image.Image):
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255)[None]
    else:
        rgb = image[None]
        if rgb.shape[-2:] != (height, width):
            rgb = F.interpolate(rgb, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return rgb_to_lab_norm(rgb)


@contextmanager
def _fused_attention(model: SSCN):
    """Run the correspondence in PyTorch's fused attention kernel (the same maths; dense
    attention at 512 px about 2x faster, without its N x N matrix), then restore the setting."""
    layer = model.correspondence
    before = layer.fused_inference
    layer.fused_inference = True
    try:
        yield
    finally:
        layer.fused_inference = before


@torch.inference_mode()
def colorize(
    model: SSCN,
    target_rgb,
    ref_rgb,
    size: int = 256,
    k: int | None = None,
    r: int | None = None,
    dense: bool | None = None,
    seed: int = 0,
    *,
    uint8: bool = False,
    watch: Stopwatch | None = None,
    reference_from=None,
) -> Colorized:
    """Colorize ``target_rgb`` with the colours of ``ref_rgb``.

    ``target_rgb``, ``ref_rgb``: ``3 x H x W`` tensors (float sRGB in [0, 1], or uint8) or
    PIL images; a colour target is made gray first (only its L is used). The result keeps
    the target's full size. Float values a little outside [0, 1] are clipped; far outside
    (0..255 data, or normalised with a mean and std) is an error. ``model``: float32 weights.
    ``k``, ``r``, ``dense``: override the model's attention (a given k or r means sparse, as
    on the command line); ``seed``: a whole number that fixes the r random tokens (None:
    torch's global random state). ``uint8=True`` returns ``rgb`` as 8-bit (a ``3 x H x W``
    view of an ``H x W x 3`` array, ready for :func:`save_image`), which is faster and smaller.
    ``watch``: a :class:`Stopwatch` that receives the time of each stage. ``reference_from``: a
    folder of colour photos to choose the reference from (pass ``ref_rgb=None``;
    :mod:`sscn.apps.finder`); the choice is ``result.reference``. Every argument a caller can
    get wrong is an :class:`SSCNError` before any work.
    """
    if reference_from is not None:
        from ..io.data import decode_image
        from .finder import find_reference

        if ref_rgb is not None:
            raise SSCNError("pass a reference or reference_from, not both")
        match = find_reference(target_rgb, reference_from, progress=False)[0]
        result = colorize(model, target_rgb, decode_image(match.path), size, k, r, dense, seed, uint8=uint8,
                          watch=watch)
        result.reference = match
        return result
    device = check_model(model)
    check_size(size)
    check_attention(k, r, dense)
    check_seed(seed)
    # numpy's whole numbers as Python's: torch's generator takes no numpy integer
    size, k, r, seed = (None if v is None else int(v) for v in (size, k, r, seed))
    dense = bool(dense) if dense is not None else (False if k is not None or r is not None else None)
    watch = watch or Stopwatch()
    if device.type == "cuda" and watch.sync is None:
        watch.sync = torch.cuda.synchronize
    with watch("prepare"):
        ref_lab = reference_lab(ref_rgb, size).to(device)
        check_reference(ref_lab)
        target = _as_image(target_rgb, "target_rgb")
        full_h, full_w = _size_of(target)
        luminance, f_y = full_resolution_l(target)
        h, w = working_shape(full_h, full_w, size)
        # L / 50 - 1 = f(Y) * 116 / 50 - 16 / 50 - 1; resizing f(Y) then scaling is the same thing
        small_l = torch.from_numpy(_resize_f(f_y, h, w) * (116 / L_SCALE) - (16 / L_SCALE + 1))[None, None].to(device)
    with watch("network"), _fused_attention(model):
        out = model(small_l, ref_lab, k=k, r=r, dense=dense, seed=seed)
        if not bool(torch.isfinite(out.ab_fine).all()):  # NaN would be drawn as black, with no error
            raise SSCNError("the network's output is not finite (NaN or infinite colours); the checkpoint's "
                            "weights are broken (too large or NaN), use another checkpoint")
    with watch("upsample"):
        # the offsets a / 500 and b / 200 of f(X), f(Z); scaling before a bilinear resize is the same as after
        scale = torch.tensor([AB_SCALE / 500, AB_SCALE / 200], device=device).view(1, 2, 1, 1)
        # contiguous: a channels-last model gives channels-last ab, whose full-size planes would be strided
        ab_small = (out.ab_fine.float() * scale).contiguous()
        ab = F.interpolate(ab_small, size=(full_h, full_w), mode="bilinear", align_corners=False)
        ab = ab[0].cpu().numpy()
    with watch("compose"):
        rgb = _rgb_from_lab(luminance, f_y, ab, uint8)
        del luminance, f_y, ab
        small_l = small_l.float()
        coarse = lab_norm_to_rgb(join_lab(small_l, out.ab_coarse.float()))[0].cpu()
        fine = lab_norm_to_rgb(join_lab(small_l, out.ab_fine.float()))[0].cpu()
    return Colorized(rgb=rgb, coarse_rgb=coarse, fine_rgb=fine)


def output_format(path) -> str:
    """Pillow's format name for an output file, by its suffix."""
    path = Path(path)
    try:
        return OUTPUT_FORMATS[path.suffix.lower()]
    except KeyError:
        raise SSCNError(f"output {path} must end in .png, .jpg, .jpeg, .webp, .tif or .bmp") from None


def check_output_size(path, height: int, width: int) -> None:
    """Refuse a result larger than its file type can hold, before any work is done."""
    fmt = output_format(path)
    limit = MAX_SIDE.get(fmt)
    if limit is not None and max(height, width) > limit:
        raise SSCNError(f"the result is {width} x {height} px, more than a {fmt} file can hold ({limit:,} px per "
                        f"side); write it as PNG or TIFF (-o {Path(path).with_suffix('.png')})")


def save_image(rgb: torch.Tensor, path, quality: int = 95, *, overwrite: bool = True) -> None:
    """Write ``3 x H x W`` (float in [0, 1], or uint8) as an 8-bit PNG, JPEG, ... (by the suffix).

    The file is written beside ``path`` under a temporary name and renamed into place, so an
    interrupted or failed save leaves the previous file (or none) behind. ``overwrite=False``
    refuses an existing ``path``.
    """
    path = Path(path)
    fmt = output_format(path)
    check_output_size(path, *rgb.shape[-2:])
    if rgb.dtype == torch.uint8:
        array = rgb.permute(1, 2, 0).contiguous().cpu().numpy()  # no copy for colorize(..., uint8=True)
    else:
        array = np.empty((*rgb.shape[-2:], 3), np.uint8)
        planes = rgb.detach().to("cpu", torch.float32).numpy()

        def work(top: int, bottom: int) -> None:
            for channel in range(3):
                code = np.clip(planes[channel, top:bottom], 0, 1) * 255
                np.copyto(array[top:bottom, :, channel], np.rint(code), casting="unsafe")

        _for_rows(work, *array.shape[:2])
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    image = Image.fromarray(array)
    write_atomic(path, lambda handle: image.save(handle, format=fmt, **options), overwrite=overwrite)
