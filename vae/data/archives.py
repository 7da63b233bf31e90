"""A .zip of the user's images, checked before anything is written (names that stay inside their folder, no\nlinks or special files, bounded counts and sizes, no bombs) and unpacked into a fresh folder under the data\nfolder's uploads/: its image files only, and nothing at all once the folder turns out unusable."""
from __future__ import annotations

import contextlib
import io
import lzma
import os
import posixpath
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from vae.data.folders import is_hidden, is_image_name, shortened

MAX_ZIP_BYTES = 50 * 10**6  # the uploaded archive, bytes: the browser's upload limit (.streamlit/config.toml)
MAX_ZIP_FILES = 20_000  # entries in the archive's directory
MAX_ZIP_UNPACKED = 500 * 10**6  # all image entries unpacked together, bytes (other entries are never unpacked)
MAX_RATIO = 200  # unpacked / packed size of one entry; images never shrink this much, zip bombs do
RATIO_MIN_BYTES = 10**6  # entries smaller than this may shrink further (a blank BMP); the total cap bounds them
ZIP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # the folder an upload unpacks into: no dots, no slashes
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)  # those zipfile reads
_CHUNK = 2**20  # bytes copied at a time while unpacking
_PARTIAL = ".partial"  # suffix of the hidden folder an upload unpacks into before it gets its name
STALE_PARTIAL_SECONDS = 600  # a partial folder this old was left by a killed server: no unpacking takes so long


class ArchiveRefused(ValueError):
    """An uploaded .zip was refused before (or while) unpacking; the message is one sentence that says what to do."""


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


def extract_image_zip(data: bytes, dest_root: str | os.PathLike, name: str,
                      check: Callable[[Path], object] | None = None) -> Path:
    """Unpack an uploaded .zip's image files (by extension, as ImageFolder reads them; other entries are
    skipped unread) into dest_root/name after checking its directory (size, entry count, zip bombs, paths,
    links, encryption); the folder to load: dest_root/name, or the single folder it holds. check(folder),
    when given, then reads that folder: whatever it raises is raised once dest_root/name is removed again.
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
        _remove_stale_partials(dest)
        tmp = _make_temp_folder(dest, name)
        try:
            _unpack(zf, entries, tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    root = _load_root(final, entries)
    if check is not None:
        try:
            check(root)
        except BaseException:  # an unusable folder, or a load cut short: either way nobody will use it
            shutil.rmtree(final, ignore_errors=True)
            raise
    return root


def _check_zip_name(name: str) -> None:
    if not isinstance(name, str) or not ZIP_NAME.fullmatch(name):  # fullmatch: '$' alone lets 'name\n' through
        raise ArchiveRefused(f"The name {shortened(repr(name), 40)} is not allowed; use 1 to 64 letters, digits, '_' or "
                             f"'-', starting with a letter or digit.")


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError, TypeError):
        raise ArchiveRefused("The upload is not a readable .zip file; zip the image folder again and upload "
                             "the new file.") from None


def _checked_entries(zf: zipfile.ZipFile) -> list[_Entry]:
    """The image files to unpack, after every entry of the directory has passed the checks; else ArchiveRefused.
    Folders are not entries to unpack: each is made for the images it holds."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_FILES:
        raise ArchiveRefused(f"The .zip lists {len(infos):,} entries, more than the {MAX_ZIP_FILES:,} allowed; "
                             f"upload fewer files.")
    entries, seen = [], {}  # seen: path -> whether a folder entry named it
    for info in infos:
        parts = _entry_parts(info)
        key = "/".join(parts)
        if key in seen and not (info.is_dir() and seen[key]):
            raise ArchiveRefused(f"The .zip entry {shortened(info.filename, 60)} appears twice; zip the folder again so "
                                 f"each file appears once.")
        seen[key] = info.is_dir()
        if parts and not info.is_dir() and is_image_name(parts[-1]) and not any(is_hidden(part) for part in parts):
            entries.append(_Entry(info, parts))
    _check_no_file_is_a_folder(entries, seen)
    if not entries:
        raise ArchiveRefused("The .zip holds no image files; zip a folder that has one subfolder of images (PNG, JPEG, "
                             "…) per class.")
    _check_sizes(entries)
    return entries


def _check_sizes(entries: list[_Entry]) -> None:
    """The declared sizes of the entries to unpack: their total, and each one's growth from its packed size."""
    declared = sum(entry.info.file_size for entry in entries)
    if declared > MAX_ZIP_UNPACKED:
        raise ArchiveRefused(f"The .zip's images would unpack to {declared / 10**6:,.0f} MB, more than the "
                             f"{MAX_ZIP_UNPACKED / 10**6:,.0f} MB allowed; upload fewer or smaller images.")
    for entry in entries:
        info = entry.info
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ArchiveRefused(f"The .zip entry {shortened(info.filename, 60)} would grow more than {MAX_RATIO} times "
                                 f"when unpacked, as a zip bomb does; upload ordinary image files instead.")


def _check_no_file_is_a_folder(entries: list[_Entry], seen: dict[str, bool]) -> None:
    for entry in entries:
        for depth in range(1, len(entry.parts)):
            if seen.get("/".join(entry.parts[:depth])) is False:
                raise ArchiveRefused(f"The .zip entry {shortened(entry.info.filename, 60)} lies inside something the .zip "
                                     f"also lists as a file; zip the folder again.")


def _entry_parts(info: zipfile.ZipInfo) -> list[str]:
    """The entry's path components once its name, type, encryption and compression have been checked."""
    raw, shown = info.orig_filename, shortened(info.orig_filename, 60)
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
    return parts


def _remove_stale_partials(dest: Path) -> None:
    """Removes what a server killed while unpacking left in dest (unpacking that is still going on is younger)."""
    try:
        partials = [p for p in dest.glob(f".*{_PARTIAL}") if time.time() - p.lstat().st_mtime > STALE_PARTIAL_SECONDS]
    except OSError:  # dest missing or unreadable: nothing to remove, and _make_temp_folder says what is wrong
        return
    for partial in partials:
        shutil.rmtree(partial, ignore_errors=True)


def _make_temp_folder(dest: Path, name: str) -> Path:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=_PARTIAL, dir=dest))
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
            target.parent.mkdir(parents=True, exist_ok=True)
            parent = target.parent.resolve()
            if parent != base and base not in parent.parents:
                raise ArchiveRefused(f"The .zip entry {shortened(entry.info.filename, 60)} points outside the folder it "
                                     f"unpacks into; zip the image folder itself.")
            with open(target, "xb") as out:  # "x": never through an existing file or link
                budget -= _copy_entry(zf, entry.info, out, budget)
        except OSError as exc:
            raise ArchiveRefused(f"The unpacked files could not be written ({exc.strerror or 'unknown error'}); free "
                                 f"some disk space or upload a smaller archive.") from None


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: io.BufferedIOBase, budget: int) -> int:
    """Stream one entry into out; the bytes written. ArchiveRefused when it yields more than its directory
    declared or more than budget, or when its data is damaged."""
    shown = shortened(info.filename, 60)
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
    files = [entry.parts for entry in entries]
    tops = {parts[0] for parts in files}
    if len(tops) == 1 and all(len(parts) >= 2 for parts in files) and any(len(parts) >= 3 for parts in files):
        return final / tops.pop()
    return final
