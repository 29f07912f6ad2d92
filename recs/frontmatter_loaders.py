"""Loading front matter of any kind: the kind -> loader table, and the TOML and JSON loaders.

`load_front_matter` reads the front matter `find_front_matter` located, by its kind: YAML
(recs.frontmatter.load_yaml), TOML (Hugo's `+++`) or JSON (Hugo's `{ ... }`). All three
give the same value shapes (mappings, lists, text, numbers, booleans) under the same
limits: the file size (checked by the reader), depth and value counts (`check_shape`),
duplicate keys an error, and nothing executed (TOML and JSON have no tags to run).

TOML dates and times become their ISO 8601 text (`1979-05-27T07:32:00Z` reads as
"1979-05-27T07:32:00Z", a local date as "1979-05-27"), as a YAML date stays the text it
was written as: a related entry repeats an article's date as text. JSON's NaN and Infinity
are refused, as a YAML `.nan` is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

from recs.frontmatter import MAX_DEPTH, MAX_NODES, ArticleError, FrontMatter, check_shape, load_yaml

# A text longer than MAX_NODES characters is first counted (strings and comments taken
# out): every value needs a `=`, `:`, `,`, `[` or `{` of its own, so a count over the
# limit refuses a flat list of a million numbers before a million objects exist.
_TOML_SKIP = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*'
)
_JSON_SKIP = re.compile(r'"(?:[^"\\]|\\.)*"')
_MARKS = re.compile(r"[=:,\[{]")
_TOML_LINE = re.compile(r"at line (\d+)")
_LONE_CR = re.compile(r"\r(?!\n)")


def _count_values(text: str, skip: re.Pattern[str]) -> None:
    if len(text) <= MAX_NODES:
        return
    if len(_MARKS.findall(skip.sub("", text))) > 2 * MAX_NODES:
        raise ArticleError(
            f"front matter has more than {MAX_NODES} values; an article needs far fewer"
        )


def _iso(value: Any) -> Any:
    """TOML's date and time values as ISO 8601 text, recursively; UTC as `Z`."""
    if isinstance(value, dict):
        return {key: _iso(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_iso(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


def load_toml(text: str, first_line: int = 1) -> Any:
    """Load TOML front matter; errors carry the file line (first_line = line of text[0])."""
    _count_values(text, _TOML_SKIP)
    try:
        data = tomllib.loads(_LONE_CR.sub("\n", text))  # old Mac files end lines with CR
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _TOML_LINE.search(message)
        line = first_line + int(found.group(1)) - 1 if found else None
        reason = _TOML_LINE.sub("", message).replace("(, column", "(column").strip()
        if reason.startswith(("Cannot overwrite", "Cannot declare")):
            reason = f"a key or table is set twice ({reason})"
        raise ArticleError(f"invalid TOML: {reason}", line) from None
    except RecursionError:
        raise ArticleError(f"front matter is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as error:  # an integer too long to convert
        raise ArticleError(f"invalid TOML: {error}") from None
    data = _iso(data)
    check_shape(data)
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise ArticleError(f"invalid JSON: duplicate key {key!r}")
        mapping[key] = value
    return mapping


def _no_constant(name: str) -> Any:
    raise ArticleError(f"invalid JSON: {name} is not a number an article may hold")


def load_json(text: str, first_line: int = 1) -> Any:
    """Load JSON front matter (one object); errors carry the file line."""
    _count_values(text, _JSON_SKIP)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ArticleError(f"invalid JSON: {error.msg}", first_line + error.lineno - 1) from None
    except RecursionError:
        raise ArticleError(f"front matter is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as error:  # an integer too long to convert
        raise ArticleError(f"invalid JSON: {error}") from None
    check_shape(data)
    return data


LOADERS: dict[str, Callable[[str, int], Any]] = {
    "yaml": load_yaml,
    "toml": load_toml,
    "json": load_json,
}


def load_front_matter(text: str, fm: FrontMatter) -> Any:
    """The front matter of a file's text, loaded by its kind."""
    return LOADERS[fm.kind](text[fm.start : fm.end], fm.first_line)
