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
- Lighter, cleaner pages (:func:`polish_notebook`): the converter's 0.6 MB of CSS becomes one
  shared, cached stylesheet instead of a copy inside every chapter; figures become PNG files
  beside the page instead of base64 text; each figure gets alt text and a caption from its
  cell (a ``# caption: ...`` comment, else its plot titles, else the section's heading)
  instead of the converter's placeholder; the empty ``In [ ]:`` prompts, the raw cell-tag
  badges (``solution``, ``parameters``) and the hidden second copy of every cell's code (kept
  for its copy button, which now holds the code itself) are dropped.
"""
from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from html import escape, unescape
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from bs4 import BeautifulSoup

SOLUTION_TAG = "solution"
COLAB = "https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"
BINDER = "https://mybinder.org/v2/gh/{repository}/{branch}?labpath={path}"
PLACEHOLDER_ALT = "No description has been provided for this image"
FIGURES = "figures"  # folder beside the chapters' pages for their figures


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
    """The links above a chapter: run it in Colab or on Binder, download the notebook (copied beside the page)."""
    name = escape(posixpath.basename(page.file.src_uri))
    where = dict(path=page.file.src_uri, **config["extra"]["colab"])
    colab, binder = escape(COLAB.format(**where)), escape(BINDER.format(**where))
    return (f'<div class="sscn-actions" data-search-exclude><a class="sscn-colab" href="{colab}">Open in Colab</a>'
            f'<a class="sscn-binder" href="{binder}">Open on Binder</a>'
            f'<a class="sscn-download" href="{name}" download="{name}">Download notebook</a></div>\n')


def _shared_stylesheet(soup, page, config) -> None:
    """The converter's ``<style>`` blocks (the same on every chapter) -> one cached file, linked."""
    styles = soup.find_all("style")
    if not styles:
        return
    css = "\n".join(style.string or "" for style in styles)
    name = f"assets/notebook.{hashlib.sha256(css.encode()).hexdigest()[:10]}.css"
    target = Path(config["site_dir"]) / name
    if not target.is_file():  # written once per build, whatever the number of chapters
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(css, encoding="utf-8")
    link = soup.new_tag("link", attrs={"rel": "stylesheet", "href": _relative(name, page)})
    styles[0].replace_with(link)
    for style in styles[1:]:
        style.decompose()


def _relative(site_path: str, page) -> str:
    return posixpath.relpath(site_path, posixpath.dirname(page.file.dest_uri) or ".")


def _clean_code_cells(soup) -> None:
    """No empty prompts, no tag badges, no hidden duplicate of the code (the copy button holds it)."""
    for prompt in soup.select(".jp-InputPrompt"):
        text = prompt.get_text(strip=True).replace("\xa0", " ")
        if not text or re.fullmatch(r"In\s*\[\s*\]:?", text):  # the stored notebooks have no counts
            prompt.decompose()
    for toolbar in soup.select(".celltoolbar"):
        toolbar.decompose()
    for button in soup.find_all("clipboard-copy"):
        source = soup.find(id=button.get("for")) if button.get("for") else None
        if source is not None and "clipboard-copy-txt" in (source.get("class") or []):
            button["value"] = source.get_text()
            del button["for"]
            source.decompose()
        button.parent["data-search-exclude"] = ""  # the button, not a word of the chapter
        if button.has_attr(","):
            del button[","]  # a stray attribute of the converter's template
        for notice in button.select(".notice"):
            notice.string = ""  # the "Copied!" text comes from site.css, so search does not index it
        for icon in button.find_all("svg"):  # one icon in site.css, not 1 kB of SVG per cell
            icon.replace_with(soup.new_tag("span", attrs={"class": "sscn-copy-icon", "aria-hidden": "true"}))
    for code in soup.select(".jp-InputArea .highlight-ipynb pre"):
        # the search index holds the chapters' prose and figure captions, not every code cell
        # (half its size, loaded by every page); the prose names what the code defines. (On the
        # innermost element: Material's index parser ends an exclusion at the next closing tag
        # of the same name.)
        code["data-search-exclude"] = ""


