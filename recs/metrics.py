"""Prometheus metrics for the HTTP service.

With several worker processes (`recs serve --workers N`), prometheus_client's
multiprocess mode is used: `recs serve` points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the workers start, each worker writes its samples there, and /metrics
(answered by any worker) aggregates them all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.routing import Match

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """The service's metrics, in their own registry (one per app)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "recs_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "recs_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ["route"],
            buckets=BUCKETS,
            registry=registry,
        )
        gauge_options: dict[str, Any] = {"registry": registry}
        if self.multiprocess:
            gauge_options["multiprocess_mode"] = "livemax"
        self.articles = Gauge("recs_articles", "Articles in the loaded store.", **gauge_options)
        self.revision = Gauge(
            "recs_store_revision", "Journal revision folded into the loaded store.", **gauge_options
        )

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never by raw path).

    FastAPI's own routes name themselves in the scope; the documentation routes (/docs,
    /openapi.json, /docs/oauth2-redirect, the assets under /docs/assets) are plain
    Starlette routes that do not, so they are looked up in `routes` (the app's route list)
    by the path and method the request came with. Only a request no route matches is
    `unmatched`.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[Any] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # As it came in: a mount rewrites root_path in the scope on the way down.
        path, root_path = scope["path"], scope.get("root_path", "")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or self._template(
                path, root_path, scope["method"]
            )
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)

    def _template(self, path: str, root_path: str, method: str) -> str:
        """The path template of the first route that matches in full, else `unmatched`."""
        scope = {"type": "http", "path": path, "root_path": root_path, "method": method}
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return str(route.path)
        return "unmatched"
