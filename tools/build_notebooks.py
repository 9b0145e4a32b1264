"""Build the course notebooks from their jupytext sources, execute them and clean them.

    python tools/build_notebooks.py               # every notebook, run the way its first cell says
    python tools/build_notebooks.py 01 05         # only those numbers
    python tools/build_notebooks.py --smoke 07    # force SSCN_SMOKE=1 (seconds); --full forces the real run
    python tools/build_notebooks.py --check       # fail if a committed notebook is not clean or not built from its source
    python tools/build_notebooks.py --smoke --out-dir /tmp/nb   # time a run without touching notebooks/
    python tools/build_notebooks.py --text-only 05  # new text, same code: keep the stored outputs
    python tools/build_notebooks.py --data DATA/imagenette-144 04   # run 04 with its data_dir set to that folder

The sources ``notebooks/src/NN_topic.py`` are jupytext percent scripts, paired with
``notebooks/NN_topic.ipynb`` by ``notebooks/jupytext.toml``: with jupytext installed, Jupyter
keeps both in step, and ``jupytext --sync notebooks/src/NN_topic.py`` does it by hand. This
tool only adds what jupytext does not do: it executes the notebook in the mode its first cell
states (``**Stored outputs: full run**`` or ``**Stored outputs: smoke run**``), strips
execution counts, timing metadata and machine paths so the committed notebooks diff well and
reveal nothing local, and writes the repository's Colab links (``REPOSITORY`` below).

``--data DIR`` sets the ``data_dir`` parameter of each notebook built that has one, the way
``papermill -p data_dir DIR`` would: a cell starting ``# Parameters`` that assigns it runs
right after the ``parameters`` cell, so the smoke switch keeps it too
(``sscn.apps.notebook.explicit_parameters``). That cell is removed again before the notebook
is written, and every mention of DIR in the outputs is written ``DATA/<its name>``, so the
stored notebook names no folder of the machine; its first cell should say which data its
outputs come from. The folder is only read. Name the notebooks: 04 and 08 read photos from
it, but 07 *trains* on its ``data_dir``, so ``--data`` with 07 starts a real training run.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
# The one place that names the GitHub repository: the "Open in Colab" links and the cell that
# installs the package on Colab are rewritten to it on every build.
REPOSITORY = "sscn-course/sscn"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/main/notebooks/")
INSTALL_URL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+?(?=[\"'@ ])")
# a link to a file of this repository (works from Colab or a downloaded notebook, where ../ does not)
REPO_FILE = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+/(blob|tree)/main/(?=(sscn|docs|notebooks|tools)/)")
STORED = re.compile(r"\*\*Stored outputs: (full|smoke) run\*\*")
MACHINE_PATH = re.compile(r"(/(?:work|tmp|root|home)/[^\s'\"\\]*)")
DATA_PARAMETER = "data_dir"  # the parameter that --data sets


def with_repository(text: str) -> str:
    """The source text with its Colab links, install URL and links to repository files pointing at ``REPOSITORY``."""
    text = COLAB_LINK.sub(f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/", text)
    text = REPO_FILE.sub(lambda m: f"https://github.com/{REPOSITORY}/{m.group(1)}/main/", text)
    return INSTALL_URL.sub(f"git+https://github.com/{REPOSITORY}", text)


def read_source(src: Path) -> nbformat.NotebookNode:
    """The notebook of a percent source, without outputs (jupytext's reader).

    A cell tagged ``solution`` (an exercise's worked solution) starts collapsed in Jupyter:
    the student reveals it with a click.
    """
    nb = jupytext.reads(with_repository(src.read_text()), fmt="py:percent")
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            cell.metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
    return nb


def stored_mode(nb: nbformat.NotebookNode) -> str | None:
    """``"full"`` or ``"smoke"``, as the first markdown cell states it; None when it does not."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    found = STORED.search(first.source) if first else None
    return found.group(1) if found else None


def cell_signature(nb) -> list[tuple]:
    """What a notebook shares with its source: the cells' kinds, texts and tags."""
    return [(c["cell_type"], "".join(c["source"]).strip(), tuple(c.get("metadata", {}).get("tags", [])))
            for c in nb["cells"]]


def clean(nb: nbformat.NotebookNode, replace: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Strip execution counts, timing metadata and machine paths; keep the outputs.

    ``replace``: more text to rewrite in the outputs before the machine paths are shortened
    (``--data``'s folder -> ``DATA/<name>``). Cell ids are derived from the cells' text, so a
    rebuild that changes nothing changes no id.
    """
    replace = replace or {}

    def scrub(text: str) -> str:
        for old, new in replace.items():
            text = text.replace(old, new)
        return MACHINE_PATH.sub(_short_path, text)

    for key in ("papermill", "widgets", "jupytext"):
        nb.metadata.pop(key, None)
    seen: dict[str, int] = {}
    for cell in nb.cells:
        for key in ("execution", "papermill", "ExecuteTime"):
            cell.metadata.pop(key, None)
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        for out in cell.outputs:
            if "execution_count" in out:
                out["execution_count"] = None
            if out.get("output_type") == "stream":
                out["text"] = scrub(out["text"])
            for key, value in list(out.get("data", {}).items()):
                if key.startswith("text/") and isinstance(value, str):
                    out["data"][key] = scrub(value)
            # widget views reference kernel state that is gone once the file is saved
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    return nb


def _short_path(match: re.Match) -> str:
    path = match.group(1)
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return "<" + Path(path).name + ">"


def problems(path: Path) -> list[str]:
    """What keeps a committed notebook from being clean (empty when it is clean).

    When ``notebooks/src/<name>.py`` exists, the notebook must also hold exactly its cells
    (built from the current source) and state whether its outputs are the full or the smoke run.
    """
    text = path.read_text()
    nb = json.loads(text)
    found = []
    if any(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"):
        found.append("execution counts")
    if MACHINE_PATH.search(text):
        found.append("a machine path")
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
        found.append("no cell tagged 'parameters'")
    src = SRC / (path.stem + ".py")
    if src.exists():
        if cell_signature(nb) != cell_signature(read_source(src)):
            found.append(f"not built from the current notebooks/src/{src.name}")
        if stored_mode(nbformat.reads(text, as_version=4)) is None:
            found.append("no '**Stored outputs: full run**' or '... smoke run**' in its first cell")
    return found


def has_parameter(nb: nbformat.NotebookNode, name: str) -> int | None:
    """The index of the ``parameters`` cell when it assigns ``name``; None otherwise."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                        if isinstance(t, ast.Name)}
            return index if name in assigned else None
    return None


def data_places(data: Path) -> dict[str, str]:
    """How ``data`` is written in a stored notebook: ``DATA/<its name>``, whichever spelling the run printed."""
    # absolute spellings only: a short relative one ("data") could match any word of an output
    shown = f"DATA/{data.resolve().name}"
    return {spelling: shown for spelling in sorted({str(data.resolve()), str(data.absolute())}, key=len, reverse=True)}


def build(src: Path, mode: str | None, timeout: int, out_dir: Path = OUT,
          data: Path | None = None) -> tuple[Path, str, float, float]:
    """Execute one source and write the cleaned notebook.

    ``data``: the value of the notebook's ``data_dir`` parameter for this run (``--data``);
    ignored when the notebook has no such parameter. Returns (path, mode used, wall seconds,
    CPU seconds of the kernel): on a shared machine the wall time depends on the load, the
    kernel's CPU time much less.
    """
    text = with_repository(src.read_text())
    if text != src.read_text():
        src.write_text(text)
    nb = read_source(src)
    mode = mode or stored_mode(nb)
    if mode is None:
        raise SystemExit(f"{src.name}: its first cell must say '**Stored outputs: full run**' or '... smoke run**'")
    injected = None
    where = has_parameter(nb, DATA_PARAMETER) if data is not None else None
    if where is not None:
        # papermill's form: sscn.apps.notebook.explicit_parameters reads it, so smoke mode keeps the value
        # absolute: the kernel runs in notebooks/, not where the command was typed
        injected = nbformat.v4.new_code_cell(f"# Parameters\n{DATA_PARAMETER} = {str(data.resolve())!r}\n")
        nb.cells.insert(where + 1, injected)
    env_before = os.environ.get("SSCN_SMOKE")
    os.environ["SSCN_SMOKE"] = "1" if mode == "smoke" else "0"
    start, used_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(OUT)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("SSCN_SMOKE")
        else:
            os.environ["SSCN_SMOKE"] = env_before
    seconds = time.perf_counter() - start
    used_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (used_after.ru_utime - used_before.ru_utime) + (used_after.ru_stime - used_before.ru_stime)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (src.stem + ".ipynb")
    if injected is not None:
        del nb.cells[where + 1]  # the injected cell: the stored notebook holds exactly its source's cells
    nbformat.write(clean(nb, data_places(data) if injected is not None else None), target)
    return target, mode, seconds, cpu_seconds


def refresh(src: Path, out_dir: Path = OUT) -> Path:
    """Take the source's text but keep the stored outputs, without executing anything.

    Only for edits of the text around the code (and a new ``REPOSITORY``): every code cell of
    the source must be in the stored notebook verbatim, its repository address aside (the
    outputs it made are then still its outputs); otherwise the notebook has to be rebuilt.
    """
    target = out_dir / (src.stem + ".ipynb")
    stored: dict[str, list] = {}
    old = nbformat.read(target, as_version=4)
    for cell in old.cells:
        if cell.cell_type == "code":
            # a new REPOSITORY changes the install line's text, not what the cell printed
            stored.setdefault(with_repository(cell.source), []).append(cell.outputs)
    nb = read_source(src)
    for cell in nb.cells:
        if cell.cell_type == "code":
            if not stored.get(cell.source):
                raise SystemExit(f"{src.name}: a code cell changed since the stored run, so its outputs are stale; "
                                 f"rebuild it: python tools/build_notebooks.py {src.name[:2]}\n{cell.source[:300]}")
            cell.outputs = stored[cell.source].pop(0)
            cell.execution_count = None
    if "language_info" in old.metadata:  # what the kernel of the stored run reported, not only its name
        nb.metadata["language_info"] = old.metadata["language_info"]
    nbformat.write(clean(nb), target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("numbers", nargs="*", help="notebook numbers such as 01 05 (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_const", const="full", dest="mode", help="execute without SSCN_SMOKE")
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="mode", help="execute with SSCN_SMOKE=1")
    parser.add_argument("--check", action="store_true", help="only check that committed notebooks are clean")
    parser.add_argument("--text-only", action="store_true",
                        help="update the text from the source and keep the stored outputs (no code cell may change)")
    parser.add_argument("--out-dir", type=Path, default=OUT, help="where to write the notebooks (default: notebooks/)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="set data_dir to DIR in the notebooks built that have that parameter "
                        "(e.g. the Imagenette root for 04); the folder is only read")
    args = parser.parse_args(argv)
    if args.data is not None:
        if not args.data.is_dir():
            parser.error(f"--data {args.data}: not a folder")
        if args.out_dir.resolve().is_relative_to(args.data.resolve()):
            parser.error("--out-dir lies inside --data; the data folder is only read")
        if args.check or args.text_only:
            parser.error("--data only applies to a build that executes the notebooks")
    if args.check:
        bad = {p.name: problems(p) for p in sorted(OUT.glob("*.ipynb"))}
        bad = {k: v for k, v in bad.items() if v}
        for name, why in bad.items():
            print(f"{name}: {', '.join(why)}")
        return 1 if bad else 0
    sources = sorted(SRC.glob("*.py"))
    if args.numbers:
        sources = [s for s in sources if s.name[:2] in args.numbers]
    for src in sources:
        if args.text_only:
            print(f"  -> {refresh(src, args.out_dir).name} (text updated, stored outputs kept)")
            continue
        print(f"building {src.name}", flush=True)
        if args.data is not None and has_parameter(read_source(src), DATA_PARAMETER) is not None:
            print(f"  {DATA_PARAMETER} = DATA/{args.data.resolve().name}", flush=True)
        target, used, seconds, cpu_seconds = build(src, args.mode, args.timeout, args.out_dir, args.data)
        shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
        print(f"  -> {shown} ({used} run, {seconds:.0f} s wall, {cpu_seconds:.0f} s CPU)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
