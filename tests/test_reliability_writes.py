"""Every file sscn writes goes through one atomic, input-protecting writer (issue 24, groups 1-4 and
7-9 for evaluate, gallery, demo and sscn.io.files), and no subcommand ever changes a file it reads.

Everything runs a tiny random network (width 0.125) at a 32 px working size (the gallery at its
own 128 px) and the baselines where no network is needed.
"""
import csv
import errno
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.io import files
from sscn.apps import gallery
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig

from cli_support import assert_one_line_error, garble_middle, run_cli, subprocess_env, tiny_model_file

ROOT = Path(__file__).resolve().parents[1]
# num_classes=2 and k = r = 4: the same network sscn train builds for the tiny runs below
TINY = SSCNConfig(width=0.125, num_classes=2, k=4, r=4)

pytestmark = pytest.mark.usefixtures("one_thread")


def photo(height=40, width=40, seed=0) -> np.ndarray:
    """A colourful ``H x W x 3`` uint8 picture: a random 5 x 5 layout of colours, blocky, plus noise
    (different seeds give different layouts: no two photos are near-duplicates for the pair rule)."""
    rng = np.random.default_rng(seed)
    layout = rng.integers(0, 200, (5, 5, 3))
    rows, cols = np.arange(height) * 5 // height, np.arange(width) * 5 // width
    return np.clip(layout[rows][:, cols] + rng.integers(0, 56, (height, width, 3)), 0, 255).astype(np.uint8)


