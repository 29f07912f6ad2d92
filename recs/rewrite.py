"""Replace the `related:` block of one article file as text; nothing else changes.

YAML front matter is edited here; TOML front matter by recs.rewrite_toml (an array of
tables, the same checks); JSON front matter is not written (its lists come through
`recs export --site`), and RewriteError says so.

The front matter is never round-tripped through a YAML dumper. The file is split into
lines (its own line endings kept), the top-level `related:` key and the lines that belong
to it are found, and only those lines are replaced by a block rendered in the seed's
style. Everything else (BOM, CRLF/LF/mixed endings, comments, quoting, blank lines, the
body, a missing final newline) is carried over byte for byte.

Where the block goes when a file has none: before a top-level `secured:` key when there
is one, else at the end of the front matter; when the file separates its top-level
blocks with blank lines, the inserted block gets one too. An empty list is written as
`related: []`.

Every rewrite is checked before it is written: the new front matter is loaded and must
hold exactly the old keys and values, in the old order, plus the new related list. A file
whose layout defeats the line-level edit is reported, never damaged.

The block's style, as in the seed article: two-space list indent; title, excerpt,
webUrl, originalUrl and image `url` always double-quoted (YAML escapes where needed);
other text plain when it reads back as the same text, else double-quoted;
`publishedDateTime` exactly the text the related article's own file holds; nested
`provider` and `images`; keys in the order of recs.articles.ENTRY_FIELDS.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recs import rewrite_toml
from recs.frontmatter import ArticleError, find_front_matter, load_yaml

RELATED_KEY = "related"
BOM = b"\xef\xbb\xbf"
# Keys whose text is always double-quoted (as the seed writes them).
QUOTED_KEYS = frozenset({"title", "excerpt", "webUrl", "originalUrl", "url"})
INDENT = 2

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
_BLANK = re.compile(r"[ \t]*(?:\r\n|\n|\r)?$")
_LOOKS_NUMERIC = re.compile(r"[-+.]?[0-9]")
_DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d(?:[Tt ][0-9:.]+(?:[Zz]|[-+]\d\d(?::?\d\d)?)?)?$")
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


class RewriteError(ValueError):
    """This file's related block cannot be replaced safely; the file is left as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- rendering --------------------------------------------------------------------------

