"""The course as a student meets it: what every notebook promises, the exercises, and one training recipe.

- every notebook states in its first cell whether its stored outputs are the full or the
  smoke run, how long it takes on what hardware, and links to Colab, where its first code
  cell installs the package;
- notebooks 01-08 hold at least two exercises, each followed by its worked solution
  (a code cell tagged ``solution`` whose first line is ``# Solution N.M``); nbval executes
  the solutions with the rest of the notebook;
- each notebook ends with links to the previous and the next one;
- where a model appears (00, 05, 08), the stored outputs come from the trained bundled
  checkpoint, in a cell that nbval compares with a fresh run and that states the network
  beats a baseline (copy in 00, gray in 05 and 08);
- the README's papermill command is the bundled checkpoint's recipe (SSCN on a frozen
  pre-stage), as are notebook 07's, its defaults, the model card's command and ``--recipe
  bundled``; it runs as printed (at tiny sizes, from a pre-stage for the sample photos), with
  every ``-p`` winning over ``SSCN_SMOKE=1``.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^### Exercise (\d+)\.(\d+)\b")
MODEL_NOTEBOOKS = ("00", "05", "08")
# the baseline each one's checked cell says the network beats: 00 the stronger copy baseline, 05 and 08 gray
BEATEN = {"00": "copy", "05": "gray", "08": "gray"}
BUNDLED_NAME = "sscn_imagenette128.pt"


from test_notebooks_clean import build_notebooks  # the build tool, loaded once


def cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def text_of(cell) -> str:
    outputs = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            outputs.append(out["text"])
        elif "text/plain" in out.get("data", {}):
            outputs.append(out["data"]["text/plain"])
    return "".join(outputs)


def test_the_course_has_its_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))], "notebooks must be numbered 00, 01, ..."
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_states_outputs_time_and_colab(path):
    nb_cells = cells(path)
    first = nb_cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} ")
    assert build_notebooks.stored_mode(nbformat.v4.new_notebook(cells=[first])) in ("full", "smoke")
    assert "SSCN_SMOKE=1" in first.source, "say what the smoke run changes"
    assert re.search(r"about \d+(\.\d+)? (s|min)\b", first.source), "give the time a run takes"
    assert "CPU" in first.source or "GPU" in first.source, "name the hardware"
    assert "TIME_" not in first.source
    colab = f"https://colab.research.google.com/github/{build_notebooks.REPOSITORY}/blob/main/notebooks/{path.name}"
    assert colab in first.source
    install = next(c for c in nb_cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in install.source
    assert f"git+https://github.com/{build_notebooks.REPOSITORY}" in install.source


OUT_SPAN = re.compile(r'<span class="out">(.*?)</span>', re.S)  # a number the prose takes from an output


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def output_text(nb) -> str:
    """Everything a notebook's code cells printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(out.get("text", ""))
            parts += [out.get("data", {}).get(kind, "") for kind in ("text/plain", "text/markdown")]
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


def stale_numbers(path: Path) -> list[str]:
    """The prose's marked numbers (``<span class="out">...</span>``) that no stored output shows."""
    nb = nbformat.read(path, as_version=4)
    printed = _squash(output_text(nb))
    return [m for c in nb.cells if c.cell_type == "markdown" for m in OUT_SPAN.findall(c.source)
            if _squash(m) not in printed]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_the_prose_takes_from_outputs_are_in_the_stored_outputs(path):
    """A number written in the prose from a cell's output is marked, and must still be printed there:
    a rebuilt notebook whose numbers moved fails here until its prose is updated (docs/CONVENTIONS.md)."""
    assert stale_numbers(path) == [], f"{path.name}: the prose quotes numbers its outputs no longer show"


