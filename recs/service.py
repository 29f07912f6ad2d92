"""What the HTTP service does, without HTTP: load, hot reload, answer, write.

One `Service` per server process. It holds the loaded store (a `Recommender` over a
snapshot) and replaces it, never mutates it: a request that started on the old snapshot
finishes on it while the next request sees the new one, so reloading drops nothing.

A background thread polls the store every `reload_interval` seconds: a new published
generation (from `recs build` or `recs regenerate`) is loaded whole; new journal entries
(writes through any server process) are folded into the loaded generation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recs import store
from recs.articles import article_from_request
from recs.backends import load_encoder
from recs.config import Settings
from recs.encoder import Encoder
from recs.errors import ArticleNotFound, RecsError, StoreNotFound
from recs.index import set_threads
from recs.journal import API_SOURCE, Change, SharedLock, append_changes, fold, read_changes
from recs.models import model_id_of
from recs.recommender import Recommender
from recs.store import Snapshot
from recs.urls import canonical_url

log = logging.getLogger("recs.service")


@dataclass
class Answer:
    """A serialised JSON answer and the ETag it is valid under."""

    body: bytes
    etag: str


@dataclass
class _State:
    recommender: Recommender
    cache: dict[tuple[int, int], bytes] = field(default_factory=dict)

    @property
    def snapshot(self) -> Snapshot:
        return self.recommender.snapshot


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Service:
    """The loaded store of one server process, kept current in the background."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self.model_id = (
            encoder.model_id
            if encoder is not None
            else model_id_of(settings.model, settings.backend)
        )
        self._encoder = encoder
        self._state: _State | None = None
        self._poll_lock = threading.Lock()
        # Folds write replaced articles' vectors in place; readers of vectors hold this.
        self._vectors = SharedLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.on_change: Callable[[], None] | None = None
        # A server's parallelism is its workers and concurrent requests. The searches of
        # one request or write are a handful of queries, for which FAISS's OpenMP threads
        # cost more in hand-overs than they save, the more so on a busy host: measured
        # here, 9 queries against 20,000 rows took 0.03 s on one thread, 0.5 s on two.
        # The same for the BLAS under numpy's products: one API write into 20,000 articles
        # took 50 ms of CPU with OpenBLAS's two threads and 27 ms with one, in the same
        # wall time.
        set_threads(1)
        threadpool_limits(limits=1, user_api="blas")

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def snapshot(self) -> Snapshot:
        if self._state is None:
            raise StoreNotFound("the store is still loading; try again in a moment")
        return self._state.snapshot

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(
                self.settings.model, self.settings.backend, self.settings.model_cache
            )
        return self._encoder

    def poll(self) -> bool:
        """Load a newer generation or fold new journal entries. True when anything changed."""
        with self._poll_lock:
            directory = self.settings.store
            state = self._state
            generation = store.current_generation(directory)
            if generation is None:
                raise StoreNotFound(
                    f"no store at {directory}: run `recs build CONTENT_DIR --store {directory}`"
                )
            if state is None or generation != state.snapshot.generation:
                snapshot = store.load(directory, model_id=self.model_id)
                snapshot = fold(snapshot, read_changes(directory, snapshot.generation))
            else:
                changes = read_changes(directory, generation, after=state.snapshot.revision)
                if not changes:
                    return False
                snapshot = fold(state.snapshot, changes, overwrite=self._vectors.exclusive)
            self._state = _State(Recommender(snapshot, self.settings, reading=self._vectors.shared))
            log.info("serving %s (%d articles)", snapshot.version, len(snapshot))
        if self.on_change is not None:
            self.on_change()
        return True

    def first_load(self) -> None:
        """Try to load the store once; on failure keep the reason and let polling retry.

        The app calls this before the server accepts connections, so with several
        workers no request reaches a worker that is still loading while another is ready.
        """
        try:
            self.poll()
            self.last_error = None
        except RecsError as error:
            log.warning("store not loaded yet: %s", error)
            self.last_error = str(error)

    def start(self) -> None:
        """Keep polling for new generations and writes in the background until stop()."""
        self._thread = threading.Thread(target=self._run, name="recs-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # A worker of `recs serve --workers N` is a child of uvicorn's supervisor. If the
        # supervisor is killed outright (SIGKILL, OOM), stop rather than serve on as an
        # orphan holding the port. A single-process server has no such parent.
        supervisor = multiprocessing.parent_process()
        while not self._stop.is_set():
            if supervisor is not None and not supervisor.is_alive():
                log.error("the supervising process is gone; this worker stops")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            try:
                self.poll()
                self.last_error = None
            except RecsError as error:
                # Keep serving what is loaded; say why the new store could not be used.
                if str(error) != self.last_error:
                    log.warning("store not (re)loaded: %s", error)
                self.last_error = str(error)
            self._wake.wait(self.settings.reload_interval)
            self._wake.clear()

    # --- reading ------------------------------------------------------------------------

    def _etag(self, snapshot: Snapshot, key: str) -> str:
        digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
        return f'"{snapshot.version}-{digest}"'

    def related(self, url: str, limit: int | None, filters: Mapping[str, Any], key: str) -> Answer:
        """The answer to GET /related. `key` identifies the request for the ETag."""
        state = self._state
        if state is None:
            raise StoreNotFound("the store is still loading; try again in a moment")
        recommender = state.recommender
        row = recommender.row(url)
        etag = self._etag(state.snapshot, key)
        if not filters:  # the common case: answered from cache after the first time
            cache_key = (row, state.snapshot.settings.limit if limit is None else limit)
            body = state.cache.get(cache_key)
            if body is not None:
                return Answer(body, etag)
        settings = recommender.rank_settings(limit, **filters)
        cache_key = (row, settings.limit)
        items = recommender.related_items(row, settings)
        article = state.snapshot.articles[row]
        body = _dumps(
            {"url": article.url, "related": [recommender.entry(i, article) for i in items]}
        )
        if not filters:
            state.cache[cache_key] = body
        return Answer(body, etag)

    def etag_for(self, key: str) -> str | None:
        state = self._state
        return None if state is None else self._etag(state.snapshot, key)

    def draft(
        self, fields: Mapping[str, Any], limit: int | None, filters: Mapping[str, Any]
    ) -> bytes:
        """The answer to POST /related: the related list of an article that is not stored."""
        state = self._state
        if state is None:
            raise StoreNotFound("the store is still loading; try again in a moment")
        url, entries = state.recommender.related_to_draft(fields, limit, self.encoder, **filters)
        return _dumps({"url": url, "related": entries})

    # --- writing ------------------------------------------------------------------------

    def upsert(self, fields: Mapping[str, Any]) -> tuple[str, bool, int]:
        """Store one article (insert or replace). Returns (url, created, revision)."""
        article = article_from_request(fields, API_SOURCE, self.settings.read_options)
        vector = None
        with self._poll_lock:  # no fold meanwhile: the snapshot's rows are its articles'
            snapshot = self.snapshot
            row = snapshot.row_of.get(article.url)
            if row is not None and snapshot.articles[row].text_hash == article.text_hash:
                vector = snapshot.vectors[row].copy()  # the same text: no need for the model
        created = row is None
        if vector is None:
            vector = self.encoder.encode([article.text])[0]
        change = Change(0, "upsert", article.url, article, np.asarray(vector))
        revision = self._append([change])
        return article.url, created, revision

    def delete(self, url: str) -> int:
        """Remove one article. Returns the revision; unknown URLs are ArticleNotFound."""
        canonical = canonical_url(url)
        snapshot = self.snapshot
        row = snapshot.resolve(canonical)
        if row is None and self.poll():  # written through another worker a moment ago?
            snapshot = self.snapshot
            row = snapshot.resolve(canonical)
        if row is None:
            raise ArticleNotFound(f"no stored article has the URL {canonical}")
        return self._append([Change(0, "delete", snapshot.articles[row].url)])

    def _append(self, changes: list[Change]) -> int:
        directory = self.settings.store
        with store.locked(directory, wait=max(self.settings.lock_wait, 5.0)):
            generation = store.current_generation(directory)
            if generation is None:
                raise StoreNotFound(f"no store at {directory}")
            revision = append_changes(directory, generation, changes)
        # This process serves its own write at once; the others within reload_interval.
        self.poll()
        return revision
