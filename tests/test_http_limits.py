"""recs/http_limits.py: request bodies over the size limit are refused with 413, bodies that
stop arriving with 408, and any answer sent before the body was read closes the connection."""

from __future__ import annotations

import asyncio
import json

from recs.http_limits import PROBLEM, BodyLimits, problem_bytes


async def read_all(scope, receive, send) -> None:
    """An app that reads the whole body, then answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def answer_at_once(scope, receive, send) -> None:
    """An app that answers without reading the body (a 401 to a write without a token)."""
    await send({"type": "http.response.start", "status": 401, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"no"})


def run(app, headers, chunks, max_bytes=10, timeout=5.0, scope_type="http"):
    """Send `chunks` of body (None: nothing more ever comes) through BodyLimits; the
    messages sent back."""
    scope = {"type": scope_type, "headers": headers}
    sent: list[dict] = []

    async def main() -> None:
        queue = list(chunks)

        async def receive() -> dict:
            if not queue or queue[0] is None:
                await asyncio.Event().wait()  # never arrives
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

        async def send(message: dict) -> None:
            sent.append(message)

        await BodyLimits(app, max_bytes=max_bytes, timeout=timeout)(scope, receive, send)

    asyncio.run(main())
    return sent


def answer(sent: list[dict]) -> tuple[int, dict[bytes, bytes], bytes]:
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_a_body_within_the_limit_reaches_the_app_untouched():
    status, headers, body = answer(
        run(read_all, [(b"content-length", b"10")], [b"12345", b"67890"])
    )
    assert (status, body) == (200, b"10") and b"connection" not in headers


def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs():
    status, headers, body = answer(run(read_all, [(b"content-length", b"11")], [b"x" * 11]))
    assert status == 413 and headers[b"connection"] == b"close"
    assert headers[b"content-type"] == PROBLEM.encode()
    problem = json.loads(body)
    assert problem == {
        "type": "about:blank",
        "title": "Payload too large",
        "status": 413,
        "detail": "the request body is over 10 bytes (RECS_MAX_BODY_BYTES)",
    }
    assert int(headers[b"content-length"]) == len(body)


def test_a_chunked_body_is_counted_as_it_arrives():
    chunked = [(b"transfer-encoding", b"chunked")]
    status, headers, _ = answer(run(read_all, chunked, [b"123456", b"789012"]))
    assert status == 413 and headers[b"connection"] == b"close"
    assert answer(run(read_all, chunked, [b"12345", b"12345"]))[0] == 200


def test_a_body_that_stops_arriving_is_a_408_after_the_timeout():
    sent = run(read_all, [(b"content-length", b"10")], [b"12", None], timeout=0.1)
    status, headers, body = answer(sent)
    assert status == 408 and headers[b"connection"] == b"close"
    assert json.loads(body)["detail"] == (
        "the request body did not arrive within 0.1 s of its headers (RECS_BODY_TIMEOUT)"
    )


def test_an_answer_before_the_body_was_read_closes_the_connection():
    status, headers, body = answer(run(answer_at_once, [(b"content-length", b"5")], [b"12345"]))
    assert (status, body) == (401, b"no")
    assert headers == {b"x-a": b"1", b"connection": b"close"}  # the rest is never read


def test_requests_without_a_body_and_other_protocols_pass_through():
    assert answer(run(answer_at_once, [], []))[1] == {b"x-a": b"1"}
    assert answer(run(answer_at_once, [(b"content-length", b"0")], []))[1] == {b"x-a": b"1"}
    websocket = run(answer_at_once, [(b"content-length", b"99")], [], scope_type="websocket")
    assert answer(websocket)[0] == 401


def test_a_problem_document_is_rfc_9457_json():
    assert json.loads(problem_bytes(408, "Request timeout", "too slow")) == {
        "type": "about:blank",
        "title": "Request timeout",
        "status": 408,
        "detail": "too slow",
    }
