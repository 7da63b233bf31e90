"""Real-browser fixtures: a `streamlit run app.py` server on a free 127.0.0.1 port and Debian's chromium
driven by the playwright package (both from bench/harness.py, which the benchmarks share), and small
helpers (waits, console errors, exceptions, screenshots).

Without /usr/bin/chromium or the playwright package the e2e tests skip with the reason; with CI=true
that is a failure instead, so CI cannot pass by not running them. `playwright install` is never used.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.harness import (DEFAULT_SHAPES, NAV_LINKS, ROOT, VIEWPORT, AppServer, missing_browser,  # noqa: F401
                           chromium, nav_link, serve_app, wait_for_app_idle)

SCREENSHOTS = ROOT / "docs" / "e2e"  # screenshots of the runs, not committed

# Console messages of type "error" that are not the app's fault: (message pattern, source URL pattern),
# each as narrow as it can be, with its reason.
BENIGN_CONSOLE = [
    # app.py's page_icon is a :material/...: icon, and Streamlit (1.67, frontend b_()) points the tab's
    # favicon at fonts.gstatic.com for it; offline (this sandbox, a classroom with no network) that one
    # request fails. Only the browser tab's icon is missing; the page's own icons use the bundled font.
    (re.compile(r"^Failed to load resource: net::ERR_"),
     re.compile(r"^https://fonts\.gstatic\.com/s/i/short-term/release/materialsymbolsrounded/[a-z0-9_]+/default/24px\.svg$")),
    # A tab opened at a page's URL (a bookmark, /sliders) does not know the app's base path: Streamlit's
    # frontend first asks /sliders/_stcore/... (404), then /_stcore/..., and connects. Only the probe fails.
    (re.compile(r"status of 404"), re.compile(r"^http://127\.0\.0\.1:\d+/[a-z-]+/_stcore/(health|host-config)$")),
]


# --- requirements -----------------------------------------------------------------------------------

def require_browser() -> None:
    """Skips with the reason, or fails when CI=true (a skipped browser test must not pass CI)."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"e2e tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"e2e tests skipped: {reason}")


# --- the server -------------------------------------------------------------------------------------

def assert_alive(server: AppServer) -> None:
    if server.process.poll() is not None:
        pytest.fail(f"the streamlit server exited with code {server.process.returncode}; its output:\n"
                    f"{server.log()[-4000:]}", pytrace=False)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> AppServer:
    """One server (bench/harness.py's serve_app: its own checkpoint and data folders, MNIST absent) for a
    test module."""
    require_browser()
    with serve_app(tmp_path_factory.mktemp("e2e")) as server:
        yield server


def pytest_collection_modifyitems(config, items):
    """Every test in tests/e2e is a browser test (README's test command runs them apart, after the others), whether
    or not its module says so."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


def local_only(refused: list[str]):
    """A context.route handler for a classroom's dead network: requests to 127.0.0.1 (and data: and blob: URLs)
    go through; any other fails as a disconnected network would, its URL appended to `refused`."""
    def route(r):
        if urlsplit(r.request.url).hostname == "127.0.0.1" or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort("internetdisconnected")

    return route


# --- the browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(app_server):
    with chromium() as b:  # bench/harness.py's
        yield b


# A 404 for a /media/ file (the browser's message, and Streamlit's own "Image source error" for the
# same failed <img>). Streamlit keeps a run's images in memory and drops them once the next run
# (e.g. the next step of a slider moved with the keyboard) replaces them, so the browser may still be
# fetching a superseded one when it goes. That is harmless only if the page no longer shows it:
# ConsoleErrors keeps these aside and assert_clean fails when any image still on the page is broken.
MEDIA_404 = re.compile(r"Failed to load resource: the server responded with a status of 404")
IMAGE_SOURCE_ERROR = re.compile(r"^Client Error: Image source error - (http://127\.0\.0\.1:\d+/media/\S+)$")


@dataclass
class ConsoleErrors:
    """Console messages of type error and uncaught page errors, from every page it watches."""

    messages: list[str] = field(default_factory=list)
    media_404: list[str] = field(default_factory=list)  # checked by assert_clean, see MEDIA_404

    def watch(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror on {page.url}: {error}"))

    def _on_console(self, msg) -> None:
        if msg.type != "error":
            return
        text = msg.text
        loc = msg.location or {}
        if any(t.search(text) and u.search(loc.get("url") or "") for t, u in BENIGN_CONSOLE):
            return
        if MEDIA_404.search(text) and "/media/" in (loc.get("url") or ""):
            self.media_404.append(loc["url"])
            return
        if m := IMAGE_SOURCE_ERROR.match(text):
            self.media_404.append(m.group(1))
            return
        self.messages.append(f"console error ({loc.get('url', '?')}:{loc.get('lineNumber', '?')}): {text}")


@pytest.fixture(scope="module")
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture(scope="module")
def open_page(browser, app_server, console_errors):
    """open_page(path='', before=None) -> a new tab (a new Streamlit session) on the app, watched for console
    errors; before(context, page), when given, runs before the first request (to route or record it)."""
    contexts = []

    def _open(path: str = "", before=None):
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        console_errors.watch(page)
        if before is not None:
            before(context, page)
        page.goto(f"{app_server.url}/{path.lstrip('/')}")
        page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
        wait_for_app_idle(page)
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def page(open_page):
    """The module's one tab (one Streamlit session) on the app's root, which its ordered steps share; a
    module that needs another tab (recorded, offline) defines its own."""
    return open_page("")


@pytest.fixture(scope="module")
def state():
    """What a module's ordered steps hand each other."""
    return {}


