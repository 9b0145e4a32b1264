"""How often the reference finder picks a photo of the target's class, by the weight of meaning.

    python tools/measure_finder.py --data DATA/imagenette-144 [--pretrained CKPT] [--out docs/results/finder.md]
    python tools/measure_finder.py --data DATA/imagenette-144 --pairs-out FILE

Targets: ``DATA/val``; the folder searched: ``DATA/train``; a class is a photo's parent folder.
For each weight of meaning against luminance (0: the gray descriptor alone, 1: the pre-stage
features alone) it prints the share of targets whose best match (top-1), or one of whose
five best (top-5), has the target's class, and the time of a first and a second (cached)
search set-up over the folder.

``--pairs-out``: instead, the finder picks each val photo's reference among the other val
photos, the pool the same-class benchmark's pair rule draws from, but blind to the classes
(the rule knows them), and writes the pairs for ``sscn evaluate --pairs FILE``. As the rule
does, it passes over the target, byte-identical copies and near duplicates.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from sscn.apps.finder import ReferenceFinder, folder_photos  # noqa: E402
from sscn.evaluation.pairs import NEAR_DUPLICATE, Pair, write_pairs  # noqa: E402
from sscn.io.data import load_image, resize_center_crop  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def measure(data: Path, pretrained: str, weights=WEIGHTS, limit: int | None = None, progress: bool = True) -> dict:
    started = time.perf_counter()
    finder = ReferenceFinder(data / "train", pretrained=pretrained, progress=progress)
    first = time.perf_counter() - started
    started = time.perf_counter()
    ReferenceFinder(data / "train", pretrained=pretrained, progress=False)
    second = time.perf_counter() - started
    targets = folder_photos(data / "val")
    if limit:  # evenly spaced, so every class is in
        targets = targets[::max(1, len(targets) // limit)][:limit]
    classes = [p.parent.name for p in finder.paths]
    meanings, luminances = [], []
    for start in tqdm(range(0, len(targets), 64), desc="describe targets", disable=not progress):
        rgb = torch.stack([resize_center_crop(load_image(p), finder.size) for p in targets[start:start + 64]])
        meaning, luminance = finder.describe(rgb)
        meanings.append(meaning)
        luminances.append(luminance)
    meaning, luminance = torch.cat(meanings), torch.cat(luminances)
    wanted = [p.parent.name for p in targets]
    rows = []
    for weight in weights:
        score = finder.scores(meaning, luminance, weight)[0]
        best = torch.topk(score, 5, dim=1).indices.tolist()
        top1 = sum(classes[b[0]] == w for b, w in zip(best, wanted)) / len(targets)
        top5 = sum(any(classes[i] == w for i in b) for b, w in zip(best, wanted)) / len(targets)
        rows.append({"meaning_weight": weight, "top1": top1, "top5": top5})
    return {"targets": len(targets), "folder": len(finder.paths), "first_s": first, "second_s": second, "rows": rows}


def finder_pairs(folder: Path, pretrained: str, meaning_weight: float | None = None,
                 progress: bool = True) -> tuple[list[Pair], float]:
    """Each photo of ``folder`` paired with the finder's best other photo there; also the share
    whose reference has the target's class (its parent folder)."""
    finder = ReferenceFinder(folder, pretrained=pretrained, progress=progress)
    score, _, luminance = finder.scores(finder.meaning, finder.luminance, meaning_weight)
    distance = 1.0 - luminance  # the pair rule's descriptor distance
    ids = {digest: n for n, digest in enumerate(dict.fromkeys(finder.digests))}
    content = torch.tensor([ids[digest] for digest in finder.digests])
    same = content[:, None] == content[None, :]  # byte-identical files, the photo itself included
    score = score.masked_fill(same | (distance < NEAR_DUPLICATE), -float("inf"))
    best = score.argmax(dim=1).tolist()
    keys = [p.relative_to(folder).as_posix() for p in finder.paths]
    classes = [p.parent.name for p in finder.paths]
    pairs = [Pair(keys[t], keys[r], classes[t], float(distance[t, r]), t, r) for t, r in enumerate(best)]
    return pairs, sum(classes[t] == classes[r] for t, r in enumerate(best)) / len(best)


def markdown(result: dict) -> str:
    lines = ["| meaning weight | same class, top-1 | same class, top-5 |", "| ---: | ---: | ---: |"]
    lines += [f"| {r['meaning_weight']:.2f} | {100 * r['top1']:.1f} % | {100 * r['top5']:.1f} % |" for r in result["rows"]]
    lines.append("")
    lines.append(f"{result['targets']} targets, {result['folder']} photos searched; setting up the search took "
                 f"{result['first_s']:.1f} s the first time and {result['second_s']:.2f} s with the cache "
                 f"({result['first_s'] / result['second_s']:.0f}x).")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a folder with train/ and val/ class folders")
    p.add_argument("--pretrained", default="bundled", help="pre-stage checkpoint (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="only N evenly spaced val photos (default: all)")
    p.add_argument("--out", default=None, help="also write the table here (Markdown)")
    p.add_argument("--pairs-out", default=None,
                   help="instead, write the finder's pairs among the val photos here (CSV for sscn evaluate --pairs)")
    args = p.parse_args(argv)
    if args.pairs_out:
        pairs, same_class = finder_pairs(Path(args.data) / "val", args.pretrained)
        write_pairs(pairs, args.pairs_out)
        print(f"{len(pairs)} pairs written to {args.pairs_out}; the reference has the target's class for "
              f"{100 * same_class:.1f} %")
        return 0
    text = markdown(measure(Path(args.data), args.pretrained, limit=args.limit))
    print(text)
    if args.out:
        from sscn.io.files import write_text

        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
