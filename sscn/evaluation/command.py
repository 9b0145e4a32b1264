"""``sscn evaluate``: every check that needs no photo, then the protocol, the same-class
benchmark and the k / r sweep, and their tables.
"""
from __future__ import annotations

import argparse
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


def run_cli(args: argparse.Namespace) -> int:
    """``sscn evaluate``: print the Markdown table (and the k / r sweep with ``--sweep``).

    Every check that needs no photo comes first, among them that no output (``--out``'s
    tables and pairs file, ``--save-pairs``' PNGs and listing) is an input (the ``--pairs``
    file, the checkpoint) or lies inside ``--data``: an input is never written or removed.
    """
    from ..augment import REFERENCE_KINDS
    from .pairs import SAME_CLASS, read_pairs

    pairs_file = getattr(args, "pairs", None)
    if pairs_file and args.kinds and SAME_CLASS not in args.kinds:
        raise SSCNError(f"--pairs scores the {SAME_CLASS} kind; add it to --kinds (or drop --kinds)")
    # a kind named twice is scored once (it would count every photo twice)
    kinds = tuple(dict.fromkeys(args.kinds or ((SAME_CLASS,) if pairs_file else REFERENCE_KINDS)))
    known = set(REFERENCE_KINDS) | set(KIND_LABELS) | {SAME_CLASS}
    if set(kinds) - known:
        raise SSCNError(f"--kinds: unknown {sorted(set(kinds) - known)}; choose from {sorted(known)}")
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
    for flag, folder in (("--out", args.out), ("--save-pairs", args.save_pairs)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise SSCNError(f"{flag} {folder} is a file; pass a folder")
    try:
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto"
                              else args.device)
    except RuntimeError:
        raise SSCNError(f"--device {args.device!r} is not a device; pass auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SSCNError(f"--device {args.device}: no CUDA device here; pass cpu (or auto)")
    if args.baselines_only and args.sweep:
        raise SSCNError("--sweep needs a model; drop --baselines-only")
    checkpoint = None
    if not args.baselines_only:
        from ..models.checkpoint import bundled_checkpoint

        checkpoint = args.checkpoint or bundled_checkpoint()
        if checkpoint is None:
            raise SSCNError("no --checkpoint given and no bundled checkpoint found; "
                            "pass --checkpoint CKPT or --baselines-only")
    same_class, kinds = SAME_CLASS in kinds, tuple(k for k in kinds if k != SAME_CLASS)
    if args.sweep and not kinds:
        raise SSCNError("--sweep runs on a self-augmented kind; add tps, rotation or crop to --kinds")
    checks = {"inputs": [("--pairs file", pairs_file), ("checkpoint", checkpoint)],
              "protected": [("--data", args.data)] if args.data is not None else []}
    if pairs_file:
        read_pairs(pairs_file)  # a malformed file is refused before the work
    _check_outputs(args, kinds, same_class, checks)
    if args.data is None:
        from ..io.data import sample_photos

        print("no --data given: evaluating on the built-in sample photos")
        source = sample_photos()
    else:
        source = open_photos(args.data, args.split, args.size)
    model = None
    methods = baseline_methods()
    if checkpoint is not None:
        from ..models.checkpoint import load_model

        model = load_model(checkpoint).to(device)
        methods.update(network_methods(model, seed=args.seed))
    if args.methods:
        unknown = sorted(set(args.methods) - set(methods))
        if unknown:
            raise SSCNError(f"--methods: unknown {unknown}; choose from {sorted(methods)}")
        methods = {name: methods[name] for name in args.methods}
    sweep_values = _sweep_values(args, model) if args.sweep else None
    progress = not args.no_progress
    # one folder of saved pairs for the whole run: cleared once, shared by every kind
    saved = SavedPairs(args.save_pairs, **checks) if args.save_pairs is not None else None
    if kinds:
        rows = evaluate(methods, source, kinds, size=args.size, limit=args.limit, batch_size=args.batch_size,
                        seed=args.seed, save_dir=saved, progress=progress)
        print(results_table_markdown(rows))
        if args.out:
            write_results(rows, args.out, **checks)
    if same_class:  # its own table (more metrics); results.* when it is the only kind, else same_class.*
        from .pairs import run_cli as run_same_class

        if kinds:
            print()
        run_same_class(args, methods, source, stem=SAME_CLASS if kinds else "results", save_dir=saved, **checks)
    if args.sweep:
        ks, rs = sweep_values
        sweep = sweep_kr(model, source, ks, rs, kind=kinds[0], size=args.size, limit=args.limit,
                         batch_size=args.batch_size, seed=args.seed, progress=progress)
        print()
        print(sweep_table_markdown(sweep))
        if args.out:
            out = Path(args.out)
            write_text(out / "sweep.md", sweep_table_markdown(sweep) + "\n", True, flag="--out", **checks)
            table = [list(sweep[0]), *([row[key] for key in sweep[0]] for row in sweep)]
            write_text(out / "sweep.csv", csv_text(table), True, flag="--out", **checks)
    return 0


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
