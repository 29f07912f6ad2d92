"""recs/frontmatter.py: where the front matter sits and which kind it is; YAML loaded
safely, timestamps as written, duplicate keys refused, too deep or too big refused."""

from __future__ import annotations

import json
import math
import re

import pytest

from recs.corpus import parse_article_text
from recs.frontmatter import (
    MAX_DEPTH,
    MAX_NODES,
    ArticleError,
    check_shape,
    find_front_matter,
    load_yaml,
)


def test_alias_bomb_is_refused_without_expanding():
    bomb = [
        "---",
        'title: "t"',
        'excerpt: "e"',
        'webUrl: "https://a.com/x"',
        "a: &a [x, x, x, x, x, x, x, x, x, x]",
    ]
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    bomb.append("---")
    with pytest.raises(ArticleError, match="more than"):
        parse_article_text("\n".join(bomb).encode(), "bomb.md")


@pytest.mark.parametrize("depth", [30, 5000])
def test_deep_nesting_is_refused(depth):
    deep = (
        "---\ntitle: t\nexcerpt: e\nwebUrl: https://a.com/x\nd: "
        + "[" * depth
        + "]" * depth
        + "\n---\n"
    )
    with pytest.raises(ArticleError, match="nest"):
        parse_article_text(deep.encode(), "deep.md")


@pytest.mark.parametrize(
    ("text", "kind", "front", "body", "first_line"),
    [
        ("---\ntitle: T\n---\nBody\n", "yaml", "title: T\n", "Body\n", 2),
        ("---\r\ntitle: T\r\n---\r\nBody", "yaml", "title: T\r\n", "Body", 2),
        ("---\rtitle: T\r---\rBody", "yaml", "title: T\r", "Body", 2),  # old Mac line ends
        ("--- \ntitle: T\n...\nBody", "yaml", "title: T\n", "Body", 2),  # YAML's end marker
        ("---\ntitle: T\n---", "yaml", "title: T\n", "", 2),
        ('+++\ntitle = "T"\n+++\nBody', "toml", 'title = "T"\n', "Body", 2),
        ('{"title": "}{", "a": {"b": "\\""}}\nBody', "json", None, "Body", 1),
    ],
    ids=["lf", "crlf", "cr", "dots", "no body", "toml", "json"],
)
def test_the_front_matter_is_found_by_the_files_opening(text, kind, front, body, first_line):
    fm = find_front_matter(text)
    assert fm.kind == kind and text[fm.body :] == body and fm.first_line == first_line
    if front is not None:
        assert text[fm.start : fm.end] == front
    else:  # JSON: the whole object, braces in strings not counted
        assert json.loads(text[fm.start : fm.end]) == {"title": "}{", "a": {"b": '"'}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: T\n", "no front matter: the file must start with a line '---' (YAML), "),
        ("---title: T\n---\n", "no front matter"),
        ("---\ntitle: T\n", "front matter opened with '---' on line 1 is never closed"),
        ('+++title = "T"\n+++\n', "no front matter: the file must start with a line '+++'"),
        ('+++\ntitle = "T"\n', "front matter opened with '+++' on line 1 is never closed"),
        ('{"title": "T"\n', "JSON front matter opened with '{' on line 1 is never closed"),
    ],
)
def test_a_missing_or_unclosed_front_matter_is_an_error_on_line_1(text, message):
    with pytest.raises(ArticleError) as error:
        find_front_matter(text)
    assert error.value.reason.startswith(message) and error.value.line == 1


def test_yaml_timestamps_stay_as_written():
    data = load_yaml("date: 2022-02-21T03:37:00Z\nday: 2022-02-21\nn: 3\nok: true\nx: ~\n")
    assert data == {
        "date": "2022-02-21T03:37:00Z",
        "day": "2022-02-21",
        "n": 3,
        "ok": True,
        "x": None,
    }


def test_a_duplicate_key_is_an_error_naming_both_lines():
    with pytest.raises(ArticleError) as error:
        load_yaml("title: a\nexcerpt: b\ntitle: c\n", first_line=2)
    assert "duplicate key 'title' (first on line 1)" in error.value.reason
    assert error.value.line == 4  # the file's line: the front matter starts on line 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n: !!int x\n", "'x' cannot be read as int"),
        ("b: !!bool maybe\n", "'maybe' cannot be read as bool"),
        ("t: !!timestamp soon\n", "'soon' cannot be read as timestamp"),
        ("title: 'unclosed\n", "invalid YAML"),
        ("bad: \x07\n", "character U+0007 is not allowed"),
    ],
)
def test_yaml_errors_say_what_is_wrong(text, message):
    with pytest.raises(ArticleError, match=re.escape(message)):
        load_yaml(text)


def test_shapes_beyond_the_limits_or_of_other_types_are_refused():
    check_shape({"a": [1, 2.5, True, None, {"b": "text"}]})  # what front matter holds
    nested: object = "deep"
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(ArticleError, match=f"nested more than {MAX_DEPTH} levels"):
        check_shape(nested)
    with pytest.raises(ArticleError, match=f"more than {MAX_NODES} values"):
        check_shape(list(range(MAX_NODES)))
    with pytest.raises(ArticleError, match="non-finite number"):
        check_shape({"x": math.nan})
    with pytest.raises(ArticleError, match="a key of type tuple"):
        check_shape({(1, 2): "x"})
    with pytest.raises(ArticleError, match="a value of type bytes"):
        check_shape({"x": b"raw"})
    with pytest.raises(ArticleError, match=r"escaped lone surrogate \(\\ud800\)"):
        check_shape({"x": "a\ud800"})
