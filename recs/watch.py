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
from pathlib import Path

from recs.articles import ARTICLE_SUFFIXES, JSONL_SUFFIX, TEMP_PREFIX
from recs.encoder import Encoder
from recs.rank import RankSettings
from recs.regenerate import RegenerateReport, regenerate

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
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = 200,
    pinned_key: str = "relatedPinned",
    excluded_key: str = "relatedExclude",
    max_file_bytes: int | None = None,
) -> None:
    """Regenerate now, then after every change to an article file until `stop` is set.

    `on_round(report, changed)` is called after each round with the sources whose change
    started it (empty for the first round).
    """
    import watchfiles

    root = Path(content_dir).resolve()

    def run() -> RegenerateReport:
        return regenerate(
            root,
            store_dir,
            encoder,
            settings,
            lock_wait=10.0,
            pinned_key=pinned_key,
            excluded_key=excluded_key,
            max_file_bytes=max_file_bytes,
        )

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
        report = run()
        known.update(current)
        known.update({root / s: h for s, h in report.hashes.items()})
        on_round(report, [p.relative_to(root).as_posix() for p in fresh])
