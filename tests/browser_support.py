"""What the two browser tests share: the system's Chromium, its flags, the skip rule, the README screenshots.

``tests/test_browser.py`` (the explorer served by Voila) and ``tests/test_site.py`` (the
course website) drive the same headless Chromium through Playwright.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SSCN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these Chromium keeps dialling Google's hosts, which a closed network refuses
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_LIMIT = 300_000  # bytes, for a README's PNG


def require(available: bool, reason: str) -> None:
    """Skip when ``available`` is false, unless ``SSCN_REQUIRE_BROWSER=1`` (CI) makes that a failure."""
    if available:
        return
    if os.environ.get("SSCN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; SSCN_REQUIRE_BROWSER=1 says this test must run here")
    pytest.skip(reason)


def save_screenshot(png: bytes, path: Path) -> None:
    """The page as a palette PNG (256 colours), which keeps the README's picture small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    print(f"screenshot: {path} ({len(buffer.getvalue()) // 1000} kB)")
    assert len(buffer.getvalue()) < SCREENSHOT_LIMIT


@contextlib.contextmanager
def chromium_page(profile: Path, width: int, height: int):
    """A Playwright page in headless system Chromium, with a fresh profile in ``profile``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
