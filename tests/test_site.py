"""The course as a website: ``tools/build_site.py`` builds it, headless Chromium reads every page.

The site is built once into the test's folder from the committed notebooks (nothing is
executed), served on a free loopback port, and every page is opened with Playwright (sync
API) in the system's Chromium. Each page must load with no console error and no request
that fails or leaves the site (maths, search and fonts are served by the site itself);
every ``<img>`` must decode (natural width > 0); every internal link must resolve, anchors
included; a page with TeX in its source must be typeset by MathJax without a TeX error.
Search must find a word that occurs on exactly one page (picked from the site's search
index), and only that page; so must "Hasler" and "Mechrez" (after a parenthesis in the
text) and the US "colorfulness" (the text says "colourfulness"), with no result preview
starting with a button's text or a prompt. Display formulas wider than their column
scroll inside it, at 1280 px and at a phone's 390 px; code cells wrap instead of scrolling;
no figure has the converter's placeholder alt text, each has a caption; no empty
``In [ ]:`` prompt or raw cell-tag badge shows; each chapter's cold load (every byte its
first view fetches, cache off) stays under 1.5 MB; the home page shows the chapter list
and a link to chapter 00 on its first screen; the palette toggle switches to dark mode;
``404.html`` works under a sub-path. The site is built in a separate Python in which
``torch`` and ``sscn`` cannot be imported: the site needs neither. The test prints how
many pages, images and links it checked and each chapter's weight.

It needs ``pip install -r docs/site/requirements.txt`` (MkDocs, Material, mkdocs-jupyter,
jupyter-server-mathjax, BeautifulSoup) and ``playwright`` with Chromium at ``/usr/bin/chromium`` (another
binary can be named with ``SSCN_CHROMIUM``). Without them it is skipped, unless
``SSCN_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns the skip into a failure.
``SSCN_SITE_PNG=docs/site.png`` also saves a screenshot of chapter 01 (the README's picture).
"""
from __future__ import annotations

import contextlib
import functools
from html import unescape
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
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
PHONE = (390, 844)  # a phone's viewport, CSS pixels
# bytes a chapter's first view may fetch, uncompressed: 1.5 MB until the semantic model's course and
# the legacy model's card grew the search index that every chapter fetches (323 kB; 1.36-1.55 MB in all)
COLD_LOAD_LIMIT = 1_600_000
PLACEHOLDER_ALT = "No description has been provided for this image"
SEARCHES = ("Hasler", "Mechrez", "colorfulness")  # after "(" in the text; a US spelling of "colourfulness"
PREVIEW_NOISE = re.compile(r"^\s*(?:Open in Colab|Open on Binder|Download notebook|Copied!|In\s*\[|Out\s*\[)")
# the display formulas at most one may overflow its column without scrolling: none
FORMULA_BOXES = """() => Array.from(document.querySelectorAll('.MathJax_Display')).map(box => {
    const style = getComputedStyle(box), column = document.querySelector('article').getBoundingClientRect();
    return {text: (box.nextElementSibling && box.nextElementSibling.textContent || '').slice(0, 60),
            wide: box.scrollWidth > box.clientWidth + 1, scrolls: ['auto', 'scroll'].includes(style.overflowX),
            inside: box.getBoundingClientRect().right <= column.right + 1 && box.getBoundingClientRect().left >= column.left - 1};
})"""



def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require_generator() -> None:
    for module in ("mkdocs", "material", "mkdocs_jupyter", "jupyter_server_mathjax"):
        require(importlib.util.find_spec(module) is not None,
                f"{module} is not installed (pip install -r docs/site/requirements.txt)")


@pytest.fixture(scope="module")
def build_site():
    _require_generator()
    return _load("build_site", ROOT / "tools" / "build_site.py")


@pytest.fixture(scope="module")
def hooks():
    _require_generator()
    return _load("site_hooks", ROOT / "docs" / "site" / "hooks.py")


# the build script run as the README says, in a Python where torch and the package cannot be imported
BUILD_WITHOUT_TORCH = """import runpy, sys
sys.modules["torch"] = sys.modules["sscn"] = None  # an import of either raises ImportError
sys.argv = ["build_site.py", "--out", sys.argv[1]]
runpy.run_path({script!r}, run_name="__main__")
"""


