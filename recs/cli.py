"""The `recs` command: parse arguments, make one library call, render the result.

Heavy modules (torch, faiss, the web stack) are imported inside commands, so `recs --help`
answers at once. A RecsError becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click

from recs.articles import one_line
from recs.config import Settings
from recs.encoder import no_progress
from recs.errors import RecsError


class _Group(click.Group):
    """A group listing its commands in the order they are defined (click sorts by name)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    name="recs",
    cls=_Group,
    no_args_is_help=True,
    context_settings={"show_default": True},  # "[default: json]" and the like, as before
)
def app() -> None:
    """Related articles for news and content sites: build, query, serve, regenerate."""


PATH = click.Path(path_type=Path)  # no existence check: recs' own errors say what to do

content_dir_argument = click.argument(
    "content_dir", type=PATH, help="Folder of article files (searched recursively)"
)
store_option = click.option(
    "--store", type=PATH, help="Store directory [env: RECS_STORE; default: ./embeddings]"
)
model_option = click.option(
    "--model",
    help="A sentence-transformers model directory, all-MiniLM-L6-v2-static, "
    "multilingual-e5-small, 'hashing', or unset for the bundled all-MiniLM-L6-v2 "
    "[env: RECS_MODEL]",
)
backend_option = click.option(
    "--backend",
    help="Encoder backend: auto (onnx when the model allows, else torch), onnx, onnx-int8 "
    "or torch [env: RECS_BACKEND; default: auto]",
)


def _check_limit(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """--limit is at most RECS_MAX_LIMIT: Settings holds the maximum, checked here before
    any work starts."""
    if value is not None:
        max_limit = Settings.from_env().max_limit
        if not 1 <= value <= max_limit:
            raise click.BadParameter(f"{value} is not between 1 and {max_limit} (RECS_MAX_LIMIT)")
    return value


_DEFAULTS = Settings()
limit_option = click.option(
    "--limit",
    type=int,
    callback=_check_limit,
    help=f"Related articles per article, 1 to RECS_MAX_LIMIT ({_DEFAULTS.max_limit} unless "
    f"set) [env: RECS_LIMIT; default: {_DEFAULTS.limit}]",
)
engine_option = click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="Where embedding and ranking run: local, or ray (a Ray cluster; needs the "
    "ray extra of recs) [env: RECS_ENGINE; default: local]",
)
jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=0),
    help="Processes the local engine ranks in; 0 is one per core [env: RECS_JOBS; default: 0]",
)
address_option = click.option(
    "--address",
    help="Ray cluster address for --engine ray, e.g. auto or ray://HOST:10001 "
    "[env: RECS_RAY_ADDRESS; default: RAY_ADDRESS, else a local Ray]",
)
rebuild_option = click.option(
    "--rebuild",
    is_flag=True,
    help="Embed and rank every article again (e.g. after changing the model); articles "
    "written through the API are kept and re-embedded",
)
allow_shrink_option = click.option(
    "--allow-shrink",
    is_flag=True,
    help="Publish even if the build removes every stored article or more than half of "
    "them (refused otherwise: usually a wrong or empty folder); `recs rollback` undoes it",
)


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def _engine(settings: Settings) -> Any:
    """The batch engine the settings ask for (fails at once when Ray is missing)."""
    from recs.backends import EncoderSettings
    from recs.cpus import cores
    from recs.engine import open_engine

    encoder = EncoderSettings.portable(settings.model, settings.backend, settings.model_cache)
    processes = settings.jobs or cores()
    return open_engine(settings.engine, settings.ray_address, encoder, processes)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def _notify(quiet: bool) -> Callable[[str], None]:
    """A message callback for rare slow steps (the first ONNX export): stderr, above bars."""

    def notify(message: str) -> None:
        if not quiet:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    return notify


@contextmanager
def _progress_bars(quiet: bool) -> Iterator[Any]:
    """A progress callback drawing one tqdm bar per stage on stderr (only on a terminal:
    elsewhere, or with --quiet, tqdm is not even imported)."""
    if quiet or not sys.stderr.isatty():
        yield no_progress
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=stage, unit="item", file=sys.stderr, leave=False
            )
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()


@app.command()
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
) -> None:
    """Embed the articles in CONTENT_DIR and publish their related lists to the store."""
    from recs.backends import load_encoder
    from recs.pipeline import build as run_build

    settings = _settings(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine,
        jobs=jobs,
        ray_address=address,
        index=index,
    )
    options = _build_options(settings, strict=strict, rebuild=rebuild, allow_shrink=allow_shrink)
    batch_engine = _engine(settings)
    encoder = load_encoder(settings.model, settings.backend, settings.model_cache, _notify(quiet))
    with _progress_bars(quiet) as progress, closing(batch_engine), _skipped_shown(quiet):
        _, report = run_build(
            content_dir,
            settings.store,
            encoder,
            settings.rank,
            options,
            settings.read_options,
            progress=progress,
            engine=batch_engine,
        )
    if not quiet:
        for problem in report.problems:
            echo_err(f"skipped {problem}")
    for notice in report.notices:
        echo_err(f"warning: {notice}")
    click.echo(report.summary())


