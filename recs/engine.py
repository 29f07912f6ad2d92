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

`LocalEngine` is the default. `recs.ray_engine.RayEngine` is imported only when asked for,
so recs works without Ray installed (`pip install 'recs[ray]'` adds it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from recs.encoder import (
    BUNDLED_MODEL,
    HASHING_MODEL,
    Encoder,
    Progress,
    embed_all,
    load_encoder,
    no_progress,
)
from recs.errors import ConfigError
from recs.rank import Ranked

ENGINES = ("local", "ray")

# (rows, progress) -> their related lists; see related.RankJob. Picklable for remote engines.
RankJob = Callable[[Sequence[int], Progress], dict[int, Ranked]]


@dataclass(frozen=True)
class EncoderSettings:
    """What a remote worker needs to build the same encoder: plain, picklable values."""

    model: str | None = None
    backend: str = "auto"
    cache_dir: Path | None = None

    @classmethod
    def portable(
        cls, model: str | None, backend: str = "auto", cache_dir: Path | None = None
    ) -> EncoderSettings:
        """Settings with paths made absolute: a worker's current directory is not ours."""
        named = (HASHING_MODEL, BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}")
        if model and model not in named and Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        cache_dir = None if cache_dir is None else cache_dir.expanduser().resolve()
        return cls(model, backend, cache_dir)

    def load(self) -> Encoder:
        return load_encoder(self.model, self.backend, self.cache_dir)


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


class LocalEngine:
    """Everything in this process: the encoder given, FAISS on every core."""

    name = "local"

    def embed(
        self, encoder: Encoder, texts: Sequence[str], progress: Progress = no_progress
    ) -> np.ndarray:
        return embed_all(encoder, texts, progress=progress)

    def rank(
        self, job: RankJob, rows: Sequence[int], progress: Progress = no_progress
    ) -> dict[int, Ranked]:
        return job(rows, progress)

    def close(self) -> None:
        pass


LOCAL = LocalEngine()


def open_engine(
    name: str = "local",
    address: str | None = None,
    encoder: EncoderSettings | None = None,
) -> Engine:
    """The engine called `name` ("local" or "ray"); `address` is the Ray cluster's.

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
        return LOCAL
    from recs.ray_engine import RayEngine

    return RayEngine(encoder or EncoderSettings(), address=address)