# --- helpers ----------------------------------------------------------------------------------------

def wait_until(predicate, timeout: float, message, interval: float = 0.25, page=None):
    """Polls predicate() until it returns something truthy; fails with message() (or message) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message() if callable(message) else message, pytrace=False)
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def start_job(page, name: str, epochs: int, batch: int) -> None:
    """On the Train page (the tab is there): these epochs and batch size and the checkpoint name typed, Start
    pressed; returns once the page says the job runs."""
    for label, value in (("Epochs", str(epochs)), ("Batch size", str(batch)), ("Checkpoint name (optional)", name)):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name=re.compile("Start training")).click()
    said = lambda: page.locator('[data-testid="stMain"]').inner_text()  # noqa: E731
    wait_until(lambda: f"{name}: running" in said(), 120,
               lambda: f"the job did not start; the Train page says {said()[-300:]!r}", page=page)


_EXCEPTION_TEXTS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stException"]')).map(el => {
    let text = el.innerText;
    for (const b of el.querySelectorAll('button, a')) {  // "Copy", "Ask Google", ...
        const label = b.innerText.trim();
        if (label) text = text.split(label).join(' ');
    }
    return text;
})"""


def exception_texts(page) -> list[str]:
    """The type, message and traceback of every exception box on the page, one line each."""
    return [" ".join(t.split()) for t in page.evaluate(_EXCEPTION_TEXTS_JS)]


def assert_no_exception(page, where: str) -> None:
    texts = exception_texts(page)
    if texts:
        first = texts[0][:600]
        pytest.fail(f"stException on {where}: {first}" + (f" (and {len(texts) - 1} more)" if len(texts) > 1 else ""),
                    pytrace=False)


_BROKEN_IMAGES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stApp"] img'))
    .filter(img => img.getAttribute('src') && img.complete && img.naturalWidth === 0).map(img => img.src)"""


def assert_clean(page, where: str, server: AppServer, console: ConsoleErrors) -> None:
    """No exception box on the page, no console error so far, no broken image, no traceback in the
    server output."""
    assert_no_exception(page, where)
    broken = page.evaluate(_BROKEN_IMAGES_JS)
    if broken:
        pytest.fail(f"broken image(s) on {where}: {broken[:5]} (media 404s seen: {console.media_404[:5]})",
                    pytrace=False)
    console.media_404.clear()  # superseded images only: every image still shown has loaded
    if console.messages:
        pytest.fail(f"browser console errors by {where}:\n" + "\n".join(console.messages[:10]), pytrace=False)
    assert_alive(server)
    tb = server.tracebacks()
    if tb:
        pytest.fail(f"traceback in the server output by {where}:\n{tb}", pytrace=False)


CONTENT_HEIGHT_JS = """() => Math.ceil(Math.max(document.documentElement.scrollHeight, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stSidebarContent"]'),
    (el) => el.scrollHeight)))"""
TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def whole_page_screenshot(page, path: Path, width: int = VIEWPORT["width"]) -> Path:
    """A PNG of the whole page, `width` CSS px wide. Streamlit scrolls inside its main container, so a plain
    full_page shot stops at the window: the window grows to the content's height for the shot (the width, and
    so the layout, stays), then returns to VIEWPORT."""
    page.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
    page.evaluate(TWO_FRAMES_JS)
    page.mouse.move(width // 2, 60)  # off the sidebar, whose hover shows its collapse button
    height = min(max(VIEWPORT["height"], page.evaluate(CONTENT_HEIGHT_JS)), 4000)
    page.set_viewport_size({"width": width, "height": height})
    page.evaluate(TWO_FRAMES_JS)
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
        page.evaluate(TWO_FRAMES_JS)
    return path


def screenshot(page, name: str) -> Path:
    """docs/e2e/<name>.png of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return whole_page_screenshot(page, SCREENSHOTS / f"{name}.png")
