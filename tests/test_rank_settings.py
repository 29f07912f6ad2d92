"""recs/rank_settings.py: every ranking option checked once, named, described and bounded;
settings from JSON and a caller normalised; the fingerprint a store records."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from recs.errors import InvalidInput
from recs.rank_settings import FILTER_KIND, FILTER_KINDS, REQUEST_FILTERS, RankSettings, describe


@pytest.mark.parametrize(
    "options",
    [
        {"limit": 0},
        {"mmr_lambda": 2},
        {"dedup_threshold": 0},
        {"provider_cap": 0},
        {"window_days": -1},
        {"dedup_keep": "latest"},
    ],
)
def test_bad_settings_are_refused(options):
    with pytest.raises(InvalidInput):
        RankSettings().with_options(**options)


def test_unknown_option_is_refused():
    with pytest.raises(InvalidInput, match="unknown ranking option"):
        RankSettings().with_options(colour="blue")


def test_settings_from_json_lists_and_urls_are_normalised():
    settings = RankSettings(
        type=["article"], exclude_url=["http://A.com/x/?utm_source=feed"], exclude_provider="P1"
    )
    assert settings.type == ("article",)
    assert settings.exclude_url == ("https://a.com/x",)
    assert settings.exclude_provider == ("P1",)
    with pytest.raises(InvalidInput, match="exclude_url"):
        RankSettings(exclude_url=("not a url",))


def test_fingerprint_holds_every_option_including_build_time_filters():
    assert RankSettings().fingerprint() != RankSettings(min_quality=5).fingerprint()
    assert RankSettings().fingerprint() != RankSettings(expand_neighbours=3).fingerprint()
    import json

    data = json.loads(RankSettings(type=("a",)).fingerprint())
    assert RankSettings(**data) == RankSettings(type=("a",))


@pytest.mark.parametrize("spec", fields(RankSettings), ids=lambda spec: spec.name)
def test_every_option_is_described_and_its_default_is_within_its_bounds(spec):
    meta = spec.metadata
    assert describe(spec.name) == meta["doc"] and meta["doc"]
    default = spec.default
    if isinstance(default, int | float) and not isinstance(default, bool):
        assert meta["low"] is None or default >= meta["low"]
        assert meta["high"] is None or default <= meta["high"]
        assert meta["above"] is None or default > meta["above"]
    assert RankSettings() == RankSettings(**{spec.name: default})


def test_request_filters_are_the_options_marked_request_with_a_known_kind():
    marked = [spec.name for spec in fields(RankSettings) if spec.metadata["request"]]
    assert list(REQUEST_FILTERS) == marked and "include_drafts" in marked
    assert set(FILTER_KIND) == set(REQUEST_FILTERS)
    assert set(FILTER_KIND.values()) <= set(FILTER_KINDS)
    assert "limit" not in REQUEST_FILTERS and "mmr_lambda" not in REQUEST_FILTERS


def test_drafts_included_is_not_a_filter_of_the_candidates():
    assert not RankSettings().has_request_filters
    assert not RankSettings(include_drafts=True).has_request_filters
    assert not RankSettings(limit=3, mmr_lambda=0.5).has_request_filters  # build-time options
    assert RankSettings(topic=("space",)).has_request_filters
    assert RankSettings(same_category=True).has_request_filters


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_number_that_is_not_finite_is_refused(value):
    with pytest.raises(InvalidInput, match="expand_weight must be a finite number"):
        RankSettings(expand_weight=value)


def test_every_problem_is_named_in_one_message():
    with pytest.raises(InvalidInput) as refused:
        RankSettings(limit=0, mmr_lambda=2.0, dedup_keep="latest")
    assert str(refused.value) == (
        "invalid ranking settings: limit must be at least 1, not 0; mmr_lambda must be at "
        "most 1.0, not 2.0; dedup_keep must be one of earliest, quality"
    )


def test_with_options_is_a_checked_copy():
    settings = RankSettings()
    changed = settings.with_options(limit=3, provider=["BBC"])
    assert (changed.limit, changed.provider) == (3, ("BBC",))
    assert settings.limit == 5 and settings.provider == ()
    with pytest.raises(InvalidInput, match="limit must be at most 1000"):
        settings.with_options(limit=1001)
