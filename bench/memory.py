"""Benchmark: `recs serve` resident memory and time to ready, 100,000 against 10,000 articles.

    python -m bench --part service [--runs 3]

Two stores are built with `recs build` from .jsonl corpora: the 10,000 HuffPost rows (the
baseline), and the same rows ten times over (100,000 articles, each copy with its own URL
and a numbered title, so every text is distinct). Both use the model-free hashing encoder
(384 dimensions, like the bundled model): serving stored lists never runs the model, and
a 100,000-text model build would dominate the benchmark's time. The model's own share is
measured on a third store, the 10,000 rows built with the bundled model: a server loads its
encoder on the first draft (POST /related), so the last column is taken after one draft.
For each store, a fresh `recs serve --workers 1` is started; measured: seconds from process
start until /readyz answers 200, and the resident memory (VmRSS, the process and any
children) when ready, after 2,000 GET /related requests spread over the store, and after a
draft. Medians of `--runs` starts.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import header, median, table
from bench.serve import Server, build, huffpost_jsonl

COPIES = 10
REQUESTS = 2_000


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def measure(store: Path, urls: list[str], env: dict[str, str]) -> dict[str, float]:

    server = Server(store, env, workers=1)
    try:
        ready_rss = rss_mib(server.process.pid)
        step = max(1, len(urls) // REQUESTS)
        for url in urls[::step][:REQUESTS]:
            query = urllib.parse.urlencode({"url": url})
            with urllib.request.urlopen(f"{server.base}/related?{query}", timeout=30) as answer:
                answer.read()
        served_rss = rss_mib(server.process.pid)
        draft = json.dumps({"title": "A school tries face scans", "excerpt": "Parents object."})
        request = urllib.request.Request(
            f"{server.base}/related",
            data=draft.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            answer.read()
        return {
            "ready_s": server.ready_after,
            "ready_rss": ready_rss,
            "served_rss": served_rss,
            "draft_rss": rss_mib(server.process.pid),
        }
    finally:
        server.stop()


def run(runs: int) -> None:
    from recs import store as stores

    header(
        "Service: recs serve memory and time to ready, 100,000 vs 10,000 articles",
        f"one worker; hashing encoder stores; medians of {runs} starts; goal <= 1.5 GB",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["HF_HUB_OFFLINE"] = "1"
    hashing = {**env, "RECS_MODEL": "hashing"}
    stores_to_measure = [
        ("10,000, hashing", 1, hashing),
        ("100,000, hashing", COPIES, hashing),
        ("10,000, bundled model", 1, env),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="recs-bench-service-") as folder:
        work = Path(folder)
        results = {}
        for number, (name, copies, store_env) in enumerate(stores_to_measure):
            content = work / f"content-{number}"
            content.mkdir()
            huffpost_jsonl(content, copies)
            store = work / f"store-{number}"
            build(content, store, store_env)
            urls = [a.url for a in stores.load(store).articles]
            results[name] = [measure(store, urls, store_env) for _ in range(runs)]
        first = stores_to_measure[0][0]
        base = {key: median([r[key] for r in results[first]]) for key in results[first][0]}
        for name, measured in results.items():
            figures = {key: median([r[key] for r in measured]) for key in measured[0]}
            rows.append(
                [
                    name,
                    figures["ready_s"],
                    figures["ready_s"] / base["ready_s"],
                    figures["ready_rss"],
                    figures["served_rss"],
                    figures["served_rss"] / base["served_rss"],
                    figures["draft_rss"],
                ]
            )
    table(
        [
            "articles, encoder",
            "time to ready s",
            f"vs {first}",
            "RSS when ready MiB",
            f"RSS after {REQUESTS:,} GETs MiB",
            f"vs {first}",
            "RSS after a draft MiB",
        ],
        rows,
    )
    with_model = rows[2][6] - rows[0][6] + rows[1][6]
    print(
        f"100,000 articles with the bundled model, estimated: {with_model:,.0f} MiB after a "
        "draft (100,000 hashing + the bundled model's share at 10,000)"
    )
