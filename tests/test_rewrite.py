"""Rewriting one file's related block: the seed's style, byte-exact everywhere else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.corpus import parse_article_text, read_front_matter
from recs.frontmatter import load_yaml
from recs.rewrite import RewriteError, current_block, plain_ok, quote, render_block, rewrite
from tests.conftest import EXAMPLES, SEED

MATH = EXAMPLES / "education" / "is-chinese-math-education-as-good-as-it-seems.md"


@pytest.fixture(scope="module")
def seed() -> bytes:
    return SEED.read_bytes()


@pytest.fixture(scope="module")
def math_entry() -> dict:
    return parse_article_text(MATH.read_bytes(), "math.md").entry()


def seed_block(seed: bytes) -> bytes:
    start = seed.index(b"related:\n")
    return seed[start : seed.index(b"\n\nsecured:", start) + 1]


def without_block(seed: bytes) -> bytes:
    """The seed with its related block (and the blank line after it) cut out."""
    block = seed_block(seed)
    return seed.replace(block + b"\n", b"")


def test_render_block_is_the_seeds_block_byte_for_byte(seed, math_entry):
    assert render_block([math_entry]).encode() == seed_block(seed)


def test_rewriting_the_seed_with_its_own_entry_changes_no_byte(seed, math_entry):
    assert rewrite(seed, [math_entry]) == seed


def test_block_is_inserted_before_secured_with_the_files_blank_line(seed, math_entry):
    bare = without_block(seed)
    assert b"related:" not in bare
    assert rewrite(bare, [math_entry]) == seed


def test_insert_without_blank_lines_adds_none(math_entry):
    text = b'---\ntitle: "A"\nexcerpt: "B"\nsecured: "x"\n---\nbody\n'
    new = rewrite(text, [math_entry])
    assert new.startswith(b'---\ntitle: "A"\nexcerpt: "B"\nrelated:\n  - title: ')
    assert new.endswith(b'        isCached: true\nsecured: "x"\n---\nbody\n')


def test_insert_at_end_of_front_matter_keeps_blank_line_style():
    blank = b'---\ntitle: "A"\n\ntopics:\n  - X\n---\nbody'
    assert rewrite(blank, []) == b'---\ntitle: "A"\n\ntopics:\n  - X\n\nrelated: []\n---\nbody'
    compact = b'---\ntitle: "A"\nexcerpt: "B"\n---\n'
    assert rewrite(compact, []) == b'---\ntitle: "A"\nexcerpt: "B"\nrelated: []\n---\n'
    trailing = b'---\ntitle: "A"\n\nexcerpt: "B"\n\n---\n'
    assert rewrite(trailing, []) == b'---\ntitle: "A"\n\nexcerpt: "B"\n\nrelated: []\n\n---\n'


def test_empty_result_writes_an_empty_list(seed):
    new = rewrite(seed, [])
    assert new == seed.replace(seed_block(seed), b"related: []\n")
    assert rewrite(new, []) == new


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="bom"),
        pytest.param(lambda b: b.rstrip(b"\n"), id="no-final-newline"),
        pytest.param(lambda b: b.replace(b"type: article\n", b"type: article\r\n", 1), id="mixed"),
        pytest.param(
            lambda b: b.replace(b"quality: 39\n", b"quality: 39  # hand-set\n"), id="comment"
        ),
        pytest.param(
            lambda b: b.replace(b"name: Sixth Tone\n", b"name: 'Sixth Tone'\n", 1), id="quoting"
        ),
        pytest.param(
            lambda b: b.replace(b"\n---\n", b"\n---\nrelated: body text\n---\n"), id="body"
        ),
    ],
)
def test_everything_outside_the_block_is_kept(seed, math_entry, transform):
    original = transform(seed)
    other = dict(math_entry, title='A "new" title\\with\nbreaks')
    new = rewrite(original, [other])
    assert new != original
    # Only the block differs: the bytes before and after it are the original's.
    start = original.index(b"related:\n") if b"related:\n" in original else None
    start = original.index(b"related:")
    old_end = original.index(b"secured:")
    new_end = new.index(b"secured:")
    assert new[:start] == original[:start]
    assert new[new_end:] == original[old_end:]
    blank = b"\r\n" if original[old_end - 2 : old_end] == b"\r\n" else b"\n"
    assert new[new_end - len(blank) * 2 : new_end] == blank * 2
    # And the result reads back with the new entry, everything else equal.
    assert rewrite(new, [other]) == new
    assert rewrite(new, [math_entry]) == original


def test_block_keeps_the_files_line_ending(seed, math_entry):
    crlf = seed.replace(b"\n", b"\r\n")
    new = rewrite(crlf, [dict(math_entry, title="Other")])
    assert b"\n" not in new.replace(b"\r\n", b"")
    assert b'  - title: "Other"\r\n' in new


def test_indentless_block_and_comments_inside_it_are_replaced(math_entry):
    text = (
        b"---\ntitle: T\nexcerpt: E\nrelated:\n- title: old\n# a note\n  webUrl: x\n"
        b"# kept: not followed by block content\nsecured: s\n---\n"
    )
    new = rewrite(text, [])
    kept = b"# kept: not followed by block content\n"
    assert new == b"---\ntitle: T\nexcerpt: E\nrelated: []\n" + kept + b"secured: s\n---\n"


def test_unsafe_layout_is_refused_not_damaged():
    # A flow sequence whose closing bracket sits in column 0 cannot be cut line by line.
    text = b"---\ntitle: T\nexcerpt: E\nrelated: [\n  a\n]\nother: 1\n---\n"
    with pytest.raises(RewriteError, match="cannot be replaced"):
        rewrite(text, [])


def test_files_without_front_matter_are_refused():
    with pytest.raises(RewriteError, match="no front matter"):
        rewrite(b"just text\n", [])
    with pytest.raises(RewriteError, match="UTF-8"):
        rewrite(b"---\ntitle: \xff\n---\n", [])


def test_current_block(seed):
    assert current_block(seed) == seed_block(seed).decode()
    assert current_block(without_block(seed)) is None


def test_values_are_written_in_the_seeds_style():
    entry = {
        "title": "Plain title",
        "excerpt": "",
        "publishedDateTime": "2022-02-25 03:15:00+08:00",
        "webUrl": "https://e.com/a?b=1&c=2",
        "type": "true",
        "provider": {"name": "A: B", "domain": "e.com"},
        "quality": 12.5,
        "images": [{"url": "https://e.com/i.jpg", "tags": [], "meta": {}}],
    }
    block = render_block([entry])
    assert block == (
        "related:\n"
        '  - title: "Plain title"\n'
        '    excerpt: ""\n'
        "    publishedDateTime: 2022-02-25 03:15:00+08:00\n"
        '    webUrl: "https://e.com/a?b=1&c=2"\n'
        '    type: "true"\n'
        "    provider:\n"
        '      name: "A: B"\n'
        "      domain: e.com\n"
        "    quality: 12.5\n"
        "    images:\n"
        '      - url: "https://e.com/i.jpg"\n'
        "        tags: []\n"
        "        meta: {}\n"
    )
    assert load_yaml(block) == {"related": [entry]}


def test_quote_escapes():
    assert quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quote("line\nbreak\ttab\x00\x7f\u2028\ufeff") == (
        '"line\\nbreak\\ttab\\0\\x7F\\L\\uFEFF"'
    )
    assert quote("Crème brûlée ’") == '"Crème brûlée ’"'


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(text)
@settings(max_examples=300, deadline=None)
def test_quoted_and_plain_text_reads_back_exactly(value):
    assert load_yaml(f"k: {quote(value)}\n") == {"k": value}
    if plain_ok(value):
        assert load_yaml(f"k: {value}\n") == {"k": value}


scalars = st.one_of(
    text,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
entries = st.lists(
    st.fixed_dictionaries(
        {"title": text, "webUrl": text},
        optional={
            "excerpt": text,
            "type": text,
            "quality": scalars,
            "provider": st.dictionaries(st.sampled_from(["name", "domain", "x y"]), scalars),
            "images": st.lists(
                st.fixed_dictionaries({"url": text}, optional={"width": scalars}), max_size=2
            ),
        },
    ),
    max_size=3,
)


@given(entries)
@settings(max_examples=150, deadline=None)
def test_rewrite_round_trips_and_is_idempotent(seed, items):
    new = rewrite(seed, items)
    assert rewrite(new, items) == new
    assert read_front_matter(new)["related"] == items
    assert new.endswith(seed[seed.index(b"\nsecured:") :])