def save(array, path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return Path(path)


def image_folder(root: Path, classes=2, per_class=3, seed=0) -> Path:
    for label in range(classes):
        for i in range(per_class):
            save(photo(seed=seed + 10 * label + i), root / f"c{label}" / f"{i}.png")
    return root


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model"), TINY)


@pytest.fixture(autouse=True)
def grad_back():
    """A test that fails on a defect that switches autograd off must not change the tests after it."""
    yield
    torch.set_grad_enabled(True)


EVALUATE = ["evaluate", "--baselines-only", "--methods", "copy", "--size", "32", "--no-progress"]


@pytest.fixture()
def pairs_folder(tmp_path, capsys) -> tuple[Path, Path]:
    """A data folder and, in its own folder, the same-class pairs file of 6 photos (made by sscn evaluate)."""
    data = image_folder(tmp_path / "data")
    made = tmp_path / "made"
    code, _, err = run_cli(capsys, [*EVALUATE, "--data", data, "--kinds", "same_class", "--out", made])
    assert code == 0, err
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(made / "pairs.csv", folder / "pairs.csv")
    return data, folder / "pairs.csv"


# ------------------------------------------------------------------ group 1: evaluate never writes its --pairs input

@pytest.mark.parametrize("case", ["--out beside it, --limit 2", "--save-pairs beside it",
                                  "--kinds tps same_class --save-pairs beside it"])
def test_evaluate_never_writes_its_pairs_file(capsys, pairs_folder, case):
    """Group 1: the --pairs file was rewritten with 2 pairs, appended to in another format, or deleted."""
    data, pairs = pairs_folder
    before = pairs.read_bytes()
    assert before.count(b"\n") == 7  # the header and six pairs
    argv = [*EVALUATE, "--data", data, "--pairs", pairs]
    if case.startswith("--out"):
        line = assert_one_line_error(capsys, [*argv, "--out", pairs.parent, "--limit", "2"],
                                     "--out .*pairs.csv is the --pairs file; the result must not replace an input")
        assert "Traceback" not in line
        assert sorted(p.name for p in pairs.parent.iterdir()) == ["pairs.csv"]  # refused before any work
    else:
        if case.startswith("--kinds"):
            argv[argv.index("--methods"):argv.index("--methods")] = ["--kinds", "tps", "same_class"]
        code, out, err = run_cli(capsys, [*argv, "--save-pairs", pairs.parent])
        assert code == 0 and "Traceback" not in err, err
        listing = pairs.parent / "saved_pairs.csv"
        with listing.open() as handle:
            kinds = [row["kind"] for row in csv.DictReader(handle)]
        assert kinds.count("same_class") == 6 and kinds.count("tps") == (6 if case.startswith("--kinds") else 0)
    assert pairs.read_bytes() == before


def test_evaluate_refuses_a_checkpoint_or_data_as_output(capsys, tmp_path, model_file):
    """Group 1: no output of evaluate lands on an input: the checkpoint, the data, the pairs file."""
    data = image_folder(tmp_path / "data")
    before = checksums(tmp_path)
    assert_one_line_error(capsys, [*EVALUATE, "--data", data, "--kinds", "tps", "--out", data / "c0"],
                          "--out .* is inside --data")
    ckpt = tmp_path / "results.csv"  # a checkpoint that happens to have the name of a table
    shutil.copy(model_file, ckpt)
    argv = ["evaluate", "--data", data, "--checkpoint", ckpt, "--methods", "copy", "--size", "32", "--kinds", "tps",
            "--no-progress", "--out", tmp_path]
    assert_one_line_error(capsys, argv, "results.csv is the checkpoint; the result must not replace an input")
    before["results.csv"] = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert checksums(tmp_path) == before


# ------------------------------------------------------------------ group 2: gallery and demo write atomically

TERMINATE_DURING_WRITE = """
import io, os, signal, sys
from PIL import Image
from matplotlib.figure import Figure
from sscn.apps.cli import main

real_save, real_savefig = Image.Image.save, Figure.savefig
def half_then_terminate(fp):
    if isinstance(fp, io.BytesIO):
        return False
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "wb") as handle:
            handle.write(b"half a figure")
    else:
        fp.write(b"half a figure")
    os.kill(os.getpid(), signal.SIGTERM)
    return True
def save(self, fp, *args, **kwargs):
    half_then_terminate(fp)
    return real_save(self, fp, *args, **kwargs)
def savefig(self, fname, *args, **kwargs):
    half_then_terminate(fname)
    return real_savefig(self, fname, *args, **kwargs)
Image.Image.save, Figure.savefig = save, savefig
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["gallery", "demo"])
@pytest.mark.parametrize("earlier", [None, b"the previous figure"], ids=["new file", "earlier figure, --overwrite"])
def test_sigterm_during_the_figure_write_keeps_the_previous_figure(tmp_path, model_file, command, earlier):
    """Group 2: SIGTERM mid-write left the previous figure corrupt (gallery 6 of 6 tries, demo 3 of 6)."""
    out = tmp_path / "out" / "figure.png"
    out.parent.mkdir()
    if earlier is not None:
        out.write_bytes(earlier)
    argv = [command, "-o", out, "--checkpoint", model_file, *(["--size", "32"] if command == "demo" else []),
            *(["--overwrite"] if earlier else [])]
    result = subprocess.run([sys.executable, "-c", TERMINATE_DURING_WRITE, *map(str, argv)], env=subprocess_env(),
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 128 + 15, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"sscn {command}: terminated"
    assert [p.name for p in out.parent.iterdir()] == ([] if earlier is None else ["figure.png"])
    assert earlier is None or out.read_bytes() == earlier


def _fail_figure_write(monkeypatch, exception):
    """The figure's bytes are half written, then ``exception`` (a full disk)."""
    from matplotlib.figure import Figure

    real_save, real_savefig = Image.Image.save, Figure.savefig

    def half(fp):
        if hasattr(fp, "getvalue"):  # an in-memory buffer: not the file
            return
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "wb") as handle:
                handle.write(b"half a figure")
        else:
            fp.write(b"half a figure")
        raise exception

    def save(self, fp, *args, **kwargs):
        half(fp)
        return real_save(self, fp, *args, **kwargs)

    def savefig(self, fname, *args, **kwargs):
        half(fname)
        return real_savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    monkeypatch.setattr(Figure, "savefig", savefig)


