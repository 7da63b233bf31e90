"""Test-set quality through the real CLI: the default MLP on MNIST, and images of other shapes.

    python -m bench.quality --data-dir ../shared/data

Runs `python -m vae train` for the two settings the quality target names (latent 2 for 20
epochs, latent 20 for 30), then `python -m vae eval --iw-samples K`; then the colour shapes
(3x28x28, MLP and conv) and a Frey-Face-shaped run (28 tall, 20 wide) on faces this script draws
and writes as frey_rawface.mat. Writes the figures and wall times into the "## Quality" section of
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import ROOT, machine_line, replace_section

RUNS = [  # (latent_dim, epochs, target negative ELBO in nats)
    (2, 20, 146.0),
    (20, 30, 104.0),
]
OTHER_RUNS = [  # (what, CLI arguments after `train`): images that are not 28x28 grey
    ("colour shapes 3x28x28, MLP, Bernoulli", ["--dataset", "shapes-color", "--latent-dim", "2", "--epochs", "10"]),
    ("colour shapes 3x28x28, conv, Bernoulli", ["--dataset", "shapes-color", "--arch", "conv", "--latent-dim", "2",
                                                "--epochs", "10"]),
    ("Frey-Face-shaped 1x28x20, MLP, Gaussian (a scale per pixel)",
     ["--dataset", "frey-face", "--latent-dim", "2", "--hidden", "200", "--likelihood", "gaussian-pixel",
      "--epochs", "100", "--batch-size", "100"]),
]


def frey_shaped_faces(n: int = 1965, seed: int = 0) -> np.ndarray:
    """uint8 (n, 28, 20) drawn faces of Frey Face's shape (28 tall, 20 wide): an oval head turned left
    or right, two eyes and a mouth that smiles or frowns, lit from one side: two factors, pose and
    expression, as the paper's Fig. 5 shows them on the real faces."""
    rng = np.random.default_rng(seed)
    turn, smile, light = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    y, x = np.mgrid[0:28, 0:20].astype(np.float64) + 0.5  # pixel centres: rows down, columns right
    y, x = y[None], x[None]
    cx = 10 + 2.5 * turn[:, None, None]  # the face's centre column moves as the head turns
    head = ((x - cx) / 7.5) ** 2 + ((y - 14) / 11.5) ** 2 < 1
    shade = 150 + 45 * light[:, None, None] * (x - 10) / 10
    face = np.where(head, shade, 40.0)
    for side in (-1, 1):  # eyes, closer together on the far side of a turned head
        ex = cx + side * (3.2 - 0.8 * side * turn[:, None, None])
        face = np.where(((x - ex) / 1.4) ** 2 + ((y - 11) / 1.0) ** 2 < 1, 30.0, face)
    mouth_y = 20 + 1.5 * smile[:, None, None] * (((x - cx) / 3.5) ** 2 - 1)  # a parabola, up at the ends when smiling
    mouth = (np.abs(y - mouth_y) < 0.8) & (np.abs(x - cx) < 3.5)
    face = np.where(mouth, 60.0, face)
    return np.clip(face + rng.normal(0, 4, face.shape), 0, 255).astype(np.uint8)


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
    lines += other_images(folder)
    replace_section("\n".join(lines) + "\n")


def other_images(folder: Path) -> list[str]:
    """Trains and measures each OTHER_RUNS setting; the Markdown lines of its table."""
    from vae.data.matfile import FREY_FILE, write_frey_faces
    from vae.data.frey import FREY_FOLDER

    data = folder / "data"
    (data / FREY_FOLDER).mkdir(parents=True)
    write_frey_faces(data / FREY_FOLDER / FREY_FILE, frey_shaped_faces())
    lines = ["", "### Images of other shapes", "",
             "Colour shapes: the built-in `shapes-color` (20,000 training and 4,000 test images). Frey-Face-shaped: "
             "1,965 faces of 28 x 20 pixels drawn by `bench/quality.py` (`frey_shaped_faces`: pose, expression and "
             "light vary) and written as `frey_rawface.mat`, read by the app's own loader (15% held out); not the real "
             "faces, which are not on this machine. Each row is `python -m vae train ARGS --data-dir DIR`.", "",
             "| images | arguments | test −ELBO | recon | KL | train wall time |", "| --- | --- | --- | --- | --- | --- |"]
    for what, arguments in OTHER_RUNS:
        out = folder / f"other-{len(lines)}.pt"
        train, wall = run_cli(["train", *arguments, "--data-dir", str(data), "--out", str(out), "--quiet"])
        unit = {"bernoulli": "nats (Bernoulli)"}.get(train["likelihood"], "nats (Gaussian density)")
        print(f"{what}: test -ELBO {train['test_elbo']:.2f} {unit}, {wall:.0f}s", flush=True)
        lines.append(f"| {what} | `{' '.join(arguments)}` | {train['test_elbo']:.2f} {unit} | {train['test_recon']:.2f} | "
                     f"{train['test_kl']:.2f} | {wall:.0f} s |")
    if not math.isfinite(train["test_elbo"]):
        raise SystemExit("the last run did not give a finite test -ELBO")
    return lines


if __name__ == "__main__":
    main()
