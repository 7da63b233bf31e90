"""A user's own images as a dataset: a folder of class subfolders read into uint8 tensors, and a
browser-uploaded .zip of such folders unpacked only after its directory has been checked.

`load_image_folder` reads torchvision's ImageFolder layout (or train/ and test/ each in that layout),
skipping unreadable files, with an optional .npz disk cache; `extract_image_zip` refuses unsafe archives.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import lzma
import math
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from .cachefile import read_npz, write_npz

TEST_SHARE = 0.15  # share of each class held out for testing when the folder has no test/ subfolder
SIZE_RANGE = (8, 128)  # side of the square images made, pixels
CHANNELS = (1, 3)  # grayscale ("L") or RGB
MAX_IMAGES = 100_000  # image files read at most: at 128x128 RGB that is 4.9 GB of uint8 in memory
MAX_CLASSES = 1000  # class subfolders at most, as many as ImageNet has
MAX_PIXELS_PER_IMAGE = 40_000_000  # width x height of a source image; larger ones are skipped undecoded
MAX_EXAMPLES = 3  # skipped files the summary names
SPLIT_FOLDERS = ("train", "test")  # subfolders of the root that, both present, are the splits

MAX_ZIP_BYTES = 50 * 10**6  # the uploaded archive, bytes: the browser's upload limit (.streamlit/config.toml)
MAX_ZIP_FILES = 20_000  # entries in the archive's directory
MAX_ZIP_UNPACKED = 500 * 10**6  # all entries unpacked together, bytes
MAX_RATIO = 200  # unpacked / packed size of one entry; images never shrink this much, zip bombs do
RATIO_MIN_BYTES = 10**6  # entries smaller than this may shrink further (a blank BMP); the total cap bounds them
ZIP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # the folder an upload unpacks into: no dots, no slashes
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)  # those zipfile reads

_CACHE_VERSION = "folders-v1"  # part of the cache key: bump when decoding changes, so old .npz files are ignored
_CHUNK = 2**20  # bytes copied at a time while unpacking
_COMPACT_ROWS = 1024  # images moved at a time when the test rows are taken out of the decoded buffer
_IGNORED_FOLDERS = ("__MACOSX",)  # resource forks macOS adds to the zips it makes


class FolderError(ValueError):
    """An image folder could not be used; the message is one sentence that says what to do."""


class ArchiveRefused(ValueError):
    """An uploaded .zip was refused before (or while) unpacking; the message is one sentence that says what to do."""


@dataclass(frozen=True, eq=False)
class FolderImages:
    """Both splits of an image folder, in memory. Tensors may be shared with a cache: do not mutate."""

    train_images: torch.Tensor  # uint8 (N, C, S, S)
    train_labels: torch.Tensor  # int64 (N,), indexes class_names
    test_images: torch.Tensor  # uint8 (M, C, S, S)
    test_labels: torch.Tensor  # int64 (M,)
    class_names: list[str]  # the class folders' names, sorted as ImageFolder sorts them
    skipped: int  # files found (not hidden) that gave no image: unreadable, not images, outside a class folder
    skipped_examples: list[str] = field(default_factory=list)  # up to MAX_EXAMPLES of them, relative to the root
    source: str = ""

    def summary(self) -> str:
        """One sentence: how many images were read, how they were split, and what was skipped."""
        n_train, n_test = len(self.train_labels), len(self.test_labels)
        text = (f"Read {_count(n_train + n_test, 'image')} in {_count(len(self.class_names), 'class')} "
                f"({n_train:,} to train, {n_test:,} to test)")
        if self.skipped:
            shown = ", ".join(self.skipped_examples)
            more = self.skipped - len(self.skipped_examples)
            if more > 0:
                shown += f" and {more:,} more"
            noun = "file that is not a readable image" if self.skipped == 1 else "files that are not readable images"
            text += f"; skipped {self.skipped:,} {noun} ({shown})"
        return text + "."


def _count(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{n:,} {noun if n == 1 else plural}"


def _shown(text: str, limit: int = 80) -> str:
    """A name as a message quotes it: control characters as '?', the middle elided past `limit` characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[-half:]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_FOLDERS


