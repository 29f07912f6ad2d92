"""Ranking options: `RankSettings`, every knob of ranking, checked once.

Each field carries its own description and bounds (`option` below): validation, the
API's parameters (recs.schema), the CLI's `--filter` help and the property tests that
draw settings all read them from here, so a new option is checked, documented and
exercised the day it is added. docs/ranking.md explains each one. Every field can be set
as RECS_RANK_<FIELD> (recs.config) and `--option FIELD=VALUE`; the fields marked
`request` can also be given per request, with the same name everywhere: `recs related
--filter NAME=VALUE` and the query parameters of GET and POST /related.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from recs.errors import InvalidInput
from recs.urls import canonical_url

DEDUP_KEEP = ("earliest", "quality")
# Values that make a request filter a list filter: "url" (canonicalised), "text", "date"
# (ISO 8601 or seconds since the epoch), "number", "days", "bool".
FILTER_KINDS = ("url", "text", "date", "number", "days", "bool")


def option(
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    request: str | None = None,
) -> Any:
    """A RankSettings field: its default, what it does, its bounds (`low` <= value <=
    `high`, `above` < value) and, for a request filter, the kind of its values."""
    metadata = {"doc": doc, "low": low, "high": high, "above": above, "request": request}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RankSettings:
    """Every ranking option. Defaults are the measured defaults of docs/quality.md."""

    limit: int = option(5, "items per list", low=1, high=1000)
    pool: int = option(50, "candidates looked at per article before filters", low=1, high=100_000)
    expand_neighbours: int = option(
        2, "order by similarity to the article moved towards its m nearest", low=0, high=100
    )
    expand_weight: float = option(1.0, "how far the article moves", low=0.0, high=10.0)
    dedup_threshold: float | None = option(
        0.95, "cosine at or above which two articles are the same story", above=0.0, high=1.0
    )
    dedup_titles: bool = option(True, "the same normalised title is the same story")
    dedup_keep: Literal["earliest", "quality"] = option(
        "earliest", "the member of a duplicate group shown: earliest or quality"
    )
    mmr_lambda: float = option(1.0, "diversity: 1 is pure relevance", low=0.0, high=1.0)
    provider_cap: int | None = option(None, "at most this many items a provider (soft)", low=1)
    half_life_days: float | None = option(
        365.0, "freshness decay: the ordering value halves every this many days", above=0.0
    )
    taxonomy_boost: float = option(
        0.0, "weight of shared topics and category in the ordering value", low=0.0, high=1.0
    )
    window_days: float | None = option(
        None, "prefer items published within this many days of the article (soft)", above=0.0
    )
    allow_newer: bool = option(True, "false: prefer items published before the article (soft)")
    min_similarity: float | None = option(
        None,
        "relevance floor: an article whose cosine with this one is below it is never "
        "listed (unset: the model's calibration, recs.models.Calibration; -1: no floor)",
        low=-1.0,
        high=1.0,
    )
    relevant_similarity: float | None = option(
        None,
        "an article at or above this cosine is related by meaning alone; below it, only one "
        "sharing a topic or the category fills a slot (unset: the model's calibration)",
        low=-1.0,
        high=1.0,
    )
    include_drafts: bool = option(
        False,
        "recommend drafts too (published: false, draft: true, a date in the future)",
        request="bool",
    )
    exclude_url: tuple[str, ...] = option((), "never recommend these URLs", request="url")
    provider: tuple[str, ...] = option((), "only these providers (name, any case)", request="text")
    exclude_provider: tuple[str, ...] = option((), "never these providers", request="text")
    type: tuple[str, ...] = option((), "only articles of these types", request="text")
    exclude_type: tuple[str, ...] = option((), "never articles of these types", request="text")
    topic: tuple[str, ...] = option(
        (), "only articles with one of these topics (any case)", request="text"
    )
    exclude_topic: tuple[str, ...] = option(
        (), "never articles with one of these topics (any case)", request="text"
    )
    same_category: bool = option(
        False, "only articles of the article's own category", request="bool"
    )
    same_language: bool | None = option(
        None,
        "only articles in the article's own language (unset: the model's calibration, on "
        "for multilingual models)",
        request="bool",
    )
    min_quality: float | None = option(
        None, "only articles whose quality is at least this", low=-1e12, high=1e12, request="number"
    )
    since: float | None = option(
        None, "only articles published at or after this moment", request="date"
    )
    until: float | None = option(
        None, "only articles published at or before this moment", request="date"
    )
    max_age_days: float | None = option(
        None, "only articles published in the last this many days", above=0.0, request="days"
    )

    def __post_init__(self) -> None:
        problems = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "tuple[str, ...]":
                # Lists (from JSON or a caller) become tuples; a lone text, a 1-tuple.
                value = (value,) if isinstance(value, str) else tuple(value or ())
                if spec.metadata.get("request") == "url":
                    try:
                        value = tuple(canonical_url(u) for u in value)
                    except InvalidInput as error:
                        problems.append(f"{spec.name}: {error}")
                object.__setattr__(self, spec.name, value)
                continue
            problem = _out_of_bounds(spec.name, value, spec.metadata)
            if problem:
                problems.append(problem)
        if self.dedup_keep not in DEDUP_KEEP:
            problems.append(f"dedup_keep must be one of {', '.join(DEDUP_KEEP)}")
        if problems:
            raise InvalidInput("invalid ranking settings: " + "; ".join(problems))

    def fingerprint(self) -> str:
        """A stable text of every setting: all of them shape stored lists.

        Filters set at build time (RECS_RANK_MIN_QUALITY, ...) are included too, so changing
        one recomputes the lists and the store records what its lists were built with.
        """
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def with_options(self, **options: Any) -> RankSettings:
        """A copy with some options changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(f"unknown ranking option(s): {', '.join(unknown)}")
        return replace(self, **options)

    @property
    def has_request_filters(self) -> bool:
        """Whether any request filter is set (drafts included or not is not a filter of
        the candidates that pass: it is checked on its own)."""
        return any(
            getattr(self, name) != _DEFAULTS[name]
            for name in REQUEST_FILTERS
            if name != "include_drafts"
        )


def _out_of_bounds(name: str, value: Any, metadata: Any) -> str | None:
    """Why `value` breaks the bounds of option `name`, or None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    low, high, above = metadata.get("low"), metadata.get("high"), metadata.get("above")
    if not math.isfinite(value):
        return f"{name} must be a finite number, not {value}"
    if low is not None and value < low:
        return f"{name} must be at least {low}, not {value}"
    if above is not None and value <= above:
        return f"{name} must be above {above}, not {value}"
    if high is not None and value > high:
        return f"{name} must be at most {high}, not {value}"
    return None


def describe(name: str) -> str:
    """What option `name` does, as its field says."""
    return str(next(f for f in fields(RankSettings) if f.name == name).metadata["doc"])


# Options a request may set (filters), in field order; build-time settings are the rest.
REQUEST_FILTERS = tuple(f.name for f in fields(RankSettings) if f.metadata.get("request"))
FILTER_KIND = {
    f.name: str(f.metadata["request"]) for f in fields(RankSettings) if f.name in REQUEST_FILTERS
}
_DEFAULTS = {f.name: f.default for f in fields(RankSettings)}
