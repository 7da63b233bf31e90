"""Test-set quality of the default MLP on MNIST, through the real CLI.

    python -m bench.quality --data-dir ../shared/data

Runs `python -m vae train` for the two settings the quality target names (latent 2 for 20
epochs, latent 20 for 30), then `python -m vae eval --iw-samples K`, and writes the figures
and wall times into the "## Quality" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, machine_line, replace_section

RUNS = [  # (latent_dim, epochs, target negative ELBO in nats)
    (2, 20, 146.0),
    (20, 30, 104.0),
]


def run_cli(args: list[str]) -> tuple[dict, float]:
    """Runs `python -m vae ARGS --json`; returns the last stdout line as JSON and the wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vae", *args, "--json"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"python -m vae {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--iw-samples", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vae-quality-"))
    rows = []
    for latent, epochs, target in RUNS:
        out = folder / f"mnist-{latent}d-{epochs}ep.pt"
        train, wall = run_cli(["train", "--dataset", "mnist", "--data-dir", args.data_dir, "--latent-dim", str(latent),
                               "--epochs", str(epochs), "--out", str(out), "--quiet"])
        ev, eval_wall = run_cli(["eval", str(out), "--data-dir", args.data_dir, "--iw-samples", str(args.iw_samples)])
        rows.append((latent, epochs, target, train, wall, ev, eval_wall))
        print(f"latent {latent}, {epochs} epochs: test -ELBO {train['test_elbo']:.2f} (target <= {target}), "
              f"IW log-lik {ev['iw_ll']:.2f}, {wall:.0f}s", flush=True)
    lines = [
        "## Quality", "",
        "Default MLP (`--hidden auto`: 784-512-256-256-z for z = 2, 784-512-256-z for z = 20; ReLU), Bernoulli likelihood on continuous pixel intensities, Adam 1e-3, "
        "batch 128, seed 0. Data: MNIST, first 24,345 training images; the full 10,000-image test set.",
        f"Measured {machine_line()}.", "",
        f"Reproduce: `python -m bench.quality --data-dir ../shared/data` (each row is `python -m vae train "
        f"--dataset mnist --latent-dim Z --epochs N` then `python -m vae eval --iw-samples {args.iw_samples}`).", "",
        "| latent dim | epochs | test −ELBO (nats) | target | recon | KL | IW log-lik (k=%d) | train wall time | samples/s |" % args.iw_samples,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for latent, epochs, target, train, wall, ev, _ in rows:
        ok = "met" if train["test_elbo"] <= target else "**missed**"
        lines.append(f"| {latent} | {epochs} | {train['test_elbo']:.2f} | ≤ {target:g} ({ok}) | {train['test_recon']:.2f} | "
                     f"{train['test_kl']:.2f} | {ev['iw_ll']:.2f} | {wall:.0f} s | {train['samples_per_sec']:,.0f} |")
    replace_section("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
