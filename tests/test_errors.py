"""recs/errors.py: errors a user can act on, each with its exit code and HTTP status, and
text made safe to print as one line."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recs import errors
from recs.errors import Problem, RecsError, ShrinkRefused, one_line

ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, RecsError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", ERRORS, ids=[cls.__name__ for cls in ERRORS])
def test_every_error_has_a_message_an_exit_code_a_status_and_a_title(cls):
    error = cls("run `recs build CONTENT_DIR` first")
    assert str(error) == error.message == "run `recs build CONTENT_DIR` first"
    assert error.exit_code != 0 and 400 <= error.status < 600 and error.title
    assert cls.__doc__  # what it means, for whoever raises it


def test_a_wrong_input_is_a_usage_error_and_a_busy_store_is_worth_retrying():
    # The CLI's exit codes follow sysexits.h where one fits, so scripts can tell them apart.
    assert errors.InvalidInput.exit_code == errors.ConfigError.exit_code == 2
    assert errors.StoreLocked.exit_code == 75  # EX_TEMPFAIL
    assert errors.StoreWriteError.exit_code == 74  # EX_IOERR
    assert errors.BadRequest.status == 400 and issubclass(errors.BadRequest, errors.InvalidInput)
    assert errors.ArticleNotFound.status == 404


def test_a_refused_shrink_keeps_the_skipped_files_that_explain_it():
    problems = (Problem("site/post.md", 1, "no front matter"),)
    error = ShrinkRefused("this build would remove 12 of the 12 stored articles", problems)
    assert error.problems == list(problems) and error.exit_code == 65
    assert ShrinkRefused("no files").problems == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, é and 中文", "plain text, é and 中文"),
        ("x.md\nskipped fake.md", "x.md\\nskipped fake.md"),
        ("tab\there", "tab\\there"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("del\x7f and c1\x85", "del\\x7f and c1\\x85"),
        ("invoice\u202egnp.exe", "invoice\\u202egnp.exe"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        ("line\u2028separator", "line\\u2028separator"),
        ("caf\udce9.md", "caf\\udce9.md"),  # an undecodable byte of a file name
    ],
)
def test_one_line_escapes_what_would_break_or_forge_a_line(text, shown):
    assert one_line(text) == shown


@given(st.text())
def test_one_line_of_any_text_is_one_printable_line(text):
    shown = one_line(text)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert not any(c in shown for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    shown.encode("utf-8")  # printable: no lone surrogate is left
    if text.isprintable():
        assert shown == text


def test_a_problem_is_one_line_naming_the_file_and_line():
    assert str(Problem("news/a.md", 4, "title: must be text")) == "news/a.md:4: title: must be text"
    assert str(Problem("news/a.md", None, "empty file")) == "news/a.md: empty file"
    forged = Problem("x.md\nskipped y.md", 2, "bad\x1b[31m")
    assert str(forged) == "x.md\\nskipped y.md:2: bad\\x1b[31m"
