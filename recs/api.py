"""The HTTP API: thin routes over recs.service.Service, and create_app() to assemble them.

Every error is application/problem+json (RFC 9457). Answers to GET /related are served from
pre-serialised bytes with an ETag (store generation + journal revision + request), so a
repeated request costs a dictionary lookup. The OpenAPI schema is at /openapi.json and
/docs (Swagger UI served from the fastapi-offline package: no CDN); docs/api.md describes
each route.

Routes are module-level functions on `router`; what one app's routes share (its service,
settings, metrics, token) is an `Api` kept in `app.state`, reached through `api_of`.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import hashlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from recs import __version__
from recs.config import Settings
from recs.errors import Forbidden, RecsError, Unauthorized
from recs.events_api import install_events
from recs.http_body import add_components, read_json, request_body, validation_detail
from recs.http_limits import BodyLimits
from recs.metrics import Metrics, MetricsMiddleware
from recs.schema import (
    FILTERS,
    PROBLEM,
    ArticleIn,
    RelatedResponse,
    WriteResult,
    parse_query,
    problem_responses,
    query_parameters,
    rank_filters,
)
from recs.service import Service
from recs.web import web_router

log = logging.getLogger("recs.api")

GET_RELATED = frozenset({"url", "limit", *FILTERS})
POST_RELATED = frozenset({"limit", *FILTERS})
DELETE_ARTICLE = frozenset({"url"})
NONE: frozenset[str] = frozenset()
ORDER = ("url", "limit", *FILTERS)  # parameters in the order the documentation lists them


@dataclass
class Api:
    """What the routes of one app share."""

    service: Service
    settings: Settings
    metrics: Metrics
    token_digest: bytes | None  # SHA-256 of RECS_API_TOKEN; None: writes are off
    cache_control: str

    def query(self, request: Request, allowed: frozenset[str]) -> dict[str, Any]:
        """The request's query parameters, parsed and checked (unknown names are a 400)."""
        return parse_query(request.query_params.multi_items(), allowed, self.settings.max_limit)

    def count_store(self) -> None:
        """Set the store gauges from the loaded generation."""
        snapshot = self.service.snapshot
        self.metrics.articles.set(len(snapshot))
        self.metrics.revision.set(snapshot.revision)


def api_of(request: Request) -> Api:
    """The `Api` of the app serving `request`. Routes call it directly instead of through
    FastAPI's dependency resolution, which costs more than a cached GET /related."""
    found: Api = request.app.state.api
    return found


