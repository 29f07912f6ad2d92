"""Front matter: where it sits in an article file, which kind it is, and safe YAML loading.

The kind is told by the file's opening: a `---` line is YAML, a `+++` line TOML (Hugo),
`{` JSON (Hugo). TOML and JSON are loaded by recs.frontmatter_loaders under the same
limits (`check_shape`); `load_front_matter` there reads any of the three.

YAML loading is `yaml.safe_load` with three changes: timestamps stay the strings they were
written as (a related entry repeats `publishedDateTime` exactly), duplicate keys are an
error instead of "last one wins", and structures that are too deep or too large (alias
bombs count every reference) are refused before anything walks them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, cast

import yaml

MAX_DEPTH = 20
MAX_NODES = 20_000


class ArticleError(ValueError):
    """A single article cannot be used; carries the line when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


try:  # libyaml's loader when PyYAML was built with it: several times faster on a large corpus
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):
    """Safe loading; timestamps stay strings as written; duplicate keys are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        # `!!set` or `!!omap` on a scalar or a list reaches here too: PyYAML says what is wrong.
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        for key_node, _ in pairs:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first on line {seen[key_node.value]})",
                        key_node.start_mark,
                    )
                seen[key_node.value] = key_node.start_mark.line + 1
        return cast(dict[Any, Any], super().construct_mapping(node, deep=deep))


def _checked(constructor: Any) -> Any:
    """A scalar constructor whose failures are YAML errors with a line, not crashes.

    PyYAML's safe constructors raise ValueError, KeyError or AttributeError for an explicit
    tag on text it cannot hold (`!!int x`, `!!bool maybe`, `!!timestamp soon`).
    """

    def construct(loader: Any, node: yaml.Node) -> Any:
        try:
            return constructor(loader, node)
        except (ValueError, LookupError, AttributeError, TypeError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{str(node.value)[:40]!r} cannot be read as {node.tag.rsplit(':', 1)[-1]}",
                node.start_mark,
            ) from None

    return construct


for _name in ("bool", "int", "float", "timestamp", "binary"):
    _tag = "tag:yaml.org,2002:" + _name
    _Loader.add_constructor(_tag, _checked(_Loader.yaml_constructors[_tag]))

_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_text(text: str) -> None:
    # An escape such as "\ud800" gives half a UTF-16 pair: no character, and no UTF-8 for it.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ArticleError(
                f"text holds an escaped lone surrogate (\\u{ord(text[error.start]):04x}), "
                "which is not a character"
            ) from None


def check_shape(value: Any) -> None:
    """Refuse structures that are too deep or too big (alias bombs count every reference)."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ArticleError(
                f"front matter has more than {MAX_NODES} values (counting aliases); "
                "an article needs far fewer"
            )
        if depth > MAX_DEPTH:
            raise ArticleError(f"front matter is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str | int | float | bool):
                    raise ArticleError(f"front matter has a key of type {type(key).__name__}")
                if isinstance(key, str):
                    _check_text(key)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ArticleError(f"front matter has a non-finite number ({item})")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise ArticleError(
                f"front matter has a value of type {type(item).__name__}; "
                "only text, numbers, booleans, lists and mappings are allowed"
            )


# A YAML text gives at most about two parser events per character, and a document that
# passes check_shape at most 2 * MAX_NODES + a few events. Texts longer than MAX_NODES
# characters are therefore first parsed as an event stream (nothing is kept) and refused
# past MAX_EVENTS, so a flat list of a million items never becomes a million objects.
MAX_EVENTS = 2 * MAX_NODES + 8


def _count_events(text: str) -> None:
    loader = _Loader(text)
    try:
        events = 0
        while loader.check_event():
            loader.get_event()
            events += 1
            if events > MAX_EVENTS:
                raise ArticleError(
                    f"front matter has more than {MAX_NODES} values (counting aliases); "
                    "an article needs far fewer"
                )
    finally:
        loader.dispose()


def load_yaml(text: str, first_line: int = 1) -> Any:
    """Safe-load one YAML document; errors carry the file line (first_line = line of text[0])."""
    try:
        if len(text) > MAX_NODES:
            _count_events(text)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = first_line + mark.line if mark else None
        problem = (error.problem or "invalid YAML").strip()
        if "maximum nesting depth" in problem:  # libyaml's own limit, far above ours
            raise ArticleError(
                f"front matter is nested more than {MAX_DEPTH} levels deep", line
            ) from None
        if error.context:
            problem = f"{error.context.strip()}: {problem}"
        raise ArticleError(f"invalid YAML: {problem}", line) from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow
        line = first_line + text.count("\n", 0, error.position)
        raise ArticleError(
            f"invalid YAML: character U+{error.character:04X} is not allowed ({error.reason})", line
        ) from None
    except yaml.YAMLError as error:
        raise ArticleError(f"invalid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise ArticleError(f"front matter is nested more than {MAX_DEPTH} levels deep") from None
    check_shape(data)
    return data


_FENCE = re.compile(r"---[ \t]*(\r\n|\n|\r)?")
# A line starts after LF, CRLF or a lone CR (old Mac files; `^` alone knows only LF).
_CLOSE = re.compile(r"(?:^|(?<=\r))(---|\.\.\.)[ \t]*(\r\n|\n|\r|$)", re.MULTILINE)
_TOML_FENCE = re.compile(r"\+\+\+[ \t]*(\r\n|\n|\r)?")
_TOML_CLOSE = re.compile(r"(?:^|(?<=\r))\+\+\+[ \t]*(\r\n|\n|\r|$)", re.MULTILINE)
# JSON strings and braces: enough to find where the opening object closes.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]')
_LINE_END = re.compile(r"[ \t]*(\r\n|\n|\r)?")

KINDS = ("yaml", "toml", "json")


@dataclass(frozen=True)
class FrontMatter:
    """Where the front matter sits in a file's text (offsets into the text, BOM excluded)."""

    start: int  # first character of the front matter's own text
    end: int  # first character of the closing fence line (JSON: after the closing brace)
    body: int  # first character after the closing fence line
    first_line: int  # file line number of text[start]
    kind: str = "yaml"  # yaml, toml or json (KINDS)


def find_front_matter(text: str) -> FrontMatter:
    """Locate the front matter: YAML between `---` (or `...`) lines, TOML between `+++`
    lines, or a JSON object at the start of the file."""
    if text.startswith("{"):
        return _find_json(text)
    if text.startswith("+++"):
        opening = _TOML_FENCE.match(text)
        if not opening or not opening.group(1):
            raise ArticleError("no front matter: the file must start with a line '+++'", 1)
        start = opening.end()
        closing = _TOML_CLOSE.search(text, start)
        if not closing:
            raise ArticleError("front matter opened with '+++' on line 1 is never closed", 1)
        return FrontMatter(start, closing.start(), closing.end(), 2, "toml")
    opening = _FENCE.match(text)
    if not opening or not opening.group(1):
        raise ArticleError(
            "no front matter: the file must start with a line '---' (YAML), "
            "'+++' (TOML) or '{' (JSON)",
            1,
        )
    start = opening.end()
    closing = _CLOSE.search(text, start)
    if not closing:
        raise ArticleError("front matter opened with '---' on line 1 is never closed", 1)
    return FrontMatter(start=start, end=closing.start(), body=closing.end(), first_line=2)


def _find_json(text: str) -> FrontMatter:
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                end = match.end()
                after = _LINE_END.match(text, end)
                body = after.end() if after else end
                return FrontMatter(0, end, body, 1, "json")
    raise ArticleError("JSON front matter opened with '{' on line 1 is never closed", 1)
