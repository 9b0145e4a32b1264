"""The ``sscn`` command: ``colorize``, ``demo``, ``gallery``, ``pretrain``, ``train``, ``evaluate``.

Mistakes a user can make (a missing file, a gray reference, a bad parameter, a corrupt
checkpoint) end with one line that says what to do, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from ..errors import SSCNError
from ..evaluation.options import add_arguments as evaluate_arguments
from ..training.config import PretrainConfig, TrainConfig, add_config_arguments, config_from_args
from ..training.recipes import PRETRAIN, TRAIN
from .console import say

# nothing imported at the top imports torch: ``sscn --help`` and ``sscn CMD --help`` answer at once;
# each command imports what it runs


def attention_mode(args) -> bool | None:
    """``--dense`` / ``--sparse`` (or a given k or r) override the checkpoint's default mode.

    ``--dense`` with ``--k`` or ``--r`` (which choose sparse tokens) is refused, as are k or r
    below 0 and k = r = 0."""
    from .colorize import check_attention

    check_attention(args.k, args.r, True if args.dense else None, flag="--")
    if args.dense:
        return True
    if args.sparse or args.k is not None or args.r is not None:
        return False
    return None


@contextlib.contextmanager
def _pixel_limit(limit: int | None):
    """``--max-pixels``: Pillow's decompression-bomb limit for this command only."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    if limit is not None:
        if limit < 1:
            raise SSCNError(f"--max-pixels must be a positive number of pixels (got {limit})")
        Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _colorize(args) -> int:
    import os

    import torch

    from ..models.checkpoint import load_model
    from .colorize import (Stopwatch, check_output_size, check_size, colorize, output_format, save_image,
                           threads_for_load)
    from ..io.data import decode_image
    from ..io.files import check_output

    # every check that needs no pixels comes before the slow work
    if args.output == "":  # not the default name: the user asked for a file and named none
        raise SSCNError("-o is empty; pass a file name such as photo_colorized.jpg, or leave -o out for "
                        "TARGET_colorized.jpg")
    if args.output is not None and args.output.endswith(("/", os.sep)):  # Path() would drop the slash
        raise SSCNError(f"-o {args.output} ends in a slash, so it names a folder; pass a file name "
                        f"({args.output.rstrip('/' + os.sep)} without the slash, or a file in that folder)")
    target_path = Path(args.target)
    out = Path(args.output if args.output is not None else target_path.with_name(target_path.stem + "_colorized.jpg"))
    output_format(out)
    check_output(out, [("target photo", args.target), ("reference photo", args.reference or args.target)],
                 args.overwrite)
    if (args.reference is None) == (args.reference_from is None):
        raise SSCNError("pass a REFERENCE photo or --reference-from FOLDER (one of the two)")
    if args.reference_from is not None:
        args.reference = str(_choose_reference(args, out))
    check_size(args.size)
    dense = attention_mode(args)
    if not os.environ.get("OMP_NUM_THREADS"):  # the user's own setting wins
        torch.set_num_threads(threads_for_load())
    watch = Stopwatch()
    with watch("load"), _pixel_limit(args.max_pixels):
        # 8-bit files stay 8-bit PIL images: colorize reads their L through a table, never as float RGB
        target, reference = decode_image(args.target), decode_image(args.reference)
    check_output_size(out, *(target.shape[-2:] if isinstance(target, torch.Tensor) else (target.height, target.width)))
    with watch("model"):
        model = load_model(args.checkpoint, k=args.k, r=args.r, dense=dense)
        # channels-last weights: the convolutions run 1.1-1.2x faster on the CPU (benchmarks/README.md)
        model = model.to(memory_format=torch.channels_last)
    result = colorize(model, target, reference, size=args.size, seed=args.seed, uint8=True, watch=watch)
    with watch("save"):
        save_image(result.rgb, out, overwrite=args.overwrite)
    work = watch.total() - watch.times["model"]
    threads = torch.get_num_threads()
    say(f"wrote {out} ({result.rgb.shape[2]} x {result.rgb.shape[1]}) in {work:.2f} s plus {watch.times['model']:.2f} s "
         f"to load the model, {threads} thread{'s' if threads > 1 else ''}: {watch.summary()}")
    return 0


def _choose_reference(args, out: Path) -> Path:
    """``--reference-from``: the folder's best reference for the target, said with its score."""
    from ..io.files import check_output
    from .finder import ReferenceFinder

    if args.show_top < 1:
        raise SSCNError(f"--show-top must be at least 1 (got {args.show_top})")
    if not Path(args.target).is_file():
        raise SSCNError(f"{args.target}: no such file; check the path")
    matches = ReferenceFinder(args.reference_from, pretrained=args.pretrained).rank(args.target, top=args.show_top)
    say(f"reference: {matches[0].describe()}")
    for rank, match in enumerate(matches[1:], start=2):
        say(f"  then {rank}. {match.describe()}")
    check_output(out, [("target photo", args.target), ("reference photo", matches[0].path)], args.overwrite)
    return matches[0].path


