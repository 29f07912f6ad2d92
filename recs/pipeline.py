"""The build: article files -> vectors (cached) -> related lists -> a published generation.

`prepare` does the work in memory (the evaluation uses it as is); `build` adds reading the
content folder, the store lock, the previous generation as a cache, and publishing.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np

from recs import filecache, store
from recs.articles import (
    JSONL_SUFFIX,
    MAX_FILE_BYTES,
    Article,
    Corpus,
    Problem,
    alias_map,
    dedupe,
    fields_text,
    read_corpus,
)
from recs.encoder import Encoder, Progress, no_progress
from recs.engine import LOCAL, Engine
from recs.errors import CorpusError, StoreIncompatible
from recs.index import IndexSettings
from recs.rank import RankSettings
from recs.related import Lists, link_all, link_changes
from recs.store import Snapshot

API_SOURCE = "api"


@dataclass
class BuildReport:
    """What a build did, for the summary line and for tests."""

    articles: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    recomputed: int = 0
    problems: list[Problem] = field(default_factory=list)
    generation: str = ""
    published: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        state = (
            f"published {self.generation}" if self.published else f"unchanged ({self.generation})"
        )
        return (
            f"{self.articles} articles: {self.embedded} embedded, {self.reused} reused, "
            f"{self.removed} removed, {len(self.problems)} skipped; "
            f"{self.recomputed} related lists computed; store {state} in {self.seconds:.1f}s"
        )


def _digest(
    model_id: str,
    settings: RankSettings,
    articles: Sequence[Article],
    cached: Mapping[str, filecache.Cached] | None = None,
) -> str:
    """What a build's result depends on: model, settings and every article as read, each
    as its source and its parse-cache record (`filecache.record`; its fields never hold
    its related list, which regenerate rewrites). An article that is the very object the
    parse cache gave (`cached`, by source) counts as the record text stored with it, which
    `filecache.record` wrote from an equal article: no JSON written again for 99% of a
    small rebuild. Keys keep their written order: reordering a file's keys costs one
    rebuild that changes no list."""
    head = json.dumps([model_id, settings.fingerprint()], ensure_ascii=False)
    parts = [head]
    for article in articles:
        entry = _from_cache(article, cached)
        if entry is not None:
            text, fields = entry.record, entry.fields
        else:
            text, fields = filecache.record(article), fields_text(article.fields)
        # Lengths frame each piece, so no two lists of articles give the same text.
        source = article.source
        parts.append(f"{len(source)}:{source}{len(text)}:{text}{len(fields)}:{fields}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _from_cache(
    article: Article, cached: Mapping[str, filecache.Cached] | None
) -> filecache.Cached | None:
    """The parse cache entry `article` is the very object of, with its stored texts."""
    entry = cached.get(article.source) if cached else None
    if entry is None or entry.article is not article or not entry.record:
        return None
    return entry


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
    cached: Mapping[str, filecache.Cached] | None = None,
) -> tuple[Snapshot, BuildReport]:
    """Build a snapshot in memory, reusing the previous one's vectors and lists.

    `index_settings` choose the neighbour index (exact or IVF; default: by corpus size).
    `warming`: the encoder's background load, if still running: joined before ranking,
    which may fork, and never waited for when nothing changed. `cached`: the parse cache
    the articles were read through (it spares writing their records again for the digest).
    """
    articles, duplicates = dedupe(articles)
    report = BuildReport(articles=len(articles), problems=duplicates)
    cache = None
    if previous is not None and previous.model_id == encoder.model_id:
        cache = ({a.text_hash: i for i, a in enumerate(previous.articles)}, previous.vectors)
        report.removed = len({a.url for a in previous.articles} - {a.url for a in articles})
    vectors, report.embedded = vectors_for(articles, encoder, cache, progress, engine)
    report.reused = len(articles) - report.embedded
    digest = _digest(encoder.model_id, settings, articles, cached)
    if previous is not None and previous.digest == digest:
        report.generation = previous.generation
        return previous, report
    if warming is not None:
        warming.join()

    reusable = (
        previous is not None
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
        )
    else:
        lists = link_all(articles, vectors, settings, progress, engine, index_settings)
    report.recomputed = lists.recomputed
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
    )
    return snapshot, report


P = ParamSpec("P")
R = TypeVar("R")


def collector_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with Python's cyclic garbage collector paused.

    A build makes about ten long-lived objects per article (parsed fields, lists) and
    almost no reference cycles; the collector would scan them again and again as they
    pile up: a third of a 1% rebuild of 10,000 articles. Reference counting still frees
    everything else at once, and the collector runs again afterwards.
    """

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


