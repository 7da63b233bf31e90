"""The first open: `streamlit run app.py` to the first decoded picture visible in a fresh tab, against a
minimal Streamlit app that imports torch and shows one image, measured the same way in the same run.

    python -m bench.first_open [--runs 5]

Each run starts a server (the app with the shipped checkpoints and an empty data folder: the offline
classroom), opens a fresh browser context as soon as the server answers, and stops the clock when an
st.image picture has loaded (naturalWidth > 0). The two apps alternate; the figures are medians. Writes the
"## First open" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (ROOT, VIEWPORT, chromium, free_port, health, machine_line, median, replace_section,
                           stop)

SHIPPED = sorted((ROOT / "checkpoints").glob("default-*.pt"))
REFERENCE_APP = '''import numpy as np
import streamlit as st
import torch

st.image(torch.rand(28, 28).numpy(), width=336)
'''
PICTURE_JS = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
    .some((img) => img.complete && img.naturalWidth > 0)"""
TARGET_RATIO = 1.5


def serve(script: Path, cwd: Path, env: dict) -> tuple[subprocess.Popen, str]:
    url = f"http://127.0.0.1:{(port := free_port())}"
    args = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.address",
            "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL), url


def first_picture(browser, script: Path, cwd: Path, env: dict) -> tuple[float, float]:
    """(seconds to the server's health answer, seconds to the first picture), both from the server's start."""
    t0 = time.perf_counter()
    process, url = serve(script, cwd, env)
    try:
        while health(url) != "ok":
            if process.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError(f"{script.name} did not start (exit code {process.poll()})")
            time.sleep(0.02)
        up = time.perf_counter() - t0
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(PICTURE_JS, polling=20, timeout=120_000)
        shown = time.perf_counter() - t0
        context.close()
        return up, shown
    finally:
        stop(process)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        base = Path(tmp)
        (base / "checkpoints").mkdir()
        (base / "data").mkdir()
        for path in SHIPPED:
            shutil.copy2(path, base / "checkpoints" / path.name)
        (base / "ref").mkdir()
        reference = base / "ref" / "reference_app.py"
        reference.write_text(REFERENCE_APP)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "VAE_CHECKPOINT_DIR": str(base / "checkpoints"),
               "VAE_DATA_DIR": str(base / "data")}
        runs = {"app": [], "reference": []}
        first_picture(browser, reference, reference.parent, env)  # warm the disk cache for both: not counted
        first_picture(browser, ROOT / "app.py", ROOT, env)
        for i in range(args.runs):
            for name, script, cwd in (("reference", reference, reference.parent), ("app", ROOT / "app.py", ROOT)):
                runs[name].append(first_picture(browser, script, cwd, env))
                print(f"run {i + 1} {name}: server up {runs[name][-1][0]:.2f} s, first picture {runs[name][-1][1]:.2f} s")
    write(runs, args.runs)


def write(runs: dict, n: int) -> None:
    app, ref = (median([r[1] for r in runs[k]]) for k in ("app", "reference"))
    app_up, ref_up = (median([r[0] for r in runs[k]]) for k in ("app", "reference"))
    ratio = app / ref
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    lines = [
        "## First open", "",
        f"`python -m bench.first_open --runs {n}`: `streamlit run app.py` (the shipped checkpoints, an empty data "
        "folder, as in a classroom without MNIST) to the first decoded picture visible in a fresh browser tab (the "
        "Home page's manifold of the MNIST default), against a minimal Streamlit app that imports torch and shows "
        f"one image; the server's start to an `st.image` picture loaded, {n} runs each, alternating; medians.", "",
        "| | server answers | first picture |",
        "| --- | --- | --- |",
        f"| Latent Explorer | {app_up:.2f} s | {app:.2f} s |",
        f"| minimal app (torch, one image) | {ref_up:.2f} s | {ref:.2f} s |",
        f"| ratio | {app_up / ref_up:.2f} | **{ratio:.2f}** (target ≤ {TARGET_RATIO}: {verdict}) |", "",
        "Each run: " + "; ".join(f"{a[1]:.2f} / {r[1]:.2f} s" for a, r in zip(runs["app"], runs["reference"]))
        + " (app / minimal).", "",
        machine_line(), "",
    ]
    replace_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
