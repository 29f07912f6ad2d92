"""Engines: the local engine is today's build; choosing Ray without Ray says how to get it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from recs.backends import EncoderSettings
from recs.catalog import Catalog
from recs.cli import main
from recs.encoder import HashingEncoder, embed_all
from recs.engine import LOCAL, LocalEngine, can_fork, open_engine
from recs.errors import ConfigError, EngineError, InvalidInput
from recs.index import VectorIndex
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.related import CorpusJob, link_all
from tests.test_rank import make_articles
from tests.test_related import clustered_vectors


def test_local_engine_is_embed_all_and_the_job_itself():
    texts = ["alpha beta gamma", "delta epsilon", "zeta eta theta iota"]
    encoder = HashingEncoder()
    assert np.array_equal(LOCAL.embed(encoder, texts), embed_all(encoder, texts))

    articles = make_articles(40)
    vectors = clustered_vectors(40, 3)
    lists = link_all(articles, vectors, RankSettings(limit=3))
    catalog = Catalog.from_articles(articles, vectors)
    job = CorpusJob(articles, vectors, catalog, VectorIndex(vectors), RankSettings(limit=3))
    ranked = LocalEngine().rank(job, [5, 17])
    assert sorted(ranked) == [5, 17]
    assert ranked[5].items == lists.related[5] and ranked[17].items == lists.related[17]


def test_build_takes_an_engine_and_reports_its_progress(topic_corpus, tmp_path):
    stages: list[str] = []

    class Watching(LocalEngine):
        def embed(self, encoder, texts, progress):
            stages.append(f"embed {len(texts)}")
            return super().embed(encoder, texts, progress)

        def rank(self, job, rows, progress):
            stages.append(f"rank {len(list(rows))}")
            return super().rank(job, rows, progress)

    default, _ = build(topic_corpus, tmp_path / "a", HashingEncoder(), RankSettings())
    watched, _ = build(
        topic_corpus, tmp_path / "b", HashingEncoder(), RankSettings(), engine=Watching()
    )
    assert stages == ["embed 12", "rank 12"]
    assert watched.related == default.related


forking = pytest.mark.skipif(not can_fork(), reason="ranking in processes needs fork")


def corpus_job(n: int) -> tuple[CorpusJob, list]:
    articles = make_articles(n)
    vectors = clustered_vectors(n, 11)
    settings = RankSettings(limit=4)
    catalog = Catalog.from_articles(articles, vectors)
    return CorpusJob(articles, vectors, catalog, VectorIndex(vectors), settings), articles


@forking
@pytest.mark.timeout(300)  # a fork-unsafe OpenMP in the workers would hang, not fail
def test_ranking_in_processes_gives_the_lists_of_one_process():
    job, articles = corpus_job(2400)
    rows = [*range(0, 2400, 2), 1, 2399]
    # The parent searches with FAISS (OpenMP threads) before forking, as a build does.
    alone = LOCAL.rank(job, rows)
    seen: list[tuple[int, int]] = []
    forked = LocalEngine(processes=2).rank(
        job, rows, lambda _s, done, total: seen.append((done, total))
    )
    assert forked == alone
    assert set(forked) == set(rows)
    assert seen[0] == (0, len(rows)) and seen[-1] == (len(rows), len(rows))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    # And a whole build through the CLI's engine equals the one-process build.
    vectors = job.vectors
    assert link_all(articles, vectors, job.settings, engine=LocalEngine(2)).related == (
        link_all(articles, vectors, job.settings).related
    )


class Recording:
    """A ranking job that records which process ranked each row, or fails on one row."""

    def __init__(self, fail_on: int | None = None, kill_on: int | None = None) -> None:
        self.fail_on, self.kill_on = fail_on, kill_on

    def __call__(self, rows, progress):
        if self.fail_on in rows:
            raise InvalidInput(f"row {self.fail_on} is broken")
        if self.kill_on in rows:
            os.kill(os.getpid(), signal.SIGKILL)
        return {row: os.getpid() for row in rows}

    def share(self):
        pass  # nothing to build before the workers fork


@forking
def test_ranking_processes_are_used_only_for_enough_rows():
    few = LocalEngine(processes=2).rank(Recording(), range(999))
    assert set(few.values()) == {os.getpid()}, "999 rows are ranked here: forking costs more"
    many = LocalEngine(processes=2).rank(Recording(), range(3000))
    assert sorted(many) == list(range(3000))
    workers = set(many.values())
    # Which worker takes which task is the pool's business: at most 2, never this process.
    assert os.getpid() not in workers and 1 <= len(workers) <= 2
    assert set(LocalEngine(processes=1).rank(Recording(), range(3000)).values()) == {os.getpid()}


@forking
def test_a_failing_or_dying_ranking_process_is_reported():
    with pytest.raises(InvalidInput, match="row 2100 is broken"):
        LocalEngine(processes=2).rank(Recording(fail_on=2100), range(3000))
    with pytest.raises(EngineError, match="a ranking process died"):
        LocalEngine(processes=2).rank(Recording(kill_on=10), range(3000))


def test_the_number_of_ranking_processes_is_checked(topic_corpus, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="1 or more"):
        LocalEngine(processes=0)
    assert open_engine("local", processes=1) is LOCAL
    assert open_engine("local", processes=3).processes == 3
    monkeypatch.setenv("RECS_MODEL", "hashing")
    monkeypatch.setenv("RECS_JOBS", "-2")
    assert (
        main(["build", str(topic_corpus), "--store", str(tmp_path / "s")]) == ConfigError.exit_code
    )
    assert "RECS_JOBS must be between 0 (one per core) and 1024" in capsys.readouterr().err
    monkeypatch.setenv("RECS_JOBS", "0")  # one per core
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q", "-j", "2"]) == 0


def test_open_engine_checks_its_arguments():
    assert open_engine("local") is LOCAL
    with pytest.raises(ConfigError, match="RECS_ENGINE/--engine 'spark'"):
        open_engine("spark")
    with pytest.raises(ConfigError, match="--address is for the Ray engine"):
        open_engine("local", "auto")


def test_without_ray_the_ray_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    with pytest.raises(EngineError, match=r"pip install 'recs\[ray\]'"):
        open_engine("ray")


@pytest.mark.parametrize("command", ["build", "regenerate"])
def test_cli_without_ray_prints_one_line(command, topic_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("RECS_MODEL", "hashing")
    code = main([command, str(topic_corpus), "--store", str(tmp_path / "s"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == EngineError.exit_code
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "pip install 'recs[ray]'" in err
    assert not (tmp_path / "s").exists(), "fails before reading or writing anything"


def test_encoder_settings_travel_with_absolute_paths(tmp_path, monkeypatch):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    portable = EncoderSettings.portable("my-model", "torch", Path("store"))
    assert portable == EncoderSettings(str(model_dir.resolve()), "torch", tmp_path / "store")
    (tmp_path / "hashing").mkdir()  # a folder named like the built-in encoder changes nothing
    assert EncoderSettings.portable("hashing").model == "hashing"
    assert EncoderSettings.portable(None).model is None
    assert EncoderSettings.portable("hashing").load().model_id == HashingEncoder().model_id
