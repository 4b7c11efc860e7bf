"""End to end in a real headless Chromium: sign in, generate with the tiny model, see the picture,
open it in the gallery, and a screenshot of every page.

Screenshots go to ``$LIMNER_TEST_ARTIFACTS/ui-screenshots`` (or pytest's temporary folder).
Without Chromium the test is skipped with the reason, except in CI (``CI=true``), where a
missing browser is a failure: CI installs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from limner.cli.ui import start_ui_subprocess
from tests.api.live_server import LiveServer, free_port
from tests.ui.conftest import ADMIN, PASSWORD

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 60_000


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser test (install it in .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")  # session: checked before the (package-scoped) server is started
def chromium() -> str:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("Chromium is not installed (Debian: apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright; no browser download)")
    return str(executable)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("LIMNER_TEST_ARTIFACTS")
    folder = Path(root) / "ui-screenshots" if root else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def studio_url(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``limner ui``'s own start function, on a free loopback port, pointed at the live API."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui-log") / "streamlit.log"
    with log.open("wb") as handle:
        process = start_ui_subprocess(server.url, port=port, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the studio exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the studio did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


HEADINGS = {"Edit": "Edit a photo", "Architecture": "How limner makes pictures"}
WIDTH, HEIGHT = 1400, 1000


def _menu(page: Any, title: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=HEADINGS.get(title, title)).first.wait_for(timeout=WAIT_MS)


def _settle(page: Any) -> None:
    """Wait until Streamlit has finished the run (its status widget gone) so the screenshot is final."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_timeout(500)


def _shoot(page: Any, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to its height first."""
    height = page.evaluate(
        "Math.max(...['stMain', 'stAppViewContainer'].map("
        "id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))"
    )
    page.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, min(int(height), 8000))})
    page.wait_for_timeout(300)
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})


def test_sign_in_generate_and_open_in_gallery(chromium: str, studio_url: str, screenshots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(studio_url)
            page.get_by_label("Username", exact=True).fill(ADMIN)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            _shoot(page, screenshots / "01-sign-in.png")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Your latest pictures").wait_for(timeout=WAIT_MS)
            _settle(page)
            _shoot(page, screenshots / "02-home.png")

            _menu(page, "Generate")
            page.get_by_label("Prompt", exact=True).fill("an emoji of a red apple in a browser")
            page.get_by_label("Seed").fill("42")
            page.get_by_label("Steps").fill("5")
            page.get_by_role("button", name="Generate").click()
            picture = page.get_by_test_id("stImage").filter(has_text="seed 42").locator("img")
            picture.wait_for(timeout=WAIT_MS)
            assert picture.evaluate("img => img.complete && img.naturalWidth") > 0
            _settle(page)
            _shoot(page, screenshots / "03-generate.png")

            _menu(page, "Gallery")
            page.get_by_label("Search prompts").fill("red apple in a browser")
            page.get_by_label("Search prompts").press("Enter")
            expect(page.get_by_text("1 picture, newest first")).to_be_visible(timeout=WAIT_MS)
            _settle(page)
            _shoot(page, screenshots / "04-gallery.png")
            page.get_by_test_id("stButton").get_by_role("button", name="Open", exact=True).first.click()
            page.get_by_role("heading", name="Parameters").wait_for(timeout=WAIT_MS)
            table = page.get_by_test_id("stTable")
            expect(table).to_contain_text("an emoji of a red apple in a browser")
            expect(table).to_contain_text("42")
            _settle(page)
            _shoot(page, screenshots / "05-gallery-open.png")

            for number, title in enumerate(
                ("Edit", "Character", "Prompt lab / Batch", "Models & training", "Architecture"), start=6
            ):
                _menu(page, title)
                _settle(page)
                name = title.split()[0].lower()
                _shoot(page, screenshots / f"{number:02d}-{name}.png")
            expect(page.get_by_test_id("stGraphVizChart").first.locator("svg")).to_be_visible(timeout=WAIT_MS)
        finally:
            browser.close()
    assert not errors, errors
    assert len(list(screenshots.glob("*.png"))) >= 10
