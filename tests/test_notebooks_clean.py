"""Committed notebooks are clean: no execution counts, no machine paths, a `parameters` cell,
built from their current jupytext source, and saying whether their outputs are the full or the smoke run."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load_build_tool():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_notebooks = load_build_tool()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    found = build_notebooks.problems(path)
    assert not found, f"{path.name}: {', '.join(found)}; rebuild it with python tools/build_notebooks.py {path.name[:2]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_source(path):
    assert (ROOT / "notebooks" / "src" / (path.stem + ".py")).exists(), f"{path.name} has no notebooks/src/{path.stem}.py"


def test_the_check_catches_a_dirty_notebook(tmp_path):
    cell = nbformat.v4.new_code_cell("print('hello')", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("stream", text="/" + "home/someone/data/x.png\n")]
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(nbformat.v4.new_notebook(cells=[cell])))
    assert build_notebooks.problems(dirty) == ["execution counts", "a machine path", "no cell tagged 'parameters'"]
    clean = build_notebooks.clean(nbformat.read(dirty, as_version=4))
    clean.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(clean, dirty)
    assert build_notebooks.problems(dirty) == []


def test_the_check_catches_a_notebook_built_from_an_older_source(tmp_path):
    """A committed notebook whose cells differ from notebooks/src/<name>.py was not rebuilt."""
    committed = NOTEBOOKS[1]
    assert build_notebooks.problems(committed) == []
    nb = nbformat.read(committed, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    code.source += "\nprint('an edit made in the notebook, not in its source')"
    stale = tmp_path / committed.name
    nbformat.write(nb, stale)
    assert build_notebooks.problems(stale) == [f"not built from the current notebooks/src/{committed.stem}.py"]


def test_sources_are_jupytext_percent_scripts_paired_with_the_notebooks():
    """jupytext reads every source into the committed notebook's cells; the pairing lives in one file."""
    jupytext = pytest.importorskip("jupytext")
    config = (ROOT / "notebooks" / "jupytext.toml").read_text()
    assert 'formats = "ipynb,src//py:percent"' in config
    for path in NOTEBOOKS:
        source = jupytext.read(ROOT / "notebooks" / "src" / (path.stem + ".py"), fmt="py:percent")
        assert build_notebooks.cell_signature(source) == build_notebooks.cell_signature(nbformat.read(path, as_version=4))


def test_data_flag_sets_data_dir_and_the_stored_notebook_names_no_folder(tmp_path):
    """``--data DIR`` finds the notebooks with a ``data_dir`` parameter, and the built notebook writes
    DIR as ``DATA/<name>`` in its outputs (the injected ``# Parameters`` cell never reaches it)."""
    sources = {p.name[:2]: build_notebooks.read_source(p) for p in sorted((ROOT / "notebooks" / "src").glob("*.py"))}
    assert build_notebooks.has_parameter(sources["04"], "data_dir") is not None
    assert build_notebooks.has_parameter(sources["01"], "data_dir") is None
    data = tmp_path / "imagenette-144"
    data.mkdir()
    cell = nbformat.v4.new_code_cell("print(data_dir)")
    cell.outputs = [nbformat.v4.new_output("stream", text=f"{data}/val/n01440764/x.jpg\n")]
    cleaned = build_notebooks.clean(nbformat.v4.new_notebook(cells=[cell]), build_notebooks.data_places(data))
    assert cleaned.cells[0].outputs[0]["text"] == "DATA/imagenette-144/val/n01440764/x.jpg\n"
