"""Settings: RECS_* variables, ranking options from the environment and from --option."""

from __future__ import annotations

from dataclasses import fields

import pytest

from recs.config import Settings, rank_options, with_rank_options
from recs.errors import ConfigError
from recs.rank_settings import REQUEST_FILTERS, RankSettings

# A value other than the default for every ranking option, as a person would type it.
EXAMPLES = {
    "pool": ("80", 80),
    "expand_neighbours": ("0", 0),
    "expand_weight": ("0.5", 0.5),
    "dedup_threshold": ("none", None),
    "dedup_titles": ("false", False),
    "dedup_keep": ("quality", "quality"),
    "mmr_lambda": ("0.7", 0.7),
    "provider_cap": ("2", 2),
    "half_life_days": ("30", 30.0),
    "taxonomy_boost": ("0.1", 0.1),
    "window_days": ("14", 14.0),
    "allow_newer": ("no", False),
    "min_similarity": ("0.15", 0.15),
    "relevant_similarity": ("0.3", 0.3),
    "include_drafts": ("yes", True),
    "min_quality": ("50", 50.0),
    "type": ("article, video", ("article", "video")),
    "exclude_type": ("video", ("video",)),
    "exclude_provider": ("Spam Daily", ("Spam Daily",)),
    "provider": ("A,B", ("A", "B")),
    "exclude_url": ("http://Example.com/a/", ("https://example.com/a",)),
    "topic": ("Space, AI", ("Space", "AI")),
    "exclude_topic": ("Opinion", ("Opinion",)),
    "same_category": ("true", True),
    "same_language": ("off", False),
    "since": ("2020-01-01", 1577836800.0),
    "until": ("1600000000", 1600000000.0),
    "max_age_days": ("30", 30.0),
}


def test_every_ranking_option_has_an_example():
    assert set(EXAMPLES) == {f.name for f in fields(RankSettings)} - {"limit"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_ranking_option_is_settable_from_the_environment(name):
    raw, value = EXAMPLES[name]
    settings = Settings.from_env({f"RECS_RANK_{name.upper()}": raw})
    assert getattr(settings.rank, name) == value
    assert getattr(settings.rank, name) != getattr(RankSettings(), name)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_ranking_option_is_settable_with_option(name):
    raw, value = EXAMPLES[name]
    options = rank_options([f"{name.replace('_', '-').upper()}={raw}"])
    assert getattr(with_rank_options(RankSettings(), options), name) == value


def test_bad_ranking_values_name_their_source():
    with pytest.raises(ConfigError, match="RECS_RANK_MMR_LAMBDA"):
        Settings.from_env({"RECS_RANK_MMR_LAMBDA": "high"})
    with pytest.raises(ConfigError, match="RECS_RANK_SINCE='last week'"):
        Settings.from_env({"RECS_RANK_SINCE": "last week"})
    with pytest.raises(ConfigError, match="unknown ranking variable RECS_RANK_LIMIT"):
        Settings.from_env({"RECS_RANK_LIMIT": "3"})
    with pytest.raises(ConfigError, match="--option pool='many'"):
        rank_options(["pool=many"])
    with pytest.raises(ConfigError, match=r"expand_neighbours must be .*\(--option\)"):
        with_rank_options(RankSettings(), rank_options(["expand_neighbours=500"]))


def test_options_can_be_limited_to_request_filters():
    assert rank_options(["min_quality=3"], allowed=REQUEST_FILTERS) == {"min_quality": 3.0}
    with pytest.raises(ConfigError, match="NAME one of exclude_provider"):
        rank_options(["mmr_lambda=0.5"], allowed=REQUEST_FILTERS)


def test_every_setting_is_documented():
    """A setting without a line in the docs is a setting nobody can find."""
    import dataclasses
    import re

    from tests.conftest import ROOT

    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(RECS_[A-Z_]+)`", configuration))
    wanted = {f"RECS_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.name != "rank"}
    assert sorted(wanted - documented) == []
    ranking = (ROOT / "docs" / "ranking.md").read_text(encoding="utf-8")
    options = set(re.findall(r"^\| `([a-z_]+)` \|", ranking, re.MULTILINE))
    assert sorted({f.name for f in dataclasses.fields(RankSettings)} - options) == []


def test_request_timeouts_are_settings_with_bounds():
    defaults = Settings()
    assert (defaults.header_timeout, defaults.body_timeout) == (10.0, 30.0)
    read = Settings.from_env({"RECS_HEADER_TIMEOUT": "2.5", "RECS_BODY_TIMEOUT": "4"})
    assert (read.header_timeout, read.body_timeout) == (2.5, 4.0)
    for name in ("RECS_HEADER_TIMEOUT", "RECS_BODY_TIMEOUT"):
        for bad in ("0", "-1", "3601"):
            with pytest.raises(ConfigError, match=f"{name} must be between 0.1 and 3600"):
                Settings.from_env({name: bad})
