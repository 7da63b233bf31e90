"""A colour model in a real browser: train the built-in colour shapes from the Train page, then open
every explore page and read back the pixels each one decoded (st.image, the manifold's PNG, the latent
pad's canvas) to check that they are in colour, not grey. Writes docs/screenshots/colour-manifold.png and
colour-scatter.png, and a screenshot of every step to docs/e2e/.
"""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from bench.harness import ROOT
from vae import checkpoint as ckpt_io

from .conftest import (TWO_FRAMES_JS, assert_clean, exception_texts, screenshot, wait_for_app_idle, wait_until,
                       whole_page_screenshot)
from .test_teacher_loop import MAIN, PICK_POINT_JS, go, main_text, plot_drawn

pytestmark = pytest.mark.e2e

DOC_SHOTS = ROOT / "docs" / "screenshots"
CKPT_NAME = "e2e-colour"
# Four epochs of the default MLP: about 8 s of training alone, and its manifold already runs through
# the hues (two epochs decode dim, nearly grey blobs).
EPOCHS = 4
TRAIN_FINISH_S = 120

LIT = 40  # a pixel whose brightest channel is at most this is background black
SPREAD = 40  # a pixel whose channels differ by more than this is coloured
MIN_SHARE = 0.3  # coloured pixels among the lit ones, for a picture to count as a colour picture
MIN_LIT = 50

# Every decoded <img> (drawn onto a canvas at its natural size) and <canvas> matching the selector, as PNG
# data URLs; the page's own pictures are same-origin, so the canvas is never tainted.
PICTURES_JS = """(selector) => Array.from(document.querySelectorAll(selector)).map((el) => {
    if (el.tagName === 'CANVAS') return el.width && el.height ? el.toDataURL('image/png') : null;
    if (!el.complete || !el.naturalWidth) return null;
    const c = document.createElement('canvas');
    c.width = el.naturalWidth; c.height = el.naturalHeight;
    c.getContext('2d').drawImage(el, 0, 0);
    return c.toDataURL('image/png');
}).filter((url) => url)"""

