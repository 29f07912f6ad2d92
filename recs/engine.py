"""Where the batch work of a build runs: in this process, or on a Ray cluster.

An engine does the two parts of a build that grow with the corpus: embedding the texts
that are not cached, and ranking every article that needs a new related list (candidate
search plus `rank.rank`). Everything else (reading files, the cache, the store) stays in
the calling process. Every engine gives the same vectors and the same lists as `local`:

- embedding: texts are cut into the same groups `encoder.embed_all` encodes together
  (`encoder.embedding_groups`), because a vector can differ in its last bits with the
  texts it was batched with;
- ranking: a `RankJob` is a picklable function of a set of rows, and a row's list depends
  only on the row, never on which other rows ran with it.

`LocalEngine` is the default. With more than one process it ranks in forked workers on
this machine: they inherit the job (nothing is pickled but the rows and their lists), and
because a list depends only on its row they give the lists one process gives.
`recs.ray_engine.RayEngine` is imported only when asked for, so recs works without Ray
installed (`pip install 'recs[ray]'` adds it).
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

import numpy as np

from recs.backends import EncoderSettings
from recs.encoder import Encoder, embed_all
from recs.errors import ConfigError, EngineError
from recs.index import set_threads
from recs.progress import Progress, no_progress
from recs.ranked import Ranked, RankJob

ENGINES = ("local", "ray")
# Forked ranking: the fewest rows worth a process, and the most rows per task (small tasks
# keep the progress bar moving and let an interrupted build stop within a second or two).
MIN_ROWS_PER_PROCESS = 500
MAX_ROWS_PER_TASK = 1024


class Engine(Protocol):
    """Runs the embedding and ranking of a build."""

    name: str

    def embed(
        self, encoder: Encoder, texts: Sequence[str], progress: Progress = no_progress
    ) -> np.ndarray:
        """Vectors of `texts` (row i is texts[i]), exactly as `embed_all(encoder, texts)`."""
        ...

    def rank(
        self, job: RankJob, rows: Sequence[int], progress: Progress = no_progress
    ) -> dict[int, Ranked]:
        """`job(rows, progress)`, possibly split over workers: the list of every row."""
        ...

    def close(self) -> None:
        """Release what the engine started (a local Ray cluster); idempotent."""
        ...


def can_fork() -> bool:
    """Whether ranking may fork workers: on Linux only (macOS libraries are not fork-safe)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


class LocalEngine:
    """Everything on this machine: FAISS on every core, ranking in `processes` processes.

    One process ranks in this one. More fork workers when there are enough rows (at least
    MIN_ROWS_PER_PROCESS each): ranking is Python, one core per process, and on two cores
    it takes about half the time. The default engine LOCAL ranks in one process, because it
    also serves the HTTP service's writes, where forking a threaded server is not wanted.
    """

    name = "local"

    def __init__(self, processes: int = 1) -> None:
        if processes < 1:
            raise ConfigError(f"RECS_JOBS/--jobs must be 1 or more processes, not {processes}")
        self.processes = processes

    def embed(
        self, encoder: Encoder, texts: Sequence[str], progress: Progress = no_progress
    ) -> np.ndarray:
        return embed_all(encoder, texts, progress=progress)

    def rank(
        self, job: RankJob, rows: Sequence[int], progress: Progress = no_progress
    ) -> dict[int, Ranked]:
        rows = list(rows)
        workers = min(self.processes, len(rows) // MIN_ROWS_PER_PROCESS)
        if workers <= 1 or not can_fork():
            return job(rows, progress)
        return _rank_forked(job, rows, workers, progress)

    def close(self) -> None:
        pass


# The job forked ranking workers run: set before they are forked, so they inherit it.
_FORKED_JOB: RankJob | None = None


def _start_ranking_worker() -> None:
    # FAISS's OpenMP (GNU libgomp) hangs in a forked child once the parent has used it;
    # one thread per worker never starts a pool. The workers are the parallelism.
    set_threads(1)
    # Ctrl-C reaches the whole process group: the parent stops the build, workers go quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _rank_task(rows: list[int]) -> dict[int, Ranked]:
    assert _FORKED_JOB is not None, "a ranking worker runs only in a forked child"
    return _FORKED_JOB(rows, no_progress)


def _rank_forked(
    job: RankJob, rows: list[int], workers: int, progress: Progress
) -> dict[int, Ranked]:
    global _FORKED_JOB
    size = min(MAX_ROWS_PER_TASK, math.ceil(len(rows) / (workers * 4)))
    tasks = [rows[start : start + size] for start in range(0, len(rows), size)]
    ranked: dict[int, Ranked] = {}
    progress("ranking", 0, len(rows))
    # Work every worker would otherwise repeat (building the search index) is done once here.
    job.share()
    _FORKED_JOB = job
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_ranking_worker,
    )
    try:
        pending: dict[Future[dict[int, Ranked]], int] = {
            pool.submit(_rank_task, task): len(task) for task in tasks
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                ranked.update(future.result())  # a worker's exception is raised here
                pending.pop(future)
            progress("ranking", len(ranked), len(rows))
    except BrokenProcessPool:
        raise EngineError(
            "a ranking process died (out of memory?); build with fewer processes "
            "(--jobs, RECS_JOBS) or more memory"
        ) from None
    finally:
        _FORKED_JOB = None
        pool.shutdown(wait=True, cancel_futures=True)
    return ranked


LOCAL = LocalEngine()


def open_engine(
    name: str = "local",
    address: str | None = None,
    encoder: EncoderSettings | None = None,
    processes: int = 1,
) -> Engine:
    """The engine called `name` ("local" or "ray"); `address` is the Ray cluster's,
    `processes` how many the local engine ranks in.

    Raises ConfigError for an unknown name or an address without the Ray engine, and
    EngineError when Ray is not installed. Connecting to the cluster waits for first use.
    """
    if name not in ENGINES:
        raise ConfigError(f"RECS_ENGINE/--engine {name!r} is not one of {', '.join(ENGINES)}")
    if name == "local":
        if address:
            raise ConfigError(
                "RECS_RAY_ADDRESS/--address is for the Ray engine: add --engine ray "
                "(RECS_ENGINE=ray) or drop the address"
            )
        return LOCAL if processes == 1 else LocalEngine(processes)
    from recs.ray_engine import RayEngine

    return RayEngine(encoder or EncoderSettings(), address=address)
