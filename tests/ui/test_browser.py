"""End to end in a real headless Chromium, as a person uses the studio.

Sign in, generate and see the picture; paint a mask and inpaint; see a step preview before a job
ends; keep the form and the session's history across a page change; cancel a job from the Queue;
open the gallery's lightbox and step to the next picture; find Edit and Character explaining why
they are unavailable on this server (no edit model, no IP-Adapter). Every page is photographed at
1400 and 420 px wide into ``$LIMNER_TEST_ARTIFACTS/ui-screenshots`` (or pytest's temporary folder).

One studio, one browser and one signed-in page for the whole module (the tests run in file order
and continue each other's session), so the module costs one Streamlit start and one browser start.
Without Chromium the tests are skipped with the reason, except in CI (``CI=true``), where a missing
browser is a failure: CI installs Debian's ``chromium``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from limner.cli.ui import start_ui_subprocess
from tests.api.live_server import LiveServer, free_port
from tests.ui.conftest import ADMIN, PASSWORD

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 60_000
HEADINGS = {"Edit": "Edit a photo", "Architecture": "How limner makes pictures"}
WIDTH, NARROW, HEIGHT = 1400, 420, 1000


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
def studio_url(chromium: str, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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


class Browser:
    """The one signed-in page of the module, and the page errors Chromium reported."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.errors: list[str] = []

    def menu(self, title: str) -> None:
        nav = self.page.get_by_test_id("stSidebarNavItems")
        if not nav.is_visible():  # a narrow screenshot collapsed the sidebar
            self.page.get_by_test_id("stExpandSidebarButton").click()
            nav.wait_for(timeout=WAIT_MS)
        nav.get_by_role("link", name=title, exact=True).click()
        self.page.get_by_role("heading", name=HEADINGS.get(title, title)).first.wait_for(timeout=WAIT_MS)
        self.settle()

    def settle(self) -> None:
        """Wait until Streamlit has finished the run (its status widget gone)."""
        self.page.wait_for_timeout(300)
        self.page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=WAIT_MS)
        self.page.wait_for_timeout(400)

    def type(self, label: str, text: str) -> None:
        """Fill a field and leave it (Streamlit takes a value when the field loses focus)."""
        field = self.page.get_by_label(label, exact=True)
        field.fill(text)
        field.press("Tab")
        self.settle()

    def shoot(self, name: str) -> None:
        """The whole page at 1400 px, then at 420 px wide (Streamlit scrolls inside its main block)."""
        for width in (WIDTH, NARROW):
            self.page.set_viewport_size({"width": width, "height": HEIGHT})
            self.page.wait_for_timeout(400)
            height = self.page.evaluate(
                "Math.max(...['stMain', 'stAppViewContainer'].map("
                "id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))"
            )
            self.page.set_viewport_size({"width": width, "height": max(HEIGHT, min(int(height), 8000))})
            self.page.wait_for_timeout(300)
            self.page.screenshot(path=self.shots / f"{name}-{width}.png", full_page=True)
        self.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        self.page.wait_for_timeout(300)

    def image(self, caption: str) -> Any:
        return self.page.get_by_test_id("stImage").filter(has_text=caption).locator("img").first


@pytest.fixture(scope="module")
def browser(chromium: str, studio_url: str, screenshots: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = chrome.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.set_default_timeout(WAIT_MS)
        session = Browser(page, screenshots)
        page.on("pageerror", lambda error: session.errors.append(str(error)))
        try:
            page.goto(studio_url)
            page.get_by_label("Username", exact=True).fill(ADMIN)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            session.shoot("01-sign-in")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Your latest pictures").wait_for(timeout=WAIT_MS)
            session.settle()
            session.shoot("02-home")
            yield session
        finally:
            chrome.close()
    assert not session.errors, session.errors


def _start_picture(folder: Path) -> Path:
    path = folder / "start.png"
    picture = Image.new("RGB", (64, 64), "skyblue")
    picture.paste((200, 40, 40), (20, 20, 44, 44))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _paint(browser: Browser, points: list[tuple[float, float]]) -> None:
    """Drag the mouse over the painter's canvas through ``points`` (fractions of its width and height)."""
    canvas = browser.page.get_by_label("Paint the mask here")
    canvas.scroll_into_view_if_needed()  # mouse events only reach what is inside the viewport
    box = canvas.bounding_box()
    assert box is not None
    mouse = browser.page.mouse
    x, y = points[0]
    mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    mouse.down()
    for x, y in points[1:]:
        mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=5)
    mouse.up()
    browser.settle()


