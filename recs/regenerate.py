"""Regenerate: update the store as `recs build` does, then rewrite every file's related block.

One run:
1. takes the content folder's lock (a second regenerate or watch on it fails at once),
   and removes temp files a killed run left behind;
2. runs the build (recs.pipeline.build): only new or changed articles are embedded, only
   the lists a change can reach are recomputed, and a new generation is published when
   anything changed;
3. renders each article file's `related:` block from the published lists and rewrites
   the files whose block differs (recs.rewrite: one temp file per file, fsync, rename).

`mode="dry-run"` and `mode="check"` write nothing at all: neither files nor the store
(the build runs in memory, embedding what changed, and is thrown away). A dry run returns
unified diffs; a check returns the stale files.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from recs import filecache
from recs.corpus import JSONL_SUFFIX, Corpus, read_corpus
from recs.encoder import Encoder
from recs.engine import LOCAL, Engine
from recs.errors import InvalidInput, Problem, StoreLocked
from recs.fsio import clean_temp_files, flocked, fsync_dir, write_atomic
from recs.journal import API_SOURCE
from recs.options import BuildOptions, ReadOptions
from recs.pipeline import BuildReport, build
from recs.progress import Progress, no_progress
from recs.rank_settings import RankSettings
from recs.rewrite import RewriteError, render_entry, rewrite_and_load
from recs.store import Snapshot

Mode = Literal["write", "dry-run", "check"]
MODES: tuple[Mode, ...] = ("write", "dry-run", "check")


@contextlib.contextmanager
def content_locked(root: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on the content folder itself (flock on the directory).

    Nothing is written into the folder for it; the lock goes with the process.
    """
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise InvalidInput(f"cannot open the content folder {root}: {error.strerror}") from None
    busy = StoreLocked(
        f"the content folder {root} is being rewritten by another recs regenerate or watch; "
        "wait for it to finish (or stop `recs watch`) and try again"
    )
    try:
        with flocked(fd, wait, lambda: busy):
            yield
    finally:
        os.close(fd)


@dataclass
class RegenerateReport:
    """What a regeneration did (or, in dry-run and check mode, would do)."""

    mode: Mode
    build: BuildReport
    changed: list[str] = field(default_factory=list)  # sources, sorted
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # pins and exclusions of unknown URLs
    diffs: list[str] = field(default_factory=list)  # dry run: one unified diff per file
    cleaned: int = 0  # temp files of killed runs removed
    unwritten: int = 0  # files that needed a new block but could not be written
    hashes: dict[str, str] = field(default_factory=dict)  # source -> sha256 of bytes left

    @property
    def files(self) -> int:
        return len(self.changed) + len(self.unchanged) + len({p.path for p in self.skipped})

    def summary(self) -> str:
        skipped = len({p.path for p in self.skipped})
        verb = {"write": "changed", "dry-run": "would change", "check": "stale"}[self.mode]
        text = (
            f"{self.files} files: {len(self.changed)} {verb}, {len(self.unchanged)} unchanged, "
            f"{skipped} skipped; {self.build.recomputed} related lists computed"
        )
        if self.mode != "write":
            text += "; nothing written (store and files unchanged)"
        elif self.build.published:
            text += f"; store published {self.build.generation}"
        else:
            text += f"; store unchanged ({self.build.generation})"
        return text + f" in {self.build.seconds:.1f}s"


def unknown_references(snapshot: Snapshot, read: ReadOptions) -> list[str]:
    """One notice per pinned or excluded URL that is not an article of the store."""
    notices = []
    for article in snapshot.articles:
        keyed = ((read.pinned_key, article.pinned), (read.excluded_key, article.excluded))
        for key, urls in keyed:
            for url in urls:
                if url in snapshot.row_of:
                    continue
                row = snapshot.resolve(url)
                if row is not None:
                    target = snapshot.articles[row].url
                    notices.append(
                        f"{article.location}: {key} names {url}, the originalUrl of {target}; "
                        f"write {target} instead"
                    )
                else:
                    notices.append(
                        f"{article.location}: {key} names {url}, which is not an article of the "
                        "corpus; it has no effect"
                    )
    return notices


