"""Limits on a request body, enforced as it arrives: its size and how long it may take.

`BodyLimits` is ASGI middleware. A body over `max_bytes` is refused with 413, up front when
its Content-Length says so and otherwise as it is counted (a chunked body); a body that has
not arrived in full `timeout` seconds after its headers did is refused with 408. Either
answer closes the connection. So does any answer sent before the body was read in full (a
401 to a PUT without a token, a GET with a body): the rest of the body is never read, and a
client trickling it must not keep the connection open that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from recs.errors import PayloadTooLarge, RecsError

PROBLEM = "application/problem+json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTimeout(RecsError):
    """A request (its headers, or its body) did not arrive in time."""

    status = 408
    title = "Request timeout"


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    """An RFC 9457 problem document, as the API's other errors are."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


async def _refuse(send: Send, error: RecsError) -> None:
    body = problem_bytes(error.status, error.title, str(error))
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _closing(message: Message) -> Message:
    """An http.response.start message that asks the server to close the connection after it."""
    return {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}


class BodyLimits:
    """Refuse request bodies over `max_bytes` (413) or slower than `timeout` seconds (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
                has_body = length != 0
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # most requests: nothing to read, nothing to wrap
            await self.app(scope, receive, send)
            return
        if length is not None and length > self.max_bytes:
            await _refuse(send, self._too_large())
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        received = 0
        complete = started = False
        failure: RecsError | None = None

        async def limited_receive() -> Message:
            nonlocal received, complete, failure
            if complete:  # past the body, the app may wait for a disconnect: not timed
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                failure = RequestTimeout(
                    f"the request body did not arrive within {self.timeout:g} s of its headers "
                    "(RECS_BODY_TIMEOUT)"
                )
                raise failure from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    failure = self._too_large()
                    raise failure
                complete = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if failure is not None:  # the app's answer to a failed read: ours replaces it
                return
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    message = _closing(message)
            await send(message)

        with contextlib.suppress(PayloadTooLarge, RequestTimeout):
            await self.app(scope, limited_receive, guarded_send)
        if failure is not None and not started:
            await _refuse(send, failure)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is over {self.max_bytes:,} bytes (RECS_MAX_BODY_BYTES)"
        )
