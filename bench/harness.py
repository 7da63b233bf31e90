"""What the benchmarks share, and the browser tests use too: the report (the machine line, medians, one
section of docs/benchmarks.md replaced), `streamlit run` on a free 127.0.0.1 port, Debian's headless
Chromium, and how much CPU other work took meanwhile. Imports nothing from tests/."""
from __future__ import annotations

import base64
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pages.ui.shell import NAV_KEY

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
DEFAULT_SHAPES = ROOT / "checkpoints" / "default-shapes-2d.pt"
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM") or "/usr/bin/chromium")  # Debian's; E2E_CHROMIUM overrides
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1600, "height": 1000}
# The app's own links to its pages, in the sidebar (pages/ui/shell.py): one st.page_link per page, in the
# container keyed NAV_KEY, each link's href its page's URL path ("sliders"; "" for Home, the root).
NAV_LINKS = f'.st-key-{NAV_KEY} [data-testid="stPageLink-NavLink"]'
HEALTH_TIMEOUT = 60.0


def machine_line() -> str:
    """The date, CPU, cores, torch and its threads, and the load average, in one line."""
    import torch

    found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {os.cpu_count()} cores ({found.group(1).strip() if found else platform.processor()}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def median(values) -> float:
    return float(statistics.median(values))


def replace_section(section: str, path: Path = BENCHMARKS_MD) -> None:
    """Writes `section` (its first line is its '## ' heading) into path, replacing only the old one."""
    heading = section.splitlines()[0].rstrip()
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def cpu_jiffies(pids: list[int] | None = None) -> int:
    """CPU time (jiffies) used so far by these processes (their exited children included), or by the
    whole machine when pids is None."""
    if pids is None:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return sum(sum(map(int, _stat(pid)[11:15])) for pid in pids)  # utime, stime, cutime, cstime


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def own_processes() -> list[int]:
    """This process and every process under it (servers, Chromium)."""
    parents = {int(e.name): int(f[1]) for e in Path("/proc").iterdir() if e.name.isdigit() and (f := _stat(int(e.name)))}
    found, frontier = [os.getpid()], [os.getpid()]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


class OtherLoad:
    """Cores that other work on the machine used while the `with` block ran (this process and its
    children left out): a measurement taken beside such load is not the project's alone."""

    def __enter__(self):
        self._t, self._all, self._own = time.monotonic(), cpu_jiffies(), cpu_jiffies(own_processes())
        return self

    def __exit__(self, *exc):
        jiffies = (time.monotonic() - self._t) * os.sysconf("SC_CLK_TCK")
        other = (cpu_jiffies() - self._all) - (cpu_jiffies(own_processes()) - self._own)
        self.cores = max(0.0, other / max(jiffies, 1e-9))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str) -> str | None:
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
        return text[text.find("Traceback"):][:4000] if "Traceback" in text else ""


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def serve_app(base: Path, env: dict | None = None, shipped: tuple[Path, ...] = (DEFAULT_SHAPES,)):
    """`streamlit run app.py` on a free 127.0.0.1 port, with its own checkpoint and data folders under base
    (copies of the shipped models in `shipped`, by default the shapes one, so a fresh session opens it; no
    MNIST) and more environment variables in env; stopped on the way out. Output: base/server.log."""
    checkpoints, data = base / "checkpoints", base / "data"
    checkpoints.mkdir(parents=True)
    data.mkdir()
    for path in shipped:
        if path.exists():
            shutil.copy2(path, checkpoints / path.name)
    url = f"http://127.0.0.1:{(port := free_port())}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}),
           "VAE_CHECKPOINT_DIR": str(checkpoints), "VAE_DATA_DIR": str(data)}
    args = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
            "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            # No file watcher: edits to the working tree must not rerun the app, and watching a tree that
            # holds .venv overflows inotify.
            "--server.fileWatcherType", "none"]
    with open(base / "server.log", "wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = AppServer(url, process, base / "server.log", checkpoints, data)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while health(url) != "ok":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the streamlit server did not answer ok on {url}/_stcore/health "
                                   f"(exit code {process.poll()}); its output:\n{server.log()[-4000:]}")
            time.sleep(0.25)
        yield server
    finally:
        stop(process)


