"""What does watching training live cost it? The app's job, its Train page open in headless Chromium,
against a CLI run of the same config (shapes, latent 2, batch 128, lr 1e-3), taking turns in short
slices: one side runs while SIGSTOP pauses the other (the server and Chromium, or the CLI), so each pair
of slices is seconds apart on a host whose speed drifts over minutes.

    .venv/bin/python -m bench.live                  # 8 rounds of 2 x 15 s
    .venv/bin/python -m bench.live --rounds 12 --slice 20

Throughput: the epoch records of the epochs that began and ended inside a slice. app/CLI counts as met
when both the pooled medians' ratio and the median of the rounds' ratios meet the target.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (ROOT, OtherLoad, chromium, machine_line, median, own_processes, replace_section, serve_app,
                           start_training)
from vae import checkpoint as ckpt_io

SECTION = "## Live training overhead, interleaved (browser)"
TARGET = 0.85  # the app's samples/s at least 85% of the CLI's: "within 15%"
CONFIG = {"Epochs": "300", "Batch size": "128", "Latent dim": "2", "Learning rate": "1e-3"}  # more epochs than a run needs
JOB = "live-bench"
WARM_EPOCHS = 2  # each side trains this many before the first slice


def epoch_rates(path: Path) -> list[float]:
    """samples/s of each whole epoch a checkpoint records, epoch 1 first ([] before the first save)."""
    try:
        history = ckpt_io.load(path).history
    except (OSError, ckpt_io.CheckpointError):
        return []
    return [float(r["samples_per_sec"]) for r in history if r.get("kind") == "epoch" and not r.get("partial")]


class Side:
    """The processes paused and resumed together, and the checkpoint their training autosaves."""

    def __init__(self, label: str, pids, checkpoint: Path):
        self.label, self.pids, self.checkpoint, self.slices = label, pids, checkpoint, []

    def send(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def wait_for_epochs(self, n: int, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while len(epoch_rates(self.checkpoint)) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.label}: fewer than {n} epochs after {timeout_s:.0f} s")
            time.sleep(0.5)

    def run_slice(self, seconds: float) -> None:
        """Resumes this side for `seconds`, pauses it again, keeps the epochs wholly inside the slice."""
        done = len(epoch_rates(self.checkpoint))
        with OtherLoad() as other:
            self.send(signal.SIGCONT)
            time.sleep(seconds)
            self.send(signal.SIGSTOP)
        time.sleep(0.3)  # an autosave caught mid-write stays the old file: its epoch is only counted later
        rates = epoch_rates(self.checkpoint)[done + 1:]
        self.slices.append({"rates": rates, "rate": median(rates) if rates else float("nan"), "other": other.cores})


def chromium_pids() -> list[int]:
    """This benchmark's Chromium processes (under this one, named chrom...)."""
    pids = []
    for pid in own_processes():
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                pids.append(pid)
        except OSError:
            pass
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds of one slice each way (default 8)")
    parser.add_argument("--slice", type=float, default=15, dest="slice_s", help="seconds per slice (default 15)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vae-live-") as tmp, serve_app(Path(tmp) / "app") as server, \
            chromium() as browser:
        page = start_training(browser, server.url, {**CONFIG, "Checkpoint name (optional)": JOB})
        app = Side("app (Train page open, polling)", lambda: [server.process.pid, *chromium_pids()],
                   server.checkpoint_dir / f"{JOB}.pt")
        cli_proc = None
        try:
            app.wait_for_epochs(WARM_EPOCHS)
            app.send(signal.SIGSTOP)
            cli_proc = subprocess.Popen(
                [sys.executable, "-m", "vae", "train", "--dataset", "shapes", "--latent-dim", CONFIG["Latent dim"],
                 "--epochs", CONFIG["Epochs"], "--batch-size", CONFIG["Batch size"], "--lr", CONFIG["Learning rate"],
                 "--data-dir", str(server.data_dir), "--out", str(Path(tmp) / "cli.pt"), "--quiet"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cli = Side("CLI (`python -m vae train`)", lambda: [cli_proc.pid], Path(tmp) / "cli.pt")
            cli.wait_for_epochs(WARM_EPOCHS)
            cli.send(signal.SIGSTOP)
            for r in range(args.rounds):
                for side in (app, cli) if r % 2 == 0 else (cli, app):
                    side.run_slice(args.slice_s)
                    row = side.slices[-1]
                    print(f"round {r + 1} {side.label.split()[0]}: {len(row['rates'])} epochs, median "
                          f"{row['rate']:,.0f} samples/s; other work {row['other']:.2f} cores", flush=True)
        finally:
            app.send(signal.SIGCONT)
            if cli_proc is not None:
                cli_proc.send_signal(signal.SIGCONT)
                cli_proc.terminate()
                cli_proc.wait(30)
        page.locator(".st-key-stop button").click()
        page.get_by_text(f"{JOB}: stopped").first.wait_for(timeout=30_000)
    pooled = {side: median([v for s in side.slices for v in s["rates"]]) for side in (app, cli)}
    rounds = [a["rate"] / c["rate"] for a, c in zip(app.slices, cli.slices)]
    ratio, per_round = pooled[app] / pooled[cli], median([p for p in rounds if p == p])
    met = min(ratio, per_round) >= TARGET
    section = "\n".join([
        SECTION, "",
        f"Reproduce: `.venv/bin/python -m bench.live --rounds {args.rounds} --slice {args.slice_s:g}`. {machine_line()}. "
        f"A shapes job started from the Train page, left open with its live view polling, and a CLI run of the same "
        f"config, taking turns in {args.slice_s:g} s slices (the other side paused with SIGSTOP), {args.rounds} rounds, the "
        f"order swapped every round, after {WARM_EPOCHS} warm-up epochs each.", "",
        "| | median samples/s | per slice | other work per slice (cores) |", "| --- | --- | --- | --- |",
        *(f"| {side.label} | {pooled[side]:,.0f} | {', '.join(format(s['rate'], ',.0f') for s in side.slices)} | "
          f"{', '.join(format(s['other'], '.2f') for s in side.slices)} |" for side in (cli, app)), "",
        f"app / CLI = **{ratio:.3f}** (pooled medians); per round {', '.join(f'{p:.2f}' for p in rounds)}, median "
        f"**{per_round:.3f}**. Target >= {TARGET} (both forms): {'met' if met else '**not met**'}.", ""])
    print(section)
    if not args.no_write:
        replace_section(section)


if __name__ == "__main__":
    main()
