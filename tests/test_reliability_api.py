"""Issue 24, group 9 (Python API and ``sscn colorize``): a caller's mistake is an SSCNError
raised before any work, never a traceback from inside torch or a silently black result,
and every expected error of ``sscn colorize`` is one line on stderr with a non-zero exit.

Everything runs a tiny random network (width 0.125) at a 32 px working size.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import sscn.io.data
import sscn.models.checkpoint
from sscn.io.checkpoints import save_atomic
from sscn.apps.cli import main
from sscn.apps.colorize import colorize
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = SSCNConfig(width=0.125, num_classes=5, k=8, r=8)


def photo(height: int = 40, width: int = 56, seed: int = 0) -> torch.Tensor:
    """A smooth colourful ``3 x H x W`` image in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 7, generator=g)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def to_pil(rgb: torch.Tensor) -> Image.Image:
    return Image.fromarray((rgb * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SSCN(TINY).eval()


# ================================================================== Python API

def _cast(dtype):
    return lambda model: copy.deepcopy(model).to(dtype)


# (keyword arguments of colorize, or a change to the model or the images) -> the message's gist
API_MISTAKES = {
    "empty target (no rows)": ({"target_rgb": torch.rand(3, 0, 50)}, r"target_rgb is empty \(50 x 0 px\)"),
    "empty target (no columns)": ({"target_rgb": torch.rand(3, 40, 0)}, r"target_rgb is empty \(0 x 40 px\)"),
    "empty uint8 target": ({"target_rgb": torch.zeros(3, 0, 0, dtype=torch.uint8)}, "target_rgb is empty"),
    "empty PIL target": ({"target_rgb": Image.new("RGB", (0, 0))}, "target_rgb is empty"),
    "empty PIL gray target": ({"target_rgb": Image.new("L", (30, 0))}, "target_rgb is empty"),
    "empty reference": ({"ref_rgb": torch.rand(3, 0, 0)}, "ref_rgb is empty"),
    "k = 2.5": ({"k": 2.5}, r"k must be a whole number >= 0 \(got 2.5\)"),
    "r = 2.5": ({"r": 2.5}, r"r must be a whole number >= 0 \(got 2.5\)"),
    "k = True": ({"k": True}, r"k must be a whole number >= 0 \(got True\)"),
    "k = '8'": ({"k": "8"}, "k must be a whole number"),
    "k = -1": ({"k": -1}, r"k must be a whole number >= 0 \(got -1\)"),
    "k = r = 0": ({"k": 0, "r": 0}, r"k \+ r must be at least 1"),
    "dense with k": ({"dense": True, "k": 8}, "dense attends to every reference token, so k=8 would be ignored"),
    "dense = 'yes'": ({"dense": "yes"}, "dense must be True, False or None"),
    "seed = 2**70": ({"seed": 2**70}, r"seed must be a whole number between -2\*\*63 and 2\*\*63"),
    "seed = 1.5": ({"seed": 1.5}, "seed must be a whole number"),
    "size = 64.0": ({"size": 64.0}, r"size must be a whole number, a multiple of 16 .*\(got 64.0\)"),
    "size = '64'": ({"size": "64"}, "size must be a whole number"),
    "half-precision model": ({"model": _cast(torch.float16)}, "weights are float16, .*pass model.float()"),
    "bfloat16 model": ({"model": _cast(torch.bfloat16)}, "weights are bfloat16, .*pass model.float()"),
    "float64 model": ({"model": _cast(torch.float64)}, "weights are float64, .*pass model.float()"),
    "no model": ({"model": lambda model: None}, "model must be an SSCN network .*got NoneType"),
    # a float image below 0: before, it was colorized to an all-black result with no error
    "negative float target": ({"target_rgb": photo() - 1}, r"target_rgb holds float values down to -1, but float "
                                                          r"images must be in \[0, 1\]"),
    "normalised target": ({"target_rgb": (photo() - 0.45) / 0.225}, "target_rgb holds float values down to -2"),
    "negative float reference": ({"ref_rgb": photo(seed=1) - 0.5}, "ref_rgb holds float values down to -0.5"),
    # the existing refusal the negative one is consistent with: the same tolerance, one line
    "0..255 float target": ({"target_rgb": photo() * 255}, "target_rgb holds float values up to 255"),
}


@pytest.mark.parametrize("case", list(API_MISTAKES))
def test_python_api_mistakes_are_one_line_errors_before_any_work(model, case):
    change, match = API_MISTAKES[case]
    arguments = {"model": model, "target_rgb": photo(), "ref_rgb": photo(seed=1), "size": 32}
    for name, value in change.items():
        arguments[name] = value(model) if name == "model" else value
    calls = []
    hook = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with pytest.raises(SSCNError, match=match) as caught:
            colorize(**arguments)
    finally:
        hook.remove()
    assert "\n" not in str(caught.value)
    assert calls == [], "the network ran before the mistake was found"
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is left as it was


def test_numpy_whole_numbers_and_edge_seeds_are_accepted(model):
    target, reference = photo(), photo(seed=1)
    plain = colorize(model, target, reference, size=32, k=4, r=2, seed=3).rgb
    numpy = colorize(model, target, reference, size=np.int64(32), k=np.int64(4), r=np.int32(2), seed=np.int64(3)).rgb
    assert torch.equal(plain, numpy)
    for seed in (-1, 2**63 - 1, None):
        assert colorize(model, target, reference, size=32, seed=seed).rgb.shape == (3, 40, 56)


def test_a_float_image_a_little_outside_0_1_is_clipped_not_refused(model):
    """A resized or sharpened photo overshoots [0, 1] a little: that is read as the clipped image."""
    target = photo(seed=2) * 1.1 - 0.05  # -0.05 .. 1.05
    assert float(target.min()) < 0 < 1 < float(target.max())
    reference = photo(seed=1)
    over = colorize(model, target, reference, size=32).rgb
    clipped = colorize(model, target.clamp(0, 1), reference, size=32).rgb
    assert torch.equal(over, clipped)
    # the reference too
    assert torch.equal(colorize(model, target, reference * 1.08 - 0.04, size=32).rgb,
                       colorize(model, target, (reference * 1.08 - 0.04).clamp(0, 1), size=32).rgb)


def test_a_negative_target_is_never_colorized_black(model):
    """Before: ``photo - 1`` (all values in [-1, 0]) came back as a black image without an error."""
    with pytest.raises(SSCNError, match="down to"):
        result = colorize(model, photo() - 1, photo(seed=1), size=32)
        assert float(result.rgb.max()) > 0.05, "a black result"


# ================================================================== the command line

@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    tiny = SSCN(TINY)
    save_atomic({"model": tiny.state_dict(), "config": tiny.config.to_dict()}, root / "tiny.pt")
    to_pil(photo(48, 64)).save(root / "target.png")
    to_pil(photo(40, 56, seed=1)).save(root / "ref.jpg")
    to_pil(photo(40, 56, seed=1).mean(0, keepdim=True).expand(3, -1, -1)).save(root / "gray.png")
    (root / "notes.png").write_text("a text file with an image's name")
    (root / "not-a-checkpoint.pt").write_text("not a checkpoint")
    (root / "folder.png").mkdir()
    (root / "existing.png").write_bytes(b"keep me")
    (root / "link.png").symlink_to(root / "existing.png")
    (root / "a-file").write_text("a file, not a folder")
    (root / "read-only").mkdir()
    (root / "read-only").chmod(0o555)
    return {"root": root, "checkpoint": root / "tiny.pt", "target": root / "target.png", "reference": root / "ref.jpg"}


# the new refusals of group 9: each is refused before any image is read or the model is loaded
REFUSED_AT_ONCE = {
    "-o with a trailing slash": (["-o", "ROOT/dir.png/"], "-o .*dir.png/ ends in a slash, so it names a folder"),
    "-o empty": (["-o", ""], "-o is empty; pass a file name"),
    "--dense --k": (["--dense", "--k", "8"], "--dense attends to every reference token, so --k 8 would be ignored"),
    "--dense --r": (["--dense", "--r", "4"], "--dense attends to every reference token, so --r 4 would be ignored"),
    "--k 0 --r 0": (["--k", "0", "--r", "0"], r"k \+ r must be at least 1"),
}


def _argv(files, options, out: str = "out.png") -> list[str]:
    options = [o.replace("ROOT/", f"{files['root']}/") for o in options]
    argv = ["colorize", str(files["target"]), str(files["reference"]), "--checkpoint", str(files["checkpoint"]),
            "--size", "32"]
    if "-o" not in options:
        argv += ["-o", str(files["root"] / out)]
    return argv + options


@pytest.mark.parametrize("case", list(REFUSED_AT_ONCE))
def test_cli_refuses_bad_output_names_and_contradictory_flags_before_any_work(capsys, files, monkeypatch, case):
    options, match = REFUSED_AT_ONCE[case]

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the mistake was found")

    monkeypatch.setattr(sscn.io.data, "decode_image", no_work)
    monkeypatch.setattr(sscn.models.checkpoint, "load_model", no_work)
    before = sorted(p.name for p in files["root"].iterdir())
    code = main(_argv(files, options))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("sscn colorize: error: ") and re.search(match, lines[0]), lines[0]
    assert out == ""
    # nothing was written: not dir.png (the slash dropped), not TARGET_colorized.jpg (the empty -o)
    assert sorted(p.name for p in files["root"].iterdir()) == before


def _cli_mistakes() -> dict[str, tuple[list[str], str]]:
    """Every expected user error of ``sscn colorize``: its options and the gist of its one line."""
    mistakes = {
        # bad paths
        "missing target": (["TARGET=ROOT/missing.png"], "missing.png"),
        "missing reference": (["REFERENCE=ROOT/missing.jpg"], "missing.jpg"),
        "target is a folder": (["TARGET=ROOT/folder.png"], "folder"),
        "target is not an image": (["TARGET=ROOT/notes.png"], "notes.png"),
        "reference is a device": (["REFERENCE=/dev/null"], "/dev/null"),
        "gray reference": (["REFERENCE=ROOT/gray.png"], "no colour"),
        "missing checkpoint": (["--checkpoint", "ROOT/missing.pt"], "missing.pt"),
        "not a checkpoint": (["--checkpoint", "ROOT/not-a-checkpoint.pt"], "not-a-checkpoint.pt"),
        # bad numbers
        "--size 40": (["--size", "40"], "--size must be a multiple of 16"),
        "--size 4096": (["--size", "4096"], "--size must be at most"),
        "--size 3.5": (["--size", "3.5"], "argument --size: invalid int value"),
        "--k -1": (["--k", "-1"], r"k must be a whole number >= 0 \(got -1\)"),
        "--k 2.5": (["--k", "2.5"], "argument --k: invalid int value"),
        "--r -3": (["--r", "-3"], r"r must be a whole number >= 0 \(got -3\)"),
        "--seed 2**70": (["--seed", str(2**70)], "argument --seed: .* out of range"),
        "--seed abc": (["--seed", "abc"], "argument --seed: invalid int value"),
        "--max-pixels 0": (["--max-pixels", "0"], "--max-pixels must be a positive number"),
        "--max-pixels 100": (["--max-pixels", "100"], "too large to open safely"),
        # contradictory flags
        "--dense --sparse": (["--dense", "--sparse"], "not allowed with"),
        **{name: REFUSED_AT_ONCE[name] for name in ("--dense --k", "--dense --r", "--k 0 --r 0")},
        # outputs
        **{name: REFUSED_AT_ONCE[name] for name in ("-o with a trailing slash", "-o empty")},
        "-o of an unknown type": (["-o", "ROOT/out.gif"], "must end in .png"),
        "-o is the target": (["-o", "ROOT/target.png"], "is the target photo"),
        "-o is the reference": (["-o", "ROOT/ref.jpg", "--overwrite"], "is the reference photo"),
        "-o exists": (["-o", "ROOT/existing.png"], "already exists; pass --overwrite"),
        "-o is a folder": (["-o", "ROOT/folder.png"], "folder"),
        "-o is a link": (["-o", "ROOT/link.png", "--overwrite"], "symbolic link"),
        "-o inside a file": (["-o", "ROOT/a-file/out.png"], "a-file"),
        "unknown option": (["--bogus"], r"unrecognized arguments: --bogus"),
    }
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        mistakes["-o in a read-only folder"] = (["-o", "ROOT/read-only/out.png"], "read-only")
    return mistakes


CLI_MISTAKES = _cli_mistakes()

# Runs every case in one fresh Python (one torch import): as on a terminal, a warning or a
# traceback would be on stderr. Each case gets the warnings a fresh process would show.
DRIVER = r"""
import contextlib, io, json, sys, traceback, warnings
from sscn.apps.cli import main

results = []
for argv in json.loads(sys.stdin.read()):
    err, out = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        warnings.simplefilter("default")
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stderr": err.getvalue(), "stdout": out.getvalue()})
print("RESULTS " + json.dumps(results))
"""


def _cli_argv(files, options, out: str) -> list[str]:
    paths = {"TARGET": str(files["target"]), "REFERENCE": str(files["reference"])}
    rest = []
    for option in options:
        role, _, path = option.partition("=")
        if role in paths and path:
            paths[role] = path
        else:
            rest.append(option)
    argv = _argv(files, rest, out)
    argv[1:3] = [p.replace("ROOT/", f"{files['root']}/") for p in (paths["TARGET"], paths["REFERENCE"])]
    return argv


def _out(case: str) -> str:
    return f"out-{list(CLI_MISTAKES).index(case)}.png"


@pytest.fixture(scope="module")
def cli_results(files) -> dict[str, dict]:
    # each case its own default output, so that one case's result cannot change the next one's error
    argvs = [_cli_argv(files, options, _out(case)) for case, (options, _) in CLI_MISTAKES.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(argvs), env=env, cwd=files["root"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))
    return dict(zip(CLI_MISTAKES, json.loads(line[len("RESULTS "):])))


@pytest.mark.parametrize("case", list(CLI_MISTAKES))
def test_every_colorize_user_error_is_one_line_and_no_traceback(files, cli_results, case):
    _, match = CLI_MISTAKES[case]
    result = cli_results[case]
    err = result["stderr"]
    assert "Traceback" not in err, err
    assert result["code"] not in (0, None), err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"sscn( colorize)?: error: ", lines[0]), lines[0]
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    assert result["stdout"] == ""
    assert not (files["root"] / _out(case)).exists()
    assert (files["root"] / "existing.png").read_bytes() == b"keep me"


def test_k_or_r_means_sparse_attention_in_the_api_as_on_the_command_line():
    """Before: a model whose checkpoint says dense ignored ``k`` and ``r`` without a word."""
    torch.manual_seed(0)
    dense_model = SSCN(SSCNConfig(width=0.125, num_classes=5, k=8, r=8, dense=True)).eval()
    target, reference = photo(), photo(seed=1)
    sparse_k1 = colorize(dense_model, target, reference, size=32, k=1, r=0).rgb
    assert torch.equal(sparse_k1, colorize(dense_model, target, reference, size=32, k=1, r=0, dense=False).rgb)
    assert not torch.equal(sparse_k1, colorize(dense_model, target, reference, size=32).rgb)


@pytest.mark.parametrize("command, hint", [("colorize", "--size or a smaller image"), ("evaluate", "--limit"),
                                           ("gallery", "fewer classes"), ("train", "--batch-size")])
def test_out_of_memory_says_what_to_make_smaller_for_that_command(monkeypatch, capsys, command, hint):
    """The one-line out-of-memory message names the command's own options (it once told
    every command to pass colorize's ``--size``)."""
    from types import SimpleNamespace

    import sscn.apps.cli

    def out_of_memory(args):
        raise MemoryError()

    parsed = SimpleNamespace(command=command, func=out_of_memory)
    monkeypatch.setattr(sscn.apps.cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda argv: parsed))
    assert main([command]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"sscn {command}: error: out of memory" in err and hint in err


@pytest.mark.parametrize("flag", ["--figure", "--out"])
def test_semantics_outputs_are_checked_before_measuring_and_named_by_their_flag(tmp_path, capsys, flag):
    """``python -m sscn.apps.semantics``: an output inside the photos it reads, or naming a folder,
    is refused at once, in one line that names the flag the user passed."""
    from sscn.apps.semantics import main as semantics

    data = tmp_path / "data"
    (data / "c0").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "c0" / "a.png")
    before = sorted(p.name for p in data.rglob("*"))
    assert semantics(["--data", str(data), flag, str(data / "out.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} " in err and "inside --data" in err
    assert semantics(["--data", str(data), flag, str(tmp_path) + "/"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} " in err and "folder" in err
    assert sorted(p.name for p in data.rglob("*")) == before
