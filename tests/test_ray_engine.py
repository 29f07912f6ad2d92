"""The Ray engine gives the local engine's results: same vectors, same lists, same cache.

Cluster tests start a local Ray cluster of 2 CPUs in this process (2 encoder actors, ranking
shards on 2 worker processes) and shut it down afterwards. Unit tests need no cluster.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from recs import store
from recs.backends import EncoderSettings, load_encoder
from recs.encoder import HashingEncoder
from recs.errors import EngineError, ModelError, StoreWriteError
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.ray_engine import RayEngine, check_reachable, job_failure, shards
from tests.conftest import BIN, EXAMPLES, read_jsonl

CLUSTER_CPUS = 2


# --- no cluster -------------------------------------------------------------------------


def test_shards_cover_every_row_once_in_order():
    rows = list(range(3, 1003))
    parts = shards(rows, 4, min_rows=10)
    assert [len(p) for p in parts] == [250, 250, 250, 250]
    assert [r for p in parts for r in p] == rows
    assert shards(rows, 4, min_rows=600) == [rows[:600], rows[600:]]
    assert shards([7], 8) == [[7]]
    assert shards([], 8) == []


def test_a_workers_recs_error_reaches_the_user_as_itself():
    class TaskError(Exception):  # shaped like Ray's RayTaskError: the original in .cause
        def __init__(self, cause: BaseException) -> None:
            super().__init__("Traceback (most recent call last):\n ...\nModelError: no model")
            self.cause = cause

    original = ModelError("cannot load the model in /models/x: no such file")
    wrapped = RuntimeError("the actor died")
    wrapped.__cause__ = TaskError(original)
    assert job_failure(TaskError(original), "embedding") is original
    assert job_failure(wrapped, "embedding") is original


def test_any_other_failure_is_one_line_naming_the_stage():
    error = job_failure(RuntimeError("Traceback ...\n  File x\nValueError: boom\n"), "ranking")
    assert isinstance(error, EngineError)
    assert str(error).startswith("ranking on Ray failed: ValueError: boom")
    assert "\n" not in str(error)


# --- on a local Ray cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A fresh local Ray cluster with 2 CPUs for this module; its address."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",  # never join a cluster that happens to run on this machine
        num_cpus=CLUSTER_CPUS,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        object_store_memory=500 * 1024 * 1024,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def ray_engine(model: str | None = "hashing") -> RayEngine:
    return RayEngine(EncoderSettings.portable(model))


def same_snapshots(a: store.Snapshot, b: store.Snapshot) -> None:
    assert [x.url for x in a.articles] == [x.url for x in b.articles]
    assert np.array_equal(a.vectors, b.vectors), "bit-identical vectors"
    assert a.related == b.related
    assert np.array_equal(a.floors, b.floors)


class FailingJob:
    """A ranking job that fails on the worker, as a user error or as a bug."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, rows, progress):
        raise self.error

    def share(self):
        pass


@pytest.mark.e2e
@pytest.mark.model
@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_sample_corpus_with_the_real_model_equals_local(
    backend, ray_cluster, model_encoder, tmp_path
):
    # The production encoder itself (auto picks ONNX), not the session memo of its vectors.
    encoder = model_encoder.inner if backend == "auto" else load_encoder(None, backend)
    local, _ = build(EXAMPLES, tmp_path / "local", encoder, RankSettings())
    engine = RayEngine(EncoderSettings.portable(None, backend, tmp_path / "ray"))
    assert engine.cpus() == CLUSTER_CPUS
    remote, report = build(EXAMPLES, tmp_path / "ray", encoder, RankSettings(), engine=engine)
    assert report.embedded == len(local) > 40
    same_snapshots(remote, local)

    _, again = build(EXAMPLES, tmp_path / "ray", encoder, RankSettings(), engine=engine)
    assert (again.embedded, again.recomputed, again.published) == (0, 0, False)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_incremental_builds_on_ray_equal_local_full_builds(ray_cluster, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES, content)
    engine = ray_engine()
    encoder = HashingEncoder()
    settings = RankSettings(pool=10)  # below the corpus size, so a change recomputes few lists
    first, report = build(content, tmp_path / "ray", encoder, settings, engine=engine)
    assert report.embedded == len(first)

    edited = sorted(content.rglob("*.md"))[3]
    text = edited.read_text(encoding="utf-8")
    edited.write_text(text.replace('excerpt: "', 'excerpt: "Updated: ', 1), encoding="utf-8")
    sorted(content.rglob("*.md"))[10].unlink()
    second, report = build(content, tmp_path / "ray", encoder, settings, engine=engine)
    assert (report.embedded, report.removed) == (1, 1)
    assert 0 < report.recomputed < len(second)  # only the lists the change can reach
    local, _ = build(content, tmp_path / "local", encoder, settings)
    same_snapshots(second, local)