def test_the_prose_check_catches_a_stale_output(tmp_path):
    marked = sum(len(OUT_SPAN.findall(c.source)) for p in NOTEBOOKS for c in cells(p) if c.cell_type == "markdown")
    assert marked >= 6  # the check has something to check
    path = next(p for p in NOTEBOOKS if p.name.startswith("04"))
    nb = nbformat.read(path, as_version=4)
    printed = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "shuffled labels" in out.get("text", ""):
                printed += re.findall(r"shuffled labels, \d+ shuffles: training accuracy (\d+)%", out["text"])
                out["text"] = re.sub(r"training accuracy \d+%", "training accuracy -1%", out["text"])
    nbformat.write(nb, tmp_path / path.name)
    assert len(printed) == 1  # exercise 4.1's printed number, which its solution quotes
    assert [_squash(m) for m in stale_numbers(tmp_path / path.name)] == [f"{printed[0]}%"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_links_work_when_the_notebook_is_opened_on_its_own(path):
    """A link that leaves notebooks/ (``../``) breaks on Colab or in a downloaded notebook: it
    points at the repository on GitHub instead (rewritten to ``REPOSITORY`` by the build)."""
    for cell in cells(path):
        if cell.cell_type == "markdown":
            assert not re.findall(r"(?<!!)\[[^\]]*\]\(\.\./", cell.source), cell.source[:300]
    text = path.read_text()
    for link in re.findall(r"https://github\.com/([\w.-]+/[\w.-]+)/(?:blob|tree)/main/(?:sscn|docs|notebooks|tools)/", text):
        assert link == build_notebooks.REPOSITORY


def test_00_shows_the_model_cards_table_as_it_is_now():
    """00's evaluation table is the model card's, displayed by a cell; a card that changed since the
    notebook was built fails here (rebuild 00)."""
    card = (ROOT / "sscn" / "checkpoints" / "MODEL_CARD.md").read_text()
    block = card.split("<!-- results -->")[1].split("<!-- /results -->")[0]
    nb = nbformat.read(next(p for p in NOTEBOOKS if p.name.startswith("00")), as_version=4)
    shown = [out["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for out in c.outputs
             if "text/markdown" in out.get("data", {}) and "| method | reference |" in out["data"]["text/markdown"]]
    assert shown == [block]


def test_a_new_repository_is_one_setting_and_keeps_the_stored_outputs(tmp_path, monkeypatch):
    """Publishing under another GitHub repository: change ``REPOSITORY``, rebuild the text only;
    every link and the install line follow, and the stored outputs stay (README, "On Colab")."""
    import shutil

    path = NOTEBOOKS[0]
    shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(build_notebooks, "REPOSITORY", "someone-else/their-course")
    build_notebooks.refresh(ROOT / "notebooks" / "src" / (path.stem + ".py"), tmp_path)
    text = (tmp_path / path.name).read_text()
    assert "sscn-course/sscn" not in text and text.count("someone-else/their-course") >= 2
    before = [c.outputs for c in cells(path) if c.cell_type == "code"]
    assert [c.outputs for c in cells(tmp_path / path.name) if c.cell_type == "code"] == before


def test_a_text_only_build_of_an_unchanged_source_changes_no_byte(tmp_path):
    """``--text-only`` keeps the stored notebook's outputs and its kernel's language_info: with
    the source unchanged the notebook comes back byte for byte, so a text edit's diff is only that edit."""
    import shutil

    path = NOTEBOOKS[0]
    shutil.copy(path, tmp_path / path.name)
    build_notebooks.refresh(ROOT / "notebooks" / "src" / (path.stem + ".py"), tmp_path)
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_placeholder_is_left(path):
    for cell in cells(path):
        assert not re.search(r"\b(READ|TIME)_[A-Z0-9_]+\b", cell.source), cell.source[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_last_cell_links_to_the_neighbours(path):
    last = cells(path)[-1]
    assert last.cell_type == "markdown"
    index = NOTEBOOKS.index(path)
    links = re.findall(r"\]\(([^)#]+\.ipynb)", last.source)
    for target in links:
        assert (ROOT / "notebooks" / target).exists(), f"{path.name} links to a missing {target}"
    if index > 0:
        assert NOTEBOOKS[index - 1].name in links, f"{path.name} does not link to the previous notebook"
    if index + 1 < len(NOTEBOOKS):
        assert NOTEBOOKS[index + 1].name in links, f"{path.name} does not link to the next notebook"


def exercises(path: Path, nb_cells=None) -> list[tuple[str, object, list]]:
    """(number, exercise cell, the solution cells after it) for every exercise of a notebook."""
    nb_cells = cells(path) if nb_cells is None else nb_cells
    found = []
    for i, cell in enumerate(nb_cells):
        match = EXERCISE.match(cell.source) if cell.cell_type == "markdown" else None
        if match:
            solution = []
            for later in nb_cells[i + 1 :]:
                if "solution" not in later.metadata.get("tags", []):
                    break
                solution.append(later)
            found.append((f"{match.group(1)}.{match.group(2)}", cell, solution))
    return found


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] != "00"], ids=lambda p: p.name)
def test_two_exercises_with_worked_solutions(path):
    found = exercises(path)
    number = int(path.name[:2])
    assert len(found) >= 2, f"{path.name} has {len(found)} exercises"
    assert [n for n, _, _ in found] == [f"{number}.{i}" for i in range(1, len(found) + 1)]
    for n, exercise, solution in found:
        assert "solution" not in exercise.metadata.get("tags", []), f"exercise {n} must stay visible"
        assert solution and solution[0].cell_type == "code", f"exercise {n} needs a solution code cell after it"
        assert solution[0].source.splitlines()[0] == f"# Solution {n}"
        assert solution[0].metadata.get("jupyter", {}).get("source_hidden"), f"solution {n} should start collapsed"
        for cell in solution:  # nbval runs them: nothing may skip them
            assert not {"nbval-skip", "skip-execution", "raises-exception"} & set(cell.metadata.get("tags", []))
            assert "NBVAL_SKIP" not in cell.source
        assert solution[0].outputs, f"solution {n} has no stored output: was it executed?"