def _build_options(settings: Settings, **flags: Any) -> Any:
    """The BuildOptions of a command: its flags and the settings that shape a build."""
    from recs.pipeline import BuildOptions

    return BuildOptions(
        lock_wait=settings.lock_wait,
        keep_generations=settings.keep_generations,
        index=settings.index_settings,
        **flags,
    )


@contextmanager
def _skipped_shown(quiet: bool) -> Iterator[None]:
    """When a build refuses to shrink the store, first list the files it skipped: they
    usually say why it read so few articles (a Hugo site root, a wrong folder)."""
    from recs.errors import ShrinkRefused

    try:
        yield
    except ShrinkRefused as error:
        if not quiet:
            for problem in error.problems:
                echo_err(f"skipped {problem}")
        raise


@app.command()
@click.argument("url", help="An article URL (webUrl or originalUrl, any form)")
@store_option
@limit_option
@click.option(
    "--format", "output", type=click.Choice(["json", "yaml"]), default="json", help="Output format"
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="A request filter NAME=VALUE, repeatable: exclude_urls, exclude_providers, "
    "require_providers, since, until, min_quality, types, published_only "
    "(docs/ranking.md)",
)
def related(
    url: str, store: Path | None, limit: int | None, output: str, filters: tuple[str, ...]
) -> None:
    """Print the related list of a stored article."""
    from recs.config import rank_options
    from recs.rank import REQUEST_FILTERS
    from recs.recommender import Recommender
    from recs.urls import canonical_url

    canonical_url(url)  # a malformed URL is reported before the store is loaded
    options = rank_options(filters, allowed=REQUEST_FILTERS, flag="--filter")
    settings = _settings(store=store)
    recommender = Recommender.open(settings=settings)
    items = recommender.related(url, limit=limit, **options)
    if output == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        import yaml

        click.echo(
            yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=10_000), nl=False
        )


@app.command("eval")
@click.argument(
    "file", type=PATH, help="Labelled articles, one JSON object a line (docs/quality.md)"
)
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
) -> None:
    """Score related lists on labelled articles: precision, nDCG, coverage, duplicates."""
    from recs.backends import load_encoder
    from recs.config import option_words, rank_options, with_rank_options
    from recs.evaluate import evaluate

    settings = _settings(model=model, backend=backend, limit=limit)
    rank = with_rank_options(settings.rank, rank_options(options))
    variants = {
        text: with_rank_options(
            rank, rank_options(option_words(text), flag="--compare"), flag="--compare"
        )
        for text in compare
    }
    encoder = load_encoder(settings.model, settings.backend, settings.model_cache)
    with _progress_bars(quiet) as progress:
        result = evaluate(
            file, encoder, rank, baselines=baselines, variants=variants, progress=progress
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(result.table())


@app.command()
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
) -> None:
    """Update the store, then rewrite the `related:` block of every article file."""
    from recs.backends import load_encoder
    from recs.regenerate import Mode
    from recs.regenerate import regenerate as run_regenerate

    if dry_run and check:
        raise click.UsageError("choose one of --dry-run and --check")
    settings = _settings(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine,
        jobs=jobs,
        ray_address=address,
    )
    options = _build_options(settings, rebuild=rebuild, allow_shrink=allow_shrink)
    batch_engine = _engine(settings)
    encoder = load_encoder(settings.model, settings.backend, settings.model_cache)
    mode: Mode = "dry-run" if dry_run else "check" if check else "write"
    with _progress_bars(quiet) as progress, closing(batch_engine), _skipped_shown(quiet):
        report = run_regenerate(
            content_dir,
            settings.store,
            encoder,
            settings.rank,
            options,
            settings.read_options,
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


@app.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "per-article"]),
    required=True,
    help="json: one file, URL -> list; per-article: a folder",
)
@click.option("--out", type=PATH, required=True, help="The file (json) or folder (per-article)")
@store_option
@limit_option
def export(output: str, out: Path, store: Path | None, limit: int | None) -> None:
    """Write every stored related list as JSON for a site build."""
    from recs.export import export_json, export_per_article
    from recs.recommender import Recommender

    settings = _settings(store=store)
    related_map = Recommender.open(settings=settings).related_map(limit)
    if output == "json":
        changed = export_json(related_map, out)
        state = "written" if changed else "unchanged"
        click.echo(f"{len(related_map)} related lists: {out} {state}")
    else:
        written, unchanged, removed = export_per_article(related_map, out)
        click.echo(
            f"{len(related_map)} related lists: {written} files written, {unchanged} unchanged, "
            f"{removed} removed in {out}"
        )


