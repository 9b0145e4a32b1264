"""Ground-truth photos from any source (an image folder, sample photos, tensors), resized
and centre-cropped, each with its index in the whole source.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..errors import SSCNError


class Photos:
    """Ground-truth photos as ``(index, name, rgb 3 x size x size)``, from any source.

    ``source``: a dataset whose items are dicts with ``"rgb"`` (``sscn.io.data.ImageFolder``),
    a list of ``(name, rgb)`` pairs (``sscn.io.data.sample_photos()``), a list of ``3 x H x W``
    tensors, or a folder path. Photos are resized and centre-cropped to ``size``.
    ``limit`` keeps that many evenly spaced photos (so every class of a sorted folder
    stays represented); each keeps its index in the whole source, hence its references.
    """

    def __init__(self, source, size: int = 128, limit: int | None = None):
        if isinstance(source, (str, Path)):
            source = open_photos(source, size=size)
        if limit is not None and limit < 1:
            raise SSCNError(f"limit={limit}; pass None (every photo) or a positive count")
        self.source, self.size = source, size
        total = len(source)
        if total == 0:
            raise SSCNError("the evaluation set is empty; check --data (a folder of images)")
        if limit is None or limit >= total:
            self.indices = list(range(total))
        else:
            self.indices = np.round(np.linspace(0, total - 1, limit)).astype(int).tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[int, str, torch.Tensor]:
        return self._photo(position, substitute=True)

    def _photo(self, position: int, substitute: bool) -> tuple[int, str, torch.Tensor]:
        from .data import resize_center_crop

        index = self.indices[position]
        item = self._item(index, substitute)
        if isinstance(item, dict):
            rgb, name = item["rgb"], _item_name(self.source, index)
        elif isinstance(item, (tuple, list)):
            name, rgb = item[0], item[1]
        else:
            rgb, name = item, f"{index:05d}"
        rgb = torch.as_tensor(rgb).float()
        if rgb.dim() != 3 or rgb.shape[0] != 3 or rgb.numel() == 0:
            raise SSCNError(f"photo {name!r} has shape {tuple(rgb.shape)}; pass 3 x H x W sRGB in [0, 1] "
                            "with at least one pixel")
        if not torch.isfinite(rgb).all():
            raise SSCNError(f"photo {name!r} has NaN or infinite values; pass finite sRGB in [0, 1]")
        return index, str(name), resize_center_crop(rgb, self.size).clamp(0, 1).contiguous()

    def _item(self, index: int, substitute: bool):
        from .data import ImageFolder

        if isinstance(self.source, ImageFolder):
            return self.source.item(index, substitute=substitute)
        return self.source[index]

    def readable(self, positions: Iterable[int]) -> list[tuple[int, str, torch.Tensor]]:
        """The photos at ``positions`` that decode; each one that does not is left out with a warning.

        Indexing an image folder serves the next readable photo for a file that fails to
        decode; scores must never go under a name whose photo was not the one scored."""
        photos = []
        for position in positions:
            try:
                photos.append(self._photo(position, substitute=False))
            except (SSCNError, OSError) as err:  # OSError: no permission to read it
                warnings.warn(f"{err}; left out of the scores", stacklevel=2)
        return photos


def _item_name(dataset, index: int) -> str:
    for attribute in ("paths", "files", "samples"):
        entries = getattr(dataset, attribute, None)
        if entries is not None:
            entry = entries[index]
            entry = entry[0] if isinstance(entry, (tuple, list)) else entry
            return Path(entry).stem
    return f"{index:05d}"


def open_photos(root: str | Path, split: str = "val", size: int = 128):
    """A folder of photos: ``root/split`` when it exists (Imagenette's layout), else ``root``."""
    from . import data

    root = Path(root)
    if not root.is_dir():
        raise SSCNError(f"--data {root}: no such folder; pass a folder of images (or Imagenette's root with val/)")
    if (root / split).is_dir():
        return data.imagenette_folder(root, split, size)
    return data.ImageFolder(root, size=size)
