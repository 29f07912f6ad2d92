"""Drafts: reading an unsaved article file, and the front-matter lines an editor copies
(`recs related --draft --format block`), which `recs regenerate` must take as its own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recs.articles import ENTRY_FIELDS
from recs.cli import main
from recs.draft import block_entries, front_matter_lines, read_draft
from recs.errors import InvalidInput
from recs.frontmatter import load_yaml
from recs.options import ReadOptions
from recs.rewrite import render_block
from tests.conftest import article_text

NEW_URL = "https://example.com/space/new"
DRAFT_TITLE = "Space station crew launch on a rocket"
DRAFT_EXCERPT = "The space rocket launch takes a crew to the space station in orbit."


def test_read_draft_reads_front_matter_without_a_url(tmp_path):
    path = tmp_path / "draft.md"
    path.write_text('---\ntitle: "A draft"\nexcerpt: ""\nrelated: []\n---\nBody\n')
    assert read_draft(path) == {"title": "A draft", "excerpt": "", "related": []}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("no front matter here\n", "draft.md"),
        ("---\n- a list\n---\n", "not a mapping"),
        ("---\ntitle: [unclosed\n---\n", "draft.md:"),
        ("---\ntitle: x\n" + "excerpt: " + "y" * 2000 + "\n---\n", "RECS_MAX_FILE_BYTES"),
    ],
)
def test_read_draft_says_what_is_wrong_with_the_file(tmp_path, content, message):
    path = tmp_path / "draft.md"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        read_draft(path, ReadOptions(max_file_bytes=1024))


TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
ENTRY = st.dictionaries(
    st.sampled_from([*ENTRY_FIELDS, "score", "similarity", "pinned", "reason"]),
    TEXT,
).map(lambda entry: {"title": "t", **entry})


@given(st.lists(ENTRY, max_size=4))
def test_block_entries_keep_the_article_fields_in_entry_order_and_nothing_else(entries):
    for kept, entry in zip(block_entries(entries), entries, strict=True):
        assert list(kept) == [key for key in ENTRY_FIELDS if key in entry]
        assert all(kept[key] == entry[key] for key in kept)


def test_front_matter_lines_load_back_with_the_configured_keys():
    entries = [{"title": 'Quote " and: colon', "webUrl": "https://a.example/x", "score": 0.5}]
    read = ReadOptions(pinned_key="pins", excluded_key="never")
    text = front_matter_lines(entries, ["https://a.example/p#x"], ["https://b.example/?q=1"], read)
    assert text.endswith(render_block(block_entries(entries)))
    assert load_yaml(text) == {
        "pins": ["https://a.example/p#x"],
        "never": ["https://b.example/?q=1"],
        "related": [{"title": 'Quote " and: colon', "webUrl": "https://a.example/x"}],
    }
    assert front_matter_lines([]) == "related: []\n"


def test_the_draft_block_is_what_regenerate_writes(cli_built, capsys):
    """Paste `--format block` into the new article's file: `recs regenerate` keeps it
    byte for byte (the same list, in the same style), as for the preview's copy button."""
    content, store_dir = cli_built
    path = content / "space" / "new.md"
    path.write_text(article_text(DRAFT_TITLE, DRAFT_EXCERPT, NEW_URL))
    args = ["related", "--draft", str(path), "--store", str(store_dir), "--format", "block"]
    assert main(args) == 0
    block = capsys.readouterr().out
    assert block.startswith("related:\n  - title: ") and "score" not in block
    text = path.read_text().replace("---\nBody text.", block + "---\nBody text.")
    path.write_text(text)
    assert main(["regenerate", str(content), "--store", str(store_dir), "--limit", "3"]) == 0
    assert "0 skipped" in capsys.readouterr().out
    assert path.read_text() == text