def _diff(source: str, old: bytes, new: bytes) -> str:
    def lines(data: bytes) -> list[str]:
        text = data.decode("utf-8", errors="replace")
        parts = text.splitlines(keepends=True)
        if parts and not parts[-1].endswith(("\n", "\r")):
            parts[-1] += "\n\\ No newline at end of file\n"
        return parts

    return "".join(difflib.unified_diff(lines(old), lines(new), f"a/{source}", f"b/{source}"))


def regenerate(
    content_dir: Path,
    store_dir: Path,
    encoder: Encoder,
    settings: RankSettings,
    options: BuildOptions = BuildOptions(),
    read: ReadOptions = ReadOptions(),
    *,
    mode: Mode = "write",
    progress: Progress = no_progress,
    engine: Engine = LOCAL,
    lock_held: bool = False,
    outside_links: bool = False,
) -> RegenerateReport:
    """Update the store and the `related:` block of every article file under content_dir.

    `lock_held`: the caller holds the content folder's lock already (`recs watch` holds it
    for as long as it watches). `outside_links`: also write files reached through a symlink
    that leads outside the content folder (otherwise each is skipped, saying so).
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    content_dir = Path(content_dir)
    if not content_dir.is_dir():
        raise InvalidInput(f"content folder {content_dir} does not exist or is not a folder")
    writing = mode == "write"
    take_lock = writing and not lock_held
    options = replace(options, publish=writing, made="regenerate")
    with content_locked(content_dir, options.lock_wait) if take_lock else contextlib.nullcontext():
        cleaned = clean_temp_files(content_dir) if writing else []
        signature = filecache.signature(read)
        known = filecache.load(store_dir, signature)
        corpus = read_corpus(content_dir, read, known=filecache.for_reading(known))
        snapshot, built = build(
            content_dir,
            store_dir,
            encoder,
            settings,
            options,
            read,
            progress=progress,
            corpus=corpus,
            engine=engine,
            parsed_with=known,
        )
        report = RegenerateReport(mode=mode, build=built, cleaned=len(cleaned))
        report.skipped = list(built.problems)
        report.notices = built.notices + unknown_references(snapshot, read)
        parsed = _rewrite_files(
            content_dir, snapshot, corpus, known, report, progress, outside_links
        )
        if writing:
            filecache.save(store_dir, signature, known, parsed)
    return report


class _Entries:
    """Each related article's entry, rendered text and key, made once per run."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.entries: dict[int, dict[str, Any]] = {}
        self.texts: dict[int, str] = {}
        self.keys: dict[int, str] = {}

    def entry(self, row: int) -> dict[str, Any]:
        if row not in self.entries:
            self.entries[row] = self.snapshot.articles[row].entry()
        return self.entries[row]

    def text(self, row: int) -> str:
        if row not in self.texts:
            self.texts[row] = render_entry(self.entry(row))
        return self.texts[row]

    def block_key(self, row: int) -> str:
        """Names the entries of a row's list: equal keys, equal blocks (for the same file)."""
        parts = []
        for r in (item.row for item in self.snapshot.related[row]):
            if r not in self.keys:
                data = json.dumps(self.entry(r), sort_keys=True, ensure_ascii=False)
                self.keys[r] = hashlib.sha256(data.encode()).hexdigest()[:32]
            parts.append(self.keys[r])
        return hashlib.sha256(" ".join(parts).encode()).hexdigest()[:32]


