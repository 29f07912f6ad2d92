"""Horizontal scaling: several `recs serve` replicas read one published store read-only.

Two replicas (as on two machines: own working folders, own ports) serve one store folder
that a third process publishes to with `recs build`. They answer alike, pick up a new
generation by hot reload, refuse writes (no token), and never change a file of the store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.servers import free_port, wait_until
from tests.servers import request as _request


def call(base: str, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    return _request(base, method, path, body)


pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SPACE0 = "https://example.com/space/0"


def tree(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under directory: (size, mtime in ns)."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def recs_build(content: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "recs"), "build", str(content), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def replicas(topic_corpus, tmp_path) -> Iterator[tuple[list[str], Path, dict[str, str]]]:
    """The store built once, then two replicas serving it; their base URLs."""
    store_dir = tmp_path / "shared" / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(store_dir), RECS_RELOAD_INTERVAL="0.2")
    recs_build(topic_corpus, env)
    processes: list[subprocess.Popen] = []
    bases = []
    try:
        for name in ("replica-a", "replica-b"):
            home = tmp_path / name  # as on another machine: its own working folder
            home.mkdir()
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [str(BIN / "recs"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=home,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_until(lambda base=base: call(base, "/readyz")[0] == 200, 90, f"{base} ready")
        yield bases, store_dir, env
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def related_titles(base: str) -> list[str]:
    status, body = call(base, f"/related?url={SPACE0}&limit=3")
    assert status == 200, body
    return [item["title"] for item in body["related"]]


def generation(base: str) -> str:
    status, body = call(base, "/readyz")
    assert status == 200, body
    return str(body["generation"])


def test_two_replicas_serve_one_store_and_reload_new_generations(replicas, topic_corpus):
    bases, store_dir, env = replicas
    before = tree(store_dir)
    answers = [related_titles(base) for base in bases]
    assert answers[0] == answers[1] and len(answers[0]) == 3
    assert [generation(base) for base in bases] == ["gen-000001", "gen-000001"]
    # Replicas hold no token: writes are refused, so the shared store stays read-only.
    article = {"title": "New", "excerpt": "A new article.", "webUrl": "https://example.com/n"}
    for base in bases:
        assert call(base, "/articles", "PUT", article)[0] == 403
    assert tree(store_dir) == before, "serving changed no file of the store"

    # The batch machine publishes a new generation; both replicas pick it up by themselves.
    edited = topic_corpus / "space" / "1.md"
    new_title = "Mars rover finds an ancient river delta on the planet"
    edited.write_text(edited.read_text().replace("Mars rover finds lake on the planet", new_title))
    assert "published gen-000002" in recs_build(topic_corpus, env)
    published = tree(store_dir)
    for base in bases:
        wait_until(lambda base=base: generation(base) == "gen-000002", 30, f"{base} to reload")
    answers = [related_titles(base) for base in bases]
    assert answers[0] == answers[1] and new_title in answers[0]
    time.sleep(1)  # a few more reload polls
    assert tree(store_dir) == published, "reloading changed no file of the store"
