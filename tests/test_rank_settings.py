"""recs/rank_settings.py: every ranking option checked once, named, described and bounded;
settings from JSON and a caller normalised; the fingerprint a store records."""

from __future__ import annotations

import pytest

from recs.errors import InvalidInput
from recs.rank_settings import RankSettings


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
