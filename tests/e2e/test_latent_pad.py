"""The latent pad in the app, in a real browser: the decoder that reaches the page through Streamlit
decodes as the server does; a drag draws many pictures before the release, and the release reaches the
page without sending the weights again; hovering a code shows its thumbnails; while a job trains, new
weights arrive without a reload, the point stays, and a drawn input's posterior (data-mu) moves with each
version; and the tab asks nothing of any other host.

The steps share one server and one tab, in order (a Streamlit session lives as long as its tab).
"""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from tests.e2e.conftest import (DEFAULT_SHAPES, SCREENSHOTS, assert_clean, screenshot, start_job,
                                wait_for_app_idle, wait_until)
from tests.e2e.test_encoder_panel import SEVEN, _stroke
from tests.e2e.test_teacher_loop import go, main_text
from vae import checkpoint as ckpt_io
from vae.analysis.encoding import decode_codes

pytestmark = pytest.mark.e2e

PAD = "document.querySelector('.lp-root').latentPad"
JOB_NAME = "pad-live"
NEW_VERSIONS_S = 15  # the bound: two new weight versions within this many seconds


@pytest.fixture(scope="module")
def traffic():
    """Every URL the tab requests, and the size of every websocket message it receives."""
    return {"requests": [], "frames": []}


@pytest.fixture(scope="module")
def page(open_page, traffic):
    """One tab, recorded from its first request: the root, then the sliders page by the sidebar."""
    def record(_context, tab):
        tab.on("request", lambda r: traffic["requests"].append(r.url))
        tab.on("websocket", lambda ws: ws.on("framereceived", lambda frame: traffic["frames"].append(
            (time.monotonic(), len(frame) if isinstance(frame, (bytes, str)) else 0))))

    return open_page("", before=record)


def pad_state(page) -> dict:
    return page.evaluate(f"""() => {{ const p = {PAD}; return p && p.header ? {{point: p.point, versions: p.versions,
        draws: p.stats.draws, distinct: p.stats.distinct, key: p.header.model.key, error: p.root.dataset.error,
        codes: Array.from(p.codes.slice(0, 8)), mu: p.el.pad.dataset.mu || null,
        input: p.input.filled ? Array.from(p.input.pixels()).join() : null}} : null; }}""")


def to_page(page, z) -> tuple[float, float]:
    return tuple(page.evaluate(f"""(z) => {{ const p = {PAD}, r = p.el.pad.getBoundingClientRect();
        const [x, y] = p.toPixels(z[0], z[1]); return [r.left + x, r.top + y]; }}""", [float(v) for v in z]))


def open_pad(page) -> None:
    go(page, "sliders", "Latent sliders")
    wait_until(lambda: pad_state(page), 30, "/sliders: the latent pad never received its model", page=page)
    page.locator(".latent-pad").scroll_into_view_if_needed()


@pytest.mark.timeout(120)
def test_1_the_pad_decodes_what_the_server_decodes(page, state, app_server, console_errors):
    open_pad(page)
    z = np.array([[0, 0], [1.5, -0.5], [-3.9, 3.9], [4, 4], [-0.7, 2.2], [2.5, 1.0]], np.float32)
    got = np.asarray(page.evaluate(f"(codes) => codes.map((c) => {PAD}.decodeAt(c))", z.tolist()), np.float32)
    want = decode_codes(ckpt_io.load(DEFAULT_SHAPES).model, z).reshape(len(z), -1)
    error = np.abs(got - want)
    assert error.mean() < 1e-4, f"mean |browser - decode_codes| = {error.mean():.2e} per pixel (max {error.max():.2e})"
    assert page.locator(".lp-error").is_hidden()
    assert_clean(page, "/sliders", app_server, console_errors)
    state["open"] = True


