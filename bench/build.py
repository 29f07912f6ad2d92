"""Benchmark: `recs build` end to end on the 10,000 HuffPost articles written as files.

    python -m bench --part build [--runs 3]

Every row of ../shared/data/huffpost.jsonl becomes an article file (bench/regenerate.py's
layout) in a temporary folder, and the real CLI builds it with the bundled model:

- full build (`--rebuild`: every text embedded, every list computed; the ONNX export is
  already cached in the store, as on every build but the first), with the default backend
  and, as its baseline, with `--backend torch`;
- rebuild with nothing changed, against the full build;
- rebuild after editing 1% of the articles (their excerpts; other articles every time),
  against the full build. Goal: at most 5% of the full build.

Times are wall seconds of the whole `recs build` process (start-up included), the four kinds
interleaved within a run. Full builds: median of `--runs` runs. The two small rebuilds take
a few seconds, so a short burst of other work on a shared machine moves one of them by a
quarter: each run times SMALL_SAMPLES of each (every 1% a different one) and the table gives
the median of all, with their range.
"""

from __future__ import annotations

import compileall
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import recs
from bench.common import BIN, DATA, header, median, table
from bench.regenerate import edit, read_rows, write_corpus

EDIT_SHARE = 0.01
SMALL_SAMPLES = 3  # small rebuilds of each kind per run


def build(content: Path, store: Path, *extra: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["HF_HUB_OFFLINE"] = "1"
    command = [str(BIN / "recs"), "build", str(content), "--store", str(store), "-q", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, result.stdout.strip()


def run(runs: int) -> None:
    # Bytecode for every module, as pip leaves an installed package: with
    # PYTHONDONTWRITEBYTECODE set, a module edited since its last import would otherwise
    # be compiled again by every timed process.
    compileall.compile_dir(Path(recs.__file__).parent, quiet=1)
    rows = read_rows(path=DATA / "huffpost.jsonl")
    header(
        "End to end: recs build on 10,000 HuffPost article files (bundled model)",
        f"wall seconds of the `recs build` process, medians of {runs} runs",
    )
    with tempfile.TemporaryDirectory(prefix="recs-bench-build-") as folder:
        work = Path(folder)
        content = work / "content"
        paths = write_corpus(rows, content)
        store = work / "store"
        torch_store = work / "store-torch"
        build(content, store)  # exports the ONNX model once into the store
        build(content, torch_store, "--backend", "torch")
        edits = max(1, round(len(paths) * EDIT_SHARE))
        times: dict[str, list[float]] = {"full": [], "torch": [], "same": [], "edit": []}
        summaries: dict[str, str] = {}
        for number in range(runs):
            times["full"].append(build(content, store, "--rebuild")[0])
            times["torch"].append(build(content, torch_store, "--rebuild", "--backend", "torch")[0])
            for sample in range(SMALL_SAMPLES):
                seconds, summaries["same"] = build(content, store)
                times["same"].append(seconds)
                batch = number * SMALL_SAMPLES + sample
                for offset in range(edits):  # a different 1% every time
                    edit(paths[(batch * edits + offset) * 97 % len(paths)], batch)
                seconds, summaries["edit"] = build(content, store)
                times["edit"].append(seconds)
        full = median(times["full"])
        embedded = re.search(r"(\d+) embedded", summaries["edit"])
        lists = re.search(r"(\d+) related lists computed", summaries["edit"])

        def spread(kind: str) -> str:
            return f"{min(times[kind]):.2f}-{max(times[kind]):.2f} s in {len(times[kind])} runs"

        table(
            ["build", "median s", "baseline", "ratio", "work done (last run)"],
            [
                [
                    "full, onnx (default)",
                    full,
                    "full, torch",
                    full / median(times["torch"]),
                    f"{len(paths):,} embedded",
                ],
                ["full, torch", median(times["torch"]), "", float("nan"), ""],
                [
                    "nothing changed",
                    median(times["same"]),
                    "full, onnx",
                    median(times["same"]) / full,
                    f"0 embedded; {spread('same')}",
                ],
                [
                    f"1% edited ({edits} articles)",
                    median(times["edit"]),
                    "full, onnx",
                    median(times["edit"]) / full,
                    f"{embedded.group(1) if embedded else '?'} embedded, "
                    f"{lists.group(1) if lists else '?'} lists; {spread('edit')}",
                ],
            ],
        )
        for kind in ("same", "edit"):
            print(f"{kind}, every run (s): " + ", ".join(f"{t:.2f}" for t in times[kind]))
