"""Crash safety: real `recs build` and `recs regenerate` processes killed with SIGKILL at
random moments, KILLS times each.

Every round starts from the same old state (an older store, the files as they were), runs
the command on a corpus with new articles and kills it. Then:

- the store opens and holds a complete generation, the old or the new one (its articles and
  related lists are exactly one of the two, never a mix);
- every article file is byte for byte its old or its new content;
- the next run finishes cleanly, ends in the new state, and leaves no temporary file
  (`.tmp-*` in the store, `.recs-tmp-*` in the content folder).

Kills land in turn anywhere in the run (start-up, reading, embedding, publishing,
writing), a moment after the run starts writing the store (a temporary or new generation
appears), and, for regenerate, a moment after it replaces its first article file: the
writes themselves are hit, not only the start-up.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recs import store
from recs.fsio import TEMP_PREFIX
from tests.conftest import BIN, EXAMPLES

pytestmark = pytest.mark.e2e

KILLS = 50
BULK = 40  # articles added to the 51 of the sample corpus: more to embed, store and write


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def state_of(store_dir: Path) -> tuple[list[str], list]:
    """What a reader of the store gets: its articles and their related lists."""
    snapshot = store.load(store_dir)
    return [a.url for a in snapshot.articles], snapshot.related


def temporary(store_dir: Path, content: Path) -> list[str]:
    return [p.name for p in store_dir.glob(store.TMP_PREFIX + "*")] + [
        p.name for p in content.rglob(TEMP_PREFIX + "*")
    ]


@dataclass
class Scenario:
    """One command, its old and new states, and the tallies of its kills."""

    command: list[str]
    env: dict[str, str]
    content: Path
    store_dir: Path
    old_store: Path
    old_files: dict[str, bytes]
    new_files: dict[str, bytes] = field(default_factory=dict)
    old_state: tuple = ()
    new_state: tuple = ()
    duration: float = 0.0
    tally: Counter = field(default_factory=Counter)
    old_generations: set[str] = field(default_factory=set)
    old_mtimes: dict[str, int] = field(default_factory=dict)

    def restore(self) -> None:
        shutil.rmtree(self.store_dir)
        shutil.copytree(self.old_store, self.store_dir)
        for path in self.content.rglob("*"):
            if path.is_file() and path.relative_to(self.content).as_posix() not in self.old_files:
                path.unlink()
        for source, data in self.old_files.items():
            (self.content / source).write_bytes(data)

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command, env=self.env, capture_output=True, text=True, timeout=300
        )

    def publishing(self) -> bool:
        """The run has started writing the store: a temporary or a new generation."""
        return any(
            name.startswith(store.TMP_PREFIX)
            or (name.startswith(store.GEN_PREFIX) and name not in self.old_generations)
            for name in os.listdir(self.store_dir)
        )

    def rewriting(self) -> bool:
        """The run has replaced its first article file."""
        return any(
            (self.content / source).stat().st_mtime_ns != mtime
            for source, mtime in self.old_mtimes.items()
        )

    def kill_once(self, rng: random.Random, moment: str) -> bool:
        """Run, SIGKILL at a random moment; True when it was still running when killed."""
        self.restore()
        self.old_generations = set(os.listdir(self.store_dir))
        self.old_mtimes = {
            s: (self.content / s).stat().st_mtime_ns
            for s in self.old_files
            if self.new_files[s] != self.old_files[s]
        }
        process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if moment == "anywhere":
            time.sleep(rng.uniform(0.0, 1.0) * self.duration)
        else:
            started = self.publishing if moment == "publishing" else self.rewriting
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline and not started():
                time.sleep(0.0005)
            # Publishing a store this size takes some milliseconds; writing its files, tens.
            time.sleep(rng.uniform(0.0, 0.01 if moment == "publishing" else 0.03))
        process.send_signal(signal.SIGKILL)
        return process.wait() == -signal.SIGKILL

    def check(self) -> None:
        """After a kill: the store and every file are old or new; the next run repairs all."""
        state = state_of(self.store_dir)
        assert state in (self.old_state, self.new_state), "the store is neither old nor new"
        self.tally["store old" if state == self.old_state else "store new"] += 1
        left = temporary(self.store_dir, self.content)
        self.tally["temporary files left"] += bool(left)
        orphans = {p.name for p in self.store_dir.glob(store.GEN_PREFIX + "*")}
        orphans -= self.old_generations | {store.current_generation(self.store_dir)}
        self.tally["killed mid-publish"] += bool(orphans) or any(
            n.startswith(store.TMP_PREFIX) for n in left
        )
        now = {
            s: d
            for s, d in files_of(self.content).items()
            if not Path(s).name.startswith(TEMP_PREFIX)
        }
        assert set(now) == set(self.old_files)
        for source, data in now.items():
            assert data in (self.old_files[source], self.new_files[source]), (
                f"{source} is neither its old nor its new content"
            )
        renewed = sum(now[s] != self.old_files[s] for s in now)
        changing = sum(self.new_files[s] != self.old_files[s] for s in now)
        self.tally["files partly rewritten"] += 0 < renewed < changing
        done = self.run()
        assert done.returncode == 0, done.stderr
        assert state_of(self.store_dir) == self.new_state
        assert files_of(self.content) == self.new_files  # also: no temporary file in content
        assert temporary(self.store_dir, self.content) == []

    def kill_many(self, seed: int, moments: tuple[str, ...]) -> None:
        rng = random.Random(seed)
        attempts = 0
        while self.tally["killed"] < KILLS:
            attempts += 1
            assert attempts <= 2 * KILLS, f"only {self.tally['killed']} runs were killed mid-way"
            killed = self.kill_once(rng, moments[attempts % len(moments)])
            self.tally["killed" if killed else "finished before the kill"] += 1
            self.check()
        print(f"{self.command[1]}: {dict(self.tally)}")


def scenario(
    tmp_path: Path, command: str, prepare_old: Callable[[Path, Path, dict[str, str]], None]
) -> Scenario:
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    store_dir = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(store_dir))
    prepare_old(content, store_dir, env)  # the old store, from the sample corpus alone
    (content / "bulk").mkdir()
    for n in range(BULK):
        (content / "bulk" / f"{n}.md").write_text(
            f'---\ntitle: "Bulk story {n}"\nexcerpt: "About topic {n % 7} and more {n}"\n'
            f'webUrl: "https://bulk.example/{n}"\n\nsecured: "s{n}"\n---\nBody {n}\n'
        )
    old_store = tmp_path / "old-store"
    shutil.copytree(store_dir, old_store)
    case = Scenario(
        command=[str(BIN / "recs"), command, str(content), "-q"],
        env=env,
        content=content,
        store_dir=store_dir,
        old_store=old_store,
        old_files=files_of(content),
    )
    case.old_state = state_of(store_dir)
    started = time.monotonic()
    done = case.run()  # the reference run: the new state, and how long a run takes here
    case.duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    case.new_files = files_of(content)
    case.new_state = state_of(store_dir)
    assert len(case.old_state[0]) == 51 and len(case.new_state[0]) == 51 + BULK
    return case


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """In memory when /dev/shm is there: a kill is not a power cut, so what is on the page
    cache is what the next run sees either way, and 200 fsyncs per run on a disk would
    make most of the test's time."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="recs-crash-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_killed_builds_leave_a_complete_store(fast_tmp):
    def old_store(content: Path, store_dir: Path, env: dict[str, str]) -> None:
        done = subprocess.run(
            [str(BIN / "recs"), "build", str(content), "-q"], env=env, capture_output=True
        )
        assert done.returncode == 0

    case = scenario(fast_tmp, "build", old_store)
    assert case.new_files == case.old_files  # a build never writes article files
    case.kill_many(seed=20240601, moments=("anywhere", "publishing"))
    assert case.tally["killed"] >= KILLS
    assert case.tally["killed mid-publish"] >= 3  # some kills landed in the middle of publishing


def test_killed_regenerates_leave_every_file_old_or_new(fast_tmp):
    def old_store(content: Path, store_dir: Path, env: dict[str, str]) -> None:
        done = subprocess.run(
            [str(BIN / "recs"), "regenerate", str(content), "-q"], env=env, capture_output=True
        )
        assert done.returncode == 0

    case = scenario(fast_tmp, "regenerate", old_store)
    assert all(case.new_files[s] != case.old_files[s] for s in case.old_files if "bulk/" in s)
    case.kill_many(seed=20240501, moments=("anywhere", "publishing", "rewriting"))
    assert case.tally["killed"] >= KILLS
    assert case.tally["files partly rewritten"] >= 1  # some kills landed in the middle of writes
