"""The Ray engine: a build's embedding and ranking on a Ray cluster (`recs build --engine ray`).

Embedding runs on Ray Data. One dataset row is one group of texts as `embed_all` would
encode them together (`encoder.embedding_groups`), so every text is batched with the same
texts as on the local engine and gets the same vector, bit for bit. `map_batches` feeds
the rows to a pool of `EncoderActor`s; each builds its encoder once, from picklable
`EncoderSettings` (model, backend), and encodes one group per call. Vectors come back
with their positions and are put in place here.

Ranking runs as Ray tasks over shards of the query rows: the job (articles, vectors,
catalog, index, settings) goes to the object store once, and each task ranks a contiguous
slice of rows against the full index with the same code the local engine runs
(`related.CorpusJob`). Shards are taken over the queries, not over the index, because in an
all-pairs search the queries are the index: every task needs the whole matrix either way,
while query shards need no top-k merge (each row's candidates come from one exact search
of the full index, as on the local engine) and also split the ranking itself, which costs
more than the search. A corpus too large for one node's memory needs index shards and a
top-k merge instead; docs/scaling.md describes that design.

Ray is imported inside functions: recs works without it, and `require_ray` says how to
install it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import socket
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from recs.backends import EncoderSettings
from recs.encoder import Encoder, embedding_groups
from recs.errors import EngineError, ModelError, RecsError
from recs.progress import Progress, no_progress
from recs.ranked import Ranked, RankJob

# Blocks per encoder actor: enough for load balancing, few enough to keep overhead low.
BLOCKS_PER_ACTOR = 4
# Ranking shards per CPU of the cluster, and the smallest shard worth a task.
SHARDS_PER_CPU = 2
MIN_SHARD_ROWS = 256


MISSING = (
    "--engine ray needs Ray, which is not installed: pip install 'recs[ray]' "
    "(or build with --engine local)"
)


def check_ray() -> None:
    """Raise EngineError, saying how to install it, when Ray is not installed.

    Cheap (nothing is imported), so a build asking for Ray fails before it reads a file.
    """
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        found = False
    if not found:
        raise EngineError(MISSING)


def require_ray() -> Any:
    """The `ray` module with Ray Data loaded, or EngineError saying how to install it."""
    try:
        import ray
        import ray.data  # the embedding needs Ray Data, not only Ray core
    except ImportError:
        raise EngineError(MISSING) from None
    return ray


def check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """Raise EngineError unless a HOST:PORT (or ray://HOST:PORT) address accepts connections.

    `ray.init` keeps retrying an address where nothing listens; this fails in seconds.
    None, "auto" and "local" are Ray's to resolve and are not checked.
    """
    if not address or address in ("auto", "local"):
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(
            f"RECS_RAY_ADDRESS/--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise EngineError(
            f"cannot connect to the Ray cluster at {address}: {error}; check --address "
            "(RECS_RAY_ADDRESS), or start a cluster with `ray start --head`"
        ) from None


def _limit_torch_threads(threads: int) -> None:
    """Keep a worker's torch to its share of the node's cores (it takes all of them)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class EncoderActor:
    """A Ray Data actor: one encoder, loaded once, encoding one text group per row."""

    def __init__(self, settings: EncoderSettings, threads: int) -> None:
        # Backends use every core of the node by default; an actor owns `threads` of them.
        # Vectors do not depend on the thread count (only on the batch), so this is safe.
        self.encoder = settings.load()
        if hasattr(self.encoder, "threads"):
            self.encoder.threads = threads  # the ONNX backend reads it when it loads
        self.encoder.encode(["load the model now, once per actor"])
        _limit_torch_threads(threads)  # after the load: the torch backend sets it there

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        for rows, texts in zip(batch["positions"], batch["texts"], strict=True):
            group = [str(text) for text in texts]
            encoded = self.encoder.encode(group)
            if encoded.shape != (len(group), self.encoder.dim):
                raise ModelError(
                    f"the encoder returned shape {encoded.shape} for {len(group)} texts; "
                    f"expected ({len(group)}, {self.encoder.dim})"
                )
            positions.append(np.asarray(rows, dtype=np.int64))
            vectors.append(encoded)
        return {"position": np.concatenate(positions), "vector": np.vstack(vectors)}


def _rank_shard(job: RankJob, rows: Sequence[int]) -> dict[int, Ranked]:
    return job(rows, no_progress)


def job_failure(error: BaseException, stage: str) -> RecsError:
    """What to report for a failed Ray job: a RecsError raised on a worker as itself,
    anything else as an EngineError with its last line (the Ray logs have the rest)."""
    cause: BaseException | None = error
    for _ in range(10):  # Ray wraps a worker's exception a few levels deep at most
        if cause is None:
            break
        original = getattr(cause, "cause", None)  # what a RayTaskError carries
        if isinstance(original, RecsError):
            return original
        cause = cause.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    summary = lines[-1] if lines else type(error).__name__
    return EngineError(
        f"{stage} on Ray failed: {summary} (the Ray logs of the cluster have the details)"
    )


def shards(rows: Sequence[int], count: int, min_rows: int = MIN_SHARD_ROWS) -> list[list[int]]:
    """`rows` cut into at most `count` contiguous slices of near-equal size, none tiny."""
    rows = list(rows)
    if not rows:
        return []
    size = max(min_rows, math.ceil(len(rows) / max(1, count)))
    return [rows[start : start + size] for start in range(0, len(rows), size)]


class RayEngine:
    """Embedding on Ray Data encoder actors, ranking on Ray tasks; same results as local.

    `address` is passed to `ray.init`: None means Ray's default (RAY_ADDRESS, else a
    cluster started with `ray start` on this machine, else a new local one), "auto" an
    existing cluster, "ray://host:10001" a remote one. When this process is already
    connected (ray.init was called), that connection is used and left open.
    """

    name = "ray"

    def __init__(
        self, encoder: EncoderSettings, address: str | None = None, cpus_per_actor: int = 1
    ) -> None:
        self.encoder = encoder
        self.address = address
        self.cpus_per_actor = cpus_per_actor
        check_ray()
        self._ray: Any = None
        self._started = False
        self._rank_task: Any = None

    def _connect(self) -> Any:
        ray = self._ray = require_ray()
        if not ray.is_initialized():
            check_reachable(self.address)
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = self.address or "the default address"
                raise EngineError(
                    f"cannot connect to the Ray cluster at {where}: {error}; "
                    "check --address (RECS_RAY_ADDRESS), or start one with `ray start --head`"
                ) from None
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # recs draws its own progress bars
        context.print_on_execution_start = False
        context.enable_auto_log_stats = False
        # Failures reach the user as one line (see job_failure); the traces stay in Ray's logs.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        return ray

    def cpus(self) -> int:
        """CPUs of the cluster (connecting to it if needed)."""
        ray = self._connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def embed(
        self, encoder: Encoder, texts: Sequence[str], progress: Progress = no_progress
    ) -> np.ndarray:
        wanted = self.encoder.load().model_id  # no model is loaded here
        if wanted != encoder.model_id:
            raise ModelError(
                f"the Ray engine would embed with {wanted}, the build uses {encoder.model_id}; "
                "give the engine the same --model and --backend"
            )
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        groups = embedding_groups(texts)
        if not groups:
            return out
        ray = self._connect()
        actors = max(1, min(len(groups), self.cpus() // self.cpus_per_actor))
        items = [{"positions": rows, "texts": [texts[i] for i in rows]} for rows in groups]
        dataset = ray.data.from_items(
            items, override_num_blocks=min(len(items), actors * BLOCKS_PER_ACTOR)
        ).map_batches(
            EncoderActor,
            fn_constructor_kwargs={"settings": self.encoder, "threads": self.cpus_per_actor},
            batch_size=1,  # one row is one text group: the batch is exactly the group
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=self.cpus_per_actor,
        )
        done = 0
        seen = np.zeros(len(texts), dtype=bool)
        progress("embedding", 0, len(texts))
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                positions = np.asarray(batch["position"], dtype=np.int64)
                out[positions] = batch["vector"]
                seen[positions] = True
                done += len(positions)
                progress("embedding", done, len(texts))
        except ray.exceptions.RayError as error:
            raise job_failure(error, "embedding") from None
        if not seen.all():
            raise EngineError(
                f"the Ray cluster returned {int(seen.sum())} of {len(texts)} vectors; "
                "run the build again"
            )
        return out

    def rank(
        self, job: RankJob, rows: Sequence[int], progress: Progress = no_progress
    ) -> dict[int, Ranked]:
        rows = list(rows)
        if not rows:
            return {}
        ray = self._connect()
        if self._rank_task is None:
            self._rank_task = ray.remote(num_cpus=1)(_rank_shard)
        job_ref = ray.put(job)  # once: every task reads the same copy
        pending = {
            self._rank_task.remote(job_ref, shard): len(shard)
            for shard in shards(rows, self.cpus() * SHARDS_PER_CPU)
        }
        ranked: dict[int, Ranked] = {}
        done = 0
        progress("ranking", 0, len(rows))
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    ranked.update(ray.get(ref))
                    done += pending.pop(ref)
                progress("ranking", done, len(rows))
        except ray.exceptions.RayError as error:
            # The other shards are left to finish, not cancelled: ray.cancel on a task that
            # is completing at that moment aborted the whole driver process (a failed check
            # inside Ray's task manager, seen once in a test run), instead of this one line.
            raise job_failure(error, "ranking") from None
        return ranked

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False
            self._rank_task = None