CAPTION_COMMENT = re.compile(r"^\s*#\s*(?:caption|figure)\s*:\s*(.+?)\s*$", re.I | re.M)
TITLE_CALL = re.compile(r"""(?:set_title|suptitle|title)\s*\(\s*f?(["'])(.+?)\1""")
TITLE_KEYWORD = re.compile(r"""\btitle\s*=\s*f?(["'])(.+?)\1""")
# a notebook's own panel helper, show(axes[0], image, "title"): a string last, after an axes first
TITLE_LAST_ARGUMENT = re.compile(r"""\b\w+\(\s*ax[\w\[\], ]*,[^\n]*?,\s*f?(["'])([^"'\n]+?)\1\s*\)""")


def figure_description(code: str, heading: str) -> str:
    """Alt text of a cell's figure: its ``# caption:`` comment, else its plot titles, else the section."""
    comment = CAPTION_COMMENT.search(code)
    if comment:
        return comment.group(1)
    patterns = (TITLE_CALL, TITLE_KEYWORD, TITLE_LAST_ARGUMENT)
    titles = [m.group(2) for pattern in patterns for m in pattern.finditer(code)]
    titles = [t for t in dict.fromkeys(titles) if "{" not in t]  # an f-string's fields say nothing
    section = f"Figure of the section \u201c{heading}\u201d" if heading else "Figure"
    if titles:
        return f"{section}; panels: " + ", ".join(titles[:6])
    return section


def _heading_before(element) -> str:
    heading = element.find_previous(re.compile(r"^h[1-6]$"))
    return heading.get_text(" ", strip=True).replace("\u00b6", "").strip() if heading is not None else ""


def _figures(soup, page, config) -> int:
    """Base64 PNGs -> files beside the page; placeholder alt text -> a description and a caption."""
    stem = posixpath.splitext(posixpath.basename(page.file.dest_uri))[0]
    folder = posixpath.join(posixpath.dirname(page.file.dest_uri), FIGURES)
    count = 0
    for image in soup.find_all("img"):
        src = image.get("src", "")
        match = re.match(r"data:image/(png|jpeg|gif|svg\+xml);base64,(.*)", src, re.S)
        if match:
            count += 1
            ext = {"svg+xml": "svg", "jpeg": "jpg"}.get(match.group(1), match.group(1))
            name = posixpath.join(folder, f"{stem}-{count:02d}.{ext}")
            target = Path(config["site_dir"]) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(match.group(2)))
            image["src"] = _relative(name, page)
            if match.group(1) == "png":  # its size (from the PNG header), so the page does not jump while it loads
                header = target.read_bytes()[16:24]
                image["width"], image["height"] = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
        image["loading"] = "lazy"  # a figure further down loads when the reader gets near it
        if image.get("alt", PLACEHOLDER_ALT) != PLACEHOLDER_ALT:
            continue
        cell = _cell_of(image)
        button = cell.find("clipboard-copy") if cell is not None else None
        code = button.get("value", "") if button is not None else ""
        description = figure_description(code, _heading_before(image))
        image["alt"] = description
        figure = image.wrap(soup.new_tag("figure", attrs={"class": "sscn-figure"}))
        caption = soup.new_tag("figcaption")
        caption.string = description
        figure.append(caption)
    return count


def polish_notebook(html: str, page, config) -> str:
    """Shared stylesheet, figure files with alt text and captions, no prompts, badges or duplicate code."""
    soup = BeautifulSoup(html, "html.parser")
    _shared_stylesheet(soup, page, config)
    _clean_code_cells(soup)
    _figures(soup, page, config)
    return str(soup)


def on_page_content(html: str, page, config, files) -> str:
    if not is_notebook(page):
        return html
    html, _ = fold_solutions(html)
    html = polish_notebook(html, page, config)
    return actions(page, config) + rewrite_page_links(jupyter_anchors(html), page, files)
