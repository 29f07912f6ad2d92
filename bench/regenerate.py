"""Benchmark: incremental vs full `recs regenerate` on a 10,000-article corpus.

The corpus is ../shared/data/huffpost.jsonl written as article files (one per row) in a
temporary folder. A full regeneration starts from an empty store; an incremental one runs
after one article's excerpt was edited. Reported: medians over the runs, and the ratio
incremental / full (both measured in this run, on this machine).

    .venv/bin/python -m bench.regenerate                 # hashing encoder (no model)
    .venv/bin/python -m bench.regenerate --model default # the bundled model too
    .venv/bin/python -m bench.regenerate --rows 2000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recs.rewrite import quote

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "huffpost.jsonl"


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "other"


def article_file(row: dict[str, Any]) -> str:
    """One huffpost row as an article file laid out like the seed."""
    label = row.get("label") or "news"
    lines = [
        "---",
        f"category: {quote(label.lower())}",
        f"title: {quote(row['title'])}",
        f"excerpt: {quote(row.get('excerpt') or '')}",
        f"publishedDateTime: {row['date']}T00:00:00Z",
        f"webUrl: {quote(row['url'])}",
        "type: article",
        "",
        "provider:",
        f"  name: {quote(row.get('provider') or 'HuffPost')}",
        "  domain: huffpost.com",
        "",
        "topics:",
        f"  - {quote(label)}",
        "---",
        "",
    ]
    return "\n".join(lines)


def read_rows(limit: int | None = None, path: Path = DATA) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows[:limit] if limit is not None else rows


def write_corpus(rows: Iterable[dict[str, Any]], root: Path) -> list[Path]:
    """Write one article file per row under root/<label>/<id>.md; returns the paths."""
    paths = []
    for row in rows:
        path = root / slug(row.get("label") or "news") / f"{row['id']}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article_file(row), encoding="utf-8")
        paths.append(path)
    return paths


def edit(path: Path, number: int) -> None:
    """Change one article's excerpt (a new text to embed)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('excerpt: "', f'excerpt: "Update {number}: ', 1), encoding="utf-8")


def main() -> None:
    from recs.backends import load_encoder
    from recs.encoder import HashingEncoder
    from recs.rank_settings import RankSettings
    from recs.regenerate import regenerate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="full regenerations (median)")
    parser.add_argument("--edits", type=int, default=5, help="incremental runs (median)")
    parser.add_argument("--model", choices=["hashing", "default"], default="hashing")
    args = parser.parse_args()

    encoder = HashingEncoder() if args.model == "hashing" else load_encoder()
    settings = RankSettings()
    rows = read_rows(args.rows)
    work = Path(tempfile.mkdtemp(prefix="recs-bench-"))
    try:
        content = work / "content"
        paths = write_corpus(rows, content)
        pristine = {p: p.read_bytes() for p in paths}
        full: list[float] = []
        for run in range(args.runs):
            for path, data in pristine.items():  # every file without a related block again
                path.write_bytes(data)
            store = work / f"store-{run}"
            started = time.perf_counter()
            report = regenerate(content, store, encoder, settings)
            full.append(time.perf_counter() - started)
            print(f"full {run + 1}: {full[-1]:.2f}s  {report.summary()}", flush=True)
        store = work / f"store-{args.runs - 1}"
        incremental: list[float] = []
        recomputed: list[int] = []
        for number in range(args.edits):
            edit(paths[(number * 997) % len(paths)], number)
            started = time.perf_counter()
            report = regenerate(content, store, encoder, settings)
            incremental.append(time.perf_counter() - started)
            recomputed.append(report.build.recomputed)
            print(f"incremental {number + 1}: {incremental[-1]:.2f}s  {report.summary()}")
        full_median = statistics.median(full)
        incremental_median = statistics.median(incremental)
        print()
        print(
            f"| corpus | model | full (median of {args.runs}) | incremental (median of "
            f"{args.edits}) | ratio | lists recomputed (median) |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| {len(rows):,} files | {encoder.model_id} | {full_median:.2f}s | "
            f"{incremental_median:.2f}s | {incremental_median / full_median:.1%} | "
            f"{statistics.median(recomputed):.0f} of {len(rows):,} |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
