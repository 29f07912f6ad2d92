"""`recs init SITE_DIR`: set a site up for recs without touching anything of its own.

It detects the generator (recs.sites), then writes two new files: `recs.toml` (what recs
found: generator, base URL, content folder, and the field mapping's defaults as comments)
and the generator's template partial (recs.site_templates). An existing file is never
replaced unless `force`; nothing else in the site is changed. What a person still does
by hand (one line in a layout, the build commands) comes back as text to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recs.errors import ConfigError, InvalidInput
from recs.fsio import write_atomic
from recs.options import FieldMap
from recs.site_templates import ASTRO_COLLECTION, PARTIALS
from recs.sites import CONFIG_NAME, NAMES, detect, open_site

PLACEHOLDER_URL = "https://example.com/"


@dataclass
class InitReport:
    """What `init_site` wrote and what the person still has to do."""

    generator: str
    written: list[Path] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _list(keys: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{k}"' for k in keys) + "]"


def config_text(generator: str, base_url: str, found_base: bool, content: str) -> str:
    """The recs.toml `recs init` writes."""
    defaults = FieldMap()
    where = "found in the site's config" if found_base else "CHANGE THIS to the site's address"
    return f"""\
# How recs reads this site (docs/sites.md). Written by `recs init`; edit freely.
generator = "{generator}"
# The address the site is published at ({where}).
base_url = "{base_url}"
# The folder of article files, relative to this file.
content = "{content}"

# Which front-matter keys each field is read from: the first a file has wins. These are
# the defaults; uncomment a line to change it.
[fields]
# title = {_list(defaults.title)}
# excerpt = {_list(defaults.excerpt)}
# excerpt_from_body = true   # else the body's first paragraph
# date = {_list(defaults.date)}
# topics = {_list(defaults.topics)}   # every one of them
# draft = {_list(defaults.draft)}
# url = {_list(defaults.url)}   # else the site's permalink rules
"""


def init_site(site_dir: Path, force: bool = False) -> InitReport:
    """Write recs.toml and the template partial into a site; see the module docstring."""
    site_dir = Path(site_dir)
    if not site_dir.is_dir():
        raise InvalidInput(f"{site_dir} is not a folder: give the root folder of a site")
    detected = detect(site_dir)
    if detected is None:
        raise InvalidInput(
            f"no Hugo, Jekyll, Eleventy or Astro config in {site_dir} (hugo.toml, _config.yml, "
            "eleventy.config.js, astro.config.mjs, ...): give a site's root folder"
        )
    generator, config_file = detected
    report = InitReport(generator)
    try:
        site = open_site(site_dir, config=None, base_url=None)
        base_url, found_base = (site.read.urls.base_url if site.read.urls else ""), True
    except ConfigError:  # no usable base URL in the generator's config
        site = open_site(site_dir, base_url=PLACEHOLDER_URL)
        base_url, found_base = PLACEHOLDER_URL, False
        report.warnings.append(
            f"no base URL in {config_file.name}: edit base_url in {site_dir / CONFIG_NAME}"
        )
    content = site.content_dir.relative_to(site_dir).as_posix() if site.content_dir else "."
    key = generator
    include_root = site_dir
    if generator == "eleventy":
        include_root = site.content_dir
        includes = include_root / "_includes"
        if any(includes.rglob("*.liquid")) and not any(includes.rglob("*.njk")):
            key = "eleventy-liquid"
    partial, text, line = PARTIALS[key]
    files = [
        (site_dir / CONFIG_NAME, config_text(generator, base_url, found_base, content)),
        (include_root / partial, text),
    ]
    existing = [path for path, _ in files if path.exists()]
    if existing and not force:
        raise InvalidInput(
            f"{existing[0]} exists already; nothing was written (--force replaces "
            f"{'them' if len(existing) > 1 else 'it'})"
        )
    for path, body in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, body.encode("utf-8"))
        report.written.append(path)
    report.steps = _steps(generator, site_dir, line, site.data_file)
    return report


def _steps(generator: str, site_dir: Path, line: str, data_file: Path | None) -> list[str]:
    name = NAMES[generator]
    data = data_file.relative_to(site_dir).as_posix() if data_file else "?"
    layout = {
        "hugo": "layouts/_default/single.html",
        "jekyll": "_layouts/post.html",
        "eleventy": "your post layout in _includes/",
        "astro": "the page that renders a post (e.g. src/pages/blog/[...slug].astro)",
    }[generator]
    build = {
        "hugo": f"hugo --source {site_dir}",
        "jekyll": f"(cd {site_dir} && bundle exec jekyll build)",
        "eleventy": f"(cd {site_dir} && npx @11ty/eleventy)",
        "astro": f"(cd {site_dir} && npx astro build)",
    }[generator]
    steps = [
        f"1. Add this line to {layout}, where the list should appear:\n     {line}",
        f"2. Build the site with its related lists ({name} reads {data}):\n"
        f"     recs build {site_dir} && recs export --site {site_dir} && {build}",
    ]
    if generator == "jekyll":
        steps.append(
            "3. Keep recs' files out of the built site: add to _config.yml\n"
            "     exclude: [recs.toml, embeddings]"
        )
    if generator == "astro":
        steps.append(
            "3. Load the data file as a collection, in src/content.config.ts:\n"
            + "\n".join("     " + row for row in ASTRO_COLLECTION.splitlines())
        )
    return steps
