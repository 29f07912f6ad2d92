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
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from recs.config import Settings
from recs.errors import RecsError

app = typer.Typer(
    name="recs",
    help="Related articles for news and content sites: build, query, serve, regenerate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain "[env: ...]", which rich would eat as markup
)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory [env: RECS_STORE; default: ./embeddings]"),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A sentence-transformers model directory, 'hashing', or unset for the bundled "
        "all-MiniLM-L6-v2 [env: RECS_MODEL]",
    ),
]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Encoder backend: auto (onnx when the model allows, else torch), onnx or torch "
        "[env: RECS_BACKEND; default: auto]",
    ),
]
LimitOption = Annotated[
    int | None,
    typer.Option(
        "--limit",
        min=1,
        max=1000,
        help="Related articles per article [env: RECS_LIMIT; default: 5]",
    ),
]


class OutputFormat(StrEnum):
    json = "json"
    yaml = "yaml"


class EngineName(StrEnum):
    local = "local"
    ray = "ray"


class IndexKind(StrEnum):
    auto = "auto"
    exact = "exact"
    ivf = "ivf"


EngineOption = Annotated[
    EngineName | None,
    typer.Option(
        "--engine",
        help="Where embedding and ranking run: local, or ray (a Ray cluster; needs the "
        "ray extra of recs) [env: RECS_ENGINE; default: local]",
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=0,
        help="Processes the local engine ranks in; 0 is one per core [env: RECS_JOBS; default: 0]",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster address for --engine ray, e.g. auto or ray://HOST:10001 "
        "[env: RECS_RAY_ADDRESS; default: RAY_ADDRESS, else a local Ray]",
    ),
]


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def _engine(settings: Settings) -> Any:
    """The batch engine the settings ask for (fails at once when Ray is missing)."""
    from recs.cpus import cores
    from recs.engine import EncoderSettings, open_engine

    encoder = EncoderSettings.portable(settings.model, settings.backend, settings.store)
    processes = settings.jobs or cores()
    return open_engine(settings.engine, settings.ray_address, encoder, processes)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _notify(quiet: bool) -> Callable[[str], None]:
    """A message callback for rare slow steps (the first ONNX export): stderr, above bars."""

    def notify(message: str) -> None:
        if not quiet:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    return notify