@pytest.mark.e2e
@pytest.mark.data
@pytest.mark.timeout(900)
def test_10k_huffpost_articles_equal_local(ray_cluster, tmp_path):
    # The hashing encoder keeps CI short; the real model's equality is the sample test's.
    content = tmp_path / "content"
    content.mkdir()
    lines = [
        json.dumps(
            {
                "title": row["title"],
                "excerpt": row["excerpt"],
                "webUrl": row["url"],
                "publishedDateTime": row["date"],
                "provider": {"name": row["provider"], "domain": "huffpost.com"},
                "category": row["label"],
            }
        )
        for row in read_jsonl("huffpost.jsonl")
    ]
    assert len(lines) == 10_000
    (content / "huffpost.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    encoder = HashingEncoder()
    local, local_report = build(content, tmp_path / "local", encoder, RankSettings())
    engine = ray_engine()
    remote, report = build(content, tmp_path / "ray", encoder, RankSettings(), engine=engine)
    assert report.embedded == local_report.embedded == len(local) > 9_900
    same_snapshots(remote, local)

    _, again = build(content, tmp_path / "ray", encoder, RankSettings(), engine=engine)
    assert (again.embedded, again.reused, again.published) == (0, len(local), False)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_cli_build_on_a_cluster_by_address(ray_cluster, tmp_path):
    # RAY_AUTH_MODE (set by ray.init) and HOME stay: they lead a client to the cluster's token.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_MODEL"] = "hashing"
    command = [str(BIN / "recs"), "build", str(EXAMPLES), "--store", str(tmp_path / "ray")]
    command += ["--engine", "ray", "--address", ray_cluster, "--quiet"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert first.returncode == 0, first.stderr
    assert " 0 reused" in first.stdout and "published gen-000001" in first.stdout
    local, _ = build(EXAMPLES, tmp_path / "local", HashingEncoder(), RankSettings())
    same_snapshots(store.load(tmp_path / "ray"), local)

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert second.returncode == 0, second.stderr
    assert f": 0 embedded, {len(local)} reused" in second.stdout
    assert "unchanged (gen-000001)" in second.stdout


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_cli_regenerate_on_ray_writes_the_same_files(ray_cluster, tmp_path):
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(EXAMPLES, local_dir)
    shutil.copytree(EXAMPLES, ray_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env["RECS_MODEL"] = "hashing"
    runs = [
        [local_dir, "--store", str(tmp_path / "local-store")],
        [ray_dir, "--store", str(tmp_path / "ray-store"), "--engine", "ray"],
    ]
    for content, *options in runs:
        command = [str(BIN / "recs"), "regenerate", str(content), *options, "--quiet"]
        if "ray" in options:
            command += ["--address", ray_cluster]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
        assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(local_dir) for p in local_dir.rglob("*.md"))
    assert len(files) > 40
    changed = [f for f in files if (local_dir / f).read_bytes() != (EXAMPLES / f).read_bytes()]
    assert changed, "regenerate wrote related blocks"
    for name in files:
        assert (ray_dir / name).read_bytes() == (local_dir / name).read_bytes(), name


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_failures_on_workers_are_one_line_errors(ray_cluster):
    import ray.cloudpickle

    # Workers cannot import this test module by name: send FailingJob's code itself.
    ray.cloudpickle.register_pickle_by_value(sys.modules[FailingJob.__module__])
    engine = ray_engine()
    user_error = StoreWriteError("the disk is full: free some space")
    with pytest.raises(StoreWriteError, match=r"^the disk is full: free some space$"):
        engine.rank(FailingJob(user_error), range(10))
    with pytest.raises(EngineError, match=r"^ranking on Ray failed: .*ValueError: a bug"):
        engine.rank(FailingJob(ValueError("a bug")), range(10))


def test_the_engine_refuses_another_model_than_the_build_uses():
    engine = RayEngine(EncoderSettings(model="hashing"))
    with pytest.raises(ModelError, match="give the engine the same --model"):
        engine.embed(HashingEncoder(dim=128), ["a text"])


def test_addresses_are_checked_before_ray_waits_on_them():
    check_reachable(None)
    check_reachable("auto")
    with pytest.raises(EngineError, match="is not HOST:PORT, ray://HOST:PORT or auto"):
        check_reachable("cluster-head")
    with pytest.raises(
        EngineError, match=r"cannot connect to the Ray cluster at ray://127\.0\.0\.1:1"
    ):
        check_reachable("ray://127.0.0.1:1")


@pytest.mark.e2e
def test_cli_with_an_unreachable_cluster_prints_one_line(topic_corpus, tmp_path):
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECS_", "RAY_"))}
    command = [str(BIN / "recs"), "build", str(topic_corpus), "--store", str(tmp_path / "s")]
    command += ["--model", "hashing", "--engine", "ray", "--address", "127.0.0.1:1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == EngineError.exit_code
    assert result.stderr.startswith("error: cannot connect to the Ray cluster at 127.0.0.1:1")
    assert result.stderr.count("\n") == 1
    assert not store.exists(tmp_path / "s")
