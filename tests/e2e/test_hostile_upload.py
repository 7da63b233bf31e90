"""A zip bomb uploaded in a real browser: refused in one sentence without inflating in the server, while
another tab's slider (a server round trip) still answers within twice its idle time."""
from __future__ import annotations

import re
import statistics
import time

import pytest

from tests.conftest import zip_bomb

from .conftest import assert_clean, nav_link, wait_for_app_idle, wait_until

pytestmark = pytest.mark.e2e

IMAGES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img'))
    .map((img) => img.getAttribute('src'))"""


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024


def slider_move_seconds(page, key: str) -> float:
    """One step of the Reconstructions page's Steps slider, until the path's picture has changed."""
    before = page.evaluate(IMAGES_JS)
    t0 = time.monotonic()
    page.locator('[data-testid="stSlider"] input[type="range"]').first.press(key)
    wait_until(lambda: (now := page.evaluate(IMAGES_JS)) and now != before and len(now) == len(before), 30,
               "the interpolation did not redraw after a slider step", page=page, interval=0.01)
    seconds = time.monotonic() - t0
    wait_for_app_idle(page, settle=0.1)
    return seconds


@pytest.mark.timeout(300)
def test_a_zip_bomb_upload_is_refused_while_another_tab_keeps_answering(open_page, app_server, console_errors, tmp_path):
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(zip_bomb(400))  # 400 MB of zeros once inflated
    student = open_page("")
    nav_link(student, "reconstructions").click()
    wait_until(lambda: len(student.evaluate(IMAGES_JS)) == 2, 60, "the Reconstructions page never drew", page=student)
    wait_for_app_idle(student)
    idle = [slider_move_seconds(student, key) for key in ("ArrowRight", "ArrowLeft") * 3]
    rss_before = rss_mb(app_server.process.pid)

    attacker = open_page("")
    attacker.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', files=[str(bomb)])
    loaded = [slider_move_seconds(student, key) for key in ("ArrowRight", "ArrowLeft") * 2]
    alert = attacker.locator('[data-testid="stMain"] [data-testid="stAlert"]', has_text="bomb.pt")
    wait_until(lambda: alert.count() > 0, 30, "no refusal named bomb.pt", page=attacker)
    message = alert.first.inner_text()
    assert "unpack to far more than the file holds" in message and "Traceback" not in message, message
    grown = rss_mb(app_server.process.pid) - rss_before
    assert grown < 100, f"the server grew by {grown:.0f} MB"
    assert statistics.median(loaded) <= 2 * statistics.median(idle), (idle, loaded)
    assert_clean(attacker, "/ (bomb upload)", app_server, console_errors)
    assert_clean(student, "/reconstructions", app_server, console_errors)
