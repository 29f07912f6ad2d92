"""The build: article files -> vectors (cached) -> related lists -> a published generation.

`prepare` does the work in memory (the evaluation uses it as is); `build` adds reading the
content folder, the store lock, the previous generation as a cache, and publishing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recs import filecache, journal, store
from recs.articles import Article, alias_map, ignored_originals
from recs.collector import collector_paused
from recs.corpus import JSONL_SUFFIX, Corpus, dedupe, read_corpus
from recs.encoder import Encoder, Warming
from recs.engine import LOCAL, Engine
from recs.errors import (
    CorpusError,
    Problem,
    ShrinkRefused,
    StoreIncompatible,
)
from recs.options import BuildOptions, IndexSettings, ReadOptions
from recs.progress import Progress, no_progress
from recs.rank_settings import RankSettings
from recs.records import fields_text, record_text
from recs.related import Lists, link_all, link_changes
from recs.scoring import date_waits
from recs.store import Snapshot


@dataclass
class BuildReport:
    """What a build did, for the summary line and for tests."""

    articles: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    recomputed: int = 0
    short: int = 0  # lists with fewer than `limit` items: nothing relevant left to fill them
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # warnings, one line each
    generation: str = ""
    published: bool = False
    seconds: float = 0.0

    def short_note(self) -> str:
        """ ", 3 short" when lists are shorter than the limit (said, never silent)."""
        return f", {self.short} short" if self.short else ""

    def summary(self) -> str:
        state = (
            f"published {self.generation}" if self.published else f"unchanged ({self.generation})"
        )
        return (
            f"{self.articles} articles: {self.embedded} embedded, {self.reused} reused, "
            f"{self.removed} removed, {len(self.problems)} skipped; "
            f"{self.recomputed} related lists computed{self.short_note()}; store {state} "
            f"in {self.seconds:.1f}s"
        )


def _digest(
    model_id: str,
    settings: RankSettings,
    articles: Sequence[Article],
    stored: Mapping[str, tuple[str, str]],
    now: float | None = None,
) -> str:
    """What a build's result depends on: model, settings and every article as read, each
    as its record and fields texts (recs.records; its fields never hold its related list,
    which regenerate rewrites). `stored`: the texts the parse cache keeps of the articles
    it gave, by source, taken as they are instead of written again (the digest of 10,000
    articles: 0.04 s instead of 0.11 s, 2.5% of a small rebuild). Keys keep their written
    order: reordering a file's keys costs one rebuild that changes no list. The articles
    whose dates keep them out of lists at `now` count too: when one is due, the lists it
    joins are ranked."""
    ts = [math.nan if a.published_ts is None else a.published_ts for a in articles]
    waits = date_waits(np.array(ts, dtype=np.float64), now, settings)
    waiting = sorted(articles[row].url for row in np.flatnonzero(waits).tolist())
    head = json.dumps([model_id, settings.fingerprint(), waiting], ensure_ascii=False)
    parts = [head]
    for article in articles:
        texts = stored.get(article.source)
        text, fields = texts or (record_text(article), fields_text(article.fields))
        # Lengths frame each piece, so no two lists of articles give the same text.
        parts.append(f"{len(text)}:{text}{len(fields)}:{fields}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def stored_texts(
    corpus: Corpus, cached: Mapping[str, filecache.Cached]
) -> dict[str, tuple[str, str]]:
    """The record and fields texts the parse cache keeps, by source, of the articles of
    `corpus` it gave (`Corpus.reused`): equal to what recs.records writes of them."""
    found = {}
    for source in corpus.reused:
        entry = cached.get(source)
        if entry is not None and entry.record:
            found[source] = (entry.record, entry.fields)
    return found


def vectors_for(
    articles: Sequence[Article],
    encoder: Encoder,
    cache: tuple[dict[str, int], np.ndarray] | None = None,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
) -> tuple[np.ndarray, int]:
    """Vectors of `articles`, embedding only texts not in `cache` (text hash -> row of
    the matrix beside it)."""
    known, matrix = cache if cache is not None else ({}, np.zeros((0, encoder.dim), np.float32))
    found = np.array([known.get(a.text_hash, -1) for a in articles], dtype=np.int64)
    vectors = np.zeros((len(articles), encoder.dim), dtype=np.float32)
    hit = found >= 0
    vectors[hit] = matrix[found[hit]]
    missing: dict[str, list[int]] = {}
    for row in np.flatnonzero(~hit).tolist():
        missing.setdefault(articles[row].text_hash, []).append(row)
    if missing:
        texts = [articles[rows[0]].text for rows in missing.values()]
        fresh = engine.embed(encoder, texts, progress)
        for vector, rows in zip(fresh, missing.values(), strict=True):
            vectors[rows] = vector
    return vectors, len(articles) - int(hit.sum())


def prepare(
    articles: Sequence[Article],
    encoder: Encoder,
    settings: RankSettings,
    previous: Snapshot | None = None,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    index_settings: IndexSettings | None = None,
    warming: threading.Thread | None = None,
    stored: Mapping[str, tuple[str, str]] | None = None,
    reuse: bool = True,
    now: float | None = None,
) -> tuple[Snapshot, BuildReport]:
    """Build a snapshot in memory, reusing the previous one's vectors and lists (unless
    `reuse` is False: a --rebuild embeds and ranks everything; `previous` still counts
    what is removed).

    `index_settings` choose the neighbour index (exact or IVF; default: by corpus size).
    `warming`: the encoder's background load, if still running: joined before ranking,
    which may fork, and never waited for when nothing changed. `stored`: texts the parse
    cache keeps of the articles it gave (`stored_texts`), for the digest. `now`: the
    moment dates are judged by (an article dated after it waits; None: no rule of time).
    """
    articles, duplicates = dedupe(articles)
    report = BuildReport(articles=len(articles), problems=duplicates)
    cache = None
    if previous is not None:
        report.removed = len({a.url for a in previous.articles} - {a.url for a in articles})
    if reuse and previous is not None and previous.model_id == encoder.model_id:
        cache = ({a.text_hash: i for i, a in enumerate(previous.articles)}, previous.vectors)
    vectors, report.embedded = vectors_for(articles, encoder, cache, progress, engine)
    report.reused = len(articles) - report.embedded
    digest = _digest(encoder.model_id, settings, articles, stored or {}, now)
    if reuse and previous is not None and previous.digest == digest:
        report.generation = previous.generation
        return previous, report
    if warming is not None:
        warming.join()

    reusable = (
        reuse
        and previous is not None
        and previous.model_id == encoder.model_id
        and previous.settings.fingerprint() == settings.fingerprint()
    )
    if reusable:
        assert previous is not None
        old = Lists(previous.related, previous.floors, 0, previous.bases)
        lists = link_changes(
            previous.articles,
            previous.vectors,
            old,
            articles,
            vectors,
            settings,
            progress,
            engine,
            index_settings,
            now=now,
            old_now=previous.ranked_at,
        )
    else:
        lists = link_all(articles, vectors, settings, progress, engine, index_settings, now=now)
    report.recomputed = lists.recomputed
    report.short = sum(len(items) < settings.limit for items in lists.related)
    snapshot = Snapshot(
        model_id=encoder.model_id,
        dim=encoder.dim,
        settings=settings,
        articles=list(articles),
        vectors=vectors,
        related=lists.related,
        floors=lists.floors,
        bases=lists.bases,
        aliases=alias_map(list(articles)),
        digest=digest,
        # The journal entries `previous` folded in are in this generation from now on.
        journal_seq=0 if previous is None else max(previous.journal_seq, previous.revision),
        ranked_at=now,
    )
    return snapshot, report


def shrink_refusal(before: int, after: int, gone: int, content_dir: Path) -> str | None:
    """Why a build that keeps `after` articles and removes `gone` of the `before` stored
    must not publish, or None: every article, or more than half of them, is too many to
    lose to a wrong or empty folder without being asked."""
    if not gone or (after and 2 * gone <= before):
        return None
    return (
        f"not published: this build would remove {gone:,} of the {before:,} stored articles "
        f"({after:,} left; is {content_dir} the right folder?). The store is unchanged; "
        "to publish it anyway run again with --allow-shrink (`recs rollback` undoes it)"
    )


def _previous_for_rebuild(
    store_dir: Path, report_notices: list[str]
) -> tuple[Snapshot | None, int]:
    """The store as it is (any model), journal folded in, and its article count, for a
    --rebuild: it keeps the articles written through the API and the shrink guard. A store
    this recs cannot read gives (None, the count its info table holds, if any)."""
    try:
        loaded = store.load(store_dir)
        previous = journal.fold(loaded, journal.read_changes(store_dir, loaded.generation))
        return previous, len(previous)
    except StoreIncompatible as error:
        report_notices.append(
            f"the previous store cannot be read ({error}); articles written through the API "
            "since its last build cannot be carried over"
        )
    try:
        return None, int(store.store_info(store_dir).get("article_count", 0))
    except (StoreIncompatible, ValueError):
        return None, 0


@collector_paused
def build(
    content_dir: Path,
    store_dir: Path,
    encoder: Encoder,
    settings: RankSettings,
    options: BuildOptions = BuildOptions(),
    read: ReadOptions = ReadOptions(),
    *,
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    corpus: Corpus | None = None,
    parsed_with: filecache.Entries | None = None,
) -> tuple[Snapshot, BuildReport]:
    """Read the content folder and publish a new generation when anything changed.

    With `options.publish` False nothing is written (no lock, no generation, no cache):
    the snapshot is what the build would publish (`recs regenerate --dry-run/--check`).
    `corpus`: the content folder already read by the caller with the same `read` options,
    through the parse cache entries `parsed_with`, if any. Raises ShrinkRefused, publishing
    nothing, when the build would remove every stored article or more than half of them
    (unless `options.allow_shrink`).
    """
    started = time.monotonic()
    publish = options.publish
    # The model loads while the folder is read; joined before ranking, which may fork.
    warming = encoder.warm_up() if isinstance(encoder, Warming) else None
    signature = filecache.signature(read)
    known: dict[str, filecache.Cached] | None = None
    cached = parsed_with
    if corpus is None:
        # Unchanged files come parsed from the cache `recs regenerate` keeps (not on
        # --rebuild, which parses every file and then replaces the cache's entries).
        known = filecache.load(store_dir, signature) if publish else {}
        reuse = {} if options.rebuild else known
        corpus = read_corpus(content_dir, read, known=filecache.for_reading(reuse))
        cached = known
    if options.strict and corpus.problems:
        lines = "; ".join(str(p) for p in corpus.problems[:5])
        more = f" (and {len(corpus.problems) - 5} more)" if len(corpus.problems) > 5 else ""
        raise CorpusError(f"--strict: {len(corpus.problems)} problem(s): {lines}{more}")
    texts = stored_texts(corpus, cached or {})
    notices: list[str] = []
    lock = store.locked(store_dir, wait=options.lock_wait) if publish else contextlib.nullcontext()
    with lock:
        previous, stored = None, 0
        if options.rebuild and store.exists(store_dir):
            previous, stored = _previous_for_rebuild(store_dir, notices)
        elif store.exists(store_dir):
            # The store's copy of an article read from the cache is that Article when their
            # stored texts match: its fields are not parsed a second time.
            same = {a.url: (texts[a.source][1], a) for a in corpus.articles if a.source in texts}
            previous = store.load(store_dir, model_id=encoder.model_id, known=same)
            previous = journal.fold(previous, journal.read_changes(store_dir, previous.generation))
            stored = len(previous)
        articles = list(corpus.articles)
        if previous is not None:
            # Articles written through the API have no file: they stay, re-embedded on a
            # --rebuild, until deleted through the API.
            urls = {a.url for a in articles}
            articles += [
                a for a in previous.articles if a.source == journal.API_SOURCE and a.url not in urls
            ]
        snapshot, report = prepare(
            articles,
            encoder,
            settings,
            previous,
            progress,
            engine,
            options.index,
            warming,
            texts,
            reuse=not options.rebuild,
            now=time.time() if options.now is None else options.now,
        )
        report.problems = corpus.problems + report.problems
        report.notices = notices + ignored_originals(snapshot.articles)
        if previous is None and stored:  # a store that could not be read
            report.removed = stored
        if snapshot is not previous and publish:
            refusal = None
            if not options.allow_shrink:
                refusal = shrink_refusal(stored, len(snapshot), report.removed, content_dir)
            if refusal is not None:
                raise ShrinkRefused(refusal, report.problems)
            snapshot.made = options.label()
            report.generation = store.publish(
                store_dir, snapshot, base=previous, keep=options.keep_generations
            )
            report.published = True
            journal.clear_changes(store_dir, snapshot.journal_seq)
        if known is not None and publish:
            _save_parsed(store_dir, signature, known, corpus)
    report.seconds = time.monotonic() - started
    return snapshot, report


def _save_parsed(
    store_dir: Path, signature: str, known: dict[str, filecache.Cached], corpus: Corpus
) -> None:
    """Record the article files just read in the parse cache. A file whose bytes are the
    cached ones keeps its entry (with the key of the block regenerate left in it); any
    other gets an unknown block key, so the next regenerate checks that file."""
    parsed: dict[str, filecache.Cached] = {}
    for article in corpus.articles:
        sha = corpus.raw_hashes.get(article.source)
        if sha is None or article.source.lower().endswith(JSONL_SUFFIX):
            continue
        cached = known.get(article.source)
        block = cached.block if cached is not None and cached.sha == sha else ""
        stat = corpus.stats.get(article.source)
        parsed[article.source] = filecache.Cached(sha, article, block, stat)
    with contextlib.suppress(OSError, sqlite3.Error):  # a cache: the next build parses all
        filecache.save(store_dir, signature, known, parsed)
