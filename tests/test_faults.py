"""Faults: a full or read-only disk, and two writers at once. A clear error, the previous
store intact, no temporary file left; the second writer waits or is refused, never corrupts.

The disk faults are raised in process at every write step of a publish (CI runs as root,
whom chmod does not stop); where the machine allows `mount`, a real tiny tmpfs is filled
and remounted read-only as well.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recs import journal, store
from recs.api import create_app
from recs.cli import main
from recs.config import Settings
from recs.corpus import read_front_matter
from recs.encoder import HashingEncoder
from recs.errors import StoreWriteError
from recs.fsio import TEMP_PREFIX
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.regenerate import regenerate
from recs.service import Service
from tests.conftest import BIN, EXAMPLES

ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the location is read-only or not writable",
}


def fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def tidy(store_dir: Path) -> None:
    """The store has no temporary files and names a complete generation."""
    assert not list(store_dir.glob(store.TMP_PREFIX + "*"))
    store.load(store_dir)


def inject(monkeypatch, step: str, code: int) -> None:
    """Make one write step of store.publish fail as a full (ENOSPC) or read-only disk would."""
    if step == "lock file":
        real_open = open

        def open_(path, *args, **kwargs):
            if Path(path).name == store.LOCK:
                raise fail(code)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(store, "open", open_, raising=False)
    elif step == "temp folder":
        real_mkdir = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if self.name.startswith(store.TMP_PREFIX):
                raise fail(code)
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    elif step == "database":
        # SQLite's own I/O: a real SQLITE_FULL / SQLITE_READONLY from the library.
        real_connect = sqlite3.connect
        pragma = "max_page_count = 1" if code == errno.ENOSPC else "query_only = 1"

        def connect(path, *args, **kwargs):
            connection = real_connect(path, *args, **kwargs)
            if store.TMP_PREFIX in str(path):
                connection.execute(f"PRAGMA {pragma}")
            return connection

        monkeypatch.setattr(sqlite3, "connect", connect)
    elif step == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(fail(code)))
    elif step == "rename":
        real_replace = os.replace

        def replace(source, target):
            if Path(target).name == store.CURRENT:
                raise fail(code)
            return real_replace(source, target)

        monkeypatch.setattr(os, "replace", replace)
    else:
        raise AssertionError(step)


STEPS = ["lock file", "temp folder", "database", "fsync", "rename"]


@pytest.mark.parametrize("code", list(ERRORS), ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failing_disk_leaves_the_previous_store(topic_corpus, tmp_path, monkeypatch, step, code):
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    before = store.load(store_dir)
    with monkeypatch.context() as patch:
        inject(patch, step, code)
        with pytest.raises(StoreWriteError) as error:
            build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    assert str(error.value) == (
        f"cannot write the store {store_dir}: {ERRORS[code]}; the previous store is unchanged. "
        "Free space or choose a writable --store (RECS_STORE)"
    )
    assert store.current_generation(store_dir) == "gen-000001"
    after = store.load(store_dir)
    assert after.related == before.related and after.settings.limit == 2
    tidy(store_dir)
    # Once the disk is back, the next build publishes as usual.
    _, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    assert report.published and store.load(store_dir).settings.limit == 3
    tidy(store_dir)


@pytest.mark.parametrize("code", list(ERRORS), ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("step", ["copy", "database"])
def test_a_failing_disk_during_an_update_leaves_the_previous_store(
    topic_corpus, tmp_path, monkeypatch, step, code
):
    """A rebuild with the same URLs copies the last generation's file and updates rows."""
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    before = store.load(store_dir)
    edited = topic_corpus / "space" / "0.md"
    edited.write_text(edited.read_text().replace('excerpt: "', 'excerpt: "Now ', 1))
    with monkeypatch.context() as patch:
        if step == "copy":
            patch.setattr(shutil, "copyfile", lambda *a, **k: (_ for _ in ()).throw(fail(code)))
        else:  # SQLite refuses to write the copy, as a full or read-only disk would
            inject(patch, "database", code)
        with pytest.raises(StoreWriteError, match=ERRORS[code]):
            build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    assert store.current_generation(store_dir) == "gen-000001"
    assert store.load(store_dir).related == before.related
    tidy(store_dir)
    _, report = build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=2))
    assert report.published and report.embedded == 1
    tidy(store_dir)


