"""Build the course website from the committed notebooks, without executing them.

    python tools/build_site.py                 # into build/site
    python tools/build_site.py --out DIR       # into DIR
    python tools/build_site.py --serve         # build, then serve on http://127.0.0.1:8000/

It needs ``pip install -e ".[site]"`` (MkDocs with the Material theme, mkdocs-jupyter,
and jupyter-server-mathjax for a local copy of MathJax). The pages are the README (the
home page), the notebooks ``notebooks/NN_*.ipynb`` in chapter order, the model card and
``docs/DESIGN.md``, plus every repository file they link to (a Markdown file becomes a page
of its own, any other file is copied as it is), so that every link of the site resolves
inside the site. The notebooks are rendered with their stored outputs; nothing is run.

The files are staged under ``OUT.src`` in the repository's own layout (so relative links
keep working), then ``docs/site/mkdocs.yml`` builds them with ``docs/site/hooks.py``, which
adds the "Open in Colab" and download links and folds exercise solutions. Maths, search and
fonts are served from the site itself: it needs no network to be read.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "docs" / "site" / "mkdocs.yml"
ASSETS = ROOT / "docs" / "site" / "assets"
DEFAULT_OUT = ROOT / "build" / "site"
# pages of the navigation besides the notebooks, after them: (title, path in the repository)
HOME = "README.md"
REFERENCE_PAGES = [("Model card", "sscn/checkpoints/MODEL_CARD.md"), ("Design", "docs/DESIGN.md")]
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
REPOSITORY = re.compile(r"""^REPOSITORY\s*=\s*["']([\w.-]+/[\w.-]+)["']""", re.M)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The course's chapters, ``notebooks/NN_topic.ipynb``, in chapter order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_title(path: Path) -> str:
    """The first level-1 heading of the notebook, else its file name."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _markdown_texts(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]
    return [path.read_text(encoding="utf-8")]


def linked_files(path: Path, root: Path = ROOT) -> set[Path]:
    """Repository files that the Markdown of ``path`` links to (links and images, relative ones)."""
    found = set()
    for text in _markdown_texts(path):
        for target in MD_LINK.findall(text) + HTML_LINK.findall(text):
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
                continue  # another site, a mail address, an anchor of the same page
            file = (path.parent / unquote(parts.path)).resolve()
            if file.is_file() and file.is_relative_to(root) and not file.relative_to(root).parts[0].startswith("."):
                found.add(file)
    return found


def stage(src: Path, root: Path = ROOT) -> list[Path]:
    """Copy the site's source files into ``src`` in the repository's layout; return the pages."""
    if src.exists():
        shutil.rmtree(src)
    todo = [root / HOME, *notebooks(root), *(root / path for _, path in REFERENCE_PAGES)]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        target = src / file.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        if file.suffix in (".md", ".ipynb"):
            todo.extend(linked_files(file, root) - seen)
    shutil.copytree(ASSETS, src / "assets", dirs_exist_ok=True)
    return sorted(seen)


def nav(root: Path = ROOT) -> list:
    chapters = [{notebook_title(path): path.relative_to(root).as_posix()} for path in notebooks(root)]
    return [{"Home": HOME}, {"Course": chapters}, *({title: path} for title, path in REFERENCE_PAGES)]


def colab_repository(root: Path = ROOT) -> str | None:
    """``owner/name`` on GitHub that the notebooks' own Colab links use: ``REPOSITORY`` in tools/build_notebooks.py."""
    builder = root / "tools" / "build_notebooks.py"
    match = REPOSITORY.search(builder.read_text(encoding="utf-8")) if builder.is_file() else None
    return match.group(1) if match else None


def copy_mathjax(site: Path) -> None:
    """MathJax 2.7 (the version nbconvert's pages use) from jupyter-server-mathjax, into the site."""
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(static, site / "assets" / "mathjax", dirs_exist_ok=True)


def build(out: Path = DEFAULT_OUT, root: Path = ROOT, strict: bool = True) -> Path:
    """Stage the sources beside ``out`` (``out.src``), build the site into ``out``; return ``out``."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    out = out.resolve()
    src = out.with_name(out.name + ".src")
    stage(src, root)
    overrides = dict(docs_dir=str(src), site_dir=str(out), nav=nav(root), strict=strict)
    config = load_config(str(CONFIG), **overrides)
    repository = colab_repository(root)
    if repository:  # one place for the repository: the notebooks' links and the site's agree
        config["extra"]["colab"]["repository"] = repository
    mkdocs_build(config)
    copy_mathjax(out)
    return out


def serve(site: Path, port: int) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {site} on http://127.0.0.1:{port}/ (Ctrl+C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the site's folder (default: build/site)")
    parser.add_argument("--serve", nargs="?", type=int, const=8000, metavar="PORT",
                        help="serve the built site on 127.0.0.1 (default port 8000)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    site = build(args.out)
    pages = len(list(site.rglob("*.html"))) - len(list((site / "assets").rglob("*.html")))
    print(f"built {pages} pages into {site} in {time.perf_counter() - start:.1f} s", flush=True)
    if args.serve:
        serve(site, args.serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