# --- reading a folder -------------------------------------------------------------------------------


@dataclass
class _Group:
    """The image files of one class folder in one split."""

    split: str | None  # "train" or "test" when the root has those subfolders; None when the split is drawn
    label: int
    folder: str  # relative to the root, for messages
    files: list[Path]


@dataclass
class _Listing:
    """What a walk of the root found, before any image is opened."""

    class_names: list[str]
    groups: list[_Group] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # relative paths
    stamps: list[tuple[str, int, int]] = field(default_factory=list)  # (relative path, bytes, mtime_ns), every file
    n_images: int = 0


def load_image_folder(root: str | os.PathLike, size: int = 32, channels: int = 3, seed: int = 0,
                      cache_dir: str | os.PathLike | None = None) -> FolderImages:
    """The images under root as uint8 (N, channels, size, size) tensors, each resized so its shorter side is
    `size` and centre-cropped. Classes are root's subfolders; root/train and root/test, when both exist, are
    the splits, else a seeded TEST_SHARE of each class is the test split. Raises FolderError."""
    _check_settings(size, channels, seed)
    folder = _existing_folder(root)
    listing = _list_files(folder)
    source = (f"image folder {folder}, each image's shorter side resized to {size} px and centre-cropped to "
              f"{size}x{size} {'RGB' if channels == 3 else 'grey'}")
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"{_cache_key(folder, size, channels, seed, listing.stamps)}.npz"
        cached = _read_cache(cache_path, listing.class_names, size, channels)
        if cached is not None:
            return FolderImages(**cached, source=source)
    arrays = _decode(listing, folder, size, channels, seed)
    if cache_path is not None:
        _write_cache(cache_path, arrays)
    return FolderImages(**arrays, source=source)


def _check_settings(size: int, channels: int, seed: int) -> None:
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not lo <= size <= hi:
        raise FolderError(f"Image size must be a whole number of pixels from {lo} to {hi}, not "
                          f"{_shown(repr(size), 20)}; choose one in that range.")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in CHANNELS:
        raise FolderError(f"Channels must be 1 (grayscale) or 3 (RGB), not {_shown(repr(channels), 20)}; "
                          f"choose one of those.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise FolderError(f"The split seed must be a whole number from 0 up, not {_shown(repr(seed), 20)}; "
                          f"choose another.")


def _existing_folder(root: str | os.PathLike) -> Path:
    shown = _shown(os.fspath(root), 120)
    try:
        folder = Path(root).expanduser()
        info = os.stat(folder)
        folder = folder.resolve()
    except (OSError, ValueError):  # missing, unreadable, or a NUL byte in the path
        raise FolderError(f"The image folder {shown} does not exist; check the path and try again.") from None
    if not stat.S_ISDIR(info.st_mode):
        raise FolderError(f"{shown} is not a folder; give the folder that holds one subfolder per class.")
    return folder


def _visible_entries(folder: Path) -> tuple[list[str], list[str]]:
    """The (subfolder names, file names) directly in folder, hidden ones left out, both sorted."""
    try:
        with os.scandir(folder) as entries:
            listed = [(entry.name, entry.is_dir()) for entry in entries if not _hidden(entry.name)]
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    return sorted(n for n, is_dir in listed if is_dir), sorted(n for n, is_dir in listed if not is_dir)


def _unreadable(folder: Path, exc: OSError) -> FolderError:
    return FolderError(f"The folder {_shown(str(folder), 120)} could not be read ({exc.strerror or 'unknown error'}); "
                       f"check its permissions.")


def _list_files(root: Path) -> _Listing:
    """Every class folder's files, sorted, sorted into image candidates and skipped ones; nothing is opened."""
    subfolders, loose = _visible_entries(root)
    listing = _Listing(class_names=[])
    _skip_loose(listing, root, root, loose)
    if all(split in subfolders for split in SPLIT_FOLDERS):
        train_classes = _class_names(root / "train", "train/")
        test_classes = _class_names(root / "test", "test/")
        _check_same_classes(train_classes, test_classes)
        listing.class_names = train_classes
        for split in SPLIT_FOLDERS:
            _list_split(listing, root, root / split, split)
        return listing
    present = [split for split in SPLIT_FOLDERS if split in subfolders]
    if present and subfolders == present:
        missing = next(split for split in SPLIT_FOLDERS if split not in present)
        raise FolderError(f"{_shown(str(root), 120)} has a {present[0]} folder but no {missing} folder; add {missing}/ "
                          f"with the same class subfolders, or move the class folders up out of {present[0]}/.")
    listing.class_names = _class_names(root, "")
    _list_split(listing, root, root, None)
    return listing


