"""The Python API: open a built store and ask for related articles.

    from recs import Recommender
    recs = Recommender.open("embeddings")
    for item in recs.related("https://example.com/news/1", limit=5):
        print(item["title"], item["score"])

Stored lists answer the common case (no filters, `limit` up to the build's limit) without
any computation: they are the first `limit` items of the list the build ranked. Larger
limits and filters rank live with the same function the build uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from recs import journal, store
from recs.articles import Article, article_from_request
from recs.backends import load_encoder
from recs.catalog import Query, category_of, topics_of
from recs.config import Settings
from recs.encoder import Encoder
from recs.errors import ArticleNotFound, InvalidInput
from recs.index import VectorIndex
from recs.models import model_id_of
from recs.options import LIVE_EXACT_MAX, IndexSettings
from recs.rank import explain, rank
from recs.rank_settings import RankSettings
from recs.ranked import PINNED, Item, Search
from recs.select import LADDER
from recs.store import Snapshot
from recs.urls import canonical_url

# The index live rankings search: exact up to LIVE_EXACT_MAX rows, an inverted file above.
LIVE_INDEX = IndexSettings(exact_max=LIVE_EXACT_MAX)


class Recommender:
    """Related lists from one loaded generation of a store."""

    def __init__(
        self,
        snapshot: Snapshot,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
        reading: journal.Guard = contextlib.nullcontext,
    ) -> None:
        """`reading`: held around every use of the snapshot's vectors (a server's
        `journal.SharedLock.shared`, as its folds may overwrite rows of them)."""
        self.snapshot = snapshot
        self.settings = settings or Settings()
        self._encoder = encoder
        self._index: VectorIndex | None = None
        self._reading = reading

    @classmethod
    def open(
        cls,
        store_dir: str | Path | None = None,
        settings: Settings | None = None,
        check_model: bool = False,
    ) -> Recommender:
        """Load the published generation of a store (default: settings.store), with the
        writes made through the API since (its journal) folded in.

        With check_model, refuse a store built with another model than settings.model:
        needed wherever new texts are embedded (drafts, writes); stored lists need no model.
        """
        settings = settings or Settings()
        path = Path(store_dir) if store_dir is not None else settings.store
        snapshot = store.load(
            path, model_id=model_id_of(settings.model, settings.backend) if check_model else None
        )
        snapshot = journal.fold(snapshot, journal.read_changes(path, snapshot.generation))
        return cls(snapshot, settings)

    @property
    def encoder(self) -> Encoder:
        """The store's encoder, loaded on first use (only drafts need it)."""
        if self._encoder is None:
            self._encoder = load_encoder(
                self.settings.model, self.settings.backend, self.settings.model_cache
            )
        return self._encoder

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = VectorIndex(self.snapshot.vectors, LIVE_INDEX)
        return self._index

    def row(self, url: str) -> int:
        """The stored row of an article URL (any form that canonicalises to it)."""
        canonical = canonical_url(url)
        row = self.snapshot.resolve(canonical)
        if row is None:
            raise ArticleNotFound(f"no stored article has the URL {canonical}")
        return row

    def canonical(self, url: str) -> str:
        return self.snapshot.articles[self.row(url)].url

    def entry(self, item: Item, query: Article) -> dict[str, Any]:
        """A related entry of `query`'s list: the item's short copy in seed key order, then
        `score` (what the list is ordered by), `similarity` (the cosine), `pinned` (pins
        only) and `reason`, why it is there (docs/ranking.md, "Scores and reasons")."""
        entry = self.snapshot.articles[item.row].entry()
        entry["score"] = item.score
        entry["similarity"] = item.similarity
        if item.step == PINNED:
            entry["pinned"] = True
        entry["reason"] = self.reason(item, query)
        return entry

    def reason(self, item: Item, query: Article) -> dict[str, Any]:
        """Why `item` is in `query`'s list: how it was chosen (pinned, similar, or the
        fallback step), the topics and category the two share, and the same story's
        other reports collapsed into it."""
        chosen = self.snapshot.articles[item.row]
        reason: dict[str, Any] = {"kind": "pinned" if item.step == PINNED else "similar"}
        if item.step > 0:
            reason["kind"], reason["step"] = "fallback", LADDER[item.step].name
        theirs = topics_of(query.fields)
        shared = [t for t in chosen.fields.get("topics") or [] if str(t).strip().lower() in theirs]
        if shared:
            reason["topics"] = shared
        category = category_of(chosen.fields)
        if category is not None and category == category_of(query.fields):
            reason["category"] = chosen.fields["category"]
        if item.same_story:
            reason["same_story"] = [self.snapshot.articles[r].url for r in item.same_story]
        return reason

    def rank_settings(self, limit: int | None = None, **filters: Any) -> RankSettings:
        limit = self.snapshot.settings.limit if limit is None else limit
        if not 1 <= limit <= self.settings.max_limit:
            raise InvalidInput(
                f"limit must be between 1 and {self.settings.max_limit}, not {limit}"
            )
        return self.snapshot.settings.with_options(limit=limit, **filters)

    def related_items(self, row: int, settings: RankSettings) -> list[Item]:
        """The list of a stored article: stored, or ranked live (filters, larger limits)."""
        built_with = self.snapshot.settings
        # The stored list answers when only the limit differs (and is no larger).
        if (
            settings.limit <= built_with.limit
            and replace(settings, limit=built_with.limit) == built_with
        ):
            return self.snapshot.related[row][: settings.limit]
        with self._reading():
            query = Query.for_row(self.snapshot.catalog, row, self.snapshot.articles[row])
            return self._rank(query, settings)

    def _search(self, query: Query) -> Search:
        def search(k: int) -> np.ndarray:
            return np.asarray(self.index.search(query.vector[None, :], k)[0][0], dtype=np.int64)

        return search

    def _rank(self, query: Query, settings: RankSettings) -> list[Item]:
        return rank(query, self.snapshot.catalog, self._search(query), settings).items

    def related(self, url: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """The related list of a stored article. Filters are RankSettings request filters."""
        row = self.row(url)
        items = self.related_items(row, self.rank_settings(limit, **filters))
        return [self.entry(item, self.snapshot.articles[row]) for item in items]

    def explain(
        self, url: str, limit: int | None = None, **filters: Any
    ) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """The related list of a stored article, each entry with the parts of its ordering
        value (`recs.rank.explain`): why the list is what it is."""
        row = self.row(url)
        settings = self.rank_settings(limit, **filters)
        items = self.related_items(row, settings)
        article = self.snapshot.articles[row]
        with self._reading():
            query = Query.for_row(self.snapshot.catalog, row, article)
            parts = explain(query, self.snapshot.catalog, self._search(query), settings, items)
        return [(self.entry(item, article), part) for item, part in zip(items, parts, strict=True)]

    def related_map(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every stored article's related list, by canonical URL (what `recs export` writes)."""
        settings = self.rank_settings(limit)
        return {
            article.url: [self.entry(item, article) for item in self.related_items(row, settings)]
            for row, article in enumerate(self.snapshot.articles)
        }

    def related_to_draft(
        self,
        fields: Mapping[str, Any],
        limit: int | None = None,
        encoder: Encoder | None = None,
        **filters: Any,
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """The related list of an article that is not stored (e.g. a draft being edited).

        Returns (canonical URL or None, entries). Needs the model: the draft is embedded.
        """
        read = self.settings.read_options  # the site's keys for pins and exclusions too
        article = article_from_request(fields, "draft", read, "https://draft.invalid/")
        url = None if article.url == "https://draft.invalid/" else article.url
        vector = (encoder or self.encoder).encode([article.text])[0]
        query = Query.for_article(article, vector)
        settings = self.rank_settings(limit, **filters)
        with self._reading():
            items = self._rank(query, settings)
        return url, [self.entry(item, article) for item in items]