def _demo(args) -> int:
    from .colorize import check_size
    from .demo import run_demo

    check_size(args.size)
    # run_demo checks the output (an input, a link, a missing folder, an existing file) before any work
    run_demo(out=args.output, checkpoint=args.checkpoint, size=args.size, show=args.show, overwrite=args.overwrite)
    return 0


def _gallery(args) -> int:
    from .gallery import run_gallery

    # run_gallery checks the output (an input, a file inside --data or --reference-from, an existing file)
    # and the --reference-from folder before any work
    run_gallery(out=args.output, data=args.data, split=args.split, checkpoint=args.checkpoint,
                progress=not args.no_progress, overwrite=args.overwrite, reference_from=args.reference_from)
    return 0


def _train(args) -> int:
    import json

    from ..training.train import train

    _say_recipe(args)
    summary = train(config_from_args(args, TrainConfig))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


def _pretrain(args) -> int:
    import json

    from ..training.pretrain import pretrain

    _say_recipe(args)
    summary = pretrain(config_from_args(args, PretrainConfig))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


def _say_recipe(args) -> None:
    if args.recipe is not None:
        recipes = TRAIN if args.command == "train" else PRETRAIN
        chosen = ", ".join(f"{name}={getattr(args, name)!r}" for name in recipes[args.recipe])
        print(f"recipe {args.recipe}: {chosen}")


def _evaluate(args) -> int:
    from .colorize import MAX_SIZE
    from ..evaluation.command import run_cli
    from ..io.files import lock_folder

    _check_device(args.device)
    if args.size > MAX_SIZE:
        raise SSCNError(f"--size must be at most {MAX_SIZE} (got {args.size})")
    for flag, folder in (("--save-pairs", args.save_pairs), ("--out", args.out)):
        if folder and args.data and _inside(folder, args.data):
            raise SSCNError(f"{flag} {folder} is inside --data {args.data}, which sscn only reads (its files would be "
                            "read as photos); pass a folder outside the data")
    with contextlib.ExitStack() as stack:  # two evaluations writing one folder would mix their files
        folders = {}
        for flag, folder in (("--save-pairs", args.save_pairs), ("--out", args.out)):
            if folder is not None:
                folders.setdefault(Path(folder).resolve(), (flag, folder))
        for flag, folder in folders.values():
            stack.enter_context(lock_folder(folder, f"{flag} folder"))
        return run_cli(args)


def _inside(folder, root) -> bool:
    return Path(folder).resolve().is_relative_to(Path(root).resolve())


