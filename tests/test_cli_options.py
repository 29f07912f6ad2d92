"""recs/cli/options.py: what the commands share: --limit bounded by RECS_MAX_LIMIT,
progress bars only on a terminal, build options from the settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recs.config import Settings


def test_the_limit_option_is_bounded_by_max_limit(monkeypatch, capsys, tmp_path):
    """`--limit` takes what the service answers: 1 to Settings.max_limit (RECS_MAX_LIMIT),
    and its help says so."""
    from recs.cli import app, main

    default_max = Settings().max_limit
    for command in ("related", "build"):
        assert f"1 to RECS_MAX_LIMIT ({default_max} unless set)" in " ".join(
            app.commands[command].get_help(click_context(app, command)).split()
        )
    missing = ["--store", str(tmp_path / "none")]
    for limit in (0, default_max + 1, 1000):
        code = main(["related", "https://a.example/x", "--limit", str(limit), *missing])
        assert code == 2, limit
        assert f"not between 1 and {default_max} (RECS_MAX_LIMIT)" in capsys.readouterr().err
    # Inside the bound the command runs (and fails later, for want of a store).
    assert main(["related", "https://a.example/x", "--limit", str(default_max), *missing]) == 1
    assert "no store" in capsys.readouterr().err
    monkeypatch.setenv("RECS_MAX_LIMIT", "80")
    assert main(["related", "https://a.example/x", "--limit", "80", *missing]) == 1
    assert main(["related", "https://a.example/x", "--limit", "81", *missing]) == 2
    assert "not between 1 and 80 (RECS_MAX_LIMIT)" in capsys.readouterr().err


def click_context(app, command: str):
    import click

    return click.Context(app.commands[command], info_name=command)


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


def test_build_options_carry_the_settings_that_shape_a_build_and_the_flags():
    from recs.cli.options import build_options
    from recs.options import BuildOptions, IndexSettings

    settings = Settings.from_env(
        {"RECS_LOCK_WAIT": "7", "RECS_KEEP_GENERATIONS": "3", "RECS_INDEX": "exact"}
    )
    options = build_options(settings, rebuild=True, strict=True)
    assert options == BuildOptions(
        strict=True,
        rebuild=True,
        lock_wait=7.0,
        keep_generations=3,
        index=IndexSettings("exact", settings.index_settings.exact_max),
    )
    assert options.label() == "build --rebuild"


def test_progress_bars_are_drawn_only_on_a_terminal_and_not_when_quiet(monkeypatch, capsys):
    from recs.cli.options import progress_bars
    from recs.progress import no_progress

    with progress_bars(quiet=True) as progress:
        assert progress is no_progress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with progress_bars(quiet=False) as progress:
        assert progress is no_progress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with progress_bars(quiet=False) as progress:
        assert progress is not no_progress
        progress("embedding", 3, 12)
        progress("embedding", 12, 12)
    err = capsys.readouterr().err
    assert "embedding" in err and "12/12" in err


def test_skipped_files_are_listed_before_a_refused_shrink_unless_quiet(capsys):
    from recs.cli.options import skipped_shown
    from recs.errors import Problem, ShrinkRefused

    refused = ShrinkRefused("not published", [Problem("site/post.md", 1, "no front matter")])
    with pytest.raises(ShrinkRefused), skipped_shown(quiet=False):
        raise refused
    assert capsys.readouterr().err == "skipped site/post.md:1: no front matter\n"
    with pytest.raises(ShrinkRefused), skipped_shown(quiet=True):
        raise refused
    assert capsys.readouterr().err == ""


def test_a_rare_slow_step_is_announced_on_stderr_unless_quiet(capsys):
    from recs.cli.options import notify

    notify(quiet=True)("exporting the model to ONNX (once)")
    assert capsys.readouterr() == ("", "")
    notify(quiet=False)("exporting the model to ONNX (once)")
    assert capsys.readouterr() == ("", "exporting the model to ONNX (once)\n")


def test_a_site_is_announced_in_one_line_and_a_plain_folder_is_not(tmp_path, capsys):
    from recs.cli.options import open_site
    from tests.conftest import EXAMPLES

    site = EXAMPLES.parent / "hugo-blog"
    opened = open_site(site, Settings())
    assert opened.generator == "hugo"
    assert capsys.readouterr().out == opened.describe() + "\n"
    open_site(site, Settings(), announce=False)
    plain = open_site(tmp_path, Settings())
    assert plain.content_dir == tmp_path and capsys.readouterr().out == ""
