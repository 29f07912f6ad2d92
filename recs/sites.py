"""A site: which generator made it, where its articles are, and how to read them.

`open_site(path)` looks at the folder a command was given:

1. a `recs.toml` there (or the file `--config` / RECS_CONFIG names) says what it knows;
2. the generator is detected by its config file: Hugo (`hugo.toml|yaml|json`, or
   `config.toml|yaml|json` beside `content/`, `layouts/` or `themes/`), Jekyll
   (`_config.yml`), Eleventy (`eleventy.config.js`, `.eleventy.js`, ...), Astro
   (`astro.config.mjs`, ...);
3. a folder that is none of these, but the content folder of a site in its parent
   folder, is read as that site's;
4. anything else is a plain content folder, read as it always was.

From the generator's config come the content folder (Hugo's `contentDir`, Jekyll's
`_posts`, Eleventy's input folder, Astro's `src/content`), the base URL (Hugo's `baseURL`,
Jekyll's `url` + `baseurl`, Astro's `site` + `base`, Eleventy's `_data/metadata.json` or
`_data/site.json` `url`) and the permalink rules (recs.permalinks), and where the
generator reads data files (`recs export --site`). recs.toml overrides any of them and
maps front-matter keys (`[fields]`); docs/sites.md describes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recs.articles import is_web_url
from recs.errors import ConfigError
from recs.frontmatter import ArticleError, load_yaml
from recs.frontmatter_loaders import load_json, load_toml
from recs.options import FieldMap, ReadOptions, UrlRules
from recs.permalinks import GENERATORS

CONFIG_NAME = "recs.toml"
NAMES = {"hugo": "Hugo", "jekyll": "Jekyll", "eleventy": "Eleventy", "astro": "Astro"}
CONFIG_FILES = {
    "hugo": ("hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json", "config/_default/hugo.toml"),
    "jekyll": ("_config.yml", "_config.yaml", "_config.toml"),
    "eleventy": (
        "eleventy.config.js",
        "eleventy.config.mjs",
        "eleventy.config.cjs",
        "eleventy.config.ts",
        ".eleventy.js",
        ".eleventy.cjs",
        ".eleventy.mjs",
    ),
    "astro": ("astro.config.mjs", "astro.config.js", "astro.config.ts", "astro.config.mts"),
}
HUGO_OLD_NAMES = ("config.toml", "config.yaml", "config.yml", "config.json")
HUGO_FOLDERS = ("content", "layouts", "themes", "archetypes")
# Folders of a content folder that hold no articles, by generator.
SKIPPED = {
    "eleventy": ("node_modules", "_site", "_includes", "_data", "_layouts"),
    "astro": (),
    "hugo": (),
    "jekyll": (),
}
TOP_KEYS = frozenset({"generator", "content", "base_url", "data_file", "skip", "fields"})
TOP_KEYS |= {"permalinks"}
FIELD_KEYS = frozenset(f.name for f in fields(FieldMap))  # what a [fields] table may set
_JS_STRING = r"""\s*[:=]\s*["'`]([^"'`]+)["'`]"""


@dataclass(frozen=True)
class Site:
    """A folder recs was pointed at, as read: the generator, the content folder, and the
    options its files are read with."""

    root: Path
    generator: str  # hugo, jekyll, eleventy, astro or plain
    content_dir: Path
    read: ReadOptions
    config_file: Path | None = None  # the generator's config file, when one was read
    recs_config: Path | None = None  # the recs.toml used, if any
    data_file: Path | None = None  # where `recs export --site` writes
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str | None:
        """One line saying what was detected; None for a plain content folder."""
        if self.generator == "plain" and self.recs_config is None:
            return None
        name = NAMES.get(self.generator, "content folder")
        what = f"{name} site {self.root}" if self.generator != "plain" else f"{name} {self.root}"
        sources = [p.name for p in (self.config_file, self.recs_config) if p is not None]
        line = f"{what} ({', '.join(sources)}): reading {self.content_dir}"
        urls = self.read.urls
        if urls is not None:
            rules = ", ".join(f"{k} = {v!r}" for k, v in urls.permalinks) or "default permalinks"
            line += f"; URLs under {urls.base_url} ({rules})"
        return line


def _load_config(path: Path) -> dict[str, Any]:
    """A generator's or recs' config file (TOML, YAML or JSON), keys as written."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    loader = {".toml": load_toml, ".json": load_json}.get(path.suffix.lower(), load_yaml)
    try:
        data = loader(text, 1)
    except ArticleError as error:
        where = f"{path}:{error.line}" if error.line else str(path)
        raise ConfigError(f"{where}: {error.reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return data


def _lower(data: Mapping[str, Any]) -> dict[str, Any]:
    """Hugo's keys are case-insensitive."""
    return {str(k).lower(): v for k, v in data.items()}


def detect(folder: Path) -> tuple[str, Path] | None:
    """(generator, its config file) of a site root, or None."""
    for generator, names in CONFIG_FILES.items():
        for name in names:
            if (folder / name).is_file():
                return generator, folder / name
    if any((folder / d).is_dir() for d in HUGO_FOLDERS):
        for name in HUGO_OLD_NAMES:
            if (folder / name).is_file():
                return "hugo", folder / name
    return None


def _base(url: Any, where: str) -> str:
    if not isinstance(url, str) or not is_web_url(url):
        raise ConfigError(
            f"{where}: the base URL {url!r} is not an absolute http(s) URL; set base_url in "
            "recs.toml (or RECS_BASE_URL) to the address the site is published at"
        )
    return url.strip().rstrip("/") + "/"


def _js_setting(text: str, name: str) -> str | None:
    found = re.search(rf"\b{name}{_JS_STRING}", text)
    return found.group(1) if found else None


@dataclass
class _Found:
    """What a generator's config gives, before recs.toml overrides it."""

    content: Path
    base_url: str | None = None
    permalinks: list[tuple[str, str]] = field(default_factory=list)
    ugly_urls: bool = False
    lower_paths: bool = True
    data_file: Path | None = None
    skip: tuple[str, ...] = ()


def _hugo(root: Path, config: Path) -> _Found:
    data = _lower(_load_config(config))
    found = _Found(root / str(data.get("contentdir") or "content"))
    found.base_url = data.get("baseurl")
    permalinks = data.get("permalinks") or {}
    if isinstance(permalinks, dict) and isinstance(permalinks.get("page"), dict):
        permalinks = permalinks["page"]  # Hugo 0.112+: keyed by page kind
    if isinstance(permalinks, dict):
        found.permalinks = [(str(k), v) for k, v in permalinks.items() if isinstance(v, str)]
    found.ugly_urls = data.get("uglyurls") is True
    found.lower_paths = data.get("disablepathtolower") is not True
    found.data_file = root / str(data.get("datadir") or "data") / "related.json"
    return found


def _jekyll(root: Path, config: Path) -> _Found:
    data = _load_config(config)
    found = _Found(root / "_posts", data_file=root / "_data" / "related.json")
    url, baseurl = data.get("url"), data.get("baseurl") or ""
    if isinstance(url, str) and url and isinstance(baseurl, str):
        found.base_url = url.rstrip("/") + "/" + baseurl.strip("/")
    if isinstance(data.get("permalink"), str):
        found.permalinks = [("*", data["permalink"])]
    return found


def _eleventy(root: Path, config: Path) -> _Found:
    text = config.read_text(encoding="utf-8", errors="replace")
    input_dir = root / (_js_setting(text, "input") or ".")
    data_dir = input_dir / (_js_setting(text, "data") or "_data")
    found = _Found(input_dir, data_file=data_dir / "related.json")
    for name in ("metadata.json", "site.json"):
        if (data_dir / name).is_file():
            url = _load_config(data_dir / name).get("url")
            if isinstance(url, str) and url:
                found.base_url = url
                break
    found.permalinks = _eleventy_directory_data(input_dir)
    output = _js_setting(text, "output") or "_site"
    found.skip = (*SKIPPED["eleventy"], output.strip("./"))
    return found


def _eleventy_directory_data(input_dir: Path) -> list[tuple[str, str]]:
    """(folder, permalink) of each folder whose directory data file sets a permalink,
    deepest folder first."""
    rules = []
    for path in sorted(input_dir.rglob("*.json")):
        relative = path.parent.relative_to(input_dir).as_posix()
        if any(part in SKIPPED["eleventy"] for part in path.parts):
            continue
        if path.name not in (f"{path.parent.name}.json", f"{path.parent.name}.11tydata.json"):
            continue
        permalink = _load_config(path).get("permalink")
        if isinstance(permalink, str) and relative != ".":
            rules.append((relative, permalink))
    return sorted(rules, key=lambda rule: -rule[0].count("/"))


def _astro(root: Path, config: Path) -> _Found:
    text = config.read_text(encoding="utf-8", errors="replace")
    found = _Found(root / "src" / "content", data_file=root / "src" / "data" / "related.json")
    site, base = _js_setting(text, "site"), _js_setting(text, "base") or ""
    if site:
        found.base_url = site.rstrip("/") + "/" + base.strip("/")
    return found


READERS = {"hugo": _hugo, "jekyll": _jekyll, "eleventy": _eleventy, "astro": _astro}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a key or a list of keys")


def field_map(table: Any, where: str) -> FieldMap:
    """The [fields] table of a recs.toml as a FieldMap (unknown keys are errors)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} [fields] must be a table")
    unknown = sorted(set(table) - FIELD_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key [fields] {unknown[0]}; known: {', '.join(sorted(FIELD_KEYS))}"
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key == "excerpt_from_body":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: [fields] excerpt_from_body must be true or false")
            values[key] = value
        else:
            values[key] = _strings(value, f"{where}: [fields] {key}")
    return FieldMap(**values)


def open_site(
    path: Path,
    read: ReadOptions = ReadOptions(),
    config: Path | None = None,
    base_url: str | None = None,
) -> Site:
    """The site (or plain content folder) at `path`: see the module docstring.

    `config`: a recs.toml to use instead of `path/recs.toml`; `base_url` (RECS_BASE_URL)
    overrides every other base URL.
    """
    path = Path(path)
    if config is None and (path / CONFIG_NAME).is_file():
        config = path / CONFIG_NAME
    if config is not None and not Path(config).is_file():
        raise ConfigError(f"no recs config at {config}: give an existing recs.toml")
    settings = _load_config(Path(config)) if config is not None else {}
    where = str(config)
    unknown = sorted(set(settings) - TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(TOP_KEYS))}"
        )
    home = Path(config).parent if config is not None else path
    generator = settings.get("generator")
    detected = detect(home)
    if generator is None and detected is None and config is None:
        parent = _as_content_of_parent(path, read, base_url)
        if parent is not None:
            return parent
    if generator is None:
        generator = detected[0] if detected else "plain"
    if generator not in GENERATORS:
        raise ConfigError(f"{where}: generator {generator!r} is not one of {', '.join(GENERATORS)}")
    config_file = detected[1] if detected and detected[0] == generator else None
    if generator in READERS and config_file is not None:
        found = READERS[generator](home, config_file)
    else:
        found = _Found(home)
    if "content" in settings:
        found.content = home / str(settings["content"])
    if "data_file" in settings:
        found.data_file = home / str(settings["data_file"])
    permalinks = settings.get("permalinks")
    if permalinks is not None:
        if not isinstance(permalinks, dict) or not all(
            isinstance(v, str) for v in permalinks.values()
        ):
            raise ConfigError(f"{where}: [permalinks] must map folders to patterns")
        found.permalinks = list(permalinks.items())
    skip = _strings(settings.get("skip", []), f"{where}: skip") if "skip" in settings else ()
    fields = field_map(settings["fields"], where) if "fields" in settings else read.fields
    base = base_url or settings.get("base_url") or found.base_url
    urls = None
    if base is not None or generator != "plain":
        if base is None:
            raise ConfigError(
                f"{NAMES.get(generator, 'the')} site at {home} has no base URL: set base_url in "
                f"{CONFIG_NAME} (`recs init {home}` writes one) or RECS_BASE_URL"
            )
        source = "RECS_BASE_URL" if base_url else (where if "base_url" in settings else "config")
        urls = UrlRules(
            generator=generator,
            base_url=_base(base, source),
            permalinks=tuple(found.permalinks),
            ugly_urls=found.ugly_urls,
            lower_paths=found.lower_paths,
        )
    new_read = replace(read, fields=fields, urls=urls, skip=(*found.skip, *skip))
    return Site(
        root=path,
        generator=generator,
        content_dir=found.content,
        read=new_read,
        config_file=config_file,
        recs_config=Path(config) if config is not None else None,
        data_file=found.data_file,
    )


def _as_content_of_parent(path: Path, read: ReadOptions, base_url: str | None) -> Site | None:
    """The site whose content folder `path` is, when its parent folder is that site."""
    parent = path.resolve().parent
    if detect(parent) is None and not (parent / CONFIG_NAME).is_file():
        return None
    try:
        site = open_site(parent, read, base_url=base_url)
    except ConfigError:
        return None
    if site.content_dir.resolve() != path.resolve():
        return None
    return replace(site, root=path, content_dir=path)


# FieldMap's key lists, in its order: the fields `--explain-fields` shows.
DERIVED = tuple(f.name for f in fields(FieldMap) if f.type == "tuple[str, ...]")


def explain_fields(site: Site, file: Path) -> list[str]:
    """What each field of one article file is read as and which rule picked it (lines of
    `recs build --explain-fields`); ArticleError when the file cannot be read."""
    from recs.corpus import explain_article_text

    try:
        source = Path(file).resolve().relative_to(site.content_dir.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{file} is not inside the content folder {site.content_dir}") from None
    try:
        raw = Path(file).read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {file}: {error.strerror}") from None
    article, picks, kind = explain_article_text(raw, source, site.read)
    by_field = {pick.field: pick for pick in picks}
    lines = [f"{source}: {kind.upper()} front matter, {NAMES.get(site.generator, 'plain')} rules"]
    for name in DERIVED:
        pick = by_field.get(name)
        if pick is None:
            wanted = ", ".join(getattr(site.read.fields, name))
            extra = " or the site's permalinks" if name == "url" and site.read.urls else ""
            lines.append(f"  {name:<8} (none)  none of the keys {wanted}{extra}")
            continue
        value = json.dumps(pick.value, ensure_ascii=False)
        shown = value if len(value) <= 80 or name == "url" else value[:77] + '..."'
        lines.append(f"  {name:<8} {shown}  <- {pick.rule}")
    lines.append(f"  {'identity':<8} {article.url}  (the canonical URL recs knows it by)")
    return lines