@contextmanager
def _progress_bars(quiet: bool) -> Iterator[Any]:
    """A progress callback drawing one tqdm bar per stage on stderr (only on a terminal)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if quiet:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=stage, unit="item", file=sys.stderr, disable=None, leave=False
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
def build(
    content_dir: Annotated[
        Path, typer.Argument(help="Folder of article files (searched recursively)")
    ],
    store: StoreOption = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    limit: LimitOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero if any file has a problem")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Ignore the existing store (e.g. after changing model)"),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars, no per-file problems")
    ] = False,
    engine: EngineOption = None,
    jobs: JobsOption = None,
    address: AddressOption = None,
    index: Annotated[
        IndexKind | None,
        typer.Option(
            "--index",
            help="Neighbour index: auto (exact up to RECS_INDEX_EXACT_MAX articles, default "
            "50000, else ivf), exact, or ivf (approximate, for large corpora) "
            "[env: RECS_INDEX; default: auto]",
        ),
    ] = None,
) -> None:
    """Embed the articles in CONTENT_DIR and publish their related lists to the store."""
    from recs.encoder import load_encoder
    from recs.pipeline import build as run_build

    settings = _settings(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine and engine.value,
        jobs=jobs,
        ray_address=address,
        index=index and index.value,
    )
    batch_engine = _engine(settings)
    encoder = load_encoder(settings.model, settings.backend, settings.store, _notify(quiet))
    with _progress_bars(quiet) as progress, closing(batch_engine):
        _, report = run_build(
            content_dir,
            settings.store,
            encoder,
            settings.rank,
            strict=strict,
            rebuild=rebuild,
            progress=progress,
            lock_wait=settings.lock_wait,
            pinned_key=settings.pinned_key,
            excluded_key=settings.excluded_key,
            max_file_bytes=settings.max_file_bytes,
            engine=batch_engine,
            index_settings=settings.index_settings,
        )
    if not quiet:
        for problem in report.problems:
            echo_err(f"skipped {problem}")
    typer.echo(report.summary())


@app.command()
def related(
    url: Annotated[str, typer.Argument(help="An article URL (webUrl or originalUrl, any form)")],
    store: StoreOption = None,
    limit: LimitOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format")
    ] = OutputFormat.json,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="A request filter NAME=VALUE, repeatable: exclude_urls, exclude_providers, "
            "require_providers, since, until, min_quality, types, published_only "
            "(docs/ranking.md)",
        ),
    ] = None,
) -> None:
    """Print the related list of a stored article."""
    from recs.config import rank_options
    from recs.rank import REQUEST_FILTERS
    from recs.recommender import Recommender
    from recs.urls import canonical_url

    canonical_url(url)  # a malformed URL is reported before the store is loaded
    options = rank_options(filters or [], allowed=REQUEST_FILTERS, flag="--filter")
    settings = _settings(store=store)
    recommender = Recommender.open(settings=settings)
    items = recommender.related(url, limit=limit, **options)
    if output is OutputFormat.json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        import yaml

        typer.echo(
            yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=10_000), nl=False
        )


@app.command("eval")
def eval_(
    file: Annotated[
        Path, typer.Argument(help="Labelled articles, one JSON object a line (docs/quality.md)")
    ],
    limit: LimitOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="A ranking option NAME=VALUE on top of RECS_RANK_*, repeatable, e.g. "
            "-o mmr_lambda=0.8 (docs/ranking.md)",
        ),
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="Also score these options on top of the others, e.g. --compare "
            "'mmr_lambda=0.8 provider_cap=1'; repeatable, the articles are embedded once",
        ),
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Also score TF-IDF and random")
    ] = True,
    model: ModelOption = None,
    backend: BackendOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Score related lists on labelled articles: precision, nDCG, coverage, duplicates."""
    from recs.config import option_words, rank_options, with_rank_options
    from recs.encoder import load_encoder
    from recs.evaluate import evaluate

    settings = _settings(model=model, backend=backend, limit=limit)
    rank = with_rank_options(settings.rank, rank_options(options or []))
    variants = {
        text: with_rank_options(
            rank, rank_options(option_words(text), flag="--compare"), flag="--compare"
        )
        for text in compare or []
    }
    encoder = load_encoder(settings.model, settings.backend, settings.store)
    with _progress_bars(quiet) as progress:
        result = evaluate(
            file, encoder, rank, baselines=baselines, variants=variants, progress=progress
        )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        typer.echo(result.table())


@app.command()
def regenerate(
    content_dir: Annotated[
        Path, typer.Argument(help="Folder of article files (searched recursively)")
    ],
    store: StoreOption = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    limit: LimitOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print a unified diff of what would change; write nothing"),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 listing files whose block is stale"),
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Ignore the existing store (e.g. after changing model)"),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    engine: EngineOption = None,
    jobs: JobsOption = None,
    address: AddressOption = None,
) -> None:
    """Update the store, then rewrite the `related:` block of every article file."""
    from recs.encoder import load_encoder
    from recs.regenerate import Mode
    from recs.regenerate import regenerate as run_regenerate

    if dry_run and check:
        raise click.UsageError("choose one of --dry-run and --check")
    settings = _settings(
        store=store,
        model=model,
        backend=backend,
        limit=limit,
        engine=engine and engine.value,
        jobs=jobs,
        ray_address=address,
    )
    batch_engine = _engine(settings)
    encoder = load_encoder(settings.model, settings.backend, settings.store)
    mode: Mode = "dry-run" if dry_run else "check" if check else "write"
    with _progress_bars(quiet) as progress, closing(batch_engine):
        report = run_regenerate(
            content_dir,
            settings.store,
            encoder,
            settings.rank,
            mode=mode,
            rebuild=rebuild,
            progress=progress,
            lock_wait=settings.lock_wait,
            pinned_key=settings.pinned_key,
            excluded_key=settings.excluded_key,
            max_file_bytes=settings.max_file_bytes,
            engine=batch_engine,
        )
    for diff in report.diffs:
        typer.echo(diff, nl=False)
    for problem in report.skipped:
        echo_err(f"skipped {problem}")
    for notice in report.notices:
        echo_err(f"warning: {notice}")
    if report.cleaned:
        echo_err(f"removed {report.cleaned} temp file(s) left by an interrupted run")
    if check:
        for source in report.changed:
            echo_err(f"stale {source}")
    typer.echo(report.summary())
    if check and report.changed:
        raise typer.Exit(1)
    if report.unwritten:
        echo_err(f"error: {report.unwritten} file(s) could not be written; they are unchanged")
        raise typer.Exit(74)  # EX_IOERR, as for a store that cannot be written