@app.command()
@content_dir_argument
@store_option
@model_option
@backend_option
@limit_option
def watch(
    content_dir: Path, store: Path | None, model: str | None, backend: str | None, limit: int | None
) -> None:
    """Regenerate now, then again whenever an article file changes (Ctrl-C stops)."""
    from recs.backends import load_encoder
    from recs.watch import watch as run_watch

    settings = _settings(store=store, model=model, backend=backend, limit=limit)
    encoder = load_encoder(settings.model, settings.backend, settings.model_cache)

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

    with _skipped_shown(quiet=False):
        run_watch(
            content_dir,
            settings.store,
            encoder,
            settings.rank,
            on_round,
            _build_options(settings),
            settings.read_options,
            on_error=on_error,
        )


@app.command()
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a generation")
def generations(store: Path | None, as_json: bool) -> None:
    """List the store's kept generations, oldest first (the current one is marked)."""
    from recs import store as stores

    settings = _settings(store=store)
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


@app.command()
@click.argument(
    "generation",
    required=False,
    help="The generation to make current again (default: the one before the current one)",
)
@store_option
def rollback(generation: str | None, store: Path | None) -> None:
    """Make an earlier generation current again, as a new generation (servers follow it)."""
    from recs.pipeline import rollback as run_rollback

    settings = _settings(store=store)
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


@app.command()
@store_option
@click.option("--host", default="127.0.0.1", help="Interface to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="TCP port")
@click.option("--workers", type=click.IntRange(1, 64), default=1, help="Worker processes")
@model_option
@backend_option
@click.option("--access-log", is_flag=True, help="Log every request")
@click.option("--log-level", default="info", help="uvicorn log level")
def serve(
    store: Path | None,
    host: str,
    port: int,
    workers: int,
    model: str | None,
    backend: str | None,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve GET /related and the rest of the HTTP API (docs at /docs) with uvicorn."""
    import asyncio
    import functools
    import os
    import tempfile
    from typing import cast

    import uvicorn

    from recs import store as stores
    from recs.http_protocol import HeaderDeadlineProtocol
    from recs.metrics import MULTIPROC_ENV
    from recs.models import model_id_of

    settings = _settings(store=store, model=model, backend=backend)
    info = stores.store_info(settings.store)  # fails with one line when there is no store
    stores.check_model(
        settings.store, info["model_id"], model_id_of(settings.model, settings.backend)
    )
    # Worker processes read their settings from the environment, like any RECS_* setting.
    os.environ["RECS_STORE"] = str(settings.store.resolve())
    for name, value in (("RECS_MODEL", settings.model), ("RECS_BACKEND", settings.backend)):
        if value:
            os.environ[name] = value
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="recs-metrics-")
    echo_err(
        f"recs: serving {settings.store} ({info['article_count']} articles, {info['generation']}) "
        f"on http://{host}:{port} with {workers} worker(s)"
    )
    uvicorn.run(
        "recs.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Called once per connection, as uvicorn calls its own protocol classes; the partial
        # pickles by reference, so every worker process gets the same header deadline.
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(HeaderDeadlineProtocol, header_timeout=settings.header_timeout),
        ),
        loop="uvloop",
        access_log=access_log,
        log_level=log_level,
        log_config=_log_config(),
        timeout_graceful_shutdown=10,
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with recs' own messages (reloads, store problems) beside its own."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["recs"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `recs` script: one line per user error, never a traceback."""
    try:
        result = app(args=argv, standalone_mode=False)
    except RecsError as error:
        echo_err(f"error: {error}")
        return error.exit_code
    except click.ClickException as error:
        error.show()  # usage, a bad option value: click's one-line message, exit code 2
        return error.exit_code
    except click.exceptions.Exit as error:
        return error.exit_code
    except click.Abort:
        echo_err("aborted")
        return 130
    except KeyboardInterrupt:
        echo_err("interrupted")
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    """The `recs` script: `main`, then exit without tearing the interpreter down.

    Freeing a large build's objects one by one at shutdown takes a tenth of a second or
    more for nothing. The exit handlers still run (Ray's shutdown among them) and the
    output is flushed. The ordinary exit is kept while a thread of ours still runs, and
    under a profiler or tracer (`python -m cProfile -m recs`, coverage), which write
    their results at exit.
    """
    code = main()
    threads = [t for t in threading.enumerate() if t is not threading.main_thread()]
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if watched or any(t.is_alive() and not t.daemon for t in threads):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the ordinary exit would say so
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    run()
