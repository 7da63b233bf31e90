"""The whole loop in a real browser, like a teacher's first five minutes: open the app, train the
shapes dataset for 2 epochs and watch the curves grow, open every explore page (move a slider,
click a point of the scatter), load the saved checkpoint in a fresh tab, and upload a corrupt file.

The steps are ordered tests sharing one server, one browser and one tab (a Streamlit session lives
as long as its tab, so the tab navigates by the sidebar and never reloads). After every step: no
exception box on the page, no browser console error, no traceback in the server's output.
Screenshots of each step go to docs/e2e/.
"""
from __future__ import annotations

import re
import time

import pytest

from pages.ui.sitemap import PAGES

from .conftest import (NAV_LINKS, assert_clean, assert_no_exception, exception_texts, nav_link, screenshot,
                       wait_for_app_idle, wait_until)

pytestmark = pytest.mark.e2e

CKPT_NAME = "e2e-shapes"  # typed into the form, so the checkpoint file is known exactly
EPOCHS = 2
BATCH = 16
CURVES_APPEAR_S = 90  # shapes generation + model build on a busy 2-core machine
TRAIN_FINISH_S = 300

MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
CARD = '.st-key-model_card'

# Points in the first trace of the first plotly chart in the main area (-1: no chart drawn yet).
FIRST_TRACE_POINTS_JS = """() => {
    const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
    if (!gd || !gd._fullLayout) return -1;
    const t = (gd.data || [])[0];
    return t && t.x ? t.x.length : -1;
}"""


def needs(state: dict, key: str, step: str) -> None:
    if not state.get(key):
        pytest.skip(f"needs the {step} step, which did not pass")


def main_text(page) -> str:
    return page.locator(MAIN).inner_text()


def live_text(page) -> str:
    """The Train page's job view (status, progress, caption), without the form above it."""
    text = main_text(page)
    at = text.find(f"{CKPT_NAME}: ")
    return " ".join((text[at:] if at >= 0 else text[-300:]).split())[:400]


def wait_for_title(page, title: str, where: str, timeout: float = 30.0) -> None:
    def shown():
        assert_no_exception(page, where)  # a page that raises shows its exception instead of its body
        return page.locator(f"{MAIN} h1", has_text=title).count() > 0

    wait_until(shown, timeout, lambda: f"{where}: the title {title!r} did not appear within {timeout:.0f} s; "
               f"the page says: {main_text(page)[:300]!r}", page=page)


def go(page, path: str, title: str) -> None:
    """Navigates inside the session by the sidebar link (a URL change would start a new session)."""
    nav_link(page, path).click()
    wait_for_title(page, title, f"/{path}")
    wait_for_app_idle(page)
    assert_no_exception(page, f"/{path}")


def image_srcs(page, scope: str = MAIN) -> list[str]:
    """src of every drawn st.image in scope (only images the browser actually decoded)."""
    return page.evaluate("""(scope) => Array.from(document.querySelectorAll(scope + ' [data-testid="stImage"] img'))
        .filter(img => img.complete && img.naturalWidth > 0).map(img => img.getAttribute('src'))""", scope)


def plot_drawn(page, index: int = 0) -> bool:
    return page.evaluate("""(i) => {
        const gd = document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')[i];
        return !!(gd && gd._fullLayout && gd.querySelector('.main-svg'));
    }""", index)


# --- 1 ------------------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_1_home_renders(page, state, app_server, console_errors):
    wait_for_title(page, "Latent Explorer", "/ (home)")
    wait_for_app_idle(page)
    assert page.locator(SIDEBAR).locator(NAV_LINKS).count() == len(PAGES), \
        f"the sidebar should list the {len(PAGES)} pages"
    screenshot(page, "01-home")
    assert_clean(page, "/ (home)", app_server, console_errors)
    state["home"] = True


# --- 2 ------------------------------------------------------------------------------------------------

