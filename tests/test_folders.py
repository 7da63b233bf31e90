"""Tests of vae/data/folders.py: image folders read into tensors (splits, skips, the disk cache, links) and
uploaded .zip files checked before they are unpacked. Every image and archive is made here, in tmp_path."""
from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae.data import archives, folders
from vae.data.archives import ArchiveRefused, extract_image_zip
from vae.data.folders import FolderError, FolderImages, load_image_folder


def assert_one_sentence(message: str) -> None:
    """What a person reads: a str on one line, a full stop last, one sentence, short, no traceback."""
    assert isinstance(message, str), repr(message)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert message.endswith("."), repr(message)
    assert ". " not in message[:-1], repr(message)  # a second sentence would follow ". "
    assert "Traceback" not in message, repr(message)
    assert len(message) < 300, f"{len(message)} characters: {message}"


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (24, 24), seed: int = 0,
                fmt: str = "PNG") -> Path:
    """Random pixels (every image distinct) in the given PIL mode; size is (width, height)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)
    if mode == "P" and seed % 2:
        image.info["transparency"] = 0  # a palette image with a transparent entry takes the RGBA route
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)
    return path


def write_split_image(path: Path, size: tuple[int, int], horizontal: bool = True) -> Path:
    """White in the left half (top half when not horizontal), black in the other: size is (width, height)."""
    width, height = size
    pixels = np.zeros((height, width), np.uint8)
    if horizontal:
        pixels[:, : width // 2] = 255
    else:
        pixels[: height // 2, :] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "L").save(path)
    return path


CLASS_SIZES = {"bird": 5, "cat": 8, "dog": 7}
MODES = ("L", "RGB", "RGBA", "P")
SIZES = ((40, 30), (30, 50), (64, 64), (17, 23), (100, 20))


def make_tree(root: Path) -> Path:
    """cat/, dog/, bird/ of PNG and JPEG images in modes L, RGB, RGBA and P and several sizes (one nested a
    folder deeper), plus cat/broken.png (random bytes), notes.txt, and hidden files that must be ignored."""
    seed = 0
    for name, n in CLASS_SIZES.items():
        for i in range(n):
            mode, size = MODES[i % len(MODES)], SIZES[i % len(SIZES)]
            fmt = "JPEG" if mode in ("L", "RGB") and i % 3 == 1 else "PNG"
            sub = "more/" if i == n - 1 else ""
            write_image(root / name / f"{sub}{i}.{'jpg' if fmt == 'JPEG' else 'png'}", mode, size, seed, fmt)
            seed += 1
    (root / "cat" / "broken.png").write_bytes(np.random.default_rng(99).integers(0, 256, 500, np.uint8).tobytes())
    (root / "notes.txt").write_text("where these came from")
    (root / "cat" / ".DS_Store").write_bytes(b"\0" * 10)  # hidden: neither read nor counted
    write_image(root / ".thumbnails" / "x.png")  # a hidden folder is no class
    write_image(root / "dog" / ".hidden" / "y.png")
    return root


@pytest.fixture
def tree(tmp_path) -> Path:
    return make_tree(tmp_path / "pets")


# --- reading a folder ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size, channels", [(32, 3), (16, 1)])
def test_tree_is_read_resized_and_labelled(tree, size, channels):
    data = load_image_folder(tree, size=size, channels=channels)
    n = sum(CLASS_SIZES.values())
    assert data.train_images.dtype == data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert data.train_images.shape[1:] == data.test_images.shape[1:] == (channels, size, size)
    assert len(data.train_images) == len(data.train_labels) and len(data.test_images) == len(data.test_labels)
    assert len(data.train_labels) + len(data.test_labels) == n
    assert len(data.test_labels) == 3  # round(0.15 n) per class, at least 1: 1 of 5, 1 of 8, 1 of 7
    assert data.class_names == ["bird", "cat", "dog"]
    for labels in (data.train_labels, data.test_labels):
        assert set(labels.tolist()) == {0, 1, 2}  # every class in both splits
    counts = torch.bincount(torch.cat([data.train_labels, data.test_labels]), minlength=3).tolist()
    assert counts == [CLASS_SIZES[name] for name in data.class_names]
    assert data.skipped == 2 and data.skipped_examples == ["cat/broken.png", "notes.txt"]
    summary = data.summary()
    assert_one_sentence(summary)
    assert "cat/broken.png" in summary and "notes.txt" in summary and "skipped 2 files" in summary
    assert summary.startswith(f"Read {n} images in 3 classes ({n - 3} to train, 3 to test)")
    assert str(tree) in data.source and f"{size}x{size}" in data.source


def test_split_is_seeded_and_disjoint(tree):
    first, again, other = (load_image_folder(tree, seed=s) for s in (0, 0, 1))
    assert torch.equal(first.test_images, again.test_images) and torch.equal(first.train_labels, again.train_labels)
    assert not torch.equal(first.test_images, other.test_images)
    flat_train, flat_test = first.train_images.flatten(1), first.test_images.flatten(1)
    assert not (flat_test[:, None] == flat_train[None]).all(-1).any()  # no image in both splits


def test_split_shares():
    assert [len(folders.held_out(n, 0, 0)) for n in (0, 1, 2, 3, 7, 10, 20, 100)] == [0, 0, 1, 1, 1, 2, 3, 15]
    assert folders.held_out(100, 3, 1).tolist() == folders.held_out(100, 3, 1).tolist()
    assert folders.held_out(100, 3, 1).tolist() != folders.held_out(100, 3, 2).tolist()  # class index mixed in


def test_compaction_in_blocks_gives_the_same_split(tree, monkeypatch):
    whole = load_image_folder(tree, size=8)
    monkeypatch.setattr(folders, "_COMPACT_ROWS", 2)
    blocks = load_image_folder(tree, size=8)
    assert torch.equal(whole.train_images, blocks.train_images) and torch.equal(whole.test_images, blocks.test_images)


@pytest.mark.parametrize("size, horizontal", [((60, 40), True), ((40, 60), True), ((40, 60), False)])
def test_resize_then_centre_crop_keeps_the_picture(tmp_path, size, horizontal):
    for name in ("half.png", "same.png"):  # two: a class needs one to test on
        write_split_image(tmp_path / "r" / "a" / name, size, horizontal)
    data = load_image_folder(tmp_path / "r", size=32, channels=1)
    image = data.train_images[0, 0].float()
    if not horizontal:
        image = image.T
    assert image[:, :12].mean() > 230 and image[:, 20:].mean() < 25
    assert (image[:, 15] > image[:, 17]).all()  # the edge lies at the middle after the centre crop


def test_train_and_test_folders_are_the_splits(tmp_path):
    root = tmp_path / "r"
    for split, n, shade in (("train", 4, 255), ("test", 2, 0)):
        for name in ("a", "b"):
            for i in range(n):
                path = root / split / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("L", (20, 20), shade).save(path)
    data = load_image_folder(root, size=8, channels=1)
    assert data.class_names == ["a", "b"]
    assert data.train_labels.tolist() == [0] * 4 + [1] * 4 and data.test_labels.tolist() == [0, 0, 1, 1]
    assert (data.train_images == 255).all() and (data.test_images == 0).all()
    assert data.skipped == 0 and "skipped" not in data.summary()


def test_mismatched_split_classes_are_refused(tmp_path):
    for split, names in (("train", ("a", "b")), ("test", ("a", "c"))):
        for name in names:
            write_image(tmp_path / "r" / split / name / "0.png")
    with pytest.raises(FolderError) as caught:
        load_image_folder(tmp_path / "r")
    assert_one_sentence(str(caught.value))
    assert "only in train: b" in str(caught.value) and "only in test: c" in str(caught.value)


def _build(tmp: Path, case: str) -> Path:
    """The folder for one FolderError case."""
    root = tmp / "r"
    if case == "missing":
        return tmp / "nowhere"
    if case == "a file":
        return write_image(tmp / "single.png")
    root.mkdir()
    if case == "no class folders":
        write_image(root / "loose.png")
    elif case == "only hidden folders":
        write_image(root / ".cache" / "a.png")
    elif case == "no images":
        (root / "cat").mkdir()
        (root / "cat" / "readme.md").write_text("nothing")
    elif case == "class unreadable":
        write_image(root / "cat" / "0.png")
        (root / "dog").mkdir()
        (root / "dog" / "0.png").write_bytes(b"not really a png")
    elif case == "only train":
        write_image(root / "train" / "cat" / "0.png")
    else:
        make_tree(root)
    return root


@pytest.mark.parametrize("case, kwargs, patch, expected", [
    ("missing", {}, {}, "does not exist"),
    ("a file", {}, {}, "is not a folder"),
    ("no class folders", {}, {}, "has no class subfolders"),
    ("only hidden folders", {}, {}, "has no class subfolders"),
    ("no images", {}, {}, "No readable images"),
    ("class unreadable", {}, {}, "class folder dog holds no readable image"),
    ("only train", {}, {}, "has a train folder but no test folder"),
    ("tree", {"size": 4}, {}, "Image size must be"),
    ("tree", {"size": 129}, {}, "Image size must be"),
    ("tree", {"size": 32.0}, {}, "Image size must be"),
    ("tree", {"channels": 2}, {}, "Channels must be 1"),
    ("tree", {"seed": -1}, {}, "seed must be"),
    ("tree", {}, {"MAX_IMAGES": 10}, "more than 10 image files"),
    ("tree", {}, {"MAX_CLASSES": 2}, "more than the 2 allowed"),
])
def test_folder_errors_are_one_sentence(tmp_path, monkeypatch, case, kwargs, patch, expected):
    for name, value in patch.items():
        monkeypatch.setattr(folders, name, value)
    root = _build(tmp_path, case)
    with pytest.raises(FolderError) as caught:
        load_image_folder(root, **kwargs)
    assert_one_sentence(str(caught.value))
    assert expected in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_oversized_sources_are_skipped_before_decoding(tmp_path, monkeypatch):
    write_image(tmp_path / "r" / "a" / "small.png", size=(20, 20))
    write_image(tmp_path / "r" / "a" / "small2.png", size=(20, 20), seed=1)
    write_image(tmp_path / "r" / "a" / "large.png", size=(60, 60))
    monkeypatch.setattr(folders, "MAX_PIXELS_PER_IMAGE", 1000)
    data = load_image_folder(tmp_path / "r", size=8)
    assert len(data.train_labels) + len(data.test_labels) == 2 and data.skipped_examples == ["a/large.png"]
    monkeypatch.setattr(folders, "MAX_PIXELS_PER_IMAGE", 40_000_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own bomb check: an error past 2000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        data = load_image_folder(tmp_path / "r", size=8)
    assert data.skipped == 1 and data.skipped_examples == ["a/large.png"]


def test_links_out_of_root_and_special_files_are_skipped(tmp_path):
    outside = tmp_path / "outside"
    write_image(outside / "secret.png")
    root = tmp_path / "r"
    write_image(root / "cat" / "0.png", seed=1)
    write_image(root / "cat" / "1.png", seed=2)
    (root / "cat" / "link.png").symlink_to(outside / "secret.png")
    (root / "cat" / "inner.png").symlink_to(root / "cat" / "0.png")  # inside root: read
    (root / "cat" / "more").symlink_to(outside, target_is_directory=True)  # linked folders are not entered
    os.mkfifo(root / "cat" / "pipe.png")  # opening it would block forever
    (root / "cat" / "readme.md").write_text("no image extension")
    data = load_image_folder(root, size=8)
    assert len(data.train_labels) + len(data.test_labels) == 3
    assert data.skipped == 4 and data.skipped_examples == ["cat/link.png", "cat/more", "cat/pipe.png"]
    assert_one_sentence(data.summary())
    assert data.summary().endswith("(cat/link.png, cat/more, cat/pipe.png and 1 more).")

    (root / "dog").symlink_to(outside, target_is_directory=True)  # a class folder that leads out of root
    with pytest.raises(FolderError, match="class folder dog holds no readable image"):
        load_image_folder(root, size=8)


def test_summary_wording():
    images, labels = torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64)
    empty = (torch.zeros(0, 1, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    one = FolderImages(images, labels, *empty, ["a"], 1, ["a/x.gif"], "test")
    assert one.summary() == ("Read 1 image in 1 class (1 to train, 0 to test); skipped 1 file that is not a readable "
                             "image (a/x.gif).")
    many = FolderImages(images, labels, *empty, ["a"], 1234, ["a", "b", "c"], "test")
    assert many.summary().endswith("skipped 1,234 files that are not readable images (a, b, c and 1,231 more).")
    with pytest.raises(AttributeError):
        many.skipped = 0  # frozen


# --- the disk cache -----------------------------------------------------------------------------------


@pytest.fixture
def opened(monkeypatch):
    """Image.open, counting its calls: the list of paths opened."""
    calls: list[str] = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        calls.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    return calls


def _same(a: FolderImages, b: FolderImages) -> bool:
    return (torch.equal(a.train_images, b.train_images) and torch.equal(a.train_labels, b.train_labels)
            and torch.equal(a.test_images, b.test_images) and torch.equal(a.test_labels, b.test_labels)
            and a.class_names == b.class_names and a.summary() == b.summary() and a.source == b.source)


def test_cache_is_used_then_invalidated(tree, tmp_path, monkeypatch, opened):
    cache = tmp_path / "cache"
    first = load_image_folder(tree, size=16, cache_dir=cache)
    assert opened and [p.suffix for p in cache.iterdir()] == [".npz"]

    def refuse(*args, **kwargs):
        raise AssertionError("an image was opened although the cache holds the folder")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", refuse)
        assert _same(load_image_folder(tree, size=16, cache_dir=cache), first)

    opened.clear()
    touched = tree / "cat" / "0.png"
    info = touched.stat()
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    assert _same(load_image_folder(tree, size=16, cache_dir=cache), first)
    assert opened  # read again: the key changed

    opened.clear()
    write_image(tree / "dog" / "new.png", seed=123)
    grown = load_image_folder(tree, size=16, cache_dir=cache)
    assert opened and len(grown.train_labels) + len(grown.test_labels) == sum(CLASS_SIZES.values()) + 1

    opened.clear()
    (tree / "dog" / "new.png").unlink()  # the files are as they were after the touch: that entry is used
    assert _same(load_image_folder(tree, size=16, cache_dir=cache), first) and not opened

    (tree / "bird" / "0.png").unlink()
    shrunk = load_image_folder(tree, size=16, cache_dir=cache)
    assert opened and len(shrunk.train_labels) + len(shrunk.test_labels) == sum(CLASS_SIZES.values()) - 1


def test_cache_depends_on_the_settings(tree, tmp_path, opened):
    cache = tmp_path / "cache"
    load_image_folder(tree, size=16, cache_dir=cache)
    for kwargs in ({"size": 8}, {"size": 16, "channels": 1}, {"size": 16, "seed": 5}):
        opened.clear()
        load_image_folder(tree, cache_dir=cache, **kwargs)
        assert opened, kwargs
    assert len(list(cache.glob("*.npz"))) == 4


def test_corrupt_cache_is_ignored_and_rewritten(tree, tmp_path, opened):
    cache = tmp_path / "cache"
    first = load_image_folder(tree, size=16, cache_dir=cache)
    (stored,) = cache.iterdir()
    stored.write_bytes(b"PK\x03\x04 not an npz at all")
    opened.clear()
    assert _same(load_image_folder(tree, size=16, cache_dir=cache), first) and opened
    with np.load(stored, allow_pickle=False) as npz:
        assert npz["train_images"].shape == tuple(first.train_images.shape)


def test_unwritable_cache_is_skipped(tree, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = load_image_folder(tree, size=8, cache_dir=blocker / "cache")
    assert len(data.class_names) == 3 and blocker.read_text() == "not a folder"


# --- uploaded .zip files ------------------------------------------------------------------------------


def png_bytes(seed: int, size: tuple[int, int] = (20, 20)) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def class_files(prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}{name}/{i}.png": png_bytes(10 * c + i) for c, name in enumerate(("cat", "dog")) for i in range(3)}


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def patch_directory(data: bytes, entry: str, offset: int, fmt: str, value: int) -> bytes:
    """The zip with one field of entry's central directory record changed (offsets as in APPNOTE 4.3.12)."""
    out = bytearray(data)
    start = out.find(b"PK\x01\x02")
    while start >= 0:
        name_len = struct.unpack_from("<H", out, start + 28)[0]
        if bytes(out[start + 46: start + 46 + name_len]) == entry.encode():
            struct.pack_into(fmt, out, start + offset, value)
            return bytes(out)
        start = out.find(b"PK\x01\x02", start + 4)
    raise AssertionError(f"{entry} is not in the directory")


