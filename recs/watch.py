"""Watch a content folder: regenerate when article files change, for site dev servers.

Each round is one `regenerate` (incremental: only changed articles are embedded, only the
lists they reach are recomputed, only files whose block differs are written). A round
records the SHA-256 of every file as it left it; a file event whose file still has that
hash is recs' own write (or a touch that changed nothing) and starts no round.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from recs.corpus import ARTICLE_SUFFIXES, JSONL_SUFFIX
from recs.encoder import Encoder
from recs.errors import RecsError
from recs.fsio import TEMP_PREFIX
from recs.options import BuildOptions, ReadOptions
from recs.rank_settings import RankSettings
from recs.regenerate import RegenerateReport, content_locked, regenerate

WATCHED_SUFFIXES = ARTICLE_SUFFIXES | {JSONL_SUFFIX}


def wanted(root: Path, path: Path) -> bool:
    """Whether a change to `path` can matter: an article file, not hidden, not a temp file."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if not parts or any(p.startswith(".") for p in parts):  # hidden, and TEMP_PREFIX files
        return False
    name = parts[-1]
    return (
        not name.startswith(TEMP_PREFIX)
        and not name.startswith("_index.")
        and Path(name).suffix.lower() in WATCHED_SUFFIXES
    )


def _hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def watch(
    content_dir: Path,
    store_dir: Path,
    encoder: Encoder,
    settings: RankSettings,
    on_round: Callable[[RegenerateReport, list[str]], None],
    options: BuildOptions = BuildOptions(),
    read: ReadOptions = ReadOptions(),
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = 200,
    on_error: Callable[[RecsError], None] | None = None,
) -> None:
    """Regenerate now, then after every change to an article file until `stop` is set.

    The content folder's lock is held for the whole watch: a second watch, or a
    regenerate, on the same folder is refused at once (the README promises it) instead of
    slipping in between two rounds. `on_round(report, changed)` is called after each
    round with the sources whose change started it (empty for the first round); a round
    that fails after the first (a refused shrink, a busy store) goes to `on_error` and the
    watch goes on, since the next edit may mend it.
    """
    import watchfiles

    root = Path(content_dir).resolve()
    options = replace(options, lock_wait=max(options.lock_wait, 10.0))

    def run() -> RegenerateReport:
        return regenerate(root, store_dir, encoder, settings, options, read, lock_held=True)

    with content_locked(root):
        report = run()
        known: dict[Path, str | None] = {root / s: h for s, h in report.hashes.items()}
        on_round(report, [])
        for changes in watchfiles.watch(
            root,
            watch_filter=lambda _change, path: wanted(root, Path(path)),
            debounce=debounce_ms,
            step=50,
            stop_event=stop,
            yield_on_timeout=False,
        ):
            paths = sorted({Path(path) for _, path in changes})
            current = {path: _hash(path) for path in paths}
            fresh = [path for path in paths if current[path] != known.get(path, "unknown")]
            if not fresh:
                continue  # our own writes, or touches that changed no byte
            try:
                report = run()
            except RecsError as error:
                if on_error is None:
                    raise
                on_error(error)
                continue
            known.update(current)
            known.update({root / s: h for s, h in report.hashes.items()})
            on_round(report, [p.relative_to(root).as_posix() for p in fresh])
