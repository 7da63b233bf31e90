"""The Train page's "Your own images": a folder the server allows, or a .zip upload checked before it is
unpacked, previewed (samples and class counts), trained on, then explored."""
from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import app_test, assert_no_exception, assert_one_sentence
from pages.ui.sitemap import PAGES
from vae import checkpoint as ckpt_io


def _pets(folder, per_class: int = 12) -> None:
    """Colour images of two classes, of a size other than the model's: red-ish cats, blue-ish dogs."""
    for k, name in enumerate(("cat", "dog")):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (220, 40 + 10 * i, 40) if k == 0 else (40, 40 + 10 * i, 220)
            Image.new("RGB", (30 + i, 24), colour).save(folder / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def _zip_of(folder) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, "pets/" + str(path.relative_to(folder)))
    return out.getvalue()


def _train_page():
    return app_test().switch_page("pages/train.py").run()


def test_a_folder_found_in_the_data_folder_is_previewed_trained_on_and_explored(app_env):
    _pets(app_env / "data" / "pets")
    at = _train_page()
    assert_no_exception(at, "train page")
    folder = str(app_env / "data" / "pets")
    assert folder in at.selectbox(key="own_path").options
    at.selectbox(key="own_path").set_value(folder)
    at.number_input(key="f_image_size").set_value(16)
    at.run()
    assert_no_exception(at, "preview")
    assert any("Read 24 images in 2 classes" in m.value for m in at.markdown), [m.value for m in at.markdown]
    counts = at.dataframe[0].value
    assert list(counts["class"]) == ["cat", "dog"] and list(counts["train"] + counts["test"]) == [12, 12]
    assert at.image  # the samples
    at.button(key="use_folder").click().run()
    assert at.selectbox(key="f_dataset").value == "folder"
    at.number_input(key="f_epochs").set_value(1)
    at.button(key="start").click().run()
    assert_no_exception(at, "start")
    from pages.ui.places import registry

    job = registry().get(at.session_state["job_id"])
    deadline = time.monotonic() + 120
    while job.state().active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.state().status == "finished", job.state().message
    ckpt = ckpt_io.load(job.state().checkpoint_path)
    assert ckpt.model_config.image_shape == (3, 16, 16) and ckpt.class_names == ["cat", "dog"]
    assert ckpt.train_config.dataset == "folder" and ckpt.train_config.data_dir == folder
    for page in [p.script for p in PAGES if p.tour]:
        at.switch_page(page).run()
        assert_no_exception(at, page)
        assert not [w.value for w in at.warning if "need" in w.value]


def test_a_zip_upload_is_unpacked_into_the_data_folder_and_previewed(app_env):
    _pets(app_env / "src")
    at = _train_page()
    at.file_uploader(key="own_zip").upload("My pets!.zip", _zip_of(app_env / "src"), "application/zip")
    at.run()
    assert_no_exception(at, "zip upload")
    unpacked = app_env / "data" / "uploads" / "My-pets" / "pets"
    assert (unpacked / "cat" / "0.jpg").is_file()
    assert at.session_state["own_folder"] == str(unpacked)
    assert any("Read 24 images in 2 classes" in m.value for m in at.markdown)


@pytest.mark.parametrize("entry", ["../escape.png", "/etc/owned.png"])
def test_a_zip_that_would_write_outside_its_folder_is_one_sentence_and_nothing_is_written(app_env, entry):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("cat/0.png", b"x")
        z.writestr(entry, b"x")
    at = _train_page()
    at.file_uploader(key="own_zip").upload("evil.zip", out.getvalue(), "application/zip")
    at.run()
    assert_no_exception(at, "evil zip")
    assert len(at.error) == 1
    assert_one_sentence(at.error[0].value)
    uploads = app_env / "data" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert not (app_env / "data" / "escape.png").exists()


def _files_under(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _refused_upload(app_env, name: str, data: bytes) -> str:
    """Uploads data on the Train page: the one sentence shown, after checking that nothing of it is left on disk."""
    data_dir = app_env / "data"
    at = _train_page()
    before = _files_under(data_dir)
    at.file_uploader(key="own_zip").upload(name, data, "application/zip")
    at.run()
    assert_no_exception(at, name)
    assert len(at.error) == 1, [e.value for e in at.error]
    assert_one_sentence(at.error[0].value)
    assert _files_under(data_dir) == before
    assert not (data_dir / "uploads").exists() or not any((data_dir / "uploads").iterdir())
    assert "own_folder" not in at.session_state
    return at.error[0].value


def test_a_zip_of_files_that_are_no_images_is_refused_and_nothing_stays_on_disk(app_env):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(30):  # under a megabyte each, so no entry counts as a zip bomb: 30 MB once unpacked
            z.writestr(f"blank/a/{i:02d}.png", bytes(999_999))
        z.writestr("blank/a/notes.txt", np.random.default_rng(0).bytes(10**6))  # not an image: never unpacked
    message = _refused_upload(app_env, "blank.zip", out.getvalue())
    assert "No readable images" in message, message


def test_a_zip_of_huge_blank_pngs_is_refused_before_any_is_decoded(app_env, monkeypatch):
    from vae.data import folders

    one = io.BytesIO()
    Image.new("1", (6324, 6324), 0).save(one, "PNG", optimize=True)  # 40 megapixels in 5 kB
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(60):  # 2,400 million pixels: 2.4 GB to decode as RGB, in a 0.3 MB upload
            z.writestr(f"bomb/blank/{i:02d}.png", one.getvalue())
    decoded = []
    real_read = folders._read_image
    monkeypatch.setattr(folders, "_read_image", lambda *a: decoded.append(a) or real_read(*a))
    message = _refused_upload(app_env, "bomb.zip", out.getvalue())
    assert "million pixels a folder may hold" in message and decoded == [], (message, len(decoded))


def test_a_folder_outside_the_allowed_ones_is_refused(app_env, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    _pets(outside)
    at = app_test()
    at.session_state["own_path"] = str(outside)  # typed: AppTest's selectbox sets only listed options
    at.switch_page("pages/train.py").run()
    assert_no_exception(at, "outside")
    assert "is not a data folder this server allows" in at.error[0].value
    assert "own_folder" not in at.session_state


def test_start_on_a_folder_dataset_without_a_folder_says_what_to_do(app_env):
    at = _train_page()
    at.selectbox(key="f_dataset").set_value("folder")
    at.button(key="start").click().run()
    assert_no_exception(at, "no folder")
    assert any("Choose the folder of your images" in e.value for e in at.error)
    assert "job_id" not in at.session_state


def test_the_zip_limit_is_the_upload_limit():
    from pages.ui.places import MAX_UPLOAD_MB
    from vae.data.archives import MAX_ZIP_BYTES

    assert MAX_ZIP_BYTES == MAX_UPLOAD_MB * 10**6
