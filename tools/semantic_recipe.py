"""The semantic SSCN, end to end: the pre-stage, SSCN on its frozen encoder, the bundled copies.

    python tools/semantic_recipe.py --data DATA/imagenette2-144 --out RUN [--device cuda] [--bundle DIR]

Stage 1 trains the encoder's classification pre-stage (``sscn pretrain``, recipe
``sscn.training.recipes.PRETRAIN["semantic"]``) in ``RUN/pre``; stage 2 trains SSCN on that encoder,
frozen (``sscn train --encoder-from RUN/pre/last.pt --freeze-encoder``, recipe
``sscn.training.recipes.TRAIN["semantic"]``) in ``RUN/sscn``. Both resume from their ``last.pt``, so
the same command continues an interrupted run, on any machine. ``--bundle DIR`` then writes
what ships: each checkpoint's weights in float16 without the optimiser, with its log and
summary, eight flat files in all (what a GPU machine's output folder can hand back).

``--tiny`` runs both stages at toy size (the test suite's end-to-end check); ``--steps``,
``--epochs`` and the per-stage time limits go beyond or below the recipe.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's sscn, also where it is not installed (a GPU machine)

import torch  # noqa: E402

from sscn.models.checkpoint import read_checkpoint
from sscn.io.checkpoints import save_atomic
from sscn.errors import SSCNError  # noqa: E402
from sscn.training.pretrain import pretrain
from sscn.models.pretrained import read_pretrained
from sscn.training.recipes import TINY_PRETRAIN, TINY_TRAIN, pretrain_config, train_config  # noqa: E402
from sscn.training.train import train  # noqa: E402

BUNDLE_FILES = ("pretrain.pt", "pretrain_metrics.jsonl", "pretrain_summary.json",
                "sscn.pt", "sscn_metrics.jsonl", "sscn_summary.json", "recipe.json")


def half(state: dict) -> dict:
    """Floating tensors in float16 (half the size; the loaders return them to float32)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def portable(value, places: dict[str, str]):
    """``value`` with each path that starts with a key of ``places`` spelt from its name instead
    (``/home/me/runs/x/pre/last.pt`` -> ``RUN/pre/last.pt``): what ships names no machine's folders."""
    if isinstance(value, dict):
        return {k: portable(v, places) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v, places) for v in value)
    if isinstance(value, str):
        for prefix, name in places.items():
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return name + value[len(prefix.rstrip("/")):]
    return value


def bundle_pretrain(src: Path, dst: Path, places: dict[str, str] | None = None) -> None:
    ckpt = read_pretrained(src)
    kept = portable({k: ckpt[k] for k in ("config", "classes", "step", "kind", "history")}, places or {})
    save_atomic({"model": half(ckpt["model"]), **kept}, dst)


def bundle_sscn(src: Path, dst: Path, dense: bool | None = None, places: dict[str, str] | None = None) -> None:
    """The shipped form of a training ``last.pt``; ``dense`` sets the inference default in its config."""
    ckpt = read_checkpoint(src)
    config = dict(ckpt["config"])
    if dense is not None:
        config["dense"] = dense
    kept = portable({k: ckpt[k] for k in ("train_config", "classes", "history", "step")}, places or {})
    save_atomic({"model": half(ckpt["model"]), "config": config, **kept}, dst)


def run(args) -> dict:
    out = Path(args.out)
    device = args.device
    # --tiny wins over --epochs, --steps and the time limits: a toy run whatever else was said
    pre_over = {"data_dir": str(args.data), "out_dir": str(out / "pre"),
                "device": device, "precision": args.precision, "time_limit_min": args.pretrain_minutes}
    if args.epochs is not None:
        pre_over["epochs"] = args.epochs
    pre_cfg = pretrain_config(args.recipe, **{**pre_over, **(TINY_PRETRAIN if args.tiny else {})})
    train_over = {"data_dir": str(args.data), "out_dir": str(out / "sscn"),
                  "device": device, "precision": args.precision, "time_limit_min": args.train_minutes,
                  "encoder_from": str(out / "pre" / "last.pt")}
    if args.steps is not None:
        train_over["steps"] = args.steps
    train_cfg = train_config(args.recipe, **{**train_over, **(TINY_TRAIN if args.tiny else {})})
    out.mkdir(parents=True, exist_ok=True)
    from dataclasses import asdict

    recipe = {"recipe": args.recipe, "tiny": args.tiny, "pretrain": asdict(pre_cfg), "train": asdict(train_cfg),
              "torch": torch.__version__, "device": _device_name(device)}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2))

    started = time.time()
    pre = pretrain(pre_cfg, progress=not args.quiet)
    print(f"pre-stage: {pre['steps']} of {pre['total_steps']} steps, gray top-1 {pre['val_gray_top1']}, "
          f"{pre['precision']}, {time.time() - started:.0f} s", flush=True)
    if pre["steps"] < pre["total_steps"]:
        print("the pre-stage stopped early (time limit); run the same command again to continue it")
        return {"pretrain": pre}
    sscn = train(train_cfg, progress=not args.quiet)
    print(f"sscn: {sscn['steps']} of {train_cfg.steps} steps, {sscn['precision']}, {time.time() - started:.0f} s in all",
          flush=True)
    if args.bundle:
        write_bundle(out, Path(args.bundle), dense=args.dense, data=Path(args.data))
    return {"pretrain": pre, "sscn": sscn}