def _class_names(folder: Path, prefix: str) -> list[str]:
    """The class subfolders of folder, through torchvision's find_classes, hidden ones left out."""
    try:
        classes, _ = find_classes(folder)
    except FileNotFoundError:
        classes = []
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    classes = [name for name in classes if not _hidden(name)]
    if not classes:
        raise FolderError(f"{_shown(str(folder), 120)} has no class subfolders; put each class's images in a subfolder "
                          f"of its own, such as {prefix}cat/ and {prefix}dog/.")
    if len(classes) > MAX_CLASSES:
        raise FolderError(f"{_shown(str(folder), 120)} has {len(classes):,} class subfolders, more than the "
                          f"{MAX_CLASSES:,} allowed; merge or remove some classes.")
    return classes


def _check_same_classes(train: list[str], test: list[str]) -> None:
    if train == test:
        return
    only_train = ", ".join(_shown(name, 30) for name in sorted(set(train) - set(test))[:3]) or "none"
    only_test = ", ".join(_shown(name, 30) for name in sorted(set(test) - set(train))[:3]) or "none"
    raise FolderError(f"The test folder's classes differ from the train folder's (only in train: {only_train}; "
                      f"only in test: {only_test}); give train/ and test/ the same class subfolders.")


def _skip_loose(listing: _Listing, root: Path, folder: Path, names: list[str]) -> None:
    """Files beside the class folders belong to no class: considered (they change the cache key) and skipped."""
    for name in names:
        path = folder / name
        listing.stamps.append(_stamp(path, root))
        listing.skipped.append(path.relative_to(root).as_posix())


def _list_split(listing: _Listing, root: Path, folder: Path, split: str | None) -> None:
    if folder != root:  # root's own loose files were counted already
        _skip_loose(listing, root, folder, _visible_entries(folder)[1])
    for label, name in enumerate(listing.class_names):
        files = _walk(folder / name, root, listing)
        listing.groups.append(_Group(split, label, (folder / name).relative_to(root).as_posix(), files))


def _walk(class_dir: Path, root: Path, listing: _Listing) -> list[Path]:
    """The image files under class_dir in ImageFolder's order (folders sorted, then files sorted in each).
    Linked folders are not entered; files that resolve outside root, are not regular, or lack an image
    extension are skipped."""
    found: list[tuple[str, list[str]]] = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        for name in dirnames:
            if not _hidden(name) and os.path.islink(os.path.join(dirpath, name)):
                _skip_loose(listing, root, Path(dirpath), [name])
        dirnames[:] = [name for name in dirnames if not _hidden(name)]
        found.append((dirpath, sorted(name for name in filenames if not _hidden(name))))
    images = []
    for dirpath, filenames in sorted(found):
        for name in filenames:
            path = Path(dirpath, name)
            if _is_candidate(path, root, listing):
                images.append(path)
    return images


def _is_candidate(path: Path, root: Path, listing: _Listing) -> bool:
    rel, size, mtime_ns = _stamp(path, root)
    listing.stamps.append((rel, size, mtime_ns))
    real = os.path.realpath(path)
    inside = os.path.commonpath([real, str(root)]) == str(root)
    try:
        regular = stat.S_ISREG(os.stat(real).st_mode)  # a FIFO named .png would block the reader forever
    except OSError:
        regular = False
    if not (inside and regular and has_file_allowed_extension(path.name, IMG_EXTENSIONS)):
        listing.skipped.append(rel)
        return False
    listing.n_images += 1
    if listing.n_images > MAX_IMAGES:
        raise FolderError(f"{_shown(str(root), 120)} holds more than {MAX_IMAGES:,} image files; use a smaller folder "
                          f"or fewer images per class.")
    return True