@pytest.mark.timeout(120)
def test_2_a_drag_draws_before_the_release_and_the_release_reaches_the_page(page, state, app_server, console_errors,
                                                                            traffic):
    if not state.get("open"):
        pytest.skip("needs the pad open")
    start, end = to_page(page, (-3.0, -2.0)), to_page(page, (2.0, 1.5))
    before = pad_state(page)
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, 41):
        t = i / 40
        page.mouse.move(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
    during = pad_state(page)
    assert during["distinct"] - before["distinct"] >= 30, f"{during['distinct'] - before['distinct']} distinct pictures"
    assert "Released at" not in main_text(page), "the point reached Python before the release"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pad-mid-drag.png"))  # as it is: conftest's screenshot moves the mouse
    released_at = time.monotonic()
    page.mouse.up()
    x, y = (f"{v:.2f}".replace("-", "−") for v in during["point"])
    wait_until(lambda: f"Released at z = ({x}, {y})" in main_text(page), 30, lambda: (
        f"the page did not show the released point ({x}, {y}); it says {main_text(page)[-300:]!r}"), page=page)
    wait_for_app_idle(page)
    after = pad_state(page)
    assert after["versions"] == 1 and after["point"] == during["point"], after
    # The rerun after the release hands the pad the same payload: Streamlit sends a reference, not the weights.
    received = sum(n for t, n in traffic["frames"] if t >= released_at)
    assert received < 100_000, f"{received} bytes came over the websocket after the release"
    assert_clean(page, "/sliders (drag)", app_server, console_errors)


@pytest.mark.timeout(120)
def test_3_hovering_a_code_shows_its_thumbnails(page, state, app_server, console_errors):
    if not state.get("open"):
        pytest.skip("needs the pad open")
    target = page.evaluate(f"""() => {{ const p = {PAD}, d = p.dots, n = d.length / 2; let best = -1, gap = -1;
        for (let k = 0; k < n; k += 3) {{ if (!isFinite(d[2 * k])) continue; let g = Infinity;
            for (let j = 0; j < n; j++) if (j !== k && isFinite(d[2 * j])) g = Math.min(g, Math.hypot(d[2 * j] - d[2 * k], d[2 * j + 1] - d[2 * k + 1]));
            if (g > gap) {{ gap = g; best = k; }} }}
        const r = p.el.pad.getBoundingClientRect(); return [best, r.left + d[2 * best], r.top + d[2 * best + 1]]; }}""")
    k, x, y = target
    page.mouse.move(x + 20, y + 20)
    page.mouse.move(x, y)
    wait_until(lambda: page.evaluate("() => document.querySelector('.lp-root').dataset.hovered") == str(k), 5,
               f"hovering test code #{k} did not pick it", page=page)
    page.wait_for_timeout(300)
    lit = page.evaluate("""() => ['.lp-original', '.lp-recon'].map((s) => { const c = document.querySelector(s);
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((v, i) => i % 4 === 0 && v > 128).length; })""")
    assert min(lit) > 10, f"the thumbnails are blank: {lit} bright pixels in the test image and its reconstruction"
    text = page.locator(".lp-hover-text").inner_text()
    assert f"test image #{k}" in text and re.search(r"square|circle|triangle|cross|heart", text), text
    assert_clean(page, "/sliders (hover)", app_server, console_errors)


@pytest.mark.timeout(240)
def test_4_while_a_job_trains_new_weights_arrive_and_the_point_stays(page, state, app_server, console_errors):
    if not state.get("open"):
        pytest.skip("needs the pad open")
    go(page, "train", "Train a VAE")
    start_job(page, JOB_NAME, epochs=50, batch=16)
    try:
        open_pad(page)
        wait_until(lambda: (pad_state(page) or {}).get("key", "").startswith("job:"), 30,
                   "/sliders: the pad never got the job's weights", page=page)
        page.mouse.click(*to_page(page, (1.5, -1.0)))
        wait_for_app_idle(page)
        _stroke(page, SEVEN)  # a drawn input, encoded in the page; it stays while the weights change under it
        first = pad_state(page)
        assert first["mu"], "the drawn input has no posterior"
        page.evaluate(f"() => {{ {PAD}.marker = 'no reload'; }}")
        t0, seen = time.monotonic(), {(first["versions"], first["mu"])}

        def two_new_versions():
            s = pad_state(page)
            seen.add((s["versions"], s["mu"]))
            return s["versions"] >= first["versions"] + 2 and s

        later = wait_until(two_new_versions, NEW_VERSIONS_S,
                           lambda: f"the pad received {pad_state(page)['versions'] - first['versions']} new weight versions "
                                   f"in {NEW_VERSIONS_S} s", page=page, interval=0.2)
        state["versions_seconds"] = time.monotonic() - t0
        assert page.evaluate(f"() => {PAD}.marker") == "no reload"
        assert later["point"] == first["point"] and later["key"] != first["key"]
        assert later["codes"] != first["codes"], "the codes on the plane did not follow the new snapshot"
        assert later["input"] == first["input"], "the drawn input changed"
        assert len({mu for _, mu in seen}) >= 3, f"data-mu did not follow each new version: {sorted(seen)}"
        screenshot(page, "pad-live")
        assert_clean(page, "/sliders (live)", app_server, console_errors)
    finally:
        go(page, "train", "Train a VAE")
        page.get_by_role("button", name="Stop").click()
        wait_until(lambda: f"{JOB_NAME}: stopped" in main_text(page), 60, "the job did not stop", page=page)


def test_5_the_tab_asked_nothing_of_any_other_host(state, app_server, traffic):
    if not state.get("open"):
        pytest.skip("needs the pad open")
    own = app_server.url + "/"
    foreign = sorted({u for u in traffic["requests"] if not (u.startswith(own) or u.startswith(("blob:", "data:")))})
    assert traffic["requests"] and not foreign, f"requests to other hosts: {foreign[:10]}"
