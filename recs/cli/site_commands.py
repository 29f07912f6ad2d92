"""The command that sets a site up for recs: init."""

from __future__ import annotations

from pathlib import Path

import click

from recs.cli.options import PATH, echo_err


@click.command()
@click.argument(
    "site_dir", type=PATH, help="The root folder of a Hugo, Jekyll, Eleventy or Astro site"
)
@click.option("--force", is_flag=True, help="Replace recs.toml and the partial if they exist")
def init(site_dir: Path, force: bool) -> None:
    """Write recs.toml and a template partial into a site, and print what to add by hand."""
    from recs.site_init import init_site
    from recs.sites import NAMES

    report = init_site(site_dir, force=force)
    click.echo(
        f"{NAMES[report.generator]} site {site_dir}: wrote "
        + ", ".join(str(path) for path in report.written)
    )
    for warning in report.warnings:
        echo_err(f"warning: {warning}")
    for step in report.steps:
        click.echo(step)
