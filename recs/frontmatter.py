"""Front matter: where the YAML sits in an article file, and safe loading of it.

Loading is `yaml.safe_load` with three changes: timestamps stay the strings they were
written as (a related entry repeats `publishedDateTime` exactly), duplicate keys are an
error instead of "last one wins", and structures that are too deep or too large (alias
bombs count every reference) are refused before anything walks them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

MAX_DEPTH = 20
MAX_NODES = 20_000


class ArticleError(ValueError):
    """A single article cannot be used; carries the line when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """Safe loading; timestamps stay strings as written; duplicate keys are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first on line {seen[key_node.value]})",
                        key_node.start_mark,
                    )
                seen[key_node.value] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ArticleError(f"front matter has a non-finite number ({item})")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise ArticleError(
                f"front matter has a value of type {type(item).__name__}; "
                "only text, numbers, booleans, lists and mappings are allowed"
            )


def load_yaml(text: str, first_line: int = 1) -> Any:
    """Safe-load one YAML document; errors carry the file line (first_line = line of text[0])."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = first_line + mark.line if mark else None
        problem = (error.problem or "invalid YAML").strip()
        if error.context:
            problem = f"{error.context.strip()}: {problem}"
        raise ArticleError(f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as error:
        raise ArticleError(f"invalid YAML: {error}") from None
    except RecursionError:
        raise ArticleError(f"front matter is nested more than {MAX_DEPTH} levels deep") from None
    check_shape(data)
    return data


_FENCE = re.compile(r"---[ \t]*(\r\n|\n|\r)?")
_CLOSE = re.compile(r"^(---|\.\.\.)[ \t]*(\r\n|\n|\r|$)", re.MULTILINE)


@dataclass(frozen=True)
class FrontMatter:
    """Where the front matter sits in a file's text (offsets into the text, BOM excluded)."""

    start: int  # first character of the YAML
    end: int  # first character of the closing fence line
    body: int  # first character after the closing fence line
    first_line: int  # file line number of text[start]


def find_front_matter(text: str) -> FrontMatter:
    """Locate the YAML between the opening `---` line and the closing `---` (or `...`) line."""
    opening = _FENCE.match(text)
    if not opening or not opening.group(1):
        raise ArticleError("no front matter: the file must start with a line '---'", 1)
    start = opening.end()
    closing = _CLOSE.search(text, start)
    if not closing:
        raise ArticleError("front matter opened with '---' on line 1 is never closed", 1)
    return FrontMatter(start=start, end=closing.start(), body=closing.end(), first_line=2)
