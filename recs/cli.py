"""The `recs` command: parse arguments, make one library call, render the result.

Heavy modules (torch, faiss, the web stack) are imported inside commands, so `recs --help`
answers at once. A RecsError becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
    typer.Option("--backend", help="Encoder backend: auto or torch [env: RECS_BACKEND]"),
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


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


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
) -> None:
    """Embed the articles in CONTENT_DIR and publish their related lists to the store."""
    from recs.encoder import load_encoder
    from recs.pipeline import build as run_build

    settings = _settings(store=store, model=model, backend=backend, limit=limit)
    encoder = load_encoder(settings.model, settings.backend, settings.store)
    with _progress_bars(quiet) as progress:
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
) -> None:
    """Print the related list of a stored article."""
    from recs.recommender import Recommender
    from recs.urls import canonical_url

    canonical_url(url)  # a malformed URL is reported before the store is loaded
    settings = _settings(store=store)
    recommender = Recommender.open(settings=settings)
    items = recommender.related(url, limit=limit)
    if output is OutputFormat.json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        import yaml

        typer.echo(
            yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=10_000), nl=False
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `recs` script: one line per user error, never a traceback."""
    try:
        result = app(args=argv, standalone_mode=False)
    except RecsError as error:
        echo_err(f"error: {error}")
        return error.exit_code
    except click.ClickException as error:
        error.show()
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


if __name__ == "__main__":
    sys.exit(main())
