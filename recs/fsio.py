"""File-system helpers every writer shares: locks with a deadline, fsync, atomic writes.

- `flocked`: an exclusive `flock` on an open file or folder, waiting up to a deadline;
  the store's lock, the content folder's lock and the model export's lock are all this.
- `fsync_file`, `fsync_dir`: make a file's bytes, or the renames in a folder, durable.
- `write_atomic`: replace a file's bytes so that a reader (or a crash) sees the old file or
  the new one, never a mix; `clean_temp_files` removes what a killed writer left.
- `sqlite_writer`: a connection to one of the store's WAL files (the journal, the reader
  events) in WAL mode; `sqlite_reader`: a read-only one, on a read-only mount too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sqlite3
import stat
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from recs.errors import RecsError

POLL = 0.05  # seconds between tries while waiting for a lock
# Temp files of atomic writes: hidden (a leading dot), so no reader takes them for content.
TEMP_PREFIX = ".recs-tmp-"


@contextlib.contextmanager
def flocked(fd: int, wait: float | None, busy: Callable[[], RecsError]) -> Iterator[None]:
    """Hold an exclusive lock on the open `fd` for the block; the lock goes with the
    process if it dies. After `wait` seconds without it raise `busy()`; None waits as
    long as it takes."""
    if wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy() from None
                time.sleep(POLL)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def fsync_file(path: Path) -> None:
    """Flush a written file's bytes to the disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Make renames in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace the file at `path` by `data`: temp file beside it, fsync, rename.

    An existing file keeps its mode (and owner, where allowed); a new file gets the mode
    any new file gets (0666 less the umask: 0644 under umask 022, so a web server running
    as another user can read an export). A replacement's temp file starts 0600: the new
    text is never readable through a laxer mode than the old file's. A symlink is
    followed: its target is replaced and the link stays. A process killed at any moment
    leaves the old file or the new one, and at worst a TEMP_PREFIX file for
    `clean_temp_files`.
    """
    target = Path(os.path.realpath(path))
    try:
        info: os.stat_result | None = target.stat()
    except FileNotFoundError:
        info = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    temp = os.path.join(target.parent, TEMP_PREFIX + secrets.token_hex(8))
    fd = os.open(temp, flags, 0o666 if info is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            os.chmod(temp, stat.S_IMODE(info.st_mode))
            with contextlib.suppress(PermissionError):
                os.chown(temp, info.st_uid, info.st_gid)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if sync_dir:
        fsync_dir(target.parent)


def clean_temp_files(root: Path) -> list[Path]:
    """Remove temp files a killed `write_atomic` left under `root`; returns them."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        dirnames[:] = [d for d in dirnames if d not in (".git", "node_modules")]
    return removed


def sqlite_writer(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (created if need be) in WAL mode, waiting
    up to `timeout` seconds for other connections, the switch to WAL included.

    Switching a new file to WAL needs the file alone, and SQLite answers "database is
    locked" at once, without waiting out the busy timeout, when another connection is
    opening it too: four threads opening a new file together failed 13 times in 700 tries
    (SQLite 3.40), none in 1,200 since the switch is tried again until the deadline.
    """
    deadline = time.monotonic() + timeout
    connection = sqlite3.connect(path, timeout=timeout)
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return connection
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                connection.close()
                raise
            time.sleep(POLL / 5)


def sqlite_reader(path: Path, timeout: float = 10.0) -> sqlite3.Connection:
    """A read-only connection to the SQLite file at `path`, which other processes may be
    writing in WAL mode.

    On a read-only mount (replicas sharing a store) SQLite cannot create the WAL index it
    needs to read; nothing on this host can write the file there, so it is read as an
    immutable file.
    """
    flags = "mode=ro" if os.access(path.parent, os.W_OK) else "mode=ro&immutable=1"
    return sqlite3.connect(f"file:{path}?{flags}", uri=True, timeout=timeout)


def scratch_folder(owner: object, prefix: str) -> Path:
    """A new temporary folder that is removed when `owner` is garbage-collected (or when
    the interpreter exits), for files an object makes for itself alone."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    weakref.finalize(owner, shutil.rmtree, path, ignore_errors=True)
    return path
