"""Does the app hold up when a class connects? Students' sessions browse the Explore pages while a job
trains; a probe tab times a server round trip, and new tabs time how long Home and the latent pad take
to open, idle against under load.

    .venv/bin/python -m bench.load --sessions 30                    # a class: 30 sessions, 2 waves of 75 s
    .venv/bin/python -m bench.load --sessions 4 --duration 30 --waves 1 --no-write

The probe steps "First test image #" on Reconstructions (every step a rerun that encodes and decodes on the
server); every 15 s a new tab opens Home (until its decoded digits show) and then the Latent sliders page
(until the pad has drawn its first picture). A teacher tab trains a shapes job; each wave's students are
bench/st_wire.py sessions acting after random pauses (mean --think s). Counted: errors (target zero), the
probe's p50 under load over idle (target 2x), the pages' open times, the server's memory after each wave.
Written into the "## Many sessions while a job trains" section of docs/reliability.md.
"""
from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import (ROOT, VIEWPORT, chromium, machine_line, nav_link, open_app, replace_section, serve_app,
                           start_training, wait_for_app_idle)
from bench.st_wire import WireErrors, WireLoop, WireSession
from pages.ui.sitemap import PAGES

SECTION = "## Many sessions while a job trains"
RELIABILITY_MD = ROOT / "docs" / "reliability.md"
EXPLORE = [p.path for p in PAGES if p.tour]  # the Explore pages a student steps through
IMAGE = '[data-testid="stMain"] [data-testid="stImage"] img'  # the page's first picture
OPEN_EVERY_S = 15.0
MOVES_PER_PAGE = 4
TARGET = 2.0  # the probe's p50 under load at most twice its idle p50
JOB = "load-bench"
def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


