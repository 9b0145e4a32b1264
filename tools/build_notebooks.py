"""Build notebooks from their sources, execute them in smoke mode and clean them.

    python tools/build_notebooks.py            # every notebooks/src/*.py
    python tools/build_notebooks.py 01 05      # only those numbers
    python tools/build_notebooks.py --full 07  # without SSCN_SMOKE (the real run)
    python tools/build_notebooks.py --check    # fail if a committed notebook is not clean

A source is a Python file whose cells start with ``# %%`` (code) or
``# %% [markdown]`` (markdown, each line prefixed by ``# ``). ``# %% tags=["parameters"]``
tags a cell. Cleaning removes execution counts, execution timing metadata and
machine paths, so the committed notebooks diff well and reveal nothing local.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")
MACHINE_PATH = re.compile(r"(/(?:work|tmp|root|home)/[^\s'\"\\]*)")


def parse(source: str) -> nbformat.NotebookNode:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in source.splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip execution counts, timing metadata and machine paths; keep the outputs."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        for out in cell.outputs:
            if "execution_count" in out:
                out["execution_count"] = None
            if out.get("output_type") == "stream":
                out["text"] = MACHINE_PATH.sub(_short_path, out["text"])
            for key, value in list(out.get("data", {}).items()):
                if key.startswith("text/") and isinstance(value, str):
                    out["data"][key] = MACHINE_PATH.sub(_short_path, value)
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
    """What keeps a committed notebook from being clean (empty when it is clean)."""
    nb = json.loads(path.read_text())
    found = []
    if any(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"):
        found.append("execution counts")
    if MACHINE_PATH.search(json.dumps(nb)):
        found.append("a machine path")
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
        found.append("no cell tagged 'parameters'")
    return found


def build(src: Path, smoke: bool, timeout: int) -> Path:
    nb = parse(src.read_text())
    env_before = os.environ.get("SSCN_SMOKE")
    os.environ["SSCN_SMOKE"] = "1" if smoke else "0"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(OUT)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("SSCN_SMOKE")
        else:
            os.environ["SSCN_SMOKE"] = env_before
    target = OUT / (src.stem + ".ipynb")
    nbformat.write(clean(nb), target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("numbers", nargs="*", help="notebook numbers such as 01 05 (default: all)")
    parser.add_argument("--full", action="store_true", help="execute without SSCN_SMOKE (slow)")
    parser.add_argument("--check", action="store_true", help="only check that committed notebooks are clean")
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args(argv)
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
        print(f"building {src.name} ({'full' if args.full else 'smoke'})", flush=True)
        print("  ->", build(src, smoke=not args.full, timeout=args.timeout).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
