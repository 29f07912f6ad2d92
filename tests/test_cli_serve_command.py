"""recs/cli/serve_command.py: `recs serve` refuses what cannot work in one line, before
any worker starts, and hands uvicorn the header deadline and the workers' settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from recs.cli import main


def test_serve_refuses_a_missing_store_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["serve", "--store", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no store at") and err.count("\n") == 1


def test_serve_refuses_a_store_of_another_model(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("RECS_MODEL")
    assert main(["serve", "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert (
        "was built with model hashing-384-v1" in err and "--rebuild" in err and err.count("\n") == 1
    )


def test_recs_serve_refuses_events_on_a_store_it_cannot_write(
    topic_corpus, tmp_path, monkeypatch, capsys
):
    """RECS_EVENTS=on with a read-only store is a setting that cannot work: one line at
    start-up, before any worker runs."""
    import uvicorn

    from recs.encoder import HashingEncoder
    from recs.pipeline import build
    from recs.rank_settings import RankSettings

    source = tmp_path / "store"
    build(topic_corpus, source, HashingEncoder(), RankSettings(limit=3))
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "--bind", str(source), str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    for name in ("RECS_STORE", "RECS_BACKEND", "PROMETHEUS_MULTIPROC_DIR"):
        # serve sets these; monkeypatch restores only what it touched (a delenv of an
        # unset name is not recorded), so set each first
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECS_MODEL", "hashing")
    monkeypatch.setenv("RECS_EVENTS", "on")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        assert main(["serve", "--store", str(mount)]) == 2
        assert "RECS_EVENTS is on, but cannot write reader events" in capsys.readouterr().err
        monkeypatch.setenv("RECS_EVENTS", "off")
        assert main(["serve", "--store", str(mount)]) == 0  # read-only replicas serve
        assert len(started) == 1
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_serve_runs_uvicorn_with_the_header_deadline_and_the_settings_for_its_workers(
    topic_corpus, tmp_path, monkeypatch, capsys
):
    """Workers read their settings from the environment: serve puts the store (absolute),
    the model and a fresh metrics folder there, and gives uvicorn the protocol that cuts
    off slow headers after RECS_HEADER_TIMEOUT."""
    import uvicorn

    from recs.http_protocol import HeaderDeadlineProtocol
    from recs.metrics import MULTIPROC_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", "s", "-q"]) == 0
    capsys.readouterr()
    for name in ("RECS_STORE", "RECS_BACKEND", MULTIPROC_ENV):
        monkeypatch.setenv(name, "")  # serve sets these: restored after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECS_HEADER_TIMEOUT", "2.5")
    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: runs.append((args, kwargs)))
    assert main(["serve", "--store", "s", "--port", "8123", "--workers", "3"]) == 0
    (app,), options = runs[0]
    assert app == "recs.api:create_app" and options["factory"] is True
    assert (options["host"], options["port"], options["workers"]) == ("127.0.0.1", 8123, 3)
    protocol = options["http"]
    assert protocol.func is HeaderDeadlineProtocol and protocol.keywords == {"header_timeout": 2.5}
    assert os.environ["RECS_STORE"] == str(tmp_path / "s") and os.environ["RECS_MODEL"] == "hashing"
    metrics_dir = Path(os.environ[MULTIPROC_ENV])
    try:
        assert metrics_dir.is_dir() and not any(metrics_dir.iterdir())
    finally:
        shutil.rmtree(metrics_dir)
    assert capsys.readouterr().err == (
        "recs: serving s (12 articles, gen-000001) on http://127.0.0.1:8123 with 3 worker(s)\n"
    )