@pytest.mark.parametrize("command", ["gallery", "demo"])
def test_a_full_disk_with_overwrite_keeps_the_old_figure_and_names_it(capsys, tmp_path, model_file, monkeypatch,
                                                                     command):
    """Group 2: a full disk with --overwrite truncated the old figure. Group 8: the message named no file
    (or the hidden temporary one)."""
    out = tmp_path / "figure.png"
    out.write_bytes(b"the previous figure")
    _fail_figure_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    argv = [command, "-o", out, "--checkpoint", model_file, "--overwrite",
            *(["--size", "32"] if command == "demo" else [])]
    line = assert_one_line_error(capsys, argv, "No space left on device", code=1)
    assert line.endswith(str(out)) and ".tmp" not in line and "unfinished" not in line
    assert out.read_bytes() == b"the previous figure"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


@pytest.mark.parametrize("command", ["gallery", "demo"])
def test_two_runs_to_one_new_file_never_replace_each_other(capsys, tmp_path, model_file, monkeypatch, command):
    """Group 2: two galleries to one new file silently replaced each other (each checked before its work only)."""
    from sscn.apps import colorize

    out = tmp_path / "figure.png"
    real = colorize.colorize

    def the_other_run_finishes_first(*args, **kwargs):
        if not out.exists():
            out.write_bytes(b"the other run's figure")
        return real(*args, **kwargs)

    monkeypatch.setattr(colorize, "colorize", the_other_run_finishes_first)
    argv = [command, "-o", out, "--checkpoint", model_file, *(["--size", "32"] if command == "demo" else [])]
    assert_one_line_error(capsys, argv, "figure.png already exists; pass --overwrite")
    assert out.read_bytes() == b"the other run's figure"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_gallery_overwrite_never_replaces_its_data_or_checkpoint(capsys, tmp_path, model_file):
    """Group 2: with --overwrite a gallery replaced a photo inside its own --data folder."""
    data = image_folder(tmp_path / "data")
    ckpt = shutil.copy(model_file, tmp_path / "weights.png")  # a checkpoint under a figure's name
    before = checksums(tmp_path)
    for out in (data / "c0" / "1.png", data / "new.png"):
        assert_one_line_error(capsys, ["gallery", "--data", data, "--checkpoint", model_file, "-o", out,
                                       "--overwrite", "--no-progress"], "is inside --data .*, which sscn only reads")
    assert_one_line_error(capsys, ["gallery", "--checkpoint", ckpt, "-o", ckpt, "--overwrite"], "is the checkpoint")
    assert_one_line_error(capsys, ["demo", "--checkpoint", ckpt, "-o", ckpt, "--overwrite", "--size", "32"],
                          "is the checkpoint")
    assert checksums(tmp_path) == before


def test_evaluate_tables_are_written_through_the_atomic_writer(capsys, tmp_path, monkeypatch):
    """Group 2: evaluate wrote its tables in place; a full disk left a truncated results.csv."""
    data = image_folder(tmp_path / "data")
    out = tmp_path / "out"
    argv = [*EVALUATE, "--data", data, "--kinds", "tps", "--out", out]
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    before = checksums(out)
    real_write = files.write_atomic
    written = []

    def full_disk(path, write, *args, **kwargs):
        written.append(Path(path).name)

        def half(handle):
            handle.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")

        return real_write(path, half, *args, **kwargs)

    monkeypatch.setattr(files, "write_atomic", full_disk)
    import sscn.evaluation.saved

    monkeypatch.setattr(sscn.evaluation.saved, "write_atomic", full_disk, raising=False)
    line = assert_one_line_error(capsys, argv, "No space left on device", code=1)
    assert written and line.endswith(str(out / written[0]))
    assert checksums(out) == before


# ------------------------------------------------------------------ group 3: same-class scores of the right photos

def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_pairs_row_naming_a_corrupt_photo_is_left_out(capsys, tmp_path, pairs_folder):
    """Group 3: a --pairs row naming a corrupt photo was scored with the next photo in its place."""
    data, pairs = pairs_folder
    argv = [*EVALUATE, "--data", data, "--pairs", pairs]
    code, _, err = run_cli(capsys, [*argv, "--out", tmp_path / "clean"])
    assert code == 0, err
    garble_middle(data / "c0" / "1.png")
    with pytest.warns(UserWarning, match="could not be decoded and are left out"):
        code, _, err = run_cli(capsys, [*argv, "--out", tmp_path / "corrupt"])
    assert code == 0, err
    clean, scored = _rows(tmp_path / "clean" / "results_per_image.csv"), _rows(tmp_path / "corrupt" /
                                                                                "results_per_image.csv")
    kept = [row for row in clean if "c0/1.png" not in (row["target"], row["reference"])]
    assert 0 < len(kept) < len(clean)
    assert scored == kept  # every other pair keeps its own scores; none names the corrupt photo


