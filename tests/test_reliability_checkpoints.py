"""Reliability of the training side (issue 24, section 2, groups 4, 5, 6 and 9 in part).

Every kind of checkpoint the project reads (an SSCN inference checkpoint, a training run's
``last.pt`` as it resumes, a pre-stage checkpoint as ``--encoder-from``, ``--cx-encoder``
or as ``sscn pretrain``'s own resume file) is tampered with systematically: each field
removed, mistyped or reshaped, each kind of weight made sparse, meta, integer, bool,
complex or NaN. Every variant is refused by one ``SSCNError`` that names the file, and the
CLI prints it as one line on stderr with a non-zero exit, never a traceback. Then: a full
disk or Ctrl-C while a checkpoint is written, running out of memory, bad pre-stage
settings, ``--vgg-weights`` that are not a state dict, a corrupt photo or an empty class
folder in the data, a read-only output folder, and the files earlier versions wrote.

Everything runs a tiny network (width 0.125) at 32 px.
"""
import copy
import errno
import io
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import sscn.training.pretrain
import sscn.training.train
from sscn.models.checkpoint import load_model
from sscn.io.data import ImageFolder, load_image
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.models.pretrained import BUNDLED_PRETRAIN, load_pretrained_encoder, pretrained_classifier, read_pretrained
from sscn.models.classifier import EncoderClassifier
from sscn.training.config import PretrainConfig
from sscn.training.pretrain import pretrain
from sscn.training.config import TrainConfig
from sscn.training.train import train

from cli_support import assert_one_line_error as _one_line, garble_middle, ramp_photo, run_cli

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["class0", "class1"]


def photo(height=32, width=32, seed=0):
    return ramp_photo(height, width, seed)


def assert_one_line_error(capsys, argv, match, code=2) -> str:
    return _one_line(capsys, argv, match, code, after_progress=True)

pytestmark = pytest.mark.usefixtures("one_thread")


def _photos(folder: Path, count: int, seed: int) -> None:
    for label, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(photo(seed=seed + 10 * label + i)).save(folder / name / f"{i}.png")


TRAIN_ARGS = ["--image-size", "32", "--width", "0.125", "--batch-size", "2", "--topk", "4", "--random-tokens", "4",
              "--num-workers", "0", "--val-images", "2", "--val-every", "1000", "--log-every", "1", "--device", "cpu",
              "--seed", "0", "--precision", "float32"]
PRE_ARGS = ["--width", "0.125", "--image-size", "32", "--crop", "32", "--batch-size", "2", "--epochs", "1",
            "--device", "cpu", "--precision", "float32"]


def _train_config(data: Path, out: Path, **changes) -> TrainConfig:
    return TrainConfig(**{**dict(data_dir=str(data), out_dir=str(out), image_size=32, width=0.125, batch_size=2,
                                 steps=2, k=4, r=4, num_workers=0, val_images=2, val_every=1000, log_every=1,
                                 ckpt_every=1, device="cpu", seed=0, precision="float32"), **changes})


def _pre_config(data: Path, out: Path, **changes) -> PretrainConfig:
    return PretrainConfig(**{**dict(data_dir=str(data), out_dir=str(out), width=0.125, image_size=32, crop=32,
                                    batch_size=2, epochs=1, device="cpu", precision="float32"), **changes})


@pytest.fixture(scope="module")
def train_folder(tmp_path_factory) -> Path:
    """Two classes of two 32 px photos: two steps an epoch at batch size 2."""
    root = tmp_path_factory.mktemp("train") / "photos"
    _photos(root, 2, 0)
    return root


@pytest.fixture(scope="module")
def pre_folder(tmp_path_factory) -> Path:
    """train/ and val/ with the same two classes as ``train_folder``."""
    root = tmp_path_factory.mktemp("pre") / "photos"
    _photos(root / "train", 2, 100)
    _photos(root / "val", 1, 200)
    return root


@pytest.fixture(scope="module")
def resume_file(train_folder, tmp_path_factory) -> Path:
    """A real training ``last.pt`` after 2 steps."""
    out = tmp_path_factory.mktemp("run")
    train(_train_config(train_folder, out), progress=False)
    return out / "last.pt"