def test_the_cli_says_it_in_one_line_with_exit_74(topic_corpus, tmp_path, monkeypatch, capsys):
    store_dir = tmp_path / "store"
    assert main(["build", str(topic_corpus), "--store", str(store_dir), "--model", "hashing"]) == 0
    capsys.readouterr()
    inject(monkeypatch, "database", errno.ENOSPC)
    args = ["build", str(topic_corpus), "--store", str(store_dir), "--model", "hashing"]
    assert main([*args, "--limit", "2"]) == 74
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the store {store_dir}: the disk is full")
    assert err.count("\n") == 1
    tidy(store_dir)


@pytest.mark.parametrize("code", list(ERRORS), ids=["ENOSPC", "EROFS"])
def test_api_writes_on_a_failing_disk_are_refused_and_change_nothing(
    built_store, monkeypatch, code
):
    settings = Settings(store=built_store, model="hashing", api_token="t" * 20)
    service = Service(settings)
    service.poll()
    with TestClient(create_app(settings, service)) as client:
        real_connect = sqlite3.connect
        pragma = "max_page_count = 1" if code == errno.ENOSPC else "query_only = 1"

        def connect(path, *args, **kwargs):
            connection = real_connect(path, *args, **kwargs)
            if str(path).endswith(journal.JOURNAL):
                connection.execute(f"PRAGMA {pragma}")
            return connection

        monkeypatch.setattr(sqlite3, "connect", connect)
        article = {"title": "New", "excerpt": "A new one.", "webUrl": "https://example.com/new"}
        headers = {"Authorization": "Bearer " + "t" * 20}
        response = client.put("/articles", json=article, headers=headers)
        assert response.status_code == 507, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "nothing was changed" in response.json()["detail"]
        monkeypatch.undo()
        assert client.get("/related", params={"url": "https://example.com/new"}).status_code == 404
    assert journal.read_changes(built_store, store.current_generation(built_store) or "") == []


@pytest.fixture
def built_store(topic_corpus, tmp_path) -> Path:
    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    return store_dir


@pytest.mark.parametrize("code", list(ERRORS), ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("step", ["temp file", "write", "rename"])
def test_regenerate_on_a_failing_disk_leaves_every_file_as_it_was(
    tmp_path, monkeypatch, step, code
):
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES / "space", content)
    before = {p.name: p.read_bytes() for p in content.iterdir()}
    if step == "temp file":
        real_open = os.open

        def open_(path, *args, **kwargs):
            if str(path).startswith(f"{content}/"):  # a file in it (the folder is locked)
                raise fail(code)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", open_)
    elif step == "write":
        real_fsync = os.fsync

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(content)):
                raise fail(code)
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        real = os.replace

        def replace(source, target):
            if str(target).startswith(str(content)):
                raise fail(code)
            return real(source, target)

        monkeypatch.setattr(os, "replace", replace)
    report = regenerate(content, tmp_path / "store", HashingEncoder(), RankSettings())
    assert report.changed == [] and len(report.skipped) == len(before)
    for problem in report.skipped:
        assert problem.reason == f"cannot write: {os.strerror(code)}; the file is unchanged"
    assert {p.name: p.read_bytes() for p in content.iterdir()} == before  # no temp file either
    tidy(tmp_path / "store")


# --- a real tiny file system, where mount is allowed ------------------------------------


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the in-process disk faults above still run")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def hashing_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", **extra)
    return env


@pytest.mark.e2e
def test_a_real_full_then_read_only_disk(tiny_disk, tmp_path):
    recs = str(BIN / "recs")
    store_dir = tiny_disk / "store"
    env = hashing_env(RECS_STORE=str(store_dir))
    assert run([recs, "build", str(EXAMPLES), "--limit", "3", "-q"], env).returncode == 0
    before = store.load(store_dir)
    content = tiny_disk / "content"
    shutil.copytree(EXAMPLES / "space", content)
    files = {p.name: p.read_bytes() for p in content.iterdir()}
    fill(tiny_disk)

    full = run([recs, "build", str(EXAMPLES), "--limit", "4", "-q"], env)
    assert full.returncode == 74
    assert full.stderr == (
        f"error: cannot write the store {store_dir}: the disk is full; the previous store is "
        "unchanged. Free space or choose a writable --store (RECS_STORE)\n"
    )
    assert store.load(store_dir).related == before.related
    tidy(store_dir)
    regenerated = run([recs, "regenerate", str(content), "--store", str(tmp_path / "s")], env)
    assert regenerated.stderr.count("No space left on device; the file is unchanged") == len(files)
    assert {p.name: p.read_bytes() for p in content.iterdir()} == files

    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    readonly = run([recs, "build", str(EXAMPLES), "--limit", "4", "-q"], env)
    assert readonly.returncode == 74
    assert "the location is read-only or not writable; the previous store is unchanged" in (
        readonly.stderr
    )
    assert store.load(store_dir).related == before.related
    regenerated = run([recs, "regenerate", str(content), "--store", str(tmp_path / "s")], env)
    assert regenerated.stderr.count("Read-only file system; the file is unchanged") == len(files)
    assert {p.name: p.read_bytes() for p in content.iterdir()} == files


