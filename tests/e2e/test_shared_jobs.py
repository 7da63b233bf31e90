"""A class on one server, in a real browser with two contexts (two people's browsers): A, the teacher, starts a
job on the Train page; B, a student, finds it in the sidebar, opens it, and watches new weight versions arrive on
the latent pad and on the scatter; B's Train page has no Stop, and says who may stop it in one sentence; once B
enters the server's teacher key in the sidebar, B's Stop is there and stops the job.

The steps share one server (started with a teacher key) and its two tabs, in order; every job started here is
stopped by the last step, or by the first tab when a step before it failed.
"""
from __future__ import annotations

import re
import time

import pytest

from bench.harness import serve_app
from tests.e2e.conftest import assert_clean, require_browser, screenshot, start_job, wait_for_app_idle, wait_until
from tests.e2e.test_latent_pad import pad_state
from tests.e2e.test_teacher_loop import SIDEBAR, go, main_text
from vae.training.ownership import TEACHER_KEY_ENV, who_may_act

pytestmark = pytest.mark.e2e

KEY = "chalk-and-talk-42"
JOB = "room-live"
NEW_VERSIONS_S = 30  # two new weight versions within this many seconds, on a busy 2-core machine
# The first few x values of the scatter's first trace (its test codes), or null before it is drawn.
SCATTER_CODES_JS = """() => {
    const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
    const t = gd && gd._fullData && gd._fullData.find((t) => t.x && t.x.length > 100);
    return t ? Array.from(t.x.slice(0, 8), Number).join() : null;
}"""


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """This module's server, started with a teacher key."""
    require_browser()
    with serve_app(tmp_path_factory.mktemp("e2e-room"), env={TEACHER_KEY_ENV: KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def tabs(open_page):
    """A's and B's tabs, each in a browser context of its own; on the way out, the job stops (A may stop it)."""
    tabs = {"a": open_page(""), "b": open_page("")}
    yield tabs
    a = tabs["a"]
    if f"{JOB}: stopped" not in main_text(a) and f"{JOB}:" in main_text(a):
        a.locator(".st-key-stop button:visible").first.click()
        wait_until(lambda: f"{JOB}: stopped" in main_text(a), 60, "the job did not stop", page=a)


def _until_changed_twice(read, timeout: float, what: str, page) -> float:
    """Seconds until read() has given two values after the first (each a new weight version)."""
    t0, seen = time.monotonic(), [read()]

    def two_more():
        value = read()
        if value is not None and value != seen[-1]:
            seen.append(value)
        return len(seen) >= 3

    wait_until(two_more, timeout, lambda: f"{what}: {len(seen) - 1} new versions in {timeout} s", page=page,
               interval=0.25)
    return time.monotonic() - t0


def tab_b(tabs, state, needs: str):
    """B's tab, once the step that sets state[needs] has passed."""
    if not state.get(needs):
        pytest.skip(f"needs the step that sets {needs!r}")
    return tabs["b"]


@pytest.mark.timeout(240)
def test_1_a_starts_a_job(tabs, state, app_server, console_errors):
    a = tabs["a"]
    go(a, "train", "Train a VAE")
    start_job(a, JOB, epochs=50, batch=16)
    assert a.locator(".st-key-stop button:visible").count() >= 1, "the tab that started the job has no Stop"
    assert_clean(a, "A: /train", app_server, console_errors)
    state["started"] = True


@pytest.mark.timeout(180)
def test_2_b_opens_it_on_the_pad_and_the_scatter_and_sees_new_versions(tabs, state, app_server, console_errors):
    b = tab_b(tabs, state, "started")
    listed = b.locator(SIDEBAR).get_by_role("button", name=re.compile(JOB))
    wait_until(lambda: listed.count() == 1, 30, "B's sidebar does not list the running job", page=b)
    listed.click()
    wait_until(lambda: listed.is_disabled(), 30, "Open did not make the job B's model", page=b)
    wait_for_app_idle(b)

    go(b, "sliders", "Latent sliders")
    wait_until(lambda: (pad_state(b) or {}).get("key", "").startswith("job:"), 60,
               "B's pad never got the job's weights", page=b)
    state["pad_seconds"] = _until_changed_twice(lambda: (pad_state(b) or {}).get("versions"), NEW_VERSIONS_S,
                                                "B's pad", b)
    assert_clean(b, "B: /sliders (live)", app_server, console_errors)

    go(b, "scatter", "Latent scatter")
    wait_until(lambda: b.evaluate(SCATTER_CODES_JS), 60, "B's scatter was never drawn", page=b)
    state["scatter_seconds"] = _until_changed_twice(lambda: b.evaluate(SCATTER_CODES_JS), NEW_VERSIONS_S + 15,
                                                    "B's scatter", b)
    assert_clean(b, "B: /scatter (live)", app_server, console_errors)
    print(f"B saw two new weight versions in {state['pad_seconds']:.1f} s on the pad and "
          f"{state['scatter_seconds']:.1f} s on the scatter")


@pytest.mark.timeout(120)
def test_3_b_has_no_stop_and_reads_who_may(tabs, state, app_server, console_errors):
    b = tab_b(tabs, state, "started")
    go(b, "train", "Train a VAE")
    wait_until(lambda: f"{JOB}: running" in main_text(b), 30, "B's Train page does not show the job", page=b)
    assert b.locator(".st-key-stop button:visible").count() == 0, "B, who did not start the job, has a Stop"
    sentence = who_may_act(JOB, environ={TEACHER_KEY_ENV: KEY})
    assert sentence in " ".join(main_text(b).split()), main_text(b)[-400:]
    screenshot(b, "shared-jobs-b-train")
    assert_clean(b, "B: /train", app_server, console_errors)
    state["refused"] = True


@pytest.mark.timeout(120)
def test_4_with_the_teacher_key_b_stops_it(tabs, state, app_server, console_errors):
    b = tab_b(tabs, state, "refused")
    sidebar = b.locator(SIDEBAR)
    sidebar.get_by_text("Teacher", exact=True).click()
    box = sidebar.get_by_label("Teacher key", exact=True)
    box.fill("a guess")
    box.press("Enter")
    wait_until(lambda: "not this server's teacher key" in sidebar.inner_text(), 30, "a wrong key was not refused",
               page=b)
    assert b.locator(".st-key-stop button:visible").count() == 0
    box.fill(KEY)
    box.press("Enter")
    # :visible: while a fragment reruns, Streamlit may keep a hidden copy of an element beside the new one.
    stop = b.locator(".st-key-stop button:visible")
    wait_until(lambda: stop.count() >= 1, 30, "B has no Stop with the teacher key", page=b)
    # Compared, then forgotten: once the sidebar has redrawn (the Stop above can come first), neither the box nor the
    # key is anywhere in the page.
    wait_until(lambda: sidebar.get_by_label("Teacher key", exact=True).count() == 0, 30, "the key box stayed", page=b)
    assert KEY not in b.content()
    stop.first.click()
    wait_until(lambda: f"{JOB}: stopped" in main_text(b), 60, "B's Stop did not stop the job", page=b)
    a = tabs["a"]
    wait_until(lambda: f"{JOB}: stopped" in main_text(a), 30, "A's Train page does not show the stop", page=a)
    assert_clean(b, "B: /train (teacher's stop)", app_server, console_errors)
