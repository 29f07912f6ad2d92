"""recs/schema.py: what requests and answers look like: query parameters parsed by hand as
the OpenAPI schema says (the same Param for both), and the body models' bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recs.errors import BadRequest, InvalidInput
from recs.rank_settings import FILTER_KIND, REQUEST_FILTERS, RankSettings, describe
from recs.schema import (
    MAX_DAYS,
    MAX_QUALITY,
    MAX_REPEAT,
    PARAMS,
    ArticleIn,
    parse_query,
    problem_responses,
    query_parameters,
    rank_filters,
)

ALLOWED = frozenset(PARAMS)
URL = "https://example.com/a"


def parse(*items: tuple[str, str], allowed=ALLOWED, max_limit: int = 100) -> dict:
    return parse_query([("url", URL), *items], allowed, max_limit)


def test_every_request_filter_is_a_parameter_of_its_own_name_and_description():
    assert list(PARAMS) == ["url", "limit", *REQUEST_FILTERS]
    for name in REQUEST_FILTERS:
        assert PARAMS[name].description.startswith(describe(name).capitalize())
        repeatable = RankSettings.__dataclass_fields__[name].type == "tuple[str, ...]"
        assert PARAMS[name].repeat is repeatable


def test_the_schema_of_each_parameter_is_what_the_parser_accepts():
    documented = {p["name"]: p for p in query_parameters(PARAMS, max_limit=100)}
    assert documented["url"]["required"] and documented["url"]["schema"]["minLength"] == 1
    assert documented["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert documented["min_quality"]["schema"]["maximum"] == MAX_QUALITY
    assert documented["max_age_days"]["schema"]["exclusiveMinimum"] == 0
    assert documented["include_drafts"]["schema"] == {"type": "boolean", "default": False}
    for name in REQUEST_FILTERS:
        schema = documented[name]["schema"]
        if PARAMS[name].repeat:
            assert schema["maxItems"] == MAX_REPEAT and documented[name]["explode"] is True
            schema = schema["items"]
        kind = {"number": "number", "days": "number", "bool": "boolean"}.get(
            FILTER_KIND[name], "string"
        )
        assert schema["type"] == kind, name
        if kind == "string":
            assert schema["maxLength"] == PARAMS[name].max_length


def test_values_are_parsed_by_kind():
    values = parse(
        ("limit", "7"),
        ("exclude_url", "HTTP://Example.com/b/?utm_source=x"),
        ("exclude_url", "https://example.com/c"),
        ("provider", "BBC"),
        ("min_quality", "-2.5"),
        ("max_age_days", "30"),
        ("include_drafts", "yes"),
        ("same_category", "OFF"),
        ("since", "2022-01-01"),
    )
    assert values["url"] == URL and values["limit"] == 7
    assert values["exclude_url"] == ("https://example.com/b", "https://example.com/c")
    assert values["provider"] == ("BBC",)
    assert (values["min_quality"], values["max_age_days"]) == (-2.5, 30.0)
    assert values["include_drafts"] is True and values["same_category"] is False
    assert values["since"] == 1_640_995_200.0
    assert set(rank_filters(values)) == set(values) - {"url", "limit"}


def test_unknown_parameters_are_a_400_naming_what_is_allowed():
    with pytest.raises(BadRequest) as refused:
        parse(("colour", "blue"), allowed=frozenset({"url", "limit"}))
    assert str(refused.value) == "unknown query parameter(s): colour; allowed: limit, url"
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("limit", "0")], "limit: must be between 1 and 100, not 0"),
        ([("limit", "101")], "limit: must be between 1 and 100, not 101"),
        ([("limit", "many")], "limit: 'many' is not a whole number"),
        ([("limit", "2"), ("limit", "3")], "limit: given 2 times; give it once"),
        ([("min_quality", "nan")], "min_quality: 'nan' is out of range"),
        ([("min_quality", "1e13")], "min_quality: '1e13' is out of range"),
        ([("max_age_days", "0")], "max_age_days: '0' is out of range"),
        ([("max_age_days", str(MAX_DAYS * 2))], "max_age_days: '2000000.0' is out of range"),
        ([("min_quality", "high")], "min_quality: 'high' is not a number"),
        ([("include_drafts", "maybe")], "include_drafts: 'maybe' is not true or false"),
        ([("since", "someday")], "since: "),
        ([("exclude_url", "not a url")], "is not an article URL"),
        ([("provider", "x" * 501)], "provider: longer than 500 characters"),
        ([("topic", "t")] * (MAX_REPEAT + 1), f"topic: at most {MAX_REPEAT} values"),
    ],
)
def test_bad_values_are_a_422_naming_the_parameter(items, message):
    with pytest.raises(InvalidInput) as refused:
        parse(*items)
    assert message in str(refused.value) and refused.value.status == 422


def test_the_url_is_required():
    with pytest.raises(InvalidInput, match=r"^url: required$"):
        parse_query([("limit", "3")], ALLOWED, 100)


def test_problem_answers_are_documented_as_problem_json():
    responses = problem_responses(304, 404, 422)
    assert "model" not in responses[304]
    assert "application/problem+json" in responses[404]["content"]
    assert responses[422]["description"].startswith("A parameter or the body")


def test_an_article_body_is_bounded_and_strict():
    article = ArticleIn.model_validate({"title": "T", "excerpt": "", "extra": [1]})
    assert article.model_extra == {"extra": [1]}  # the front matter may hold other fields
    for bad in (
        {"title": "", "excerpt": "E"},
        {"title": "T"},
        {"title": 5, "excerpt": "E"},  # strict: no coercion of a number into text
        {"title": "T", "excerpt": "E", "quality": MAX_QUALITY * 10},
        {"title": "T", "excerpt": "E", "topics": ["t"] * 201},
        {"title": "T", "excerpt": "E", "images": [{"url": "https://a.example/i", "width": -1}]},
    ):
        with pytest.raises(ValidationError):
            ArticleIn.model_validate(bad)
