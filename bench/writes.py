"""Benchmark: PUT /articles against `recs serve --workers 2`, a small store against a large.

    python -m bench.writes [--runs 3] [--writes 30] [--large 20000]

An API write costs work proportional to what it changes, not to the store: this measures
it. Two stores are built with the hashing encoder (a write's cost besides embedding does
not depend on the model): 50 and `--large` articles, HuffPost rows (repeated, each copy
with its own URL, past 10,000). For each, a real server is started and

- sequential: `--writes` PUTs one after the other (half new URLs, half replacing an
  article written before), each timed from request to answer;
- concurrent: 4 writers at once, `--writes` PUTs each; the wall time of all of them and
  each request's time.

Each figure is the median over `--runs` runs (a new server and store each run, the two
sizes interleaved), printed beside the small store's as a ratio, with the server's CPU
seconds per write (its processes' user + system time, which holds under load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import header, median, table
from bench.serve import Server, build, huffpost_jsonl

TOKEN = "bench-token-0123456789"
WRITERS = 4


def _put(base: str, article: dict[str, str]) -> float:
    request = urllib.request.Request(
        base + "/articles",
        data=json.dumps(article).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
    return time.perf_counter() - started


def _article(writer: int, number: int) -> dict[str, str]:
    # Every other write replaces the article this writer wrote just before.
    slot = number - number % 2
    return {
        "title": f"Space agency launch {writer}-{slot} ({number})",
        "excerpt": f"Astronauts reach the station orbit in mission {writer}-{slot}, take {number}.",
        "webUrl": f"https://writes.example/{writer}/{slot}",
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in _children(pid)]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def measure(size: int, writes: int, workdir: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_API_TOKEN=TOKEN)
    content = workdir / f"content-{size}"
    content.mkdir()
    copies = -(-size // 10_000)
    lines = huffpost_jsonl(content, copies).read_text(encoding="utf-8").splitlines()[:size]
    (content / "huffpost.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    store_dir = workdir / f"store-{size}"
    build(content, store_dir, env)
    server = Server(store_dir, env)
    try:
        cpu_before = _cpu_seconds(server.process.pid)
        sequential = [_put(server.base, _article(0, n)) for n in range(writes)]
        cpu = (_cpu_seconds(server.process.pid) - cpu_before) / writes
        times: list[float] = []
        lock = threading.Lock()

        def writer(number: int) -> None:
            for n in range(writes):
                took = _put(server.base, _article(number, n))
                with lock:
                    times.append(took)

        started = time.perf_counter()
        threads = [threading.Thread(target=writer, args=(w + 1,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        server.stop()
    return {
        "put_ms": statistics.median(sequential) * 1000,
        "put_max_ms": max(sequential) * 1000,
        "cpu_ms": cpu * 1000,
        "concurrent_ms": statistics.median(times) * 1000,
        "concurrent_wall_s": wall,
    }


def run(runs: int, writes: int, large: int) -> None:
    header(
        "API writes: PUT /articles, small store against large",
        f"recs serve --workers 2, hashing encoder; {writes} sequential PUTs, then "
        f"{WRITERS} writers x {writes} PUTs at once; medians of {runs} runs",
    )
    sizes = (50, large)
    results: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    for _ in range(runs):
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="recs-bench-writes-") as workdir:
                results[size].append(measure(size, writes, Path(workdir)))
    keys = ("put_ms", "put_max_ms", "cpu_ms", "concurrent_ms", "concurrent_wall_s")
    medians = {size: {k: median([r[k] for r in results[size]]) for k in keys} for size in sizes}
    rows = []
    for size in sizes:
        m = medians[size]
        ratio = m["put_ms"] / medians[sizes[0]]["put_ms"]
        rows.append(
            [
                f"{size:,} articles",
                m["put_ms"],
                ratio,
                m["put_max_ms"],
                m["cpu_ms"],
                m["concurrent_ms"],
                m["concurrent_wall_s"],
            ]
        )
    table(
        [
            "store",
            "PUT median ms",
            "vs 50",
            "PUT max ms",
            "server CPU ms per PUT",
            "concurrent PUT median ms",
            f"{WRITERS}x{writes} PUTs wall s",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--large", type=int, default=20_000)
    args = parser.parse_args()
    run(args.runs, args.writes, args.large)


if __name__ == "__main__":
    main()
