"""The Train page's training throughput at several VAE_TRAIN_NICE values, each against the headless CLI.

    .venv/bin/python -m bench.live_training_nice                       # nice 10, 5, 0; 4 rounds of 10 epochs
    .venv/bin/python -m bench.live_training_nice --nice 10,0 --rounds 6 --no-write

A diagnostic beside bench/live_training.py (same config, same CLI run, same Train-page run): one app
server per nice value, started side by side, and one headless Chromium. Each round trains once with
the CLI and once on each server, in turn (the order reversed every other round, so drift in the
machine's load hits every way alike). For each nice value it reports app/CLI per round (each app run
against the same round's CLI run) and the ratio of the medians. The figures go into the
"## Live training and the job's priority (browser)" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from bench.browser import (add_common_arguments, chromium, exit_on_sigterm, options_line, serve, set_args,
                           streamlit_options, wait_for_quiet)
from bench.live_training import BATCH, LATENT, LR, run_app, run_cli
from bench.report import ROOT, load_average, machine_line, median, replace_section

SECTION = "## Live training and the job's priority (browser)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nice", default="10,5,0", help="VAE_TRAIN_NICE values, comma separated (default 10,5,0)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of one CLI run and one run per server (default 4)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run, at least 2; epoch 1 is left out (default 10)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    options = streamlit_options(args.set)
    try:
        nices = [int(v) for v in args.nice.split(",")]
    except ValueError:
        parser.error(f"--nice takes whole numbers separated by commas, e.g. 10,5,0; got {args.nice!r}")
    if not nices or any(not 0 <= n <= 19 for n in nices):
        parser.error(f"--nice values must lie between 0 and 19; got {args.nice!r}")
    if args.epochs < 2 or args.rounds < 1:
        parser.error("--epochs must be at least 2 and --rounds at least 1")
    exit_on_sigterm()
    if args.wait_quiet > 0:
        wait_for_quiet(args.wait_quiet)
    load_start = load_average()
    labels = [f"nice {n}" for n in nices]
    rates: dict[str, list[float]] = {"CLI": [], **{label: [] for label in labels}}
    with tempfile.TemporaryDirectory(prefix="vae-nice-bench-") as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        servers = {label: stack.enter_context(serve(ROOT / "app.py", base / f"nice{n}", f"nice{n}", options,
                                                    env={"VAE_TRAIN_NICE": str(n)}))
                   for label, n in zip(labels, nices)}
        browser = stack.enter_context(chromium())
        runs = 0
        for i in range(args.rounds):
            order = [("CLI", None), *servers.items()]
            if i % 2:
                order.reverse()
            for label, server in order:
                runs += 1
                if server is None:
                    r = run_cli(args.epochs, base / "data", base / f"cli-{runs}.pt")
                else:
                    r = run_app(browser, server, args.epochs, f"nice-bench-{runs}")
                rates[label].append(median(r["rates"][1:]))
                print(f"round {i + 1} {label:>8}: {rates[label][-1]:,.0f} samples/s (median of epochs 2..{args.epochs}); "
                      f"load {load_average()}", flush=True)
    cli = rates["CLI"]
    rows = []
    for label in labels:
        per_round = [a / c for a, c in zip(rates[label], cli)]
        rows.append((label, median(rates[label]), per_round, median(rates[label]) / median(cli)))
        print(f"app at {label}: app/CLI per round {', '.join(f'{r:.2f}' for r in per_round)}; "
              f"median of rounds {median(per_round):.3f}; ratio of medians {rows[-1][3]:.3f}", flush=True)
    if args.no_write:
        return 0
    lines = [
        SECTION, "",
        f"A diagnostic beside \"Live training overhead\": the same two runs (the CLI; the Train page open in headless "
        f"Chromium, polling), with one app server per `VAE_TRAIN_NICE` value, {args.rounds} rounds alternating the CLI "
        f"and each server (the order reversed every other round), shapes, latent {LATENT}, hidden auto, batch {BATCH}, "
        f"lr {LR}, {args.epochs} epochs a run. Samples/s: median of epochs 2..{args.epochs} of each run.",
        f"Measured {machine_line()}; load average at the start {load_start}.", "",
        f"Reproduce: `.venv/bin/python -m bench.live_training_nice --nice {args.nice} --rounds {args.rounds} "
        f"--epochs {args.epochs}{set_args(options)}`. {options_line(options)}", "",
        "| job's priority | median samples/s | app / CLI per round | median of rounds | ratio of medians |",
        "| --- | --- | --- | --- | --- |",
        f"| CLI (`python -m vae train`) | {median(cli):,.0f} | | | |",
    ]
    lines += [f"| app, `VAE_TRAIN_NICE={label.split()[1]}` | {m:,.0f} | {', '.join(f'{r:.2f}' for r in per_round)} | "
              f"{median(per_round):.3f} | **{ratio:.3f}** |" for label, m, per_round, ratio in rows]
    replace_section("\n".join(lines) + "\n")
    print(f"wrote {SECTION!r} into docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