def tree_of(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def dest(tmp_path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "earlier").mkdir()  # an earlier upload, to be left alone
    return folder


def test_zip_of_class_folders_extracts_and_loads(dest):
    files = {**class_files(), "__MACOSX/cat/._0.png": b"resource fork", ".DS_Store": b"\0", "cat/.hidden.png": b"x"}
    root = extract_image_zip(zip_of(files), dest, "pets")
    assert root == dest / "pets"
    assert tree_of(root) == sorted(["cat", "dog", *class_files()])  # nothing hidden, no __MACOSX
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary folder left
    data = load_image_folder(root, size=8)
    assert data.class_names == ["cat", "dog"] and data.skipped == 0


@pytest.mark.parametrize("prefix", ["photos/", "./photos/"])
def test_zip_of_one_folder_returns_that_folder(dest, prefix):
    files = {**class_files(prefix), "__MACOSX/photos/._x": b"", f"{prefix}.DS_Store": b""}
    root = extract_image_zip(zip_of(files), dest, "pets")
    assert root == dest / "pets" / "photos"
    assert load_image_folder(root, size=8).class_names == ["cat", "dog"]


def test_zip_of_one_class_folder_returns_the_extraction_folder(dest):
    root = extract_image_zip(zip_of({"cat/0.png": png_bytes(0), "cat/1.png": png_bytes(1)}), dest, "one")
    assert root == dest / "one" and load_image_folder(root, size=8).class_names == ["cat"]


def _symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in class_files().items():
            zf.writestr(name, content)
        link = zipfile.ZipInfo("cat/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def _fifo_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        fifo = zipfile.ZipInfo("cat/pipe.png")
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(fifo, b"")
    return buffer.getvalue()


def _bomb_zip(megabytes: int = 300) -> bytes:
    """One entry of `megabytes` MB of zeros, deflated as it is written: about 300 kB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("cat/bomb.png")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as out:
            zeros = bytes(2**20)
            for _ in range(megabytes):
                out.write(zeros)
    return buffer.getvalue()


def _nul_zip() -> bytes:
    return zip_of({"cat/aXb.png": png_bytes(0)}).replace(b"cat/aXb.png", b"cat/a\0b.png")


def _duplicate_zip() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name it writes
        zf.writestr("cat/0.png", png_bytes(0))
        zf.writestr("cat/0.png", png_bytes(1))
    return buffer.getvalue()


@pytest.mark.parametrize("case, make, name, patch, expected", [
    ("not a zip", lambda: b"just some text", "pets", {}, "not a readable .zip"),
    ("empty upload", lambda: b"", "pets", {}, "not a readable .zip"),
    ("truncated", lambda: zip_of(class_files())[:-30], "pets", {}, "not a readable .zip"),
    ("traversal", lambda: zip_of({**class_files(), "../evil.png": b"x"}), "pets", {}, "points outside"),
    ("deep traversal", lambda: zip_of({"cat/../../evil.png": b"x"}), "pets", {}, "points outside"),
    ("absolute", lambda: zip_of({"/tmp/evil.png": b"x"}), "pets", {}, "points outside"),
    ("drive letter", lambda: zip_of({"C:/evil.png": b"x"}), "pets", {}, "points outside"),
    ("backslash", lambda: zip_of({"..\\evil.png": b"x"}), "pets", {}, "backslash"),
    ("nul byte", _nul_zip, "pets", {}, "control character"),
    ("symlink", _symlink_zip, "pets", {}, "symbolic link"),
    ("fifo", _fifo_zip, "pets", {}, "not a regular file"),
    ("encrypted", lambda: patch_directory(zip_of(class_files()), "dog/1.png", 8, "<H", 0x1), "pets", {}, "encrypted"),
    ("zip bomb", _bomb_zip, "pets", {}, "zip bomb"),
    ("too much unpacked", lambda: zip_of(class_files()), "pets", {"MAX_ZIP_UNPACKED": 1000}, "would unpack to"),
    ("too large", lambda: zip_of(class_files()), "pets", {"MAX_ZIP_BYTES": 100}, "more than the 0 MB allowed"),
    ("too many files", lambda: zip_of(class_files()), "pets", {"MAX_ZIP_FILES": 3}, "lists 6 entries"),
    ("duplicate", _duplicate_zip, "pets", {}, "appears twice"),
    ("file and folder", lambda: zip_of({"cat": b"x", "cat/0.png": png_bytes(0)}), "pets", {}, "also lists as a file"),
    ("no files", lambda: zip_of({"__MACOSX/x.png": b"", ".DS_Store": b""}), "pets", {}, "holds no image files"),
    ("no image files", lambda: zip_of({"cat/notes.txt": b"x", "cat/clip.mp4": b"x"}), "pets", {}, "holds no image files"),
    ("bad name: traversal", lambda: zip_of(class_files()), "../pets", {}, "is not allowed"),
    ("bad name: empty", lambda: zip_of(class_files()), "", {}, "is not allowed"),
    ("bad name: hidden", lambda: zip_of(class_files()), ".pets", {}, "is not allowed"),
    ("bad name: space", lambda: zip_of(class_files()), "my pets", {}, "is not allowed"),
    ("bad name: long", lambda: zip_of(class_files()), "p" * 65, {}, "is not allowed"),
    ("bad name: newline", lambda: zip_of(class_files()), "pets\n", {}, "is not allowed"),
    ("existing name", lambda: zip_of(class_files()), "earlier", {}, "already exists; choose another name"),
])
def test_refused_zips_leave_nothing_behind(dest, monkeypatch, case, make, name, patch, expected):
    data = make()
    for attr, value in patch.items():
        monkeypatch.setattr(archives, attr, value)
    before = tree_of(dest.parent)
    with pytest.raises(ArchiveRefused) as caught:
        extract_image_zip(data, dest, name)
    assert_one_sentence(str(caught.value))
    assert expected in str(caught.value), str(caught.value)
    assert tree_of(dest.parent) == before


def test_directory_that_understates_a_size_aborts_extraction(dest):
    files = class_files()
    lying = patch_directory(zip_of(files), "dog/2.png", 24, "<I", 100)  # the entry really holds ~1.3 kB
    before = tree_of(dest.parent)
    with pytest.raises(ArchiveRefused) as caught:
        extract_image_zip(lying, dest, "pets")  # the other entries were unpacked first: all removed again
    assert_one_sentence(str(caught.value))
    assert "dog/2.png" in str(caught.value)
    assert tree_of(dest.parent) == before


def test_real_bytes_are_counted_against_the_declared_size(dest, monkeypatch):
    """A reader that yields more than the directory declares (stdlib zipfile truncates and fails the CRC; this
    guard does not rely on that)."""
    data = zip_of(class_files())
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(b"x" * (info.file_size + 1)))
    before = tree_of(dest.parent)
    with pytest.raises(ArchiveRefused, match="holds more data than its directory declares") as caught:
        extract_image_zip(data, dest, "pets")
    assert_one_sentence(str(caught.value))
    assert tree_of(dest.parent) == before


def test_dest_root_is_created(tmp_path):
    root = extract_image_zip(zip_of(class_files()), tmp_path / "new" / "uploads", "pets")
    assert root == tmp_path / "new" / "uploads" / "pets" and (root / "cat" / "0.png").read_bytes() == png_bytes(0)


# --- what a folder may cost, what a model needs, and what an upload leaves ------------------------------


def blank_png(side: int) -> bytes:
    """A blank one-bit square PNG: at 6324 px a side (40 megapixels, just under MAX_PIXELS_PER_IMAGE) about 5 kB,
    which decodes to 40 MB of RGB."""
    buffer = io.BytesIO()
    Image.new("1", (side, side), 0).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


BOMB_SIDE = 6324


def test_a_folder_past_the_pixel_budget_is_refused_from_the_headers_before_any_decoding(tmp_path, monkeypatch):
    root, one = tmp_path / "bomb", blank_png(BOMB_SIDE)
    for i in range(60):  # 60 x 40 MP: 2,400 million pixels, 0.3 MB on disk
        path = root / "blank" / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(one)
    decoded = []
    monkeypatch.setattr(folders, "_read_image", lambda path, size, mode: decoded.append(path))
    with pytest.raises(FolderError) as caught:
        load_image_folder(root, size=32)
    assert_one_sentence(str(caught.value))
    assert "add up to more than the 2,000 million pixels a folder may hold" in str(caught.value), str(caught.value)
    assert decoded == []
    assert BOMB_SIDE ** 2 <= folders.MAX_PIXELS_PER_IMAGE < folders.MAX_FOLDER_PIXELS < 60 * BOMB_SIDE ** 2


def test_the_budget_counts_the_source_pixels_of_the_images_read(tmp_path, monkeypatch):
    root = tmp_path / "r"
    for i in range(3):
        write_image(root / "a" / f"{i}.png", size=(10, 10), seed=i)  # 100 pixels each
    write_image(root / "a" / "huge.png", size=(40, 40))  # past the per-image cap below: skipped, not counted
    (root / "a" / "broken.png").write_bytes(b"not an image")
    monkeypatch.setattr(folders, "MAX_PIXELS_PER_IMAGE", 1000)
    monkeypatch.setattr(folders, "MAX_FOLDER_PIXELS", 300)
    data = load_image_folder(root, size=8)
    assert len(data.train_labels) + len(data.test_labels) == 3 and data.skipped == 2
    monkeypatch.setattr(folders, "MAX_FOLDER_PIXELS", 299)
    with pytest.raises(FolderError, match="more than the 0 million pixels"):
        load_image_folder(root, size=8)


def test_a_folder_that_leaves_nothing_to_test_on_is_refused_saying_what_it_needs(tmp_path):
    root = tmp_path / "r"
    write_image(root / "cat" / "0.png", seed=0)
    write_image(root / "dog" / "0.png", seed=1)
    (root / "dog" / "1.png").write_bytes(b"unreadable: the class keeps one image")
    with pytest.raises(FolderError) as caught:
        load_image_folder(root, size=8)
    assert_one_sentence(str(caught.value))
    assert "one readable image per class, which leaves none to test on" in str(caught.value)
    assert "add a second image to at least one class" in str(caught.value)
    write_image(root / "cat" / "1.png", seed=2)  # what the sentence asks for is enough
    data = load_image_folder(root, size=8)
    assert len(data.test_labels) == 1 and data.test_labels.tolist() == [0] and len(data.train_labels) == 2


def test_entries_that_are_not_images_are_neither_unpacked_nor_counted(dest, monkeypatch):
    images = class_files()
    others = {"cat/notes.txt": b"n" * 50_000, "video/clip.mp4": np.random.default_rng(0).bytes(50_000),
              "cat/zeros.bin": bytes(2 * 10**6)}  # shrinks 2,000:1, as a zip bomb does
    data = zip_of({**images, **others})
    monkeypatch.setattr(archives, "MAX_ZIP_UNPACKED", sum(len(content) for content in images.values()))
    read = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: read.append(info.filename) or
                        real_open(self, info, *a, **k))
    root = extract_image_zip(data, dest, "pets")
    assert tree_of(root) == sorted(["cat", "dog", *images])
    assert sorted(read) == sorted(images)


def test_an_unpacked_folder_its_check_refuses_is_removed(dest):
    blanks = {f"blank/a/{i:02d}.png": bytes(999_999) for i in range(20)}  # 20 MB named .png, none an image
    before = tree_of(dest.parent)
    with pytest.raises(FolderError, match="No readable images"):
        extract_image_zip(zip_of(blanks), dest, "blanks", check=lambda folder: load_image_folder(folder, size=8))
    assert tree_of(dest.parent) == before
    checked = []
    root = extract_image_zip(zip_of(class_files()), dest, "pets", check=checked.append)
    assert checked == [root] and (root / "cat" / "0.png").is_file()


def test_what_a_killed_server_left_unpacking_is_removed_by_the_next_upload(dest):
    stale, fresh = dest / ".old-x1.partial", dest / ".busy-x2.partial"
    for partial in (stale, fresh):
        (partial / "cat").mkdir(parents=True)
        (partial / "cat" / "0.png").write_bytes(png_bytes(0))
    old = stale.stat().st_mtime - archives.STALE_PARTIAL_SECONDS - 1
    os.utime(stale, (old, old))
    extract_image_zip(zip_of(class_files()), dest, "pets")
    assert not stale.exists() and fresh.is_dir()  # one still being written is younger