def _rewrite_files(
    root: Path,
    snapshot: Snapshot,
    corpus: Corpus,
    known: filecache.Entries,
    report: RegenerateReport,
    progress: Progress,
    outside_links: bool = False,
) -> dict[str, filecache.Cached]:
    """Rewrite (or plan) every stale block; returns each file as it is left (for the cache).

    A file whose bytes and whose list's entries are what the last run left is unchanged
    without being read again. A file reached through a symlink that leads outside `root`
    is not written unless `outside_links` (a content folder is not a licence to write
    wherever its links point).
    """
    inside = os.path.realpath(root)
    parsed: dict[str, filecache.Cached] = {}
    made = _Entries(snapshot)
    read = {a.source: a for a in corpus.articles}
    skipped_sources = {p.path for p in report.skipped}
    jsonl: set[str] = set()
    planned: list[tuple[str, Path, bytes, bytes]] = []
    rows = [
        row
        for row, article in enumerate(snapshot.articles)
        if article.source != API_SOURCE and article.source not in skipped_sources
    ]
    progress("checking files", 0, len(rows))
    for done, row in enumerate(rows, start=1):
        article = snapshot.articles[row]
        source = article.source
        if source.lower().endswith(JSONL_SUFFIX):
            jsonl.add(source)
            continue
        path = root / source
        if not outside_links:
            target = os.path.realpath(path)
            if os.path.commonpath([inside, target]) != inside:
                reason = (
                    f"a symlink to {target}, outside the content folder: not rewritten "
                    "(--allow-outside-links writes through it)"
                )
                report.skipped.append(Problem(source, None, reason))
                continue
        block = made.block_key(row)
        cached = known.get(source)
        sha = corpus.raw_hashes.get(source)
        if cached is not None and cached.sha == sha and cached.block == block and source in read:
            report.unchanged.append(source)
            report.hashes[source] = cached.sha
            stat = corpus.stats.get(source)
            parsed[source] = filecache.Cached(cached.sha, read[source], block, stat)
            continue
        try:
            raw = path.read_bytes()
            rows_ = [item.row for item in snapshot.related[row]]
            entries = [made.entry(r) for r in rows_]
            new, data = rewrite_and_load(raw, entries, rendered=[made.text(r) for r in rows_])
        except OSError as error:
            report.skipped.append(Problem(source, None, f"cannot read: {error.strerror}"))
            continue
        except RewriteError as error:
            report.skipped.append(Problem(source, None, error.reason))
            continue
        if hashlib.sha256(raw).hexdigest() != sha or sha is None or source not in read:
            report.skipped.append(Problem(source, None, "changed while regenerating; run again"))
            continue
        if new == raw:
            report.unchanged.append(source)
            report.hashes[source] = sha
            parsed[source] = filecache.Cached(sha, read[source], block, corpus.stats.get(source))
        else:
            planned.append((source, path, raw, new))
            if data is not None:
                # The rewrite was checked to change nothing but the related list, which no
                # Article holds: the article read is the article the new bytes give.
                parsed[source] = filecache.Cached(sha, read[source], block)
        if done % 500 == 0:
            progress("checking files", done, len(rows))
    progress("checking files", len(rows), len(rows))
    for source in sorted(jsonl):
        reason = "a .jsonl file: related lists are not written into it (see `recs export`)"
        report.skipped.append(Problem(source, None, reason))

    directories: set[Path] = set()
    progress("writing files", 0, len(planned))
    for done, (source, path, raw, new) in enumerate(planned, start=1):
        if report.mode == "dry-run":
            report.diffs.append(_diff(source, raw, new))
        elif report.mode == "write":
            try:
                if path.read_bytes() != raw:  # edited since it was read: leave it for next time
                    report.skipped.append(
                        Problem(source, None, "changed while regenerating; run again")
                    )
                    parsed.pop(source, None)
                    continue
                write_atomic(path, new, sync_dir=False)
            except OSError as error:
                reason = f"cannot write: {error.strerror or error}; the file is unchanged"
                report.skipped.append(Problem(source, None, reason))
                report.unwritten += 1
                parsed.pop(source, None)
                continue
            directories.add(Path(os.path.realpath(path)).parent)
            report.hashes[source] = hashlib.sha256(new).hexdigest()
            if source in parsed:
                parsed[source] = parsed[source]._replace(sha=report.hashes[source])
        report.changed.append(source)
        progress("writing files", done, len(planned))
    for directory in sorted(directories):
        fsync_dir(directory)
    report.changed.sort()
    report.unchanged.sort()
    report.skipped.sort(key=lambda p: (p.path, p.line or 0))
    return parsed
