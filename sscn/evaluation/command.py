"""``sscn evaluate``: every check that needs no photo, then the protocol, the same-class
benchmark and the k / r sweep, and their tables.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SSCNError
from ..io.files import check_output, csv_text, write_text
from ..io.photos import open_photos
from .baselines import baseline_methods, network_methods
from .protocol import KIND_LABELS, evaluate
from .saved import SAVED_LISTING, SavedPairs, managed
from .sweep import sweep_kr
from .tables import results_paths, results_table_markdown, sweep_table_markdown, write_results


@dataclass
class _Plan:
    """What ``sscn evaluate`` was asked, checked: the self-augmented ``kinds``, whether the
    same-class benchmark runs, the device, the checkpoint (None: the baselines alone) and
    ``checks``, the inputs and the ``--data`` folder that no output may touch."""

    kinds: tuple[str, ...]
    same_class: bool
    device: torch.device
    checkpoint: str | None
    checks: dict


def run_cli(args: argparse.Namespace) -> int:
    """``sscn evaluate``: print the Markdown table (and the k / r sweep with ``--sweep``).

    Every check that needs no photo comes first, among them that no output (``--out``'s
    tables and pairs file, ``--save-pairs``' PNGs and listing) is an input (the ``--pairs``
    file, the checkpoint) or lies inside ``--data``: an input is never written or removed.
    """
    plan = _read_options(args)
    source = _photos(args)
    model, methods = _methods(args, plan)
    sweep_values = _sweep_values(args, model) if args.sweep else None
    progress = not args.no_progress
    # one folder of saved pairs for the whole run: cleared once, shared by every kind
    saved = SavedPairs(args.save_pairs, **plan.checks) if args.save_pairs is not None else None
    if plan.kinds:
        _self_augmented(args, plan, methods, source, saved, progress)
    if plan.same_class:  # its own table (more metrics); results.* when it is the only kind, else same_class.*
        from .pairs import SAME_CLASS, run_cli as run_same_class

        if plan.kinds:
            print()
        run_same_class(args, methods, source, stem=SAME_CLASS if plan.kinds else "results", save_dir=saved,
                       **plan.checks)
    if args.sweep:
        _sweep(args, plan, model, source, sweep_values, progress)
    return 0


def _read_options(args) -> _Plan:
    """Every check that needs no photo, in the order its messages come."""
    from .pairs import SAME_CLASS, read_pairs

    pairs_file = getattr(args, "pairs", None)
    kinds = _kinds(args, pairs_file)
    _check_numbers(args)
    for flag, folder in (("--out", args.out), ("--save-pairs", args.save_pairs)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise SSCNError(f"{flag} {folder} is a file; pass a folder")
    device = _device(args.device)
    if args.baselines_only and args.sweep:
        raise SSCNError("--sweep needs a model; drop --baselines-only")
    checkpoint = _checkpoint(args)
    same_class, kinds = SAME_CLASS in kinds, tuple(k for k in kinds if k != SAME_CLASS)
    if args.sweep and not kinds:
        raise SSCNError("--sweep runs on a self-augmented kind; add tps, rotation or crop to --kinds")
    checks = {"inputs": [("--pairs file", pairs_file), ("checkpoint", checkpoint)],
              "protected": [("--data", args.data)] if args.data is not None else []}
    if pairs_file:
        read_pairs(pairs_file)  # a malformed file is refused before the work
    _check_outputs(args, kinds, same_class, checks)
    return _Plan(kinds, same_class, device, checkpoint, checks)


def _kinds(args, pairs_file) -> tuple[str, ...]:
    """``--kinds`` (default: every self-augmentation, or the same-class pairs given ``--pairs``), each once."""
    from ..augment import REFERENCE_KINDS
    from .pairs import SAME_CLASS

    if pairs_file and args.kinds and SAME_CLASS not in args.kinds:
        raise SSCNError(f"--pairs scores the {SAME_CLASS} kind; add it to --kinds (or drop --kinds)")
    # a kind named twice is scored once (it would count every photo twice)
    kinds = tuple(dict.fromkeys(args.kinds or ((SAME_CLASS,) if pairs_file else REFERENCE_KINDS)))
    known = set(REFERENCE_KINDS) | set(KIND_LABELS) | {SAME_CLASS}
    if set(kinds) - known:
        raise SSCNError(f"--kinds: unknown {sorted(set(kinds) - known)}; choose from {sorted(known)}")
    return kinds


def _check_numbers(args) -> None:
    """``--size``, ``--sweep-k``, ``--sweep-r`` and ``--seed`` within their ranges."""
    if args.size < 32:
        raise SSCNError(f"--size must be at least 32 px (got {args.size})")
    network = not args.baselines_only and (args.sweep or not args.methods
                                           or bool({"coarse", "sparse", "dense"} & set(args.methods)))
    if network and args.size % 16:
        raise SSCNError(f"--size must be a multiple of 16 for the network (got {args.size}); "
                        "the baselines alone (--baselines-only) take any size")
    for flag, values in (("--sweep-k", args.sweep_k), ("--sweep-r", args.sweep_r)):
        if values and min(values) < 0:
            raise SSCNError(f"{flag}: values must be >= 0 (got {min(values)}); values above the token count are capped")
    if args.sweep and args.sweep_k is not None and args.sweep_r is not None and max(args.sweep_k + args.sweep_r) == 0:
        raise SSCNError("--sweep: every (k, r) is k = r = 0, which attends to nothing; pass a --sweep-k or "
                        "--sweep-r above 0")
    if abs(args.seed) >= 2**32:
        raise SSCNError(f"--seed must be between -2**32 and 2**32 (got {args.seed})")


def _device(name: str) -> torch.device:
    """``--device``: ``auto`` is the GPU when there is one."""
    try:
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    except RuntimeError:
        raise SSCNError(f"--device {name!r} is not a device; pass auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SSCNError(f"--device {name}: no CUDA device here; pass cpu (or auto)")
    return device


def _checkpoint(args) -> str | None:
    """``--checkpoint`` or the bundled one; None with ``--baselines-only``."""
    if args.baselines_only:
        return None
    from ..models.checkpoint import bundled_checkpoint, checkpoint_path

    checkpoint = checkpoint_path(args.checkpoint) or bundled_checkpoint()
    if checkpoint is None:
        raise SSCNError("no --checkpoint given and no bundled checkpoint found; "
                        "pass --checkpoint CKPT or --baselines-only")
    return checkpoint


def _photos(args):
    """The photos of ``--data`` (``--split``), or the built-in samples."""
    if args.data is None:
        from ..io.data import sample_photos

        print("no --data given: evaluating on the built-in sample photos")
        return sample_photos()
    return open_photos(args.data, args.split, args.size)


def _methods(args, plan: _Plan) -> tuple:
    """(the network or None, the methods to score by name): the baselines and, given a checkpoint, the
    network's, of which ``--methods`` picks."""
    model = None
    methods = baseline_methods()
    if plan.checkpoint is not None:
        from ..models.checkpoint import load_model

        model = load_model(plan.checkpoint).to(plan.device)
        methods.update(network_methods(model, seed=args.seed))
    if args.methods:
        unknown = sorted(set(args.methods) - set(methods))
        if unknown:
            raise SSCNError(f"--methods: unknown {unknown}; choose from {sorted(methods)}")
        methods = {name: methods[name] for name in args.methods}
    return model, methods


