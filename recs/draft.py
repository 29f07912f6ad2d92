"""An article that is not stored yet (a draft): read from its file, and the front-matter
lines its file should hold.

`recs related --draft FILE` and the preview page (`/preview`, recs.web) rank a draft
against the store with `Recommender.related_to_draft`; this module reads the draft's file
and renders what an editor copies into it: the `related:` block exactly as
`recs regenerate` writes it (recs.rewrite, the entries' own fields without `score` or
any other ranking detail), after the draft's pins and exclusions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recs.articles import ENTRY_FIELDS
from recs.errors import InvalidInput, one_line
from recs.frontmatter import ArticleError
from recs.options import ReadOptions
from recs.rewrite import RELATED_KEY, quote, render_block


def read_draft(path: Path, read: ReadOptions = ReadOptions()) -> dict[str, Any]:
    """The front matter of an article file that need not be stored (nor have a URL).

    Raises InvalidInput naming the file when it cannot be read or parsed.
    """
    from recs.corpus import read_front_matter

    try:
        size = path.stat().st_size
        if size > read.max_file_bytes:
            raise InvalidInput(
                f"{one_line(str(path))}: {size:,} bytes is over the {read.max_file_bytes:,} "
                "of RECS_MAX_FILE_BYTES"
            )
        data = read_front_matter(path.read_bytes())
    except OSError as error:
        raise InvalidInput(
            f"cannot read {one_line(str(path))}: {error.strerror or error}"
        ) from None
    except ArticleError as error:
        line = f":{error.line}" if error.line else ""
        raise InvalidInput(f"{one_line(str(path))}{line}: {error.reason}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{one_line(str(path))}: the front matter is not a mapping of fields")
    return data


def block_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Related entries as a file's `related:` block holds them: the article fields of
    ENTRY_FIELDS in that order, without `score` and the other ranking details."""
    return [{key: entry[key] for key in ENTRY_FIELDS if key in entry} for entry in entries]


def front_matter_lines(
    entries: Sequence[Mapping[str, Any]],
    pinned: Sequence[str] = (),
    excluded: Sequence[str] = (),
    read: ReadOptions = ReadOptions(),
) -> str:
    """The lines to put in a draft's front matter: its pins and exclusions (when it has
    any, under RECS_PINNED_KEY and RECS_EXCLUDED_KEY) and its `related:` block, as
    `recs regenerate` writes them (LF line endings)."""
    parts = [
        f"{key}:\n" + "".join(f"  - {quote(url)}\n" for url in urls)
        for key, urls in ((read.pinned_key, pinned), (read.excluded_key, excluded))
        if urls
    ]
    parts.append(render_block(block_entries(entries), key=RELATED_KEY))
    return "".join(parts)


def url_list(fields: Mapping[str, Any], key: str) -> list[str]:
    """The URLs a draft's `key` (relatedPinned, relatedExclude) holds, as written: one
    text or a list of texts (the article's validation has already judged them)."""
    value = fields.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