class ExportFormat(StrEnum):
    json = "json"
    per_article = "per-article"


@app.command()
def export(
    output: Annotated[
        ExportFormat,
        typer.Option("--format", help="json: one file, URL -> list; per-article: a folder"),
    ],
    out: Annotated[Path, typer.Option("--out", help="The file (json) or folder (per-article)")],
    store: StoreOption = None,
    limit: LimitOption = None,
) -> None:
    """Write every stored related list as JSON for a site build."""
    from recs.export import export_json, export_per_article
    from recs.recommender import Recommender

    settings = _settings(store=store)
    related_map = Recommender.open(settings=settings).related_map(limit)
    if output is ExportFormat.json:
        changed = export_json(related_map, out)
        state = "written" if changed else "unchanged"
        typer.echo(f"{len(related_map)} related lists: {out} {state}")
    else:
        written, unchanged, removed = export_per_article(related_map, out)
        typer.echo(
            f"{len(related_map)} related lists: {written} files written, {unchanged} unchanged, "
            f"{removed} removed in {out}"
        )


@app.command()
def watch(
    content_dir: Annotated[
        Path, typer.Argument(help="Folder of article files (searched recursively)")
    ],
    store: StoreOption = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    limit: LimitOption = None,
) -> None:
    """Regenerate now, then again whenever an article file changes (Ctrl-C stops)."""
    from recs.encoder import load_encoder
    from recs.watch import watch as run_watch

    settings = _settings(store=store, model=model, backend=backend, limit=limit)
    encoder = load_encoder(settings.model, settings.backend, settings.store)

    def on_round(report: Any, changed: list[str]) -> None:
        for problem in report.skipped:
            echo_err(f"skipped {problem}")
        for notice in report.notices:
            echo_err(f"warning: {notice}")
        cause = f"{', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}: " if changed else ""
        typer.echo(f"{cause}{report.summary()}")
        if not changed:
            typer.echo(f"watching {content_dir} for changes (Ctrl-C to stop)")

    run_watch(
        content_dir,
        settings.store,
        encoder,
        settings.rank,
        on_round,
        pinned_key=settings.pinned_key,
        excluded_key=settings.excluded_key,
        max_file_bytes=settings.max_file_bytes,
    )


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes")] = 1,
    model: ModelOption = None,
    backend: BackendOption = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
) -> None:
    """Serve GET /related and the rest of the HTTP API (docs at /docs) with uvicorn."""
    import os
    import tempfile

    import uvicorn

    from recs import store as stores
    from recs.encoder import model_id_of
    from recs.metrics import MULTIPROC_ENV

    settings = _settings(store=store, model=model, backend=backend)
    info = stores.store_info(settings.store)  # fails with one line when there is no store
    stores.check_model(settings.store, info["model_id"], model_id_of(settings.model))
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
        http="httptools",
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


# Typer 0.29 and later raise their own copy of click's exceptions (typer.TyperException
# is its base); earlier versions raise click's. Both must end as one line, not a traceback.
USAGE_ERRORS: tuple[type[Any], ...] = (click.ClickException,) + (
    (typer.TyperException,) if hasattr(typer, "TyperException") else ()
)
EXITS: tuple[type[Any], ...] = (click.exceptions.Exit, typer.Exit)
ABORTS: tuple[type[Any], ...] = (click.Abort, typer.Abort)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `recs` script: one line per user error, never a traceback."""
    try:
        result = app(args=argv, standalone_mode=False)
    except RecsError as error:
        echo_err(f"error: {error}")
        return error.exit_code
    except USAGE_ERRORS as error:
        error.show()  # usage, a bad option value: click's one-line message, exit code 2
        return error.exit_code
    except EXITS as error:
        return error.exit_code
    except ABORTS:
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
