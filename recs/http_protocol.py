"""The HTTP/1.1 protocol `recs serve` runs: uvicorn's httptools one, with a header deadline.

uvicorn closes a keep-alive connection that stays idle between requests, but has no timer
while a request's headers arrive, nor before a new connection's first byte (uvicorn issue
157 asks for one; it is not there in 0.54). A client sending a header byte every few
seconds, or nothing at all, holds its connection for ever, and a few hundred such clients
hold the server. Here the headers of each request must be complete `header_timeout`
seconds after its first byte (for a new connection: after it opened); otherwise the
connection is answered 408 and closed, or closed silently when nothing was sent. The body
has its own deadline, enforced in the app (recs.http_limits).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from recs.http_limits import PROBLEM, problem_bytes


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must send their headers within `header_timeout` s."""

    def __init__(self, *args: Any, header_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._header_timer is None:  # a later request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        # Answer only between responses: never in the middle of an earlier (pipelined) one.
        idle = self.cycle is None or self.cycle.response_complete
        if self._request_begun and idle:
            detail = (
                f"the request headers did not arrive within {self.header_timeout:g} s "
                "(RECS_HEADER_TIMEOUT)"
            )
            body = problem_bytes(408, "Request timeout", detail)
            head = [STATUS_LINE[408]]
            for name, value in self.server_state.default_headers:  # date, server
                head.append(name + b": " + value + b"\r\n")
            head.append(f"content-type: {PROBLEM}\r\ncontent-length: {len(body)}\r\n".encode())
            head.append(b"connection: close\r\n\r\n")
            self.transport.write(b"".join(head) + body)
        self.transport.close()