def test_generate_shows_the_picture(browser: Browser) -> None:
    from playwright.sync_api import expect

    browser.menu("Generate")
    browser.type("Prompt", "an emoji of a red apple in a browser")
    browser.type("Seed", "42")
    browser.type("Steps", "5")
    browser.page.get_by_role("button", name="Generate", exact=True).click()
    picture = browser.image("seed 42")
    picture.wait_for(timeout=WAIT_MS)
    assert picture.evaluate("img => img.complete && img.naturalWidth") > 0
    browser.settle()
    expect(browser.page.get_by_role("heading", name="This session's pictures")).to_be_visible()
    browser.shoot("03-generate")


def test_paint_a_mask_and_inpaint(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.page
    page.get_by_test_id("stFileUploader").filter(has_text="Start picture").locator("input[type=file]").set_input_files(
        _start_picture(tmp_path)
    )
    browser.settle()
    page.get_by_text("Paint a mask (inpaint)").click()
    browser.settle()
    painter = page.get_by_test_id("limner-mask-painter")
    painter.wait_for(timeout=WAIT_MS)
    expect(page.get_by_text("Nothing painted yet.")).to_be_visible()
    _paint(browser, [(0.2, 0.2), (0.8, 0.2), (0.8, 0.5), (0.2, 0.5)])
    expect(page.get_by_text("Nothing painted yet.")).to_be_hidden()
    painter.get_by_role("button", name="Clear").click()
    browser.settle()
    expect(page.get_by_text("Nothing painted yet.")).to_be_visible()
    painter.get_by_role("button", name="Eraser").click()
    painter.get_by_role("button", name="Brush").click()
    painter.get_by_label("Brush size").fill("40")
    _paint(browser, [(0.3, 0.3), (0.7, 0.7)])
    painter.get_by_role("button", name="Invert").click()  # repaint around the stroke ...
    browser.settle()
    painter.get_by_role("button", name="Invert").click()  # ... no: the stroke itself
    browser.settle()
    expect(page.get_by_text("Nothing painted yet.")).to_be_hidden()
    browser.type("Prompt", "an emoji of a green pear, inpainted")
    browser.type("Seed", "7")
    page.get_by_role("button", name="Generate", exact=True).click()
    browser.image("seed 7").wait_for(timeout=WAIT_MS)
    browser.settle()
    expect(page.get_by_text("inpaint · succeeded")).to_be_visible()
    browser.shoot("04-generate-inpaint")


def test_a_preview_shows_before_the_job_ends(browser: Browser) -> None:
    page = browser.page
    page.get_by_text("No mask: change the whole picture (img2img)").click()  # img2img from the start picture
    browser.settle()
    browser.type("Prompt", "a slow emoji of a lemon with previews")
    browser.type("Steps", "400")
    browser.type("Seed", "11")
    page.get_by_role("button", name="Generate", exact=True).click()
    preview = browser.image("Preview, step")
    preview.wait_for(timeout=WAIT_MS)  # previews are removed when the job ends: seen means seen before
    browser.page.screenshot(path=browser.shots / "generate-preview-1400.png")  # each step replaces the last
    browser.image("seed 11").wait_for(timeout=WAIT_MS)
    browser.settle()


def test_history_survives_a_page_change(browser: Browser) -> None:
    from playwright.sync_api import expect

    browser.menu("Gallery")
    browser.menu("Generate")
    page = browser.page
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a slow emoji of a lemon with previews")
    expect(page.get_by_role("heading", name="This session's pictures")).to_be_visible()
    for prompt in ("an emoji of a red apple in a browser", "an emoji of a green pear, inpainted"):
        expect(page.get_by_text(prompt, exact=True)).to_be_visible()
    reuse = page.get_by_role("button", name="Reuse these settings")
    reuse.last.click()  # the oldest entry: the apple
    browser.settle()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("an emoji of a red apple in a browser")
    expect(page.get_by_text("a slow emoji of a lemon with previews", exact=True)).to_be_visible()  # still listed


def test_cancel_from_the_queue(browser: Browser, server: LiveServer, token: str) -> None:
    from playwright.sync_api import expect

    body = {"prompt": "a browser marathon", "steps": 1000, "width": 256, "height": 256, "num_images": 4}
    job = httpx.post(f"{server.url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"}).json()
    browser.menu("Queue")
    page = browser.page
    row = page.locator(f".st-key-queue-job-{job['id']}")
    row.wait_for(timeout=WAIT_MS)
    browser.shoot("05-queue")
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(f".st-key-queue-job-{job['id']}").get_by_text("Canceled")).to_be_visible(timeout=WAIT_MS)
    status = httpx.get(f"{server.url}/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {token}"}).json()
    assert status["status"] == "canceled"


