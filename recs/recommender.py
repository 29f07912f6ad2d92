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

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from recs import store
from recs.articles import ArticleError, article_from_data
from recs.backends import load_encoder
from recs.config import Settings
from recs.encoder import Encoder
from recs.errors import ArticleNotFound, InvalidInput
from recs.frontmatter import check_shape
from recs.index import VectorIndex
from recs.models import model_id_of
from recs.rank import Query, RankSettings, rank
from recs.store import Snapshot
from recs.urls import canonical_url


class Recommender:
    """Related lists from one loaded generation of a store."""

    def __init__(
        self, snapshot: Snapshot, settings: Settings | None = None, encoder: Encoder | None = None
    ) -> None:
        self.snapshot = snapshot
        self.settings = settings or Settings()
        self._encoder = encoder
        self._index: VectorIndex | None = None

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
        from recs.pipeline import fold

        settings = settings or Settings()
        path = Path(store_dir) if store_dir is not None else settings.store
        snapshot = store.load(
            path, model_id=model_id_of(settings.model, settings.backend) if check_model else None
        )
        snapshot = fold(snapshot, store.read_changes(path, snapshot.generation))
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
            self._index = VectorIndex(self.snapshot.vectors)
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

    def entry(self, row: int, score: float) -> dict[str, Any]:
        """A related entry: the article's short copy in seed key order, plus score."""
        entry = self.snapshot.articles[row].entry()
        entry["score"] = score
        return entry

    def rank_settings(self, limit: int | None = None, **filters: Any) -> RankSettings:
        limit = self.snapshot.settings.limit if limit is None else limit
        if not 1 <= limit <= self.settings.max_limit:
            raise InvalidInput(
                f"limit must be between 1 and {self.settings.max_limit}, not {limit}"
            )
        return self.snapshot.settings.with_options(limit=limit, **filters)

    def related_rows(self, row: int, settings: RankSettings) -> list[tuple[int, float]]:
        """(row, score) pairs for a stored article."""
        built_with = self.snapshot.settings
        # The stored list answers when only the limit differs (and is no larger).
        if (
            settings.limit <= built_with.limit
            and replace(settings, limit=built_with.limit) == built_with
        ):
            return self.snapshot.related[row][: settings.limit]
        article = self.snapshot.articles[row]
        vector = self.snapshot.vectors[row]
        return self._rank(Query.for_article(article, vector), settings)

    def _rank(self, query: Query, settings: RankSettings) -> list[tuple[int, float]]:
        def search(k: int) -> np.ndarray:
            return self.index.search(query.vector[None, :], k)[0][0]

        return rank(query, self.snapshot.catalog, search, settings).items

    def related(self, url: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """The related list of a stored article. Filters are RankSettings request filters."""
        row = self.row(url)
        pairs = self.related_rows(row, self.rank_settings(limit, **filters))
        return [self.entry(r, s) for r, s in pairs]

    def related_map(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every stored article's related list, by canonical URL (what `recs export` writes)."""
        settings = self.rank_settings(limit)
        return {
            article.url: [self.entry(r, s) for r, s in self.related_rows(row, settings)]
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
        try:
            check_shape(dict(fields))  # depth, size, text that has no UTF-8 form
            article = article_from_data(
                dict(fields), "draft", fallback_url="https://draft.invalid/"
            )
        except ArticleError as error:
            raise InvalidInput(f"invalid article: {error.reason}") from None
        url = None if article.url == "https://draft.invalid/" else article.url
        vector = (encoder or self.encoder).encode([article.text])[0]
        query = Query.for_article(article, vector)
        pairs = self._rank(query, self.rank_settings(limit, **filters))
        return url, [self.entry(r, s) for r, s in pairs]
