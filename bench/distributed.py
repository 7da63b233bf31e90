"""Data-parallel training on this machine: samples/s of `torchrun` with 1 and 2 processes, the same model,
data, global batch and seed.

    python -m bench.distributed [--epochs 3]   # global batches 128 and 1024

Each row is `python -m torch.distributed.run --nproc-per-node N -m vae train --dataset shapes --epochs E
--json` (127.0.0.1, gloo), one torch thread per process; the figure is the run's median epoch rate over all
processes. Writes the "## Training on more processes" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import ROOT, free_port, machine_line, replace_section

from vae import checkpoint as ckpt_io

BATCHES = (128, 1024)  # the default, and one with an eighth of the all-reduces per epoch


def run(n: int, epochs: int, batch: int, out: Path) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(n),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "vae", "train", "--dataset",
               "shapes", "--epochs", str(epochs), "--batch-size", str(batch), "--device", "cpu", "--quiet",
               "--no-replay", "--out", str(out), "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    rates = [r["samples_per_sec"] for r in ckpt_io.load(out).history if r["kind"] == "epoch"]
    return {**result, "median_rate": statistics.median(rates), "rates": rates}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in BATCHES:
            for n in (1, 2):
                result = run(n, args.epochs, batch, Path(tmp) / f"n{n}-b{batch}.pt")
                rows.append((batch, n, result))
                print(f"batch {batch}, {n} process(es): {result['median_rate']:,.0f} samples/s, "
                      f"test -ELBO {result['test_elbo']:.2f}")
    lines = [
        "## Training on more processes", "",
        f"`python -m bench.distributed --epochs {args.epochs}`: `torchrun --nproc-per-node N -m vae train --dataset "
        f"shapes --epochs {args.epochs} --batch-size B` (gloo on 127.0.0.1, one torch thread per process, seed 0, "
        "the default MLP, 1.2 M weights). Samples per second over all processes, the median of the run's epochs. "
        "One process trains through the MLP's written-out backward; two through autograd and DDP, which "
        "all-reduces every step's 4.8 MB of gradients.", "",
        "| global batch | processes | samples/s | per epoch | vs 1 process | test −ELBO (nats) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for batch, n, r in rows:
        one = next(r1 for b1, n1, r1 in rows if b1 == batch and n1 == 1)["median_rate"]
        lines.append(f"| {batch} | {n} | {r['median_rate']:,.0f} | {', '.join(f'{v:,.0f}' for v in r['rates'])} | "
                     f"{r['median_rate'] / one:.2f}x | {r['test_elbo']:.2f} |")
    lines += ["", machine_line(), ""]
    replace_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