def _stamp(path: Path, root: Path) -> tuple[str, int, int]:
    """(relative path, bytes, mtime_ns) of a file, its link followed; (-1, -1) where it cannot be read."""
    rel = path.relative_to(root).as_posix()
    try:
        info = os.stat(path)
    except OSError:
        return rel, -1, -1
    return rel, info.st_size, info.st_mtime_ns


def _read_image(path: Path, size: int, mode: str) -> np.ndarray | None:
    """uint8 (C, size, size) of one image file, or None when it is unreadable or too large to decode."""
    try:
        with Image.open(path) as img:
            width, height = img.size  # from the header: nothing is decoded yet
            if width < 1 or height < 1 or width * height > MAX_PIXELS_PER_IMAGE:
                return None
            img.draft(mode, (size, size))  # JPEG: decode at a reduced scale still at least size x size
            picture = ImageOps.exif_transpose(img)  # phones store rotation in EXIF rather than in the pixels
            if picture.mode == "P" and "transparency" in picture.info:
                picture = picture.convert("RGBA")
            picture = picture.convert(mode)
    except Exception:  # PIL raises many kinds for damaged files (OSError, SyntaxError, struct.error, its bomb error)
        return None
    picture = TF.resize(picture, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    picture = TF.center_crop(picture, [size, size])
    pixels = np.asarray(picture, dtype=np.uint8)
    return pixels.reshape(size, size, -1).transpose(2, 0, 1)


def _decode(listing: _Listing, root: Path, size: int, channels: int, seed: int) -> dict:
    """Open every candidate, check that each class kept an image, and split: the FolderImages fields."""
    mode = "RGB" if channels == 3 else "L"
    pixels = np.empty((listing.n_images, channels, size, size), np.uint8)
    counts, row = [], 0
    for group in listing.groups:
        kept = 0
        for path in group.files:
            image = _read_image(path, size, mode)
            if image is None:
                listing.skipped.append(path.relative_to(root).as_posix())
                continue
            pixels[row] = image
            row, kept = row + 1, kept + 1
        counts.append(kept)
    _check_counts(listing, root, counts)
    labels = np.repeat(np.array([g.label for g in listing.groups], np.int64), counts)
    is_test = _test_mask(listing.groups, counts, seed)
    test_images = pixels[:row][is_test]  # a copy: the test share is small
    train_images = _compact(pixels, np.flatnonzero(~is_test))
    skipped = sorted(listing.skipped)
    return dict(
        train_images=torch.from_numpy(train_images), train_labels=torch.from_numpy(labels[~is_test]),
        test_images=torch.from_numpy(test_images), test_labels=torch.from_numpy(labels[is_test]),
        class_names=list(listing.class_names), skipped=len(skipped),
        skipped_examples=[_shown(rel, 60) for rel in skipped[:MAX_EXAMPLES]],
    )


def _check_counts(listing: _Listing, root: Path, counts: list[int]) -> None:
    if sum(counts) == 0:
        raise FolderError(f"No readable images were found in {_shown(str(root), 120)}; add PNG or JPEG files to its "
                          f"class subfolders.")
    for group, count in zip(listing.groups, counts):
        if count == 0:
            raise FolderError(f"The class folder {_shown(group.folder, 80)} holds no readable image; add some PNG or "
                              f"JPEG files to it or remove it.")


def _test_mask(groups: list[_Group], counts: list[int], seed: int) -> np.ndarray:
    """bool (N,) over the decoded rows, which lie group after group: True for the test split."""
    is_test = np.zeros(sum(counts), bool)
    start = 0
    for group, n in zip(groups, counts):
        if group.split == "test":
            is_test[start:start + n] = True
        elif group.split is None:
            is_test[start + held_out(n, seed, group.label)] = True
        start += n
    return is_test


def held_out(n: int, seed: int, class_index: int = 0) -> np.ndarray:
    """Sorted int64 indices of the test images among a class's n images (in file order): round(TEST_SHARE * n),
    at least 1 when n >= 2, none when n < 2, drawn by default_rng((seed, class_index))."""
    if n < 2:
        return np.zeros(0, np.int64)
    n_test = min(n - 1, max(1, math.floor(n * TEST_SHARE + 0.5)))
    rng = np.random.default_rng([seed, class_index])
    return np.sort(rng.permutation(n)[:n_test]).astype(np.int64)


def _compact(pixels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """pixels[keep] for sorted indices, moved forward in place a block at a time, so no second copy of the
    whole buffer is made: a block writes only rows below every later block's sources."""
    for start in range(0, len(keep), _COMPACT_ROWS):
        block = keep[start:start + _COMPACT_ROWS]
        pixels[start:start + len(block)] = pixels[block]
    return pixels[:len(keep)]


def find_image_folders(roots: list[Path], max_depth: int = 2, limit: int = 30) -> list[Path]:
    """Folders at most max_depth below the roots that look like image datasets (a subfolder with an image
    file in it, or train/ and test/), for a picker; reads folder listings only, never an image."""
    found: list[Path] = []
    queue = [(Path(root), 0) for root in roots]
    while queue and len(found) < limit:
        folder, depth = queue.pop(0)
        try:
            subfolders, _ = _visible_entries(folder)
        except FolderError:
            continue
        if subfolders and _looks_like_images(folder, subfolders):
            found.append(folder)
            continue
        if depth < max_depth:
            queue += [(folder / name, depth + 1) for name in subfolders if name not in _IGNORED_FOLDERS]
    return found


def _looks_like_images(folder: Path, subfolders: list[str]) -> bool:
    if all(split in subfolders for split in SPLIT_FOLDERS):
        return True
    for name in subfolders[:MAX_CLASSES]:
        try:
            with os.scandir(folder / name) as entries:
                if any(entry.is_file() and has_file_allowed_extension(entry.name, IMG_EXTENSIONS)
                       for _, entry in zip(range(50), entries)):
                    return True
        except OSError:
            continue
    return False


# --- the disk cache ---------------------------------------------------------------------------------


def _cache_key(root: Path, size: int, channels: int, seed: int, stamps: list[tuple[str, int, int]]) -> str:
    """sha256 hex of everything the arrays depend on: settings, limits, and every file's path, size and mtime."""
    payload = json.dumps([_CACHE_VERSION, str(root), size, channels, seed, TEST_SHARE, MAX_PIXELS_PER_IMAGE,
                          sorted(stamps)])  # ensure_ascii keeps undecodable file names hashable
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _read_cache(path: Path, class_names: list[str], size: int, channels: int) -> dict | None:
    """The FolderImages fields stored at path, or None when missing, unreadable, or not what this folder makes."""
    arrays = read_npz(path, ("train_images", "train_labels", "test_images", "test_labels", "class_names", "skipped",
                             "skipped_examples"))
    if arrays is None or not _cache_consistent(arrays, class_names, size, channels):
        return None
    return dict(
        train_images=torch.from_numpy(arrays["train_images"]), train_labels=torch.from_numpy(arrays["train_labels"]),
        test_images=torch.from_numpy(arrays["test_images"]), test_labels=torch.from_numpy(arrays["test_labels"]),
        class_names=list(class_names), skipped=int(arrays["skipped"]),
        skipped_examples=[str(name) for name in arrays["skipped_examples"]],
    )


def _cache_consistent(arrays: dict, class_names: list[str], size: int, channels: int) -> bool:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (channels, size, size):
            return False
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            return False
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            return False
    return ([str(name) for name in arrays["class_names"]] == list(class_names)
            and arrays["skipped"].shape == () and arrays["skipped_examples"].ndim == 1)


def _write_cache(path: Path, fields: dict) -> None:
    write_npz(path, {**{key: fields[key].numpy() for key in ("train_images", "train_labels", "test_images", "test_labels")},
                     "class_names": np.array(fields["class_names"], dtype=str), "skipped": np.int64(fields["skipped"]),
                     "skipped_examples": np.array(fields["skipped_examples"], dtype=str)})


# --- unpacking an uploaded .zip -----------------------------------------------------------------------


@dataclass
class _Entry:
    info: zipfile.ZipInfo
    parts: list[str]  # path components below the extraction folder, '.' and empty ones dropped


def free_upload_name(filename: str, dest_root: str | os.PathLike) -> str:
    """A name extract_image_zip takes for an uploaded file: its stem with anything but letters, digits, - and _
    replaced, cut to fit, and -2, -3, ... added while dest_root already holds that name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(str(filename)).stem).strip("-_")[:56] or "images"
    stem = stem if stem[0].isalnum() else "images-" + stem
    name, n = stem, 1
    while (Path(dest_root) / name).exists():
        n += 1
        name = f"{stem}-{n}"
    return name


def extract_image_zip(data: bytes, dest_root: str | os.PathLike, name: str) -> Path:
    """Unpack an uploaded .zip into dest_root/name after checking its directory (size, entry count, zip
    bombs, paths, links, encryption); the folder to load: dest_root/name, or the single folder it holds.
    Raises ArchiveRefused; after a refusal nothing new is left under dest_root."""
    _check_zip_name(name)
    dest = Path(dest_root)
    final = dest / name
    if os.path.lexists(final):
        raise ArchiveRefused(f"A folder named {name} already exists; choose another name.")
    if len(data) > MAX_ZIP_BYTES:
        raise ArchiveRefused(f"The .zip is {len(data) / 10**6:,.1f} MB, more than the {MAX_ZIP_BYTES / 10**6:,.0f} MB "
                             f"allowed; upload fewer or smaller images.")
    with _open_zip(data) as zf:
        entries = _checked_entries(zf)
        tmp = _make_temp_folder(dest, name)
        try:
            _unpack(zf, entries, tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _load_root(final, entries)


def _check_zip_name(name: str) -> None:
    if not isinstance(name, str) or not ZIP_NAME.fullmatch(name):  # fullmatch: '$' alone lets 'name\n' through
        raise ArchiveRefused(f"The name {_shown(repr(name), 40)} is not allowed; use 1 to 64 letters, digits, '_' or "
                             f"'-', starting with a letter or digit.")


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError, TypeError):
        raise ArchiveRefused("The upload is not a readable .zip file; zip the image folder again and upload "
                             "the new file.") from None


def _checked_entries(zf: zipfile.ZipFile) -> list[_Entry]:
    """The entries to unpack, after every entry of the directory has passed the checks; else ArchiveRefused."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_FILES:
        raise ArchiveRefused(f"The .zip lists {len(infos):,} entries, more than the {MAX_ZIP_FILES:,} allowed; "
                             f"upload fewer files.")
    declared = sum(info.file_size for info in infos)
    if declared > MAX_ZIP_UNPACKED:
        raise ArchiveRefused(f"The .zip would unpack to {declared / 10**6:,.0f} MB, more than the "
                             f"{MAX_ZIP_UNPACKED / 10**6:,.0f} MB allowed; upload fewer or smaller images.")
    entries, seen = [], {}  # seen: path -> whether a folder entry named it
    for info in infos:
        parts = _entry_parts(info)
        key = "/".join(parts)
        if key in seen and not (info.is_dir() and seen[key]):
            raise ArchiveRefused(f"The .zip entry {_shown(info.filename, 60)} appears twice; zip the folder again so "
                                 f"each file appears once.")
        seen[key] = info.is_dir()
        if parts and not any(_hidden(part) for part in parts):
            entries.append(_Entry(info, parts))
    _check_no_file_is_a_folder(entries, seen)
    if not any(not entry.info.is_dir() for entry in entries):
        raise ArchiveRefused("The .zip holds no files; zip a folder that has one subfolder of images per class.")
    return entries


def _check_no_file_is_a_folder(entries: list[_Entry], seen: dict[str, bool]) -> None:
    for entry in entries:
        for depth in range(1, len(entry.parts)):
            if seen.get("/".join(entry.parts[:depth])) is False:
                raise ArchiveRefused(f"The .zip entry {_shown(entry.info.filename, 60)} lies inside something the .zip "
                                     f"also lists as a file; zip the folder again.")


def _entry_parts(info: zipfile.ZipInfo) -> list[str]:
    """The entry's path components once its name, type, encryption and size have been checked."""
    raw, shown = info.orig_filename, _shown(info.orig_filename, 60)
    if any(ord(ch) < 32 for ch in raw) or "\\" in raw:
        raise ArchiveRefused(f"The .zip entry {shown} has a control character or backslash in its name; zip the "
                             f"folder again with ordinary file names.")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    inside = posixpath.normpath(posixpath.join("/unpack", *parts)).startswith("/unpack/") if parts else True
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in parts or not inside:
        raise ArchiveRefused(f"The .zip entry {shown} points outside the folder it unpacks into; zip the image folder "
                             f"itself, without absolute paths or '..'.")
    mode = info.external_attr >> 16  # Unix st_mode where a Unix tool made the zip, else 0
    if stat.S_ISLNK(mode):
        raise ArchiveRefused(f"The .zip entry {shown} is a symbolic link, which is not allowed; zip the real files "
                             f"instead.")
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveRefused(f"The .zip entry {shown} is not a regular file or folder; zip only folders and images.")
    if info.flag_bits & 0x1:
        raise ArchiveRefused(f"The .zip entry {shown} is encrypted; zip the images again without a password.")
    if info.compress_type not in ZIP_METHODS:
        raise ArchiveRefused(f"The .zip entry {shown} uses a compression method this app cannot read; zip the folder "
                             f"again with the ordinary deflate method.")
    if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ArchiveRefused(f"The .zip entry {shown} would grow more than {MAX_RATIO} times when unpacked, as a zip "
                             f"bomb does; upload ordinary image files instead.")
    return parts


def _make_temp_folder(dest: Path, name: str) -> Path:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=dest))
    except OSError as exc:
        raise ArchiveRefused(f"The upload folder could not be created ({exc.strerror or 'unknown error'}); ask the "
                             f"server's operator to make it writable.") from None


