"""The course as a website: ``tools/build_site.py`` builds it, headless Chromium reads every page.

The site is built once into the test's folder from the committed notebooks (nothing is
executed), served on a free loopback port, and every page is opened with Playwright (sync
API) in the system's Chromium. Each page must load with no console error and no request
that fails or leaves the site (maths, search and fonts are served by the site itself);
every ``<img>`` must decode (natural width > 0); every internal link must resolve, anchors
included; a page with TeX in its source must be typeset by MathJax without a TeX error.
Search must find a word that occurs on exactly one page (picked from the site's search
index), and only that page. The test prints how many pages, images and links it checked.

It needs ``pip install -e ".[site]"`` (MkDocs, Material, mkdocs-jupyter,
jupyter-server-mathjax) and ``playwright`` with Chromium at ``/usr/bin/chromium`` (another
binary can be named with ``SSCN_CHROMIUM``). Without them it is skipped, unless
``SSCN_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns the skip into a failure.
``SSCN_SITE_PNG=docs/site.png`` also saves a screenshot of chapter 01 (the README's picture).
"""
from __future__ import annotations

import functools
from html import unescape
import http.server
import importlib.util
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

from browser_support import CHROMIUM, chromium_page, require, save_screenshot

ROOT = Path(__file__).resolve().parents[1]
PAGE_LOAD_S = 120  # one page, its images and its maths (a limit for a busy machine, not a timing)
SEARCH_S = 60  # the search index loads in a web worker, then the results appear
SCREENSHOT_PAGE = "notebooks/01_lab_color_space.html"
SCREENSHOT_HEIGHT = 1250  # pixels: the chapter's top, down to its first equations
LOCAL_SCHEMES = ("data:", "blob:", "about:")



def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require_generator() -> None:
    for module in ("mkdocs", "material", "mkdocs_jupyter", "jupyter_server_mathjax"):
        require(importlib.util.find_spec(module) is not None, f'{module} is not installed (pip install -e ".[site]")')


@pytest.fixture(scope="module")
def build_site():
    _require_generator()
    return _load("build_site", ROOT / "tools" / "build_site.py")


@pytest.fixture(scope="module")
def hooks():
    _require_generator()
    return _load("site_hooks", ROOT / "docs" / "site" / "hooks.py")


@pytest.fixture(scope="module")
def site(build_site, tmp_path_factory):
    """The built site's folder."""
    start = time.perf_counter()
    out = build_site.build(tmp_path_factory.mktemp("site") / "site")
    print(f"\nsite built in {time.perf_counter() - start:.1f} s")
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    """The site's URL, served by Python's http.server on a free loopback port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """A Playwright page in headless Chromium (a fresh profile under the test's folder)."""
    require(importlib.util.find_spec("playwright") is not None,
             'playwright is not installed (pip install -e ".[site]")')
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with chromium_page(tmp_path_factory.mktemp("chromium-profile"), 1280, 900) as page:
        yield page


def _pages(site: Path) -> list[str]:
    """Every HTML page of the site, as a path relative to its root (MathJax's own files excluded)."""
    return sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html")
                  if path.relative_to(site).parts[0] != "assets")


