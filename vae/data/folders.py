"""A user's own images as a dataset: a folder of class subfolders read into uint8 tensors, and a
browser-uploaded .zip of such folders unpacked only after its directory has been checked.

`load_image_folder` reads torchvision's ImageFolder layout (or train/ and test/ each in that layout),
skipping unreadable files, with an optional .npz disk cache; `extract_image_zip` refuses unsafe archives.
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from vae.data.folder_cache import cached_path, read_cached, write_cached

TEST_SHARE = 0.15  # share of each class held out for testing when the folder has no test/ subfolder
SIZE_RANGE = (8, 128)  # side of the square images made, pixels
CHANNELS = (1, 3)  # grayscale ("L") or RGB
MAX_IMAGES = 100_000  # image files read at most: at 128x128 RGB that is 4.9 GB of uint8 in memory
MAX_CLASSES = 1000  # class subfolders at most, as many as ImageNet has
MAX_PIXELS_PER_IMAGE = 40_000_000  # width x height of a source image; larger ones are skipped undecoded
# Width x height summed over a folder's source images, read from their headers before any is decoded. A model
# sees at most 128x128 px, so this is MAX_IMAGES images of 141x141, or 50 at MAX_PIXELS_PER_IMAGE: seconds to
# a minute and a half of one core's decoding (docs/reliability.md), where a small zip of blank giant PNGs
# asks for several times more. Past it the folder is refused, not cut short: a model of whichever files sort
# first would be silently lopsided.
MAX_FOLDER_PIXELS = 2_000_000_000
MAX_EXAMPLES = 3  # skipped files the summary names
SPLIT_FOLDERS = ("train", "test")  # subfolders of the root that, both present, are the splits
_CACHE_VERSION = "folders-v2"  # part of the cache key: bump when decoding changes, so old .npz files are ignored
_COMPACT_ROWS = 1024  # images moved at a time when the test rows are taken out of the decoded buffer

_IGNORED_FOLDERS = ("__MACOSX",)  # resource forks macOS adds to the zips it makes


class FolderError(ValueError):
    """An image folder could not be used; the message is one sentence that says what to do."""


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


def shortened(text: str, limit: int = 80) -> str:
    """A name as a message quotes it: control characters as '?', the middle elided past `limit` characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[-half:]


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_FOLDERS


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the extensions torchvision's ImageFolder reads."""
    return has_file_allowed_extension(name, IMG_EXTENSIONS)


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
        cache_path = cached_path(cache_dir, [_CACHE_VERSION, str(folder), size, channels, seed, TEST_SHARE,
                                             MAX_PIXELS_PER_IMAGE, MAX_FOLDER_PIXELS, sorted(listing.stamps)])
        cached = read_cached(cache_path, listing.class_names, size, channels)
        if cached is not None:
            return FolderImages(**cached, source=source)
    _measure(listing, folder)
    arrays = _decode(listing, folder, size, channels, seed)
    if cache_path is not None:
        write_cached(cache_path, arrays)
    return FolderImages(**arrays, source=source)


def _check_settings(size: int, channels: int, seed: int) -> None:
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not lo <= size <= hi:
        raise FolderError(f"Image size must be a whole number of pixels from {lo} to {hi}, not "
                          f"{shortened(repr(size), 20)}; choose one in that range.")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in CHANNELS:
        raise FolderError(f"Channels must be 1 (grayscale) or 3 (RGB), not {shortened(repr(channels), 20)}; "
                          f"choose one of those.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise FolderError(f"The split seed must be a whole number from 0 up, not {shortened(repr(seed), 20)}; "
                          f"choose another.")


def _existing_folder(root: str | os.PathLike) -> Path:
    shown = shortened(os.fspath(root), 120)
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
            listed = [(entry.name, entry.is_dir()) for entry in entries if not is_hidden(entry.name)]
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    return sorted(n for n, is_dir in listed if is_dir), sorted(n for n, is_dir in listed if not is_dir)