@pytest.fixture(scope="module")
def pre_file(pre_folder, tmp_path_factory) -> Path:
    """A real pre-stage ``last.pt`` after one epoch (2 steps)."""
    out = tmp_path_factory.mktemp("prerun")
    pretrain(_pre_config(pre_folder, out), progress=False)
    return out / "last.pt"


@pytest.fixture(scope="module")
def sscn_file(tmp_path_factory) -> Path:
    """An inference checkpoint as colorize reads it (model, config, classes)."""
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, num_classes=2, k=4, r=4))
    path = tmp_path_factory.mktemp("sscn") / "tiny.pt"
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(), "classes": CLASSES}, path)
    return path


# ------------------------------------------------------------------ tampered files, generated systematically

class _RunsCode:
    """An object whose unpickling would run code (it creates a file): weights_only must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


TENSOR_EDITS = {
    "wrong shape": lambda t: torch.zeros(*t.shape, 2, dtype=t.dtype),
    "sparse": lambda t: t.float().reshape(-1).to_sparse(),
    "meta": lambda t: torch.empty(t.shape, dtype=t.dtype, device="meta"),
    "int": lambda t: t.to(torch.int32),
    "bool": lambda t: t.bool(),
    "complex": lambda t: t.to(torch.complex64),
    "nan": lambda t: torch.full(t.shape, math.nan),
}
TENSOR_FIELD_EDITS = ["remove", *TENSOR_EDITS]


def _edit(ckpt: dict, path: tuple, action: str) -> dict:
    """``ckpt`` (a fresh copy) with the field at ``path`` removed, mistyped or changed by ``action``."""
    ckpt = copy.deepcopy(ckpt)
    parent = ckpt
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "remove":
        del parent[key]
    elif action == "wrong type":
        parent[key] = "x"
    elif action in TENSOR_EDITS:
        parent[key] = TENSOR_EDITS[action](parent[key])
    elif action == "float counter":
        parent[key] = parent[key].float()
    elif action == "negative":
        parent[key] = -parent[key] - 1
    elif action == "wrong count":
        parent[key] = parent[key][:-1] if len(parent[key]) > 1 else parent[key] * 2
    elif action == "renamed":
        parent[key] = [f"other{i}" for i in range(len(parent[key]))]
    elif action == "empty":
        parent[key] = type(parent[key])()
    elif action == "shortened":
        parent[key] = parent[key][:-1]
    elif action == "float tensor":
        parent[key] = parent[key].float()
    elif action == "nan number":
        parent[key] = math.nan
    else:
        raise AssertionError(action)
    return ckpt


def _first(state: dict, want) -> str:
    return next(name for name, value in state.items() if want(name, value))


def _variants(state: dict, kind: str) -> list[tuple[tuple, str]]:
    """(field path, action) pairs for a checkpoint of ``kind`` whose network has the weights ``state``."""
    weight = _first(state, lambda n, v: v.is_floating_point() and v.dim() == 4)
    counter = _first(state, lambda n, v: n.endswith("num_batches_tracked"))
    model = [(("model",), a) for a in ("remove", "wrong type")] + \
        [(("model", weight), a) for a in TENSOR_FIELD_EDITS] + \
        [(("model", counter), a) for a in ("wrong shape", "float counter", "bool", "meta")]
    config = [(("config",), a) for a in ("remove", "wrong type")]
    variants = [*model, *config, (("classes",), "wrong type"), ((), "runs code")]
    if kind == "sscn":
        return [*variants, (("config", "width"), "wrong type"), (("config", "num_classes"), "wrong type")]
    optimizer = [(("optimizer",), "remove"), (("optimizer",), "wrong type"),
                 (("optimizer", "state"), "wrong type"), (("optimizer", "param_groups"), "wrong type"),
                 (("optimizer", "param_groups"), "empty"),
                 (("optimizer", "param_groups", 0, "params"), "shortened"),
                 (("optimizer", "param_groups", 0, "lr"), "remove"),
                 (("optimizer", "param_groups", 0, "lr"), "wrong type"),
                 (("optimizer", "param_groups", 0, "lr"), "nan number"),
                 (("optimizer", "param_groups", 0, "betas"), "wrong type"),
                 (("optimizer", "param_groups", 0, "eps"), "remove"),
                 (("optimizer", "state", 0), "wrong type"),
                 (("optimizer", "state", 0, "step"), "remove"),
                 (("optimizer", "state", 0, "step"), "wrong type"),
                 (("optimizer", "state", 0, "step"), "negative"),
                 *((("optimizer", "state", 0, "exp_avg"), a) for a in TENSOR_FIELD_EDITS),
                 (("optimizer", "state", 0, "exp_avg_sq"), "negative")]
    step = [(("step",), "wrong type"), (("step",), "negative")]
    history = [(("history",), "wrong type"), (("history", 0), "wrong type"), (("history", 0, "loss"), "remove"),
               (("history", 0, "step"), "wrong type")]
    if kind == "train":
        return [*variants, *optimizer, *step, (("step",), "remove"), *history,
                (("config", "width"), "wrong type"),
                (("classes",), "remove"), (("classes",), "wrong count"), (("classes",), "renamed"),
                (("rng",), "remove"), (("rng",), "wrong type"), (("rng", "torch"), "wrong type"),
                (("rng", "torch"), "float tensor"), (("rng", "torch"), "shortened"), (("rng", "numpy"), "wrong type"),
                (("rng", "numpy"), "shortened"), (("rng", "python"), "wrong type"), (("rng", "cuda"), "wrong type"),
                (("train_config",), "wrong type"), (("train_config", "freeze_encoder"), "wrong type")]
    head = [(("model", "fc5.weight"), a) for a in TENSOR_FIELD_EDITS]
    pre = [*variants, *head, *step, *history, (("classes",), "remove"), (("classes",), "empty"),
           (("config", "width"), "remove"), (("config", "width"), "wrong type"), (("config", "norm"), "remove"),
           (("config", "norm"), "wrong type"), (("kind",), "remove"), (("kind",), "wrong type")]
    if kind == "pretrain":
        return pre
    return [*pre, *optimizer, (("step",), "remove"), (("classes",), "renamed"), (("history", 0, "images_per_s"), "remove")]


def _tampered(good: Path, folder: Path, path: tuple, action: str, name: str = "tampered.pt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / name
    ckpt = torch.load(good, weights_only=True)
    if action == "runs code":
        torch.save({**ckpt, "payload": _RunsCode(folder / "pwned")}, out)
    else:
        torch.save(_edit(ckpt, path, action), out)
    return out


def _ids(variants):
    return [f"{'.'.join(map(str, path))}-{action}" for path, action in variants]


TINY = SSCNConfig(width=0.125, num_classes=2, k=4, r=4)
with torch.device("meta"):  # the names and shapes only
    SSCN_STATE = SSCN(TINY).state_dict()
    PRE_STATE = EncoderClassifier(0.125, "batch", 2).state_dict()
SSCN_VARIANTS = _variants(SSCN_STATE, "sscn")
TRAIN_VARIANTS = _variants(SSCN_STATE, "train")
PRE_VARIANTS = _variants(PRE_STATE, "pretrain")
PRE_RESUME_VARIANTS = _variants(PRE_STATE, "pretrain-resume")
# sound in themselves, refused only against the run that resumes them (its classes differ)
IN_CONTEXT = {(("classes",), "renamed")}


def _names_file_and_field(message: str, path: Path, field: tuple) -> None:
    assert "\n" not in message
    assert str(path) in message, message
    names = [part for part in field if isinstance(part, str)]
    assert not names or any(name in message for name in names), f"none of {names} named in {message!r}"


def _not_pwned(folder: Path) -> None:
    assert not (folder / "pwned").exists(), "the file's pickle ran code"


@pytest.mark.parametrize("field, action", SSCN_VARIANTS, ids=_ids(SSCN_VARIANTS))
def test_a_tampered_sscn_checkpoint_is_one_line(capsys, tmp_path, sscn_file, field, action):
    bad = _tampered(sscn_file, tmp_path / "files", field, action)
    with pytest.raises(SSCNError) as info:
        load_model(bad)
    _names_file_and_field(str(info.value), bad, field)
    target = tmp_path / "target.png"
    Image.fromarray(photo(40, 48, seed=1)).save(target)
    assert_one_line_error(capsys, ["colorize", target, target, "--checkpoint", bad, "--size", "32",
                                   "-o", tmp_path / "out.png"], re.escape(str(bad)))
    assert not (tmp_path / "out.png").exists()
    _not_pwned(tmp_path / "files")


@pytest.mark.parametrize("field, action", TRAIN_VARIANTS, ids=_ids(TRAIN_VARIANTS))
def test_a_tampered_training_state_is_one_line_on_resume(capsys, tmp_path, train_folder, resume_file, field, action):
    out = tmp_path / "run"
    bad = _tampered(resume_file, out, field, action, "last.pt")
    line = assert_one_line_error(capsys, ["train", *TRAIN_ARGS, "--steps", "3", "--data-dir", train_folder,
                                          "--out-dir", out], re.escape(str(bad)))
    if field:
        assert str(field[0]) in line or "another config" in line, line
    _not_pwned(out)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]  # refused before anything was written


@pytest.mark.parametrize("field, action", PRE_VARIANTS, ids=_ids(PRE_VARIANTS))
@pytest.mark.parametrize("role", ["--encoder-from", "--cx-encoder"])
def test_a_tampered_pre_stage_is_one_line_as_an_encoder_source(capsys, tmp_path, train_folder, pre_file, role,
                                                               field, action):
    bad = _tampered(pre_file, tmp_path / "files", field, action)
    with pytest.raises(SSCNError) as info:
        if role == "--encoder-from":
            load_pretrained_encoder(SSCN(SSCNConfig(width=0.125, num_classes=2, k=4, r=4)), bad, CLASSES)
        else:
            pretrained_classifier(bad)
    _names_file_and_field(str(info.value), bad, field)
    extra = [role, bad] + (["--w-cx", "1", "--same-class-share", "0.5"] if role == "--cx-encoder" else [])
    assert_one_line_error(capsys, ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder,
                                   "--out-dir", tmp_path / "run", *extra], re.escape(str(bad)))
    assert not (tmp_path / "run" / "last.pt").exists()
    _not_pwned(tmp_path / "files")


@pytest.mark.parametrize("field, action", PRE_RESUME_VARIANTS, ids=_ids(PRE_RESUME_VARIANTS))
def test_a_tampered_pre_stage_is_one_line_on_resume(capsys, tmp_path, pre_folder, pre_file, field, action):
    out = tmp_path / "pre"
    bad = _tampered(pre_file, out, field, action, "last.pt")
    line = assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--epochs", "2", "--data-dir", pre_folder,
                                          "--out-dir", out], re.escape(str(bad)))
    if field and field[0] != "kind":
        assert str(field[0]) in line or "another width, norm or class list" in line, line
    _not_pwned(out)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("kind, fixture, variants", [
    ("sscn", "sscn_file", SSCN_VARIANTS), ("train", "resume_file", TRAIN_VARIANTS),
    ("pretrain", "pre_file", PRE_VARIANTS), ("pretrain-resume", "pre_file", PRE_RESUME_VARIANTS)])
def test_one_check_reads_every_kind(request, tmp_path, kind, fixture, variants):
    """One validation path: ``read_checkpoint(path, kind=...)`` refuses every variant of every kind
    with an SSCNError naming the file, and accepts the good file."""
    from sscn.models.checkpoint import read_checkpoint

    good = request.getfixturevalue(fixture)
    assert read_checkpoint(good, kind=kind)["model"]
    for index, (field, action) in enumerate(variants):
        if (field, action) in IN_CONTEXT:
            continue
        bad = _tampered(good, tmp_path / str(index), field, action)
        with pytest.raises(SSCNError) as info:
            read_checkpoint(bad, kind=kind)
        assert str(bad) in str(info.value) and "\n" not in str(info.value), (field, action, str(info.value))
        _not_pwned(tmp_path / str(index))


def test_optional_resume_fields_may_be_absent(tmp_path, train_folder, resume_file):
    """A ``last.pt`` without ``history`` or ``train_config`` (older runs) still resumes."""
    out = tmp_path / "run"
    ckpt = torch.load(resume_file, weights_only=True)
    out.mkdir()
    torch.save({k: v for k, v in ckpt.items() if k not in ("history", "train_config")}, out / "last.pt")
    summary = train(_train_config(train_folder, out, steps=3), progress=False)
    assert summary["steps"] == 3 and summary["steps_this_run"] == 1


# ------------------------------------------------------------------ files earlier versions wrote

def test_the_bundled_checkpoints_still_load():
    from sscn.models.checkpoint import BUNDLED

    model = load_model(None)
    assert model.config.width == 0.25
    assert BUNDLED.exists() and BUNDLED_PRETRAIN.exists()
    classifier, classes = pretrained_classifier("bundled")
    assert len(classes) == 10 and classifier.fc5.out_features == 10
    target = SSCN(SSCNConfig(width=0.25, num_classes=10))
    load_pretrained_encoder(target, "bundled", classes)


def test_a_training_state_of_an_earlier_version_resumes(tmp_path, train_folder, resume_file):
    """Runs from before ``precision`` stored ``amp: True`` in their train_config."""
    out = tmp_path / "run"
    out.mkdir()
    ckpt = torch.load(resume_file, weights_only=True)
    old = {k: v for k, v in ckpt["train_config"].items() if k != "precision"}
    torch.save({**ckpt, "train_config": {**old, "amp": True}}, out / "last.pt")
    summary = train(_train_config(train_folder, out, steps=3), progress=False)
    assert summary["steps"] == 3 and summary["steps_this_run"] == 1


def test_a_pre_stage_of_an_earlier_version_resumes_and_starts_a_training(tmp_path, pre_folder, train_folder, pre_file):
    out = tmp_path / "pre"
    out.mkdir()
    ckpt = torch.load(pre_file, weights_only=True)
    old = {k: v for k, v in ckpt["config"].items() if k != "precision"}
    torch.save({**ckpt, "config": {**old, "amp": True}}, out / "last.pt")
    summary = pretrain(_pre_config(pre_folder, out, epochs=2), progress=False)
    assert summary["steps"] == 4
    assert read_pretrained(out / "last.pt")["step"] == 4
    result = train(_train_config(train_folder, tmp_path / "run", steps=1, encoder_from=str(out / "last.pt"),
                                 freeze_encoder=True), progress=False)
    assert result["steps"] == 1


# ------------------------------------------------------------------ group 4: tracebacks in ordinary use

@pytest.mark.parametrize("first, second", [(True, False), (False, True)], ids=["unfreeze", "freeze"])
def test_resume_after_switching_freeze_encoder(capsys, tmp_path, train_folder, pre_file, first, second):
    """The optimizer of a frozen run holds fewer parameters: resuming with the other setting gave a
    traceback. Now the parameters both runs train keep their Adam state and the run goes on."""
    out = tmp_path / "run"
    argv = ["train", *TRAIN_ARGS, "--data-dir", train_folder, "--out-dir", out, "--encoder-from", pre_file,
            "--ckpt-every", "1"]
    flag = lambda frozen: "--freeze-encoder" if frozen else "--no-freeze-encoder"  # noqa: E731
    code, _, err = run_cli(capsys, [*argv, "--steps", "2", flag(first)])
    assert code == 0, err
    before = torch.load(out / "last.pt", weights_only=True)
    code, out_text, err = run_cli(capsys, [*argv, "--steps", "4", flag(second)])
    assert code == 0 and "Traceback" not in err, err
    assert "freeze_encoder" in out_text  # the changed setting is named
    after = torch.load(out / "last.pt", weights_only=True)
    assert after["step"] == 4
    encoder = "encoder.features.0.weight"
    moved = not torch.equal(before["model"][encoder], after["model"][encoder])
    assert moved == (not second)  # a frozen encoder stays as it was, an unfrozen one learns
    sizes = [len(after["optimizer"]["param_groups"][0]["params"]), len(before["optimizer"]["param_groups"][0]["params"])]
    assert (sizes[0] > sizes[1]) == first


class _FailingHandle(io.RawIOBase):
    """A file that takes ``limit`` bytes, then fails as a full disk does (or as Ctrl-C would)."""

    def __init__(self, handle, limit, error):
        self.handle, self.limit, self.error, self.written = handle, limit, error, 0

    def writable(self):
        return True

    def write(self, data):
        if self.written + len(data) > self.limit:
            raise self.error
        self.written += len(data)
        return self.handle.write(data)

    def flush(self):
        self.handle.flush()

    def fileno(self):
        return self.handle.fileno()


def _fail_save_on(monkeypatch, call: int, error: BaseException) -> None:
    """The ``call``-th ``torch.save`` writes 2,000 bytes, then its file fails with ``error``; torch
    itself turns that into its cryptic ``RuntimeError`` (``unexpected pos ...``)."""
    real_save, calls = torch.save, []

    def save(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            handle = _FailingHandle(handle, 2000, error)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


FAILURES = {"disk full": OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "Ctrl-C": KeyboardInterrupt()}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_checkpoint_write_in_train_is_one_line_and_keeps_the_old_one(capsys, tmp_path, train_folder,
                                                                              monkeypatch, failure):
    out = tmp_path / "run"
    _fail_save_on(monkeypatch, 2, FAILURES[failure])
    line = assert_one_line_error(capsys, ["train", *TRAIN_ARGS, "--steps", "3", "--ckpt-every", "1",
                                          "--data-dir", train_folder, "--out-dir", out],
                                 "could not write the checkpoint .*last.pt")
    assert f"the previous checkpoint ({out / 'last.pt'}, step 1) is kept" in line
    monkeypatch.undo()
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.jsonl"]  # no temp file left


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_checkpoint_write_in_pretrain_is_one_line(capsys, tmp_path, pre_folder, monkeypatch, failure):
    out = tmp_path / "pre"
    _fail_save_on(monkeypatch, 1, FAILURES[failure])
    line = assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--data-dir", pre_folder, "--out-dir", out],
                                 "could not write the checkpoint .*last.pt")
    assert "no checkpoint was written yet" in line
    assert not (out / "last.pt").exists()


def _allocate_too_much(*args, **kwargs):
    return torch.empty(2**60, dtype=torch.uint8)  # a real allocator failure: more than any address space


def _python_memory_error(*args, **kwargs):
    raise MemoryError()


@pytest.mark.parametrize("failure", [_allocate_too_much, _python_memory_error], ids=["torch", "python"])
def test_out_of_memory_in_train_says_what_to_make_smaller(capsys, tmp_path, train_folder, monkeypatch, failure):
    monkeypatch.setattr(sscn.training.train, "sscn_loss", failure)
    assert_one_line_error(capsys, ["train", *TRAIN_ARGS, "--steps", "2", "--data-dir", train_folder,
                                   "--out-dir", tmp_path / "run"],
                          r"out of memory; pass a smaller --batch-size \(now 2\) or --image-size \(now 32\); "
                          "no checkpoint was written yet")


@pytest.mark.parametrize("failure", [_allocate_too_much, _python_memory_error], ids=["torch", "python"])
def test_out_of_memory_in_pretrain_says_what_to_make_smaller(capsys, tmp_path, pre_folder, monkeypatch, failure):
    monkeypatch.setattr(sscn.training.pretrain, "augment", failure)
    assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--data-dir", pre_folder, "--out-dir", tmp_path / "pre"],
                          r"out of memory; pass a smaller --batch-size \(now 2\) or --image-size \(now 32\)")


@pytest.mark.parametrize("options, match", [
    (["--epochs", "inf"], "epochs must be a number > 0 and at most"),
    (["--epochs", "1e308"], "epochs must be a number > 0 and at most"),
    (["--warmup-epochs", "inf"], "warmup_epochs must be"),
    (["--weight-decay", "inf"], "weight_decay must be a finite number"),
    (["--device", "cuda:abc"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["--device", "meta"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["--seed", str(2**70)], "seed must be an int between"),
    (["--seed", str(-2**40)], "seed must be an int between"),
])
def test_bad_pretrain_settings_are_one_line(capsys, tmp_path, pre_folder, options, match):
    assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--data-dir", pre_folder, "--out-dir", tmp_path / "pre",
                                   *options], match)
    assert not (tmp_path / "pre" / "last.pt").exists()


def _vgg_file(tmp_path: Path, kind: str) -> Path:
    from sscn.models.encoder import VGGEncoder

    path = tmp_path / f"vgg-{kind.replace(' ', '_')}.pth"
    state = {f"features.{k}": v for k, v in VGGEncoder(1.0, levels=5, norm="none").features.state_dict().items()}
    first = next(iter(state))
    content = {
        "a list": [1, 2, 3],
        "a tensor": torch.zeros(3),
        "int keys": {0: torch.zeros(3)},
        "non-tensor values": {**state, first: "x"},
        "odd key": {**state, "features.x.weight": torch.zeros(1)},
        "wrong shape": {**state, first: torch.zeros(3)},
        "int weights": {**state, first: state[first].to(torch.int32)},
        "nan weights": {**state, first: torch.full(state[first].shape, math.nan)},
        "sparse weights": {**state, first: state[first].reshape(-1).to_sparse()},
        "meta weights": {**state, first: torch.empty(state[first].shape, device="meta")},
        "runs code": {"payload": _RunsCode(tmp_path / "pwned")},
    }.get(kind)
    if kind == "text file":
        path.write_text("vgg19 weights")
    else:
        torch.save(content, path)
    return path


VGG_KINDS = ["a list", "a tensor", "int keys", "non-tensor values", "wrong shape", "int weights",
             "nan weights", "sparse weights", "meta weights", "runs code", "text file"]


@pytest.mark.parametrize("kind", VGG_KINDS)
def test_vgg_weights_that_are_not_a_state_dict_are_one_line(tmp_path, kind):
    from sscn.models.encoder import VGGEncoder

    path = _vgg_file(tmp_path, kind)
    with pytest.raises(SSCNError) as info:
        VGGEncoder(1.0, levels=5, norm="none").load_vgg19(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    _not_pwned(tmp_path)


def test_vgg_weights_with_keys_of_other_layers_load(tmp_path):
    """A whole-model state dict has its classifier's keys too (and a key like features.x.weight broke the
    parser): keys that are no layer of the encoder are left aside."""
    from sscn.models.encoder import VGGEncoder

    path = _vgg_file(tmp_path, "odd key")
    encoder = VGGEncoder(1.0, levels=5, norm="none")
    encoder.load_vgg19(path)
    assert torch.equal(encoder.features[0].weight, torch.load(path, weights_only=True)["features.0.weight"])


def test_vgg_weights_through_the_cli_are_one_line(capsys, tmp_path, train_folder):
    path = _vgg_file(tmp_path, "a list")
    argv = ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder, "--out-dir", tmp_path / "run",
            "--width", "1.0", "--encoder-norm", "none", "--vgg-weights", path]
    assert_one_line_error(capsys, argv, "not a state dict of tensors")


# ------------------------------------------------------------------ group 6: a corrupt photo in the pre-stage

def _corrupt_middle_png(path: Path) -> Path:
    """A PNG whose first and last bytes are intact (the dataset scan keeps it) but whose pixel data is garbage."""
    Image.fromarray(photo(40, 40, seed=7)).save(path, "PNG")
    garble_middle(path)
    with pytest.raises(SSCNError):
        load_image(path)
    return path


def test_a_corrupt_photo_is_skipped_by_pretrain(capsys, tmp_path, pre_folder):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(pre_folder, data)
    _corrupt_middle_png(data / "train" / "class0" / "bad.png")
    with pytest.warns(UserWarning, match="skipped 1 of 5 photos .*could not be decoded"):
        summary = pretrain(_pre_config(data, tmp_path / "pre"), progress=False)
    assert summary["steps"] == 2  # four good photos at batch size 2
    assert "pre-stage: 4 train / 2 val photos" in capsys.readouterr().out


# ------------------------------------------------------------------ group 9 (in part)

@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_a_pre_stage_as_checkpoint_says_what_it_is(capsys, tmp_path, train_folder, pre_file, command):
    target = tmp_path / "target.png"
    Image.fromarray(photo(40, 48, seed=1)).save(target)
    argv = {"colorize": ["colorize", target, target, "--checkpoint", pre_file, "--size", "32",
                         "-o", tmp_path / "out.png"],
            "evaluate": ["evaluate", "--data", train_folder, "--checkpoint", pre_file, "--size", "32",
                         "--limit", "1", "--kinds", "tps", "--methods", "sparse", "--no-progress",
                         "--out", tmp_path / "eval"]}[command]
    line = assert_one_line_error(capsys, argv, "is a pre-stage checkpoint")
    assert "--encoder-from" in line and "version" not in line


def test_pretrain_divergence_without_a_checkpoint_says_so(capsys, tmp_path, pre_folder, monkeypatch):
    real = sscn.training.pretrain.augment
    monkeypatch.setattr(sscn.training.pretrain, "augment", lambda *a, **k: real(*a, **k) * math.nan)
    line = assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--data-dir", pre_folder,
                                          "--out-dir", tmp_path / "pre"], "pre-stage diverged at step 1")
    assert "no checkpoint was written yet" in line and "the last checkpoint is kept" not in line


def test_pretrain_divergence_after_a_checkpoint_names_it(capsys, tmp_path, pre_folder, monkeypatch):
    out = tmp_path / "pre"
    pretrain(_pre_config(pre_folder, out), progress=False)
    real = sscn.training.pretrain.augment
    monkeypatch.setattr(sscn.training.pretrain, "augment", lambda *a, **k: real(*a, **k) * math.nan)
    line = assert_one_line_error(capsys, ["pretrain", *PRE_ARGS, "--epochs", "2", "--data-dir", pre_folder,
                                          "--out-dir", out], "pre-stage diverged at step 3")
    assert f"the previous checkpoint ({out / 'last.pt'}, step 2) is kept" in line


def test_init_from_and_encoder_from_together_are_refused(capsys, tmp_path, train_folder, pre_file, sscn_file,
                                                         monkeypatch):
    monkeypatch.setattr(sscn.training.train, "datasets", _no_work)
    assert_one_line_error(capsys, ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder,
                                   "--out-dir", tmp_path / "run", "--encoder-from", pre_file,
                                   "--init-from", sscn_file], "init_from must be empty when encoder_from is set")


def test_freezing_an_init_from_encoder_is_allowed(tmp_path, train_folder, resume_file):
    summary = train(_train_config(train_folder, tmp_path / "run", steps=1, init_from=str(resume_file),
                                  freeze_encoder=True), progress=False)
    assert summary["steps"] == 1
    start = torch.load(resume_file, weights_only=True)["model"]
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    assert torch.equal(start["encoder.features.0.weight"], after["encoder.features.0.weight"])


def test_empty_class_folders_are_not_classes(tmp_path):
    root = tmp_path / "photos"
    _photos(root, 2, 0)
    (root / "aaa_empty").mkdir()
    (root / "zzz_only_text").mkdir()
    (root / "zzz_only_text" / "notes.txt").write_text("no photos here")
    with pytest.warns(UserWarning, match="skipped 2 class folder"):
        folder = ImageFolder(root, 32)
    assert folder.classes == CLASSES
    assert sorted(set(folder.labels)) == [0, 1]


def test_empty_class_folders_do_not_reach_the_pre_stage(tmp_path, pre_folder):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(pre_folder, data)
    (data / "train" / "class9").mkdir()
    (data / "val" / "class9").mkdir()
    with pytest.warns(UserWarning, match="class folder"):
        pretrain(_pre_config(data, tmp_path / "pre"), progress=False)
    assert read_pretrained(tmp_path / "pre" / "last.pt")["classes"] == CLASSES


def _no_work(*args, **kwargs):
    raise AssertionError("the photos were decoded before the output folder was checked")


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    (folder / "probe").unlink()
    folder.chmod(0o755)
    # root writes anywhere it may: a pid folder of /proc takes no new file, even from root
    proc = Path(f"/proc/{os.getpid()}")
    if not proc.is_dir():
        pytest.skip("no folder this user cannot write to")
    return proc


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_a_read_only_out_dir_fails_before_the_work(capsys, tmp_path, train_folder, pre_folder, monkeypatch, command):
    folder = _read_only_folder(tmp_path)
    try:
        if command == "train":
            monkeypatch.setattr(sscn.training.train, "datasets", _no_work)
            argv = ["train", *TRAIN_ARGS, "--steps", "1", "--data-dir", train_folder, "--out-dir", folder]
        else:
            monkeypatch.setattr(sscn.training.pretrain, "load_photos", _no_work)
            argv = ["pretrain", *PRE_ARGS, "--data-dir", pre_folder, "--out-dir", folder]
        assert_one_line_error(capsys, argv, "out_dir .* is not writable")
    finally:
        if folder.parent == tmp_path:
            folder.chmod(0o755)


def test_a_resumed_run_uses_its_new_learning_rate(tmp_path, train_folder):
    """A resumed run that changes lr says so, and then uses it (the optimizer's saved lr used to win)."""
    out = tmp_path / "run"
    train(_train_config(train_folder, out, steps=1), progress=False)
    train(_train_config(train_folder, out, steps=2, lr=3e-4), progress=False)
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == 3e-4
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["lr"] == 3e-4
