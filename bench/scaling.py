"""Benchmark: the build's batch work on the local engine and on Ray with 1 and 2 workers.

Two measurements, each on the local engine (the baseline, measured in the same run) and on
a fresh local Ray cluster of 1 then 2 CPUs (one encoder actor or ranking task per CPU):

- embedding: the first `--texts` texts of ../shared/data/huffpost.jsonl with the bundled
  model (or `--model hashing`). A Ray pass starts its encoder actors and loads the model
  in each, so it is also run on one text; texts/s at steady state is
  (texts - 1) / (time(texts) - time(1 text)).
- all-pairs: every related list of the whole file (10,000 articles) from hashing-encoder
  vectors: candidate search plus ranking, which is what grows with the corpus.

Each Ray result is checked against the local one (identical vectors, identical lists).
Besides wall-clock seconds, the CPU seconds of this process and every process it started
(the Ray cluster's, sampled from /proc twice a second) are reported: on a machine shared
with other work, texts per CPU-second is the stable figure, wall-clock speed-ups are not.

    .venv/bin/python -m bench.scaling                  # bundled model, 1024 texts
    .venv/bin/python -m bench.scaling --texts 2048 --runs 3
    .venv/bin/python -m bench.scaling --model hashing  # no model: engine overhead only
    .venv/bin/python -m bench.scaling --backend torch  # sentence-transformers on torch
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recs.articles import Article, embed_text, parse_datetime
from recs.backends import EncoderSettings
from recs.encoder import HashingEncoder
from recs.engine import LOCAL, Engine
from recs.rank_settings import RankSettings
from recs.related import link_all

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "huffpost.jsonl"


def rows() -> list[dict[str, Any]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def articles_of(data: list[dict[str, Any]]) -> list[Article]:
    articles = {}
    for row in data:
        fields = {
            "title": row["title"],
            "excerpt": row["excerpt"],
            "webUrl": row["url"],
            "publishedDateTime": row["date"],
            "provider": {"name": row["provider"], "domain": "huffpost.com"},
            "category": row["label"],
        }
        articles[row["url"]] = Article(
            url=row["url"],
            title=row["title"],
            excerpt=row["excerpt"],
            fields=fields,
            source="huffpost.jsonl",
            published_ts=parse_datetime(row["date"]),
        )
    return [articles[url] for url in sorted(articles)]


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_by_pid(root: int) -> dict[int, tuple[float, str]]:
    """CPU seconds (user + system) and kind of `root` and all its descendants, from /proc.

    Kinds: "driver" (this process), "worker" (a Ray worker: encoder actor or ranking task),
    "cluster" (Ray's own processes: raylet, GCS, agents).
    """
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        parent[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    tree = {root}
    grew = True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    result = {}
    for pid in tree & used.keys():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read()
        except OSError:
            command = b""
        worker = command.startswith(b"ray::") or b"default_worker.py" in command
        kind = "driver" if pid == root else "worker" if worker else "cluster"
        result[pid] = (used[pid], kind)
    return result


class CpuMeter:
    """CPU seconds used by this process tree while it runs (processes that end count too)."""

    def __init__(self) -> None:
        self.start = {pid: used for pid, (used, _) in _cpu_by_pid(os.getpid()).items()}
        self.last: dict[int, float] = dict(self.start)
        self.kinds: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _update(self) -> None:
        for pid, (used, kind) in _cpu_by_pid(os.getpid()).items():
            self.last[pid] = max(used, self.last.get(pid, 0.0))
            if self.kinds.get(pid) != "worker":
                self.kinds[pid] = kind

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def stop(self) -> dict[str, float]:
        """CPU seconds by kind of process."""
        self._stop.set()
        self._thread.join()
        self._update()
        totals = {"driver": 0.0, "worker": 0.0, "cluster": 0.0}
        for pid, used in self.last.items():
            totals[self.kinds.get(pid, "cluster")] += used - self.start.get(pid, 0.0)
        return totals


def timed(work: Callable[[], Any], runs: int) -> tuple[float, dict[str, float], Any]:
    """Median wall seconds and CPU seconds by kind of `runs` calls, and the last result."""
    walls: list[float] = []
    cpus: list[dict[str, float]] = []
    result = None
    for _ in range(runs):
        meter = CpuMeter()
        started = time.perf_counter()
        result = work()
        walls.append(time.perf_counter() - started)
        cpus.append(meter.stop())
    median = {kind: statistics.median(c[kind] for c in cpus) for kind in cpus[0]}
    return statistics.median(walls), median, result


def measure(
    name: str,
    engine: Engine,
    texts: list[str],
    encoder_settings: EncoderSettings,
    articles: list[Article],
    vectors: np.ndarray,
    runs: int,
    reference: dict[str, Any],
) -> dict[str, Any]:
    encoder = encoder_settings.load()
    encoder.encode(["load the model before timing"])  # Ray actors load theirs in `one`
    one, one_cpu, _ = timed(lambda: engine.embed(encoder, texts[:1]), runs)
    many, many_cpu, embedded = timed(lambda: engine.embed(encoder, texts), runs)
    settings = RankSettings()
    pairs, pairs_cpu, lists = timed(
        lambda: link_all(articles, vectors, settings, engine=engine), runs
    )
    if reference:
        assert np.array_equal(embedded, reference["vectors"]), f"{name}: vectors differ"
        assert lists.related == reference["lists"].related, f"{name}: lists differ"
    else:
        reference.update(vectors=embedded, lists=lists)
    # The work itself runs in the driver on the local engine, in Ray workers on Ray.
    work = "driver" if engine is LOCAL else "worker"
    model_cpu = many_cpu[work] - one_cpu[work]
    return {
        "engine": name,
        "one": one,
        "many": many,
        "steady": (len(texts) - 1) / (many - one) if many > one else math.nan,
        "per_cpu": (len(texts) - 1) / model_cpu if model_cpu > 0 else math.nan,
        "pairs": pairs,
        "pairs_work": pairs_cpu[work],
        "pairs_rest": sum(pairs_cpu.values()) - pairs_cpu[work],
    }


def ray_cluster(cpus: int) -> Any:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    return ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1024, help="texts to embed")
    parser.add_argument("--runs", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--model", default=None, help="'hashing' or a model dir; default bundled")
    parser.add_argument("--backend", default="auto", help="encoder backend: auto, onnx, torch")
    parser.add_argument("--workers", default="1,2", help="Ray cluster sizes to measure")
    args = parser.parse_args()

    from recs.ray_engine import RayEngine

    load = os.getloadavg()
    data = rows()
    texts = [embed_text(row["title"], row["excerpt"]) for row in data[: args.texts]]
    articles = articles_of(data)
    vectors = HashingEncoder().encode([a.text for a in articles])
    reference: dict[str, Any] = {}
    # One cache folder for all engines: the ONNX backend exports the model there once.
    encoder_settings = EncoderSettings.portable(
        args.model, args.backend, Path(tempfile.mkdtemp(prefix="recs-bench-"))
    )
    backend = type(encoder_settings.load()).__name__
    results = [
        measure("local", LOCAL, texts, encoder_settings, articles, vectors, args.runs, reference)
    ]
    for cpus in [int(n) for n in args.workers.split(",")]:
        ray = ray_cluster(cpus)
        try:
            engine = RayEngine(encoder_settings)
            name = f"ray, {cpus} worker{'s' if cpus > 1 else ''}"
            results.append(
                measure(
                    name, engine, texts, encoder_settings, articles, vectors, args.runs, reference
                )
            )
        finally:
            ray.shutdown()

    model = f"{args.model or 'all-MiniLM-L6-v2'}, {backend}"
    print(
        f"embedding {len(texts)} huffpost texts ({model}); all-pairs over {len(articles)} "
        f"articles (hashing vectors, pool 50, limit 5); medians of {args.runs} run(s); "
        f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print()
    print(
        "| engine | start-up s | embed s | texts/s | vs local | texts/CPU-s "
        "| all-pairs s | vs local | all-pairs CPU-s: work + rest |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base = results[0]
    for r in results:
        print(
            f"| {r['engine']} | {r['one']:.1f} | {r['many']:.1f} | {r['steady']:.1f} "
            f"| {r['steady'] / base['steady']:.2f}x | {r['per_cpu']:.1f} | {r['pairs']:.1f} "
            f"| {base['pairs'] / r['pairs']:.2f}x | {r['pairs_work']:.1f} + "
            f"{r['pairs_rest']:.1f} |"
        )
    print()
    print(
        "texts/CPU-s and work: CPU of the process doing the work (this one on the local "
        "engine, Ray workers on Ray); rest: this process and Ray's own processes"
    )
    print()
    print("every Ray run gave the local engine's vectors and lists exactly")


if __name__ == "__main__":
    main()