@collector_paused
def build(
    content_dir: Path,
    store_dir: Path,
    encoder: Encoder,
    settings: RankSettings,
    *,
    strict: bool = False,
    rebuild: bool = False,
    progress: Progress = no_progress,
    lock_wait: float = 0.0,
    pinned_key: str = "relatedPinned",
    excluded_key: str = "relatedExclude",
    max_file_bytes: int | None = None,
    publish: bool = True,
    engine: Engine = LOCAL,
    corpus: Corpus | None = None,
    index_settings: IndexSettings | None = None,
    parsed_with: filecache.Entries | None = None,
) -> tuple[Snapshot, BuildReport]:
    """Read the content folder and publish a new generation when anything changed.

    With publish=False nothing is written (no lock, no generation): the snapshot is what
    the build would publish (`recs regenerate --dry-run/--check`). `corpus`: the content
    folder already read by the caller (with the same keys and limits), through the parse
    cache entries `parsed_with`, if any.
    """
    started = time.monotonic()
    # The model loads while the folder is read; joined before ranking, which may fork.
    warm_up = getattr(encoder, "warm_up", None)
    warming = warm_up() if warm_up is not None else None
    signature = filecache.signature(pinned_key, excluded_key, max_file_bytes)
    known: dict[str, filecache.Cached] | None = None
    cached = parsed_with
    if corpus is None:
        # Unchanged files come parsed from the cache `recs regenerate` keeps (not on
        # --rebuild, which parses every file and then replaces the cache's entries).
        known = filecache.load(store_dir, signature) if publish else {}
        reuse = {} if rebuild else known
        corpus = read_corpus(
            content_dir,
            pinned_key=pinned_key,
            excluded_key=excluded_key,
            max_file_bytes=MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes,
            known=filecache.for_reading(reuse),
        )
        cached = known
    if strict and corpus.problems:
        lines = "; ".join(str(p) for p in corpus.problems[:5])
        more = f" (and {len(corpus.problems) - 5} more)" if len(corpus.problems) > 5 else ""
        raise CorpusError(f"--strict: {len(corpus.problems)} problem(s): {lines}{more}")
    lock = store.locked(store_dir, wait=lock_wait) if publish else contextlib.nullcontext()
    with lock:
        previous = None
        if store.exists(store_dir) and not rebuild:
            # The store's copy of an article read from the cache is that very Article when
            # their stored texts match: its fields are not parsed a second time.
            same = {}
            for article in corpus.articles:
                entry = _from_cache(article, cached)
                if entry is not None:
                    same[article.url] = (entry.fields, article)
            previous = store.load(store_dir, model_id=encoder.model_id, known=same)
            previous = fold(previous, store.read_changes(store_dir, previous.generation))
        articles = list(corpus.articles)
        if previous is not None:
            # Articles written through the API have no file; they stay until deleted.
            urls = {a.url for a in articles}
            articles += [
                a for a in previous.articles if a.source == API_SOURCE and a.url not in urls
            ]
        snapshot, report = prepare(
            articles,
            encoder,
            settings,
            previous,
            progress,
            engine,
            index_settings,
            warming,
            cached,
        )
        report.problems = corpus.problems + report.problems
        if snapshot is not previous and publish:
            report.generation = store.publish(store_dir, snapshot, base=previous)
            report.published = True
            store.clear_changes(store_dir, report.generation)
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


def fold(previous: Snapshot, changes: Sequence[store.Change]) -> Snapshot:
    """Apply journal changes (API writes) to a loaded generation, in memory.

    Only the lists the changes can reach are recomputed; the result is what a build of the
    same articles would give. The generation name stays; `revision` becomes the last seq.
    """
    if not changes:
        return previous
    current = {a.url: (a, previous.vectors[row]) for row, a in enumerate(previous.articles)}
    for change in changes:
        if change.op == "delete":
            current.pop(change.url, None)
            continue
        assert change.article is not None and change.vector is not None
        if change.vector.shape != (previous.dim,):
            raise StoreIncompatible(
                f"journal entry {change.seq} has a vector of shape {change.vector.shape}, "
                f"the store needs ({previous.dim},); rebuild the store"
            )
        current[change.url] = (store.article_from_record(change.article), change.vector)
    urls = sorted(current)
    articles = [current[url][0] for url in urls]
    vectors = np.array([current[url][1] for url in urls], dtype=np.float32)
    vectors = vectors.reshape(-1, previous.dim)
    old = Lists(previous.related, previous.floors, 0, previous.bases)
    lists = link_changes(
        previous.articles, previous.vectors, old, articles, vectors, previous.settings
    )
    return Snapshot(
        model_id=previous.model_id,
        dim=previous.dim,
        settings=previous.settings,
        articles=articles,
        vectors=vectors,
        related=lists.related,
        floors=lists.floors,
        bases=lists.bases,
        aliases=alias_map(articles),
        generation=previous.generation,
        created=previous.created,
        revision=changes[-1].seq,
    )