_ESCAPES = {
    "\0": "\\0",
    "\x07": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\x0b": "\\v",
    "\x0c": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def _printable(char: str) -> bool:
    """YAML's printable set, less the byte order mark (nb-char)."""
    code = ord(char)
    return (
        code in (0x09, 0x0A, 0x0D, 0x85)
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    )


# Characters a double-quoted scalar cannot hold as they are: quotes, backslashes, line
# breaks, tabs, and everything outside YAML's printable set (the BOM included).
_NEEDS_ESCAPE = re.compile(
    '["\\\\]|[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]'
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    escaped = _ESCAPES.get(char)
    if escaped is not None:
        return escaped
    if ord(char) <= 0xFF:
        return f"\\x{ord(char):02X}"
    if ord(char) <= 0xFFFF:
        return f"\\u{ord(char):04X}"
    return f"\\U{ord(char):08X}"


def quote(text: str) -> str:
    """`text` as a YAML double-quoted scalar: escapes for quotes, backslashes, breaks, controls."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


@functools.lru_cache(maxsize=65_536)
def plain_ok(text: str) -> bool:
    """Whether `text` can be written unquoted and read back as the same text.

    Stricter than YAML 1.1 needs: values other readers (YAML 1.2, Go) would take for numbers
    or booleans are quoted too; date-times stay plain, as the seed writes them.
    """
    if not text or text != text.strip() or not all(_printable(c) for c in text):
        return False
    if any(c in text for c in "\t\r\n\x85\u2028\u2029"):
        return False
    if text.lower() in _RESERVED:
        return False
    if _LOOKS_NUMERIC.match(text) and not _DATE_LIKE.match(text):
        return False
    try:
        return bool(load_yaml(f"k: {text}\n") == {"k": text})
    except ArticleError:
        return False


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value).lower()
    if "." not in text and "e" in text:  # YAML 1.1 needs a dot in a float
        text = text.replace("e", ".0e", 1)
    return text


def _scalar(value: Any, key: Any = None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        if key in QUOTED_KEYS or not plain_ok(value):
            return quote(value)
        return value
    if isinstance(value, dict | list) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    raise RewriteError(f"cannot write a value of type {type(value).__name__} in a related entry")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key if plain_ok(key) and ":" not in key else quote(key)
    return _scalar(key)


def _flow(value: Any) -> str:
    """A non-empty list nested directly in a list: flow style ([...]) on one line."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return quote(value)
    return _scalar(value)


def _mapping_lines(mapping: Mapping[Any, Any], indent: int, first: str) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for number, (key, value) in enumerate(mapping.items()):
        prefix = first if number == 0 else pad
        if isinstance(value, dict) and value:
            lines.append(f"{prefix}{_key(key)}:")
            lines += _mapping_lines(value, indent + INDENT, " " * (indent + INDENT))
        elif isinstance(value, list) and value:
            lines.append(f"{prefix}{_key(key)}:")
            lines += _sequence_lines(value, indent + INDENT)
        else:
            lines.append(f"{prefix}{_key(key)}: {_scalar(value, key)}")
    return lines


def _sequence_lines(items: Sequence[Any], indent: int) -> list[str]:
    lines: list[str] = []
    dash = " " * indent + "- "
    for item in items:
        if isinstance(item, dict) and item:
            lines += _mapping_lines(item, indent + INDENT, dash)
        elif isinstance(item, list) and item:
            lines.append(dash + _flow(item))
        else:
            lines.append(dash + _scalar(item))
    return lines


def render_entry(entry: Mapping[str, Any]) -> str:
    """One list item of a block ("  - title: ...", LF line endings)."""
    return "\n".join(_sequence_lines([entry], INDENT)) + "\n"


def render_block(
    entries: Sequence[Mapping[str, Any]],
    newline: str = "\n",
    key: str = RELATED_KEY,
    rendered: Sequence[str] | None = None,
) -> str:
    """The `related:` block for `entries`, every line ending with `newline`.

    `rendered`: the entries already passed through `render_entry` (a caller writing many
    files renders each article's entry once).
    """
    if not entries:
        return f"{_key(key)}: []{newline}"
    items = rendered if rendered is not None else [render_entry(e) for e in entries]
    text = f"{_key(key)}:\n" + "".join(items)
    # Rendered values never hold a raw line break (they are escaped), so this is exact.
    return text if newline == "\n" else text.replace("\n", newline)


# --- locating and replacing -------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _newline_of(line: str, default: str = "\n") -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith(("\n", "\r")):
        return line[-1]
    return default


def _is_blank(line: str) -> bool:
    return bool(_BLANK.fullmatch(line))


def _key_line(key: str) -> re.Pattern[str]:
    name = re.escape(key)
    return re.compile(rf"(?:{name}|\"{name}\"|'{name}')[ \t]*:(?:[ \t]|\r|\n|$)")


def _block_span(lines: list[str], key: str) -> tuple[int, int] | None:
    """(first, last + 1) line indexes of the top-level `key` and its content, or None."""
    pattern = _key_line(key)
    for first, line in enumerate(lines):
        if not pattern.match(line):
            continue
        end = first + 1
        for index in range(first + 1, len(lines)):
            line = lines[index]
            if _is_blank(line) or line.startswith("#"):
                continue  # belongs to the block only if indented content follows
            if line[0] in " \t" or re.match(r"-(?:[ \t]|\r|\n|$)", line):
                end = index + 1
                continue
            break
        return first, end
    return None


def _blank_style(lines: list[str]) -> bool:
    """Whether the front matter separates its top-level blocks with blank lines."""
    content = [i for i, line in enumerate(lines) if not _is_blank(line)]
    if not content:
        return False
    return any(_is_blank(line) for line in lines[content[0] : content[-1]])


def _candidates(
    lines: list[str],
    entries: Sequence[Mapping[str, Any]],
    key: str,
    rendered: Sequence[str] | None = None,
) -> list[str]:
    """New front-matter texts to try, best first."""
    span = _block_span(lines, key)
    if span is not None:
        first, end = span
        block = render_block(entries, _newline_of(lines[first]), key, rendered)
        return ["".join(lines[:first]) + block + "".join(lines[end:])]

    candidates = []
    secured = _block_span(lines, "secured")
    if secured is not None:
        at = secured[0]
        newline = _newline_of(lines[at])
        block = render_block(entries, newline, key, rendered)
        gap = newline if at > 0 and _is_blank(lines[at - 1]) else ""
        candidates.append("".join(lines[:at]) + block + gap + "".join(lines[at:]))

    at = len(lines)
    while at > 0 and _is_blank(lines[at - 1]):
        at -= 1
    newline = _newline_of(lines[at - 1]) if at else "\n"
    block = render_block(entries, newline, key, rendered)
    gap = newline if _blank_style(lines) else ""
    candidates.append("".join(lines[:at]) + gap + block + "".join(lines[at:]))
    # Trailing blank lines may belong to a block scalar: then append after them instead.
    if at < len(lines):
        candidates.append("".join(lines) + gap + block)
    return candidates


def _plain(value: Any) -> Any:
    """Entries as the YAML loader would give them back (tuples become lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _verified(
    old: dict[Any, Any], new_yaml: str, entries: list[Any], key: str
) -> dict[Any, Any] | None:
    """The loaded new front matter if it is the old one with only `key` changed, else None."""
    try:
        new = load_yaml(new_yaml)
    except ArticleError:
        return None
    if not isinstance(new, dict) or new.get(key) != entries:
        return None
    rest_old = [(k, v) for k, v in old.items() if k != key]
    rest_new = [(k, v) for k, v in new.items() if k != key]
    return new if rest_old == rest_new else None


def split_bom(raw: bytes) -> tuple[bytes, str]:
    """(BOM or b"", the rest decoded as UTF-8); RewriteError when it is not UTF-8."""
    bom = BOM if raw.startswith(BOM) else b""
    try:
        return bom, raw[len(bom) :].decode("utf-8")
    except UnicodeDecodeError:
        raise RewriteError("not UTF-8; save the file as UTF-8") from None


JSON_REASON = (
    "JSON front matter: recs does not write related lists into it; `recs export --site` "
    "gives them to the site's templates"
)


def current_block(raw: bytes, key: str = RELATED_KEY) -> str | None:
    """The text of the file's `related:` block as it stands, or None when it has none."""
    _, text = split_bom(raw)
    try:
        fm = find_front_matter(text)
    except ArticleError as error:
        raise RewriteError(error.reason) from None
    if fm.kind == "toml":
        return rewrite_toml.current_block(text[fm.start : fm.end], key)
    if fm.kind == "json":
        raise RewriteError(JSON_REASON)
    lines = _lines(text[fm.start : fm.end])
    span = _block_span(lines, key)
    return None if span is None else "".join(lines[span[0] : span[1]])


def rewrite(raw: bytes, entries: Sequence[Mapping[str, Any]], key: str = RELATED_KEY) -> bytes:
    """The file's bytes with its `related:` block holding `entries` (the same bytes if it did).

    Raises RewriteError when the file has no front matter, is not UTF-8, or its layout does
    not allow a line-level edit that leaves every other key as it was.
    """
    return rewrite_and_load(raw, entries, key)[0]


def rewrite_and_load(
    raw: bytes,
    entries: Sequence[Mapping[str, Any]],
    key: str = RELATED_KEY,
    rendered: Sequence[str] | None = None,
) -> tuple[bytes, dict[Any, Any] | None]:
    """Like `rewrite`, plus the new front matter as loaded to check it (None: unchanged)."""
    bom, text = split_bom(raw)
    try:
        fm = find_front_matter(text)
    except ArticleError as error:
        raise RewriteError(error.reason) from None
    head, yaml_text, tail = text[: fm.start], text[fm.start : fm.end], text[fm.body :]
    fence = text[fm.end : fm.body]
    if fm.kind == "json":
        raise RewriteError(JSON_REASON)
    if fm.kind == "toml":
        try:
            new_text, loaded = rewrite_toml.rewrite_front_matter(
                yaml_text, entries, key, fm.first_line
            )
        except rewrite_toml.TomlRewriteError as error:
            raise RewriteError(str(error)) from None
        if loaded is None:
            return raw, None
        return bom + (head + new_text + fence + tail).encode("utf-8"), loaded
    lines = _lines(yaml_text)
    span = _block_span(lines, key)
    if span is not None:
        newline = _newline_of(lines[span[0]])
        if "".join(lines[span[0] : span[1]]) == render_block(entries, newline, key, rendered):
            return raw, None  # already up to date: nothing to parse or write
    try:
        old = load_yaml(yaml_text, fm.first_line)
    except ArticleError as error:
        raise RewriteError(error.reason) from None
    if not isinstance(old, dict):
        raise RewriteError("front matter is not a mapping of fields")
    wanted = _plain(list(entries))
    for candidate in _candidates(lines, entries, key, rendered):
        new = _verified(old, candidate, wanted, key)
        if new is not None:
            data = bom + (head + candidate + fence + tail).encode("utf-8")
            return data, (None if data == raw else new)
    raise RewriteError(
        f"the {key}: block cannot be replaced without touching other keys (unusual layout); "
        f"move `{key}:` to its own top-level lines or delete it, then run again"
    )
