"""The neighbour index: exact and HNSW search, the automatic choice, settings, pickling."""

from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from bench.synthetic import clustered_unit_vectors
from recs.config import Settings
from recs.errors import ConfigError
from recs.index import EXACT_MAX, HNSW_EXACT_K, IndexSettings, VectorIndex
from tests.conftest import BIN, EXAMPLES


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    return clustered_unit_vectors(20_000, d=64, seed=3)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_auto_is_exact_up_to_the_threshold_then_hnsw():
    assert IndexSettings().kind_for(EXACT_MAX) == "exact"
    assert IndexSettings().kind_for(EXACT_MAX + 1) == "hnsw"
    assert IndexSettings(exact_max=10).kind_for(11) == "hnsw"
    assert IndexSettings("exact").kind_for(10**7) == "exact"
    assert IndexSettings("hnsw").kind_for(3) == "hnsw"
    assert VectorIndex(np.zeros((5, 4), np.float32), IndexSettings(exact_max=4)).kind == "hnsw"
    with pytest.raises(ConfigError, match="RECS_INDEX"):
        IndexSettings("ivf")


def test_settings_from_environment():
    settings = Settings.from_env({"RECS_INDEX": "hnsw", "RECS_INDEX_EXACT_MAX": "1000"})
    assert settings.index_settings == IndexSettings("hnsw", 1000)
    assert Settings.from_env({}).index_settings == IndexSettings()
    with pytest.raises(ConfigError, match="RECS_INDEX must be one of auto, exact, hnsw"):
        Settings.from_env({"RECS_INDEX": "flat"})
    with pytest.raises(ConfigError, match="RECS_INDEX_EXACT_MAX"):
        Settings.from_env({"RECS_INDEX_EXACT_MAX": "-1"})


def test_hnsw_recall_at_10_on_clustered_vectors(clustered):
    index = VectorIndex(clustered, IndexSettings("hnsw"))
    queries = np.arange(0, len(clustered), 40)
    found, scores = index.search(clustered[queries], 11)
    truth = exact_top(clustered, clustered[queries], 11)
    recall = np.mean([len(set(f) & set(t)) / 11 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.98
    assert np.mean(found[:, 0] == queries) > 0.99  # a row finds itself first
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    # The scores are the rows' inner products.
    assert np.allclose(scores[:, 1], np.sum(clustered[queries] * clustered[found[:, 1]], axis=1))


def test_large_k_is_answered_exactly_and_never_short(clustered):
    vectors = clustered[:2_000]
    index = VectorIndex(vectors, IndexSettings("hnsw"))
    found, scores = index.search(vectors[:3], HNSW_EXACT_K + 1)
    assert np.all(found >= 0) and np.all(np.isfinite(scores))
    assert np.array_equal(found, exact_top(vectors, vectors[:3], HNSW_EXACT_K + 1))
    # k beyond the corpus pads with -1 / -inf, as the exact index does.
    found, scores = index.search(vectors[:2], 2_005)
    assert np.all(found[:, 2_000:] == -1) and np.all(scores[:, 2_000:] == -np.inf)
    assert sorted(found[0, :2_000]) == list(range(2_000))


def test_hnsw_equals_exact_when_the_search_list_holds_the_corpus():
    vectors = clustered_unit_vectors(60, d=16, seed=5)  # efSearch 64 >= 60 rows
    exact, _ = VectorIndex(vectors, IndexSettings("exact")).search(vectors, 7)
    graph, _ = VectorIndex(vectors, IndexSettings("hnsw")).search(vectors, 7)
    assert np.mean(exact == graph) > 0.999  # only exact ties may swap


def test_search_blocks_do_not_change_results(clustered, monkeypatch):
    import recs.index

    index = VectorIndex(clustered[:5_000], IndexSettings("hnsw"))
    whole, _ = index.search(clustered[:500], 10)
    monkeypatch.setattr(recs.index, "BLOCK_ROWS", 7)
    blocked, _ = index.search(clustered[:500], 10)
    assert np.array_equal(whole, blocked)


def test_pickling_drops_what_was_built(clustered):
    index = VectorIndex(clustered[:3_000], IndexSettings("hnsw")).build()
    copy = pickle.loads(pickle.dumps(index))
    assert copy._index is None and copy.kind == "hnsw"
    a, _ = index.search(clustered[:50], 5)
    b, _ = copy.search(clustered[:50], 5)  # the copy builds its own graph
    assert np.mean([len(set(x) & set(y)) / 5 for x, y in zip(a, b, strict=True)]) > 0.98


def test_empty_index_and_empty_queries():
    empty = VectorIndex(np.zeros((0, 8), np.float32), IndexSettings("hnsw"))
    rows, scores = empty.search(np.ones((2, 8), np.float32), 3)
    assert rows.shape == (2, 3) and np.all(rows == -1) and np.all(scores == -np.inf)
    some = VectorIndex(clustered_unit_vectors(100, d=8), IndexSettings("hnsw"))
    rows, _ = some.search(np.zeros((0, 8), np.float32), 3)
    assert rows.shape == (0, 3)


def test_build_with_the_hnsw_index_from_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_MODEL"] = "hashing"
    results = {}
    for kind in ("exact", "hnsw"):
        store_dir = tmp_path / kind
        command = [str(BIN / "recs"), "build", str(EXAMPLES), "--store", str(store_dir)]
        done = subprocess.run(
            [*command, "--index", kind, "-q"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        from recs import store

        results[kind] = store.load(store_dir).related
    # 53 articles, fewer than the graph search's list: HNSW must find what exact does.
    assert results["hnsw"] == results["exact"]
    bad = subprocess.run(
        [str(BIN / "recs"), "build", str(EXAMPLES), "--store", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env | {"RECS_INDEX": "annoy"},
        timeout=60,
    )
    assert bad.returncode == 2 and "RECS_INDEX must be one of auto, exact, hnsw" in bad.stderr
