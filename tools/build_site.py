"""Build the course website from the committed notebooks, without executing them.

    python tools/build_site.py                 # into build/site
    python tools/build_site.py --out DIR       # into DIR
    python tools/build_site.py --serve         # build, then serve on http://127.0.0.1:8000/
    python tools/build_site.py --base-path /   # for a site at a domain's root (its 404 page)

It needs only the site's own packages, ``pip install -r docs/site/requirements.txt``
(MkDocs with the Material theme, mkdocs-jupyter, jupyter-server-mathjax for a local copy
of MathJax, BeautifulSoup), not the package or torch. The pages are the README (the
home page, with the course first and the developer sections after it), the notebooks
``notebooks/NN_*.ipynb`` in chapter order, the model card and
``docs/DESIGN.md``, plus every repository file they link to (a Markdown file becomes a page
of its own, any other file is copied as it is), so that every link of the site resolves
inside the site. The notebooks are rendered with their stored outputs; nothing is run.

The files are staged under ``OUT.src`` in the repository's own layout (so relative links
keep working), then ``docs/site/mkdocs.yml`` builds them with ``docs/site/hooks.py``, which
adds the "Open in Colab", Binder and download links, folds exercise solutions and moves the
figures and the notebook stylesheet into files of their own. Maths, search and fonts are
served from the site itself: it needs no network to be read. After MkDocs, the search index
loses the buttons' text and prompts and learns the US spellings of the British words
(``color`` finds ``colour``), the notebook stylesheet loses the rules no page uses, and
``404.html`` links from the address path the site is served under (``--base-path``; by
default ``/NAME/``, the GitHub Pages address of ``REPOSITORY``), at any depth.
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
# README sections for whoever works on the package, not for a student: after the course on the home page
DEVELOPER_SECTIONS = ("Package map", "Tests", "Rebuilding the notebooks", "Data", "Training",
                      "Performance", "Errors and safety")
# British spelling -> US: the index also holds the US form of each British word it has
US_SPELLINGS = [("colour", "color"), ("grey", "gray"), ("centre", "center"), ("behaviour", "behavior"),
                ("neighbour", "neighbor"), ("favour", "favor"), ("normalis", "normaliz"),
                ("optimis", "optimiz"), ("visualis", "visualiz"), ("summaris", "summariz"),
                ("initialis", "initializ"), ("recognis", "recogniz"), ("organis", "organiz")]
# text the search index must not show in a result's preview: buttons, prompts
INDEX_NOISE = re.compile("(?:Open in Colab|Open on Binder|Download notebook|Copied!"
                         "|(?:In|Out)[\\s\u00a0]*\\[[\\s\u00a0\\d*]*\\]:)")


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
    home = src / HOME
    home.write_text(home_page(home.read_text(encoding="utf-8"), root), encoding="utf-8")
    return sorted(seen)


def _sections(markdown: str) -> list[tuple[str, str]]:
    """``[(level-2 title, text)]`` of a Markdown file; the text before the first one has the title ``""``."""
    sections, fenced = [("", "")], False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((line[3:].strip(), ""))
        sections[-1] = (sections[-1][0], sections[-1][1] + line)
    return sections


def home_page(readme: str, root: Path = ROOT) -> str:
    """The README as the site's home page: a link to the first chapter under the title, the
    course's sections first and the developer ones (``DEVELOPER_SECTIONS``) after them."""
    sections = _sections(readme)
    course = [text for title, text in sections if title not in DEVELOPER_SECTIONS]
    developer = [text for title, text in sections if title in DEVELOPER_SECTIONS]
    chapters = notebooks(root)
    if chapters:
        first = chapters[0].relative_to(root).as_posix()
        start = (f"**Start the course:** [{notebook_title(chapters[0])}]({first}), then the chapters in "
                 f"order (the [chapter list](#notebooks), also in the sidebar).\n\n")
        title, _, rest = course[0].partition("\n")
        course[0] = f"{title}\n\n{start}{rest.lstrip(chr(10))}" if title.startswith("# ") else start + course[0]
    if developer:
        developer[0] = ("---\n\n*The sections below are for whoever works on the package itself: "
                        "its modules, tests, data, training and errors.*\n\n" + developer[0])
    return "".join(course).rstrip("\n") + "\n\n" + "".join(developer)


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


