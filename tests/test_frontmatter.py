"""recs/frontmatter.py: where the front matter sits and which kind it is; YAML loaded
safely, timestamps as written, duplicate keys refused, too deep or too big refused."""

from __future__ import annotations

import pytest

from recs.corpus import parse_article_text
from recs.frontmatter import ArticleError


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
