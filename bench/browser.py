"""What the browser benchmarks share: a `streamlit run` server and Debian's headless chromium, outside
pytest. Built from the e2e fixtures' own pieces (tests/e2e/conftest.py: free_port, _health, _stop,
AppServer, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, wait_for_app_idle), so a server here starts, answers
and stops exactly as it does in the browser tests.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.report import ROOT, load_average
from tests.e2e.conftest import (CHROMIUM, CHROMIUM_ARGS, DEFAULT_SHAPES, HEALTH_TIMEOUT, VIEWPORT, AppServer, _health,
                                _stop, free_port, missing_requirement, wait_for_app_idle)

__all__ = ["app_folders", "serve", "chromium", "new_context", "new_page", "open_app", "wait_for_app_idle", "check_load", "wait_for_quiet", "exit_on_sigterm", "add_common_arguments", "ForeignLoad", "measure_alone", "streamlit_options", "set_args", "options_line"]


def app_folders(base: Path) -> tuple[Path, Path]:
    """base/checkpoints (holding a copy of the shipped shapes model) and base/data: the app's two folders."""
    checkpoints, data = base / "checkpoints", base / "data"
    checkpoints.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    if not DEFAULT_SHAPES.exists():
        raise SystemExit(f"{DEFAULT_SHAPES} is missing: the benchmarks open the shipped shapes model")
    shutil.copy2(DEFAULT_SHAPES, checkpoints / DEFAULT_SHAPES.name)
    return checkpoints, data