class Probe:
    """A tab on Reconstructions, its "First test image #" focused, stepping up and down."""

    def __init__(self, browser, url: str):
        self.page = open_app(browser, url, "reconstructions")
        self.page.wait_for_selector(IMAGE)
        self.field = self.page.get_by_label("First test image #", exact=True)
        self.field.focus()
        self.steps = 0
        self._src = self.page.evaluate(f"() => document.querySelector('{IMAGE}').src")
        for _ in range(3):  # warm-up
            self.move()

    def move(self) -> float:
        """One step, turning every 20; ms to the new picture."""
        key = "ArrowUp" if (self.steps // 20) % 2 == 0 else "ArrowDown"
        self.steps += 1
        t0 = time.perf_counter()
        self.field.press(key)
        self.page.wait_for_function(f"(old) => {{ const i = document.querySelector('{IMAGE}'); return i && i.src !== old; }}",
                                    arg=self._src, timeout=30_000)
        ms = (time.perf_counter() - t0) * 1000
        self._src = self.page.evaluate(f"() => document.querySelector('{IMAGE}').src")
        wait_for_app_idle(self.page, settle=0.1)
        return ms


def open_times(browser, url: str) -> tuple[float, float]:
    """A new tab (a new session): ms until Home shows its decoded digits, then ms from the sidebar's link until
    the latent pad has drawn its first picture."""
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(60_000)
    try:
        t0 = time.perf_counter()
        tab.goto(url)
        tab.wait_for_function(f"() => {{ const i = document.querySelector('{IMAGE}'); return i && i.complete && "
                              "i.naturalWidth > 0; }")
        home = (time.perf_counter() - t0) * 1000
        wait_for_app_idle(tab, settle=0.1)
        t0 = time.perf_counter()
        nav_link(tab, "sliders").click()
        tab.wait_for_function("() => { const p = document.querySelector('.lp-root'); "
                              "return p && p.latentPad && p.latentPad.stats.draws > 0; }")
        return home, (time.perf_counter() - t0) * 1000
    finally:
        tab.close()


def run_wave(loop, server, browser, probe: Probe, n: int, duration: float, think: float, seed: int,
             errors: WireErrors) -> dict:
    sessions = [WireSession(server.url, EXPLORE[i % len(EXPLORE)], i, errors, EXPLORE) for i in range(n)]
    for s in sessions:
        loop.run(s.open(MOVES_PER_PAGE), 120)
    rng = random.Random(seed)
    futures = [loop.submit(s.browse(duration, think, random.Random(rng.random()), MOVES_PER_PAGE)) for s in sessions]
    t0, moves, opens, peak, next_open = time.monotonic(), [], [], 0.0, 0.0
    while time.monotonic() - t0 < duration:
        moves.append(probe.move())
        if time.monotonic() - t0 >= next_open:
            opens.append(open_times(browser, server.url))
            next_open += OPEN_EVERY_S
        peak = max(peak, rss_mb(server.process.pid))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
    for f in futures:
        f.result(60)
    for s in sessions:
        loop.run(s.settle(60), 90)
        loop.run(s.close(), 30)
    time.sleep(15)  # the closed sessions' state is let go
    return {"moves": moves, "opens": opens, "actions": sum(s.actions for s in sessions), "peak_mb": peak,
            "after_mb": rss_mb(server.process.pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="students per wave (default 10)")
    parser.add_argument("--duration", type=float, default=75, help="seconds of each wave (default 75)")
    parser.add_argument("--waves", type=int, default=2, help="waves of students that come and go (default 2)")
    parser.add_argument("--think", type=float, default=5.0, help="a student's mean pause between actions, s (default 5)")
    parser.add_argument("--moves", type=int, default=30, help="timed probe steps with the server idle (default 30)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args()
    errors, loop, t_start = WireErrors(), WireLoop(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vae-load-") as tmp, \
            serve_app(Path(tmp)) as server, chromium() as browser:
        probe = Probe(browser, server.url)
        idle = [probe.move() for _ in range(args.moves)]
        idle_opens = [open_times(browser, server.url) for _ in range(5)]
        print(f"idle: probe p50 {np.percentile(idle, 50):.0f} ms", flush=True)
        teacher = start_training(browser, server.url, {"Epochs": "1000", "Checkpoint name (optional)": JOB})
        waves = []
        for w in range(args.waves):
            waves.append(run_wave(loop, server, browser, probe, args.sessions, args.duration, args.think, w, errors))
            print(f"wave {w + 1}: {waves[-1]['actions']} actions, probe p50 {np.percentile(waves[-1]['moves'], 50):.0f} ms, "
                  f"RSS after {waves[-1]['after_mb']:.0f} MB", flush=True)
        boxes = [p.locator('[data-testid="stException"]').count() for p in (probe.page, teacher)]
        teacher.locator(".st-key-stop button").click()
        teacher.get_by_text(f"{JOB}: stopped").first.wait_for(timeout=60_000)
        tracebacks = server.tracebacks()
    loop.close()
    loaded = [m for w in waves for m in w["moves"]]
    loaded_opens = [o for w in waves for o in w["opens"]]
    opened = lambda rows, i: f"{np.percentile([r[i] for r in rows], 50):.0f} ms (max {max(r[i] for r in rows):.0f})"  # noqa: E731
    ratio = float(np.percentile(loaded, 50) / np.percentile(idle, 50))
    count = (len(errors.exceptions) + len(errors.broken_images) + len(errors.dropped) + len(errors.failed_static)
             + sum(boxes) + bool(tracebacks))
    section = "\n".join([
        SECTION, "",
        f"Reproduce: `.venv/bin/python -m bench.load --sessions {args.sessions} --duration {args.duration:g} --waves "
        f"{args.waves} --think {args.think:g} --moves {args.moves}` ({(time.monotonic() - t_start) / 60:.1f} minutes). "
        f"{machine_line()}. A shapes job training throughout; {args.waves} waves of {args.sessions} wire sessions "
        f"(bench/st_wire.py) acting after pauses of mean {args.think:g} s for {args.duration:g} s; the probe steps "
        "Reconstructions' first test image about once a second (a rerun that encodes and decodes on the server); every "
        f"{OPEN_EVERY_S:g} s a new tab opens Home and then the latent pad.", "",
        "| a new tab opens | Home (its decoded digits) p50 | the pad (its first picture) p50 | tabs |",
        "| --- | --- | --- | --- |",
        f"| idle (no job, no sessions) | {opened(idle_opens, 0)} | {opened(idle_opens, 1)} | {len(idle_opens)} |",
        f"| under load | {opened(loaded_opens, 0)} | {opened(loaded_opens, 1)} | {len(loaded_opens)} |", "",
        "| probe: step to new picture | p50 | p90 | moves |", "| --- | --- | --- | --- |",
        f"| idle (no job, no sessions) | {np.percentile(idle, 50):.0f} ms | {np.percentile(idle, 90):.0f} ms | {len(idle)} |",
        f"| under load | {np.percentile(loaded, 50):.0f} ms | {np.percentile(loaded, 90):.0f} ms | {len(loaded)} |", "",
        f"Under load / idle p50: **{ratio:.2f}x** (target <= {TARGET:g}x: {'met' if ratio <= TARGET else '**not met**'}). "
        f"Student actions: {', '.join(str(w['actions']) for w in waves)} per wave. Resident memory at each wave's peak "
        f"{', '.join(format(w['peak_mb'], '.0f') for w in waves)} MB, 15 s after its sessions closed "
        f"{', '.join(format(w['after_mb'], '.0f') for w in waves)} MB. Errors: **{count}** (exceptions "
        f"{len(errors.exceptions)}, broken images {len(errors.broken_images)}, dropped websockets {len(errors.dropped)}, "
        f"failed scripts {len(errors.failed_static)}, exception boxes {sum(boxes)}, server tracebacks {int(bool(tracebacks))}); "
        f"the job stopped cleanly.", ""])
    print(section)
    if not args.no_write:
        replace_section(section, RELIABILITY_MD)


if __name__ == "__main__":
    main()