def _problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names `etag`. `*` is left to the caller: it matches any
    current representation, so only a URL that exists (RFC 9110, 13.1.2)."""
    if not header:
        return False
    return etag in (part.strip().removeprefix("W/") for part in header.split(","))


def _params(names: frozenset[str]) -> dict[str, Any]:
    """OpenAPI parameters of a route (the limit's maximum is the app's: see `_openapi`)."""
    return {"parameters": query_parameters([n for n in ORDER if n in names], 1000)}


# --- errors -----------------------------------------------------------------------------


async def recs_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RecsError)
    headers = None
    if error.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif error.status == 503:
        headers = {"Retry-After": "1"}
    return _problem(error.status, error.title, str(error), headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return _problem(422, "Invalid input", validation_detail(error.errors()))


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else "request failed"
    if error.status_code == 404:
        detail = f"no route {request.url.path[:200]}; the routes are listed at /docs"
    headers = dict(error.headers or {})
    if error.status_code == 405:  # Allow names every method of the path, not one route's
        methods: set[str] = set()
        for route in request.app.router.routes:
            if route.matches(request.scope)[0] is not Match.NONE:
                methods |= getattr(route, "methods", None) or set()
        headers["Allow"] = ", ".join(sorted(methods))
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(error.status_code, "HTTP error")
    return _problem(error.status_code, title, detail, headers)


async def too_deep(request: Request, error: Exception) -> JSONResponse:
    return _problem(400, "Bad request", "the request body is nested too deeply")


# --- auth -------------------------------------------------------------------------------


async def require_token(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <RECS_API_TOKEN>")] = None,
) -> None:
    """The bearer token of a write, checked before its body is read."""
    token_digest = api_of(request).token_digest
    if token_digest is None:
        raise Forbidden("writes are off: set RECS_API_TOKEN on the server to enable them")
    given = ""
    if authorization and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    # Compare digests: the time taken depends on neither the token nor its length.
    if not secrets.compare_digest(hashlib.sha256(given.encode()).digest(), token_digest):
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")


# --- routes -----------------------------------------------------------------------------

router = APIRouter()


@router.get(
    "/related",
    response_model=RelatedResponse,
    responses=problem_responses(304, 400, 404, 422, 503),
    summary="Related articles of a stored article",
    openapi_extra=_params(GET_RELATED),
)
async def get_related(request: Request) -> Response:
    api = api_of(request)
    values = api.query(request, GET_RELATED)
    key = urlencode(sorted(request.query_params.multi_items()))
    headers = {"Cache-Control": api.cache_control}
    etag = api.service.etag_for(key)
    if_none_match = request.headers.get("if-none-match")
    if etag is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    answer = api.service.related(values["url"], values.get("limit"), rank_filters(values), key)
    headers["ETag"] = answer.etag
    if if_none_match is not None and if_none_match.strip() == "*":  # it exists: it matches
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


@router.post(
    "/related",
    response_model=RelatedResponse,
    responses=problem_responses(400, 408, 413, 415, 422, 503),
    summary="Related articles of an article that is not stored (a draft)",
    openapi_extra={**_params(POST_RELATED), **request_body(ArticleIn)},
)
async def post_related(request: Request) -> Response:
    api = api_of(request)
    values = api.query(request, POST_RELATED)
    article = await read_json(request, ArticleIn)
    fields = article.model_dump(exclude_none=True)
    limit, filters = values.get("limit"), rank_filters(values)
    body = await run_in_threadpool(api.service.draft, fields, limit, filters)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.put(
    "/articles",
    response_model=WriteResult,
    responses={
        201: {"description": "Created", "model": WriteResult},
        **problem_responses(400, 401, 403, 408, 413, 415, 422, 503),
    },
    summary="Insert or replace one article (needs the bearer token)",
    dependencies=[Depends(require_token)],  # runs before the body is read
    openapi_extra=request_body(ArticleIn),
)
async def put_article(request: Request) -> JSONResponse:
    api = api_of(request)
    api.query(request, NONE)
    article = await read_json(request, ArticleIn)
    fields = article.model_dump(exclude_none=True)
    url, created, revision = await run_in_threadpool(api.service.upsert, fields)
    result = WriteResult(url=url, revision=revision, created=created)
    return JSONResponse(result.model_dump(exclude_none=True), status_code=201 if created else 200)


@router.delete(
    "/articles",
    response_model=WriteResult,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
    summary="Remove one article (needs the bearer token)",
    dependencies=[Depends(require_token)],
    openapi_extra=_params(DELETE_ARTICLE),
)
async def delete_article(request: Request) -> JSONResponse:
    api = api_of(request)
    url = api.query(request, DELETE_ARTICLE)["url"]
    revision = await run_in_threadpool(api.service.delete, url)
    result = WriteResult(url=url, revision=revision, deleted=True)
    return JSONResponse(result.model_dump(exclude_none=True))


@router.get("/healthz", summary="Liveness: the process answers", responses=problem_responses(400))
async def healthz(request: Request) -> Response:
    api_of(request).query(request, NONE)
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    summary="Readiness: the store is loaded",
    responses={
        200: {
            "description": "Ready",
            "content": {
                "application/json": {
                    "example": {
                        "status": "ready",
                        "articles": 53,
                        "model": "all-MiniLM-L6-v2@f42c9f831f57",
                        "generation": "gen-000004",
                        "revision": 0,
                        "pid": 4242,
                    }
                }
            },
        },
        **problem_responses(400, 503),
    },
)
async def readyz(request: Request) -> Response:
    api = api_of(request)
    api.query(request, NONE)
    if not api.service.ready:
        detail = api.service.last_error or "the store is still loading"
        return _problem(503, "Not ready", detail, {"Retry-After": "1"})
    snapshot = api.service.snapshot
    body = {
        "status": "ready",
        "articles": len(snapshot),
        "model": snapshot.model_id,
        "generation": snapshot.generation,
        "revision": snapshot.revision,
        "pid": os.getpid(),
    }
    return Response(json.dumps(body).encode(), media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **problem_responses(400),
    },
)
async def prometheus(request: Request) -> Response:
    api = api_of(request)
    api.query(request, NONE)
    if api.service.ready:
        api.count_store()
    body, content_type = api.metrics.render()
    return Response(body, media_type=content_type)


# --- the app ----------------------------------------------------------------------------


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The recs HTTP app. Reads RECS_* settings when none are given."""
    settings = settings or Settings.from_env()
    service = service or Service(settings)
    token = settings.api_token
    api = Api(
        service=service,
        settings=settings,
        metrics=Metrics(),
        token_digest=hashlib.sha256(token.encode()).digest() if token else None,
        cache_control=f"public, max-age={settings.cache_max_age}",
    )
    service.on_change = api.count_store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not service.ready:
            await run_in_threadpool(service.first_load)
        service.start()
        yield
        service.stop()

    app = FastAPIOffline(
        title="recs",
        version=__version__,
        summary="Related articles for news and content sites.",
        description=(
            "Answers related-article lists from a store built by `recs build`. Every error is "
            "`application/problem+json` (RFC 9457). Writes (PUT/DELETE /articles) need "
            "`Authorization: Bearer <RECS_API_TOKEN>` and are off when no token is configured."
        ),
        lifespan=lifespan,
        static_url="/docs/assets",  # Swagger UI and ReDoc files, from the installed package
    )
    app.state.api = api
    app.state.service = service
    # The routes themselves, not `include_router`: FastAPI 0.165 includes a router lazily
    # (one opaque entry), which the metrics' route names and 405's Allow could not see.
    app.router.routes.extend(router.routes)
    install_events(app, settings)  # POST /events (recs/events_api.py)
    app.router.routes.extend(web_router(settings).routes)  # /widget.js, /preview: recs/web.py
    app.add_exception_handler(RecsError, recs_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RecursionError, too_deep)

    def openapi() -> dict[str, Any]:
        # The body routes read their bodies themselves (recs.http_body): FastAPI lists
        # no schema for them, so the document gets the body models here; and `limit`
        # goes up to this app's RECS_MAX_LIMIT.
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            add_components(document, [ArticleIn])
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("name") == "limit":
                            parameter["schema"]["maximum"] = settings.max_limit
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # Outermost last: CORS headers (and Vary: Origin) on every answer, 413 and 408 included;
    # those two are counted by the metrics too.
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(MetricsMiddleware, metrics=api.metrics, routes=app.router.routes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    return app
