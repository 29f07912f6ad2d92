"""POST /events: readers' browsers report the impressions and clicks of related lists.

Off unless RECS_EVENTS is on (403 saying how to turn it on). No bearer token: the widget
sends it from readers' browsers. The route checks the body, keeps the events whose
article and item are stored, hands them to the process's `EventRecorder` and answers 202:
the disk is written by the recorder's thread, never while a request waits.

`install_events` adds the route to an app and stops the recorder with it; create_app
calls it (docs/api.md, "Reader events").
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from recs.config import Settings
from recs.errors import Forbidden, InvalidInput
from recs.event_recorder import EventRecorder, TooManyEvents
from recs.events import Event, make_event, stored_only
from recs.http_body import JSON_MEDIA_TYPE, check_media_type, parse_json, validation_detail
from recs.http_limits import problem_bytes
from recs.schema import PROBLEM, parse_query, problem_responses

MAX_BATCH = 100  # events in one request
NONE: frozenset[str] = frozenset()
URL = Annotated[str, Field(min_length=1, max_length=4096)]


class EventIn(BaseModel):
    """One impression (an item of the list was shown) or click (a reader followed it)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "type": "click",
                    "article": "https://example.com/news/a",
                    "item": "https://example.com/news/b",
                    "position": 2,
                }
            ]
        },
    )
    type: Literal["impression", "click"]
    article: URL = Field(description="URL of the article whose related list it was.")
    item: URL = Field(description="URL of the related article shown or followed.")
    position: int = Field(ge=1, le=1000, description="1 for the list's first item.")


class EventBatch(BaseModel):
    """Several events in one request, e.g. the impressions of one list."""

    model_config = ConfigDict(extra="forbid", strict=True)
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events queued for recording.")
    ignored: int = Field(description="Events left out: their article or item is not stored.")


BODY = TypeAdapter(EventIn | EventBatch)


def _inline(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """`schema` with its `#/$defs/` references replaced by what they name."""
    if isinstance(schema, dict):
        reference = schema.get("$ref", "")
        if reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, definitions) for v in schema]
    return schema


def _body_schema() -> dict[str, Any]:
    # Inline: the app's OpenAPI components are made by create_app, which need not know
    # this route's models.
    schema = BODY.json_schema(mode="validation")
    body = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {JSON_MEDIA_TYPE: {"schema": body}}}}


def _events_of(data: Any, max_position: int) -> list[Event]:
    """The events of a parsed body (one event, or {"events": [...]}), checked."""
    batch = isinstance(data, dict) and "events" in data
    try:
        body = EventBatch.model_validate(data) if batch else EventIn.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        for problem in problems:
            if problem["type"] == "extra_forbidden":
                raise InvalidInput(
                    f"{'.'.join(map(str, problem['loc']))}: unknown field; an event holds "
                    "only type, article, item and position (nothing about the reader)"
                ) from None
        raise InvalidInput(validation_detail(problems)) from None
    items: Sequence[EventIn] = body.events if isinstance(body, EventBatch) else [body]
    checked = []
    for index, item in enumerate(items):
        try:
            event = make_event(item.type, item.article, item.item, item.position, max_position)
        except InvalidInput as error:
            raise InvalidInput(f"events.{index}.{error}" if batch else str(error)) from None
        checked.append(event)
    return checked


def _responses() -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(400, 403, 408, 413, 415, 422, 503)
    responses[202] = {"description": "Accepted: the events are written within a second."}
    responses[403]["description"] = "Reader events are off: RECS_EVENTS is not on."
    responses[429] = {
        **responses[403],
        "description": "Over RECS_EVENTS_RATE events a second for this server process.",
    }
    responses[503]["description"] = "No store is loaded yet, or the event queue is full."
    return responses


router = APIRouter()


@router.post(
    "/events",
    status_code=202,
    response_model=EventsAccepted,
    responses=_responses(),
    summary="Record impressions and clicks of related lists (when RECS_EVENTS is on)",
    openapi_extra=_body_schema(),
)
async def post_events(request: Request) -> Response:
    recorder: EventRecorder | None = request.app.state.events
    settings: Settings = request.app.state.service.settings
    if recorder is None:
        raise Forbidden(
            "reader events are off: set RECS_EVENTS=on on the server to record them "
            "(docs/api.md, Reader events)"
        )
    parse_query(request.query_params.multi_items(), NONE, settings.max_limit)
    try:
        recorder.admit(0)  # a spent allowance refuses the request before its body is read
        check_media_type(request.headers.get("content-type"))
        events = _events_of(parse_json(await request.body()), settings.max_limit)
        recorder.admit(len(events))
    except TooManyEvents as error:
        body = problem_bytes(error.status, error.title, str(error))
        return Response(body, 429, {"Retry-After": "1"}, media_type=PROBLEM)
    snapshot = request.app.state.service.snapshot  # 503 while no store is loaded

    def resolve(url: str) -> str | None:
        row = snapshot.resolve(url)
        return None if row is None else snapshot.articles[row].url

    kept, ignored = stored_only(events, resolve)
    recorder.submit(kept)
    accepted = EventsAccepted(accepted=len(kept), ignored=ignored)
    return JSONResponse(accepted.model_dump(), status_code=202)


def install_events(app: FastAPI, settings: Settings) -> None:
    """Add POST /events to `app`, with a recorder when RECS_EVENTS is on; the recorder
    writes what it holds when the app shuts down."""
    recorder = None
    if settings.events:
        recorder = EventRecorder(settings.store, settings.events_rate, settings.events_days)
    app.state.events = recorder
    app.router.routes.extend(router.routes)
    if recorder is None:
        return
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            yield state
        await run_in_threadpool(recorder.close)

    app.router.lifespan_context = lifespan