# --- the browser ---------------------------------------------------------------------------------

def missing_browser() -> str | None:
    """Why Chromium cannot be driven here, or None when it can."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401  (only whether it imports)
    except ImportError as e:
        return f"the playwright Python package is missing ({e}); pip install -r requirements-dev.txt"
    return None


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, through the playwright package; closed on the way out."""
    if reason := missing_browser():
        raise SystemExit(f"cannot run the browser: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


IDLE_JS = """() => { const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return 'no stApp yet';
    if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return 'not connected';
    if (app.getAttribute('data-test-script-state') !== 'notRunning') return 'script running';
    return document.querySelector('[data-testid="stStatusWidgetRunningIcon"]') ? 'status widget running' : ''; }"""


def wait_for_app_idle(page, timeout: float = 60.0, settle: float = 0.3) -> None:
    """Waits until the script is not running and the connection is up, continuously for `settle` s."""
    deadline, idle_since, why = time.monotonic() + timeout, None, "never checked"
    while time.monotonic() < deadline:
        why, now = page.evaluate(IDLE_JS), time.monotonic()
        idle_since = None if why else (idle_since or now)
        if idle_since is not None and now - idle_since >= settle:
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"the app on {page.url} did not become idle within {timeout:.0f} s (last: {why})")


def start_training(browser, url: str, fields: dict[str, str]):
    """The Train page in a new tab, these fields filled (label: value), Start pressed; once the curves draw."""
    tab = open_app(browser, url, "train")
    for label, value in fields.items():
        tab.get_by_label(label, exact=True).fill(value)
        tab.get_by_label(label, exact=True).press("Tab")
    tab.get_by_role("button", name=re.compile("Start training")).click()
    tab.wait_for_selector(".js-plotly-plot", timeout=180_000)
    return tab


def nav_link(tab, path: str):
    """The sidebar's link to the page at URL path `path` ("sliders"), as a playwright locator."""
    return tab.locator(f'{NAV_LINKS}[href="{path}"]')


def open_app(browser, url: str, page: str = ""):
    """A new tab on the app (its root first, as a user arrives), then `page` by its sidebar link; idle."""
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(60_000)
    tab.goto(url)
    wait_for_app_idle(tab)
    if page:
        nav_link(tab, page).click()
        wait_for_app_idle(tab)
    return tab


# --- the latent pad alone ---------------------------------------------------------------------------

_MOUNT_JS = """async ([src, b64]) => {
    const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
    window.__pad = await import(url);
    window.__states = [];
    window.__latentPadPoints = {};  // the points a tab's pads remember across remounts: a new tab has none
    window.__mount = (b64) => window.__pad.default({
        data: Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)),
        parentElement: document.getElementById('host'),
        setStateValue: (name, value) => window.__states.push([name, value]),
    });
    window.__mount(b64);
    return true;
}"""
PAD_JS_STATE = "document.querySelector('.lp-root').latentPad"  # the mounted pad's object: stats, strokes, post


def mount_pad(page, payload: bytes, width: int) -> None:
    """The latent pad's module (vae.browser.pad.pad_js) in a fresh bare page, without Streamlit: imported from a
    blob URL and mounted as Streamlit mounts a v2 component (data, parentElement, setStateValue), in a host
    `width` CSS px wide, with `payload`. window.__mount(b64) hands it a new payload in place."""
    from vae.browser.pad import PAD_CSS, pad_js

    page.set_content(f"<style>body {{ margin: 20px; font-family: sans-serif; }}\n{PAD_CSS.read_text()}</style>"
                     f"<div id='host' style='width: {width}px'></div>")
    page.evaluate(_MOUNT_JS, [pad_js(), base64.b64encode(payload).decode()])
    page.wait_for_function(f"() => {PAD_JS_STATE} && {PAD_JS_STATE}.header !== null")
