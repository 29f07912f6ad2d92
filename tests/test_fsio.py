"""recs/fsio.py: atomic writes (modes, symlinks, no temp file left), clean-up of what a
killed writer left, locks with a deadline, SQLite writers in WAL mode and read-only
readers."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time

import pytest

from recs.errors import RecsError
from recs.fsio import (
    TEMP_PREFIX,
    clean_temp_files,
    flocked,
    sqlite_reader,
    sqlite_writer,
    write_atomic,
)


def test_write_atomic_keeps_mode_follows_symlinks_and_leaves_no_temp(tmp_path):
    target = tmp_path / "real.md"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.md", "real.md"]


@pytest.mark.parametrize(
    ("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)], ids=["umask-022", "umask-027"]
)
def test_write_atomic_gives_a_new_file_the_mode_of_any_new_file(tmp_path, umask, mode):
    # A web server running as another user must be able to read what an export creates:
    # a new file gets 0666 less the umask, like any file a program creates, never 0600.
    old_umask = os.umask(umask)
    try:
        write_atomic(tmp_path / "new.json", b"{}")
        (tmp_path / "plain.json").write_bytes(b"{}")  # what open() gives, for comparison
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == mode


def test_write_atomic_keeps_the_mode_of_an_existing_file_whatever_the_umask(tmp_path):
    target = tmp_path / "article.md"
    target.write_bytes(b"old")
    target.chmod(0o640)
    old_umask = os.umask(0o022)  # would give 0644 to a new file
    try:
        write_atomic(target, b"new")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_clean_temp_files(tmp_path):
    (tmp_path / "sub").mkdir()
    left = tmp_path / "sub" / f"{TEMP_PREFIX}abc"
    left.write_bytes(b"partial")
    keep = tmp_path / "sub" / "article.md"
    keep.write_bytes(b"x")
    assert clean_temp_files(tmp_path) == [left]
    assert not left.exists() and keep.exists()
    assert os.listdir(tmp_path / "sub") == ["article.md"]


def test_clean_temp_files_leaves_git_and_node_modules_alone(tmp_path):
    for folder in (".git", "node_modules", "posts"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{TEMP_PREFIX}x").write_bytes(b"")
    assert clean_temp_files(tmp_path) == [tmp_path / "posts" / f"{TEMP_PREFIX}x"]
    assert (tmp_path / ".git" / f"{TEMP_PREFIX}x").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_bytes(b"old")

    def no_rename(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"new", sync_dir=False)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.json"]


class Busy(RecsError):
    """The lock is held elsewhere."""


def test_a_lock_held_elsewhere_is_waited_for_until_the_deadline(tmp_path):
    path = tmp_path / "lock"
    path.touch()
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        with flocked(first, wait=None, busy=lambda: Busy("busy")):
            started = time.monotonic()
            with pytest.raises(Busy, match="busy"), flocked(second, 0.2, lambda: Busy("busy")):
                pass
            assert time.monotonic() - started >= 0.2
        with flocked(second, wait=0, busy=lambda: Busy("busy")):  # released with the block
            pass
    finally:
        os.close(first)
        os.close(second)


def test_a_lock_is_taken_as_soon_as_it_is_released(tmp_path):
    path = tmp_path / "lock"
    path.touch()
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    taken = threading.Event()

    def wait_for_it() -> None:
        with flocked(second, 5.0, lambda: Busy("busy")):
            taken.set()

    try:
        with flocked(first, wait=None, busy=lambda: Busy("busy")):
            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            assert not taken.wait(0.2)  # held: the other waits
        waiter.join(5)
        assert taken.is_set()
    finally:
        os.close(first)
        os.close(second)


def test_a_reader_cannot_write_and_sees_what_writers_commit(tmp_path):
    path = tmp_path / "journal.sqlite"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    reader = sqlite_reader(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (2)")
        writer.execute("INSERT INTO t VALUES (3)")
        writer.commit()
        assert reader.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (3,)]
    finally:
        reader.close()
        writer.close()


def _new_file_held(path):
    """A new SQLite file in rollback-journal mode with a write transaction open: SQLite
    refuses to switch it to WAL at once, without waiting out any busy timeout."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_writer_waits_for_the_switch_to_wal(tmp_path):
    """Two connections opening a new journal or event file at once: the second waits for
    the first instead of failing with "database is locked" (a flaky failure of the
    event tests, and a first API write that could fail the same way)."""
    path = tmp_path / "new.sqlite"
    holder = _new_file_held(path)
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))
    release.start()
    started = time.monotonic()
    connection = sqlite_writer(path, timeout=10.0)
    release.join()
    try:
        assert time.monotonic() - started >= 0.25  # it waited for the other connection
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
    finally:
        connection.close()
        holder.close()


def test_a_writer_gives_up_at_its_deadline(tmp_path):
    path = tmp_path / "new.sqlite"
    holder = _new_file_held(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite_writer(path, timeout=0.2)
    finally:
        holder.close()
