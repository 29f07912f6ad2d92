"""recs/metrics.py: every HTTP request counted and timed by its route template (never its
raw path), the loaded store's size and revision, in the Prometheus text format."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from recs.metrics import MULTIPROC_ENV, Metrics, MetricsMiddleware


async def endpoint(request):  # the routes below are only matched, never called
    raise AssertionError("not called")


ROUTES = [Route("/related", endpoint), Route("/docs/assets/{path:path}", endpoint)]


def make_app(status: int | None):
    """An app answering `status`, or raising (None)."""

    async def app(scope, receive, send) -> None:
        if status is None:
            raise RuntimeError("a bug")
        if scope["path"] == "/named":  # FastAPI's own routes name themselves in the scope
            scope["route"] = Route("/articles/{url}", endpoint)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def call(middleware: MetricsMiddleware, path: str, method: str = "GET") -> None:
    scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        pass

    asyncio.run(middleware(scope, receive, send))


def samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")  # the exposition format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


@pytest.fixture
def metrics(monkeypatch) -> Metrics:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    return Metrics()


def requests(found, route: str, status: str, method: str = "GET") -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return found.get(("recs_http_requests_total", labels), 0.0)


def test_requests_are_counted_by_route_template_method_and_status(metrics):
    ok = MetricsMiddleware(make_app(200), metrics, ROUTES)
    for path in ("/related", "/related", "/docs/assets/swagger-ui.css", "/docs/assets/x.js"):
        call(ok, path)
    call(MetricsMiddleware(make_app(404), metrics, ROUTES), "/nope/1")
    call(MetricsMiddleware(make_app(404), metrics, ROUTES), "/nope/2")
    call(ok, "/named", "PUT")
    found = samples(metrics)
    assert requests(found, "/related", "200") == 2
    assert requests(found, "/docs/assets/{path:path}", "200") == 2  # one series, any file
    assert requests(found, "unmatched", "404") == 2  # never a series per raw path
    assert requests(found, "/articles/{url}", "200", "PUT") == 1
    assert not any("/nope" in str(labels) for _, labels in found)


def test_every_request_is_timed_and_a_failing_app_counts_as_500(metrics):
    with pytest.raises(RuntimeError, match="a bug"):
        call(MetricsMiddleware(make_app(None), metrics, ROUTES), "/related")
    found = samples(metrics)
    assert requests(found, "/related", "500") == 1
    count = ("recs_http_request_duration_seconds_count", (("route", "/related"),))
    assert found[count] == 1


def test_the_store_gauges_are_rendered(metrics):
    metrics.articles.set(12)
    metrics.revision.set(3)
    found = samples(metrics)
    assert found[("recs_articles", ())] == 12 and found[("recs_store_revision", ())] == 3


def test_each_app_has_its_own_registry(monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    first, second = Metrics(), Metrics()
    first.articles.set(5)
    assert samples(second)[("recs_articles", ())] == 0


def test_other_protocols_pass_through_uncounted(metrics):
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["type"])

    asyncio.run(MetricsMiddleware(app, metrics, ROUTES)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
    assert not any(name == "recs_http_requests_total" for name, _ in samples(metrics))
