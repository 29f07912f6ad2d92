"""Undo: make an earlier generation of a store current again (`recs rollback`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recs import store
from recs.errors import InvalidInput, StoreIncompatible, StoreNotFound
from recs.generation import Snapshot
from recs.journal import API_SOURCE, Change, clear_changes, fold, read_changes
from recs.options import KEEP


def rollback(
    store_dir: Path,
    target: str | None = None,
    *,
    keep: int = KEEP,
    lock_wait: float = 0.0,
) -> Snapshot:
    """Make an earlier generation current again: publish a copy of `target` (default: the
    generation before the current one) as the next generation, so servers move to it as
    to any build and the rollback itself can be rolled back.

    Articles written through the API stay as they are now (they are data, not the output
    of a build): those the current generation holds replace or join `target`'s, and API
    articles since deleted leave it. Returns the published snapshot.
    """
    with store.locked(store_dir, wait=lock_wait):
        kept = store.generations(store_dir)
        current = next((g.name for g in kept if g.current), None)
        if current is None:
            raise StoreNotFound(f"no store at {store_dir}: run `recs build CONTENT_DIR` first")
        names = [g.name for g in kept]
        if target is None:
            earlier = [name for name in names if name < current]
            if not earlier:
                raise InvalidInput(
                    f"the store {store_dir} keeps no generation before {current}; "
                    "`recs generations` lists those kept"
                )
            target = earlier[-1]
        if target == current:
            raise InvalidInput(f"{target} is already the current generation")
        if target not in names:
            raise InvalidInput(
                f"the store {store_dir} keeps no generation {target!r}; kept: {', '.join(names)}"
            )
        now = store.load(store_dir)
        now = fold(now, read_changes(store_dir, now.generation))
        then = store.load(store_dir, generation=target)
        changes = _api_changes(then, now)
        snapshot = then
        if changes:
            if then.model_id != now.model_id:
                raise StoreIncompatible(
                    f"{target} was built with model {then.model_id} and the articles written "
                    f"through the API since are embedded with {now.model_id}: they cannot be "
                    "carried back. Rebuild instead (`recs build CONTENT_DIR --rebuild`)"
                )
            snapshot = fold(then, changes)
            snapshot.revision = 0
            snapshot.digest = ""  # not what any folder read gives: the next build ranks
        snapshot.made = f"rollback to {target}"
        snapshot.journal_seq = max(now.journal_seq, now.revision)
        store.publish(store_dir, snapshot, base=then, keep=keep)
        clear_changes(store_dir, snapshot.journal_seq)
    return snapshot


def _api_changes(then: Snapshot, now: Snapshot) -> list[Change]:
    """What turns `then`'s articles written through the API into `now`'s: upserts of those
    added or changed since, deletions of those gone since."""
    changes: list[Change] = []
    for row, article in enumerate(now.articles):
        if article.source != API_SOURCE:
            continue
        was = then.row_of.get(article.url)
        same = was is not None and then.articles[was] == article
        if same and np.array_equal(then.vectors[was], now.vectors[row]):
            continue
        changes.append(Change(0, "upsert", article.url, article, now.vectors[row]))
    for article in then.articles:
        if article.source == API_SOURCE and article.url not in now.row_of:
            changes.append(Change(0, "delete", article.url))
    return changes