def test_every_solution_tag_belongs_to_an_exercise():
    for path in NOTEBOOKS:
        nb_cells = cells(path)
        attached = {id(cell) for _, _, solution in exercises(path, nb_cells) for cell in solution}
        loose = [c.source[:60] for c in nb_cells if "solution" in c.metadata.get("tags", []) and id(c) not in attached]
        assert not loose, f"{path.name}: solution cells without an exercise before them: {loose}"


@pytest.mark.parametrize("number", MODEL_NOTEBOOKS)
def test_stored_outputs_come_from_the_trained_checkpoint(number):
    """The cell that names the model is compared by nbval with a fresh run, so a stale copy fails;
    here the committed output itself must name the trained checkpoint and beat its baseline (``BEATEN``)."""
    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    checked = [c for c in cells(path) if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source
               and "model:" in c.source]
    assert checked, f"{path.name} has no checked cell that names its model"
    stored = "".join(text_of(c) for c in checked)
    assert f"model: {BUNDLED_NAME}" in stored
    assert re.search(rf"the network beats {BEATEN[number]}( on this pair)?: True", stored)


def test_glossary_has_the_terms():
    overview = next(p for p in NOTEBOOKS if p.name.startswith("00"))
    glossary = next(c.source for c in cells(overview) if c.source.startswith("## Glossary"))
    for term in ("Lab", "AdaIN", "CAM", "token", "TPS", "self-augmentation"):
        assert f"**{term}" in glossary, term


# --------------------------------------------------------------------------- one papermill recipe


