"""The `recs` command as a whole (recs/cli/__init__.py): every help without heavy imports,
the script's quick exit, build and related through the real script, any command's errors
in one line. Each command's own tests are in tests/test_cli_<module>.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from recs.cli import app, main
from tests.conftest import BIN


def run(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "recs"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("command", [[], *([name] for name in app.commands)])
def test_help_imports_nothing_heavy(command):
    """`recs --help` and every command's help answer at once: no numpy, torch or pydantic."""
    code = (
        "import sys; from recs.cli import main\n"
        f"code = main({[*command, '--help']!r})\n"
        "heavy = ('numpy', 'torch', 'sentence_transformers', 'faiss', 'transformers', 'pydantic')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert code == 0 and not heavy, (code, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--help"], 0, "stdout", "Usage"),
        (["related", "u", "--store", "none"], 2, "stderr", "error:"),
    ],
)
def test_the_script_flushes_and_runs_exit_handlers_before_its_quick_exit(
    tmp_path, args, code, stream, text
):
    marker = tmp_path / "marker"
    program = (
        "import atexit, sys\n"
        "from recs import cli\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        f"sys.argv = ['recs', *{args!r}]\n"
        "print('before', end='')\n"  # still in stdout's buffer when run() exits
        "cli.run()\n"
        "print('not reached')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("before") and "not reached" not in result.stdout
    assert text in getattr(result, stream)
    assert marker.read_text() == "ran"


def test_a_profiler_still_gets_its_results_written_at_exit(tmp_path):
    out = tmp_path / "profile"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "recs", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and out.stat().st_size > 0


def test_build_and_related_through_the_real_command(topic_corpus, tmp_path, monkeypatch):
    store_dir = tmp_path / "store"
    env = {"RECS_MODEL": "hashing", "PATH": "/usr/bin:/bin"}
    result = run("build", str(topic_corpus), "--store", str(store_dir), "--limit", "3", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("12 articles: 12 embedded, 0 reused, 0 removed, 0 skipped;")
    url = "HTTP://example.com/football/0/?utm_source=newsletter"
    result = run("related", url, "--store", str(store_dir), env=env)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 3
    assert list(items[0]) == [
        "title",
        "excerpt",
        "publishedDateTime",
        "webUrl",
        "type",
        "provider",
        "quality",
        "score",
        "similarity",
        "reason",
    ]
    assert all("/football/" in item["webUrl"] for item in items)
    result = run(
        "related", url, "--store", str(store_dir), "--format", "yaml", "--limit", "1", env=env
    )
    assert yaml.safe_load(result.stdout)[0]["webUrl"] == items[0]["webUrl"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["related", "not a url"], "error: 'not a url' is not an article URL"),
        (["related", "https://a.com/x"], "error: no store at"),
        (["build", "/does/not/exist"], "error: content folder /does/not/exist does not exist"),
    ],
)
def test_user_errors_are_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECS_MODEL", "hashing")
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--nope"], "No such option '--nope'"),
        (["build", ".", "--limit", "0"], "Invalid value for '--limit'"),
        (["build", ".", "--jobs", "-1"], "Invalid value for '--jobs'"),
        (["regenerate", ".", "-j", "many"], "Invalid value for '--jobs'"),
        (["related"], "Missing argument 'URL'"),
    ],
)
def test_usage_errors_are_a_message_and_exit_2(args, message, tmp_path, capsys, monkeypatch):
    # Click's message, never a traceback.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") <= 4


def test_bad_setting_names_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_LIMIT", "many")
    assert main(["related", "https://a.com/x", "--store", str(tmp_path)]) == 2
    assert "RECS_LIMIT='many' is not valid" in capsys.readouterr().err
    monkeypatch.delenv("RECS_LIMIT")
    monkeypatch.setenv("RECS_LIMMIT", "3")
    assert main(["related", "https://a.com/x"]) == 2
    assert "unknown variable RECS_LIMMIT" in capsys.readouterr().err
