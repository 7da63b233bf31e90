"""Screenshots of Compare: the lecture's three variants (or the β sweep) trained through the app, in a real
browser. Not a benchmark: it opens the Compare page of a fresh server, presses "Train all three" (shapes,
--epochs epochs on --train-limit images, seed 0), waits for the three to finish and takes the whole page at
the window's width.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.compare_screenshot --epochs 10
    .venv/bin/python -m bench.compare_screenshot --epochs 5 --train-limit 5000 --projector
      (docs/screenshots/compare-1024.png, the lecture's three at 1024 x 768, and compare-1280.png, the β sweep
      at 1280 x 720, from one server)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, chromium, open_app, serve_app, wait_for_app_idle

MAIN = '[data-testid="stMain"]'
SHOTS = ROOT / "docs" / "screenshots"
PRESETS = {"lecture": ("The lecture's three variants", "lecture-shapes"), "sweep": ("β sweep", "beta-sweep-shapes")}


def train_preset(page, preset: str, epochs: int, train_limit: int, timeout: float) -> None:
    """Picks the preset, fills its form, presses Train all three and waits until the group has finished."""
    label, name = PRESETS[preset]
    page.locator(".st-key-cmp_preset_kind").get_by_text(label).click()
    wait_for_app_idle(page)
    for field, value in (("Epochs", epochs), ("Training images (0: all)", train_limit)):
        page.get_by_label(field, exact=True).fill(str(value))
        page.get_by_label(field, exact=True).press("Tab")
    page.get_by_role("button", name="Train all three").click()
    deadline = time.monotonic() + timeout
    while f"{name}: finished" not in (text := main_text(page)):
        if page.locator('[data-testid="stException"]').count() or time.monotonic() > deadline:
            raise SystemExit(f"not finished: {text[:800]}")
        page.wait_for_timeout(2000)
    wait_for_app_idle(page, timeout=180)


def main_text(page) -> str:
    """The page's text; empty while a busy renderer (two cores, three models training) does not answer."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.locator(MAIN).inner_text(timeout=20_000)
    except PlaywrightTimeout:
        return ""


def whole_page(page, width: int, height: int, out: str) -> None:
    """The page laid out in a width x height window, then taken whole: Streamlit scrolls inside its main
    container, so the window grows to the content's height for the shot."""
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(1500)  # plotly redraws at the new width after the script is idle
    full = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(full, height), 5000)})
    page.wait_for_timeout(800)
    page.screenshot(path=out, full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-limit", type=int, default=0, help="training images per model (0: all 20,000)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the three to finish")
    parser.add_argument("--out", default=str(SHOTS / "compare.png"))
    parser.add_argument("--projector", action="store_true",
                        help="compare-1024.png (the lecture's three, 1024 x 768) and compare-1280.png (the β sweep, "
                             "1280 x 720) instead of --out")
    args = parser.parse_args()
    projector = [("lecture", 1024, 768, str(SHOTS / "compare-1024.png")),
                 ("sweep", 1280, 720, str(SHOTS / "compare-1280.png"))]
    shots = projector if args.projector else [("lecture", 1600, 1000, args.out)]
    with tempfile.TemporaryDirectory() as tmp, serve_app(Path(tmp)) as server, chromium() as browser:
        page = open_app(browser, server.url, "compare")
        for preset, width, height, out in shots:
            page.set_viewport_size({"width": width, "height": height})
            train_preset(page, preset, args.epochs, args.train_limit, args.timeout)
            whole_page(page, width, height, out)


if __name__ == "__main__":
    main()