def test_save_pairs_holds_this_runs_ground_truth(capsys, tmp_path):
    """Group 3: --save-pairs with the same-class kind kept the previous run's ground truth."""
    saved = tmp_path / "saved"
    for run, seed in (("first", 0), ("second", 100)):
        data = image_folder(tmp_path / run, seed=seed)
        code, _, err = run_cli(capsys, [*EVALUATE, "--data", data, "--kinds", "same_class", "--save-pairs", saved])
        assert code == 0, err
    from sscn.io.data import ImageFolder

    second = ImageFolder(tmp_path / "second", size=32)
    for index in range(len(second)):
        with Image.open(saved / "ground_truth" / f"{index:05d}.png") as image:
            truth = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()
        assert torch.equal(truth, (second[index]["rgb"] * 255).round()), index


def test_save_pairs_and_out_in_one_folder_keep_both_listings(capsys, tmp_path):
    """Group 3: --save-pairs and --out on one folder overwrote each other's pairs listing."""
    data = image_folder(tmp_path / "data")
    both = tmp_path / "both"
    code, _, err = run_cli(capsys, [*EVALUATE, "--data", data, "--kinds", "tps", "same_class", "--save-pairs", both,
                                    "--out", both])
    assert code == 0, err
    saved = _rows(both / "saved_pairs.csv")
    assert [row["kind"] for row in saved] == ["tps"] * 6 + ["same_class"] * 6
    same_class = _rows(both / "pairs.csv")
    assert list(same_class[0]) == ["target", "reference", "class", "distance"] and len(same_class) == 6
    # and the same-class listing still reads back as a --pairs file
    code, out, err = run_cli(capsys, [*EVALUATE, "--data", data, "--pairs", both / "pairs.csv"])
    assert code == 0, err


def test_a_kind_named_twice_is_scored_once(capsys, tmp_path):
    """Group 3: --kinds tps tps scored every photo twice (the count and the mean over 12 of 6 photos)."""
    data = image_folder(tmp_path / "data")
    code, out, err = run_cli(capsys, [*EVALUATE, "--data", data, "--kinds", "tps", "tps", "--out", tmp_path / "out"])
    assert code == 0, err
    rows = _rows(tmp_path / "out" / "results.csv")
    assert [(row["reference"], row["n_images"]) for row in rows] == [("tps", "6")]
    assert len(_rows(tmp_path / "out" / "results_per_image.csv")) == 6


# ------------------------------------------------------------------ group 4: tracebacks in ordinary use

def test_file_names_that_are_not_utf8_reach_the_tables(capsys, tmp_path):
    """Group 4: a file name that is not UTF-8 crashed the table writing, after the whole evaluation."""
    data = image_folder(tmp_path / "data")
    odd = os.fsdecode(b"caf\xe9.png")  # Latin-1, as an old camera or archive names it
    try:
        os.rename(data / "c0" / "0.png", data / "c0" / odd)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, [*EVALUATE, "--data", data, "--kinds", "tps", "same_class", "--out", out])
    assert code == 0 and "Traceback" not in err, err
    assert b"caf\xe9" in (out / "results_per_image.csv").read_bytes()
    assert b"c0/caf\xe9.png" in (out / "pairs.csv").read_bytes()
    # the pairs file reads back to the same file name
    again = tmp_path / "again"
    code, _, err = run_cli(capsys, [*EVALUATE, "--data", data, "--pairs", out / "pairs.csv", "--out", again])
    assert code == 0, err
    assert (tmp_path / "again" / "pairs.csv").read_bytes() == (out / "pairs.csv").read_bytes()


