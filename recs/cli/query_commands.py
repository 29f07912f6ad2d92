"""The commands that read a store: related, eval (which builds in memory), export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from recs.cli.options import (
    PATH,
    backend_option,
    config_option,
    echo_err,
    encoder_of,
    limit_option,
    model_option,
    open_site,
    progress_bars,
    settings_from,
    store_option,
)
from recs.errors import one_line
from recs.rank_settings import REQUEST_FILTERS


@click.command()
@click.argument(
    "url",
    required=False,
    help="An article URL (webUrl or originalUrl, any form), its page's path on the site "
    "(/2024/01/my-post/), or the path of its file",
)
@click.option(
    "--draft",
    type=PATH,
    help="Rank this article file against the store instead (a draft that is not stored; "
    "it needs no URL); uses the model",
)
@store_option
@model_option
@backend_option
@limit_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "yaml", "block"]),
    default="json",
    help="Output format; block: the related: block as `recs regenerate` writes it",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="A request filter NAME=VALUE, repeatable: "
    + ", ".join(REQUEST_FILTERS)
    + " (docs/ranking.md; the same names as the API's)",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print each item's cosine, what the neighbour expansion, the taxonomy boost and "
    "the decay did to it, and why it is there",
)
def related(
    url: str | None,
    draft: Path | None,
    store: Path | None,
    model: str | None,
    backend: str | None,
    limit: int | None,
    output: str,
    filters: tuple[str, ...],
    explain: bool,
) -> None:
    """Print the related list of a stored article, or of a draft (--draft FILE)."""
    from recs.config import rank_options
    from recs.locate import article_url
    from recs.recommender import Recommender
    from recs.urls import canonical_url

    if url is None and draft is None:
        raise click.UsageError("Missing argument 'URL' (or --draft FILE)")
    if url is not None and draft is not None:
        raise click.UsageError("give an article URL or --draft FILE, not both")
    if explain and url is None:
        raise click.UsageError("--explain explains a stored article's list: give its URL")
    options = rank_options(filters, allowed=REQUEST_FILTERS, flag="--filter")
    settings = settings_from(store=store, model=model, backend=backend)
    if url is not None:
        if "://" in url or not (url.startswith("/") or Path(url).is_file()):
            canonical_url(url)  # a malformed URL is reported before the store is loaded
        recommender = Recommender.open(settings=settings)
        url = article_url(recommender.snapshot.articles, url)
        if explain:
            click.echo(explanation(recommender.explain(url, limit, **options)), nl=False)
            return
        items = recommender.related(url, limit=limit, **options)
    elif draft is not None:
        from recs.draft import read_draft

        fields = read_draft(draft, settings.read_options)  # a bad file fails before the store
        recommender = Recommender.open(settings=settings, check_model=True)
        items = recommender.related_to_draft(fields, limit, **options)[1]
    if output == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
    elif output == "block":
        from recs.draft import front_matter_lines

        click.echo(front_matter_lines(items, read=settings.read_options), nl=False)
    else:
        import yaml

        click.echo(
            yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=10_000), nl=False
        )


def explanation(rows: list[tuple[dict[str, Any], dict[str, float]]]) -> str:
    """A table of each item's parts: how its score came about, and why it is there."""
    lines = ["  # score  cosine  +expand  +topics   decay  why               title"]
    for place, (entry, part) in enumerate(rows, start=1):
        reason = entry["reason"]
        why = reason.get("step", reason["kind"])
        if reason.get("same_story"):
            why += f" (+{len(reason['same_story'])} same story)"
        lines.append(
            f"{place:3d} {entry['score']:6.3f} {part['cosine']:7.3f} {part['expansion']:+8.3f} "
            f"{part['boost']:+8.3f} {part['decay']:7.3f}  {why:<16}  {one_line(entry['title'])}"
        )
    if not rows:
        lines.append("  (no related article: none above the relevance floor, or filtered out)")
    lines.append(
        "score: what the list is ordered by ((cosine + expand + topics) x decay, never "
        "rising down the list); docs/ranking.md"
    )
    return "\n".join(lines) + "\n"