def build(out: Path = DEFAULT_OUT, root: Path = ROOT, strict: bool = True, base: str | None = None) -> Path:
    """Stage the sources beside ``out`` (``out.src``), build the site into ``out``; return ``out``.

    ``base``: the address path the site is served under, for ``404.html`` (default: :func:`base_path`)."""
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
        for link in config["extra"].get("social") or []:
            if link.get("link", "").startswith("https://github.com/"):
                link["link"] = f"https://github.com/{repository}"
    mkdocs_build(config)
    copy_mathjax(out)
    clean_search_index(out / "search" / "search_index.json")
    rooted_404(out / "404.html", base or base_path(root))
    prune_stylesheets(out)
    return out


CSS_CLASS = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")


def _css_blocks(css: str):
    """Top-level ``(prelude, body)`` pairs of a stylesheet (``body`` without its braces)."""
    i, n = 0, len(css)
    while i < n:
        start = css.find("{", i)
        if start < 0:
            return
        depth, j = 1, start + 1
        while j < n and depth:
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        yield css[i:start].strip(), css[start + 1 : j - 1]
        i = j


def _selectors(prelude: str) -> list[str]:
    """A selector list split at its top-level commas (not those inside ``:is(...)`` and the like)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(prelude):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(prelude[start:i])
            start = i + 1
    return parts + [prelude[start:]]


def prune_css(css: str, used: set[str]) -> str:
    """Only the rules of ``css`` whose selectors can match: each kept selector's classes are all in ``used``.

    At-rules with rules inside (``@media``, ``@supports``) are pruned inside; others kept as they are.
    """
    out = []
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # a comment's words are no class names
    for prelude, body in _css_blocks(css):
        # an at-statement before the rule (``@charset "UTF-8";`` where the converter's sheets were
        # joined) belongs to no rule, and mid-sheet it is invalid anyway
        prelude = prelude.rpartition(";")[2].strip()
        if prelude.startswith(("@media", "@supports", "@layer")):
            inner = prune_css(body, used)
            if inner:
                out.append(f"{prelude}{{{inner}}}")
        elif prelude.startswith("@"):
            out.append(f"{prelude}{{{body}}}")
        else:
            selectors = [sel for sel in _selectors(prelude) if set(CSS_CLASS.findall(sel)) <= used]
            if selectors:
                out.append(f"{','.join(selectors)}{{{body}}}")
    return "".join(out)


def prune_stylesheets(site: Path) -> None:
    """The notebooks' shared stylesheet (JupyterLab's whole CSS, 0.6 MB) without the rules for
    classes that no page of the site has: the same look in a fraction of the bytes."""
    used: set[str] = set()
    for page in site.rglob("*.html"):
        if page.relative_to(site).parts[0] == "assets":
            continue
        for value in re.findall(r"""\bclass\s*=\s*["']([^"']*)["']""", page.read_text(encoding="utf-8")):
            used.update(value.split())
    for sheet in (site / "assets").glob("notebook.*.css"):
        sheet.write_text(prune_variables(prune_css(sheet.read_text(encoding="utf-8"), used)), encoding="utf-8")


def _declarations(body: str) -> list[str]:
    """``body`` split at its semicolons, except those inside quotes or brackets (data URIs have some)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(body):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == ";" and not depth:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [part for part in parts if part.strip()]


def _leaf_blocks(css: str):
    """Every rule's body, inside ``@media`` and the like too."""
    for prelude, body in _css_blocks(css):
        if prelude.startswith(("@media", "@supports", "@layer")):
            yield from _leaf_blocks(body)
        elif not prelude.startswith("@"):
            yield body


def _uses(text: str) -> set[str]:
    return set(re.findall(r"var\(\s*(--[\w-]+)", text))


