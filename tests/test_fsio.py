"""recs/fsio.py: atomic writes (modes, symlinks, no temp file left), clean-up of what a
killed writer left, locks with a deadline, read-only SQLite readers."""

from __future__ import annotations

import os
import stat

import pytest

from recs.fsio import TEMP_PREFIX, clean_temp_files, write_atomic


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
