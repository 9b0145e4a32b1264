"""The ``sscn`` command: ``colorize``, ``demo``, ``train``, ``evaluate``.

Mistakes a user can make (a missing file, a gray reference, a bad parameter, a corrupt
checkpoint) end with one line that says what to do, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SSCNError


def attention_mode(args) -> bool | None:
    """``--dense`` / ``--sparse`` (or a given k or r) override the checkpoint's default mode."""
    if args.dense:
        return True
    if args.sparse or args.k is not None or args.r is not None:
        return False
    return None


def _colorize(args) -> int:
    import os

    import torch

    from .checkpoint import load_model
    from .colorize import Stopwatch, colorize, save_image, threads_for_load
    from .data import decode_image

    if not os.environ.get("OMP_NUM_THREADS"):  # the user's own setting wins
        torch.set_num_threads(threads_for_load())
    watch = Stopwatch()
    with watch("load"):
        # 8-bit files stay 8-bit PIL images: colorize reads their L through a table, never as float RGB
        target, reference = decode_image(args.target), decode_image(args.reference)
    with watch("model"):
        model = load_model(args.checkpoint, k=args.k, r=args.r, dense=attention_mode(args))
        # channels-last weights: the convolutions run 1.1-1.2x faster on the CPU (benchmarks/README.md)
        model = model.to(memory_format=torch.channels_last)
    result = colorize(model, target, reference, size=args.size, seed=args.seed, uint8=True, watch=watch)
    out = Path(args.output or Path(args.target).with_name(Path(args.target).stem + "_colorized.jpg"))
    with watch("save"):
        save_image(result.rgb, out)
    work = watch.total() - watch.times["model"]
    threads = torch.get_num_threads()
    print(f"wrote {out} ({result.rgb.shape[2]} x {result.rgb.shape[1]}) in {work:.2f} s plus {watch.times['model']:.2f} s "
          f"to load the model, {threads} thread{'s' if threads > 1 else ''}: {watch.summary()}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.output, checkpoint=args.checkpoint, size=args.size, show=args.show)
    return 0


def _train(args) -> int:
    import json

    from .train import config_from_args, train

    summary = train(config_from_args(args))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


def _evaluate(args) -> int:
    from .evaluate import run_cli

    return run_cli(args)


def _seed(text: str) -> int:
    """``--seed``: an int that a torch generator accepts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if abs(value) >= 2**63:
        raise argparse.ArgumentTypeError(f"{value} is out of range; pass an int between -2**63 and 2**63")
    return value


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line that points to --help, not the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sscn", description="Exemplar-based colorization (SSCN).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("colorize", help="colorize TARGET with the colours of REFERENCE")
    p.add_argument("target", help="the photo to colorize (colour photos are made gray first)")
    p.add_argument("reference", help="a colour photo whose colours to use")
    p.add_argument("-o", "--output", help="output image (.jpg or .png); default TARGET_colorized.jpg")
    p.add_argument("--size", type=int, default=256, help="working size: the long side the network sees (multiple of 16)")
    p.add_argument("--k", type=int, default=None, help="top-k CAM tokens (implies --sparse; default: the checkpoint's)")
    p.add_argument("--r", type=int, default=None, help="random tokens (default: the checkpoint's)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dense", action="store_true", help="attend to every reference token")
    mode.add_argument("--sparse", action="store_true", help="attend to the top-k CAM tokens and r random ones")
    p.add_argument("--checkpoint", default=None, help="a .pt checkpoint (default: the bundled one)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the r random tokens")
    p.set_defaults(func=_colorize)

    p = sub.add_parser("demo", help="colorize the built-in sample photos and write one figure")
    p.add_argument("-o", "--output", default="sscn-demo.png", help="figure to write (default sscn-demo.png)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--show", action="store_true", help="also open a window with the figure")
    p.set_defaults(func=_demo)

    p = sub.add_parser("train", help="train SSCN (resumes from OUT_DIR/last.pt)")
    from .train import add_arguments as train_arguments

    train_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a checkpoint and baselines with the self-augmentation protocol")
    from .evaluate import add_arguments as evaluate_arguments

    evaluate_arguments(p)
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SSCNError as exc:
        print(f"sscn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system said no (disk full, no permission, ...): say which file, not where in sscn
        where = f": {exc.filename}" if exc.filename else ""
        print(f"sscn {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sscn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
