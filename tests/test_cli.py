"""The `recs` command as users run it: help, build, related, errors without tracebacks."""

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


def test_a_build_off_a_terminal_draws_no_bars_and_never_imports_tqdm(topic_corpus, tmp_path):
    code = (
        "import sys; from recs.cli import main\n"
        f"code = main(['build', {str(topic_corpus)!r}, '--store', {str(tmp_path / 's')!r}])\n"
        "assert code == 0 and 'tqdm' not in sys.modules, code\n"
    )
    env = {**os.environ, "RECS_MODEL": "hashing"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "12 articles" in result.stdout and "embedding" not in result.stderr


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


def test_related_takes_request_filters(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 0
    url = "https://example.com/space/0"
    args = ["related", url, "--store", str(tmp_path / "s"), "--limit", "3"]
    capsys.readouterr()
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)[0]["webUrl"]
    assert main([*args, "--filter", f"exclude_url={first}"]) == 0
    filtered = [item["webUrl"] for item in json.loads(capsys.readouterr().out)]
    assert len(filtered) == 3 and first not in filtered
    assert main([*args, "--filter", "mmr_lambda=0.5"]) == 2
    assert "--filter 'mmr_lambda=0.5': expected NAME=VALUE" in capsys.readouterr().err


def test_unknown_url_is_one_line_and_non_zero(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 0
    capsys.readouterr()
    assert main(["related", "https://example.com/nope", "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert err == "error: no stored article has the URL https://example.com/nope\n"


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


def test_strict_exits_non_zero(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    (topic_corpus / "bad.md").write_text("---\ntitle: 3\nexcerpt: x\n---\n")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "--strict"]) == 1
    assert "bad.md:2: title: must be text" in capsys.readouterr().err


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


def test_regenerate_exits_74_when_files_cannot_be_written(
    topic_corpus, tmp_path, capsys, monkeypatch
):
    import recs.regenerate

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("RECS_MODEL", "hashing")
    monkeypatch.setattr(recs.regenerate, "write_atomic", disk_full)
    before = {p: p.read_bytes() for p in topic_corpus.rglob("*.md")}
    assert main(["regenerate", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 74
    err = capsys.readouterr().err
    assert "cannot write: No space left on device; the file is unchanged" in err
    assert "error: 12 file(s) could not be written" in err
    assert {p: p.read_bytes() for p in topic_corpus.rglob("*.md")} == before


@pytest.mark.parametrize("command", ["build", "regenerate"])
def test_a_wrong_folder_is_refused_in_one_line_with_its_skipped_files_first(
    topic_corpus, tmp_path, capsys, monkeypatch, command
):
    """A Hugo site root (TOML front matter) or an empty folder reads almost nothing: the
    command says what it would remove and how to force it, and publishes nothing."""
    from recs import store

    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q"]) == 0
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "content" / "post.md").write_text('+++\ntitle = "A post"\n+++\nBody.\n')
    capsys.readouterr()
    assert main([command, str(site), "--store", store_dir]) == 65
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("skipped content/post.md")
    assert lines[-1].startswith("error: not published: this build would remove 12 of the 12")
    assert "--allow-shrink" in lines[-1] and len(lines) == 2
    assert store.current_generation(tmp_path / "s") == "gen-000001"
    assert main([command, str(site), "--store", store_dir, "--allow-shrink", "-q"]) == 0
    assert store.current_generation(tmp_path / "s") == "gen-000002"


def test_generations_and_rollback(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "2"]) == 0
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "3"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--store", store_dir]) == 0
    assert capsys.readouterr().out.startswith(
        "published gen-000003 (rollback to gen-000001, 12 articles)"
    )
    assert main(["generations", "--store", store_dir]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  gen-000001 ") and lines[0].endswith("12 articles  build")
    assert lines[2].startswith("* gen-000003 ") and lines[2].endswith("rollback to gen-000001")
    assert lines[3].startswith("3 kept (RECS_KEEP_GENERATIONS=5)")
    assert main(["generations", "--store", store_dir, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [g["current"] for g in listed] == [False, False, True]
    assert main(["rollback", "gen-000007", "--store", store_dir]) == 2
    assert "keeps no generation 'gen-000007'" in capsys.readouterr().err


def test_skipped_lines_cannot_be_forged_by_a_file_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    content = tmp_path / "content"
    content.mkdir()
    (content / "x.md\nskipped fake.md: all good\x1b[2J.md").write_text("not an article")
    assert main(["build", str(content), "--store", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "skipped x.md\\nskipped fake.md: all good\\x1b[2J.md:1: no front matter: "
        "the file must start with a line '---' (YAML), '+++' (TOML) or '{' (JSON)"
    ]


def test_related_explain_prints_each_items_parts(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "3"]) == 0
    capsys.readouterr()
    url = "https://example.com/space/0"
    assert main(["related", url, "--store", store_dir, "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["#", "score", "cosine", "+expand", "+topics", "decay"]
    assert len(lines) == 5 and lines[1].split()[0] == "1" and "similar" in lines[1]
    assert main(["related", url, "--store", store_dir, "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert lines[1].split()[1] == f"{first['score']:.3f}" and first["title"] in lines[1]
