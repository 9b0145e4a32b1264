"""Same-class references for training: another photo of the target's class, drawn at random
but the same for the same ``(seed, epoch, index)`` (He et al. 2018's pairs).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import torch

from ..color import rgb_to_lab_norm
from ..errors import SSCNError


def _draw(seed: int, epoch: int, index: int) -> int:
    digest = hashlib.blake2b(f"sscn-same-class:{int(seed)}:{int(epoch)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class SameClassSampler:
    """Draw another photo of the same class for a training target, reproducibly.

    ``labels``: the class of every item (``ImageFolder.labels``). :meth:`draw` returns an
    index of the same class other than ``index``, uniformly at random, but the same for
    the same ``(seed, epoch, index)`` in any process, worker or order (a hash, no random
    state); ``None`` when the class has no other item.
    """

    def __init__(self, labels: Sequence[int], seed: int = 0):
        self.labels = [int(label) for label in labels]
        self.seed = int(seed)
        self.members: dict[int, list[int]] = {}
        for index, label in enumerate(self.labels):
            self.members.setdefault(label, []).append(index)

    def draw(self, index: int, epoch: int = 0) -> int | None:
        if not 0 <= index < len(self.labels):
            raise IndexError(f"index {index} out of range for {len(self.labels)} items")
        members = self.members[self.labels[index]]
        if len(members) < 2:
            return None
        choice = _draw(self.seed, epoch, index) % (len(members) - 1)
        position = members.index(index)
        return members[choice + (choice >= position)]  # skip the target itself


class SameClassReferences(torch.utils.data.Dataset):
    """A dataset whose reference is another photo of the target's class.

    Wraps an ``ImageFolder``-like ``dataset`` (items are dicts with ``"rgb"``; it has
    ``labels``). Item ``i`` is ``dataset[i]`` with ``"ref_lab"`` (``3 x H x W``
    normalised Lab) replaced by the Lab of ``dataset[j]``, ``j`` drawn by
    :class:`SameClassSampler` with ``seed`` and the current epoch, and ``"ref_index"``
    = ``j``. When the class has no other photo, ``"ref_index"`` is -1 and the reference
    is the dataset's own ``"ref_lab"`` or, without one, a TPS warp of the target.
    Call :meth:`set_epoch` each epoch for fresh pairs (with DataLoader workers that are not
    persistent, the workers see the new epoch at the next iteration).
    """

    def __init__(self, dataset, seed: int = 0, epoch: int = 0):
        labels = getattr(dataset, "labels", None)
        if labels is None:
            raise SSCNError("SameClassReferences needs a dataset with .labels (an sscn.io.data.ImageFolder)")
        self.dataset, self.epoch = dataset, int(epoch)
        self.sampler = SameClassSampler(labels, seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        other = self.sampler.draw(index, self.epoch)
        if other is None:  # keep the dataset's own (self-augmented) reference, or make a TPS one
            item["ref_index"] = -1
            if "ref_lab" not in item:
                from ..augment import make_reference
                from ..io.data import item_seed

                item["ref_lab"] = make_reference(rgb_to_lab_norm(item["rgb"]), "tps",
                                                 item_seed(self.sampler.seed, index)).image
            return item
        item["ref_lab"] = rgb_to_lab_norm(self.dataset[other]["rgb"])
        item["ref_index"] = other
        return item
