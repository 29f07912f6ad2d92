"""JSON request bodies: read after the route's guards, checked in a fixed order.

FastAPI reads and parses a declared body before it runs any dependency, so a client
without the bearer token would get 415s and 422s that describe what a write must hold.
The routes with a body therefore declare none to FastAPI: they call `read_json` once the
token dependency has passed, and the order is token (401), media type (415), JSON (422,
naming the line and column), model (422). `request_body` and `add_components` write the
same body into the OpenAPI document that FastAPI would have written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from recs.errors import InvalidInput, RecsError

if TYPE_CHECKING:
    from starlette.requests import Request

JSON_MEDIA_TYPE = "application/json"
SCHEMA_REF = "#/components/schemas/{model}"
Model = TypeVar("Model", bound=BaseModel)


class UnsupportedMediaType(RecsError):
    """The request body is not JSON (or not UTF-8 JSON)."""

    status = 415
    title = "Unsupported media type"


def check_media_type(content_type: str | None) -> None:
    """Accept application/json or application/*+json, UTF-8; raise UnsupportedMediaType."""
    if not content_type:
        raise UnsupportedMediaType("the body has no Content-Type: send it as application/json")
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise UnsupportedMediaType(f"the body is {media[:100]!r}: send it as application/json")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"the body's charset is {charset[:40]!r}: send JSON as UTF-8 "
                "(application/json; charset=utf-8)"
            )


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body, or InvalidInput saying what is wrong and where."""
    if not raw.strip():
        raise InvalidInput("the body is empty: send a JSON object")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        # json's own words ("Expecting value", "Invalid control character at"), placed
        reason = (error.msg[:1].lower() + error.msg[1:]).removesuffix(" at")
        raise InvalidInput(
            f"invalid JSON: {reason} at line {error.lineno}, column {error.colno}"
        ) from None
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise InvalidInput(
            f"invalid JSON: byte 0x{raw[error.start]:02x} is not UTF-8 at line {line}, "
            f"column {column}"
        ) from None


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic or FastAPI validation errors as one line: `where: what; ...` (10 at most)."""
    parts = []
    for item in errors[:10]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request does not validate"


async def read_json(request: Request, model: type[Model]) -> Model:
    """The request's body as `model`: 415 for another media type, 422 for bad JSON or values."""
    check_media_type(request.headers.get("content-type"))
    data = parse_json(await request.body())
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(validation_detail(error.errors(include_url=False))) from None


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route whose body is `model` (for `openapi_extra`)."""
    schema = {"$ref": SCHEMA_REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {JSON_MEDIA_TYPE: {"schema": schema}}}}


def add_components(document: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    """Add the schemas of `models` (and of the models they use) to an OpenAPI document,
    as FastAPI does for the bodies it reads itself; names it already has are kept."""
    from pydantic.json_schema import models_json_schema

    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMA_REF)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.get("$defs", {}).items():
        components.setdefault(name, schema)
