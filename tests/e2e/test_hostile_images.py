"""A .zip of huge blank PNGs (a decompression bomb for the image decoder, not for unzip) uploaded on the Train
page in a real browser, while another tab reloads the Latent scatter: the upload is refused in one sentence
before any image is decoded, the other tab is ready within twice its idle time, and the data folder holds
what it held before."""
from __future__ import annotations

import io
import statistics
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from .conftest import assert_clean, assert_no_exception, wait_for_app_idle, wait_until
from .test_teacher_loop import MAIN, plot_drawn

pytestmark = pytest.mark.e2e

BOMB_IMAGES, BOMB_SIDE = 300, 6324  # each 40 MP, under the per-image cap; 12,000 MP in all, in a 1.5 MB zip
EXPANDER = '[data-testid="stExpander"]:has(.st-key-own_zip)'
IDLE_RELOADS = 3
RELOAD_LIMIT_S = 240  # far past the bound asserted, so that a failing run still says how long the wait was


def png_bomb_zip(path: Path) -> Path:
    """BOMB_IMAGES one-bit blank PNGs of BOMB_SIDE px a side, in one class folder: 5 kB each, 1.5 MB zipped,
    and a minute of decoding on a 2-core machine for whoever decodes them all."""
    one = io.BytesIO()
    Image.new("1", (BOMB_SIDE, BOMB_SIDE), 0).save(one, "PNG", optimize=True)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(BOMB_IMAGES):
            z.writestr(f"bomb/blank/{i:03d}.png", one.getvalue())
    return path


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def reload_seconds(page, limit: float = RELOAD_LIMIT_S) -> float:
    """A reload of the tab (a new session), until the scatter is drawn and the script has finished."""
    t0 = time.monotonic()
    page.reload()
    page.wait_for_selector('[data-testid="stApp"]', timeout=limit * 1000)

    def drawn() -> bool:
        assert_no_exception(page, "/scatter (reloaded)")
        return plot_drawn(page)

    wait_until(drawn, limit, f"the scatter was not drawn {limit:.0f} s after a reload", page=page, interval=0.05)
    wait_for_app_idle(page, timeout=limit, settle=0.1)
    return time.monotonic() - t0


def upload_answered(page) -> bool:
    """The Train page has answered the upload: a refusal, or (had it been read) the preview's summary line."""
    expander = page.locator(EXPANDER)
    return expander.locator('[data-testid="stAlert"]').count() > 0 or "Read " in expander.inner_text()


@pytest.mark.timeout(420)
def test_a_png_bomb_upload_is_refused_unread_while_another_tab_reloads_the_scatter(open_page, app_server,
                                                                                  console_errors, tmp_path):
    bomb = png_bomb_zip(tmp_path / "bomb.zip")
    student = open_page("scatter")
    wait_until(lambda: plot_drawn(student), 60, "the scatter never drew", page=student)
    idle = [reload_seconds(student) for _ in range(IDLE_RELOADS)]
    data_dir = app_server.data_dir
    before = files_under(data_dir)

    attacker = open_page("train")
    attacker.locator(f"{MAIN} summary", has_text="Your own images").click()
    attacker.set_input_files(".st-key-own_zip input[type='file']", files=[str(bomb)])
    loaded, deadline = [], time.monotonic() + 240
    while len(loaded) < 2 or (not upload_answered(attacker) and time.monotonic() < deadline):
        loaded.append(reload_seconds(student))  # each reload a new session, while the upload is read
    print(f"scatter reload: idle {[round(s, 2) for s in idle]} s, during the upload {[round(s, 2) for s in loaded]} s")
    assert max(loaded) <= 2 * statistics.median(idle), (
        f"a reload of the scatter took {max(loaded):.1f} s while the bomb was read, against {statistics.median(idle):.1f} s "
        f"idle (all: {loaded})")

    alert = attacker.locator(f'{EXPANDER} [data-testid="stAlert"]')
    wait_until(lambda: alert.count() > 0, 60, "the Train page never refused the upload", page=attacker)
    message = alert.first.inner_text()
    assert "million pixels a folder may hold" in message and "\n" not in message.strip(), message
    wait_for_app_idle(attacker)
    assert files_under(data_dir) == before, sorted(set(files_under(data_dir)) ^ set(before))[:10]
    assert not any((data_dir / "uploads").iterdir())
    assert_clean(attacker, "/train (png bomb upload)", app_server, console_errors)
    assert_clean(student, "/scatter (reloaded meanwhile)", app_server, console_errors)
