"""The options objects a build travels with, besides its ranking (recs.rank_settings):
how files are read, which neighbour index is built, and how the store is treated.

Plain frozen values with nothing heavy to import: recs.config makes them from RECS_*
variables and flags, and `recs --help` reads their defaults without loading numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recs.errors import ConfigError

MAX_FILE_BYTES = 1_000_000
INDEX_KINDS = ("auto", "exact", "ivf")
EXACT_MAX = 50_000  # rows; above it "auto" builds the IVF index (measured: bench/index.py)
# Rows up to which a live ranking (a filtered request, a draft) searches exactly. Its few
# queries do not pay for building an inverted file, which a server would do again for
# every snapshot, after every API write: at 60,000 rows a filtered request took 2.2 s
# after a write that way and 21-22 ms searching exactly (28 ms on the inverted file once
# built). One exact query took 95 ms at 300,000 rows and 313 ms at 1,000,000.
LIVE_EXACT_MAX = 300_000
KEEP = 5  # generations kept by default
MIN_KEEP = 2  # the current generation and one to roll back to


@dataclass(frozen=True)
class FieldMap:
    """Which front-matter keys each field an article needs is read from: the first key a
    file has wins (recs.fieldmap applies it; docs/sites.md lists the rules). The defaults
    read the seed's own keys and the usual Hugo, Jekyll, Eleventy and Astro ones."""

    title: tuple[str, ...] = ("title",)
    excerpt: tuple[str, ...] = ("excerpt", "description", "summary", "subtitle")
    excerpt_from_body: bool = True  # else the body's first paragraph (Markdown stripped)
    date: tuple[str, ...] = ("publishedDateTime", "date", "publishDate", "pubDate")
    topics: tuple[str, ...] = ("topics", "tags", "categories", "keywords")  # all of them
    draft: tuple[str, ...] = ("draft",)
    language: tuple[str, ...] = ("language", "lang", "locale", "inLanguage")
    url: tuple[str, ...] = ("webUrl",)  # an absolute URL; else originalUrl, else the site's


@dataclass(frozen=True)
class UrlRules:
    """How a page's URL is made when its front matter has none: the site's base URL and
    its generator's permalink rules (recs.permalinks; docs/sites.md)."""

    generator: str  # hugo, jekyll, eleventy, astro or plain
    base_url: str  # absolute, ending in "/": Hugo's baseURL, Jekyll's url + baseurl, ...
    permalinks: tuple[tuple[str, str], ...] = ()  # (section, or "*" for all, pattern)
    ugly_urls: bool = False  # Hugo's uglyURLs: /posts/a.html instead of /posts/a/
    lower_paths: bool = True  # Hugo lower-cases paths unless disablePathToLower


@dataclass(frozen=True)
class ReadOptions:
    """How article files are read: everything parsing depends on besides a file's bytes
    (the parse cache is keyed by it, `recs.filecache.signature`)."""

    pinned_key: str = "relatedPinned"  # RECS_PINNED_KEY
    excluded_key: str = "relatedExclude"  # RECS_EXCLUDED_KEY
    max_file_bytes: int = MAX_FILE_BYTES  # RECS_MAX_FILE_BYTES
    fields: FieldMap = field(default_factory=FieldMap)  # recs.toml [fields]
    urls: UrlRules | None = None  # the site's URL rules (recs.sites), None for none
    skip: tuple[str, ...] = ()  # folders of the content folder that hold no articles
    # Detect the language of a file that declares none (recs.languages): set for a
    # multilingual model, whose lists keep to the article's language.
    detect_language: bool = False


@dataclass(frozen=True)
class IndexSettings:
    """Which index to build: `kind` auto/exact/ivf; auto is exact up to `exact_max` rows."""

    kind: str = "auto"
    exact_max: int = EXACT_MAX

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ConfigError(
                f"RECS_INDEX/--index {self.kind!r} is not one of {', '.join(INDEX_KINDS)}"
            )
        if self.exact_max < 0:
            raise ConfigError(f"RECS_INDEX_EXACT_MAX must be 0 or more, not {self.exact_max}")

    def kind_for(self, rows: int) -> str:
        """The index kind used for a corpus of `rows` vectors."""
        if self.kind != "auto":
            return self.kind
        return "exact" if rows <= self.exact_max else "ivf"


@dataclass(frozen=True)
class BuildOptions:
    """How a build treats the store (what to reuse, when to refuse, what to keep); the
    ranking (RankSettings) and the reading of files (ReadOptions) travel on their own."""

    strict: bool = False  # any skipped file fails the build (--strict)
    rebuild: bool = False  # embed and rank everything again, e.g. for a new model (--rebuild)
    allow_shrink: bool = False  # publish even when most stored articles would go
    publish: bool = True  # False: build in memory and write nothing (--dry-run, --check)
    lock_wait: float = 0.0  # RECS_LOCK_WAIT
    keep_generations: int = KEEP  # RECS_KEEP_GENERATIONS
    made: str = "build"  # the command, recorded with the generation (`recs generations`)
    # The moment the build judges dates by (articles dated later wait): the build's start
    # when None. A fixed value makes a build repeatable (tests, `recs eval`).
    now: float | None = None
    index: IndexSettings = field(default_factory=IndexSettings)  # RECS_INDEX...

    def label(self) -> str:
        """How a generation this build publishes was made, as `recs generations` shows it."""
        flags = [("--rebuild", self.rebuild), ("--allow-shrink", self.allow_shrink)]
        return " ".join([self.made, *(flag for flag, on in flags if on)])
