"""`recs watch` as a dev server runs it: a real process, real file events."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recs.corpus import read_front_matter
from recs.watch import wanted
from tests.conftest import BIN, EXAMPLES

SEED_SOURCE = "technology/chinese-school-facial-recognition.md"


def test_wanted_ignores_temp_hidden_and_other_files(tmp_path):
    assert wanted(tmp_path, tmp_path / "a" / "b.md")
    assert wanted(tmp_path, tmp_path / "c.jsonl")
    assert not wanted(tmp_path, tmp_path / "a" / ".recs-tmp-xyz")
    assert not wanted(tmp_path, tmp_path / ".git" / "x.md")
    assert not wanted(tmp_path, tmp_path / "_index.md")
    assert not wanted(tmp_path, tmp_path / "picture.jpg")
    assert not wanted(tmp_path.parent, tmp_path.parent.parent / "x.md")


class Output:
    """Lines a process prints, collected by a thread, with a wait-until."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, check: Callable[[list[str]], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(list(self.lines)):
                return
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}; output: {self.lines}")


@contextmanager
def watching(content: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Output]]:
    """A real `recs watch CONTENT`, its printed lines collected, stopped with Ctrl-C (SIGINT)
    on the way out; its pipe is closed with it."""
    with subprocess.Popen(
        [str(BIN / "recs"), "watch", str(content)],
        # A job started in the background by a non-interactive shell (CI) inherits SIGINT
        # ignored, and Python then never raises KeyboardInterrupt: Ctrl-C as a user's.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        output = Output(process)
        try:
            yield process, output
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output.thread.join(timeout=20)


def related_urls(path: Path) -> list[str]:
    fields = read_front_matter(path.read_bytes())
    return [entry["webUrl"] for entry in fields.get("related") or []]


@pytest.mark.e2e
def test_watch_rewrites_affected_blocks_and_ignores_its_own_writes(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(tmp_path / "store"), PYTHONUNBUFFERED="1")
    with watching(content, env) as (process, output):
        output.wait_for(lambda lines: any(x.startswith("watching ") for x in lines), "start")
        assert output.lines[0].startswith("51 files: 51 changed, 0 unchanged, 0 skipped;")
        time.sleep(1.0)  # events of the first round's own writes have arrived by now
        assert len(output.lines) == 2, output.lines  # ... and started no round
        mtimes = {p: p.stat().st_mtime_ns for p in content.rglob("*.md")}

        # Make one article about what the seed is about: it tops the seed's list.
        seed = content / SEED_SOURCE
        edited = content / "cooking" / "knife-skills-dice-an-onion-without-tears.md"
        before = related_urls(seed)
        text = edited.read_text(encoding="utf-8")
        start = text.index("excerpt: ")
        end = text.index("\n", start)
        seed_excerpt = seed.read_text(encoding="utf-8").split("excerpt: ", 1)[1].split("\n")[0]
        edited.write_text(text[:start] + "excerpt: " + seed_excerpt + text[end:], "utf-8")
        output.wait_for(lambda lines: len(lines) >= 3, "a round after the edit")
        round_line = output.lines[2]
        assert round_line.startswith("cooking/knife-skills-dice-an-onion-without-tears.md: ")
        after = related_urls(seed)
        onion = "https://simmerandsalt.example/techniques/dice-an-onion"
        assert after[0] == onion and before[0] != onion  # now the seed's closest article
        changed = {p for p in mtimes if p.stat().st_mtime_ns != mtimes[p]}
        assert seed in changed and len(changed) < 51  # only affected files were rewritten

        # Its own writes start no further round, and a touch that changes no byte neither.
        os.utime(content / "space" / "amateur-astronomers-spot-green-comet.md")
        time.sleep(2.0)
        assert len(output.lines) == 3, output.lines
    assert process.returncode in (0, 130)


@pytest.mark.e2e
def test_a_watch_holds_its_folder_a_second_watch_or_a_regenerate_is_refused(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(tmp_path / "store"), PYTHONUNBUFFERED="1")
    with watching(content, env) as (_, output):
        output.wait_for(lambda lines: any(x.startswith("watching ") for x in lines), "start")
        time.sleep(0.5)  # idle: between rounds, where a second writer used to slip in
        for command in (["watch", str(content)], ["regenerate", str(content)]):
            other = subprocess.run(
                [str(BIN / "recs"), *command], env=env, capture_output=True, text=True, timeout=60
            )
            assert other.returncode == 75, (command, other.stdout, other.stderr)
            assert "being rewritten by another recs regenerate or watch" in other.stderr
            assert other.stdout == ""
    # Once the watch has stopped, the folder is free again.
    done = subprocess.run(
        [str(BIN / "recs"), "regenerate", str(content), "-q"], env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