@contextlib.contextmanager
def serve(script: Path, base: Path, name: str = "app", options: dict[str, str] | None = None,
          env: dict[str, str] | None = None):
    """`streamlit run SCRIPT` from the repository root (so .streamlit/config.toml applies) on a free
    127.0.0.1 port, with VAE_CHECKPOINT_DIR and VAE_DATA_DIR under base; yields the AppServer and
    stops the server on the way out, whatever happens. Output goes to base/NAME.log. options: more
    Streamlit config options for this server, e.g. {"runner.postScriptGC": "false"}; env: more
    environment variables for it, e.g. {"VAE_TRAIN_NICE": "10"}."""
    checkpoints, data = app_folders(base)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, **(env or {}), VAE_CHECKPOINT_DIR=str(checkpoints), VAE_DATA_DIR=str(data),
               PYTHONUNBUFFERED="1")
    log_path = base / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none",
             *[arg for key, value in (options or {}).items() for arg in (f"--{key}", value)]],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    server = AppServer(url, process, log_path, checkpoints, data)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while _health(url) != "ok":
            if process.poll() is not None:
                raise SystemExit(f"{name}: streamlit exited with code {process.returncode}:\n{server.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: no ok from {url}/_stcore/health in {HEALTH_TIMEOUT:.0f} s:\n"
                                 f"{server.log()[-3000:]}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def chromium():
    """Debian's chromium, headless, through the playwright package; closed on the way out."""
    reason = missing_requirement()
    if reason:
        raise SystemExit(f"cannot run the browser benchmark: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser):
    """A browser context (its own cache and cookies) at the e2e tests' window size."""
    return browser.new_context(viewport=VIEWPORT)


def new_page(target, timeout_s: float = 60.0):
    """A new tab (its own Streamlit session): in a new context of its own when target is the browser
    (closing page.context then closes both), or in target when it is a context, sharing its cache."""
    context = new_context(target) if hasattr(target, "new_context") else target
    page = context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    return page


def open_app(page, url: str) -> None:
    """Goes to url and waits until the app is drawn and idle."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    wait_for_app_idle(page)


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (parent pid, CPU jiffies used by it and its exited children, name)} of every process now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        table[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]), comm)  # utime stime cutime cstime
    return table


def descendants(root: int, table: dict[int, tuple[int, int, str]]) -> list[int]:
    """The processes under root in a process_table(), root not included."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _ticks, _comm) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _own_cpu_ticks() -> int:
    """CPU jiffies used so far by this process and every process under it (servers, the browser, a
    CLI run), the ones that already exited included (their parent's cutime/cstime)."""
    table = process_table()
    return sum(table[pid][1] for pid in [os.getpid(), *descendants(os.getpid(), table)] if pid in table)


class ForeignLoad:
    """How much CPU other work on the machine took while a measurement ran, in cores (1.0 = one core
    fully busy the whole time): the machine's busy time less this process tree's.

        with ForeignLoad() as foreign: ...measure...
        foreign.cores
    """

    def __enter__(self):
        self.cores = float("nan")
        try:
            self._busy, self._total = _cpu_times()
            self._own = _own_cpu_ticks()
            self._t = time.monotonic()
        except (OSError, ValueError, IndexError):
            self._t = None
        return self

    def __exit__(self, *exc):
        if self._t is not None:
            try:
                busy, _ = _cpu_times()
                own = _own_cpu_ticks()
                seconds = (time.monotonic() - self._t) * os.sysconf("SC_CLK_TCK")
                self.cores = max(0.0, (busy - self._busy) - (own - self._own)) / max(seconds, 1.0)
            except (OSError, ValueError, IndexError):
                pass
        return False


FOREIGN_LIMIT = 0.15  # cores of other work tolerated during one measurement


def measure_alone(fn, what: str, retries: int = 3, limit: float = FOREIGN_LIMIT, quiet_wait_s: float = float(os.environ.get("BENCH_QUIET_WAIT", 600))):
    """fn() under ForeignLoad; when other work took more than `limit` cores meanwhile, waits for the
    machine to be quiet and measures again (up to `retries` more times; the last try is kept anyway).
    Returns (fn's result, the foreign cores during the try kept, how many tries were thrown away)."""
    thrown = 0
    while True:
        with ForeignLoad() as foreign:
            result = fn()
        if not foreign.cores > limit or thrown >= retries:
            if foreign.cores > limit:
                print(f"warning: {what}: other work took {foreign.cores:.2f} cores during it; kept anyway after "
                      f"{thrown} retries", file=sys.stderr, flush=True)
            return result, foreign.cores, thrown
        thrown += 1
        print(f"{what}: other work took {foreign.cores:.2f} cores during it (limit {limit}); measuring again "
              f"once the machine is quiet", flush=True)
        wait_for_quiet(quiet_wait_s)


def wait_for_quiet(max_wait_s: float, busy_below: float = 0.10, window_s: float = 4.0) -> float | None:
    """Waits (up to max_wait_s) until the CPUs were less than busy_below busy over window_s, so a
    measurement does not start in the middle of someone else's job; returns the busy fraction seen
    last, or None without /proc/stat. Prints what it waits for."""
    deadline = time.monotonic() + max_wait_s
    said = False
    while True:
        try:
            b0, t0 = _cpu_times()
            time.sleep(window_s)
            b1, t1 = _cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        busy = (b1 - b0) / max(t1 - t0, 1)
        if busy < busy_below or time.monotonic() > deadline:
            if said or busy >= busy_below:
                print(f"CPUs {busy:.0%} busy: {'starting' if busy < busy_below else 'starting anyway'}", flush=True)
            return busy
        if not said:
            print(f"CPUs {busy:.0%} busy: waiting up to {max_wait_s:.0f} s for them to be quiet", flush=True)
            said = True


def add_common_arguments(parser) -> None:
    """--wait-quiet, --set and --no-write, which the benchmarks writing docs/benchmarks.md all take."""
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="first wait up to S seconds for the CPUs to be idle (a shared machine)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a Streamlit config option for the project's server, to measure a change, "
                             "e.g. --set runner.postScriptGC=true (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")


def begin(args) -> str:
    """What a benchmark taking add_common_arguments does first: SIGTERM ends it cleanly, it waits up to
    --wait-quiet seconds for the CPUs to be idle, then prints (and returns) the load average it starts at,
    warning when other work is running."""
    exit_on_sigterm()
    if args.wait_quiet > 0:
        wait_for_quiet(args.wait_quiet)
    load_start = check_load("at the start")
    print(f"load average at the start: {load_start}", flush=True)
    return load_start


def streamlit_options(pairs: list[str]) -> dict[str, str]:
    """--set KEY=VALUE arguments as a dict of Streamlit config options."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set takes KEY=VALUE (a Streamlit config option), not {pair!r}")
        options[key.strip()] = value.strip()
    return options


def set_args(options: dict[str, str]) -> str:
    """The --set arguments that give these options back (for a Reproduce line)."""
    return "".join(f" --set {key}={value}" for key, value in options.items())


def options_line(options: dict[str, str]) -> str:
    """A sentence for the report saying which Streamlit options the project's server ran with."""
    if not options:
        return "The project's server ran with its own settings (.streamlit/config.toml), nothing changed."
    return ("**The project's server ran with changed settings:** "
            + ", ".join(f"`{key} = {value}`" for key, value in options.items()) + ".")


def exit_on_sigterm() -> None:
    """SIGTERM (e.g. `timeout`, or kill PID) ends the benchmark through SystemExit, so its finally blocks
    stop the servers and the browser."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def check_load(what: str) -> str:
    """The 1-minute load average now; warns (stderr) when other work is running on this machine."""
    load = load_average()
    try:
        one = float(load.split()[0])
    except (ValueError, IndexError):
        return load
    if one > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load} {what} on {os.cpu_count()} cores: something else is running, "
              f"the figures will be noisy", file=sys.stderr, flush=True)
    return load
