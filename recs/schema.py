"""What HTTP requests and answers look like: body models, query parameters, problems.

Query parameters of the hot routes are parsed here by hand rather than by FastAPI's
dependency machinery (which costs more than the whole answer on a cached GET /related);
`query_parameters` writes the same specification into the OpenAPI schema, so the schema
and the parser cannot disagree.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from recs.articles import parse_datetime
from recs.errors import BadRequest, InvalidInput
from recs.rank_settings import FILTER_KIND, REQUEST_FILTERS, RankSettings, describe
from recs.urls import canonical_url

PROBLEM = "application/problem+json"
MAX_QUALITY = 1e12  # quality in a body, and ?min_quality=
MAX_DAYS = 1e6  # ?max_age_days=
SEED_URL = (
    "https://www.sixthtone.com/news/1009712/"
    "chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
)


# --- bodies and answers -----------------------------------------------------------------


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Article not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no stored article has the URL https://example.com/x"])


class Provider(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # as ArticleIn: no silent coercion
    name: str | None = Field(None, max_length=500)
    domain: str | None = Field(None, max_length=500)


class Image(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    url: str = Field(max_length=4096)
    width: int | None = None
    height: int | None = None
    isCached: bool | None = None


class ImageIn(Image):
    """An image of a request body: every number bounded."""

    width: int | None = Field(None, ge=0, le=1_000_000)
    height: int | None = Field(None, ge=0, le=1_000_000)


class RelatedEntry(BaseModel):
    """A related article's short copy, in the key order of the front matter's related entries."""

    title: str
    excerpt: str | None = None
    publishedDateTime: str | None = None
    webUrl: str | None = None
    type: str | None = None
    provider: Provider | None = None
    quality: float | None = None
    images: list[Image] | None = None
    score: float = Field(description="Cosine similarity of the two articles' embeddings.")


class RelatedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": SEED_URL,
                    "related": [
                        {
                            "title": "Is Chinese Math Education as Good as It Seems?",
                            "excerpt": "Although the country’s secondary school students "
                            "dominate competitions like the International Math Olympiad, ...",
                            "publishedDateTime": "2022-02-25T03:15:00Z",
                            "webUrl": "https://www.sixthtone.com/news/1009764/"
                            "is-chinese-math-education-as-good-as-it-seems%3F",
                            "type": "article",
                            "provider": {"name": "Sixth Tone", "domain": "sixthtone.com"},
                            "quality": 58,
                            "images": [
                                {
                                    "url": "https://image5.sixthtone.com/image/5/50/651.jpg",
                                    "width": 2000,
                                    "height": 1000,
                                    "isCached": True,
                                }
                            ],
                            "score": 0.357449,
                        }
                    ],
                }
            ]
        }
    )
    url: str | None = Field(
        description="Canonical URL of the article (null for a draft without one)."
    )
    related: list[RelatedEntry]


class ArticleIn(BaseModel):
    """An article with the front-matter field names; title and excerpt are required."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "title": "Chinese School Faces Backlash Over Facial Recognition",
                    "excerpt": "A parent says the school endangers students’ privacy.",
                    "publishedDateTime": "2022-02-21T03:37:00Z",
                    "webUrl": SEED_URL,
                    "type": "article",
                    "quality": 39,
                    "provider": {"name": "Sixth Tone", "domain": "sixthtone.com"},
                    "topics": ["Computer Vision", "AI"],
                }
            ]
        },
    )
    title: str = Field(min_length=1, max_length=2_000)
    excerpt: str = Field(max_length=100_000)
    publishedDateTime: str | None = Field(None, max_length=100)
    webUrl: str | None = Field(None, max_length=4096)
    originalUrl: str | None = Field(None, max_length=4096)
    type: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    quality: (
        Annotated[int, Field(ge=-MAX_QUALITY, le=MAX_QUALITY)]
        | Annotated[float, Field(ge=-MAX_QUALITY, le=MAX_QUALITY)]
        | None
    ) = None
    published: bool | None = None
    provider: Provider | None = None
    topics: list[Annotated[str, Field(max_length=200)]] | None = Field(None, max_length=200)
    images: list[ImageIn] | None = Field(None, max_length=100)


class WriteResult(BaseModel):
    url: str
    revision: int = Field(description="Journal revision that holds the write; it is durable.")
    created: bool | None = None
    deleted: bool | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        304: "Not modified: the ETag in If-None-Match is current.",
        400: "Unknown or malformed parameters.",
        401: "Missing or wrong bearer token.",
        403: "Writes are off: no RECS_API_TOKEN is configured.",
        404: "No stored article has this URL.",
        408: "The request body did not arrive within RECS_BODY_TIMEOUT seconds.",
        413: "Request body over the size limit.",
        415: "The body is not JSON: send it as application/json (UTF-8).",
        422: "A parameter or the body does not validate.",
        503: "The store is loading, missing, or busy with a build.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status == 304:
            out[status] = {"description": texts[status]}
        else:
            out[status] = {"description": texts[status], "model": Problem, "content": {PROBLEM: {}}}
    return out