def test_gallery_lightbox_steps_to_the_next_picture(browser: Browser, server: LiveServer, token: str) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {token}"}
    body = {"prompt": "a browser gallery plum", "steps": 2, "num_images": 2, "seed": 5}
    job = httpx.post(f"{server.url}/v1/jobs", json=body, headers=headers).json()
    deadline = time.monotonic() + 60
    while httpx.get(f"{server.url}/v1/jobs/{job['id']}", headers=headers).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the gallery's pictures were not made"
        time.sleep(0.3)
    browser.menu("Gallery")
    page = browser.page
    browser.shoot("06-gallery")
    page.locator(".st-key-gal-grid").get_by_role("button", name="Open", exact=True).first.click()
    dialog = page.get_by_test_id("stDialog")
    try:
        dialog.get_by_role("heading", name="Parameters").wait_for(timeout=WAIT_MS)
    except Exception:
        page.screenshot(path=browser.shots / "failed-lightbox.png", full_page=True)
        raise
    expect(dialog.get_by_text("Picture 1 of")).to_be_visible()
    browser.settle()
    browser.shoot("07-gallery-lightbox")
    dialog.get_by_role("button", name="Next").click()
    expect(page.get_by_test_id("stDialog").get_by_text("Picture 2 of")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stDialog").get_by_test_id("stTable")).to_contain_text("Seed")
    page.get_by_test_id("stDialog").get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("stDialog")).to_have_count(0, timeout=WAIT_MS)  # closed, and not reopened
    browser.settle()


def test_edit_is_offered_offline_and_character_says_why_it_is_unavailable(browser: Browser) -> None:
    """The built-in limner-tiny-edit makes edits available with no download; this server's tiny random
    model has no IP-Adapter for its width, so the Character page says why it cannot run."""
    from playwright.sync_api import expect

    page = browser.page
    browser.menu("Edit")
    expect(page.get_by_text("Editing a photo by instruction is not available on this server.")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit", exact=True)).to_be_visible(timeout=WAIT_MS)
    browser.shoot("08-edit")
    browser.menu("Character")
    expect(page.get_by_text("Making character pictures is not available on this server.")).to_be_visible()
    expect(page.get_by_role("button", name="Create", exact=True)).to_have_count(0)
    browser.shoot("09-character")


def test_every_other_page_photographed(browser: Browser) -> None:
    from playwright.sync_api import expect

    for number, title in enumerate(("Prompt lab / Batch", "Models & training", "Architecture"), start=10):
        browser.menu(title)
        browser.shoot(f"{number:02d}-{title.split()[0].lower()}")
    expect(browser.page.get_by_test_id("stGraphVizChart").first.locator("svg")).to_be_visible(timeout=WAIT_MS)
    assert len(list(browser.shots.glob("*.png"))) >= 24
