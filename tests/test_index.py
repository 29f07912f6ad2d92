"""The neighbour index: exact and IVF search, settings, pickling."""

from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from bench.synthetic import clustered_unit_vectors, mixture_unit_vectors
from recs.config import Settings
from recs.errors import ConfigError
from recs.index import IVF_RECALL, VectorIndex
from recs.options import IndexSettings
from tests.conftest import BIN, EXAMPLES


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    return clustered_unit_vectors(20_000, d=64, seed=3)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_settings_from_environment():
    settings = Settings.from_env({"RECS_INDEX": "ivf", "RECS_INDEX_EXACT_MAX": "1000"})
    assert settings.index_settings == IndexSettings("ivf", 1000)
    assert Settings.from_env({}).index_settings == IndexSettings()
    with pytest.raises(ConfigError, match="RECS_INDEX must be one of auto, exact, ivf"):
        Settings.from_env({"RECS_INDEX": "flat"})
    with pytest.raises(ConfigError, match="RECS_INDEX_EXACT_MAX"):
        Settings.from_env({"RECS_INDEX_EXACT_MAX": "-1"})


def recall_at_10(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    found, _ = index.search(vectors[queries], 11)
    truth = exact_top(vectors, vectors[queries], 11)
    return float(np.mean([len(set(f) & set(t)) / 11 for f, t in zip(found, truth, strict=True)]))


def test_ivf_recall_at_10_on_clustered_vectors(clustered):
    index = VectorIndex(clustered, IndexSettings("ivf"))
    queries = np.arange(0, len(clustered), 40)
    assert recall_at_10(index, clustered, queries) >= 0.98
    found, scores = index.search(clustered[queries], 11)
    assert np.all(found[:, 0] == queries)  # every row finds itself first
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    # The scores are the rows' inner products.
    assert np.allclose(scores[:, 1], np.sum(clustered[queries] * clustered[found[:, 1]], axis=1))


def test_probes_are_calibrated_to_the_data():
    easy = VectorIndex(clustered_unit_vectors(20_000, d=64, seed=4), IndexSettings("ivf"))
    hard_vectors = mixture_unit_vectors(20_000, d=64, seed=4)
    hard = VectorIndex(hard_vectors, IndexSettings("ivf"))
    easy_ivf, hard_ivf = easy.build().inverted_file, hard.build().inverted_file
    assert easy_ivf is not None and hard_ivf is not None
    assert easy_ivf.sample_recall >= IVF_RECALL and hard_ivf.sample_recall >= IVF_RECALL
    assert hard_ivf.probe > easy_ivf.probe  # harder data, more lists probed
    # The recall reached on the calibration sample holds on other rows.
    assert recall_at_10(hard, hard_vectors, np.arange(1, 20_000, 50)) >= 0.97


def test_large_k_is_answered_exactly_and_never_short(clustered):
    vectors = clustered[:2_000]
    index = VectorIndex(vectors, IndexSettings("ivf")).build()
    ivf = index.inverted_file
    assert ivf is not None
    ivf.probe = 2
    k = ivf.probe * ivf.longest + 50  # more than any query's probed lists hold
    assert k < len(vectors)
    found, scores = index.search(vectors[:3], k)
    assert np.all(found >= 0) and np.all(np.isfinite(scores))
    assert np.array_equal(found, exact_top(vectors, vectors[:3], k))
    # k beyond the corpus pads with -1 / -inf, as the exact index does.
    found, scores = index.search(vectors[:2], 2_005)
    assert np.all(found[:, 2_000:] == -1) and np.all(scores[:, 2_000:] == -np.inf)
    assert sorted(found[0, :2_000]) == list(range(2_000))


def test_ivf_equals_exact_when_the_probes_cover_every_list():
    vectors = clustered_unit_vectors(60, d=16, seed=5)  # 7 lists, all probed
    ivf = VectorIndex(vectors, IndexSettings("ivf")).build()
    assert ivf.inverted_file is not None and ivf.inverted_file.probe == ivf.inverted_file.lists
    exact, _ = VectorIndex(vectors, IndexSettings("exact")).search(vectors, 7)
    found, _ = ivf.search(vectors, 7)
    assert np.mean(exact == found) > 0.999  # only exact ties may swap


def test_search_blocks_do_not_change_results(clustered, monkeypatch):
    import recs.index

    index = VectorIndex(clustered[:5_000], IndexSettings("ivf"))
    whole, _ = index.search(clustered[:500], 10)
    monkeypatch.setattr(recs.index, "IVF_CANDIDATE_BYTES", 1)  # blocks of 64 queries
    blocked, _ = index.search(clustered[:500], 10)
    assert np.mean(whole == blocked) > 0.999  # only exact ties may swap


def test_pickling_drops_what_was_built(clustered):
    index = VectorIndex(clustered[:3_000], IndexSettings("ivf")).build()
    copy = pickle.loads(pickle.dumps(index))
    assert copy.inverted_file is None and copy.kind == "ivf"
    a, _ = index.search(clustered[:50], 5)
    b, _ = copy.search(clustered[:50], 5)
    assert np.mean(a == b) > 0.99  # k-means is seeded: the copy builds the same lists


def test_empty_index_and_empty_queries():
    empty = VectorIndex(np.zeros((0, 8), np.float32), IndexSettings("ivf"))
    rows, scores = empty.search(np.ones((2, 8), np.float32), 3)
    assert rows.shape == (2, 3) and np.all(rows == -1) and np.all(scores == -np.inf)
    some = VectorIndex(clustered_unit_vectors(100, d=8), IndexSettings("ivf"))
    rows, _ = some.search(np.zeros((0, 8), np.float32), 3)
    assert rows.shape == (0, 3)


def test_build_with_the_ivf_index_from_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_MODEL"] = "hashing"
    results = {}
    for kind in ("exact", "ivf"):
        store_dir = tmp_path / kind
        command = [str(BIN / "recs"), "build", str(EXAMPLES), "--store", str(store_dir)]
        done = subprocess.run(
            [*command, "--index", kind, "-q"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        from recs import store

        results[kind] = store.load(store_dir).related
    # 53 articles make 6 lists, all probed: the IVF index must find what exact does.
    assert results["ivf"] == results["exact"]
    bad = subprocess.run(
        [str(BIN / "recs"), "build", str(EXAMPLES), "--store", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env | {"RECS_INDEX": "annoy"},
        timeout=60,
    )
    assert bad.returncode == 2 and "RECS_INDEX must be one of auto, exact, ivf" in bad.stderr


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_a_search_names_each_row_once(clustered, kind):
    """Ranking relies on it (recs.ranked.Search): the candidate pool takes the rows as they
    come, without removing repeats. Deep searches too, where IVF answers short lists
    exactly, and past the end of the store, where rows are padded with -1."""
    vectors = clustered[:3_000]
    index = VectorIndex(vectors, IndexSettings(kind))
    for k in (10, 276, 3_100):
        rows, _ = index.search(vectors[:40], k)
        for found in rows:
            found = found[found >= 0]
            assert len(found) == len(set(found.tolist())) == min(k, len(vectors))
