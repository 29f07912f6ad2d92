"""Settings: every RECS_* environment variable, read once at the edges and passed down.

The CLI callback and `create_app` call `Settings.from_env()`; library functions take
values, never `os.environ`. A bad value fails at start-up with a message naming the
variable. Ranking options are `RECS_RANK_<OPTION>` (e.g. RECS_RANK_MMR_LAMBDA=0.8);
docs/configuration.md lists them all.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from recs.articles import parse_datetime
from recs.errors import ConfigError, InvalidInput
from recs.options import EXACT_MAX, INDEX_KINDS, KEEP, MIN_KEEP, IndexSettings, ReadOptions
from recs.rank_settings import RankSettings

PREFIX = "RECS_"
RANK_PREFIX = "RECS_RANK_"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field `x` is read from RECS_X."""

    store: Path = Path("embeddings")
    model: str | None = None
    backend: str = "auto"
    limit: int = 5
    max_limit: int = 50
    api_token: str | None = field(default=None, repr=False)
    cache_max_age: int = 60
    cors_origins: tuple[str, ...] = ()
    reload_interval: float = 0.5
    max_body_bytes: int = 1_000_000
    header_timeout: float = 10.0  # seconds for a request's headers to arrive (recs serve)
    body_timeout: float = 30.0  # seconds for a request's body to arrive, once its headers have
    max_file_bytes: int = 1_000_000
    pinned_key: str = "relatedPinned"
    excluded_key: str = "relatedExclude"
    lock_wait: float = 0.0
    engine: str = "local"
    jobs: int = 0  # processes the local engine ranks in; 0: one per core
    ray_address: str | None = None
    index: str = "auto"
    index_exact_max: int = EXACT_MAX
    keep_generations: int = KEEP  # generations kept on disk, for readers and rollback
    cache_dir: Path | None = None  # the ONNX export and other per-machine caches
    events: bool = False  # POST /events records readers' impressions and clicks
    events_days: int = 90  # reader events older than this are pruned
    events_rate: int = 1000  # reader events one server process accepts per second
    config: Path | None = None  # a site's recs.toml, instead of CONTENT_DIR/recs.toml
    base_url: str | None = None  # a site's base URL, over its recs.toml and generator config
    rank: RankSettings = field(default_factory=RankSettings)

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.max_limit <= 1000, "RECS_MAX_LIMIT", "between 1 and 1000"),
            (
                1 <= self.limit <= self.max_limit,
                "RECS_LIMIT",
                f"between 1 and RECS_MAX_LIMIT ({self.max_limit})",
            ),
            (self.cache_max_age >= 0, "RECS_CACHE_MAX_AGE", "0 or more seconds"),
            (
                0.05 <= self.reload_interval <= 3600,
                "RECS_RELOAD_INTERVAL",
                "between 0.05 and 3600 seconds",
            ),
            (self.max_body_bytes >= 1024, "RECS_MAX_BODY_BYTES", "at least 1024"),
            (
                0.1 <= self.header_timeout <= 3600,
                "RECS_HEADER_TIMEOUT",
                "between 0.1 and 3600 seconds",
            ),
            (0.1 <= self.body_timeout <= 3600, "RECS_BODY_TIMEOUT", "between 0.1 and 3600 seconds"),
            (self.max_file_bytes >= 1024, "RECS_MAX_FILE_BYTES", "at least 1024"),
            (self.lock_wait >= 0, "RECS_LOCK_WAIT", "0 or more seconds"),
            (self.engine in ("local", "ray"), "RECS_ENGINE", "local or ray"),
            (0 <= self.jobs <= 1024, "RECS_JOBS", "between 0 (one per core) and 1024"),
            (self.index in INDEX_KINDS, "RECS_INDEX", "one of " + ", ".join(INDEX_KINDS)),
            (self.index_exact_max >= 0, "RECS_INDEX_EXACT_MAX", "0 or more rows"),
            (
                MIN_KEEP <= self.keep_generations <= 1000,
                "RECS_KEEP_GENERATIONS",
                f"between {MIN_KEEP} and 1000",
            ),
            (1 <= self.events_days <= 3650, "RECS_EVENTS_DAYS", "between 1 and 3650 days"),
            (
                1 <= self.events_rate <= 1_000_000,
                "RECS_EVENTS_RATE",
                "between 1 and 1000000 events per second",
            ),
            (bool(self.pinned_key.strip()), "RECS_PINNED_KEY", "a front-matter key"),
            (bool(self.excluded_key.strip()), "RECS_EXCLUDED_KEY", "a front-matter key"),
            (
                self.api_token is None or len(self.api_token) >= 16,
                "RECS_API_TOKEN",
                "at least 16 characters",
            ),
        ]
        for ok, name, wanted in checks:
            if not ok:
                raise ConfigError(f"{name} must be {wanted}")
        if self.rank.limit != self.limit:
            object.__setattr__(self, "rank", replace(self.rank, limit=self.limit))

    def rank_for(self, model_id: str) -> RankSettings:
        """The ranking settings of a build with the model `model_id`: RECS_RANK_* as set,
        and the model's calibration (recs.models.Calibration) for each setting left at its
        default (-1 turns a similarity floor off)."""
        from recs.models import calibration

        calibrated = calibration(model_id)
        defaults = RankSettings()
        chosen = {
            spec.name: getattr(calibrated, spec.name)
            for spec in fields(calibrated)
            if getattr(calibrated, spec.name) is not None
            and getattr(self.rank, spec.name) == getattr(defaults, spec.name)
        }
        return replace(self.rank, **chosen)

    @property
    def model_cache(self) -> Path:
        """Where per-machine model files (the ONNX export) are kept: RECS_CACHE_DIR, else
        the platform's user cache folder. Never the store: a new store, or a check that
        writes nothing, does not pay the export again."""
        return self.cache_dir if self.cache_dir is not None else user_cache_dir()

    @cached_property  # resolving the model reads its small files: once per Settings
    def read_options(self) -> ReadOptions:
        """How article files are read (RECS_PINNED_KEY, RECS_EXCLUDED_KEY, RECS_MAX_FILE_BYTES),
        detecting languages when the lists keep to them (`same_language`, set or by the
        model's calibration)."""
        detect = self.rank.same_language
        if detect is None:
            from recs.models import calibration, model_id_of

            detect = calibration(model_id_of(self.model)).same_language
        return ReadOptions(
            self.pinned_key, self.excluded_key, self.max_file_bytes, detect_language=bool(detect)
        )

    @property
    def index_settings(self) -> IndexSettings:
        """The neighbour index a build uses (RECS_INDEX, RECS_INDEX_EXACT_MAX)."""
        return IndexSettings(self.index, self.index_exact_max)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from RECS_* variables, then `overrides` (CLI flags; None means unset)."""
        env = os.environ if env is None else env
        names = {f.name for f in fields(cls)} - {"rank"}
        rank_names = {f.name for f in fields(RankSettings)}
        values: dict[str, Any] = {}
        rank_values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            if key.startswith(RANK_PREFIX):
                name = key[len(RANK_PREFIX) :].lower()
                if name not in rank_names or name == "limit":
                    raise ConfigError(f"unknown ranking variable {key}; see docs/configuration.md")
                rank_values[name] = parse_rank_value(key, name, raw)
                continue
            name = key[len(PREFIX) :].lower()
            if name not in names:
                raise ConfigError(f"unknown variable {key}; see docs/configuration.md")
            values[name] = parse_value(key, raw, hints[name])
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        try:
            rank = RankSettings(**rank_values)
        except InvalidInput as error:
            raise ConfigError(f"{error} (RECS_RANK_* variables)") from None
        return cls(rank=rank, **values)


def user_cache_dir(env: Mapping[str, str] | None = None, platform: str = sys.platform) -> Path:
    """recs' folder in the user's cache directory: $XDG_CACHE_HOME/recs (default
    ~/.cache/recs) on Linux and other Unixes, ~/Library/Caches/recs on macOS."""
    env = os.environ if env is None else env
    if platform == "darwin":
        return Path.home() / "Library" / "Caches" / "recs"
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache") / "recs"


def parse_value(name: str, raw: str, hint: Any) -> Any:
    """Parse one variable's text by its field type, or raise ConfigError naming it."""
    text = raw.strip()
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text == "" or text.lower() == "none":
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if hint is int:
            return int(text)
        if hint is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError("expected a finite number")
            return value
        if hint is Path:
            return Path(text).expanduser()
        if origin is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if origin is typing.Literal:
            if text not in args:
                raise ValueError(f"expected one of {', '.join(map(str, args))}")
            return text
        return text
    except ValueError as error:
        raise ConfigError(f"{name}={raw!r} is not valid: {error}") from None