def resolve(value: str):
    """A ``-p`` value as papermill's command line reads it: an int, a float, a bool, None or a string."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(value, value)


def papermill_commands(text: str) -> list[dict]:
    """The ``-p`` values of every papermill command in a text, as papermill would parse them."""
    commands = []
    for match in re.finditer(r"papermill notebooks/07_training\.ipynb(?:[^\n\\]|\\\n)*", text):
        words = shlex.split(match.group(0).replace("\\\n", " ").replace("#", " "))
        params = {words[i + 1]: resolve(words[i + 2]) for i, word in enumerate(words) if word == "-p"}
        commands.append(params)
    return commands


# where the data, the outputs and the pre-stage live: not the recipe, so not compared by value
# (a recipe that starts from a pre-stage must still name one); how a run is shown; and the
# time limit, which a fixed number of steps replaces
LOCATIONS = ("data_dir", "out_dir", "encoder_from")
NOT_THE_RECIPE = (*LOCATIONS, "metrics_json", "threads", "n_samples", "time_limit_min")
# what a printed command must spell out rather than leave to the notebook's or the CLI's defaults
SPELT_OUT = ("data_dir", "out_dir", "encoder_from", "freeze_encoder", "image_size", "width", "batch_size", "lr", "k",
             "r", "steps", "preload", "val_every", "val_images", "log_every", "ckpt_every", "num_workers",
             "encoder_norm", "style_level", "cam_level")


def recipe() -> tuple[dict, int]:
    """The bundled run's training settings and its number of steps.

    A run from before the layout settings existed stores none of them; its network's config
    (read as such a checkpoint is loaded) says which layout it had. A run that a time limit
    stopped (the legacy one: steps 200,000, stopped at 3,250) ran the checkpoint's step count;
    any other ran its ``steps`` setting.
    """
    from sscn.models.checkpoint import bundled_checkpoint, config_from_dict, read_checkpoint

    ckpt = read_checkpoint(bundled_checkpoint())
    network = config_from_dict(ckpt["config"]).to_dict()
    layout = {name: network[name] for name in ("encoder_norm", "style_level", "cam_level") if name in network}
    trained = ckpt["train_config"]
    return {**layout, **trained}, ckpt["step"] if trained.get("time_limit_min") else trained["steps"]


def compare_with_recipe(params: dict) -> list[str]:
    """The settings of a command (papermill's ``-p`` values, or a config) that differ from the bundled run's."""
    config, steps = recipe()
    differ = []
    for name, value in params.items():
        if name == "encoder_from":  # a location, but the recipe either starts from a pre-stage or does not
            if bool(value) != bool(config.get(name)):
                differ.append(f"{name} {value!r} (recipe: {'a pre-stage' if config.get(name) else 'none'})")
            continue
        if name in NOT_THE_RECIPE:
            continue
        expected = steps if name == "steps" else config[name]
        if value != expected:
            differ.append(f"{name} {value!r} (recipe: {expected!r})")
    return differ


def readme_recipe() -> dict:
    commands = papermill_commands((ROOT / "README.md").read_text())
    assert commands, "the README has no papermill command for notebooks/07_training.ipynb"
    return commands[0]


def test_readme_papermill_command_is_the_bundled_recipe():
    params = readme_recipe()
    for name in SPELT_OUT:
        assert name in params, f"the README's papermill command leaves {name} to the notebook's default"
    assert compare_with_recipe(params) == []


def test_notebook_07_commands_and_defaults_are_the_recipe():
    source = (ROOT / "notebooks" / "src" / "07_training.py").read_text()
    commands = papermill_commands(source)
    assert commands[0] == readme_recipe(), "notebook 07 and the README print different recipes"
    defaults = {}
    parameters = source.split('# %% tags=["parameters"]')[1].split("# %%")[0]
    exec(parameters, defaults)
    for name in SPELT_OUT:
        assert name in defaults, f"notebook 07 has no parameter {name}"
    assert compare_with_recipe({k: v for k, v in defaults.items() if k in recipe()[0] or k == "steps"}) == []


def card_flags(command: str) -> dict:
    """``--name value`` of a command line as ``{name: value}``; a flag without a value is True, ``--no-name`` False."""
    words = shlex.split(command)
    flags = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            name = word[2:].replace("-", "_")
            if i + 1 < len(words) and not words[i + 1].startswith("--"):
                flags[name] = words[i + 1]
            elif name.startswith("no_"):
                flags[name[3:]] = False
            else:
                flags[name] = True
    return {{"topk": "k", "random_tokens": "r"}.get(name, name): value for name, value in flags.items()}


def test_model_card_command_is_the_same_recipe():
    """The model card's ``python -m sscn.training.train`` line spells out the named recipe, and each
    value it gives is the bundled run's (``--freeze-encoder``, a flag without a value, means True)."""
    from sscn.training.recipes import TRAIN

    card = (ROOT / "sscn" / "checkpoints" / "MODEL_CARD.md").read_text()
    command = re.search(r"python -m sscn\.training\.train(?:[^\n\\]|\\\n)*", card).group(0).replace("\\\n", " ")
    flags = card_flags(command)
    for name in (*TRAIN["bundled"], *LOCATIONS):
        assert name in flags, f"the model card's command leaves {name} to the default"
    config, steps = recipe()
    for name, value in flags.items():
        if name in LOCATIONS:
            continue
        expected = steps if name == "steps" else config[name]
        assert str(expected) == str(value) or expected == type(expected)(value), (name, value, expected)
    readme = readme_recipe()
    for name in ("image_size", "width", "batch_size", "lr", "k", "r", "preload", "freeze_encoder"):
        assert readme[name] == config[name]


def tiny_pre_stage(path: Path, width: float, norm: str) -> str:
    """A pre-stage checkpoint (untrained) for the sample photos' classes, as ``sscn pretrain`` writes one:
    the shipped pre-stage knows Imagenette's classes, which a run on the sample photos cannot load."""
    import torch

    from sscn.io.data import ImageFolder, sample_folder
    from sscn.models.classifier import EncoderClassifier

    classes = ImageFolder(sample_folder(), 32).classes
    torch.manual_seed(0)
    model = EncoderClassifier(width, norm, len(classes))
    torch.save({"model": model.state_dict(), "config": {"width": width, "norm": norm}, "classes": classes,
                "kind": "sscn-pretrain"}, path)
    return str(path)


def test_readme_recipe_runs_as_printed_and_wins_over_smoke(tmp_path, monkeypatch):
    """The README's command at tiny sizes, under SSCN_SMOKE=1: every -p wins, and the notebook says so.
    Its locations are replaced (the sample photos; a pre-stage for their classes), the recipe's
    network width, layout and frozen pre-stage encoders are kept."""
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("SSCN_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    readme = readme_recipe()
    pre_stage = tiny_pre_stage(tmp_path / "pre.pt", readme["width"], readme["encoder_norm"])
    tiny = dict(data_dir="samples", out_dir=str(tmp_path / "run"), encoder_from=pre_stage, image_size=32, steps=2,
                batch_size=4, val_every=2, val_images=2, log_every=1, ckpt_every=2, num_workers=0,
                metrics_json=str(tmp_path / "metrics.json"), threads=1, n_samples=1)
    params = {**readme, **tiny}
    assert params["freeze_encoder"] is True  # the recipe's frozen pre-stage runs here too
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "07_training.ipynb"), str(out), parameters=params,
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = metrics["config"]
    for name, value in params.items():
        if name in config:
            assert config[name] == value, f"{name}: ran with {config[name]!r}, papermill gave {value!r}"
    assert metrics["steps"] == 2
    printed = "".join(text_of(c) for c in nbformat.read(out, as_version=4).cells)
    assert "SSCN_SMOKE=1 IGNORED for the parameters given explicitly to papermill" in printed
    assert "lr = 0.0002" in printed and "freeze_encoder = True" in printed
    assert f"encoders from the pre-stage {pre_stage!r}, frozen" in printed


def sscn_train_commands(text: str, start: str = "sscn train --recipe bundled") -> list[str]:
    """Every command of a text that begins with ``start`` (comment markers and line breaks removed)."""
    found = re.finditer(re.escape(start) + r"(?:[^\n\\`]|\\\n)*", text)
    return [m.group(0).replace("\\\n", " ").replace("#", " ") for m in found]


def test_the_named_bundled_recipe_is_the_bundled_run():
    """``sscn train --recipe bundled`` (sscn/training/recipes.py), the README's and notebook 07's
    commands and the checkpoint's own record are one recipe: none can drift alone."""
    from dataclasses import asdict

    from sscn.apps.cli import parse
    from sscn.training.config import TrainConfig, config_from_args
    from sscn.training.recipes import TRAIN, train_config

    named = TRAIN["bundled"]
    assert compare_with_recipe(named) == []
    # the named recipe with the defaults it leaves alone is the whole recorded run, weights and layout included
    recorded = recipe()[0]
    whole = asdict(train_config("bundled", encoder_from="bundled"))
    assert set(named) <= set(recorded)
    assert compare_with_recipe({k: v for k, v in whole.items() if k in recorded}) == []
    readme = readme_recipe()
    assert {k: v for k, v in readme.items() if k not in LOCATIONS} == \
        {k: whole[k] for k in readme if k not in LOCATIONS}
    # the README's sscn train --recipe bundled and every sscn train line of notebook 07 (by name and
    # spelt out), parsed as the command line parses them
    readme_text = (ROOT / "README.md").read_text()
    notebook_text = (ROOT / "notebooks" / "src" / "07_training.py").read_text()
    for lines in (sscn_train_commands(readme_text), sscn_train_commands(notebook_text, "sscn train ")):
        assert lines, "no sscn train command of the recipe"
        for line in lines:
            cfg = asdict(config_from_args(parse(shlex.split(line)[1:]), TrainConfig))
            assert compare_with_recipe({k: v for k, v in cfg.items() if k in recorded}) == [], line
