"""`recs serve --workers 2` as a real process: reads, writes across workers, reload, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.servers import free_port, request, stop, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "e2e-token-0123456789abcdef"
SPACE0 = "https://example.com/space/0"
NEW = "https://example.com/space/launch-window"


def env_for(store_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(
        RECS_MODEL="hashing",
        RECS_STORE=str(store_dir),
        RECS_API_TOKEN=TOKEN,
        RECS_RELOAD_INTERVAL="0.2",
    )
    return env


@pytest.fixture
def server(topic_corpus, tmp_path) -> Iterator[tuple[str, subprocess.Popen, Path, dict]]:
    store_dir = tmp_path / "store"
    env = env_for(store_dir)
    built = subprocess.run(
        [str(BIN / "recs"), "build", str(topic_corpus), "--limit", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    port = free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    process = subprocess.Popen(
        [str(BIN / "recs"), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the workers can be cleaned up too
    )
    process.log_path = tmp_path / "server.log"  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return request(base, "GET", "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, 60, "the server to be ready")
        # A worker accepts connections once its store is loaded; wait for the second one.
        wait_until(lambda: len(worker_states(base, attempts=40)) == 2, 60, "both workers")
        yield base, process, topic_corpus, env
    finally:
        stop(process)
        log.close()


def worker_states(base: str, attempts: int = 200) -> dict[int, dict]:
    """readyz of each worker process, by pid, over many fresh connections."""
    seen: dict[int, dict] = {}
    for _ in range(attempts):
        status, body = request(base, "GET", "/readyz")
        if status == 200:
            seen[body["pid"]] = body
        if len(seen) == 2 and _ > 40:
            break
    return seen


def related_urls(base: str, url: str, limit: int = 11) -> list[str] | None:
    status, body = request(base, "GET", f"/related?url={url}&limit={limit}")
    return [item["webUrl"] for item in body["related"]] if status == 200 else None


def test_serve_two_workers_end_to_end(server):
    base = server[0]

    status, body = request(base, "GET", f"/related?url={SPACE0}")
    assert status == 200 and body["url"] == SPACE0 and len(body["related"]) == 3
    assert request(base, "GET", "/related?url=https://example.com/nope")[0] == 404

    # A write acknowledged by one worker is served by every worker.
    article = {
        "title": "Space rocket launch window opens",
        "excerpt": "The space station rocket launch window opens in orbit.",
        "webUrl": NEW,
    }
    status, body = request(base, "PUT", "/articles", article, token=TOKEN)
    assert status == 201, body
    revision = body["revision"]

    def everyone_has_it() -> bool:
        states = worker_states(base, attempts=60)
        if len(states) < 2 or any(s["revision"] < revision for s in states.values()):
            return False
        return all(NEW in (related_urls(base, SPACE0) or []) for _ in range(10)) and all(
            related_urls(base, NEW) is not None for _ in range(10)
        )

    wait_until(everyone_has_it, 10, "the upsert to reach both workers")

    status, body = request(base, "DELETE", f"/articles?url={NEW}", token=TOKEN)
    assert status == 200 and body["deleted"] is True

    def gone_everywhere() -> bool:
        return all(
            related_urls(base, NEW) is None and NEW not in (related_urls(base, SPACE0) or [NEW])
            for _ in range(20)
        )

    wait_until(gone_everywhere, 10, "the delete to reach both workers")
    assert request(base, "PUT", "/articles", article, token="wrong-token-0123456789")[0] == 401


def test_hot_reload_drops_no_request_and_sigterm_stops_cleanly(server):
    base, process, content, env = server
    before = {s["generation"] for s in worker_states(base).values()}
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                status, _ = request(base, "GET", f"/related?url={SPACE0}")
                answered[0] += 1
                if status != 200:
                    failures.append(f"{status} {_}")
            except OSError as error:
                failures.append(repr(error))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        edited = content / "space" / "1.md"
        edited.write_text(edited.read_text().replace("drilled rock", "found ice"))
        rebuilt = subprocess.run(
            [str(BIN / "recs"), "build", str(content), "--limit", "3"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        new_generation = rebuilt.stdout.split("store published ")[1].split()[0]
        assert new_generation not in before

        def both_reloaded() -> bool:
            states = worker_states(base, attempts=60)
            return len(states) == 2 and all(
                s["generation"] == new_generation for s in states.values()
            )

        wait_until(both_reloaded, 15, "both workers to load the new generation")
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == [], process.log_path.read_text()[-4000:]
    assert answered[0] > 20

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    output = process.log_path.read_text()
    assert "Traceback" not in output
    assert "Finished server process" in output


def test_workers_stop_when_the_supervisor_is_killed(server):
    base, process = server[0], server[1]
    workers = set(worker_states(base))
    assert len(workers) == 2
    process.kill()  # SIGKILL: uvicorn's supervisor cannot pass anything on
    process.wait(10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (exited, not yet reaped by init) counts as gone.
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    wait_until(lambda: all(gone(pid) for pid in workers), 30, "orphaned workers to exit")
