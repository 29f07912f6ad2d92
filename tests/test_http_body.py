"""recs/http_body.py: JSON request bodies, checked in a fixed order: media type (415),
JSON (422 naming the line and column), model (422); and the OpenAPI body they stand for."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

from recs.errors import InvalidInput
from recs.http_body import (
    JSON_MEDIA_TYPE,
    UnsupportedMediaType,
    add_components,
    check_media_type,
    parse_json,
    read_json,
    request_body,
    validation_detail,
)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON; charset=UTF-8",
        'application/json;charset="utf-8"',
        "application/json; charset=utf8",
        "application/merge-patch+json",
        "application/json; boundary=x",
    ],
)
def test_json_in_utf_8_is_accepted(content_type):
    check_media_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        (None, "the body has no Content-Type: send it as application/json"),
        ("", "the body has no Content-Type: send it as application/json"),
        ("text/plain", "the body is 'text/plain': send it as application/json"),
        ("application/xml", "the body is 'application/xml': send it as application/json"),
        ("application/jsonx", "the body is 'application/jsonx': send it as application/json"),
        (
            "application/json; charset=latin-1",
            "the body's charset is 'latin-1': send JSON as UTF-8 (application/json; charset=utf-8)",
        ),
    ],
)
def test_another_media_type_is_a_415_saying_what_to_send(content_type, detail):
    with pytest.raises(UnsupportedMediaType) as refused:
        check_media_type(content_type)
    assert str(refused.value) == detail and refused.value.status == 415


def test_an_overlong_media_type_is_cut_in_the_message():
    with pytest.raises(UnsupportedMediaType) as refused:
        check_media_type("text/" + "x" * 10_000)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "the body is empty: send a JSON object"),
        (b" \n\t", "the body is empty: send a JSON object"),
        (b'{"a": 1,\n "b": }', "invalid JSON: expecting value at line 2, column 7"),
        (b'{"a": "caf\xe9"}', "invalid JSON: byte 0xe9 is not UTF-8 at line 1, column 11"),
        (b'{"a": 1}\n\n\xff', "invalid JSON: byte 0xff is not UTF-8 at line 3, column 1"),
    ],
)
def test_bad_json_says_what_is_wrong_and_where(raw, detail):
    with pytest.raises(InvalidInput) as refused:
        parse_json(raw)
    assert str(refused.value) == detail


def test_json_of_any_kind_is_parsed():
    assert parse_json(b'{"title": "T", "n": [1, 2.5, null]}') == {"title": "T", "n": [1, 2.5, None]}
    assert parse_json(b"[]") == [] and parse_json(b'"text"') == "text"


def test_validation_errors_are_one_line_of_where_and_what():
    errors = [
        {"loc": ("body", "title"), "msg": "Field required"},
        {"loc": ("query", "limit"), "msg": "Input should be a valid integer"},
        {"loc": ("body", "images", 0, "url"), "msg": "String should have at most 4096 characters"},
        {"loc": (), "msg": "Input should be a valid dictionary"},
    ]
    assert validation_detail(errors) == (
        "title: Field required; limit: Input should be a valid integer; images.0.url: String "
        "should have at most 4096 characters; body: Input should be a valid dictionary"
    )
    assert validation_detail([{"loc": ("x",)}] * 12).count("x: invalid") == 10
    assert validation_detail([]) == "the request does not validate"


class Draft(BaseModel):
    title: str = Field(min_length=1)
    excerpt: str


class Request:
    """What read_json uses of a Starlette request."""

    def __init__(self, body: bytes, content_type: str | None) -> None:
        self.headers = {} if content_type is None else {"content-type": content_type}
        self._body = body

    async def body(self) -> bytes:
        return self._body


def read(body: bytes, content_type: str | None = JSON_MEDIA_TYPE) -> Draft:
    return asyncio.run(read_json(Request(body, content_type), Draft))


def test_a_body_is_read_as_its_model_after_the_media_type_and_the_json():
    assert read(b'{"title": "T", "excerpt": "E"}') == Draft(title="T", excerpt="E")
    with pytest.raises(UnsupportedMediaType):
        read(b"{not json", "text/plain")  # the media type first, before the body is parsed
    with pytest.raises(InvalidInput, match="invalid JSON"):
        read(b"{not json")
    with pytest.raises(InvalidInput) as refused:
        read(b'{"title": ""}')
    assert str(refused.value) == (
        "title: String should have at least 1 character; excerpt: Field required"
    )


def test_the_openapi_body_is_the_one_fastapi_would_write():
    body = request_body(Draft)["requestBody"]
    assert body["required"] is True
    assert body["content"] == {JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Draft"}}}
    document: dict = {"components": {"schemas": {"Draft": {"kept": True}}}}
    add_components(document, [Draft])
    assert document["components"]["schemas"]["Draft"] == {"kept": True}  # names kept
    fresh: dict = {}
    add_components(fresh, [Draft])
    schema = fresh["components"]["schemas"]["Draft"]
    assert schema["required"] == ["title", "excerpt"]
    assert schema["properties"]["title"]["minLength"] == 1