def test_gallery_and_demo_leave_autograd_as_they_found_it(capsys, tmp_path, model_file):
    """Group 4: gallery, run_gallery and run_demo switched autograd off for the process; a training next crashed."""
    from sscn.apps.demo import run_demo
    from sscn.apps.gallery import run_gallery

    assert torch.is_grad_enabled()
    code, _, err = run_cli(capsys, ["gallery", "-o", tmp_path / "g.png", "--checkpoint", model_file])
    assert code == 0, err
    assert torch.is_grad_enabled()
    run_gallery(tmp_path / "g2.png", checkpoint=model_file, progress=False)
    assert torch.is_grad_enabled()
    run_demo(tmp_path / "d.png", checkpoint=model_file, size=32)
    assert torch.is_grad_enabled()
    # a training step in the same process still has gradients
    weight = next(SSCN(TINY).parameters())
    weight.sum().backward()
    assert weight.grad is not None


@pytest.mark.parametrize("content, match", [
    (b"target,reference,class,distance\nc0/caf\xe9.png,c0/1.png,c0,0.5\n",
     "names 'c0/caf\\\\udce9.png', which is not"),
    (b"\xff\xfe t\x00a\x00r\x00g\x00e\x00t\x00", "expected the columns|line 1"),
    (b"target,reference,class,distance\n" + b"x" * 200_000 + b",c0/1.png,c0,0.5\n", "line 2: field larger than"),
    (b"target,reference,class,distance\nc0/0.png,c0/1\x00.png,c0,0.5\n",
     "line 2: line contains NUL|names 'c0/1\\\\x00.png', which is not"),
    (b"target,reference,class,distance\n" + b"y" * 100_000 + b",c0/1.png,c0,0.5\n",
     "names 'y{80}'\\.\\.\\. \\(100000"),
    (b"target,reference\nc0/0.png\n", "line 2: a target and a reference are needed"),
], ids=["latin-1", "utf-16", "very long field", "NUL byte", "long name", "short row"])
def test_a_pairs_file_that_is_not_utf8_or_has_a_huge_field_is_one_line(capsys, tmp_path, content, match):
    """Group 4: a pairs file that is not UTF-8 or has a very long field ended in a traceback."""
    data = image_folder(tmp_path / "data")
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes(content)
    line = assert_one_line_error(capsys, [*EVALUATE, "--data", data, "--pairs", pairs], match)
    assert len(line) < 400


# ------------------------------------------------------------------ group 7: permissions

def _colorize(tmp_path, model_file, out, *options):
    target, reference = tmp_path / "target.png", tmp_path / "reference.png"
    if not target.exists():
        save(photo(48, 64, seed=1), target), save(photo(40, 56, seed=2), reference)
    return ["colorize", target, reference, "--checkpoint", model_file, "--size", "32", "-o", out, *options]


@pytest.mark.parametrize("command", ["colorize", "demo"])
def test_overwrite_keeps_the_replaced_files_permissions(capsys, tmp_path, model_file, command):
    """Group 7: --overwrite turned a 0600 file into 0644."""
    private = tmp_path / "private.png"
    private.write_bytes(b"mine")
    private.chmod(0o600)
    argv = (_colorize(tmp_path, model_file, private, "--overwrite") if command == "colorize" else
            ["demo", "-o", private, "--checkpoint", model_file, "--size", "32", "--overwrite"])
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes() != b"mine"
    shared = tmp_path / "shared.txt"
    shared.write_text("old")
    shared.chmod(0o640)
    files.write_atomic(shared, lambda handle: handle.write(b"new"), overwrite=True)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640 and shared.read_text() == "new"
    # a new file gets the usual permissions (the umask's), not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    new = files.write_atomic(tmp_path / "new.txt", lambda handle: handle.write(b"x"))
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


# ------------------------------------------------------------------ group 8: temporary files