@pytest.mark.timeout(TRAIN_FINISH_S + CURVES_APPEAR_S + 60)
def test_2_train_shapes_live(page, state, app_server, console_errors):
    needs(state, "home", "home page")
    go(page, "train", "Train a VAE")

    dataset = page.get_by_role("combobox", name="Dataset", exact=True).input_value()
    assert dataset.startswith("Shapes"), f"the dataset should default to shapes, not {dataset!r}"
    # The default hidden sizes (512,256) with small batches: 2 x 1250 steps, long enough (about 15 s on
    # an idle 2-core machine) to watch the curves grow, short enough to finish well inside the budget.
    for label, value in (("Epochs", str(EPOCHS)), ("Batch size", str(BATCH)), ("Checkpoint name (optional)", CKPT_NAME)):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name=re.compile("Start training")).click()

    def reading() -> tuple[float, int, str]:
        """(when, points in the first curve, the job's status as the page shows it)."""
        assert_no_exception(page, "/train")
        n = page.evaluate(FIRST_TRACE_POINTS_JS)
        status = re.search(rf"{re.escape(CKPT_NAME)}: (\w+)", main_text(page))
        return time.monotonic(), n, status.group(1) if status else "?"

    # The curves appear...
    first = wait_until(lambda: (r := reading())[1] > 0 and r, CURVES_APPEAR_S, lambda: (
        f"the loss curves did not appear within {CURVES_APPEAR_S} s of pressing Start; the live fragment may "
        f"have stopped polling (the Train page still says {live_text(page)!r})"), page=page)

    # A student's zoom on the KL panel, and the chart element itself, must outlive the updates: the live
    # curves take new data in place (pages/ui/live_plot.py) instead of being drawn anew.
    page.evaluate("""() => { const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        gd.leMark = 'first'; return Plotly.relayout(gd, {'yaxis2.range': [0, 50]}); }""")

    # ... and grow while it runs: two readings at least a second apart, both while running, the second larger.
    def grown():
        r = reading()
        if r[2] != "running" or first[2] != "running":
            pytest.fail(f"training was {r[2]!r} {r[0] - first[0]:.1f} s after the curves first drew ({first[1]} -> "
                        f"{r[1]} points), before two readings a second apart could see them grow; the test's "
                        f"training is too short for this machine: give it more steps", pytrace=False)
        return r[0] - first[0] >= 1.0 and r[1] > first[1] and r

    grow_s = 20
    later = wait_until(grown, grow_s, lambda: (
        f"loss curve did not grow between readings: {first[1]} -> {reading()[1]} points over {grow_s} s; the live "
        f"fragment may have stopped polling (the Train page says {live_text(page)!r})"), page=page)
    first, later = first[1], later[1]
    kept = page.evaluate("""() => { const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        return [gd.leMark || null, [...gd.layout.yaxis2.range]]; }""")
    assert kept == ["first", [0, 50]], (
        f"the loss curves were drawn anew when their data changed ({first} -> {later} points): element mark and "
        f"KL zoom now {kept}, expected ['first', [0, 50]]")
    page.evaluate("""() => Plotly.relayout(document.querySelector('[data-testid="stMain"] .js-plotly-plot'),
        {'yaxis2.autorange': true})""")
    page.wait_for_timeout(300)
    # A narrower page (a smaller window, or the sidebar opening) narrows the chart with it.
    viewport = page.viewport_size
    page.set_viewport_size({"width": 1000, "height": viewport["height"]})
    widths = """() => { const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        return [Math.round(gd.getBoundingClientRect().width), gd._fullLayout.width]; }"""
    try:
        wait_until(lambda: (w := page.evaluate(widths))[0] < 1000 and w[0] == w[1], 5, lambda: (
            f"the loss curves did not follow a narrower window: element and plot widths {page.evaluate(widths)}"),
            page=page)
    finally:
        page.set_viewport_size(viewport)
    wait_until(lambda: (w := page.evaluate(widths))[0] == w[1], 5, lambda: (
        f"the loss curves did not follow the window back: element and plot widths {page.evaluate(widths)}"), page=page)
    state["curve_points"] = (first, later)
    screenshot(page, "02-train-running")
    # The progress bar jumps to each new value: Streamlit's 0.5 s slide, started every second by the live
    # view, is what the app's PAGE_STYLE switches off (pages/ui/shell.py).
    sliding = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stProgress"] *')]
        .map(e => getComputedStyle(e).transitionDuration)
        .filter(d => d.split(',').some(x => parseFloat(x) > 0))""")
    assert page.locator('[data-testid="stProgress"]').count() >= 1, "the Train page shows no progress bar while training"
    assert not sliding, f"the progress bar still animates its moves (transition durations {sliding})"

    # It finishes...
    heading = f"{CKPT_NAME}: finished"

    def finished():
        assert_no_exception(page, "/train")
        text = main_text(page)
        if f"{CKPT_NAME}: failed" in text:
            pytest.fail(f"training failed in the browser: {live_text(page)!r}", pytrace=False)
        return heading in text

    wait_until(finished, TRAIN_FINISH_S, lambda: (
        f"the status {heading!r} did not appear within {TRAIN_FINISH_S} s; the Train page says "
        f"{live_text(page)!r}"), page=page, interval=0.5)
    wait_for_app_idle(page)
    saved = app_server.checkpoint_dir / f"{CKPT_NAME}.pt"
    assert saved.is_file() and saved.stat().st_size > 0, \
        f"training finished but did not autosave {saved.name}; the folder holds {sorted(p.name for p in saved.parent.iterdir())}"
    assert f"saved {CKPT_NAME}.pt" in main_text(page), "the finished job should say where it saved"
    final = reading()[1]
    assert final >= later, f"the final curve has fewer points ({final}) than mid-training ({later})"
    screenshot(page, "03-train-finished")
    assert_clean(page, "/train", app_server, console_errors)
    state["trained"] = True


# --- 3 ------------------------------------------------------------------------------------------------

PAD_PICTURE_JS = """() => { const c = document.querySelector('.lp-picture');
    return c && c.width ? Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join() : null; }"""


@pytest.mark.timeout(120)
def test_3a_sliders_move_the_image(page, state, app_server, console_errors):
    needs(state, "trained", "training")
    go(page, "sliders", "Latent sliders")
    wait_until(lambda: page.evaluate(PAD_PICTURE_JS), 30, "/sliders: the latent pad never drew its picture", page=page)
    assert page.locator(f"{MAIN} .latent-pad").count() == 1
    before = page.evaluate(PAD_PICTURE_JS)
    # The pad's z1 slider, from the keyboard: every step draws in the page, the point reaches Python once the keys rest.
    thumb = page.locator(f"{MAIN} .lp-slider input[type='range']").first
    thumb.focus()
    for _ in range(10):
        thumb.press("ArrowRight")
    assert thumb.input_value() == "0.5", f"/sliders: ten ArrowRight steps left z1 at {thumb.input_value()}"
    assert page.evaluate(PAD_PICTURE_JS) != before, "/sliders: the decoded picture did not change after moving z1"
    wait_until(lambda: "Released at z = (0.50, 0.00)" in main_text(page), 30, lambda: (
        f"/sliders: the page did not show the point the pad sent; it says {main_text(page)[-400:]!r}"), page=page)
    wait_for_app_idle(page)
    screenshot(page, "04-sliders")
    assert_clean(page, "/sliders", app_server, console_errors)


@pytest.mark.timeout(120)
def test_3b_manifold_draws(page, state, app_server, console_errors):
    needs(state, "trained", "training")
    go(page, "manifold", "Manifold")
    wait_until(lambda: plot_drawn(page), 30, "/manifold: the manifold chart never drew", page=page)
    drawn = page.evaluate("""() => {
        const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        const t = gd._fullData[0];
        return {type: t.type, svgImages: gd.querySelectorAll('.imagelayer image, g.im image').length};
    }""")
    assert drawn["type"] == "image" and drawn["svgImages"] > 0, f"/manifold: the decoded grid is not drawn: {drawn}"
    screenshot(page, "05-manifold")
    assert_clean(page, "/manifold", app_server, console_errors)


# Picks the most isolated point of the scatter (so a click there can only mean it) inside the plot
# area and the viewport, and returns its page coordinates and its customdata (the test image #).
PICK_POINT_JS = """() => {
    const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const box = gd.getBoundingClientRect();
    const all = [], candidates = [];
    gd._fullData.forEach((t) => {
        if (t.visible !== true || !t.x) return;
        for (let i = 0; i < t.x.length; i++) {
            const px = xa._offset + xa.d2p(t.x[i]), py = ya._offset + ya.d2p(t.y[i]);
            if (!isFinite(px) || !isFinite(py)) continue;
            all.push([px, py]);
            const inside = px > xa._offset + 15 && px < xa._offset + xa._length - 15 &&
                py > ya._offset + 15 && py < ya._offset + ya._length - 15 &&
                box.top + py > 20 && box.top + py < window.innerHeight - 20;
            if (t.customdata && inside && i % 7 === 0) candidates.push([px, py, Number(t.customdata[i]), t.name]);
        }
    });
    let best = null, bestGap = -1;
    for (const c of candidates) {
        let gap = Infinity;
        for (const p of all) {
            const d = Math.hypot(p[0] - c[0], p[1] - c[1]);
            if (d > 0 && d < gap) gap = d;
        }
        if (gap > bestGap) { bestGap = gap; best = c; }
    }
    if (!best) return null;
    return {x: box.left + best[0], y: box.top + best[1], index: best[2], trace: best[3], gap: bestGap,
            points: all.length};
}"""


@pytest.mark.timeout(120)
def test_3c_scatter_click_shows_details(page, state, app_server, console_errors):
    needs(state, "trained", "training")
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    page.locator(f"{MAIN} .js-plotly-plot").first.scroll_into_view_if_needed()
    wait_for_app_idle(page)
    picked_field = page.get_by_label("or pick test image #", exact=True)
    before_index = picked_field.input_value()
    target = page.evaluate(PICK_POINT_JS)
    assert target, "/scatter: no point of the scatter lies inside the plot area and the window"
    assert str(target["index"]) != before_index, "the chosen point is already the selected one"

    # Plotly takes the clicked point from its (throttled) hover pass: hover right on the point, and
    # click only once the hover label names it, or a stale hover from on the way would be clicked.
    x, y, index = target["x"], target["y"], target["index"]
    label = page.locator(f"{MAIN} .hoverlayer .hovertext")
    own = re.compile(rf"#{index}(?!\d)")
    nudges = iter([(1, 0), (0, 1), (-1, 0), (0, -1)] * 10)

    def hovering():
        texts = label.all_text_contents()
        if any(own.search(t) for t in texts):
            return True
        dx, dy = next(nudges, (0, 0))
        page.mouse.move(x + dx, y + dy)
        page.mouse.move(x, y)
        return False

    page.mouse.move(x, y)
    wait_until(hovering, 10, lambda: (f"/scatter: hovering test image #{index} at ({x:.0f}, {y:.0f}) does not "
                                      f"label it; hover labels: {label.all_text_contents()}; target: {target}"),
               page=page, interval=0.3)
    page.mouse.click(target["x"], target["y"])
    wanted = f"#{target['index']}: "
    wait_until(lambda: wanted in main_text(page) and picked_field.input_value() == str(target["index"]), 30,
               lambda: (f"/scatter: clicking test image #{target['index']} ({target['trace']}) did not show its "
                        f"details; the number input says {picked_field.input_value()}, exceptions: "
                        f"{exception_texts(page)}"), page=page)
    wait_for_app_idle(page)
    details = page.locator(MAIN).locator('[data-testid="stMarkdownContainer"]', has_text=wanted).first.inner_text()
    assert "code μ" in details, f"/scatter: the details lack the code: {details!r}"
    assert image_srcs(page), "/scatter: the original | reconstruction image did not draw"
    state["scatter_click"] = target
    screenshot(page, "06-scatter-click")
    assert_clean(page, "/scatter", app_server, console_errors)


@pytest.mark.timeout(120)
def test_3d_reconstructions_draw(page, state, app_server, console_errors):
    needs(state, "trained", "training")
    go(page, "reconstructions", "Reconstructions")
    wait_until(lambda: len(image_srcs(page)) >= 2, 30, lambda: (
        f"/reconstructions: expected the reconstruction strip and the interpolation path, "
        f"got {len(image_srcs(page))} drawn image(s)"), page=page)
    wait_for_app_idle(page)
    screenshot(page, "07-reconstructions")
    assert_clean(page, "/reconstructions", app_server, console_errors)


# --- 4, 5: a fresh tab (a new session) loads the saved checkpoint, then uploads a broken file ------

@pytest.fixture(scope="module")
def fresh_page(open_page):
    return open_page("")


def card_text(page) -> str:
    return page.locator(f"{SIDEBAR} {CARD}").inner_text()


@pytest.mark.timeout(120)
def test_4_load_saved_checkpoint(fresh_page, state, app_server, console_errors):
    needs(state, "trained", "training")
    page = fresh_page
    wait_for_title(page, "Latent Explorer", "/ (home, new tab)")
    before = card_text(page)
    assert CKPT_NAME not in before, f"a new session should not already show {CKPT_NAME}: {before!r}"

    page.locator('[data-testid="stSelectbox"]', has_text="Checkpoint").get_by_role("button", name="Open").click()
    option = page.get_by_role("option", name=re.compile(rf"^{re.escape(CKPT_NAME)} · "))
    option.click()
    page.get_by_role("button", name="Load", exact=True).click()
    wait_until(lambda: CKPT_NAME in card_text(page), 30, lambda: (
        f"the sidebar card does not name {CKPT_NAME} after Load: {card_text(page)!r}"), page=page)
    wait_for_app_idle(page)
    card = card_text(page)
    assert f"Epochs: {EPOCHS}" in card and "checkpoint" in card, f"the card should describe the loaded file: {card!r}"
    assert f"Loaded {CKPT_NAME}." in main_text(page), "the Home page should confirm the load"
    screenshot(page, "08-loaded")
    assert_clean(page, "/ (home, load)", app_server, console_errors)
    state["loaded"] = True


@pytest.mark.timeout(120)
def test_5_corrupt_upload_is_a_readable_error(fresh_page, state, app_server, console_errors):
    needs(state, "loaded", "load")
    page = fresh_page
    page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', files=[{
        "name": "broken.pt", "mimeType": "application/octet-stream",
        "buffer": b"this is not a checkpoint\x00\xff\x13" * 20,
    }])
    alert = page.locator(f'{MAIN} [data-testid="stAlert"]', has_text="broken.pt")
    wait_until(lambda: alert.count() > 0, 30, lambda: (
        f"no error alert naming broken.pt after the upload; exceptions: {exception_texts(page)}; "
        f"the Home page says: {main_text(page)[:400]!r}"), page=page)
    wait_for_app_idle(page)
    message = alert.first.inner_text()
    assert "Traceback" not in message and len(message) < 300, f"the upload error is not one readable sentence: {message!r}"
    assert CKPT_NAME in card_text(page), "a refused upload must leave the current model in place"
    screenshot(page, "09-upload-error")
    assert_clean(page, "/ (home, upload)", app_server, console_errors)


# --- 6: the lecture's three variants, trained briefly from the Compare page ----------------------------

@pytest.mark.timeout(90)
def test_6_compare_trains_the_three_variants(fresh_page, state, app_server, console_errors):
    needs(state, "loaded", "load")
    page = fresh_page
    go(page, "compare", "Compare")
    t0 = time.monotonic()
    for label, value in (("Epochs", "1"), ("Training images (0: all)", "300")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Train all three").click()
    wait_until(lambda: "lecture-shapes: finished" in main_text(page), 60, lambda: (
        f"/compare: the three variants did not finish within 60 s; exceptions: {exception_texts(page)}; the page "
        f"says: {main_text(page)[:600]!r}"), page=page, interval=0.5)
    manifolds = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot'))
        .filter(gd => gd._fullData && gd._fullData[0] && gd._fullData[0].type === 'image').length"""
    wait_until(lambda: page.evaluate(manifolds) == 3, 30, lambda: (
        f"/compare: expected three manifolds side by side, got {page.evaluate(manifolds)}"), page=page)
    wait_for_app_idle(page)
    assert "posterior collapse" in main_text(page), "/compare: the KL-only model should be flagged as collapsed"
    for suffix in ("recon-only", "kl-only", "elbo"):
        assert (app_server.checkpoint_dir / f"lecture-shapes-{suffix}.pt").is_file(), suffix
    state["compare_seconds"] = time.monotonic() - t0
    screenshot(page, "10-compare")
    assert_clean(page, "/compare", app_server, console_errors)
