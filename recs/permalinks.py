"""A page's URL from its site's rules, for articles whose front matter holds none.

`page_url(rules, source, data, date, title)` gives the URL a generator gives the page of an
article file (`source`: its path under the content folder, with "/"), and the rule used.
What each generator does, as far as recs follows it (docs/sites.md has the full list):

- Hugo: front matter `url` is the path; else the site's `[permalinks]` pattern for the
  page's section (`:year`, `:month`, `:monthname`, `:day`, `:weekday`, `:weekdayname`,
  `:yearday`, `:section`, `:sections`, `:title`, `:slug`, `:filename`,
  `:slugorfilename`); else the file's folders and its name (the folder's name for a
  bundle's `index.md`), with `slug` in place of the name. Paths are lower-cased (unless
  `disablePathToLower`), spaces become `-`, and end in `/` (`.html` with `uglyURLs`).
- Jekyll (files of `_posts`, named `YYYY-MM-DD-title.EXT`): front matter `permalink`,
  else the site's `permalink` (a style: date, pretty, ordinal, weekdate, none; or a
  pattern with `:categories`, `:year`, `:month`, `:i_month`, `:day`, `:i_day`,
  `:y_day`, `:short_year`, `:title`, `:slug`, `:output_ext`). The date is the front
  matter's, else the file name's; `slug` replaces the name's title.
- Eleventy: front matter `permalink`, else a folder's directory data file's (`posts.json`
  or `posts.11tydata.json` in `posts/`, read when the site is opened), else the input path
  without its extension (`index` files give their folder), ending in `/`. Templated
  permalinks may use `{{ page.fileSlug }}`, `{{ page.filePathStem }}` and
  `{{ title | slugify }}`; anything else is reported.
- Astro: the site's pattern (default `/:collection/:slug/`): `:collection` is the first
  folder under `src/content`, `:slug` the front matter's `slug`, else the file's path in
  the collection, slugified, without its extension.
- plain: the file's path without its extension.

The result is the base URL joined with that path, as text; recs.urls makes it canonical.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recs.frontmatter import ArticleError
from recs.options import UrlRules

GENERATORS = ("hugo", "jekyll", "eleventy", "astro", "plain")
JEKYLL_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
ASTRO_DEFAULT = "/:collection/:slug/"
POST_NAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
_TOKEN = re.compile(r":([a-z_]+)")
_DASHES = re.compile(r"-{2,}")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_JEKYLL_PRETTY = re.compile(r"[^\w._~!$&'()+,;=@]+")
_JEKYLL_DEFAULT = re.compile(r"[^\w]+")
_ELEVENTY_VAR = re.compile(r"\{\{-?\s*([^{}]*?)\s*-?\}\}")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _stem_parts(source: str) -> tuple[list[str], str]:
    """(folders, name without extension) of a source path."""
    parts = source.split("/")
    name = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    return parts[:-1], name


def _date(date: str | None) -> datetime | None:
    if not date:
        return None
    text = date.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def hugo_urlize(text: str) -> str:
    """Hugo's path sanitising: letters, digits, marks and `._~+#@-/` kept, a run of
    spaces one `-`, anything else dropped."""
    out: list[str] = []
    for char in text.strip():
        if char.isalnum() or unicodedata.category(char).startswith("M") or char in "._~+#@-/%":
            out.append(char)
        elif char.isspace() and out and out[-1] != "-":
            out.append("-")
    return "".join(out)


def slugify(text: str) -> str:
    """ASCII letters and digits in lower case, every other run one `-` (Eleventy's
    `slugify` filter and Astro's ids, for the characters real titles use)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALNUM.sub("-", ascii_text.lower()).strip("-")


def _jekyll_slug(text: str, pretty: bool) -> str:
    """Jekyll's `Utils.slugify`: `pretty` (for `:title`, case kept) or default (`:slug`)."""
    pattern = _JEKYLL_PRETTY if pretty else _JEKYLL_DEFAULT
    slug = pattern.sub("-", text).strip("-")
    return slug if pretty else slug.lower()


def _fill(pattern: str, values: Mapping[str, str], where: str) -> str:
    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        # Longest known token first: `:slugorfilename` before `:slug`, `:title:output_ext`.
        for size in range(len(name), 0, -1):
            if name[:size] in values:
                return values[name[:size]] + name[size:]
        raise ArticleError(f"{where}: unknown permalink token :{name} in {pattern!r}")

    return _TOKEN.sub(token, pattern)


def _date_values(moment: datetime | None) -> dict[str, str]:
    if moment is None:
        return {}
    return {
        "year": f"{moment.year:04d}",
        "short_year": f"{moment.year % 100:02d}",
        "month": f"{moment.month:02d}",
        "i_month": str(moment.month),
        "monthname": _MONTHS[moment.month - 1].lower(),
        "day": f"{moment.day:02d}",
        "i_day": str(moment.day),
        "weekday": str(moment.isoweekday() % 7),
        "weekdayname": _DAYS[moment.weekday()].lower(),
        "yearday": str(moment.timetuple().tm_yday),
        "y_day": f"{moment.timetuple().tm_yday:03d}",
        "week": f"{moment.isocalendar()[1]:02d}",
        "short_day": _DAYS[moment.weekday()][:3],
    }


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _hugo(
    rules: UrlRules, source: str, data: Mapping[str, Any], date: str | None, title: str
) -> tuple[str, str]:
    folders, name = _stem_parts(source)
    if name in ("index", "_index") and folders:
        folders, name = folders[:-1], folders[-1]  # a page bundle is named by its folder
    slug = _text(data, "slug")
    explicit = _text(data, "url")
    if explicit:
        path, rule = explicit, "front matter `url`"
    else:
        section = folders[0] if folders else ""
        patterns = dict(rules.permalinks)
        pattern = patterns.get(section)
        if pattern is not None:
            values = {
                **_date_values(_date(date)),
                "section": section,
                "sections": "/".join(folders),
                "title": hugo_urlize(title).lower(),
                "slug": slug or hugo_urlize(title).lower(),
                "filename": name,
                "slugorfilename": slug or name,
            }
            path = _fill(pattern, values, source)
            rule = f"[permalinks] {section or '/'} = {pattern!r}"
        else:
            path = "/" + "/".join([*folders, slug or name])
            rule = "folders and " + ("`slug`" if slug else "file name")
        path = hugo_urlize(path)
        if rules.lower_paths:
            path = path.lower()
        if rules.ugly_urls and not path.endswith("/"):
            path += ".html"
        elif not rules.ugly_urls and not path.endswith("/") and "." not in path.rsplit("/")[-1]:
            path += "/"
    return path, f"Hugo: {rule}"


def _jekyll(
    rules: UrlRules, source: str, data: Mapping[str, Any], date: str | None
) -> tuple[str, str]:
    _, name = _stem_parts(source)
    post = POST_NAME.match(name)
    if post is None:
        raise ArticleError("not a Jekyll post name: files in _posts are named YYYY-MM-DD-title.md")
    slug = _text(data, "slug") or post.group(4)
    moment = _date(date)
    if moment is None:
        year, month, day = (int(part) for part in post.groups()[:3])
        moment = datetime(year, month, day)
    categories = data.get("categories", data.get("category"))
    if isinstance(categories, str):
        categories = categories.split()
    category_path = "/".join(
        str(c).lower() for c in categories or () if isinstance(c, str | int | float)
    )
    own = _text(data, "permalink")
    pattern = own or dict(rules.permalinks).get("*", "date")
    pattern = JEKYLL_STYLES.get(pattern, pattern)
    values = {
        **_date_values(moment),
        "categories": category_path,
        "title": _jekyll_slug(slug, pretty=True),
        "slug": _jekyll_slug(slug, pretty=False),
        "output_ext": ".html",
    }
    path = re.sub(r"/{2,}", "/", _fill(pattern, values, source))
    rule = f"front matter permalink {own!r}" if own else f"permalink {pattern!r}"
    return path, f"Jekyll: {rule}"


def _eleventy(rules: UrlRules, source: str, data: Mapping[str, Any], title: str) -> tuple[str, str]:
    folders, name = _stem_parts(source)
    index = name == "index"
    file_slug = (folders[-1] if folders else "") if index else POST_NAME.sub(r"\4", name)
    stem = "/".join([*folders, name])
    own = data.get("permalink")
    if own is False:
        raise ArticleError("permalink: false, so Eleventy writes no page for it")
    rule = "front matter `permalink`"
    if not isinstance(own, str) or not own.strip():
        own = None
        for folder, template in rules.permalinks:  # deepest folder first (recs.sites)
            if folder == "*" or source.startswith(folder + "/"):
                own, rule = template, f"directory data of {folder}/"
                break
    if own is None:
        path = "/" + "/".join(folders if index else [*folders, name])
        return (path.rstrip("/") + "/", "Eleventy: the input path")

    def value(match: re.Match[str]) -> str:
        expression = re.sub(r"\s+", " ", match.group(1))
        known = {
            "page.fileSlug": file_slug,
            "page.filePathStem": "/" + stem,
            "title | slugify": slugify(title),
            "title | slug": slugify(title),
            "page.fileSlug | slugify": slugify(file_slug),
        }
        if expression not in known:
            raise ArticleError(
                f"permalink {own!r}: recs cannot evaluate {{{{ {expression} }}}}; "
                "set the pattern in recs.toml [permalinks]"
            )
        return known[expression]

    path = _ELEVENTY_VAR.sub(value, own.strip())
    if path.endswith("/index.html"):
        path = path[: -len("index.html")]
    return ("/" + path.lstrip("/"), f"Eleventy: {rule} {own.strip()!r}")


def _astro(rules: UrlRules, source: str, data: Mapping[str, Any]) -> tuple[str, str]:
    folders, name = _stem_parts(source)
    collection = folders[0] if folders else ""
    inner = [*folders[1:], name]
    if inner[-1] == "index" and len(inner) > 1:
        inner = inner[:-1]
    slug = _text(data, "slug") or "/".join(slugify(part) for part in inner)
    pattern = dict(rules.permalinks).get(collection, dict(rules.permalinks).get("*"))
    pattern = pattern or ASTRO_DEFAULT
    path = _fill(pattern, {"collection": collection, "slug": slug}, source)
    return path, f"Astro: pattern {pattern!r}"


def page_url(
    rules: UrlRules, source: str, data: Mapping[str, Any], date: str | None, title: str
) -> tuple[str, str]:
    """(the page's absolute URL as text, the rule that made it), or ArticleError."""
    if rules.generator == "hugo":
        path, rule = _hugo(rules, source, data, date, title)
    elif rules.generator == "jekyll":
        path, rule = _jekyll(rules, source, data, date)
    elif rules.generator == "eleventy":
        path, rule = _eleventy(rules, source, data, title)
    elif rules.generator == "astro":
        path, rule = _astro(rules, source, data)
    else:
        folders, name = _stem_parts(source)
        path = "/" + "/".join(folders if name == "index" else [*folders, name])
        rule = "the file's path"
    return rules.base_url + path.lstrip("/"), f"{rule}, under {rules.base_url}"


def site_path(rules: UrlRules, url: str) -> str:
    """The page's URL as its generator's templates know it: Hugo's `.RelPermalink` (the
    base URL's path included), Jekyll's and Eleventy's `page.url` (without it)."""
    base = rules.base_url
    if not url.startswith(base):
        return url
    rest = "/" + url[len(base) :]
    if rules.generator == "hugo":
        host_end = base.find("/", base.find("//") + 2)
        return base[host_end:].rstrip("/") + rest
    return rest