def test_names_of_up_to_255_bytes_can_be_written(capsys, tmp_path, model_file):
    """Group 8: legal names of 243-255 bytes failed because the temporary name added a suffix to them."""
    for length in (243, 255):
        for command in ("colorize", "demo"):
            out = tmp_path / command / ("x" * (length - 4) + ".png")
            out.parent.mkdir(exist_ok=True)
            argv = (_colorize(tmp_path, model_file, out) if command == "colorize" else
                    ["demo", "-o", out, "--checkpoint", model_file, "--size", "32"])
            code, _, err = run_cli(capsys, argv)
            assert code == 0, err
            assert out.stat().st_size > 0
    name = "\u00e9" * 125 + "a.txt"  # 255 bytes in UTF-8
    assert len(os.fsencode(name)) == 255
    files.write_atomic(tmp_path / name, lambda handle: handle.write(b"a long name"))
    assert (tmp_path / name).read_text() == "a long name"


KILLED_WRITER = """
import os, signal, sys
from sscn.io.files import write_atomic

def write(handle):
    handle.write(b"half")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

write_atomic(sys.argv[1], write, overwrite=True)
"""


def test_a_killed_writers_temporary_file_is_obviously_stale_and_cleaned_next_time(tmp_path):
    """Group 8: kill -9 left temporary files behind, named like the user's file, forever."""
    out = tmp_path / "table.csv"
    out.write_text("the previous table")
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], env=subprocess_env(), timeout=300)
    assert result.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p != out]
    assert len(left) == 1 and left[0].name.startswith(".sscn-unfinished-") and left[0].name.endswith(".tmp")
    assert out.read_text() == "the previous table"
    # a file being written now (its writer holds the lock) is never taken for a stale one
    busy_fd, busy = files._temp_file(tmp_path)
    try:
        long_ago = left[0].stat().st_mtime - 3600
        for path in (left[0], busy):
            os.utime(path, (long_ago, long_ago))
        files.write_atomic(out, lambda handle: handle.write(b"the next table"), overwrite=True)  # cleans up
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, busy.name])
    finally:
        os.close(busy_fd)
        busy.unlink()
    assert out.read_text() == "the next table"


def test_a_refused_write_names_the_users_file(tmp_path, monkeypatch):
    """Group 8: error messages named the hidden temporary file instead of the user's."""
    out = tmp_path / "table.csv"
    out.write_text("old")
    real_replace = os.replace

    def read_only(src, dst, *args, **kwargs):
        if Path(dst) == out:
            raise OSError(errno.EROFS, "Read-only file system", str(src), None, str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OSError) as caught:
        files.write_atomic(out, lambda handle: handle.write(b"new"), overwrite=True)
    assert caught.value.filename == str(out) and caught.value.errno == errno.EROFS
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


# ------------------------------------------------------------------ group 9: refused early, not after the work

def test_a_gallery_of_too_many_classes_is_refused_before_any_photo_is_read(capsys, tmp_path, model_file,
                                                                          monkeypatch):
    """Group 9: a gallery of about 2,400 classes ended in a traceback after 4 minutes."""
    data, most = tmp_path / "data", getattr(gallery, "MAX_CLASSES", 200)
    for label in range(most + 1):
        save(photo(8, 8, seed=label), data / f"n{label:05d}" / "0.png")
    import sscn.evaluation.pairs

    def never(*args, **kwargs):
        raise AssertionError("the photos were read before the refusal")

    monkeypatch.setattr(sscn.evaluation.pairs, "photo_set", never)
    out = tmp_path / "g.png"
    assert_one_line_error(capsys, ["gallery", "--data", data, "--checkpoint", model_file, "-o", out, "--no-progress"],
                          f"has {most + 1} classes; the gallery shows one pair per class, at most")
    assert not out.exists()


@pytest.mark.parametrize("bad", ["NaN", "zero height", "zero width"])
def test_the_pairs_api_refuses_nan_and_empty_images(bad):
    """Group 9: sscn.evaluation.pairs tracebacked (an index error, a resize error) on NaN or zero-size images."""
    from sscn.evaluation import metrics, pairs

    good = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    image = {"NaN": good.clone().index_fill_(1, torch.tensor([3]), float("nan")), "zero height": torch.rand(3, 0, 32),
             "zero width": torch.rand(3, 32, 0)}[bad]
    with pytest.raises(SSCNError, match="NaN|shape|pixels"):
        pairs.same_class_pairs([("a", image), ("b", good), ("c", good.flip(-1))], size=32)
    with pytest.raises(SSCNError, match="NaN|shape|pixels"):
        pairs.gray_descriptor(image[:1][None])
    with pytest.raises(SSCNError, match="NaN|pixels"):
        metrics.colourfulness(image)
    with pytest.raises(SSCNError, match="NaN|pixels"):
        metrics.palette_similarity(image, good)