def _check_device(name: str) -> None:
    """``--device``: auto, cpu, cuda or cuda:N of a GPU that is here, or mps where PyTorch has it."""
    import torch

    if name in ("auto", "cpu"):
        return
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise SSCNError("--device mps: no Apple GPU (MPS) here; pass cpu (or auto)")
        return
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not (index.isascii() and index.isdigit())):
        raise SSCNError(f"--device {name!r} is not a device sscn runs on; pass auto, cpu or cuda (cuda:N for GPU N)")
    if not torch.cuda.is_available():
        raise SSCNError(f"--device {name}: no CUDA device here; pass cpu (or auto)")
    if index and int(index) >= torch.cuda.device_count():
        raise SSCNError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 to "
                        f"cuda:{torch.cuda.device_count() - 1})")


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
    p.add_argument("reference", nargs="?", default=None,
                   help="a colour photo whose colours to use (or leave it out and pass --reference-from)")
    p.add_argument("--reference-from", metavar="FOLDER", default=None,
                   help="choose the reference from this folder of colour photos: the one most like the target "
                   "in meaning and in luminance (default: none, REFERENCE is given)")
    p.add_argument("--show-top", type=int, default=1, metavar="N",
                   help="with --reference-from, list the N best candidates with their scores (default: 1)")
    p.add_argument("--pretrained", default="bundled",
                   help="with --reference-from, the pre-stage checkpoint that reads meaning (default: bundled)")
    p.add_argument("-o", "--output", help="output image (.jpg, .png, .webp, .tif or .bmp); "
                   "default TARGET_colorized.jpg. It must not be the target or the reference")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists (default: refuse)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="open images of up to N pixels (default: Pillow's limit, about 89 million)")
    p.add_argument("--size", type=int, default=256, help="working size: the long side the network sees (multiple of 16)")
    p.add_argument("--k", type=int, default=None, help="top-k CAM tokens (implies --sparse; default: the checkpoint's)")
    p.add_argument("--r", type=int, default=None, help="random tokens (default: the checkpoint's)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dense", action="store_true", help="attend to every reference token (not with --k or --r)")
    mode.add_argument("--sparse", action="store_true", help="attend to the top-k CAM tokens and r random ones")
    p.add_argument("--checkpoint", default=None, help="a .pt checkpoint, or legacy: the model bundled before the semantic run (default: the bundled one)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the r random tokens")
    p.set_defaults(func=_colorize)

    p = sub.add_parser("demo", help="colorize the built-in sample photos and write one figure")
    p.add_argument("-o", "--output", default="sscn-demo.png", help="figure to write (default sscn-demo.png)")
    p.add_argument("--overwrite", action="store_true", help="replace the figure if it exists (default: refuse)")
    p.add_argument("--checkpoint", default=None, help="a .pt checkpoint, or legacy: the model bundled before the semantic run (default: the bundled one)")
    p.add_argument("--size", type=int, default=256, help="working size: the long side the network sees (multiple of 16)")
    p.add_argument("--show", action="store_true", help="also open a window with the figure")
    p.set_defaults(func=_demo)

    p = sub.add_parser("gallery", help="colorize real pairs (a gray photo, a different colour photo) into one figure")
    p.add_argument("-o", "--output", default="sscn-gallery.png", help="figure to write (default sscn-gallery.png)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="also one pair per class of this folder (Imagenette's root: uses --split); "
                   "default: the sample photos only")
    p.add_argument("--split", default="val", help="subfolder of --data to use when it exists (default: val)")
    p.add_argument("--reference-from", metavar="FOLDER", default=None,
                   help="also show each --data target (without --data: each sample target) a second time, with "
                   "the reference the finder of sscn colorize --reference-from picks from this folder of colour "
                   "photos, beside the fixed pair (default: none, the fixed pairs only)")
    p.add_argument("--checkpoint", default=None, help="a .pt checkpoint, or legacy: the model bundled before the semantic run (default: the bundled one)")
    p.add_argument("--overwrite", action="store_true", help="replace the figure if it exists (default: refuse)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_gallery)

    p = sub.add_parser("train", help="train SSCN (resumes from OUT_DIR/last.pt)")
    _recipe_argument(p, TRAIN)
    add_config_arguments(p, TrainConfig)
    p.set_defaults(func=_train)

    p = sub.add_parser("pretrain", help="pre-train the reference encoder as a classifier (resumes from OUT_DIR/last.pt)")
    _recipe_argument(p, PRETRAIN)
    add_config_arguments(p, PretrainConfig)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("evaluate", help="score a checkpoint and baselines with the self-augmentation protocol")
    evaluate_arguments(p)
    p.set_defaults(func=_evaluate)
    for subparser in sub.choices.values():
        _show_defaults(subparser)
    return parser


def _recipe_argument(parser: argparse.ArgumentParser, recipes: dict) -> None:
    parser.add_argument("--recipe", choices=sorted(recipes), default=None,
                        help="start from a named recipe (sscn/training/recipes.py); flags given override it "
                             "(default: none, the flags' own defaults)")


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every option's help ends with its default (those that say it in words keep their words)."""
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS and action.option_strings \
                and "default" not in action.help and not isinstance(action, argparse._HelpAction):
            action.help += " (default: %(default)s)"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, a ``--recipe``'s settings as the defaults that the flags given override."""
    parser = build_parser()
    args = parser.parse_args(argv)
    recipe = getattr(args, "recipe", None)
    if recipe is not None:
        recipes = {"train": TRAIN, "pretrain": PRETRAIN}[args.command]
        subparser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        subparser.set_defaults(**recipes[recipe])
        args = parser.parse_args(argv)
    return args


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a result being written is cleaned up the same way."""


@contextlib.contextmanager
def _sigterm_interrupts():
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def terminate(signum, frame):
        raise _Terminated()

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# what to make smaller when a command runs out of memory
_MEMORY_HINTS = {
    "sscn colorize": "use a smaller --size or a smaller image",
    "sscn demo": "use a smaller --size",
    "sscn gallery": "use fewer classes or close other programs",
    "sscn train": "use a smaller --batch-size or --image-size",
    "sscn pretrain": "use a smaller --batch-size or --image-size",
    "sscn evaluate": "use a smaller --size or fewer photos (--limit)",
    "sscn": "close other programs or use smaller inputs",
}


def main(argv: list[str] | None = None) -> int:
    command = "sscn"
    try:
        with _sigterm_interrupts():
            args = parse(argv)
            command = f"sscn {args.command}"
            return args.func(args)
    except SSCNError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system said no (disk full, no permission, ...): say which file, not where in sscn
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{command}: error: out of memory; {_MEMORY_HINTS.get(command, _MEMORY_HINTS['sscn'])}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        print(f"{command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + int(signal.SIGTERM if terminated else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