# The source of every image trace (the manifold's PNG data URI) in the main area's plotly charts.
PLOTLY_IMAGES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot'))
    .flatMap((gd) => (gd.data || []).filter((t) => t.type === 'image' && t.source).map((t) => t.source))"""

PAD = "document.querySelector('.lp-root').latentPad"
STIMAGE = f'{MAIN} [data-testid="stImage"] img'


def needs_model(state: dict) -> None:
    if not state.get("trained"):
        pytest.skip("needs the colour model, whose training did not pass")


# --- reading pixels back ------------------------------------------------------------------------------

def decode_data_url(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def colour_stats(picture: Image.Image) -> tuple[int, float]:
    """(lit pixels, share of them that are coloured)."""
    rgb = np.asarray(picture.convert("RGB"), dtype=np.int16)
    hi, lo = rgb.max(-1), rgb.min(-1)
    lit = hi > LIT
    n = int(lit.sum())
    return n, float(((hi - lo) > SPREAD)[lit].mean()) if n else 0.0


def is_colour(picture: Image.Image) -> bool:
    lit, share = colour_stats(picture)
    return lit >= MIN_LIT and share >= MIN_SHARE


def page_pictures(page, selector: str) -> list[Image.Image]:
    return [decode_data_url(url) for url in page.evaluate(PICTURES_JS, selector)]


def assert_colour_pictures(page, selector: str, where: str, at_least: int = 1) -> None:
    """At least `at_least` pictures match the selector, and every one of them is in colour."""
    pictures = page_pictures(page, selector)
    assert len(pictures) >= at_least, f"{where}: expected {at_least} decoded picture(s) at {selector!r}, got {len(pictures)}"
    stats = [(p.size, *colour_stats(p)) for p in pictures]
    grey = [s for p, s in zip(pictures, stats) if not is_colour(p)]
    assert not grey, (f"{where}: picture(s) not in colour (size, lit pixels, coloured share): {grey}; all: {stats}; "
                      f"a colour picture has at least {MIN_LIT} lit pixels and a coloured share of {MIN_SHARE}")


def assert_colour_manifolds(page, where: str, at_least: int = 1) -> None:
    """The plotly image traces (the manifold's PNG) are RGB and in colour."""
    sources = page.evaluate(PLOTLY_IMAGES_JS)
    assert len(sources) >= at_least, f"{where}: expected {at_least} manifold image(s), got {len(sources)}"
    for url in sources:
        assert url.startswith("data:image/png;base64,"), f"{where}: the manifold's source is not a PNG data URI: {url[:60]!r}"
        picture = decode_data_url(url)
        assert picture.mode in ("RGB", "RGBA"), f"{where}: the manifold PNG is {picture.mode}, not RGB"
        assert is_colour(picture), f"{where}: the manifold is not in colour: (lit pixels, coloured share) {colour_stats(picture)}"


def doc_screenshot(page, name: str, width: int | None = None) -> None:
    """docs/screenshots/<name>.png of the whole page, at the width of the other screenshots or `width` px."""
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    whole_page_screenshot(page, DOC_SHOTS / f"{name}.png", **({"width": width} if width else {}))


# --- 1: train -----------------------------------------------------------------------------------------

def choose_option(page, label: str, option: str) -> None:
    """Picks an option of a selectbox by its label, as a user does: open the list, click the option."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def wait_for_finished(page, name: str, timeout: float) -> None:
    def finished():
        text = main_text(page)
        if exception_texts(page) or f"{name}: failed" in text:
            pytest.fail(f"training {name} failed in the browser: exceptions {exception_texts(page)}; the page says "
                        f"{text[-400:]!r}", pytrace=False)
        return f"{name}: finished" in text

    wait_until(finished, timeout, lambda: (f"{name} did not finish within {timeout:.0f} s; the Train page says "
                                           f"{main_text(page)[-400:]!r}"), page=page, interval=0.5)
    wait_for_app_idle(page)


@pytest.mark.timeout(TRAIN_FINISH_S + 60)
def test_1_train_colour_shapes(page, state, app_server, console_errors):
    go(page, "train", "Train a VAE")
    choose_option(page, "Dataset", "Colour shapes (built in, no download)")
    for label, value in (("Epochs", str(EPOCHS)), ("Checkpoint name (optional)", CKPT_NAME)):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name=re.compile("Start training")).click()
    wait_for_finished(page, CKPT_NAME, TRAIN_FINISH_S)
    screenshot(page, "colour-1-train")
    saved = ckpt_io.load(app_server.checkpoint_dir / f"{CKPT_NAME}.pt")
    assert saved.dataset == "shapes-color" and saved.model_config.image_shape == (3, 28, 28), (
        f"the run trained {saved.dataset} at {saved.model_config.image_shape}, not colour shapes at (3, 28, 28)")
    assert_clean(page, "/train", app_server, console_errors)
    state["trained"] = True


# --- 2: the explore pages -----------------------------------------------------------------------------

def pad_point_on_page(page, z: tuple[float, float]) -> tuple[float, float]:
    return tuple(page.evaluate(f"""(z) => {{ const p = {PAD}, r = p.el.pad.getBoundingClientRect();
        const [x, y] = p.toPixels(z[0], z[1]); return [r.left + x, r.top + y]; }}""", list(z)))


@pytest.mark.timeout(120)
def test_2a_latent_pad_draws_in_colour(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "sliders", "Latent sliders")
    wait_until(lambda: page.evaluate(f"() => !!({PAD} && {PAD}.header)"), 30,
               "/sliders: the latent pad never received its model", page=page)
    page.locator(f"{MAIN} .latent-pad").scroll_into_view_if_needed()
    # The centre of a 2-D space can decode to a grey mixture of hues: a drag to each corner of the prior's
    # 2σ square reads the picture there.
    corners = [(-2.0, -2.0), (2.0, -2.0), (2.0, 2.0), (-2.0, 2.0)]
    page.mouse.move(*pad_point_on_page(page, (0.0, 0.0)))
    page.mouse.down()
    seen = []
    for z in corners:
        page.mouse.move(*pad_point_on_page(page, z), steps=8)
        page.evaluate(TWO_FRAMES_JS)  # the pad may draw on the next animation frame
        seen.append((z, page_pictures(page, f"{MAIN} .lp-picture")[0]))
    page.mouse.up()
    stats = [(z, *colour_stats(p)) for z, p in seen]
    assert sum(is_colour(p) for _, p in seen) >= 3, (
        f"/sliders: the pad's picture is in colour at fewer than 3 of the 4 corners (z, lit pixels, coloured share): {stats}")
    wait_until(lambda: "Released at z" in main_text(page), 30, "/sliders: the release did not reach the page", page=page)
    wait_for_app_idle(page)
    screenshot(page, "colour-2a-sliders")
    assert_clean(page, "/sliders", app_server, console_errors)


@pytest.mark.timeout(120)
def test_2b_manifold_is_colour(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "manifold", "Manifold")
    wait_until(lambda: plot_drawn(page), 30, "/manifold: the manifold chart never drew", page=page)
    assert_colour_manifolds(page, "/manifold")
    doc_screenshot(page, "colour-manifold")
    assert_clean(page, "/manifold", app_server, console_errors)


def click_scatter_point(page) -> int:
    """Clicks the scatter's most isolated point, once plotly's hover label names it; returns its test image #."""
    target = page.evaluate(PICK_POINT_JS)
    assert target, "/scatter: no point of the scatter lies inside the plot area and the window"
    x, y, index = target["x"], target["y"], target["index"]
    label = page.locator(f"{MAIN} .hoverlayer .hovertext")
    own = re.compile(rf"#{index}(?!\d)")
    nudges = iter([(1, 0), (0, 1), (-1, 0), (0, -1)] * 10)

    def hovering():  # plotly clicks the point its throttled hover pass last found
        if any(own.search(t) for t in label.all_text_contents()):
            return True
        dx, dy = next(nudges, (0, 0))
        page.mouse.move(x + dx, y + dy)
        page.mouse.move(x, y)
        return False

    page.mouse.move(x, y)
    wait_until(hovering, 10, lambda: f"/scatter: hovering test image #{index} does not label it: {target}",
               page=page, interval=0.3)
    page.mouse.click(x, y)
    return index


def click_scatter_point_and_wait(page) -> int:
    """Clicks the scatter's most isolated point and waits until the page shows that test image; its #."""
    page.locator(f"{MAIN} .js-plotly-plot").first.scroll_into_view_if_needed()
    wait_for_app_idle(page)
    index = click_scatter_point(page)
    picked = page.get_by_label("or pick test image #", exact=True)
    wait_until(lambda: f"#{index}: " in main_text(page) and picked.input_value() == str(index), 30, lambda: (
        f"/scatter: clicking test image #{index} did not show it; the number input says {picked.input_value()}"),
        page=page)
    wait_for_app_idle(page)
    return index


@pytest.mark.timeout(120)
def test_2c_scatter_click_shows_colour_images(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    click_scatter_point_and_wait(page)
    assert_colour_pictures(page, STIMAGE, "/scatter (the test image | its reconstruction)")
    doc_screenshot(page, "colour-scatter")
    assert_clean(page, "/scatter", app_server, console_errors)


@pytest.mark.timeout(120)
def test_2d_reconstructions_are_colour(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "reconstructions", "Reconstructions")
    wait_until(lambda: len(page_pictures(page, STIMAGE)) >= 2, 30, lambda: (
        f"/reconstructions: expected the strip and the interpolation, got {len(page_pictures(page, STIMAGE))} image(s)"),
        page=page)
    assert_colour_pictures(page, STIMAGE, "/reconstructions", at_least=2)
    screenshot(page, "colour-2d-reconstructions")
    assert_clean(page, "/reconstructions", app_server, console_errors)


@pytest.mark.timeout(120)
def test_2e_replay_manifold_is_colour(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "replay", "Training replay")
    wait_until(lambda: page.evaluate(PLOTLY_IMAGES_JS), 30, "/replay: the replay's manifold never drew", page=page)
    assert_colour_manifolds(page, "/replay")
    screenshot(page, "colour-2e-replay")
    assert_clean(page, "/replay", app_server, console_errors)


@pytest.mark.timeout(120)
def test_2f_compare_shows_the_model_in_colour(page, state, app_server, console_errors):
    needs_model(state)
    go(page, "compare", "Compare")
    wait_until(lambda: page.evaluate(PLOTLY_IMAGES_JS), 30, lambda: (
        f"/compare: no manifold drew for this tab's model; the page says {main_text(page)[:400]!r}"), page=page)
    wait_for_app_idle(page)
    assert_colour_manifolds(page, "/compare")
    screenshot(page, "colour-2f-compare")
    assert_clean(page, "/compare", app_server, console_errors)