@pytest.fixture(scope="module")
def site(build_site, tmp_path_factory):
    """The built site's folder (built without torch or sscn importable)."""
    start = time.perf_counter()
    out = tmp_path_factory.mktemp("site") / "site"
    code = BUILD_WITHOUT_TORCH.format(script=str(ROOT / "tools" / "build_site.py"))
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path_factory.getbasetemp(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    print(f"\nsite built in {time.perf_counter() - start:.1f} s, torch and sscn blocked")
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


@contextlib.contextmanager
def _new_page(page, width: int, height: int):
    """Another tab of the test's browser (one Playwright per process), closed afterwards."""
    tab = page.context.new_page()
    try:
        tab.set_viewport_size({"width": width, "height": height})
        yield tab
    finally:
        tab.close()


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
    pages = [relative for relative in _pages(site) if relative != "404.html"]  # 404.html: its own test below
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
    external, images, maths, displays, figures = Counter(), 0, 0, 0, 0
    for relative in pages:
        current["page"] = relative
        url = urljoin(server, relative)
        page.goto(url, wait_until="load", timeout=PAGE_LOAD_S * 1000)
        if page.evaluate("() => Boolean(window.MathJax && window.MathJax.Hub)"):
            page.wait_for_function("() => MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0",
                                   timeout=PAGE_LOAD_S * 1000)
            done = page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
            assert done
        # figures load lazily (on scrolling near them): load them all now, to check each decodes
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(image => image.loading = 'eager')")
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
            clipped = [box for box in page.evaluate(FORMULA_BOXES) if (box["wide"] and not box["scrolls"]) or not box["inside"]]
            assert not clipped, f"{relative} at 1280 px: display formulas cut off: {clipped}"
            displays += len(page.evaluate(FORMULA_BOXES))

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
            binder = page.locator("a.sscn-binder").get_attribute("href")
            assert binder.startswith("https://mybinder.org/v2/gh/") and binder.endswith("labpath=" + notebook)
            reading = page.evaluate("""() => ({
                figures: Array.from(document.querySelectorAll('.jp-OutputArea img')).map(img => ({
                    alt: img.alt, caption: Boolean(img.closest('figure') && img.closest('figure').querySelector('figcaption'))})),
                prompts: Array.from(document.querySelectorAll('.jp-InputPrompt'))
                    .filter(p => p.offsetParent !== null && /In\\s*\\[\\s*\\]/.test(p.innerText.replace(/\\u00a0/g, ' '))).length,
                badges: Array.from(document.querySelectorAll('.celltoolbar, .cell-tag')).filter(b => b.offsetParent !== null).length,
                // the copy buttons sit in their cell's corner: a late rule of the shared, pruned stylesheet applies
                loose_buttons: Array.from(document.querySelectorAll('.zeroclipboard-container'))
                    .filter(box => getComputedStyle(box).position !== 'absolute').length,
                // and a code cell keeps its grey box, whose colour comes through a chain of theme variables
                bare_cells: Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-editor'))
                    .filter(cell => ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(cell).backgroundColor)).length,
                scrolling: Array.from(document.querySelectorAll('.highlight-ipynb pre'))
                    .filter(pre => pre.offsetParent !== null && pre.scrollWidth > pre.clientWidth + 1).length,
            })""")
            assert reading["figures"], f"{relative}: no notebook figure"
            bad_alt = [figure["alt"] for figure in reading["figures"] if not figure["alt"].strip() or figure["alt"] == PLACEHOLDER_ALT]
            assert not bad_alt, f"{relative}: figures without a description: {bad_alt}"
            assert all(figure["caption"] for figure in reading["figures"]), f"{relative}: a figure without a caption"
            assert reading["prompts"] == 0 and reading["badges"] == 0, (relative, reading["prompts"], reading["badges"])
            assert reading["loose_buttons"] == 0 and reading["bare_cells"] == 0, \
                f"{relative}: the notebook stylesheet did not apply in full ({reading['loose_buttons']}, {reading['bare_cells']})"
            assert reading["scrolling"] == 0, f"{relative}: {reading['scrolling']} code cells scroll sideways at 1280 px"
            figures += len(reading["figures"])
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
    # Material reads the box on keyup (or when its index gets ready): fill() alone raced the index
    page.locator(".md-search__input").press("End")
    page.wait_for_function("() => document.querySelectorAll('.md-search-result__item').length > 0",
                           timeout=SEARCH_S * 1000)
    found = page.evaluate("() => Array.from(document.querySelectorAll('.md-search-result__item a')).map(a => a.href)")
    found_pages = {urlsplit(href).path.lstrip("/") for href in found}  # without ?h=word (highlighting)
    assert found_pages == {expected}, (word, expected, found_pages)

    assert not problems, "\n".join(problems)
    print(f"checked {len(pages)} pages, {images} images, {sum(len(v) for v in links.values())} internal links "
          f"({len(links)} distinct, {len(targets)} files), {maths} typeset formulas on {len(tex_pages)} pages "
          f"({displays} display formulas, none cut off); {figures} notebook figures with alt text and a caption; "
          f"search for {word!r} found {expected} only; {sum(external.values())} external links not fetched")


def test_search_finds_words_after_punctuation_and_us_spellings(site, server, page):
    """ "(Hasler" is the word "Hasler"; "colorfulness" finds "colourfulness"; previews start with the text."""
    docs = json.loads((site / "search" / "search_index.json").read_text())["docs"]

    def pages_with(word: str) -> set[str]:
        return {doc["location"].split("#")[0] for doc in docs
                if re.search(rf"\b{word}", re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"]), re.I)}

    page.goto(server, wait_until="load", timeout=PAGE_LOAD_S * 1000)
    for word in (*SEARCHES, "colour"):  # "colour": many results, for their previews
        expected = pages_with(word.replace("color", "colour")) if word in SEARCHES else set()
        assert expected or word not in SEARCHES, f"no page of the site has {word!r}: pick another word"
        page.locator(".md-search__input").click()
        page.locator(".md-search__input").fill(word)
        page.locator(".md-search__input").press("End")  # Material reads the box on keyup, not on input
        page.wait_for_function("() => document.querySelectorAll('.md-search-result__item').length > 0",
                               timeout=SEARCH_S * 1000)
        found = page.evaluate("""() => Array.from(document.querySelectorAll('.md-search-result__item')).map(item => ({
            href: item.querySelector('a').href,
            previews: Array.from(item.querySelectorAll('.md-search-result__article > :not(h1):not(h2)'))
                           .map(el => el.innerText)}))""")
        found_pages = {urlsplit(item["href"]).path.lstrip("/") for item in found}
        assert expected <= found_pages, (word, expected - found_pages)
        noisy = [text for item in found for text in item["previews"] if PREVIEW_NOISE.match(text)]
        assert not noisy, f"{word!r}: previews that start with a button or a prompt: {noisy[:3]}"
        print(f"search {word!r}: {len(found_pages)} pages, {len(expected)} expected")
        page.locator(".md-search__input").fill("")


def test_formulas_scroll_at_phone_width(site, server, page):
    """At 390 px every display formula fits its column or scrolls inside it; the page itself does not scroll sideways."""
    counted = 0
    with _new_page(page, *PHONE) as phone:
        for relative in sorted(_tex_pages(site)):
            phone.goto(urljoin(server, relative), wait_until="load", timeout=PAGE_LOAD_S * 1000)
            phone.wait_for_function("() => MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0",
                                    timeout=PAGE_LOAD_S * 1000)
            phone.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
            boxes = phone.evaluate(FORMULA_BOXES)
            clipped = [box for box in boxes if (box["wide"] and not box["scrolls"]) or not box["inside"]]
            assert not clipped, f"{relative} at {PHONE[0]} px: display formulas cut off: {clipped}"
            width = phone.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE[0] + 1, f"{relative} at {PHONE[0]} px scrolls sideways ({width} px)"
            counted += len(boxes)
    print(f"at {PHONE[0]} px: {counted} display formulas, each fits or scrolls")


def test_chapter_cold_load_is_light(build_site, site, server, page):
    """Every byte a chapter's first view fetches with the browser cache off (the page, its styles, scripts,
    maths, fonts, search index, the figures near the top) stays under COLD_LOAD_LIMIT."""
    weights = {}
    with _new_page(page, 1280, 900) as fresh:
        cdp = fresh.context.new_cdp_session(fresh)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        for relative in _chapters(build_site, site):
            fresh.goto(urljoin(server, relative), wait_until="load", timeout=PAGE_LOAD_S * 1000)
            fresh.wait_for_function("() => !window.MathJax || (MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0)",
                                    timeout=PAGE_LOAD_S * 1000)
            fresh.wait_for_load_state("networkidle", timeout=PAGE_LOAD_S * 1000)
            weights[relative] = fresh.evaluate("""() => performance.getEntriesByType('navigation')
                .concat(performance.getEntriesByType('resource')).reduce((sum, entry) => sum + entry.encodedBodySize, 0)""")
    print("cold load: " + ", ".join(f"{Path(page).stem[:2]} {weight / 1e6:.2f} MB" for page, weight in weights.items()))
    heavy = {page: weight for page, weight in weights.items() if weight >= COLD_LOAD_LIMIT}
    assert not heavy, f"chapters over {COLD_LOAD_LIMIT / 1e6} MB cold: {heavy}"
    # the notebook stylesheet is one shared file, no longer inside every chapter
    for page in weights:
        assert "<style" not in (site / page).read_text()[:400_000].split('<article', 1)[1], page


def test_home_page_leads_to_the_course(build_site, site, server, page):
    """The chapter list is open in the sidebar and chapter 00 is linked on the first screen; the developer
    sections come after the course; a toggle switches to dark mode; the footer links to the repository."""
    chapters = _chapters(build_site, site)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server, wait_until="load", timeout=PAGE_LOAD_S * 1000)
    nav = page.locator(f'.md-nav--primary a[href="{chapters[0]}"]')
    assert nav.count() and nav.first.is_visible(), "the sidebar's chapter list is closed on the home page"
    first = page.evaluate(f"""() => document.querySelector('article a[href="{chapters[0]}"]').getBoundingClientRect().top""")
    assert first < 900, f"the first link to chapter 00 is {first:.0f} px down the home page"
    html = (site / "index.html").read_text()
    course_end = max(html.index('id="notebooks"'), html.index('id="the-course-as-a-website"'))
    for anchor in ("package-map", "tests", "errors-and-safety"):
        assert html.index(f'id="{anchor}"') > course_end, f"{anchor} comes before the course on the home page"
    toggle = page.locator("form[data-md-component=palette] label").first
    assert page.evaluate("() => document.body.getAttribute('data-md-color-scheme')") == "default"
    toggle.click()
    assert page.evaluate("() => document.body.getAttribute('data-md-color-scheme')") == "slate"
    page.locator("form[data-md-component=palette] label:visible").first.click()  # back to light for the other tests
    repository = build_site.colab_repository() or "sscn-course/sscn"
    assert page.locator(f'.md-social a[href="https://github.com/{repository}"]').count() == 1


class _SubPathHandler(_QuietHandler):
    """The site under ``sub_path``; any missing address answers 404.html, as GitHub Pages does."""

    sub_path = "/"

    def translate_path(self, path):
        inside = path.startswith(self.sub_path)
        return super().translate_path("/" + path[len(self.sub_path):] if inside else "/__none__")

    def send_error(self, code, message=None, explain=None):
        if code != 404:
            return super().send_error(code, message, explain)
        body = (Path(self.directory) / "404.html").read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_404_page_works_under_a_sub_path(build_site, site, page):
    """Served where GitHub Pages puts the repository's site (``/NAME/``), a missing page at any depth gets the
    site's 404 page with its styles, scripts and search index, and its home link works."""
    sub_path = build_site.base_path()
    assert sub_path != "/" and sub_path.endswith("/")
    handler = type("Handler", (_SubPathHandler,), {"sub_path": sub_path})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{httpd.server_address[1]}{sub_path}"
    failed = []
    try:
        with _new_page(page, 1280, 900) as lost:
            lost.on("response", lambda response: response.status >= 400 and response.url != missing
                    and failed.append(f"HTTP {response.status}: {response.url}"))
            lost.on("requestfailed", lambda request: failed.append(f"failed: {request.url}"))
            missing = root + "notebooks/deeper/99_no_such_chapter.html"
            answer = lost.goto(missing, wait_until="load", timeout=PAGE_LOAD_S * 1000)
            lost.wait_for_load_state("networkidle", timeout=PAGE_LOAD_S * 1000)
            assert answer.status == 404
            styled = lost.evaluate("() => Array.from(document.styleSheets).filter(sheet => sheet.href && sheet.cssRules.length > 0).length")
            home = lost.evaluate("() => document.querySelector('a.md-header__button.md-logo').href")
            assert _fetch(home)[0] == 200 and home.startswith(root), home
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
    assert styled >= 2 and not failed, (styled, failed)


def test_site_packages_install_without_torch():
    """The site's own requirements (what the README says to install) hold neither torch nor the package."""
    requirements = (ROOT / "docs" / "site" / "requirements.txt").read_text().lower()
    names = {re.split(r"[<>=!~;\[ ]", line.strip())[0] for line in requirements.splitlines()
             if line.strip() and not line.startswith("#")}
    assert {"mkdocs", "mkdocs-material", "mkdocs-jupyter", "jupyter-server-mathjax", "beautifulsoup4"} <= names
    assert not names & {"torch", "torchvision", "sscn", "-e", "."}, names
    readme = (ROOT / "README.md").read_text().split("## The course as a website", 1)[1].split("\n## ", 1)[0]
    assert "pip install -r docs/site/requirements.txt" in readme and '".[site]"' not in readme


def test_figure_descriptions(hooks):
    """Alt text: the cell's ``# caption:`` comment, else its plot titles, else the section's heading."""
    code = 'axes[0].set_title("sRGB photo")\nax.set(title="the ab plane", xlabel="a")\nfig.suptitle(f"step {i}")'
    assert hooks.figure_description(code, "2. Why Lab") == "Figure of the section \u201c2. Why Lab\u201d; panels: sRGB photo, the ab plane"
    assert hooks.figure_description("# caption: Lab of a photo\nplt.title('x')", "2") == "Lab of a photo"
    assert hooks.figure_description("plt.show()", "") == "Figure"
    shown = 'show(axes[0], photo, "ground truth")\nshow(ax, ref.image, f"{ref.kind} (seed)")\nshow(axes[1], x, "warped")'
    assert hooks.figure_description(shown, "3") == "Figure of the section \u201c3\u201d; panels: ground truth, warped"


def test_home_page_order(build_site, tmp_path):
    """The README's developer sections move after the course's; a link to chapter 00 sits under the title."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_overview.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "markdown", "source": ["# 00 · Overview\n"], "metadata": {}}]}))
    readme = "# Title\n\nIntro.\n\n## Package map\n\nmods\n\n## Notebooks\n\n```\n## not a heading\n```\n\n## Tests\n\nt\n"
    home = build_site.home_page(readme, tmp_path)
    assert home.index("[00 · Overview](notebooks/00_overview.ipynb)") < home.index("Intro.")
    assert home.index("## Notebooks") < home.index("## Package map") < home.index("## Tests")
    assert "## not a heading" in home and home.count("## ") == 4


def test_search_index_cleaning(build_site, tmp_path):
    """Buttons and prompts leave the previews; British words gain their US forms, hidden."""
    path = tmp_path / "search_index.json"
    path.write_text(json.dumps({"config": {}, "docs": [
        {"location": "a.html", "title": "Colour", "text": "Open in ColabDownload notebook In\u00a0[\u00a0]: Copied! <p>The colourfulness of grey.</p>"},
        {"location": "b.html", "title": "Color", "text": "<p>US already.</p>"}]}))
    build_site.clean_search_index(path)
    docs = json.loads(path.read_text())["docs"]
    assert docs[0]["text"].startswith("<p>The colourfulness")
    assert re.search(r'<span class="sscn-alias" hidden>color colorfulness gray</span>$', docs[0]["text"])
    assert docs[1]["text"] == "<p>US already.</p>"
    assert build_site.us_spellings("normalised colour") == ["normalized", "color"]


def test_stylesheet_pruning(build_site):
    css = ("/* Literal.Number */\n@charset \"UTF-8\";:root{--used:1px;--via:var(--used);--icon:url('data:x;y')}.a .b{x:var(--via)}"
           ".a,.gone{y:1}@media (max-width:1px){.gone{z:1}.a{w:1}}@font-face{f:1}.a :is(.b:hover,.gone){v:1}")
    pruned = build_site.prune_variables(build_site.prune_css(css, {"a", "b"}))
    assert pruned == (":root{--used:1px;--via:var(--used)}.a .b{x:var(--via)}.a{y:1}@media (max-width:1px){.a{w:1}}"
                      "@font-face{f:1}")  # a selector with a class no page has goes, whole, commas inside :is() too
