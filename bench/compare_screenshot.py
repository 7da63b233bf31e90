"""docs/screenshots/compare.png: the lecture's three variants trained through the app, in a real browser.

Not a benchmark: it lives beside bench/browser.py, whose server and headless chromium it reuses.
It starts `streamlit run app.py` with its own checkpoints and data folders, opens the Compare page,
presses "Train all three" (built-in shapes, --epochs epochs, seed 0, every training image), waits
for the three models to finish, and takes a full-page screenshot.

    OMP_NUM_THREADS=1 python -m bench.compare_screenshot --epochs 10 [--out docs/screenshots/compare.png]
        [--fit-out compare-fit.png] [--keep DIR]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.browser import chromium, exit_on_sigterm, new_page, open_app, serve, wait_for_app_idle
from bench.report import ROOT
from tests.e2e.conftest import exception_texts, screenshot

MAIN = '[data-testid="stMain"]'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the three to finish")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "compare.png"))
    parser.add_argument("--keep", default=None, help="copy the three checkpoints into this folder")
    parser.add_argument("--fit-out", default=None,
                        help="also a screenshot with the axes fitted to every model's codes, to this file")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp, serve(ROOT / "app.py", Path(tmp), "compare") as server, \
            chromium() as browser:
        page = new_page(browser, timeout_s=120)
        open_app(page, f"{server.url}/compare")
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.fill(str(args.epochs))
        epochs.press("Tab")
        page.get_by_role("button", name="Train all three").click()
        deadline = time.monotonic() + args.timeout
        while "lecture-shapes: finished" not in page.locator(MAIN).inner_text():
            if exception_texts(page):
                raise SystemExit(f"the Compare page raised: {exception_texts(page)[0][:500]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not finished in {args.timeout:.0f} s:\n{page.locator(MAIN).inner_text()[:800]}")
            page.wait_for_timeout(2000)
        wait_for_app_idle(page)
        page.wait_for_timeout(1500)  # plotly draws after the script is idle
        shot = screenshot(page, "compare")  # docs/e2e/compare.png, the page's full height
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(shot), args.out)
        if args.fit_out:
            page.get_by_text("Fit every model's codes", exact=False).click()
            wait_for_app_idle(page)
            page.wait_for_timeout(1500)
            shutil.move(str(screenshot(page, "compare")), args.fit_out)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for path in server.checkpoint_dir.glob("lecture-shapes-*.pt"):
                shutil.copy2(path, Path(args.keep) / path.name)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
