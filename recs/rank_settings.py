"""Ranking options: `RankSettings`, every knob of `recs.rank`, checked once.

Each field is documented in docs/ranking.md and can be set as RECS_RANK_<FIELD> (see
`recs.config`), `--option FIELD=VALUE` on the CLI, and (request filters only) per request.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from recs.errors import InvalidInput
from recs.urls import canonical_url

DEDUP_KEEP = ("earliest", "quality")
# Filters a request may set; build-time settings are the rest.
REQUEST_FILTERS = (
    "exclude_urls",
    "exclude_providers",
    "require_providers",
    "since",
    "until",
    "min_quality",
    "types",
    "published_only",
)


@dataclass(frozen=True)
class RankSettings:
    """Every ranking option. Defaults are the measured defaults of docs/quality.md."""

    limit: int = 5
    pool: int = 50
    expand_neighbours: int = 2
    expand_weight: float = 1.0
    dedup_threshold: float | None = 0.95
    dedup_titles: bool = True
    dedup_keep: Literal["earliest", "quality"] = "earliest"
    mmr_lambda: float = 1.0
    provider_cap: int | None = None
    half_life_days: float | None = 365.0
    taxonomy_boost: float = 0.0
    window_days: float | None = None
    allow_newer: bool = True
    min_quality: float | None = None
    types: tuple[str, ...] = ()
    published_only: bool = False
    exclude_providers: tuple[str, ...] = ()
    require_providers: tuple[str, ...] = ()
    exclude_urls: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        # Lists (from JSON or a caller) become tuples; a lone text is a one-item tuple.
        for name in ("types", "exclude_providers", "require_providers", "exclude_urls"):
            value = getattr(self, name)
            items = (value,) if isinstance(value, str) else tuple(value or ())
            object.__setattr__(self, name, items)
        problems = []
        try:
            urls = tuple(canonical_url(u) for u in self.exclude_urls)
            object.__setattr__(self, "exclude_urls", urls)
        except InvalidInput as error:
            problems.append(f"exclude_urls: {error}")
        if not 1 <= self.limit <= 1000:
            problems.append(f"limit must be between 1 and 1000, not {self.limit}")
        if not 1 <= self.pool <= 100_000:
            problems.append(f"pool must be between 1 and 100000, not {self.pool}")
        if self.dedup_threshold is not None and not 0.0 < self.dedup_threshold <= 1.0:
            problems.append(f"dedup_threshold must be in (0, 1], not {self.dedup_threshold}")
        if self.dedup_keep not in DEDUP_KEEP:
            problems.append(f"dedup_keep must be one of {', '.join(DEDUP_KEEP)}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            problems.append(f"mmr_lambda must be in [0, 1], not {self.mmr_lambda}")
        if self.provider_cap is not None and self.provider_cap < 1:
            problems.append(f"provider_cap must be at least 1, not {self.provider_cap}")
        for name in ("half_life_days", "window_days"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                problems.append(f"{name} must be a positive number of days, not {value}")
        if not 0 <= self.expand_neighbours <= 100:
            problems.append(
                f"expand_neighbours must be between 0 and 100, not {self.expand_neighbours}"
            )
        if not (0.0 <= self.expand_weight <= 10.0):
            problems.append(f"expand_weight must be in [0, 10], not {self.expand_weight}")
        if not (0.0 <= self.taxonomy_boost <= 1.0):
            problems.append(f"taxonomy_boost must be in [0, 1], not {self.taxonomy_boost}")
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
        return any(getattr(self, name) != _NO_FILTERS[name] for name in REQUEST_FILTERS)


_NO_FILTERS = {name: getattr(RankSettings(), name) for name in REQUEST_FILTERS}