DATE_OPTIONS = ("since", "until")


def parse_rank_value(source: str, name: str, raw: str) -> Any:
    """One ranking option's value from text; `source` names it in errors.

    `since` and `until` take seconds since the epoch or an ISO 8601 date or date-time.
    """
    hint = typing.get_type_hints(RankSettings)[name]
    if name in DATE_OPTIONS:
        try:
            return parse_value(source, raw, hint)
        except ConfigError:
            try:
                return parse_datetime(raw)
            except ValueError:
                raise ConfigError(
                    f"{source}={raw!r} is not valid: expected an ISO 8601 date or date-time "
                    "or seconds since the epoch"
                ) from None
    return parse_value(source, raw, hint)


def rank_options(
    items: Sequence[str], allowed: Sequence[str] | None = None, flag: str = "--option"
) -> dict[str, Any]:
    """`NAME=VALUE` texts (the CLI's `--option`, `--filter`) as ranking options, parsed.

    NAME is a RankSettings field as in RECS_RANK_<NAME> (any case, `-` for `_`); `allowed`
    limits the names (e.g. to request filters). Raises ConfigError naming `flag`.
    """
    names = sorted(allowed if allowed is not None else set(RANK_FIELDS) - {"limit"})
    options: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or name not in names:
            raise ConfigError(
                f"{flag} {item!r}: expected NAME=VALUE, NAME one of {', '.join(names)} "
                "(see docs/ranking.md)"
            )
        value = parse_rank_value(f"{flag} {name}", name, raw)
        if isinstance(value, tuple) and isinstance(options.get(name), tuple):
            value = options[name] + value  # a list option given twice: both lists
        options[name] = value
    return options


def with_rank_options(
    rank: RankSettings, options: Mapping[str, Any], flag: str = "--option"
) -> RankSettings:
    """`rank` with `options` applied; a bad value is a ConfigError naming `flag`."""
    try:
        return rank.with_options(**options)
    except InvalidInput as error:
        raise ConfigError(f"{error} ({flag})") from None


def option_words(text: str, flag: str = "--compare") -> list[str]:
    """`NAME=VALUE NAME=VALUE` split like a shell would (quotes keep spaces in a value)."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise ConfigError(f"{flag} {text!r}: {error}") from None


RANK_FIELDS = tuple(f.name for f in fields(RankSettings))
