"""The related list in TOML front matter: an array of tables, everything else byte for byte.

Golden files: tests/golden/toml/NAME.in.md rewritten with ENTRIES (EMPTY_CASES: with
none) must give NAME.out.md exactly; `RECS_UPDATE_GOLDEN=1` writes the .out files anew
(read them before committing).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.corpus import read_front_matter
from recs.rewrite import RewriteError, current_block, rewrite
from recs.rewrite_toml import render_block, value_text

GOLDEN = Path(__file__).parent / "golden" / "toml"
ENTRIES = [
    {
        "title": 'Why Does Bread Rise? "The Science"',
        "excerpt": "Yeast eats sugars\nand breathes out CO₂.",
        "publishedDateTime": "2024-02-14T10:00:00Z",
        "webUrl": "https://blog.example.org/2024/02/why-does-bread-rise/",
        "type": "article",
        "provider": {"name": "Field Notes", "domain": "blog.example.org"},
        "quality": 0.5,
        "images": [{"url": "https://blog.example.org/img/a.jpg", "width": 800}],
    },
    {"title": "Second", "excerpt": "", "webUrl": "https://blog.example.org/second/"},
]
EMPTY_CASES = {"empty", "inline"}
CASES = sorted(p.name.removesuffix(".in.md") for p in GOLDEN.glob("*.in.md"))


@pytest.mark.parametrize("name", CASES)
def test_golden_rewrites(name):
    raw = (GOLDEN / f"{name}.in.md").read_bytes()
    entries = [] if name in EMPTY_CASES else ENTRIES
    new = rewrite(raw, entries)
    out = GOLDEN / f"{name}.out.md"
    if os.environ.get("RECS_UPDATE_GOLDEN"):
        out.write_bytes(new)
    assert new == out.read_bytes()
    assert rewrite(new, entries) == new  # a second run changes nothing
    assert read_front_matter(new)["related"] == entries
    written = {k: v for k, v in read_front_matter(raw).items() if k != "related"}
    assert {k: v for k, v in read_front_matter(new).items() if k != "related"} == written


def test_only_the_front_matter_changes():
    raw = (GOLDEN / "crlf-tables.in.md").read_bytes()
    new = rewrite(raw, ENTRIES)
    assert new.startswith(raw[: raw.index(b"[params]")])
    assert new.endswith(b"+++\r\nBody.\r\n") and b"\n" not in new.replace(b"\r\n", b"")
    bom = rewrite((GOLDEN / "bom.in.md").read_bytes(), ENTRIES)
    assert bom.startswith(b"\xef\xbb\xbf+++\n") and bom.endswith(b"+++\nLast line")


def test_current_block_finds_the_tables():
    new = rewrite((GOLDEN / "replace.in.md").read_bytes(), ENTRIES[1:])
    block = current_block(new)
    assert block is not None and block.startswith('[[related]]\ntitle = "Second"')
    assert current_block(b'+++\ntitle = "T"\n+++\n') is None


def test_render_block_is_an_array_of_tables_in_entry_order():
    block = render_block(ENTRIES)
    assert block.count("\n[[related]]\n") == 2
    first = block.split("[[related]]")[1]
    keys = [line.split(" = ")[0] for line in first.strip().splitlines()]
    assert keys == list(ENTRIES[0])
    assert tomllib.loads(block)["related"] == ENTRIES
    assert render_block([]) == "related = []\n"


def test_json_front_matter_is_reported_not_written():
    raw = b'{"title": "T", "excerpt": "E"}\nbody\n'
    with pytest.raises(RewriteError, match=r"JSON front matter.*recs export --site"):
        rewrite(raw, ENTRIES)


def test_a_layout_the_edit_cannot_handle_is_refused_not_damaged():
    # `related` as a sub-table of another table: replacing it would touch that table.
    raw = b'+++\ntitle = "T"\n[params]\nrelated = "mine"\n[params.related]\n+++\n'
    with pytest.raises(RewriteError):
        rewrite(raw, ENTRIES)


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(value=values.filter(lambda v: v is not None))
def test_every_value_reads_back_as_written(value):
    from recs.rewrite_toml import without_nulls

    assert tomllib.loads(f"k = {value_text(value)}\n")["k"] == without_nulls(value)