def _self_augmented(args, plan: _Plan, methods: dict, source, saved, progress: bool) -> None:
    """The protocol on the self-augmented kinds: its table printed and, with ``--out``, written."""
    rows = evaluate(methods, source, plan.kinds, size=args.size, limit=args.limit, batch_size=args.batch_size,
                    seed=args.seed, save_dir=saved, progress=progress)
    print(results_table_markdown(rows))
    if args.out:
        write_results(rows, args.out, **plan.checks)


def _sweep(args, plan: _Plan, model, source, sweep_values, progress: bool) -> None:
    """The k / r sweep on the first self-augmented kind: its table printed and, with ``--out``, written."""
    ks, rs = sweep_values
    sweep = sweep_kr(model, source, ks, rs, kind=plan.kinds[0], size=args.size, limit=args.limit,
                     batch_size=args.batch_size, seed=args.seed, progress=progress)
    print()
    print(sweep_table_markdown(sweep))
    if args.out:
        out = Path(args.out)
        write_text(out / "sweep.md", sweep_table_markdown(sweep) + "\n", True, flag="--out", **plan.checks)
        table = [list(sweep[0]), *([row[key] for key in sweep[0]] for row in sweep)]
        write_text(out / "sweep.csv", csv_text(table), True, flag="--out", **plan.checks)


def _check_outputs(args, kinds, same_class: bool, checks: dict) -> None:
    """Refuse, before any work, an output of this run that would land on an input or in ``--data``."""
    paths = []
    if args.out is not None:
        out = Path(args.out)
        if kinds:
            paths += results_paths(out).values()
        if same_class:
            paths += [*results_paths(out, "same_class" if kinds else "results").values(), out / "pairs.csv"]
        if args.sweep:
            paths += [out / "sweep.md", out / "sweep.csv"]
    for path in paths:
        check_output(path, checks["inputs"], True, "--out", checks["protected"])
    if args.save_pairs is not None:
        root = Path(args.save_pairs)
        for role, source in checks["inputs"]:
            if source is not None and managed(root, Path(source)):
                raise SSCNError(f"--save-pairs {root} holds the {role} {source}, which this run would remove "
                                "or replace; choose another --save-pairs folder")
        check_output(root / SAVED_LISTING, checks["inputs"], True, "--save-pairs", checks["protected"])


def _sweep_values(args, model) -> tuple[list[int], list[int]]:
    """The k and r values of ``--sweep`` (default: around the model's own), checked before any work."""
    config = model.config
    ks = sorted(set(args.sweep_k or {0, config.k // 2, config.k, 2 * config.k}))
    rs = sorted(set(args.sweep_r or {0, config.r}))
    if max(ks) + max(rs) == 0:
        raise SSCNError("--sweep: every (k, r) is k = r = 0, which attends to nothing; pass a --sweep-k or "
                        "--sweep-r above 0")
    return ks, rs
