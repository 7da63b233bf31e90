"""The Train page's "Your own images" in a real browser: a folder path typed into the picker, a .zip of
the same folder uploaded, each previewed (samples and class counts); then "Train on these images", a
short run, and the explore pages in colour. Writes docs/screenshots/own-images.png, and a screenshot of
every step to docs/e2e/.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bench.harness import VIEWPORT
from vae import checkpoint as ckpt_io

from .conftest import CONTENT_HEIGHT_JS, TWO_FRAMES_JS, assert_clean, screenshot, wait_for_app_idle, wait_until
from .test_colour import DOC_SHOTS, STIMAGE, assert_colour_pictures, wait_for_finished
from .test_teacher_loop import MAIN, go, main_text, plot_drawn

pytestmark = pytest.mark.e2e

CLASSES = {"blue-circles": (30, 60, 230), "green-triangles": (30, 200, 40), "red-squares": (220, 30, 30)}
PER_CLASS = 20
CKPT_NAME = "e2e-own"
IMAGE_SIZE = 24  # not the picker's default 32: the form must take the size set beside the preview
# Ten epochs of small batches: one epoch of 51 images is a step or two, whose reconstructions are still
# uniform grey; this many (about a second) already redraw each shape in its colour.
EPOCHS, BATCH = 10, 8
TRAIN_FINISH_S = 90

EXPANDER = '[data-testid="stExpander"]:has(.st-key-own_path)'
SAMPLES = f'{EXPANDER} [data-testid="stImage"] img'
PREVIEW_S = 60  # the images read and cached on a busy 2-core machine


def write_images(root: Path) -> None:
    """PER_CLASS colour pictures of each class on a near-black ground, of different sizes and aspect
    ratios, half PNG and half JPEG."""
    for name, (r, g, b) in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            side = 40 + 3 * i
            picture = Image.new("RGB", (side + 8 * (i % 3), side), (10, 10, 10))
            draw, m, e = ImageDraw.Draw(picture), side // 5, side - side // 5
            fill = (r, min(255, g + 4 * i), b)
            if name == "red-squares":
                draw.rectangle([m, m, e, e], fill=fill)
            elif name == "blue-circles":
                draw.ellipse([m, m, e, e], fill=fill)
            else:
                draw.polygon([(side // 2, m), (e, e), (m, e)], fill=fill)
            picture.save(root / name / f"{i:02d}.{'jpg' if i % 2 else 'png'}")


def zip_of(folder: Path) -> bytes:
    """The folder zipped as a file manager does it: one top folder holding the class folders."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return out.getvalue()


@pytest.fixture(scope="module")
def own_folder(app_server) -> Path:
    """The images, three levels below the server's data folder: deeper than the picker looks, so only a
    typed path reaches them."""
    folder = app_server.data_dir / "classroom" / "term-1" / "week-3" / "my-shapes"
    write_images(folder)
    return folder


# --- the preview --------------------------------------------------------------------------------------

def picker_value(page) -> str:
    return page.get_by_role("combobox", name="Image folder", exact=True).input_value()


def class_count_rows(page) -> list[list[str]]:
    """The class-count table's cells, row by row (st.dataframe keeps an accessible table beside its canvas)."""
    cells = page.locator(f"{EXPANDER} [data-testid='stDataFrame'] td").all_inner_texts()
    return [cells[i:i + 3] for i in range(0, len(cells), 3)]


def wait_for_preview(page, folder: Path, data_dir: Path, where: str) -> None:
    """The preview of this folder: its summary line (naming the folder relative to the data folder, which
    the expander says above it), the sample picture in colour, the class counts."""
    summary = f"{folder.relative_to(data_dir).as_posix()}: Read {len(CLASSES) * PER_CLASS} images in {len(CLASSES)} classes"

    def shown():
        assert_clean_enough(page, where)
        return summary in page.locator(EXPANDER).inner_text() and class_count_rows(page)

    wait_until(shown, PREVIEW_S, lambda: (f"{where}: the preview of {folder} did not appear within {PREVIEW_S} s; the "
                                          f"expander says {page.locator(EXPANDER).inner_text()[-600:]!r}"), page=page)
    wait_for_app_idle(page)
    rows = class_count_rows(page)
    assert [r[0] for r in rows] == sorted(CLASSES) and all(int(r[1]) + int(r[2]) == PER_CLASS for r in rows), (
        f"{where}: the class counts should list {sorted(CLASSES)} with {PER_CLASS} images each, not {rows}")
    assert_colour_pictures(page, SAMPLES, f"{where} (the sample images)")


def sample_width(page) -> int:
    """The natural width of the sample picture (0 while none is drawn): it grows with the image size."""
    return page.evaluate("""(s) => { const img = document.querySelector(s);
        return img && img.complete ? img.naturalWidth : 0; }""", SAMPLES)