# --- query parameters -------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One query parameter: how it is documented and how it is parsed."""

    name: str
    kind: str  # "url", "int", "float", "days", "bool", "text", "date"
    description: str
    repeat: bool = False
    required: bool = False
    max_length: int = 500
    example: Any = None


PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param(
            "url",
            "url",
            "The article's URL: webUrl or originalUrl, in any form that "
            "canonicalises to it (http or https, tracking parameters ignored).",
            required=True,
            max_length=4096,
            example=SEED_URL,
        ),
        Param(
            "limit",
            "int",
            "How many related articles; default: the limit the store was built with.",
        ),
    )
}
# The request filters, one parameter each, named and described as RankSettings says
# (recs.rank_settings): the API, the CLI's --filter and RECS_RANK_* share their names.
_KINDS = {
    "url": "url",
    "text": "text",
    "date": "date",
    "number": "float",
    "days": "days",
    "bool": "bool",
}
_EXAMPLES = {"since": "2022-01-01", "until": "2022-12-31T23:59:59Z", "max_age_days": 30}
for _name in REQUEST_FILTERS:
    _kind = FILTER_KIND[_name]
    _repeat = RankSettings.__dataclass_fields__[_name].type == "tuple[str, ...]"
    PARAMS[_name] = Param(
        _name,
        _KINDS[_kind],
        describe(_name).capitalize() + (" (repeatable)." if _repeat else "."),
        repeat=_repeat,
        max_length=4096 if _kind == "url" else 64 if _kind == "date" else 500,
        example=_EXAMPLES.get(_name),
    )
FILTERS = REQUEST_FILTERS
MAX_REPEAT = 100


def query_parameters(names: Iterable[str], max_limit: int) -> list[dict[str, Any]]:
    """OpenAPI parameter objects for `names`."""
    out = []
    for name in names:
        param = PARAMS[name]
        schema: dict[str, Any]
        if param.kind == "int":
            schema = {"type": "integer", "minimum": 1, "maximum": max_limit}
        elif param.kind == "float":
            schema = {"type": "number", "minimum": -MAX_QUALITY, "maximum": MAX_QUALITY}
        elif param.kind == "days":
            schema = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DAYS}
        elif param.kind == "bool":
            schema = {"type": "boolean", "default": False}
        else:
            schema = {"type": "string", "maxLength": param.max_length}
            if param.required:
                schema["minLength"] = 1
        if param.repeat:
            schema = {"type": "array", "items": schema, "maxItems": MAX_REPEAT}
        entry: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": schema,
        }
        if param.repeat:
            entry.update(style="form", explode=True)
        if param.example is not None:
            entry["example"] = param.example
        out.append(entry)
    return out


def _one(name: str, values: list[str]) -> str:
    if len(values) > 1:
        raise InvalidInput(f"{name}: given {len(values)} times; give it once")
    return values[0]


def _value(param: Param, text: str, max_limit: int) -> Any:
    if len(text) > param.max_length:
        raise InvalidInput(f"{param.name}: longer than {param.max_length} characters")
    if param.kind == "url":
        return canonical_url(text)
    if param.kind == "int":
        try:
            number = int(text)
        except ValueError:
            raise InvalidInput(f"{param.name}: {text[:40]!r} is not a whole number") from None
        if not 1 <= number <= max_limit:
            raise InvalidInput(f"{param.name}: must be between 1 and {max_limit}, not {number}")
        return number
    if param.kind in ("float", "days"):
        try:
            real = float(text)
        except ValueError:
            raise InvalidInput(f"{param.name}: {text[:40]!r} is not a number") from None
        low, high = (0.0, MAX_DAYS) if param.kind == "days" else (-MAX_QUALITY, MAX_QUALITY)
        if (
            not math.isfinite(real)
            or not low <= real <= high
            or (param.kind == "days" and real == 0)
        ):
            raise InvalidInput(f"{param.name}: {text[:40]!r} is out of range")
        return real
    if param.kind == "bool":
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise InvalidInput(f"{param.name}: {text[:40]!r} is not true or false")
    if param.kind == "date":
        try:
            return parse_datetime(text)
        except ValueError as error:
            raise InvalidInput(f"{param.name}: {error}") from None
    return text


def parse_query(
    items: list[tuple[str, str]], allowed: frozenset[str], max_limit: int
) -> dict[str, Any]:
    """Query items -> values by parameter name; unknown names are a 400, bad values a 422."""
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    unknown = sorted(set(grouped) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)[:200]}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    values: dict[str, Any] = {}
    for name in allowed:
        param = PARAMS[name]
        given = grouped.get(name)
        if not given:
            if param.required:
                raise InvalidInput(f"{name}: required")
            continue
        if param.repeat:
            if len(given) > MAX_REPEAT:
                raise InvalidInput(f"{name}: at most {MAX_REPEAT} values")
            values[name] = tuple(_value(param, v, max_limit) for v in given)
        else:
            values[name] = _value(param, _one(name, given), max_limit)
    return values


def rank_filters(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed query parameters -> the RankSettings request filters among them (the same
    names)."""
    return {name: value for name, value in values.items() if name in REQUEST_FILTERS}
