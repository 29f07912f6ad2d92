"""The commands that write a store and a content folder: build, regenerate, watch, and the
store's history: generations, rollback."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from recs.cli.options import (
    PATH,
    address_option,
    allow_shrink_option,
    backend_option,
    build_options,
    config_option,
    content_dir_argument,
    echo_err,
    encoder_of,
    engine_for,
    engine_option,
    jobs_option,
    limit_option,
    model_option,
    open_site,
    progress_bars,
    rebuild_option,
    settings_from,
    skipped_shown,
    store_option,
)
from recs.errors import RecsError, one_line


@click.command()
@content_dir_argument
@store_option
@model_option
@backend_option
@limit_option
@click.option("--strict", is_flag=True, help="Exit non-zero if any file has a problem")
@rebuild_option
@allow_shrink_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, no per-file problems")
@engine_option
@jobs_option
@address_option
@click.option(
    "--index",
    type=click.Choice(["auto", "exact", "ivf"]),
    help="Neighbour index: auto (exact up to RECS_INDEX_EXACT_MAX articles, default "
    "50000, else ivf), exact, or ivf (approximate, for large corpora) "
    "[env: RECS_INDEX; default: auto]",
)
@config_option
@click.option(
    "--explain-fields",
    type=PATH,
    metavar="FILE",
    help="Show what each field of one article file is read as, and the rule that picked "
    "it; builds nothing",
)
def build(
    content_dir: Path,
    store: Path | None,
    model: str | None,
    backend: str | None,
    limit: int | None,
    strict: bool,
    rebuild: bool,
    allow_shrink: bool,
    quiet: bool,
    engine: str | None,
    jobs: int | None,
    address: str | None,
    index: str | None,
    config: Path | None,
    explain_fields: Path | None,
) -> None:
    """Embed the articles in CONTENT_DIR and publish their related lists to the store."""
    from recs.pipeline import build as run_build

    settings = settings_from(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine,
        jobs=jobs,
        ray_address=address,
        index=index,
        config=config,
    )
    site = open_site(content_dir, settings)
    if explain_fields is not None:
        from recs.sites import explain_fields as explain

        for line in explain(site, explain_fields):
            click.echo(line)
        return
    options = build_options(settings, strict=strict, rebuild=rebuild, allow_shrink=allow_shrink)
    batch_engine = engine_for(settings)
    encoder = encoder_of(settings, quiet)
    with progress_bars(quiet) as progress, closing(batch_engine), skipped_shown(quiet):
        _, report = run_build(
            site.content_dir,
            settings.store,
            encoder,
            settings.rank_for(encoder.model_id),
            options,
            site.read,
            progress=progress,
            engine=batch_engine,
        )
    if not quiet:
        for problem in report.problems:
            echo_err(f"skipped {problem}")
    for notice in report.notices:
        echo_err(f"warning: {notice}")
    click.echo(report.summary())


@click.command()
@content_dir_argument
@store_option
@model_option
@backend_option
@limit_option
@click.option(
    "--dry-run", is_flag=True, help="Print a unified diff of what would change; write nothing"
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 listing files whose block is stale"
)
@rebuild_option
@allow_shrink_option
@click.option(
    "--allow-outside-links",
    is_flag=True,
    help="Also rewrite files reached through a symlink that leads outside CONTENT_DIR "
    "(skipped otherwise, each with a line saying so)",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars")
@engine_option
@jobs_option
@address_option
@config_option
def regenerate(
    content_dir: Path,
    store: Path | None,
    model: str | None,
    backend: str | None,
    limit: int | None,
    dry_run: bool,
    check: bool,
    rebuild: bool,
    allow_shrink: bool,
    allow_outside_links: bool,
    quiet: bool,
    engine: str | None,
    jobs: int | None,
    address: str | None,
    config: Path | None,
) -> None:
    """Update the store, then rewrite the `related:` block of every article file."""
    from recs.regenerate import Mode
    from recs.regenerate import regenerate as run_regenerate

    if dry_run and check:
        raise click.UsageError("choose one of --dry-run and --check")
    settings = settings_from(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine,
        jobs=jobs,
        ray_address=address,
        config=config,
    )
    site = open_site(content_dir, settings)
    options = build_options(settings, rebuild=rebuild, allow_shrink=allow_shrink)
    batch_engine = engine_for(settings)
    encoder = encoder_of(settings, quiet)
    mode: Mode = "dry-run" if dry_run else "check" if check else "write"
    with progress_bars(quiet) as progress, closing(batch_engine), skipped_shown(quiet):
        report = run_regenerate(
            site.content_dir,
            settings.store,
            encoder,
            settings.rank_for(encoder.model_id),
            options,
            site.read,
            mode=mode,
            progress=progress,
            engine=batch_engine,
            outside_links=allow_outside_links,
        )
    for diff in report.diffs:
        click.echo(diff, nl=False)
    for problem in report.skipped:
        echo_err(f"skipped {problem}")
    for notice in report.notices:
        echo_err(f"warning: {notice}")
    if report.cleaned:
        echo_err(f"removed {report.cleaned} temp file(s) left by an interrupted run")
    if check:
        for source in report.changed:
            echo_err(f"stale {one_line(source)}")
    click.echo(report.summary())
    if check and report.changed:
        raise click.exceptions.Exit(1)
    if report.unwritten:
        echo_err(f"error: {report.unwritten} file(s) could not be written; they are unchanged")
        raise click.exceptions.Exit(74)  # EX_IOERR, as for a store that cannot be written


@click.command()
@content_dir_argument
@store_option
@model_option
@backend_option
@limit_option
@config_option
def watch(
    content_dir: Path,
    store: Path | None,
    model: str | None,
    backend: str | None,
    limit: int | None,
    config: Path | None,
) -> None:
    """Regenerate now, then again whenever an article file changes (Ctrl-C stops)."""
    from recs.watch import watch as run_watch

    settings = settings_from(store=store, model=model, backend=backend, limit=limit, config=config)
    site = open_site(content_dir, settings)
    content_dir = site.content_dir
    encoder = encoder_of(settings)

    def on_round(report: Any, changed: list[str]) -> None:
        for problem in report.skipped:
            echo_err(f"skipped {problem}")
        for notice in report.notices:
            echo_err(f"warning: {notice}")
        shown = [one_line(source) for source in changed[:3]]
        cause = f"{', '.join(shown)}{' ...' if len(changed) > 3 else ''}: " if changed else ""
        click.echo(f"{cause}{report.summary()}")
        if not changed:
            click.echo(f"watching {content_dir} for changes (Ctrl-C to stop)")

    def on_error(error: RecsError) -> None:
        echo_err(f"error: {error}")
        echo_err(f"watching {content_dir} for changes (Ctrl-C to stop)")

    with skipped_shown(quiet=False):
        run_watch(
            content_dir,
            settings.store,
            encoder,
            settings.rank_for(encoder.model_id),
            on_round,
            build_options(settings),
            site.read,
            on_error=on_error,
        )


@click.command()
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a generation")
def generations(store: Path | None, as_json: bool) -> None:
    """List the store's kept generations, oldest first (the current one is marked)."""
    from recs import store as stores

    settings = settings_from(store=store)
    kept = stores.generations(settings.store)
    for generation in kept:
        if as_json:
            click.echo(json.dumps(generation.__dict__, sort_keys=True))
            continue
        mark = "*" if generation.current else " "
        click.echo(
            f"{mark} {generation.name}  {generation.created}  {generation.articles:>7,} articles  "
            f"{generation.made}"
        )
    if not as_json:
        click.echo(
            f"{len(kept)} kept (RECS_KEEP_GENERATIONS={settings.keep_generations}); * is current; "
            "`recs rollback [GENERATION]` makes an earlier one current"
        )


@click.command()
@click.argument(
    "generation",
    required=False,
    help="The generation to make current again (default: the one before the current one)",
)
@store_option
def rollback(generation: str | None, store: Path | None) -> None:
    """Make an earlier generation current again, as a new generation (servers follow it)."""
    from recs.rollback import rollback as run_rollback

    settings = settings_from(store=store)
    snapshot = run_rollback(
        settings.store,
        generation,
        keep=settings.keep_generations,
        lock_wait=settings.lock_wait,
    )
    click.echo(
        f"published {snapshot.generation} ({snapshot.made}, {len(snapshot):,} articles); "
        "`recs generations` lists the history, `recs rollback` undoes this"
    )