def assert_clean_enough(page, where: str) -> None:
    """No exception box while waiting (the full check, assert_clean, follows once the page settles)."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        pytest.fail(f"stException on {where}: {' '.join(boxes.first.inner_text().split())[:600]}", pytrace=False)


def element_screenshot(page, selector: str, path: Path) -> None:
    """A PNG of one element. Streamlit scrolls inside its main container, so the window first grows to the
    content's height (the width, and so the layout, stays), as conftest's whole_page_screenshot does."""
    page.mouse.move(VIEWPORT["width"] // 2, 10)  # no hover highlight on a widget in the shot
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # nor a focused help tooltip
    height = min(max(VIEWPORT["height"], page.evaluate(CONTENT_HEIGHT_JS)), 4000)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.evaluate(TWO_FRAMES_JS)
    try:
        page.locator(selector).screenshot(path=str(path))
    finally:
        page.set_viewport_size(VIEWPORT)
        page.evaluate(TWO_FRAMES_JS)


@pytest.mark.timeout(120)
def test_1_a_typed_folder_path_is_kept_and_previewed(page, state, own_folder, app_server, console_errors):
    go(page, "train", "Train a VAE")
    page.locator(f"{MAIN} summary", has_text="Your own images").click()
    picker = page.get_by_role("combobox", name="Image folder", exact=True)
    picker.click()
    page.keyboard.type(str(own_folder))
    page.keyboard.press("Enter")
    wait_for_preview(page, own_folder, app_server.data_dir, "/train (typed folder)")
    assert picker_value(page) == str(own_folder), f"the typed folder did not survive the rerun: {picker_value(page)!r}"

    # Another rerun, from the size beside the preview: the typed path stays, the preview follows.
    before = sample_width(page)
    size = page.get_by_label("Image size", exact=True)
    size.fill(str(IMAGE_SIZE))
    size.press("Tab")
    wait_until(lambda: sample_width(page) not in (0, before), 30, lambda: (
        f"the sample images were not redrawn at {IMAGE_SIZE} px: still {sample_width(page)} px wide"), page=page)
    wait_for_preview(page, own_folder, app_server.data_dir, "/train (typed folder, new size)")
    assert picker_value(page) == str(own_folder), (
        f"the typed folder did not survive a second rerun (the image size changed): {picker_value(page)!r}")

    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    element_screenshot(page, EXPANDER, DOC_SHOTS / "own-images.png")
    assert_clean(page, "/train (typed folder)", app_server, console_errors)
    state["typed"] = True


@pytest.mark.timeout(120)
def test_2_an_uploaded_zip_is_unpacked_and_previewed(page, state, own_folder, app_server, console_errors):
    if not state.get("typed"):
        pytest.skip("needs the typed-folder step")
    page.set_input_files(".st-key-own_zip input[type='file']", files=[{
        "name": "My shapes.zip", "mimeType": "application/zip", "buffer": zip_of(own_folder)}])
    unpacked = app_server.data_dir / "uploads" / "My-shapes" / own_folder.name
    wait_for_preview(page, unpacked, app_server.data_dir, "/train (uploaded .zip)")
    assert (unpacked / "red-squares" / "00.png").is_file(), f"the .zip was not unpacked into {unpacked}"
    assert picker_value(page) == str(unpacked), f"the picker should show the unpacked folder, not {picker_value(page)!r}"
    screenshot(page, "own-2-zip")
    assert_clean(page, "/train (uploaded .zip)", app_server, console_errors)
    state["folder"] = unpacked


@pytest.mark.timeout(TRAIN_FINISH_S + 60)
def test_3_train_on_these_images(page, state, app_server, console_errors):
    if not state.get("folder"):
        pytest.skip("needs the upload step")
    page.get_by_role("button", name=re.compile("Train on these images")).click()
    wait_for_app_idle(page)
    dataset = page.get_by_role("combobox", name="Dataset", exact=True).input_value()
    assert dataset == "Your own image folder", f"'Train on these images' left the form's dataset at {dataset!r}"
    for label, value in (("Epochs", str(EPOCHS)), ("Batch size", str(BATCH)), ("Checkpoint name (optional)", CKPT_NAME)):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name=re.compile("Start training")).click()
    wait_for_finished(page, CKPT_NAME, TRAIN_FINISH_S)
    screenshot(page, "own-3-train")
    saved = ckpt_io.load(app_server.checkpoint_dir / f"{CKPT_NAME}.pt")
    assert (saved.train_config.dataset, saved.train_config.data_dir) == ("folder", str(state["folder"])), (
        f"the run trained {saved.train_config.dataset} in {saved.train_config.data_dir}, not the uploaded folder")
    assert saved.model_config.image_shape == (3, IMAGE_SIZE, IMAGE_SIZE) and saved.class_names == sorted(CLASSES), (
        f"the model is {saved.model_config.image_shape} with classes {saved.class_names}")
    assert_clean(page, "/train (own images)", app_server, console_errors)
    state["trained"] = True


@pytest.mark.timeout(120)
def test_4_scatter_and_reconstructions_show_colour(page, state, app_server, console_errors):
    if not state.get("trained"):
        pytest.skip("needs the training step")
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    wait_for_app_idle(page)
    assert re.search(r"#\d+: (blue-circles|green-triangles|red-squares)", main_text(page)), (
        f"/scatter: the chosen test image is not named by its class: {main_text(page)[-300:]!r}")
    assert_colour_pictures(page, STIMAGE, "/scatter (the test image | its reconstruction)")
    screenshot(page, "own-4-scatter")
    assert_clean(page, "/scatter (own images)", app_server, console_errors)

    go(page, "reconstructions", "Reconstructions")
    wait_until(lambda: page.locator(STIMAGE).count() >= 2, 30, "/reconstructions: the strips never drew", page=page)
    wait_for_app_idle(page)
    assert_colour_pictures(page, STIMAGE, "/reconstructions (own images)", at_least=2)
    screenshot(page, "own-4-reconstructions")
    assert_clean(page, "/reconstructions (own images)", app_server, console_errors)