def _unpack(zf: zipfile.ZipFile, entries: list[_Entry], folder: Path) -> None:
    """Every entry into folder, real bytes counted against each declared size and against MAX_ZIP_UNPACKED."""
    budget = MAX_ZIP_UNPACKED
    base = folder.resolve()
    for entry in entries:
        target = folder.joinpath(*entry.parts)
        try:
            if entry.info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            parent = target.parent.resolve()
            if parent != base and base not in parent.parents:
                raise ArchiveRefused(f"The .zip entry {_shown(entry.info.filename, 60)} points outside the folder it "
                                     f"unpacks into; zip the image folder itself.")
            with open(target, "xb") as out:  # "x": never through an existing file or link
                budget -= _copy_entry(zf, entry.info, out, budget)
        except OSError as exc:
            raise ArchiveRefused(f"The unpacked files could not be written ({exc.strerror or 'unknown error'}); free "
                                 f"some disk space or upload a smaller archive.") from None


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: io.BufferedIOBase, budget: int) -> int:
    """Stream one entry into out; the bytes written. ArchiveRefused when it yields more than its directory
    declared or more than budget, or when its data is damaged."""
    shown = _shown(info.filename, 60)
    written = 0
    with _damaged_is_refused(shown):
        src = zf.open(info)
    with src:
        while True:
            with _damaged_is_refused(shown):
                chunk = src.read(_CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise ArchiveRefused(f"The .zip entry {shown} holds more data than its directory declares; zip the "
                                     f"folder again and upload the new file.")
            out.write(chunk)  # an OSError here is the disk's, reported by the caller


@contextlib.contextmanager
def _damaged_is_refused(shown: str) -> Iterator[None]:
    """Reading an entry's data: what zipfile and its decompressors raise for damaged data becomes ArchiveRefused
    (a bad CRC too, which is how a directory that declares fewer bytes than the data holds shows)."""
    try:
        yield
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError,
            ValueError):
        raise ArchiveRefused(f"The .zip entry {shown} is damaged and could not be unpacked; zip the folder again and "
                             f"upload the new file.") from None


def _load_root(final: Path, entries: list[_Entry]) -> Path:
    """final, or the one folder at its top when every file lies in it and it holds subfolders (a zipped folder)."""
    files = [entry.parts for entry in entries if not entry.info.is_dir()]
    tops = {parts[0] for parts in files}
    if len(tops) == 1 and all(len(parts) >= 2 for parts in files) and any(len(parts) >= 3 for parts in files):
        return final / tops.pop()
    return final
