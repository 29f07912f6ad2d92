"""Replace the `related` list of one file's TOML front matter as text; nothing else changes.

The TOML idiom for a list of records is an array of tables, so a related list is written
as one `[[related]]` table per entry, in rank order, a blank line before each:

    [[related]]
    title = "Why Does Bread Rise?"
    excerpt = "Yeast eats the sugars in flour..."
    publishedDateTime = "2024-02-14T10:00:00Z"
    webUrl = "https://blog.example.org/2024/02/why-does-bread-rise/"
    provider = { name = "Field Notes", domain = "blog.example.org" }
    images = [{ url = "https://blog.example.org/img/loaf.jpg", width = 800 }]

Keys are in the entry's order (recs.articles.ENTRY_FIELDS); nested mappings and lists are
inline; a value TOML cannot hold (null) is left out. An empty list is the top-level key
`related = []`, which TOML needs before the first table.

Where it goes: in place of the file's `[[related]]` tables (and their sub-tables) when it
has them, else at the end of the front matter; `related = []` in place of the file's own
top-level `related = ...`, else before the first table. Like the YAML edit, every rewrite
is checked by loading the new front matter: exactly the old keys and values plus the new
list, or the file is reported and left alone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from recs.frontmatter import ArticleError
from recs.frontmatter_loaders import load_toml

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"[ \t]*\[\[?[ \t]*([^\[\]]+?)[ \t]*\]\]?[ \t]*(?:#.*)?(?:\r\n|\n|\r)?$")
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"'}
_ESCAPES["\\"] = "\\\\"
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


class TomlRewriteError(ValueError):
    """The list cannot be replaced safely (recs.rewrite turns it into a RewriteError)."""


def _string(text: str) -> str:
    return (
        '"'
        + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(), f"\\u{ord(m.group()):04X}"), text)
        + '"'
    )


def _key(key: Any) -> str:
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else _string(text)


def value_text(value: Any) -> str:
    """A value as TOML inline text (mappings as inline tables; None never reaches here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {value_text(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value if v is not None) + "]"
    raise TomlRewriteError(f"cannot write a value of type {type(value).__name__} in TOML")


def without_nulls(value: Any) -> Any:
    """A value as its TOML text loads back: None left out, tuples as lists."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(v) for v in value if v is not None]
    return value


def render_block(
    entries: Sequence[Mapping[str, Any]], newline: str = "\n", key: str = "related"
) -> str:
    """The array of tables for `entries`, a blank line before each table."""
    if not entries:
        return f"{_key(key)} = []{newline}"
    parts = []
    for entry in entries:
        lines = [f"[[{_key(key)}]]"]
        lines += [f"{_key(k)} = {value_text(v)}" for k, v in entry.items() if v is not None]
        parts.append(newline + newline.join(lines) + newline)
    return "".join(parts)


def _newline(lines: list[str]) -> str:
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith(("\n", "\r")):
            return line[-1]
    return "\n"


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _header_path(line: str) -> str | None:
    match = _HEADER.match(line)
    return match.group(1).replace('"', "").replace("'", "").replace(" ", "") if match else None


def _spans(lines: list[str], key: str) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """(the top-level `key = ...` lines, the `[[key]]`/`[key.x]` sections), as index spans."""
    headers = [i for i, line in enumerate(lines) if _header_path(line) is not None]
    first_header = headers[0] if headers else len(lines)
    inline = None
    pattern = re.compile(rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')[ \t]*=")
    for index in range(first_header):
        if pattern.match(lines[index]):
            for end in range(index + 1, first_header + 1):
                try:
                    tomllib.loads("".join(lines[index:end]))
                except tomllib.TOMLDecodeError:
                    continue
                inline = (index, end)
                break
            break
    sections = []
    for number, start in enumerate(headers):
        path = _header_path(lines[start]) or ""
        if path != key and not path.startswith(key + "."):
            continue
        end = headers[number + 1] if number + 1 < len(headers) else len(lines)
        while end > start + 1 and _is_blank_or_comment(lines[end - 1]):
            end -= 1  # blank lines and comments before the next header go with it
        sections.append((start, end))
    return inline, sections


def current_block(fm_text: str, key: str = "related") -> str | None:
    """The text of the front matter's related list as it stands, or None."""
    lines = _LINE.findall(fm_text)
    inline, sections = _spans(lines, key)
    if inline is None and not sections:
        return None
    spans = ([inline] if inline else []) + sections
    return "".join("".join(lines[a:b]) for a, b in spans)


def _candidate(lines: list[str], entries: Sequence[Mapping[str, Any]], key: str) -> str:
    inline, sections = _spans(lines, key)
    newline = _newline(lines)
    block = render_block(entries, newline, key)
    removed: set[int] = set()
    for start, end in ([inline] if inline else []) + sections:
        removed.update(range(start, end))
    if sections and entries:
        at = sections[0][0]
        # The rendered block starts with its own blank line: take the file's one.
        while at > 0 and at - 1 not in removed and not lines[at - 1].strip():
            at -= 1
    elif inline and not entries:
        at = inline[0]
    elif entries:
        at = len(lines)
        while at > 0 and not lines[at - 1].strip():
            at -= 1
    else:  # an empty list: a top-level key, before the first table
        headers = [i for i, line in enumerate(lines) if _header_path(line) is not None]
        at = headers[0] if headers else len(lines)
        while at > 0 and _is_blank_or_comment(lines[at - 1]):
            at -= 1
    kept_before = [line for i, line in enumerate(lines[:at]) if i not in removed]
    kept_after = [line for i, line in enumerate(lines[at:], start=at) if i not in removed]
    if kept_before and not kept_before[-1].endswith(("\n", "\r")):
        kept_before[-1] += newline
    if entries:
        while kept_after and not kept_after[0].strip():
            kept_after.pop(0)  # the block's blank line before each table is its own
        if kept_after:
            kept_after.insert(0, newline)
    return "".join(kept_before) + block + "".join(kept_after)


def _up_to_date(lines: list[str], entries: Sequence[Mapping[str, Any]], key: str) -> bool:
    """Whether the file's list is already the rendered block (nothing to load or write)."""
    inline, sections = _spans(lines, key)
    newline = _newline(lines)
    block = render_block(entries, newline, key)
    if not entries:
        return inline is not None and not sections and "".join(lines[slice(*inline)]) == block
    if inline is not None or not sections:
        return False
    start, end = sections[0][0], sections[-1][1]
    blank_before = start == 0 or not lines[start - 1].strip()
    return blank_before and "".join(lines[start:end]) == block.removeprefix(newline)


def rewrite_front_matter(
    fm_text: str, entries: Sequence[Mapping[str, Any]], key: str = "related", first_line: int = 1
) -> tuple[str, dict[str, Any] | None]:
    """(the new front matter text, its loaded value, or None when nothing changed)."""
    lines = _LINE.findall(fm_text)
    if _up_to_date(lines, entries, key):
        return fm_text, None
    try:
        old = load_toml(fm_text, first_line)
    except ArticleError as error:
        raise TomlRewriteError(error.reason) from None
    new_text = _candidate(lines, entries, key)
    try:
        new = load_toml(new_text)
    except ArticleError as error:
        raise TomlRewriteError(
            f"the {key} list cannot be replaced without touching other keys ({error.reason}); "
            f"move the [[{key}]] tables to the end of the front matter or delete them"
        ) from None
    wanted = without_nulls(list(entries))
    rest_old = {k: v for k, v in old.items() if k != key}
    rest_new = {k: v for k, v in new.items() if k != key}
    if new.get(key) != wanted or rest_old != rest_new:
        raise TomlRewriteError(
            f"the {key} list cannot be replaced without touching other keys (unusual layout); "
            f"move the [[{key}]] tables to the end of the front matter or delete them"
        )
    return new_text, (None if new_text == fm_text else new)
