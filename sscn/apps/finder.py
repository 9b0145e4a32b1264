"""The reference finder: rank a folder of colour photos as references for a gray target.

Two similarities of the gray versions, as He et al. (2018, "Deep exemplar-based
colorization") recommend references by semantic and luminance similarity: of meaning
(cosine of the pre-stage encoder's pooled level-5 and level-6 features, what the CAM and
the style read) and of luminance (the pair rule's gray descriptor, :func:`sscn.evaluation.pairs.gray_descriptor`).
The folder's features are cached, per photo, so a second search reads no photo again.
What each part contributes is measured in docs/results/finder.md.
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..color import rgb_to_gray_l
from ..errors import SSCNError
from ..evaluation.pairs import gray_descriptor
from ..io.data import IMAGE_EXTENSIONS, cache_dir, file_hash, is_gray, load_image, resize_center_crop
from ..io.files import open_regular, same_file, write_atomic
from ..models.pretrained import BUNDLED_PRETRAIN, pretrained_classifier
from ..training.pretrain import as_gray

SIZE = 128  # px: the pre-stage's training size
MEANING_WEIGHT = 0.5  # score = w * meaning + (1 - w) * luminance (docs/results/finder.md)
CACHE_VERSION = 1  # bump when the features change, so an old cache is not reused
BATCH = 32


@dataclass(frozen=True)
class Match:
    """One candidate reference: its file, its score and the two similarities it is made of (each in [-1, 1])."""

    path: Path
    score: float
    meaning: float
    luminance: float

    def describe(self) -> str:
        return f"{self.path} (score {self.score:.3f}: meaning {self.meaning:.3f}, luminance {self.luminance:.3f})"


def folder_photos(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (subfolders too; hidden files left out), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SSCNError(f"--reference-from {folder} is not a folder; pass a folder of colour photos")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class ReferenceFinder:
    """Features of a folder's colour photos, and a ranking of them for any gray target.

    ``pretrained``: the pre-stage checkpoint whose encoder reads meaning (``"bundled"``);
    ``cache``: keep the folder's features in ``sscn.io.data.cache_dir()`` (a photo whose size
    or modification time changed is read again; nothing is written into ``folder``).
    Gray photos and files that cannot be decoded are left out, with one warning.
    """

    def __init__(self, folder: str | Path, pretrained: str | Path = "bundled", size: int = SIZE,
                 meaning_weight: float = MEANING_WEIGHT, cache: bool = True, progress: bool = True):
        if not 0.0 <= meaning_weight <= 1.0:
            raise SSCNError(f"meaning_weight={meaning_weight}; pass a number in [0, 1]")
        self.folder, self.size, self.meaning_weight = Path(folder), size, meaning_weight
        checkpoint = BUNDLED_PRETRAIN if str(pretrained) == "bundled" else Path(pretrained)
        self.classifier, _ = pretrained_classifier(checkpoint)
        self._encoder_id = file_hash(checkpoint)
        paths = folder_photos(self.folder)
        self.cache_path = _cache_path(self.folder, self._encoder_id, size) if cache else None
        self.paths, self.meaning, self.luminance, self.digests, self.reads, skipped = self._features(paths, progress)
        if not self.paths:
            raise SSCNError(f"no usable colour photo in {self.folder} ({len(paths)} image files, {len(skipped)} of "
                            "them gray or unreadable); pass a folder of colour JPEG or PNG photos")
        if skipped:
            warnings.warn(f"{len(skipped)} of {len(paths)} photos in {self.folder} left out (gray or unreadable), "
                          f"for example {skipped[0]}", stacklevel=2)

    # ----------------------------------------------------------------- features

    @torch.no_grad()
    def describe(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``B x 3 x H x W`` sRGB at the working size -> (meaning ``B x C``, luminance ``B x 192``), unit rows."""
        f5, f6 = self.classifier.encoder(as_gray(rgb))[4:6]
        meaning = torch.cat((F.normalize(f5.float().mean(dim=(2, 3)), dim=1),
                             F.normalize(f6.float().mean(dim=(2, 3)), dim=1)), dim=1) / math.sqrt(2)
        return meaning, gray_descriptor(rgb_to_gray_l(rgb)).float()

    def _features(self, paths: list[Path], progress: bool):
        stamps = {p: _stamp(p) for p in paths}
        cached = self._read_cache()
        keep = {p: cached[p] for p in paths if p in cached and cached[p]["stamp"] == stamps[p]}
        todo = [p for p in paths if p not in keep]
        if todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="describe references", disable=not progress)
            for start in range(0, len(todo), BATCH):
                batch, pictures = todo[start:start + BATCH], []
                for path in batch:
                    try:
                        pictures.append((path, resize_center_crop(load_image(path), self.size)))
                    except (SSCNError, OSError):
                        keep[path] = {"stamp": stamps[path], "usable": False}
                usable = []
                for path, rgb in pictures:
                    if is_gray(rgb):  # a gray reference has no colours to give
                        keep[path] = {"stamp": stamps[path], "usable": False}
                    else:
                        usable.append((path, rgb))
                if usable:
                    meaning, luminance = self.describe(torch.stack([rgb for _, rgb in usable]))
                    for i, (path, _) in enumerate(usable):
                        keep[path] = {"stamp": stamps[path], "usable": True, "meaning": meaning[i].clone(),
                                      "luminance": luminance[i].clone(), "digest": file_hash(path)}
                bar.update(len(batch))
            bar.close()
            self._write_cache(keep)
        skipped = [p for p in paths if not keep[p]["usable"]]  # this time or, from the cache, before
        usable = [p for p in paths if keep[p]["usable"]]
        if not usable:
            return [], torch.zeros(0), torch.zeros(0), [], len(todo), skipped
        return (usable, torch.stack([keep[p]["meaning"] for p in usable]),
                torch.stack([keep[p]["luminance"] for p in usable]), [keep[p]["digest"] for p in usable], len(todo),
                skipped)

    # ----------------------------------------------------------------- ranking

    def rank(self, target, top: int = 5) -> list[Match]:
        """The ``top`` best references for ``target`` (a path, a PIL image or an sRGB ``3 x H x W``
        tensor, float in [0, 1] or uint8; only its gray version is read), best first; never the target itself or a byte-identical copy."""
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise SSCNError(f"top={top!r}; pass a whole number >= 1")
        digest, same = None, None
        if isinstance(target, (str, Path)):
            same, digest = Path(target), file_hash(target)
            target = load_image(target)
        elif isinstance(target, Image.Image):
            target = torch.from_numpy(np.array(target.convert("RGB"))).permute(2, 0, 1).float() / 255
        elif isinstance(target, torch.Tensor) and target.dtype == torch.uint8:
            target = target.float() / 255
        if not isinstance(target, torch.Tensor) or target.dim() != 3 or target.shape[0] != 3:
            raise SSCNError("the target must be an image path or an sRGB 3 x H x W tensor")
        meaning, luminance = self.describe(resize_center_crop(target.float(), self.size).unsqueeze(0))
        score, meaning_sim, luminance_sim = (x[0] for x in self.scores(meaning, luminance))
        excluded = torch.zeros(len(self.paths), dtype=torch.bool)
        for i, path in enumerate(self.paths):
            if self.digests[i] == digest or (same is not None and same_file(path, same)):
                excluded[i] = True
        score = score.masked_fill(excluded, -math.inf)
        order = torch.argsort(score, descending=True, stable=True)[:top]
        matches = [Match(self.paths[i], float(score[i]), float(meaning_sim[i]), float(luminance_sim[i]))
                   for i in order.tolist() if math.isfinite(float(score[i]))]
        if not matches:
            raise SSCNError(f"every photo in {self.folder} is the target or a copy of it; "
                            "pass a folder with other photos")
        return matches

    def scores(self, meaning: torch.Tensor, luminance: torch.Tensor, meaning_weight: float | None = None):
        """Targets' features (:meth:`describe`) -> ``T x N`` (score, meaning similarity, luminance
        similarity) against the folder's photos."""
        weight = self.meaning_weight if meaning_weight is None else meaning_weight
        meaning_sim = meaning @ self.meaning.T
        distance = torch.cdist(luminance.double(), self.luminance.double()).float()
        luminance_sim = 1.0 - distance  # descriptor distances lie in [0, 2]
        score = weight * meaning_sim + (1.0 - weight) * luminance_sim
        return score, meaning_sim, luminance_sim

    # ----------------------------------------------------------------- cache

    def _read_cache(self) -> dict:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            with open_regular(self.cache_path, "cache") as handle:
                saved = torch.load(io.BytesIO(handle.read()), weights_only=True)
            if saved.get("version") != CACHE_VERSION:
                return {}
            return {self.folder / name: entry for name, entry in saved["photos"].items()}
        except Exception:  # a damaged cache is rebuilt, never trusted
            return {}

    def _write_cache(self, entries: dict) -> None:
        if self.cache_path is None:
            return
        photos = {path.relative_to(self.folder).as_posix(): entry for path, entry in entries.items()}
        buffer = io.BytesIO()
        torch.save({"version": CACHE_VERSION, "photos": photos}, buffer)
        try:
            write_atomic(self.cache_path, lambda handle: handle.write(buffer.getvalue()), overwrite=True)
        except (SSCNError, OSError) as exc:  # the search still works, only the next one is slower
            warnings.warn(f"could not keep the reference features in {self.cache_path}: {exc}", stacklevel=3)


def find_reference(target, folder: str | Path, top: int = 1, **options) -> list[Match]:
    """The ``top`` best references in ``folder`` for ``target`` (see :class:`ReferenceFinder`)."""
    return ReferenceFinder(folder, **options).rank(target, top)


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _cache_path(folder: Path, encoder_id: str, size: int) -> Path:
    key = hashlib.sha256(f"{folder.resolve()}|{encoder_id}|{size}|{CACHE_VERSION}".encode()).hexdigest()[:24]
    return cache_dir() / "references" / f"{key}.pt"
