"""`recs serve` under slow clients: headers or a body sent a byte at a time, a body nobody
reads, or nothing at all. Each such connection is answered 408 or closed soon after
RECS_HEADER_TIMEOUT or RECS_BODY_TIMEOUT, and other clients are answered meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recs.api import create_app
from recs.config import Settings
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.service import Service
from tests.conftest import BIN, EXAMPLES
from tests.servers import free_port, request, stop, wait_until

SEED_URL = (
    "https://www.sixthtone.com/news/1009712/"
    "chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
)
TIMEOUT = 1.0  # RECS_HEADER_TIMEOUT and RECS_BODY_TIMEOUT of the server under test
# How long past the timeout a slow connection may live: generous, for a loaded 2-core
# machine. It bounds the wait; nothing here measures how fast the server is.
MARGIN = 15.0
PER_KIND = 50

# What each kind of slow client sends first; all but the silent one then send one more
# byte (`TRICKLE`) every quarter of a second, which keeps uvicorn's keep-alive timer off.
OPENINGS = {
    "slow headers": b"GET /healthz HTTP/1.1\r\nHost: recs\r\nX-Slow: ",
    "slow body": (
        b"POST /related HTTP/1.1\r\nHost: recs\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    ),
    "unread body": b"GET /healthz HTTP/1.1\r\nHost: recs\r\nContent-Length: 100000\r\n\r\n ",
    "silent": b"",
}
TRICKLE = b"a"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`recs serve --workers 2` with one-second header and body timeouts."""
    folder = tmp_path_factory.mktemp("slow")
    store_dir = folder / "store"
    build(EXAMPLES, store_dir, HashingEncoder(), RankSettings())
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(
        RECS_MODEL="hashing",
        RECS_STORE=str(store_dir),
        RECS_HEADER_TIMEOUT=str(TIMEOUT),
        RECS_BODY_TIMEOUT=str(TIMEOUT),
    )
    port = free_port()
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(BIN / "recs"), "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: request(base, "GET", "/readyz")[0] == 200, 60, "the server")
        yield base, log_path
    finally:
        stop(process)


@pytest.mark.e2e
def test_slow_clients_are_cut_off_and_others_are_answered(server):
    base, log_path = server
    port = int(base.rsplit(":", 1)[1])
    pending: dict[socket.socket, str] = {}
    received: dict[socket.socket, bytes] = {}
    for kind, opening in OPENINGS.items():
        for _ in range(PER_KIND):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(opening)
            pending[sock] = kind
            received[sock] = b""
    ended: dict[str, list[bytes]] = {kind: [] for kind in OPENINGS}
    answered: list[int] = []

    def end(sock: socket.socket) -> None:
        ended[pending.pop(sock)].append(received[sock])
        sock.close()

    deadline = time.monotonic() + TIMEOUT + MARGIN
    try:
        while pending and time.monotonic() < deadline:
            readable, _, _ = select.select(list(pending), [], [], 0.25)
            for sock in readable:  # an answer, the server's close, or both
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                received[sock] += chunk
                if not chunk:  # closed by the server: what it said before is kept
                    end(sock)
            for sock, kind in list(pending.items()):
                if kind != "silent":
                    try:
                        sock.send(TRICKLE)
                    except OSError:  # closed by the server since the select
                        end(sock)
            # Meanwhile an ordinary client, on a fresh connection each time.
            answered.append(request(base, "GET", f"/related?url={SEED_URL}")[0])
    finally:
        for sock in pending:
            sock.close()
    still_open: dict[str, int] = {}
    for kind in pending.values():
        still_open[kind] = still_open.get(kind, 0) + 1
    assert still_open == {}, f"open {TIMEOUT + MARGIN:g} s after they started: {still_open}"
    assert answered and set(answered) == {200}
    for kind, answers in ended.items():
        assert len(answers) == PER_KIND
        for answer in answers:
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), (kind, answer[:80])
        statuses = {answer[9:12] for answer in answers if answer}
        if kind == "silent":
            assert statuses == set()  # nothing was asked: nothing is answered
        elif kind == "unread body":
            assert statuses <= {b"200"}  # answered, then closed: the body is never read
        else:
            assert statuses <= {b"408"} and statuses, (kind, statuses)
            answer = next(a for a in answers if a)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"content-type: application/problem+json" in head.lower()
            assert b"connection: close" in head.lower()
            problem = json.loads(body)
            assert problem["status"] == 408 and problem["title"] == "Request timeout"
            setting = "RECS_HEADER_TIMEOUT" if kind == "slow headers" else "RECS_BODY_TIMEOUT"
            assert setting in problem["detail"]
    assert request(base, "GET", "/readyz")[0] == 200
    assert "Traceback" not in log_path.read_text()


def test_a_body_that_stops_arriving_is_answered_408_and_the_connection_closed(tmp_path):
    """The body deadline in the app, with a body that never completes (no server needed)."""
    store_dir = tmp_path / "store"
    build(EXAMPLES, store_dir, HashingEncoder(), RankSettings())
    settings = Settings(store=store_dir, model="hashing", body_timeout=0.2)
    service = Service(settings)
    service.poll()
    app = create_app(settings, service)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/related",
        "raw_path": b"/related",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict] = []

    async def run() -> None:
        first = True
        never = asyncio.Event()

        async def receive() -> dict:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b'{"title": ', "more_body": True}
            await never.wait()  # the rest of the body never comes
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(run())
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["status"] == 408
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["detail"] == (
        "the request body did not arrive within 0.2 s of its headers (RECS_BODY_TIMEOUT)"
    )