@click.command("eval")
@click.argument(
    "file",
    type=PATH,
    help="Labelled articles, one JSON object a line (docs/quality.md), or a folder of "
    "article files (a site or content folder) labelled by --label",
)
@click.option(
    "--label",
    default="label",
    help="The front-matter key that labels each article of a folder (e.g. categories)",
)
@config_option
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    help="A ranking option NAME=VALUE on top of RECS_RANK_*, repeatable, e.g. "
    "-o mmr_lambda=0.8 (docs/ranking.md)",
)
@click.option(
    "--compare",
    multiple=True,
    help="Also score these options on top of the others, e.g. --compare "
    "'mmr_lambda=0.8 provider_cap=1'; repeatable, the articles are embedded once",
)
@click.option("--baselines/--no-baselines", default=True, help="Also score TF-IDF and random")
@model_option
@backend_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars")
def eval_(
    file: Path,
    limit: int | None,
    as_json: bool,
    options: tuple[str, ...],
    compare: tuple[str, ...],
    baselines: bool,
    model: str | None,
    backend: str | None,
    quiet: bool,
    label: str,
    config: Path | None,
) -> None:
    """Score related lists on labelled articles: precision, nDCG, coverage, duplicates."""
    from recs.config import option_words, rank_options, with_rank_options
    from recs.evaluate import evaluate

    settings = settings_from(model=model, backend=backend, limit=limit, config=config)
    read = settings.read_options
    if file.is_dir():  # read as `recs build` reads it
        site = open_site(file, settings)
        file, read = site.content_dir, site.read
    elif settings.config is not None:  # a .jsonl file read with a site's [fields]
        read = open_site(settings.config.parent, settings, announce=False).read
    encoder = encoder_of(settings, quiet)
    rank = with_rank_options(settings.rank_for(encoder.model_id), rank_options(options))
    variants = {
        text: with_rank_options(
            rank, rank_options(option_words(text), flag="--compare"), flag="--compare"
        )
        for text in compare
    }
    with progress_bars(quiet) as progress:
        result = evaluate(
            file,
            encoder,
            rank,
            baselines=baselines,
            variants=variants,
            progress=progress,
            read=read,
            label=label,
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(result.table())


@click.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "per-article", "widget"]),
    help="json: one file, URL -> list; per-article: a folder; widget: widget.js (the "
    "<recs-related> element) into a folder, e.g. beside a per-article export  [default: "
    "json; with --site, the site generator's data file]",
)
@click.option("--out", type=PATH, help="The file (json, --site) or folder (per-article, widget)")
@click.option(
    "--site",
    type=PATH,
    metavar="SITE_DIR",
    help="Write the data file where the site's generator reads it (Hugo data/related.json, "
    "Jekyll and Eleventy _data/related.json, Astro src/data/related.json), keyed by each "
    "page's URL as its templates know it",
)
@config_option
@store_option
@limit_option
def export(
    output: str | None,
    out: Path | None,
    site: Path | None,
    config: Path | None,
    store: Path | None,
    limit: int | None,
) -> None:
    """Write every stored related list as JSON for a site build, or the browser widget."""
    from recs.export import (
        export_json,
        export_per_article,
        export_site,
        export_widget,
        written_urls,
    )
    from recs.recommender import Recommender

    if site is None and out is None:
        raise click.UsageError("give --out PATH, or --site SITE_DIR")
    if site is not None and output is not None:
        raise click.UsageError("--format does not go with --site (it writes the site's own)")
    if output == "widget":  # needs no store
        assert out is not None
        click.echo(f"widget: {export_widget(out)}")
        return
    settings = settings_from(store=store, config=config)
    if site is not None:
        opened = open_site(site, settings)
        target = out or opened.data_file
        if target is None or opened.read.urls is None:
            raise click.UsageError(f"{site} is not a Hugo, Jekyll, Eleventy or Astro site")
    recommender = Recommender.open(settings=settings)
    related_map = recommender.related_map(limit)
    articles = recommender.snapshot.articles
    if site is not None:
        changed = export_site(related_map, articles, opened.read.urls, target)
        state = "written" if changed else "unchanged"
        click.echo(f"{len(related_map)} related lists: {target} {state}")
    elif output in (None, "json"):
        assert out is not None
        changed = export_json(related_map, out, written_urls(articles))
        state = "written" if changed else "unchanged"
        click.echo(f"{len(related_map)} related lists: {out} {state}")
    else:
        assert out is not None
        report = export_per_article(related_map, out, written_urls(articles))
        for url, reason in report.skipped:
            echo_err(f"skipped {one_line(url)}: {reason}")
        skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
        click.echo(
            f"{len(related_map)} related lists: {report.written} files written, "
            f"{report.unchanged} unchanged, {report.removed} removed{skipped} in {out}"
        )
        if related_map and len(report.skipped) == len(related_map):
            echo_err(f"error: no related list could be written to {out}")
            raise click.exceptions.Exit(74)  # EX_IOERR, as for files regenerate cannot write
