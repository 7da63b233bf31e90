"""Where the CPU goes while a job trains with the Train page open: the browser, the server, the job.

    .venv/bin/python -m bench.live_cpu_split                 # 2 rounds of 20 s windows
    .venv/bin/python -m bench.live_cpu_split --rounds 3 --window 30

A diagnostic beside bench/live_training.py, which measures the ratio the issue judges. One server
(`streamlit run app.py`), one headless Chromium: a shapes job (300 epochs, the Train form's other
defaults, as bench/live_training.py sets them) is started from the Train page; then windows
alternate between the Train page open and polling, and the same tab on about:blank (the reference:
the job alone). For each window: the cores Chromium's processes used, the cores the server's
own threads used (Streamlit, the page scripts) and those the job's threads used (the training
thread and its OpenMP workers, named vae-train, see vae/jobs.py), read from /proc; and the median samples/s of the epochs
finished inside the window, from the job's autosaved checkpoint. The figures go into the
"## Where live training's CPU goes (browser)" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.browser import add_common_arguments, chromium, exit_on_sigterm, new_page, open_app, serve, streamlit_options, \
    wait_for_quiet
from bench.live_training import BATCH, LR, epoch_rates, start_from_train_page
from bench.report import ROOT, machine_line, median, replace_section
from vae.threads import TRAINING_THREAD_NAME

SECTION = "## Where live training's CPU goes (browser)"
JOB = "cpu-split"
EPOCHS = 300  # more than the windows can finish
HZ = os.sysconf("SC_CLK_TCK")


def proc_ticks(stat_path: str) -> int:
    """utime + stime of a process or thread, in clock ticks."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def chromium_ticks() -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if "chrom" in f.read():
                        total += proc_ticks(f"/proc/{entry}/stat")
            except OSError:
                pass  # it exited meanwhile
    return total


def server_ticks(pid: int) -> tuple[int, int]:
    """(the server's own threads, the training job's threads: named TRAINING_THREAD_NAME, the training
    thread and the OpenMP workers it started) of the server; a thread that exited is lost, which is why
    the windows start with the job already running."""
    plain = job = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            t = proc_ticks(f"/proc/{pid}/task/{tid}/stat")
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name == TRAINING_THREAD_NAME:
            job += t
        else:
            plain += t
    return plain, job


def window(label: str, pid: int, checkpoint: Path, seconds: float) -> dict:
    done = len(_rates(checkpoint))
    c0, (p0, n0), t0 = chromium_ticks(), server_ticks(pid), time.monotonic()
    time.sleep(seconds)
    c1, (p1, n1), t1 = chromium_ticks(), server_ticks(pid), time.monotonic()
    rates = _rates(checkpoint)[done + 1:]  # epochs begun and ended inside the window
    jiffies = (t1 - t0) * HZ
    row = {"label": label, "chromium": (c1 - c0) / jiffies, "server": (p1 - p0) / jiffies,
           "job": (n1 - n0) / jiffies, "epochs": len(rates), "rate": median(rates) if rates else float("nan")}
    print(f"{label:28s} {row['epochs']:2d} epochs, median {row['rate']:,.0f} samples/s; cores: Chromium "
          f"{row['chromium']:.2f}, server {row['server']:.2f}, job {row['job']:.2f}", flush=True)
    return row


def _rates(checkpoint: Path) -> list[float]:
    try:
        return epoch_rates(checkpoint)
    except Exception:  # not written yet, or being replaced this instant
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="open/closed window pairs (default 2)")
    parser.add_argument("--window", type=float, default=20, help="seconds per window (default 20)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.wait_quiet > 0:
        wait_for_quiet(args.wait_quiet)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vae-cpu-split-") as tmp, \
            serve(ROOT / "app.py", Path(tmp) / "app", "app", streamlit_options(args.set)) as server, \
            chromium() as browser:
        page = new_page(browser)
        start_from_train_page(page, server, EPOCHS, JOB)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        checkpoint = server.checkpoint_dir / f"{JOB}.pt"
        time.sleep(5)
        for _ in range(args.rounds):
            rows.append(window("Train page open, polling", server.process.pid, checkpoint, args.window))
            page.goto("about:blank")
            time.sleep(2)
            rows.append(window("tab on about:blank", server.process.pid, checkpoint, args.window))
            open_app(page, f"{server.url}/train")
            page.wait_for_selector(".js-plotly-plot", timeout=120_000)
            time.sleep(3)
        if page.locator('[data-testid="stException"]').count():
            raise SystemExit("an exception box is on the Train page")
        page.locator(".st-key-stop button").click()  # the job's button (the toolbar has a Stop too)
        try:
            page.get_by_text(f"{JOB}: stopped").first.wait_for(timeout=30_000)
        except Exception:
            shot = Path(tempfile.gettempdir()) / "cpu-split-stop.png"
            page.screenshot(path=str(shot))
            raise SystemExit(f"the Train page did not say '{JOB}: stopped' 30 s after Stop (screenshot {shot}); "
                             f"it says {page.locator('[data-testid=stMain]').inner_text()[:800]!r}") from None

    pairs = [(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]
    ratios = [o["rate"] / c["rate"] for o, c in pairs]
    print("open/closed samples/s per round: " + ", ".join(f"{r:.2f}" for r in ratios), flush=True)
    if args.no_write:
        return 0
    lines = [
        SECTION, "",
        f"A diagnostic beside the section above: one shapes job (latent 2, hidden auto, batch {BATCH}, lr {LR}) "
        f"started from the Train page, then {args.window:g} s windows with the Train page open and polling, "
        "alternating with the same tab on about:blank (the job alone). Cores from /proc: Chromium's processes; the "
        "server's own threads (Streamlit and the page scripts); the job's (the training thread and the OpenMP "
        "workers it started, named vae-train). Samples/s: median of the epochs that began and ended inside the window.",
        f"Measured {machine_line()}.", "",
        f"Reproduce: `.venv/bin/python -m bench.live_cpu_split --rounds {args.rounds} --window {args.window:g}`.", "",
        "| window | epochs | median samples/s | Chromium, cores | server, cores | job, cores |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {r['label']} | {r['epochs']} | {r['rate']:,.0f} | {r['chromium']:.2f} | {r['server']:.2f} | "
              f"{r['job']:.2f} |" for r in rows]
    lines += ["", "Page open / about:blank, samples/s, per round: " + ", ".join(f"**{r:.2f}**" for r in ratios)
              + "; job's CPU time, open / about:blank: " + ", ".join(f"{o['job'] / c['job']:.2f}" for o, c in pairs)
              + "."]
    replace_section("\n".join(lines) + "\n")
    print(f"wrote {SECTION!r} into docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