def _unreadable(folder: Path, exc: OSError) -> FolderError:
    return FolderError(f"The folder {shortened(str(folder), 120)} could not be read ({exc.strerror or 'unknown error'}); "
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
        raise FolderError(f"{shortened(str(root), 120)} has a {present[0]} folder but no {missing} folder; add {missing}/ "
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
    classes = [name for name in classes if not is_hidden(name)]
    if not classes:
        raise FolderError(f"{shortened(str(folder), 120)} has no class subfolders; put each class's images in a subfolder "
                          f"of its own, such as {prefix}cat/ and {prefix}dog/.")
    if len(classes) > MAX_CLASSES:
        raise FolderError(f"{shortened(str(folder), 120)} has {len(classes):,} class subfolders, more than the "
                          f"{MAX_CLASSES:,} allowed; merge or remove some classes.")
    return classes


def _check_same_classes(train: list[str], test: list[str]) -> None:
    if train == test:
        return
    only_train = ", ".join(shortened(name, 30) for name in sorted(set(train) - set(test))[:3]) or "none"
    only_test = ", ".join(shortened(name, 30) for name in sorted(set(test) - set(train))[:3]) or "none"
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
            if not is_hidden(name) and os.path.islink(os.path.join(dirpath, name)):
                _skip_loose(listing, root, Path(dirpath), [name])
        dirnames[:] = [name for name in dirnames if not is_hidden(name)]
        found.append((dirpath, sorted(name for name in filenames if not is_hidden(name))))
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
    if not (inside and regular and is_image_name(path.name)):
        listing.skipped.append(rel)
        return False
    listing.n_images += 1
    if listing.n_images > MAX_IMAGES:
        raise FolderError(f"{shortened(str(root), 120)} holds more than {MAX_IMAGES:,} image files; use a smaller folder "
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


def _measure(listing: _Listing, root: Path) -> None:
    """Drops the candidates whose header cannot be read or is too large for one image (counted as skipped),
    and refuses the folder once its images add up to more than MAX_FOLDER_PIXELS; nothing is decoded."""
    total = 0
    for group in listing.groups:
        kept = []
        for path in group.files:
            pixels = _header_pixels(path)
            if pixels is None:
                listing.skipped.append(path.relative_to(root).as_posix())
                continue
            total += pixels
            if total > MAX_FOLDER_PIXELS:
                raise FolderError(f"The images in {shortened(str(root), 120)} add up to more than the "
                                  f"{MAX_FOLDER_PIXELS // 10**6:,} million pixels a folder may hold; shrink them (a "
                                  f"model sees at most {SIZE_RANGE[1]} px a side) or use fewer.")
            kept.append(path)
        group.files = kept


def _decodable(width: int, height: int) -> bool:
    """A source image this app decodes: at least a pixel, at most MAX_PIXELS_PER_IMAGE."""
    return width >= 1 and height >= 1 and width * height <= MAX_PIXELS_PER_IMAGE


def _header_pixels(path: Path) -> int | None:
    """width x height from the file's header (PIL's open decodes nothing), or None when it is unreadable or
    larger than MAX_PIXELS_PER_IMAGE."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception:  # PIL raises many kinds for damaged files (OSError, SyntaxError, struct.error, its bomb error)
        return None
    return width * height if _decodable(width, height) else None


def _read_image(path: Path, size: int, mode: str) -> np.ndarray | None:
    """uint8 (C, size, size) of one image file, or None when it is unreadable or too large to decode."""
    try:
        with Image.open(path) as img:
            if not _decodable(*img.size):  # read again: the file may have changed since it was measured
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
    if not is_test.any():  # a model needs test images: its evaluation, its stored codes, every page
        raise FolderError(f"{shortened(str(root), 120)} has one readable image per class, which leaves none to test "
                          f"on; add a second image to at least one class ({TEST_SHARE:.0%} of each class of 2 or more, "
                          f"at least one, is held out).")
    test_images = pixels[:row][is_test]  # a copy: the test share is small
    train_images = _compact(pixels, np.flatnonzero(~is_test))
    skipped = sorted(listing.skipped)
    return dict(
        train_images=torch.from_numpy(train_images), train_labels=torch.from_numpy(labels[~is_test]),
        test_images=torch.from_numpy(test_images), test_labels=torch.from_numpy(labels[is_test]),
        class_names=list(listing.class_names), skipped=len(skipped),
        skipped_examples=[shortened(rel, 60) for rel in skipped[:MAX_EXAMPLES]],
    )


def _check_counts(listing: _Listing, root: Path, counts: list[int]) -> None:
    if sum(counts) == 0:
        raise FolderError(f"No readable images were found in {shortened(str(root), 120)}; add PNG or JPEG files to its "
                          f"class subfolders.")
    for group, count in zip(listing.groups, counts):
        if count == 0:
            raise FolderError(f"The class folder {shortened(group.folder, 80)} holds no readable image; add some PNG or "
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
                if any(entry.is_file() and is_image_name(entry.name)
                       for _, entry in zip(range(50), entries)):
                    return True
        except OSError:
            continue
    return False


def load_folder(request) -> tuple:
    """Both splits of a folder of images (the data folder itself, one subfolder per class), made to the
    request's size and channels, as InMemoryDatasets: the `folder` dataset's loader."""
    from vae.data.memory import InMemoryDataset
    from vae.data.places import FOLDER_CACHE, resolve_data_dir
    from vae.data.registry import DatasetUnavailable

    try:
        read = load_image_folder(request.root, size=request.image_size, channels=request.channels, seed=0,
                                 cache_dir=resolve_data_dir(None) / FOLDER_CACHE)
    except FolderError as error:
        raise DatasetUnavailable(str(error)) from error
    return tuple(InMemoryDataset("folder", split, images, labels, list(read.class_names), {}, read.source, read.summary())
                 for split, images, labels in (("train", read.train_images, read.train_labels),
                                               ("test", read.test_images, read.test_labels)))
