"""recs/http_protocol.py: the HTTP/1.1 protocol `recs serve` runs: a request's headers must
arrive within the header deadline of its first byte (of a new connection: of its opening),
or the connection is answered 408 and closed, or closed when nothing was sent. An
in-process uvicorn server on loopback; tests/test_api_slow_clients.py runs the real one."""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from recs.http_protocol import HeaderDeadlineProtocol
from tests.servers import free_port, wait_until

DEADLINE = 0.5  # seconds: the header deadline of the server under test
WAIT = 15.0  # the most any socket operation may take on a loaded machine
REQUEST = b"GET / HTTP/1.1\r\nHost: recs\r\n\r\n"


async def hello(scope, receive, send) -> None:
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        hello,
        host="127.0.0.1",
        port=port,
        http=functools.partial(HeaderDeadlineProtocol, header_timeout=DEADLINE),
        loop="asyncio",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, WAIT, "the server to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(WAIT)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length (the app's own)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_request_sent_in_time_is_answered_and_idle_keep_alive_is_not_cut(port):
    with connect(port) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200 OK")
        time.sleep(1.5 * DEADLINE)  # idle between requests: uvicorn's keep-alive timer's job
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200 OK")


def test_headers_that_do_not_arrive_in_time_are_answered_408_and_closed(port):
    started = time.monotonic()  # before the connection opens, when its deadline starts
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: recs\r\nX-Slow: ")
        response = read_until_closed(sock)
    assert time.monotonic() - started >= DEADLINE
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["title"] == "Request timeout"
    assert problem["detail"] == (
        f"the request headers did not arrive within {DEADLINE:g} s (RECS_HEADER_TIMEOUT)"
    )


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port):
    started = time.monotonic()
    with connect(port) as sock:
        assert read_until_closed(sock) == b""
    assert time.monotonic() - started >= DEADLINE


def test_a_later_request_on_a_kept_connection_has_its_own_deadline(port):
    with connect(port) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200 OK")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: re")  # the second request's headers stall
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
