"""Carry the bundled model's relevance floors to the other models.

    python -m bench.calibrate [--texts 2500]

`min_similarity` and `relevant_similarity` are cosines, chosen for the bundled model by
reading lists (docs/quality.md, "The editor's view"). Another model spreads its cosines
differently, so its values are taken at the same quantile of the cosines of random pairs
of HuffPost articles: this embeds `--texts` HuffPost articles (a fixed random choice) with
each model, takes 200,000 random pairs, finds the quantile at which the bundled model's
values fall, and prints each model's cosine at those quantiles beside the value
`recs.models.CALIBRATIONS` holds. The stored values are those of the whole file's quantiles
(0.574 and 0.928 of the bundled model's random-pair cosines, 10,000 rows); 2,500 texts give
them to about 0.002 (static 0.281 / 0.425, e5 0.315 / 0.416 in the run recorded in
docs/quality.md).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from bench.common import DATA, header, table

FLOORS = ("min_similarity", "relevant_similarity")


def random_pair_cosines(model: str, texts: list[str]) -> np.ndarray:
    from recs.backends import load_encoder
    from recs.config import Settings

    settings = Settings.from_env({**os.environ, "RECS_MODEL": model})
    encoder = load_encoder(model, settings.backend, settings.model_cache)
    vectors = np.asarray(encoder.encode(texts), dtype=np.float64)
    rng = np.random.default_rng(20240501)
    a, b = rng.integers(len(vectors), size=(2, 200_000))
    keep = a != b
    return np.sum(vectors[a[keep]] * vectors[b[keep]], axis=1)


def run(count: int) -> None:
    from recs.articles import embed_text
    from recs.models import BUNDLED_MODEL, CALIBRATIONS

    rows = [json.loads(line) for line in (DATA / "huffpost.jsonl").open(encoding="utf-8")]
    chosen = np.random.default_rng(7).choice(len(rows), size=min(count, len(rows)), replace=False)
    texts = [embed_text(rows[i]["title"], rows[i].get("excerpt") or "") for i in chosen]
    header(
        "Relevance floors carried from the bundled model",
        f"{len(texts)} HuffPost texts, 200,000 random pairs; quantile = where the bundled "
        "model's value falls among its own random-pair cosines",
    )
    reference = random_pair_cosines(BUNDLED_MODEL, texts)
    quantiles = {
        name: float(np.mean(reference < getattr(CALIBRATIONS[BUNDLED_MODEL], name)))
        for name in FLOORS
    }
    results = []
    for model, calibration in CALIBRATIONS.items():
        sims = reference if model == BUNDLED_MODEL else random_pair_cosines(model, texts)
        for name in FLOORS:
            stored = getattr(calibration, name)
            carried = float(np.quantile(sims, quantiles[name]))
            results.append([model, name, round(quantiles[name], 3), round(carried, 3), stored])
    table(["model", "setting", "quantile", "carried", "recs.models"], results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2500)
    run(parser.parse_args().texts)


if __name__ == "__main__":
    main()
