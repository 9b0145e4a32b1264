"""``--save-pairs``: every (gray, reference, ground truth) pair as PNG, so other tools
can be scored on the same pairs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..color import join_lab, lab_norm_to_rgb
from ..errors import SSCNError
from ..io.files import check_output, csv_text, write_atomic, write_text
from ..scores import to_uint8
from .cases import Case


SAVED_LISTING = "saved_pairs.csv"  # not pairs.csv: that is the same-class pairs file --out writes


PAIR_FOLDERS = ("target_gray", "ground_truth")  # and reference_<kind>


class SavedPairs:
    """The ``--save-pairs`` folder of one run: ``target_gray/``, ``ground_truth/`` and
    ``reference_<kind>/`` PNGs named ``<index>.png`` (five digits), listed in
    ``saved_pairs.csv`` (``index,name,kind,seed``).

    Made once per run: it first removes an earlier run's pairs (:func:`clear_pairs`), so no
    old ground truth stays beside this run's references, then every PNG and the listing go
    through :func:`sscn.io.files.write_atomic`. None of them may be one of the ``inputs``
    (``(role, path)`` pairs) or lie in a ``protected`` folder: that is refused before
    anything is removed or written.
    """

    def __init__(self, save_dir: str | Path, inputs=(), protected=()):
        self.root = Path(save_dir)
        self.inputs, self.protected = list(inputs), list(protected)
        if self.root.exists() and not self.root.is_dir():
            raise SSCNError(f"--save-pairs {self.root} is a file; pass a folder")
        for role, source in self.inputs:
            if source is not None and managed(self.root, Path(source)):
                raise SSCNError(f"--save-pairs {self.root} holds the {role} {source}, which this run would remove "
                                "or replace; choose another --save-pairs folder")
        for data_flag, folder in self.protected:
            if folder is not None and self.root.resolve().is_relative_to(Path(folder).resolve()):
                raise SSCNError(f"--save-pairs {self.root} is inside {data_flag} {folder}, where its PNGs would be "
                                "read as photos; pass a folder outside the data")
        check_output(self.root / SAVED_LISTING, self.inputs, True, "--save-pairs", self.protected)
        clear_pairs(self.root)
        self.rows: list[tuple] = []
        self.written: set[tuple[str, int]] = set()

    @classmethod
    def of(cls, save_dir) -> "SavedPairs | None":
        """``save_dir`` as a :class:`SavedPairs` (a new one for a path, itself when it is one)."""
        if save_dir is None or isinstance(save_dir, SavedPairs):
            return save_dir
        return cls(save_dir)

    def add(self, case: Case) -> None:
        """Write the PNGs of ``case``; a photo's gray target and ground truth once per run."""
        gray = lab_norm_to_rgb(join_lab(case.gray_l, torch.zeros_like(case.ref_lab[:, 1:])))
        folders = {"target_gray": gray, "ground_truth": case.truth, f"reference_{case.kind}": case.reference}
        for folder, images in folders.items():
            for index, image in zip(case.indices, images):
                if (folder, index) in self.written:
                    continue
                self.written.add((folder, index))
                self._png(self.root / folder / f"{index:05d}.png", image)
        self.rows += zip(case.indices, case.names, [case.kind] * len(case.indices), case.seeds)

    def finish(self) -> Path:
        """Write the listing of every pair saved so far in this run (replacing the previous listing)."""
        return write_text(self.root / SAVED_LISTING, csv_text([("index", "name", "kind", "seed"), *self.rows]),
                          True, inputs=self.inputs, protected=self.protected, flag="--save-pairs")

    def _png(self, path: Path, image: torch.Tensor) -> None:
        from PIL import Image

        picture = Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy())
        write_atomic(path, lambda handle: picture.save(handle, format="PNG"), True, inputs=self.inputs,
                     protected=self.protected, flag="--save-pairs")


def managed(root: Path, path: Path) -> bool:
    """Whether ``path`` is a file a :class:`SavedPairs` on ``root`` removes or replaces."""
    try:
        path, root = path.resolve(), root.resolve()
    except OSError:
        return False
    if path == root / SAVED_LISTING:
        return True
    folder = path.parent
    return (folder.parent == root and (folder.name in PAIR_FOLDERS or folder.name.startswith("reference_"))
            and path.suffix == ".png" and path.stem.isdigit())


def clear_pairs(save_dir: str | Path) -> None:
    """Remove an earlier run's pairs from ``save_dir``: ``saved_pairs.csv`` and the numbered PNGs
    of the folders :class:`SavedPairs` writes (nothing else), so that no old ground truth or
    gray target is left beside this run's references."""
    root = Path(save_dir)
    (root / SAVED_LISTING).unlink(missing_ok=True)
    for folder in (*(root / name for name in PAIR_FOLDERS), *root.glob("reference_*")):
        if folder.is_dir() and not folder.is_symlink():
            for old in folder.glob("*.png"):
                if old.stem.isdigit():
                    old.unlink()


def read_png(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path, formats=["PNG"]) as image:  # never a decoder picked by the content alone
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()
