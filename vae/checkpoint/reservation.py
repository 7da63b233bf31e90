"""One writer per checkpoint file: a run reserves its file when it starts and keeps it until it ends.

The reservation is an exclusive flock on a hidden `.<name>.pt.lock` beside the checkpoint, which holds the
writer's process id. The kernel drops the lock when its holder dies, even by SIGKILL, so a killed run's
lock file is taken over by the next run or Resume without any guess about stale process ids; flock locks
belong to one open file, so two jobs of one server exclude each other as two processes do. Every writer
(the app's jobs, `python -m vae train`) reserves before it loads any data: a folder that cannot take the
lock file cannot take the checkpoint either, and says so before the first epoch.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from vae.checkpoint.format import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range lock, exclusive only, also dropped when its holder dies
    fcntl = None
    import msvcrt

OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)  # where the system has them
LOCK_SUFFIX = ".lock"
# A listing that peeks at a lock (in_use) holds it for microseconds: a run that starts meanwhile tries again.
LOCK_TRIES, LOCK_RETRY_SECONDS = 5, 0.01


class CheckpointInUse(CheckpointError):
    """Another run is writing this checkpoint; the message names it."""


class CheckpointExists(CheckpointError):
    """A new run was asked for a name whose checkpoint is already on disk."""


class UnwritableFolder(CheckpointError):
    """The checkpoint's folder cannot take a file, so no run may start there."""


def already_exists(stem: str) -> CheckpointExists:
    return CheckpointExists(f"A checkpoint named {stem!r} already exists; choose another name or delete the old one.")


def lock_path(path: str | os.PathLike) -> Path:
    """Where the reservation of a checkpoint lives: `.<file name>.lock` beside it (hidden, never listed)."""
    path = Path(path)
    return path.parent / f".{path.name}{LOCK_SUFFIX}"


class Reservation:
    """The right to write one checkpoint file, held until release() (or the with-block's end, or the process's)."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Gives the file up; a second call does nothing. The lock file goes first, while still locked, so a run
        that opened it meanwhile finds it gone and makes its own (see _lock)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            lock_path(self.path).unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Reservation({str(self.path)!r}, held={self.held})"


def reserve(path: str | os.PathLike, new: bool = False) -> Reservation:
    """Reserves the checkpoint at path for this run. new: the run must not overwrite a file already there
    (checked under the reservation, so two new runs never both find the name free). Raises CheckpointInUse,
    UnwritableFolder or CheckpointExists, each one sentence."""
    path = Path(path).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock(lock_path(path))
    except OSError as e:
        raise UnwritableFolder(f"Cannot write a checkpoint into {path.parent} ({e.strerror or e}); make the folder "
                               "writable or choose another one.") from None
    if fd is None:
        raise CheckpointInUse(f"{path.name} is being written by another training run{_holder(path)}; wait for it to "
                              "finish or choose another name.")
    reservation = Reservation(path, fd)
    if new and path.exists():
        reservation.release()
        raise already_exists(path.stem)
    return reservation


def in_use(path: str | os.PathLike) -> bool:
    """Whether a run (of any process) holds the checkpoint's reservation now; reserves nothing."""
    try:
        fd = os.open(lock_path(Path(path).resolve()), (os.O_RDONLY if fcntl else os.O_RDWR) | OPEN_FLAGS)
    except OSError:  # no lock file: no run ever reserved it, or the last one released it
        return False
    try:
        return not _try_lock(fd, exclusive=False)
    finally:
        os.close(fd)  # closing drops the lock, if it was taken


def _lock(lock_file: Path) -> int | None:
    """An open descriptor holding the lock file's exclusive lock, or None when another run holds it."""
    for attempt in range(LOCK_TRIES):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o644)
        if not _try_lock(fd, exclusive=True):
            os.close(fd)
            time.sleep(LOCK_RETRY_SECONDS)
            continue
        if _same_file(fd, lock_file):
            _write_pid(fd)
            return fd
        os.close(fd)  # its holder released it (and removed it) after we opened it: lock the file there now
    return None


def _try_lock(fd: int, exclusive: bool) -> bool:
    """Takes the lock on fd without waiting: exclusive, or shared (a peek that blocks no other peek); False
    when another holder has it."""
    try:
        if fcntl is None:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _same_file(fd: int, lock_file: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(lock_file, follow_symlinks=False)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _write_pid(fd: int) -> None:
    """The holder's process id, for the sentence another run gets; a full disk only loses the number."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())


def _holder(path: Path) -> str:
    """' (process N)' naming the run that holds the reservation, when its lock file says."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock_path(path).read_text().strip())
        return f" (process {pid})"
    return ""