# --- two writers at once (real processes) -----------------------------------------------


def write_corpus(content: Path, count: int) -> None:
    """Enough articles that a build holds the store lock for a moment."""
    content.mkdir()
    for number in range(count):
        topic = number % 9
        (content / f"{number:04d}.md").write_text(
            f'---\ntitle: "Story {number} about topic {topic}"\n'
            f'excerpt: "Words of topic {topic}: w{topic}a w{topic}b w{number % 13}c."\n'
            f'webUrl: "https://writers.example/{number}"\n---\nBody.\n'
        )


def hold_lock_then_stop(
    command: list[str], env: dict[str, str], store_dir: Path
) -> subprocess.Popen:
    """Start `command` and SIGSTOP it while it holds the store lock (its pid is in .lock)."""
    for _attempt in range(5):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        mark = f"recs pid {process.pid}"
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            try:
                seen = (store_dir / store.LOCK).read_text() == mark
            except OSError:
                seen = False
            if seen:
                process.send_signal(signal.SIGSTOP)
                if lock_is_held(store_dir):
                    return process
                break  # it had already let go: start again
            time.sleep(0.002)
        process.kill()
        process.communicate()
    raise AssertionError("never caught the writer holding the lock")


def lock_is_held(store_dir: Path) -> bool:
    with open(store_dir / store.LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess[str]:
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.e2e
def test_a_second_build_is_refused_or_waits_and_nothing_is_corrupted(tmp_path):
    content = tmp_path / "content"
    write_corpus(content, 1500)
    store_dir = tmp_path / "store"
    recs = str(BIN / "recs")
    env = hashing_env(RECS_STORE=str(store_dir))
    assert run([recs, "build", str(content), "--limit", "3", "-q"], env).returncode == 0
    first = hold_lock_then_stop([recs, "build", str(content), "--limit", "5", "-q"], env, store_dir)
    try:
        refused = run([recs, "build", str(content), "--limit", "4", "-q"], env)
        assert refused.returncode == 75
        assert refused.stderr == (
            f"error: the store {store_dir} is locked by recs pid {first.pid}: another recs build, "
            "regenerate or write is running; wait for it to finish and try again\n"
        )
        assert len(store.load(store_dir)) == 1500
        waiting = subprocess.Popen(
            [recs, "build", str(content), "--limit", "4", "-q"],
            env={**env, "RECS_LOCK_WAIT": "120"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for the lock
    finally:
        done = finish(first)
    assert done.returncode == 0, done.stderr
    _, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    final = store.load(store_dir)
    assert final.settings.limit == 4 and len(final) == 1500
    assert store.current_generation(store_dir) == "gen-000003"
    tidy(store_dir)


@pytest.mark.e2e
def test_a_second_regenerate_is_refused_or_waits_and_files_stay_whole(tmp_path):
    content = tmp_path / "content"
    write_corpus(content, 800)
    store_dir = tmp_path / "store"
    recs = str(BIN / "recs")
    env = hashing_env(RECS_STORE=str(store_dir))
    first = hold_lock_then_stop([recs, "regenerate", str(content), "-q"], env, store_dir)
    try:
        other_store = {**env, "RECS_STORE": str(tmp_path / "other")}
        refused = run([recs, "regenerate", str(content), "-q"], other_store)
        assert refused.returncode == 75
        assert refused.stderr.startswith(
            f"error: the content folder {content} is being rewritten by another recs regenerate"
        )
        assert not (tmp_path / "other").exists() or not store.exists(tmp_path / "other")
        same_store = run([recs, "build", str(content), "-q"], env)
        assert same_store.returncode == 75 and "is locked by recs pid" in same_store.stderr
        waiting = subprocess.Popen(
            [recs, "regenerate", str(content), "-q"],
            env={**other_store, "RECS_LOCK_WAIT": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert waiting.poll() is None
    finally:
        done = finish(first)
    assert done.returncode == 0, done.stderr
    _, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    for path in content.iterdir():
        assert not path.name.startswith(TEMP_PREFIX)
        assert read_front_matter(path.read_bytes())["related"]
    check = run([recs, "regenerate", str(content), "--check", "-q"], other_store)
    assert check.returncode == 0, check.stderr  # the waiting run left every block current
    tidy(store_dir)
