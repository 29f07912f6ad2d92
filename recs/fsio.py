"""File-system helpers every writer shares: locks with a deadline, fsync, atomic writes.

- `flocked`: an exclusive `flock` on an open file or folder, waiting up to a deadline;
  the store's lock, the content folder's lock and the model export's lock are all this.
- `fsync_file`, `fsync_dir`: make a file's bytes, or the renames in a folder, durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from recs.errors import RecsError

POLL = 0.05  # seconds between tries while waiting for a lock


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
