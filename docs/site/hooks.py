"""MkDocs hooks of the course site (``docs/site/mkdocs.yml``), applied to every notebook page.

- An "Open in Colab" and a "Download notebook" link above the chapter.
- Exercise solutions folded: consecutive cells tagged ``solution`` become one closed
  ``<details class="sscn-solution">`` block with the summary "Solution" (see
  ``docs/CONVENTIONS.md``).
- Headings keep the anchors that Jupyter gives them (``#Glossary``, the heading's text with
  dashes) beside mkdocs-jupyter's lower-case ones (``#glossary``), so links written for
  JupyterLab work on the site too.
- Links between pages written in a notebook's Markdown (``02_tps_augmentation.ipynb``,
  ``../docs/DESIGN.md``) point to the pages the site built from those files, as MkDocs
  does for links in Markdown pages.
"""
from __future__ import annotations

import posixpath
import re
from html import escape, unescape
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from bs4 import BeautifulSoup

SOLUTION_TAG = "solution"
COLAB = "https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"


def is_notebook(page) -> bool:
    return page.file.src_uri.endswith(".ipynb")


def _cell_of(element):
    """The notebook cell an element belongs to: its ancestor (or itself) that is a child of ``div.jp-Notebook``.

    (mkdocs-jupyter wraps a code cell's ``div.jp-Cell`` in another one, so the nearest is not enough.)
    """
    while element is not None and element.parent is not None:
        if "jp-Notebook" in (element.parent.get("class") or []):
            return element
        element = element.parent
    return None


def _previous_cell(cell):
    return cell.find_previous_sibling(lambda tag: tag.name == "div")


def fold_solutions(html: str) -> tuple[str, int]:
    """Wrap each run of consecutive ``solution`` cells in a closed ``<details>``.

    The tag is a class ``celltag_solution`` of the cell (code cells) or of its rendered
    Markdown (markdown cells). Returns the new HTML and the number of runs folded.
    """
    tag_class = f"celltag_{SOLUTION_TAG}"
    if tag_class not in html:
        return html, 0  # no need to parse the page
    soup = BeautifulSoup(html, "html.parser")
    cells, seen = [], set()
    for element in soup.find_all(class_=tag_class):
        cell = _cell_of(element)
        if cell is not None and id(cell) not in seen:  # by identity: Tag's == compares contents
            seen.add(id(cell))
            cells.append(cell)
    runs: list[list] = []
    for cell in cells:
        if runs and _previous_cell(cell) is runs[-1][-1]:
            runs[-1].append(cell)
        else:
            runs.append([cell])
    for run in runs:
        details = soup.new_tag("details", attrs={"class": "sscn-solution"})
        summary = soup.new_tag("summary")
        summary.string = "Solution"
        details.append(summary)
        run[0].insert_before(details)
        for cell in run:
            details.append(cell.extract())
    return str(soup), len(runs)


HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")')


def rewrite_page_links(html: str, page, files) -> str:
    """Relative links to a source file that is a page of the site point to that page instead."""
    base = posixpath.dirname(page.file.src_uri)

    def page_url(match: re.Match) -> str:
        href = unescape(match.group(2))
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.endswith((".ipynb", ".md")) or parts.path.startswith("/"):
            return match.group(0)
        target = files.get_file_from_path(posixpath.normpath(posixpath.join(base, unquote(parts.path))))
        if target is None or not target.is_documentation_page():
            return match.group(0)
        url = urlunsplit(("", "", target.url_relative_to(page.file), parts.query, parts.fragment))
        return match.group(1) + escape(url) + match.group(3)

    return HREF.sub(page_url, html)


HEADING = re.compile(r'(<h([1-6]) id="([^"]*)"[^>]*>)(.*?)(</h\2>)', re.S)


def jupyter_anchors(html: str) -> str:
    """Give each heading a ``<span id>`` with the anchor Jupyter makes (text, spaces as dashes)."""

    def add(match: re.Match) -> str:
        text = unescape(re.sub(r"<[^>]+>", "", match.group(4))).replace("\u00b6", "").strip()
        anchor = quote(text.replace(" ", "-"), safe="?/:@!$&'()*+,;=")  # as nbconvert and JupyterLab
        if not anchor or anchor == match.group(3) or f'id="{anchor}"' in html:
            return match.group(0)
        return f'{match.group(1)}<span id="{escape(anchor)}"></span>{match.group(4)}{match.group(5)}'

    return HEADING.sub(add, html)


def actions(page, config) -> str:
    """The links above a chapter: run it in Colab, download the notebook (copied beside the page)."""
    name = escape(posixpath.basename(page.file.src_uri))
    colab = escape(COLAB.format(path=page.file.src_uri, **config["extra"]["colab"]))
    return (f'<div class="sscn-actions"><a class="sscn-colab" href="{colab}">Open in Colab</a>'
            f'<a class="sscn-download" href="{name}" download="{name}">Download notebook</a></div>\n')


def on_page_content(html: str, page, config, files) -> str:
    if not is_notebook(page):
        return html
    html, _ = fold_solutions(html)
    return actions(page, config) + rewrite_page_links(jupyter_anchors(html), page, files)
