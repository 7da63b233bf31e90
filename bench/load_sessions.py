"""A class at once, on 127.0.0.1: N sessions browse the Explore pages and move their sliders while one
job trains, and a probe tab times slider-to-image against the same tab with the server idle.

    .venv/bin/python -m bench.load_sessions                        # 10 sessions, 2 waves of 75 s
    .venv/bin/python -m bench.load_sessions --clients browser      # the same, every session a Chromium tab
    .venv/bin/python -m bench.load_sessions --sessions 4 --duration 30 --waves 1 --no-write

One `streamlit run app.py` (the project's own settings, the shipped shapes model) and one headless
Chromium, driven from one thread with playwright's sync API:

1. Idle: a probe tab on /sliders, nothing else open, no job: --moves slider moves, timed as in
   bench/explore_latency.py (its SliderPage: keydown to the st.image <img> getting its new src, and to
   that image having loaded), kept only when other work on the machine stayed under 0.15 cores.
2. A teacher tab starts a shapes job on the Train page (1000 epochs, the form's other defaults) and
   stays there, its live view polling; the job trains through every wave and is stopped at the end.
3. Each wave opens --sessions sessions (each its own Streamlit session) on the four Explore pages; for
   --duration seconds each acts at a student's pace: after a pause drawn at random (exponential, mean
   --think seconds, so the sessions never act in step) it moves one of its page's sliders one step (a
   rerun) or, every few moves, goes to the next Explore page by its sidebar link, without waiting for
   the app. The probe makes one timed move about every PROBE_GAP_S seconds in between, so its moves land
   wherever the others' reruns happen to be. With --think 0 the sessions act back to back instead (a
   worst case). The sessions close at the end of the wave.

   --clients wire (the default): each session is a bench/st_wire.py WireSession, which speaks
   Streamlit's protocol as a tab does (it loads the page's scripts, opens the websocket, sends the
   reruns a tab sends, follows run_every fragments and fetches every image it is sent) but draws
   nothing: in a classroom every student's browser draws on the student's own laptop, and the server
   sees only this. --clients browser: each session is a tab (a browser context) of this machine's
   Chromium, so the server's two cores also draw all of the students' pages (a worst case).

Errors counted (the target is zero): exception boxes in any tab or session, uncaught page errors and
console errors (bench/ shares the e2e tests' filter: superseded-image 404s are counted apart, and an
image still shown broken is an error), a session's websocket dropping, tracebacks in the server's
output, and a job that does not end as "stopped". Resident memory (VmRSS of the streamlit process) is
read before the sessions, at each wave's peak and after its sessions close. The figures go into the
"## Many sessions while a job trains" section of docs/reliability.md (--clients browser: the section
after it).
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError

from bench.browser import (begin, chromium, ForeignLoad, measure_alone, new_page, open_app, serve, wait_for_app_idle)
from bench.explore_latency import SliderPage, percentile
from bench.report import ROOT, load_average, machine_line, replace_section
from bench.live_cpu_split import HZ, chromium_ticks, proc_ticks, server_ticks
from bench.st_wire import WireErrors, WireLoop, WireSession
from tests.e2e.conftest import _BROKEN_IMAGES_JS, ConsoleErrors, exception_texts

SECTION = "## Many sessions while a job trains"
BROWSER_SECTION = "## Many sessions while a job trains, every page drawn on the server too"
RELIABILITY_MD = ROOT / "docs" / "reliability.md"
EXPLORE = ["sliders", "manifold", "scatter", "reconstructions"]
SLIDERS = '[data-testid="stMain"] [data-testid="stSlider"] [role="slider"]'
MOVES_PER_PAGE = 4  # slider steps a session makes on a page before it clicks on to the next one
LATENCY_TARGET = 2.0  # under load / idle, p50
THINK_S = 5.0  # a student's mean pause between two actions (a slider step or a page change)
PROBE_GAP_S = 1.0  # between the probe's timed moves while the sessions browse at their pace
CHECK_EVERY_S = 5.0  # the tabs are checked for exception boxes this often during a wave
FLAT_MB = 50.0  # a later wave may leave at most this much more resident memory than the first
SETTLE_S = 15.0  # after a wave's tabs close, before memory is read
JOB_NAME = "load-bench"
MAIN_TEXT_JS = """() => { const m = document.querySelector('[data-testid="stMain"]'); return m ? m.innerText : ''; }"""


def rss_mb(pid: int) -> float:
    """Resident memory of one process, MB (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class Errors:
    """Everything that counts as an error, by kind, with the first few texts."""

    exceptions: set[str] = field(default_factory=set)
    broken_images: list[str] = field(default_factory=list)
    stalls: int = 0  # a tab that did not take a key or a click within 10 s (the driver's view, reported apart)

    def check(self, page, where: str) -> None:
        for text in exception_texts(page):
            self.exceptions.add(f"{where}: {text[:300]}")

    def check_images(self, page, where: str) -> None:
        self.broken_images += [f"{where}: {src}" for src in page.evaluate(_BROKEN_IMAGES_JS)]


class Session:
    """One student's tab: it walks the Explore pages by the sidebar links and moves the sliders it finds,
    one action per call, without waiting for the app (all the tabs share this one thread)."""

    def __init__(self, browser, url: str, index: int, console: ConsoleErrors):
        self.index, self.at = index, index % len(EXPLORE)
        self.page = new_page(browser)
        console.watch(self.page)
        # The root URL, as the class is given it, then the sidebar. (A deep link works too, but Streamlit's
        # frontend first looks for its server under the page's path: two 404s in the console, every browser.)
        open_app(self.page, url)
        self.page.locator(f'[data-testid="stSidebarNavLink"][href$="/{EXPLORE[self.at]}"]').click()
        wait_for_app_idle(self.page)
        self.moves, self.key, self.actions = MOVES_PER_PAGE, "ArrowRight", 0

    def act(self, errors: Errors) -> None:
        try:
            thumbs = self.page.locator(SLIDERS)
            count = thumbs.count()
            if self.moves > 0 and count:
                thumbs.nth(self.moves % count).press(self.key, timeout=10_000)
                self.moves -= 1
            else:  # read the page a moment (no slider here), or done with its sliders: on to the next one
                self.at = (self.at + 1) % len(EXPLORE)
                link = self.page.locator(f'[data-testid="stSidebarNavLink"][href$="/{EXPLORE[self.at]}"]')
                link.click(timeout=10_000)
                self.moves = MOVES_PER_PAGE
                self.key = "ArrowLeft" if self.key == "ArrowRight" else "ArrowRight"
            self.actions += 1
        except PlaywrightError:  # a timeout: the tab was busy redrawing; the next round tries again
            errors.stalls += 1

    def where(self) -> str:
        return f"session {self.index + 1} /{EXPLORE[self.at]}"


def start_job(browser, url: str, console: ConsoleErrors):
    """The teacher's tab: Start on the Train page (shapes, 1000 epochs, the form's defaults otherwise),
    left open on its live view. Returns the page once the job has published its first curves."""
    page = new_page(browser)
    console.watch(page)
    open_app(page, url)
    page.locator('[data-testid="stSidebarNavLink"][href$="/train"]').click()
    wait_for_app_idle(page)
    for label, value in (("Epochs", "1000"), ("Checkpoint name (optional)", JOB_NAME)):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
    page.get_by_role("button", name=re.compile("Start training")).click()
    deadline = time.monotonic() + 180
    while f"{JOB_NAME}: running" not in page.evaluate(MAIN_TEXT_JS) or not page.locator(".js-plotly-plot").count():
        if time.monotonic() > deadline:
            raise SystemExit(f"the job did not start within 180 s; the Train page says "
                             f"{page.evaluate(MAIN_TEXT_JS)[:500]!r}")
        page.wait_for_timeout(500)
    return page


def job_progress(page) -> tuple[int, float]:
    """(epochs done, samples/s) from the Train page's progress line."""
    text = page.evaluate(MAIN_TEXT_JS)
    epoch = re.search(r"epoch (\d+)/1000", text)
    rate = re.search(r"([\d,]+) samples/s", text)
    return (int(epoch.group(1)) - 1 if epoch else -1), (float(rate.group(1).replace(",", "")) if rate else float("nan"))


def stop_job(page) -> str:
    """Presses Stop and returns the status line the page then shows."""
    page.get_by_role("button", name="Stop").click()
    deadline = time.monotonic() + 60
    while True:
        text = page.evaluate(MAIN_TEXT_JS)
        for status in ("stopped", "failed", "finished"):
            if f"{JOB_NAME}: {status}" in text:
                return status
        if time.monotonic() > deadline:
            return f"still running after Stop: {text[:200]!r}"
        page.wait_for_timeout(500)


@dataclass
class Wave:
    sessions: int
    seconds: float = 0.0
    actions: int = 0
    rounds: int = 0
    peak_mb: float = 0.0
    after_mb: float = float("nan")
    foreign: float = float("nan")
    epochs: tuple[int, int] = (0, 0)
    samples_per_sec: float = float("nan")
    probe: list[dict] = field(default_factory=list)
    images: int = 0  # images the wire sessions fetched
    assets: int = 0  # scripts and style sheets a wire session fetched on opening
    chunks: list = field(default_factory=list)  # the element chunks the wire sessions loaded (PlotlyChart, ...)
    cores: dict = field(default_factory=dict)  # while the sessions acted: server's page work, the job, Chromium


class CpuSplit:
    """Cores used over a stretch of time by the server's own work (exited script threads included: the
    process's total less the job's threads), the training job (its threads, named vae-train: the
    training thread and its OpenMP workers) and Chromium (all its processes)."""

    def __init__(self, pid: int):
        self.pid = pid

    def _read(self) -> tuple[int, int, int]:
        total = proc_ticks(f"/proc/{self.pid}/stat")
        _, job = server_ticks(self.pid)
        return total - job, job, chromium_ticks()

    def __enter__(self):
        self.t0, self.start = time.monotonic(), self._read()
        return self

    def __exit__(self, *exc):
        seconds = max(time.monotonic() - self.t0, 1e-3) * HZ
        end = self._read()
        self.cores = {k: (b - a) / seconds for k, a, b in zip(("server", "job", "chromium"), self.start, end)}
        return False


def browse(sessions: list[Session], probe: SliderPage, duration: float, think: float, seed: int, errors: Errors,
           wave: Wave, pid: int) -> None:
    """duration seconds of the sessions acting and the probe moving (see the module's docstring, step 3)."""
    rng = random.Random(seed)
    t0 = last_check = time.monotonic()
    due = [t0 + rng.expovariate(1.0 / think) for _ in sessions] if think > 0 else []
    next_probe = t0 + PROBE_GAP_S
    while time.monotonic() - t0 < duration:
        if think > 0:
            for i, s in enumerate(sessions):
                now = time.monotonic()
                if due[i] <= now:
                    s.act(errors)
                    due[i] = now + rng.expovariate(1.0 / think)
        else:  # back to back, the probe right behind each round
            for s in sessions:
                s.act(errors)
            next_probe = time.monotonic()
        wave.rounds += 1
        wave.peak_mb = max(wave.peak_mb, rss_mb(pid))
        if time.monotonic() >= next_probe:
            wave.probe.append(probe.move())
            next_probe = time.monotonic() + PROBE_GAP_S
        if time.monotonic() - last_check >= CHECK_EVERY_S:
            for s in sessions:
                errors.check(s.page, s.where())
            last_check = time.monotonic()
        wait = min(due + [next_probe]) - time.monotonic() if think > 0 else 0
        if wait > 0:
            time.sleep(min(wait, 0.05))


def run_wave(browser, server, probe: SliderPage, teacher, n: int, duration: float, think: float, seed: int,
             errors: Errors, console: ConsoleErrors) -> Wave:
    pid, wave = server.process.pid, Wave(n)
    epoch_start, _ = job_progress(teacher)
    sessions = []
    with ForeignLoad() as foreign:
        for i in range(n):
            sessions.append(Session(browser, server.url, i, console))
            wave.peak_mb = max(wave.peak_mb, rss_mb(pid))
        print(f"  {n} sessions open; RSS {rss_mb(pid):.0f} MB", flush=True)
        t0 = time.monotonic()
        with CpuSplit(pid) as split:
            browse(sessions, probe, duration, think, seed, errors, wave, pid)
        wave.seconds, wave.cores = time.monotonic() - t0, split.cores
    wave.foreign = foreign.cores
    wave.actions = sum(s.actions for s in sessions)
    epoch_end, wave.samples_per_sec = job_progress(teacher)
    wave.epochs = (epoch_start, epoch_end)
    for s in sessions:  # each tab settles, then nothing may be broken on it
        wait_for_app_idle(s.page, timeout=120)
        errors.check(s.page, s.where())
        errors.check_images(s.page, s.where())
    console.media_404.clear()
    for s in sessions:
        s.page.context.close()
    time.sleep(SETTLE_S)
    wave.after_mb = rss_mb(pid)
    return wave


def probe_while(probe: SliderPage, duration: float, wave: Wave, pid: int) -> None:
    """The probe's timed moves, one about every PROBE_GAP_S seconds, for duration seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration:
        wave.peak_mb = max(wave.peak_mb, rss_mb(pid))
        wave.probe.append(probe.move())
        wave.rounds += 1
        pause = t0 + PROBE_GAP_S * wave.rounds - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def run_wire_wave(loop: WireLoop, server, probe: SliderPage, teacher, n: int, duration: float, think: float,
                  seed: int, wire_errors: WireErrors) -> Wave:
    """A wave of n wire sessions (bench/st_wire.py: the protocol a tab speaks, without the drawing), each opened
    on an Explore page as a new tab is, then acting at a student's pace for duration seconds while the probe
    makes its timed moves."""
    pid, wave = server.process.pid, Wave(n)
    epoch_start, _ = job_progress(teacher)
    sessions = [WireSession(server.url, EXPLORE[i % len(EXPLORE)], i, wire_errors, EXPLORE) for i in range(n)]
    with ForeignLoad() as foreign:
        for s in sessions:
            loop.run(s.open(MOVES_PER_PAGE), 120)
            wave.peak_mb = max(wave.peak_mb, rss_mb(pid))
        print(f"  {n} sessions open; RSS {rss_mb(pid):.0f} MB", flush=True)
        t0 = time.monotonic()
        rng = random.Random(seed)
        with CpuSplit(pid) as split:
            futures = [loop.submit(s.browse(duration, think, random.Random(rng.random()), MOVES_PER_PAGE))
                       for s in sessions]
            probe_while(probe, duration, wave, pid)
            for f in futures:
                f.result(60)
        wave.seconds, wave.cores = time.monotonic() - t0, split.cores
    wave.foreign = foreign.cores
    wave.actions = sum(s.actions for s in sessions)
    wave.images = sum(s.images_fetched for s in sessions)
    wave.assets = max(s.page_assets for s in sessions)
    wave.chunks = sorted({a.rsplit('/', 1)[-1].split('.')[0] for s in sessions for a in s.assets[s.page_assets:]})
    epoch_end, wave.samples_per_sec = job_progress(teacher)
    wave.epochs = (epoch_start, epoch_end)
    for s in sessions:
        loop.run(s.settle(60), 90)
        loop.run(s.close(), 30)
    time.sleep(SETTLE_S)
    wave.after_mb = rss_mb(pid)
    return wave


def latency(samples: list[dict], key: str) -> tuple[float, float]:
    values = [s[key] for s in samples]
    return percentile(values, 50), percentile(values, 90)


def idle_moves(probe: SliderPage, moves: int) -> tuple[list[dict], float, int]:
    """The probe's moves with nothing else going on, in blocks of 5 kept only while the machine is quiet."""
    samples, foreign, thrown = [], 0.0, 0
    while len(samples) < moves:
        block, cores, t = measure_alone(lambda: [probe.move() for _ in range(min(5, moves - len(samples)))],
                                        "idle slider moves", retries=2, quiet_wait_s=120)
        samples += block
        foreign, thrown = max(foreign, cores), thrown + t
    return samples, foreign, thrown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="browser sessions per wave (default 10)")
    parser.add_argument("--duration", type=float, default=75, help="seconds of load per wave (default 75)")
    parser.add_argument("--waves", type=int, default=2, help="waves of sessions that come and go (default 2)")
    parser.add_argument("--think", type=float, default=THINK_S, metavar="S",
                        help=f"a session's mean pause between actions, seconds (default {THINK_S:g}); 0: back to back, "
                             "the probe right behind each round (a worst case)")
    parser.add_argument("--moves", type=int, default=30, help="timed slider moves with the server idle (default 30)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="first wait up to S seconds for the CPUs to be idle (a shared machine)")
    parser.add_argument("--clients", choices=("wire", "browser"), default="wire",
                        help="wire (default): each session speaks Streamlit's protocol as a tab does, its drawing left "
                             "to the student's own machine (bench/st_wire.py); browser: each session is a tab in this "
                             "machine's Chromium too, so the server also draws every student's page")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args(argv)
    load_start = begin(args)
    t_start = time.monotonic()
    console, errors, wire_errors = ConsoleErrors(), Errors(), WireErrors()
    loop = WireLoop() if args.clients == "wire" else None
    # The sliders page draws on the server (VAE_BROWSER_DECODE=0), as before the latent pad: every slider step is a
    # rerun, the heavier case for the server, and the probe times that round trip.
    server_sliders = {"VAE_BROWSER_DECODE": "0"}
    with tempfile.TemporaryDirectory(prefix="vae-load-bench-") as tmp, \
            serve(ROOT / "app.py", Path(tmp), "app", env=server_sliders) as server, chromium() as browser:
        pid = server.process.pid
        mem = {"server started": rss_mb(pid)}
        # It opens /sliders by URL (watched from here on) and stays within z1 in [-2, 2]: over a long run it would
        # otherwise reach the slider's end, where two neighbouring points can decode to the same picture.
        probe = SliderPage(browser, server.url, "sliders", "probe", turn_at=2.0)
        console.watch(probe.page)
        for _ in range(3):
            probe.move()  # warm-up
        idle, idle_foreign, idle_thrown = idle_moves(probe, args.moves)
        mem["probe open, idle"] = rss_mb(pid)
        print(f"idle: new src p50 {latency(idle, 'src')[0]:.0f} ms, image loaded p50 {latency(idle, 'load')[0]:.0f} ms",
              flush=True)
        teacher = start_job(browser, server.url, console)
        time.sleep(5)
        mem["job running, before the sessions"] = rss_mb(pid)
        waves = []
        for w in range(args.waves):
            print(f"wave {w + 1}: opening {args.sessions} sessions", flush=True)
            if loop is not None:
                wave = run_wire_wave(loop, server, probe, teacher, args.sessions, args.duration, args.think, w,
                                     wire_errors)
            else:
                wave = run_wave(browser, server, probe, teacher, args.sessions, args.duration, args.think, w, errors,
                                console)
            waves.append(wave)
            mem[f"wave {w + 1}: peak"] = wave.peak_mb
            mem[f"wave {w + 1}: {SETTLE_S:.0f} s after its tabs closed"] = wave.after_mb
            print(f"wave {w + 1}: {wave.actions} actions in {wave.seconds:.0f} s, cores "
                  f"{', '.join(f'{k} {v:.2f}' for k, v in wave.cores.items())}, probe new src p50 "
                  f"{latency(wave.probe, 'src')[0]:.0f} ms; RSS peak {wave.peak_mb:.0f} MB, after {wave.after_mb:.0f} MB",
                  flush=True)
        errors.check(teacher, "teacher /train")
        errors.check(probe.page, "probe /sliders")
        errors.check_images(probe.page, "probe /sliders")
        status = stop_job(teacher)
        time.sleep(SETTLE_S)
        mem["job stopped"] = rss_mb(pid)
        tracebacks = server.tracebacks()
    if loop is not None:
        loop.close()
    elapsed = time.monotonic() - t_start
    errors.exceptions.update(wire_errors.exceptions)
    errors.broken_images += wire_errors.broken_images

    loaded = [m for w in waves for m in w.probe]
    rows = {"idle (probe alone, no job)": idle, "under load (probe while the sessions browse and the job trains)": loaded}
    ratios = {key: latency(loaded, key)[0] / latency(idle, key)[0] for key in ("src", "load")}
    ratios90 = {key: latency(loaded, key)[1] / latency(idle, key)[1] for key in ("src", "load")}
    n_errors = (len(errors.exceptions) + len(errors.broken_images) + len(console.messages) + bool(tracebacks)
                + len(wire_errors.dropped) + len(wire_errors.failed_static) + (status != "stopped"))
    growth = max(w.after_mb for w in waves[1:]) - waves[0].after_mb if len(waves) > 1 else float("nan")

    def word(ok: bool) -> str:
        return "**PASS**" if ok else "**FAIL**"

    print(f"errors {n_errors}; latency p50 ratio new src {ratios['src']:.2f}, image loaded {ratios['load']:.2f}; "
          f"memory {', '.join(f'{k} {v:.0f} MB' for k, v in mem.items())}; {elapsed:.0f} s in all", flush=True)
    for text in (sorted(errors.exceptions)[:5] + errors.broken_images[:5] + console.messages[:5] + wire_errors.dropped[:5]
                 + wire_errors.failed_static[:5]):
        print(f"  error: {text}", flush=True)
    if tracebacks:
        print(f"  server traceback: {tracebacks[:1500]}", flush=True)
    if args.no_write:
        return 0 if n_errors == 0 else 1

    actions = sum(w.actions for w in waves)
    seconds = sum(w.seconds for w in waves)
    wire = args.clients == "wire"
    section = SECTION if wire else BROWSER_SECTION
    who = (f"The server, the teacher's and the probe's Chromium tabs and the {args.sessions} wire sessions share this "
           f"machine's CPUs; the students' pages are drawn on their own machines, as in a classroom." if wire else
           f"The server, the browser and its {args.sessions + 2} tabs share this machine's CPUs: every student's page "
           f"is drawn here too, on the server's two cores (a worst case; a classroom has a browser per student).")
    sessions_are = (
        f"{args.sessions} wire sessions (`bench/st_wire.py`: a tab without the drawing; each opens as a new tab does, "
        f"GET / and the {max(w.assets for w in waves)} scripts and style sheets it names, then the websocket; like a tab it "
        f"loads an element's code the first time it is shown one ({', '.join(sorted({c for w in waves for c in w.chunks}))}), "
        f"and fetches every image it is sent from /media/)" if wire else f"{args.sessions} sessions (a browser context each)")
    lines = [
        section,
        "",
        f"Measured {machine_line()}; load average at the start {load_start}. {who}",
        "",
        f"Reproduce: `.venv/bin/python -m bench.load_sessions --sessions {args.sessions} --duration {args.duration:g} "
        f"--waves {args.waves} --moves {args.moves} --think {args.think:g} --clients {args.clients}` "
        f"({elapsed / 60:.1f} minutes). `streamlit run app.py` with the "
        "project's .streamlit/config.toml and the shipped shapes model; one headless Chromium driven from one thread. "
        f"A teacher tab starts a shapes job on the Train page (1000 epochs, the form's defaults) and watches its live "
        f"view; then {args.waves} waves of {sessions_are} open on the four Explore "
        f"pages and, for {args.duration:g} s, act: one slider step (a rerun), or every {MOVES_PER_PAGE} steps a click "
        f"on the sidebar link to the next Explore page, without waiting for the app. " + (
            f"Each session acts at a student's pace, after a random pause (exponential, mean {args.think:g} s, so the "
            f"sessions never act in step), and a probe tab on /sliders makes one timed move about every {PROBE_GAP_S:g} s "
            f"in between, landing wherever the others' reruns happen to be." if args.think > 0 else
            "The sessions act back to back, and after each round a probe tab on /sliders makes one timed move, right "
            "behind all of their reruns every time (the worst case).") +
        " The sessions close at the end of each wave; the job is stopped at the end.",
        "",
        "**Errors** (target: zero)",
        "",
        "| kind | count |",
        "| --- | --- |",
        f"| exception boxes in any tab or session | {len(errors.exceptions)} |",
        f"| uncaught page errors and console errors (the browser's tabs) | {len(console.messages)} |",
        f"| images still shown broken when a wave ended | {len(errors.broken_images)} |",
    ] + ([f"| sessions whose websocket dropped | {len(wire_errors.dropped)} |",
          f"| scripts that did not load | {len(wire_errors.failed_static)} |"] if wire else []) + [
        f"| tracebacks in the server's output | {int(bool(tracebacks))} |",
        f"| job status after Stop | {status} |",
        "",
        f"Total: **{n_errors}** {word(n_errors == 0)}. " + (
            f"The sessions acted {actions:,} times ({actions / max(seconds, 1):.1f} actions a second over {seconds:.0f} s "
            f"of load) and fetched {sum(w.images for w in waves):,} images; {wire_errors.superseded_images} fetches "
            f"found an image a newer rerun had already replaced (not counted: a browser's tab sees the same)."
            if wire else
            f"For the record, not counted: the driver found a tab too busy to "
            f"take a key or a click within 10 s {errors.stalls} times in {actions:,} actions "
            f"({actions / max(seconds, 1):.1f} actions a second over {seconds:.0f} s of load)."),
        "",
        "**Where the CPU went** while the sessions acted (cores; 2 on this machine): " + "; ".join(
            f"wave {i + 1}: the server's page work {w.cores.get('server', float('nan')):.2f}, the training job "
            f"{w.cores.get('job', float('nan')):.2f}, Chromium {w.cores.get('chromium', float('nan')):.2f}"
            for i, w in enumerate(waves)) + ".",
        "",
        "**Slider to image** on the probe tab (/sliders, shapes model), ms: new src = keydown to the `st.image` "
        "`<img>` getting its new src; image loaded = to that image decoded (what the eye sees).",
        "",
        "| when | moves | new src p50 | new src p90 | image loaded p50 | image loaded p90 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, samples in rows.items():
        (s50, s90), (l50, l90) = latency(samples, "src"), latency(samples, "load")
        lines.append(f"| {label} | {len(samples)} | {s50:.0f} | {s90:.0f} | {l50:.0f} | {l90:.0f} |")
    lines += [
        "",
        f"Under load / idle, p50: new src **{ratios['src']:.2f}x**, image loaded **{ratios['load']:.2f}x** "
        f"(target ≤ {LATENCY_TARGET:g}x: {word(max(ratios.values()) <= LATENCY_TARGET)}); p90: new src "
        f"{ratios90['src']:.2f}x, image loaded {ratios90['load']:.2f}x. Idle moves were kept only while other work "
        f"took under 0.15 cores (at most {idle_foreign:.2f}; {idle_thrown} blocks measured again).",
        "",
        "**Resident memory** of the streamlit process (VmRSS):",
        "",
        "| moment | MB |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v:.0f} |" for k, v in mem.items()]
    flat = "" if len(waves) < 2 else (
        f" A later wave left {growth:+.0f} MB against the first (target: at most {FLAT_MB:g} MB more, memory flat as "
        f"sessions come and go: {word(growth <= FLAT_MB)}).")
    lines += [
        "",
        f"Streamlit keeps a closed tab's session up to 2 minutes for a reconnect (server.disconnectedSessionTTL, at most "
        f"128), and Python keeps freed memory for reuse, so memory after a wave is not memory before it.{flat}",
        "",
        "**The job meanwhile** (epochs done when the wave's tabs began to open and when its load ended; the Train "
        "page's samples/s reading then, which covers its last few logged steps): " + "; ".join(
            f"wave {i + 1}: epochs {w.epochs[0]} to {w.epochs[1]}, {w.samples_per_sec:,.0f} samples/s; other work on "
            f"the machine {w.foreign:.2f} cores" for i, w in enumerate(waves)) + ".",
    ]
    replace_section("\n".join(lines) + "\n", RELIABILITY_MD)
    print(f"wrote {section!r} into docs/reliability.md (load average now {load_average()})")
    return 0 if n_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
