"""docs/screenshots/compare.png: the lecture's three variants trained through the app, in a real browser.
Not a benchmark: it opens the Compare page of a fresh server, presses "Train all three" (shapes, --epochs
epochs, seed 0), waits for the three to finish and takes the whole page.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.compare_screenshot --epochs 10
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, chromium, open_app, serve_app, wait_for_app_idle

MAIN = '[data-testid="stMain"]'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the three to finish")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "compare.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve_app(Path(tmp)) as server, chromium() as browser:
        page = open_app(browser, server.url, "compare")
        page.get_by_label("Epochs", exact=True).fill(str(args.epochs))
        page.get_by_label("Epochs", exact=True).press("Tab")
        page.get_by_role("button", name="Train all three").click()
        deadline = time.monotonic() + args.timeout
        while "lecture-shapes: finished" not in page.locator(MAIN).inner_text():
            if page.locator('[data-testid="stException"]').count() or time.monotonic() > deadline:
                raise SystemExit(f"not finished: {page.locator(MAIN).inner_text()[:800]}")
            page.wait_for_timeout(2000)
        wait_for_app_idle(page)
        page.wait_for_timeout(1500)  # plotly draws after the script is idle
        # Streamlit scrolls inside its main container: the window grows to the content's height for the shot.
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": 1600, "height": min(max(height, 1000), 4000)})
        page.wait_for_timeout(500)
        page.screenshot(path=args.out, full_page=True)


if __name__ == "__main__":
    main()