def test_a_sweep_of_only_k_r_zero_is_refused_before_the_evaluation(capsys, tmp_path, model_file, monkeypatch):
    """Group 9: --sweep with k = r = 0 was refused only after the whole evaluation."""
    import sscn.evaluation.command

    data = image_folder(tmp_path / "data")
    ran = []
    monkeypatch.setattr(sscn.evaluation.command, "evaluate", lambda *args, **kwargs: ran.append(1) or [])
    argv = ["evaluate", "--data", data, "--checkpoint", model_file, "--size", "32", "--kinds", "tps", "--no-progress",
            "--sweep", "--sweep-k", "0", "0", "--sweep-r", "0"]
    assert_one_line_error(capsys, argv, "--sweep: every \\(k, r\\) is k = r = 0")
    assert ran == []


def test_the_demo_output_folder_is_checked_before_the_work(capsys, tmp_path, model_file, monkeypatch):
    """Group 9: a missing demo output folder failed only after the work."""
    import sscn.apps.demo

    real, ran = sscn.apps.demo.demo_rows, []
    monkeypatch.setattr(sscn.apps.demo, "demo_rows", lambda *args, **kwargs: ran.append(1) or real(*args, **kwargs))
    (tmp_path / "a-file").write_text("not a folder")
    assert_one_line_error(capsys, ["demo", "-o", tmp_path / "a-file" / "demo.png", "--checkpoint", model_file,
                                   "--size", "32"], "a-file is a file, not a folder")
    assert ran == []
    # a folder that does not exist yet is made, as for sscn colorize
    out = tmp_path / "new" / "folder" / "demo.png"
    code, _, err = run_cli(capsys, ["demo", "-o", out, "--checkpoint", model_file, "--size", "32"])
    assert code == 0 and out.stat().st_size > 0, err


# ------------------------------------------------------------------ the property: no input is ever changed

def _work_folder(root: Path, model_file: Path) -> Path:
    """One folder that holds every input: photos (train/ and val/), two photos, two checkpoints, a pairs file."""
    from sscn.evaluation import pairs
    from sscn.io.data import ImageFolder

    for split, count in (("train", 3), ("val", 3)):
        image_folder(root / "data" / split, per_class=count, seed=0 if split == "train" else 50)
    save(photo(48, 64, seed=1), root / "target.png")
    save(photo(40, 56, seed=2), root / "ref.png")
    shutil.copy(model_file, root / "model.pt")
    shutil.copy(model_file, root / "weights.png")  # a checkpoint under a figure's name
    shutil.copy(model_file, root / "last.pt")  # weights only: not a run's state to resume from
    pairs.write_pairs(pairs.same_class_pairs(ImageFolder(root / "data" / "val", size=32), size=32), root / "pairs.csv")
    (root / "results.csv").write_text("a table of the user's, not sscn's\n")
    (root / "metrics.jsonl").write_text('{"the user\'s": 1}\n')
    return root


TRAIN = ["--image-size", "32", "--width", "0.125", "--batch-size", "2", "--topk", "4", "--random-tokens", "4",
         "--num-workers", "0", "--val-images", "2", "--val-every", "1000", "--log-every", "1", "--device", "cpu",
         "--seed", "0", "--precision", "float32", "--steps", "1"]
PRETRAIN = ["--width", "0.125", "--image-size", "32", "--crop", "32", "--batch-size", "4", "--epochs", "1",
            "--device", "cpu", "--precision", "float32"]


