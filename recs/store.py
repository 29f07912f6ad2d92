"""The built store on disk: SQLite metadata and vectors per generation, atomic publish.

Layout of a store directory (see embeddings/README.md):

    CURRENT              name of the published generation, e.g. "gen-000007"
    gen-000007/          one immutable generation
        meta.sqlite      info, articles, aliases, vectors (the embedding cache), related lists
    .lock                held by the one process allowed to write the store
    .tmp-*               a generation being written (removed by the next writer if left behind)

A generation is written completely in a temporary directory, flushed to disk, renamed into
place, and only then named in CURRENT (itself replaced atomically). A process killed at any
moment therefore leaves CURRENT naming a complete generation. Readers open generations
read-only and never see a partial one. The last `keep` generations (RECS_KEEP_GENERATIONS,
default KEEP) stay on disk: a reader that has just read CURRENT can still open the
generation it names, and `recs rollback` can make an earlier one current again (it
publishes a copy of it as the next generation, so history only grows).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recs import generation as generation_file
from recs.errors import StoreIncompatible, StoreLocked, StoreNotFound, StoreWriteError
from recs.fsio import flocked, fsync_dir
from recs.generation import DB, Snapshot
from recs.options import KEEP, MIN_KEEP
from recs.records import Known

CURRENT = "CURRENT"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"
GEN_PREFIX = "gen-"

__all__ = ["DB", "Snapshot"]  # part of the store's face: a store is made of generations


@contextlib.contextmanager
def locked(store_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the store's write lock; after `wait` seconds without it, raise StoreLocked."""
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        handle = open(store_dir / LOCK, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        raise StoreWriteError(_write_message(store_dir, error)) from None

    def busy() -> StoreLocked:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        return StoreLocked(
            f"the store {store_dir} is locked by {holder}: another recs build, "
            "regenerate or write is running; wait for it to finish and try again"
        )

    try:
        with flocked(handle.fileno(), wait, busy):
            with contextlib.suppress(OSError):  # who holds it is a courtesy; a full disk says no
                handle.seek(0)
                handle.truncate()
                handle.write(f"recs pid {os.getpid()}")
                handle.flush()
            yield
    finally:
        with contextlib.suppress(OSError):
            handle.close()


def _write_message(store_dir: Path, error: OSError | sqlite3.Error) -> str:
    if isinstance(error, sqlite3.Error):  # SQLite does its own I/O and says it its own way
        code = getattr(error, "sqlite_errorcode", None)
        reason = str(error)
        if code == sqlite3.SQLITE_FULL:
            reason = "the disk is full"
        elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            reason = "the location is read-only or not writable"
    elif error.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "the location is read-only or not writable"
    else:
        reason = os.strerror(error.errno) if error.errno else str(error)
    return (
        f"cannot write the store {store_dir}: {reason}; the previous store is unchanged. "
        "Free space or choose a writable --store (RECS_STORE)"
    )


# --- reading ----------------------------------------------------------------------------


def current_generation(store_dir: Path) -> str | None:
    """The published generation's name, or None when the store has none."""
    try:
        name = (store_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreNotFound(f"cannot read the store {store_dir}: {error.strerror}") from None
    if not name.startswith(GEN_PREFIX) or "/" in name:
        raise StoreIncompatible(
            f"{store_dir / CURRENT} names {name!r}, not a generation; rebuild with `recs build`"
        )
    return name


def exists(store_dir: Path) -> bool:
    return current_generation(store_dir) is not None


def load(
    store_dir: Path,
    model_id: str | None = None,
    known: Known | None = None,
    generation: str | None = None,
) -> Snapshot:
    """Load the published generation (or `generation`, one still kept). With model_id,
    refuse a store of another model.

    `known`: articles already in memory, by URL, each with its fields as `fields_text`
    gives them. A stored article whose row holds those same values is that Article
    (its fields are not parsed again); any other is read from its row.
    """
    for _attempt in range(5):
        name = generation or current_generation(store_dir)
        if name is None:
            raise StoreNotFound(
                f"no store at {store_dir}: run `recs build CONTENT_DIR --store {store_dir}` first"
            )
        path = store_dir / name / DB
        if path.is_file():
            break
        if generation is not None:
            raise StoreNotFound(
                f"the store {store_dir} has no generation {generation}; "
                "`recs generations` lists those kept"
            )
        time.sleep(0.05)  # CURRENT moved on and this generation was collected: read it again
    else:
        raise StoreNotFound(f"the store {store_dir} names {name} but it is missing; rebuild")
    try:
        snapshot = generation_file.read(path, name, known or {})
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as error:
        # SQLite's own damage, or a value that is not what recs writes (JSON, a list, a key).
        raise StoreIncompatible(
            f"the store {store_dir} ({name}) cannot be read ({error}); rebuild it with `recs build`"
        ) from None
    if model_id is not None:
        check_model(store_dir, snapshot.model_id, model_id)
    return snapshot


def check_model(store_dir: Path, built_with: str, model_id: str) -> None:
    """Refuse a store built with another model, saying how to rebuild."""
    if built_with != model_id:
        raise StoreIncompatible(
            f"the store {store_dir} was built with model {built_with}, not {model_id}: "
            f"rebuild it with `recs build CONTENT_DIR --store {store_dir} --rebuild`, or use the "
            "model it was built with (--model / RECS_MODEL)"
        )


# --- writing ----------------------------------------------------------------------------


def _generations(store_dir: Path) -> list[str]:
    return sorted(
        p.name for p in store_dir.iterdir() if p.is_dir() and p.name.startswith(GEN_PREFIX)
    )


def clean_leftovers(store_dir: Path) -> int:
    """Remove temporary directories of writers that died. Call with the lock held."""
    removed = 0
    for path in store_dir.glob(TMP_PREFIX + "*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def publish(
    store_dir: Path, snapshot: Snapshot, base: Snapshot | None = None, keep: int = KEEP
) -> str:
    """Write `snapshot` as the next generation and make it current. Call with the lock held.

    `base`, the generation `snapshot` was built from as loaded, lets the write copy its file
    and replace only the rows that differ. Returns the new generation's name. When the disk
    fails (full or read-only: an OSError, or SQLite's own error) the previous generation
    stays current and StoreWriteError says so. Generations but the newest `keep` are removed.
    """
    if keep < MIN_KEEP:
        raise ValueError(f"keep must be at least {MIN_KEEP}, not {keep}")
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        clean_leftovers(store_dir)
        existing = _generations(store_dir)
        number = int(existing[-1][len(GEN_PREFIX) :]) + 1 if existing else 1
        name = f"{GEN_PREFIX}{number:06d}"
        snapshot.generation = name
        snapshot.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        temp = store_dir / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        updated = False
        if base is not None and generation_file.updatable(base, snapshot):
            source = store_dir / base.generation / DB
            updated = source.is_file() and generation_file.update(source, temp / DB, base, snapshot)
        if not updated:
            (temp / DB).unlink(missing_ok=True)
            generation_file.write(temp / DB, snapshot)
        fsync_dir(temp)
        os.replace(temp, store_dir / name)
        pointer = store_dir / f"{TMP_PREFIX}{CURRENT}-{uuid.uuid4().hex[:8]}"
        with open(pointer, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, store_dir / CURRENT)
    except (OSError, sqlite3.Error) as error:
        with contextlib.suppress(OSError):
            clean_leftovers(store_dir)
        raise StoreWriteError(_write_message(store_dir, error)) from None
    try:
        fsync_dir(store_dir)
    except OSError as error:
        # CURRENT already names the new generation: say so rather than "unchanged".
        raise StoreWriteError(
            f"published {name} in {store_dir}, but flushing the directory failed "
            f"({os.strerror(error.errno) if error.errno else error}); after a power loss the "
            "previous generation may be current again. Check the disk, then build again"
        ) from None
    for old in _generations(store_dir)[:-keep]:
        shutil.rmtree(store_dir / old, ignore_errors=True)
    return name


@dataclass(frozen=True)
class Generation:
    """One kept generation, as `recs generations` lists it."""

    name: str
    created: str
    articles: int
    made: str
    current: bool


def generations(store_dir: Path) -> list[Generation]:
    """The generations kept on disk, oldest first, read from their info tables only."""
    if not store_dir.is_dir():
        raise StoreNotFound(f"no store at {store_dir}: run `recs build CONTENT_DIR` first")
    current = current_generation(store_dir)
    found = []
    for name in _generations(store_dir):
        try:
            info = generation_file.read_info(store_dir / name / DB)
        except sqlite3.DatabaseError:
            continue  # removed while listing, or damaged: not a generation to roll back to
        count = int(info.get("article_count", "0") or 0)
        made = info.get("made") or "build"  # generations from before `made` was recorded
        found.append(Generation(name, info.get("created", ""), count, made, name == current))
    return found


def store_info(store_dir: Path) -> dict[str, Any]:
    """The info table of the published generation, without loading articles or vectors."""
    name = current_generation(store_dir)
    if name is None:
        raise StoreNotFound(f"no store at {store_dir}: run `recs build CONTENT_DIR` first")
    try:
        info: dict[str, Any] = generation_file.read_info(store_dir / name / DB)
    except sqlite3.DatabaseError as error:
        raise StoreIncompatible(
            f"the store {store_dir} cannot be read ({error}); rebuild it"
        ) from None
    info["generation"] = name
    return info
