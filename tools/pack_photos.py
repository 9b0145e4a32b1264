"""Copy a class-folder photo set at a smaller size, to carry it to a machine that cannot read the original.

    python tools/pack_photos.py DATA/imagenette2-144 data/imagenette2-128 --size 128 --val-limit 500

Each photo is resized so that its shorter side is ``--size`` (the size training works at,
so nothing the run sees changes), then written as JPEG of ``--quality`` under the same
split, class folder and name. ``--val-limit`` keeps that many val photos, evenly spaced in
name order (training validates on a few hundred). The source is only read. Refuses to write
into an existing non-empty folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageOps
from tqdm import tqdm

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def evenly(items: list, limit: int) -> list:
    if not limit or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def pack(src: Path, dst: Path, size: int, quality: int, val_limit: int, progress: bool = True) -> int:
    if dst.exists() and any(dst.iterdir()):
        raise SystemExit(f"pack_photos: error: {dst} is not empty; pass a new folder")
    if dst.resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"pack_photos: error: {dst} is inside the source {src}; pass a folder outside it")
    jobs = []
    for split in ("train", "val"):
        if not (src / split).is_dir():
            raise SystemExit(f"pack_photos: error: {src} has no {split}/ folder")
        chosen = photos(src / split)
        jobs += [(p, dst / p.relative_to(src)) for p in (evenly(chosen, val_limit) if split == "val" else chosen)]
    for source, target in tqdm(jobs, desc="pack", disable=not progress):
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            scale = size / min(image.size)
            if scale < 1:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target.with_suffix(".JPEG") if target.suffix.lower() != ".jpeg" else target,
                       "JPEG", quality=quality)
    return len(jobs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/pack_photos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a folder with train/ and val/ class folders (only read)")
    p.add_argument("dst", type=Path, help="a new folder for the copy")
    p.add_argument("--size", type=int, default=128, help="shorter side in pixels (default: %(default)s)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default: %(default)s)")
    p.add_argument("--val-limit", type=int, default=500, help="val photos kept, 0 for all (default: %(default)s)")
    args = p.parse_args(argv)
    count = pack(args.src, args.dst, args.size, args.quality, args.val_limit)
    total = sum(f.stat().st_size for f in args.dst.rglob("*") if f.is_file())
    print(f"{count} photos, {total / 2**20:.1f} MiB in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