def prune_variables(css: str, needed: set[str] | None = None) -> str:
    """Without the custom properties (``--name: ...``) that nothing uses, directly or through another one:
    JupyterLab's theme defines hundreds, its icons among them, for widgets a static page does not have."""
    if needed is None:
        definitions: dict[str, list[str]] = {}
        needed = set()
        for body in _leaf_blocks(css):
            for declaration in _declarations(body):
                name, _, value = declaration.partition(":")
                if name.strip().startswith("--"):
                    definitions.setdefault(name.strip(), []).append(value)
                else:
                    needed |= _uses(declaration)
        todo = list(needed)
        while todo:
            for value in definitions.get(todo.pop(), []):
                for name in _uses(value) - needed:
                    needed.add(name)
                    todo.append(name)
    out = []
    for prelude, body in _css_blocks(css):
        if prelude.startswith(("@media", "@supports", "@layer")):
            inner = prune_variables(body, needed)
            out.append(f"{prelude}{{{inner}}}" if inner else "")
        elif prelude.startswith("@"):
            out.append(f"{prelude}{{{body}}}")
        else:
            kept = ";".join(d for d in _declarations(body)
                            if not d.strip().startswith("--") or d.partition(":")[0].strip() in needed)
            out.append(f"{prelude}{{{kept}}}" if kept.strip() else "")
    return "".join(out)


def us_spellings(text: str) -> list[str]:
    """The US forms of the British words of ``text`` (``colourfulness`` -> ``colorfulness``), each once."""
    found = {}
    for word in re.findall(r"[A-Za-z]+", text):
        us = word.lower()
        for british, american in US_SPELLINGS:
            us = us.replace(british, american)
        if us != word.lower():
            found[us] = None
    return list(found)


def clean_search_index(path: Path) -> None:
    """Previews without button text or prompts; British words findable by their US spelling too.

    The US forms go into a hidden element of the entry (indexed, never shown: site.css).
    """
    index = json.loads(path.read_text(encoding="utf-8"))
    for doc in index["docs"]:
        text = INDEX_NOISE.sub("", doc["text"]).strip()
        aliases = us_spellings(re.sub(r"<[^>]+>", " ", doc["title"] + " " + text))
        if aliases:
            text += f' <span class="sscn-alias" hidden>{" ".join(aliases)}</span>'
        doc["text"] = text
    # ASCII escapes: Material's search fails on this file when it holds raw non-ASCII characters
    path.write_text(json.dumps(index, separators=(",", ":")), encoding="utf-8")


ROOT_URL = re.compile(r"""(\b(?:href|src)=["'])/(?!/)""")


def base_path(root: Path = ROOT) -> str:
    """Where the site will be served: ``/NAME/`` for the GitHub Pages of ``REPOSITORY`` (``owner/NAME``), else ``/``."""
    repository = colab_repository(root)
    return f"/{repository.split('/')[1]}/" if repository else "/"


def rooted_404(path: Path, base: str) -> None:
    """``404.html`` is served for any missing address, at any depth, so its links cannot be relative;
    MkDocs writes them from ``/``, which is wrong under a sub-path (a project's GitHub Pages live
    under ``/NAME/``). Here they start with ``base`` instead. (A ``<base>`` set by a script comes
    too late: the browser's preload scanner fetches the styles first.)"""
    if not path.is_file() or base == "/":
        return
    html = ROOT_URL.sub(lambda match: match.group(1) + base, path.read_text(encoding="utf-8"))
    html = html.replace('new URL("/",location)', f"new URL({json.dumps(base)},location)")
    html = html.replace('"search": "/', f'"search": "{base}')  # the search worker, in the theme's settings
    path.write_text(html.replace('"base": "/"', f'"base": {json.dumps(base)}'), encoding="utf-8")


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
    parser.add_argument("--base-path", metavar="PATH",
                        help="the address path the site is served under, for its 404 page "
                             "(default: /NAME/ of REPOSITORY's owner/NAME, GitHub Pages' address; / at a domain's root)")
    args = parser.parse_args(argv)
    base = args.base_path
    if base is not None:
        base = "/" + base.strip("/") + "/" if base.strip("/") else "/"
    start = time.perf_counter()
    site = build(args.out, base=base)
    pages = len(list(site.rglob("*.html"))) - len(list((site / "assets").rglob("*.html")))
    print(f"built {pages} pages into {site} in {time.perf_counter() - start:.1f} s", flush=True)
    if args.serve:
        serve(site, args.serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