def _runs(w: Path) -> list[tuple[list, bool]]:
    """``(argv, must succeed)`` per run of one subcommand: a normal run with every output in the inputs'
    folder, then runs whose outputs name an input or a file inside the data (each must be refused)."""
    data, val = w / "data", w / "data" / "val"
    return {
        "colorize": [
            (["colorize", w / "target.png", w / "ref.png", "--checkpoint", w / "model.pt", "--size", "32",
              "-o", w / "out.png"], True),
            (["colorize", w / "target.png", w / "ref.png", "--checkpoint", w / "model.pt", "--size", "32",
              "-o", w / "target.png", "--overwrite"], False),
            (["colorize", w / "target.png", w / "ref.png", "--checkpoint", w / "model.pt", "--size", "32",
              "-o", w / "ref.png", "--overwrite"], False),
        ],
        "demo": [
            (["demo", "--checkpoint", w / "model.pt", "--size", "32", "-o", w / "demo.png"], True),
            (["demo", "--checkpoint", w / "weights.png", "--size", "32", "-o", w / "weights.png", "--overwrite"],
             False),
            (["demo", "--checkpoint", w / "model.pt", "--size", "32", "-o", w / "target.png"], False),
        ],
        "gallery": [
            (["gallery", "--checkpoint", w / "model.pt", "--data", data, "-o", w / "gallery.png", "--no-progress"],
             True),
            (["gallery", "--checkpoint", w / "model.pt", "--data", data, "-o", val / "c0" / "0.png", "--overwrite",
              "--no-progress"], False),
            (["gallery", "--checkpoint", w / "weights.png", "-o", w / "weights.png", "--overwrite"], False),
        ],
        "evaluate": [
            (["evaluate", "--data", data, "--checkpoint", w / "model.pt", "--size", "32", "--methods", "copy",
              "sparse", "--kinds", "tps", "same_class", "--pairs", w / "pairs.csv", "--save-pairs", w / "saved",
              "--out", w / "tables", "--limit", "2", "--no-progress"], True),
            (["evaluate", "--data", data, "--checkpoint", w / "model.pt", "--size", "32", "--methods", "copy",
              "--pairs", w / "pairs.csv", "--out", w, "--limit", "2", "--no-progress"], False),
            (["evaluate", "--data", data, "--baselines-only", "--size", "32", "--methods", "copy", "--kinds", "tps",
              "same_class", "--pairs", w / "pairs.csv", "--save-pairs", w, "--limit", "2", "--no-progress"], True),
            (["evaluate", "--data", data, "--baselines-only", "--size", "32", "--methods", "copy", "--kinds", "tps",
              "--out", val, "--no-progress"], False),
            (["evaluate", "--data", data, "--baselines-only", "--size", "32", "--methods", "copy", "--kinds", "tps",
              "--save-pairs", val / "c1", "--no-progress"], False),
        ],
        "train": [
            (["train", "--data-dir", data, "--out-dir", w / "run", "--init-from", w / "model.pt", *TRAIN], True),
            (["train", "--data-dir", data, "--out-dir", val, *TRAIN], False),
            (["train", "--data-dir", data, "--out-dir", w, "--init-from", w / "last.pt", *TRAIN], False),
        ],
        "pretrain": [
            (["pretrain", "--data-dir", data, "--out-dir", w / "run", *PRETRAIN], True),
            (["pretrain", "--data-dir", data, "--out-dir", val, *PRETRAIN], False),
        ],
    }


@pytest.mark.parametrize("command", ["colorize", "demo", "gallery", "evaluate", "train", "pretrain"])
def test_no_subcommand_ever_changes_a_file_it_reads(capsys, tmp_path, model_file, command):
    """The must-show property: every subcommand, with its outputs pointed at its inputs' folder (and at
    the inputs themselves, --overwrite included), leaves every file it reads byte for byte as it was:
    never modified, truncated, deleted or replaced. A refusal is one line on stderr, no traceback."""
    work = _work_folder(tmp_path / "work", model_file)
    before = checksums(work)
    for argv, succeeds in _runs(work)[command]:
        code, _, err = run_cli(capsys, argv)
        assert "Traceback" not in err, err
        if succeeds:
            assert code == 0, err
        else:
            lines = err.strip().splitlines()
            assert code != 0 and len(lines) == 1 and lines[0].startswith(f"sscn {command}: error: "), err
        after = checksums(work)
        assert {name: after.get(name) for name in before} == before, (argv, err)
