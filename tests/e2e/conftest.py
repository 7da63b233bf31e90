"""Real-browser fixtures: a `streamlit run app.py` server on a free 127.0.0.1 port, Debian's chromium
driven by the playwright package, and small helpers (waits, console errors, exceptions, screenshots).

Without /usr/bin/chromium or the playwright package the e2e tests skip with the reason; with CI=true
that is a failure instead, so CI cannot pass by not running them. `playwright install` is never used.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM") or "/usr/bin/chromium")  # Debian's; E2E_CHROMIUM overrides
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "docs" / "e2e"
VIEWPORT = {"width": 1600, "height": 1000}
DEFAULT_SHAPES = ROOT / "checkpoints" / "default-shapes-2d.pt"
HEALTH_TIMEOUT = 60.0

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

def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"the playwright Python package is missing ({e}); pip install -r requirements-dev.txt"
    return None


def require_browser() -> None:
    """Skips with the reason, or fails when CI=true (a skipped browser test must not pass CI)."""
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"e2e tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"e2e tests skipped: {reason}")


# --- the server -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    checkpoint_dir: Path
    data_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tracebacks(self) -> str:
        """The server output from its first traceback on ('' when there is none)."""
        text = self.log()
        at = text.find("Traceback")
        return text[at:at + 4000] if at >= 0 else ""

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the streamlit server exited with code {self.process.returncode}; its output:\n"
                        f"{self.log()[-4000:]}", pytrace=False)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def serve_app(base: Path):
    """`streamlit run app.py` on a free 127.0.0.1 port with its own checkpoint and data folders under base
    (holding a copy of the shipped shapes model), so a test never writes into checkpoints/ and MNIST is
    absent; stopped on the way out. Output goes to base/server.log."""
    checkpoints, data = base / "checkpoints", base / "data"
    checkpoints.mkdir(parents=True)
    data.mkdir()
    if DEFAULT_SHAPES.exists():
        shutil.copy2(DEFAULT_SHAPES, checkpoints / DEFAULT_SHAPES.name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, VAE_CHECKPOINT_DIR=str(checkpoints), VAE_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    # One torch thread for the server: on 2 cores shared with chromium (and whatever else CI runs), torch's
    # spinning OpenMP pool slows the tests' training by several times under load; one thread hardly
    # depends on it. It changes speed, not behaviour.
    env.setdefault("OMP_NUM_THREADS", "1")
    log_path = base / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             # No file watcher: other edits to the working tree must not rerun the app mid-test, and
             # watching a tree that holds .venv overflows inotify and burns CPU on a 2-core machine.
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    server = AppServer(url, process, log_path, checkpoints, data)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while _health(url) != "ok":
            server.assert_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"the streamlit server did not answer ok on {url}/_stcore/health within "
                            f"{HEALTH_TIMEOUT:.0f} s; its output:\n{server.log()[-4000:]}", pytrace=False)
            time.sleep(0.25)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> AppServer:
    """One server (serve_app) for a test module."""
    require_browser()
    with serve_app(tmp_path_factory.mktemp("e2e")) as server:
        yield server


# --- the browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(app_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


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
    """open_page(path='') -> a new tab (a new Streamlit session) on the app, watched for console errors."""
    contexts = []

    def _open(path: str = ""):
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        console_errors.watch(page)
        page.goto(f"{app_server.url}/{path.lstrip('/')}")
        page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
        wait_for_app_idle(page)
        return page

    yield _open
    for context in contexts:
        context.close()


# --- helpers ----------------------------------------------------------------------------------------

_IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return 'no stApp yet';
    const conn = app.getAttribute('data-test-connection-state');
    const run = app.getAttribute('data-test-script-state');
    if (conn !== 'CONNECTED') return 'connection ' + conn;
    if (run !== 'notRunning') return 'script ' + run;
    if (document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]'))
        return 'status widget says running';
    return '';
}"""


def wait_for_app_idle(page, timeout: float = 60.0, settle: float = 0.3) -> None:
    """Waits until the script is not running and the connection is up, continuously for `settle` s."""
    deadline = time.monotonic() + timeout
    idle_since = None
    why = "never checked"
    while time.monotonic() < deadline:
        why = page.evaluate(_IDLE_JS)
        now = time.monotonic()
        if why:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= settle:
            return
        page.wait_for_timeout(100)
    pytest.fail(f"the app on {page.url} did not become idle within {timeout:.0f} s (last: {why})", pytrace=False)


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
    server.assert_alive()
    tb = server.tracebacks()
    if tb:
        pytest.fail(f"traceback in the server output by {where}:\n{tb}", pytrace=False)


_CONTENT_HEIGHT_JS = """() => {
    let h = document.documentElement.scrollHeight;
    for (const el of document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppScrollToBottomContainer"], '
                                               + '[data-testid="stAppViewContainer"], [data-testid="stSidebarContent"]'))
        h = Math.max(h, el.scrollHeight);
    return Math.ceil(h);
}"""
_TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def screenshot(page, name: str) -> Path:
    """docs/e2e/<name>.png of the whole page. Streamlit scrolls inside its main container, so a plain
    full_page shot stops at the window; the window grows to the content's height for the shot (the
    width, and so the layout, stays), then returns to 1600x1000."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.mouse.move(VIEWPORT["width"] // 2, 60)  # off the sidebar, whose hover shows its collapse button
    height = min(max(VIEWPORT["height"], page.evaluate(_CONTENT_HEIGHT_JS)), 4000)
    if height > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.evaluate(_TWO_FRAMES_JS)
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if height > VIEWPORT["height"]:
            page.set_viewport_size(VIEWPORT)
            page.evaluate(_TWO_FRAMES_JS)
    return path