def write_bundle(out: Path, dest: Path, dense: bool | None = None, data: Path | None = None) -> None:
    """The shipped files of the run in ``out``; its folder is spelt ``RUN`` in them, and the data's
    folder (``data``: the one trained on) ``DATA``, as the model card writes them."""
    places = {str(out.resolve()): "RUN", str(out): "RUN"}
    if data is not None:
        places.update({str(data.resolve().parent): "DATA", str(data.parent): "DATA"})
    places = {k: v for k, v in places.items() if k not in (".", "/", "")}
    dest.mkdir(parents=True, exist_ok=True)
    bundle_pretrain(out / "pre" / "last.pt", dest / "pretrain.pt", places)
    bundle_sscn(out / "sscn" / "last.pt", dest / "sscn.pt", dense, places)
    for stage, prefix in (("pre", "pretrain"), ("sscn", "sscn")):
        for name in ("metrics.jsonl", "summary.json"):
            _copy_portable(out / stage / name, dest / f"{prefix}_{name}", places)
    _copy_portable(out / "recipe.json", dest / "recipe.json", places)
    print(f"bundled into {dest}: {', '.join(BUNDLE_FILES)}")


def _copy_portable(src: Path, dst: Path, places: dict[str, str]) -> None:
    """A JSON or JSON-lines file with its paths made portable (:func:`portable`)."""
    lines = src.read_text().splitlines()
    if src.suffix == ".jsonl":
        text = "".join(json.dumps(portable(json.loads(line), places)) + "\n" for line in lines if line.strip())
    else:
        text = json.dumps(portable(json.loads("\n".join(lines)), places), indent=2) + "\n"
    dst.write_text(text)


def _device_name(device: str) -> str:
    """The GPU's name, or the CPU's with the flags that set its precision and speed."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import describe

    return describe("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu", torch.get_num_threads())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/semantic_recipe.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a folder with train/ and val/ class folders (imagenette2-144)")
    p.add_argument("--out", required=True, help="the run's folder (resumed when it holds a run)")
    p.add_argument("--recipe", default="semantic", help="the named recipe of sscn/training/recipes.py (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bf16"],
                   help="training precision (default: %(default)s: bf16 where the hardware computes it natively)")
    p.add_argument("--threads", type=int, default=None, help="torch threads on the CPU (default: torch's)")
    p.add_argument("--epochs", type=float, default=None, help="pre-stage epochs (default: the recipe's)")
    p.add_argument("--steps", type=int, default=None, help="SSCN steps (default: the recipe's)")
    p.add_argument("--pretrain-minutes", type=float, default=0.0, help="stop the pre-stage after this (default: no limit)")
    p.add_argument("--train-minutes", type=float, default=0.0, help="stop SSCN training after this (default: no limit)")
    p.add_argument("--bundle", default="", help="write the shipped checkpoints, logs and summaries here (default: none)")
    dense = p.add_mutually_exclusive_group()
    dense.add_argument("--dense", dest="dense", action="store_true", default=None,
                       help="the bundled SSCN colorizes with dense attention by default")
    dense.add_argument("--sparse", dest="dense", action="store_false", help="... with semantic-sparse attention")
    p.add_argument("--tiny", action="store_true", help="toy sizes: an end-to-end check in seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        run(args)
    except SSCNError as exc:
        print(f"semantic_recipe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