def _chapters(build_site, site: Path) -> list[str]:
    """The chapters' pages in order, from the copies the site was built from (the notebooks may change meanwhile)."""
    staged = site.with_name(site.name + ".src")
    return [path.relative_to(staged).with_suffix(".html").as_posix() for path in build_site.notebooks(staged)]


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def _ids(html: str) -> set[str]:
    return {unescape(value) for value in re.findall(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", html)}


def _tex_pages(site: Path) -> set[str]:
    """Pages whose source has TeX: a ``$`` in a notebook's Markdown (the README and the docs have none).

    The notebooks are read from the site (each page's download), the copy the site was built from.
    """
    pages = set()
    for notebook in sorted((site / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if any("$" in "".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"):
            pages.add(notebook.relative_to(site).with_suffix(".html").as_posix())
    return pages


def _solution_runs(notebook: Path) -> int:
    """How many runs of consecutive cells tagged ``solution`` the notebook has."""
    runs, previous = 0, False
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        tagged = "solution" in cell.get("metadata", {}).get("tags", [])
        runs += tagged and not previous
        previous = tagged
    return runs


def _unique_word(site: Path) -> tuple[str, str]:
    """A word of the search index that occurs on exactly one page: ``(word, page)``.

    Material's search matches prefixes of stemmed words, so the word must also share its
    first five letters with no word of any other page.
    """
    docs = json.loads((site / "search" / "search_index.json").read_text())["docs"]
    words: dict[str, set[str]] = defaultdict(set)
    for doc in docs:
        text = re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"]).lower()
        for word in re.findall(r"[a-z]{8,}", text):
            words[word].add(doc["location"].split("#")[0])
    prefixes = defaultdict(set)
    for word, pages in words.items():
        prefixes[word[:5]] |= pages
    unique = sorted(word for word, pages in words.items() if len(pages) == 1 and len(prefixes[word[:5]]) == 1)
    assert unique, "no word of the search index is on exactly one page"
    return unique[0], next(iter(words[unique[0]]))



def test_solutions_fold_into_closed_details(hooks, tmp_path):
    """Cells tagged ``solution`` (code or Markdown), rendered as mkdocs-jupyter renders them, fold per run."""
    import nbformat
    from mkdocs_jupyter.convert import nb2html

    def cell(kind, text, solution=False):
        new = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        made = new(text)
        if solution:
            made.metadata["tags"] = ["solution"]
        return made

    notebook = nbformat.v4.new_notebook(cells=[
        cell("md", "**Exercise 1.** Add one."), cell("md", "**Solution.** Like this:", True),
        cell("code", "answer_one = 1 + 1", True), cell("md", "**Exercise 2.** Double it."),
        cell("code", "answer_two = 2 * answer_one", True), cell("code", "print('not a solution')"),
    ])
    path = tmp_path / "exercises.ipynb"
    nbformat.write(notebook, path)
    html, runs = hooks.fold_solutions(nb2html(str(path)))
    assert runs == 2
    blocks = re.findall(r'<details class="sscn-solution">(.*?)</details>', html, flags=re.S)
    assert len(blocks) == 2 and all("<summary>Solution</summary>" in block for block in blocks)
    assert "Like this" in blocks[0] and "answer_one" in blocks[0] and "Exercise 2" not in blocks[0]
    assert "answer_two" in blocks[1] and "not a solution" not in blocks[1]
    assert html.index("Exercise 2") < html.index("answer_two") and "not a solution" in html
    assert hooks.fold_solutions("<p>no exercises</p>") == ("<p>no exercises</p>", 0)


def test_site_navigation_and_sources(build_site, site):
    """The chapters in order in the navigation, each beside its notebook, with nothing fetched from elsewhere."""
    chapters = _chapters(build_site, site)
    assert [Path(path).name[:2] for path in chapters] == [f"{n:02d}" for n in range(len(chapters))]
    assert len(chapters) >= 9
    home = (site / "index.html").read_text()
    nav = re.findall(r'href="(notebooks/\d\d_[^"]+\.html)"', home)
    assert list(dict.fromkeys(nav)) == chapters
    staged = site.with_name(site.name + ".src")  # the copies of the committed files it was built from
    for chapter in chapters:
        assert (site / chapter).is_file()
        notebook = Path(chapter).with_suffix(".ipynb")
        assert (site / notebook).read_bytes() == (staged / notebook).read_bytes()
    for relative in _pages(site):
        html = (site / relative).read_text()
        for tag, attribute in re.findall(r"<(script|link|img|iframe)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", html):
            assert not urlsplit(attribute).netloc, f"{relative}: <{tag}> loads {attribute} from another site"


def test_every_page_in_the_browser(build_site, site, server, page):
    pages = _pages(site)
    tex_pages = _tex_pages(site)
    chapters = _chapters(build_site, site)
    problems: list[str] = []  # console errors, failed or outside requests, page errors, with their page
    current = {"page": ""}
    page.on("console", lambda message: message.type == "error"
            and problems.append(f"{current['page']}: console error: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"{current['page']}: page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"{current['page']}: failed: {request.url}"))
    page.on("response", lambda response: response.status >= 400
            and problems.append(f"{current['page']}: HTTP {response.status}: {response.url}"))
    page.on("request", lambda request: not request.url.startswith((server, *LOCAL_SCHEMES))
            and problems.append(f"{current['page']}: request outside the site: {request.url}"))

    links: dict[str, set[str]] = defaultdict(set)  # internal URL (with fragment) -> pages linking to it
    external, images, maths = Counter(), 0, 0
    for relative in pages:
        current["page"] = relative
        url = urljoin(server, relative)
        page.goto(url, wait_until="load", timeout=PAGE_LOAD_S * 1000)
        if page.evaluate("() => Boolean(window.MathJax && window.MathJax.Hub)"):
            page.wait_for_function("() => MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0",
                                   timeout=PAGE_LOAD_S * 1000)
            done = page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
            assert done
        page.wait_for_function("() => Array.from(document.images).every(image => image.complete)",
                               timeout=PAGE_LOAD_S * 1000)
        broken = page.evaluate("() => Array.from(document.images).filter(image => !(image.naturalWidth > 0))"
                               ".map(image => image.src.slice(0, 100))")
        assert not broken, f"{relative}: images that did not load: {broken}"
        images += page.evaluate("() => document.images.length")

        typeset = page.evaluate("""() => window.MathJax && MathJax.Hub ? {
            jax: MathJax.Hub.getAllJax().length,
            errors: MathJax.Hub.getAllJax().filter(jax => jax.root && jax.root.texError).map(jax => jax.originalText),
            rendered: document.querySelectorAll('.MathJax, .MathJax_Display').length,
            raw: Array.from(document.querySelectorAll('.jp-RenderedMarkdown'))
                      .filter(cell => /\\$\\$|\\\\begin\\{/.test(cell.innerText)).length,
        } : null""")
        if relative in tex_pages:
            assert typeset and typeset["jax"] > 0 and typeset["rendered"] >= typeset["jax"], (relative, typeset)
            assert not typeset["errors"], f"{relative}: TeX errors in {typeset['errors']}"
            assert typeset["raw"] == 0, f"{relative}: {typeset['raw']} Markdown cells still show raw TeX"
            maths += typeset["jax"]

        for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
            if href.startswith(server):
                links[href].add(relative)
            elif urlsplit(href).scheme in ("http", "https"):
                external[href] += 1

        if relative in chapters:  # previous / next, Colab, download, solutions
            index = chapters.index(relative)
            footer = {side: page.locator(f"a.md-footer__link--{side}") for side in ("prev", "next")}
            if index > 0:
                assert footer["prev"].get_attribute("href") == Path(chapters[index - 1]).name
            if index + 1 < len(chapters):
                assert footer["next"].get_attribute("href") == Path(chapters[index + 1]).name
            notebook = Path(relative).with_suffix(".ipynb").as_posix()
            colab = page.locator("a.sscn-colab").get_attribute("href")
            assert colab.startswith("https://colab.research.google.com/github/") and colab.endswith("/" + notebook)
            own = [link for link in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"'\\]+",
                                               (site / notebook).read_text()) if link.endswith("/" + notebook)]
            assert all(link == colab for link in own), (relative, colab, own)  # the notebook's own link agrees
            assert page.locator("a.sscn-download").get_attribute("href") == Path(notebook).name
            runs = _solution_runs(site / notebook)
            solutions = page.locator("details.sscn-solution")
            assert solutions.count() == runs, (relative, solutions.count(), runs)
            for n in range(runs):
                assert not solutions.nth(n).evaluate("details => details.open")
                assert not solutions.nth(n).locator(".jp-Cell").first.is_visible()

        if relative == SCREENSHOT_PAGE and os.environ.get("SSCN_SITE_PNG"):
            page.set_viewport_size({"width": 1280, "height": SCREENSHOT_HEIGHT})  # down to the first equations
            page.evaluate("() => window.scrollTo(0, 0)")
            save_screenshot(page.screenshot(), ROOT / os.environ["SSCN_SITE_PNG"])
            page.set_viewport_size({"width": 1280, "height": 900})
    current["page"] = "(after the pages)"

    unresolved, targets = [], {}
    for link in sorted(links):
        address, fragment = urldefrag(link)
        if address not in targets:
            targets[address] = _fetch(address)
        status, body = targets[address]
        if status != 200:
            unresolved.append(f"{link} (HTTP {status}) from {sorted(links[link])[:3]}")
        elif fragment and address.endswith(".html") and not {fragment, unquote(fragment)} & _ids(body.decode()):
            unresolved.append(f"{link} (no element with id {fragment!r}) from {sorted(links[link])[:3]}")
    assert not unresolved, "internal links that do not resolve:\n" + "\n".join(unresolved)

    # search: a word on exactly one page finds that page and no other
    word, expected = _unique_word(site)
    current["page"] = f"search for {word!r}"
    page.goto(server, wait_until="load", timeout=PAGE_LOAD_S * 1000)
    page.locator(".md-search__input").click()
    page.locator(".md-search__input").fill(word)
    page.wait_for_function("() => document.querySelectorAll('.md-search-result__item').length > 0",
                           timeout=SEARCH_S * 1000)
    found = page.evaluate("() => Array.from(document.querySelectorAll('.md-search-result__item a')).map(a => a.href)")
    found_pages = {urlsplit(href).path.lstrip("/") for href in found}  # without ?h=word (highlighting)
    assert found_pages == {expected}, (word, expected, found_pages)

    assert not problems, "\n".join(problems)
    print(f"checked {len(pages)} pages, {images} images, {sum(len(v) for v in links.values())} internal links "
          f"({len(links)} distinct, {len(targets)} files), {maths} typeset formulas on {len(tex_pages)} pages; "
          f"search for {word!r} found {expected} only; {sum(external.values())} external links not fetched")
