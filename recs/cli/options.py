"""What the `recs` commands share: arguments and options, settings, progress, engines.

Every option that names a setting says which RECS_* variable it overrides; the value is
checked by `Settings` (one source of truth for bounds and defaults).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from recs.config import Settings
from recs.errors import ShrinkRefused
from recs.progress import no_progress

if TYPE_CHECKING:
    from recs.encoder import Encoder

PATH = click.Path(path_type=Path)  # no existence check: recs' own errors say what to do

content_dir_argument = click.argument(
    "content_dir",
    type=PATH,
    help="Folder of article files (searched recursively), or a Hugo, Jekyll, Eleventy or "
    "Astro site's root folder",
)
config_option = click.option(
    "--config",
    type=PATH,
    help="The site's recs.toml (docs/sites.md) [env: RECS_CONFIG; default: CONTENT_DIR/recs.toml]",
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
    help="Encoder backend: auto (onnx-int8 when the model allows, else torch), onnx, "
    "onnx-int8 or torch [env: RECS_BACKEND; default: auto]",
)


def check_limit(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
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
    callback=check_limit,
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


def settings_from(**overrides: Any) -> Settings:
    """The settings of RECS_* variables with a command's flags over them (None: unset)."""
    return Settings.from_env(**overrides)


def engine_for(settings: Settings) -> Any:
    """The batch engine the settings ask for (fails at once when Ray is missing)."""
    from recs.backends import EncoderSettings
    from recs.cpus import cores
    from recs.engine import open_engine

    encoder = EncoderSettings.portable(settings.model, settings.backend, settings.model_cache)
    processes = settings.jobs or cores()
    return open_engine(settings.engine, settings.ray_address, encoder, processes)


def echo_err(message: str) -> None:
    """One line on standard error."""
    click.echo(message, err=True)


def notify(quiet: bool) -> Callable[[str], None]:
    """A message callback for rare slow steps (the first ONNX export): stderr, above bars."""

    def notify(message: str) -> None:
        if not quiet:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    return notify


def encoder_of(settings: Settings, quiet: bool = False) -> Encoder:
    """The settings' encoder; a first ONNX export on this machine (seconds, once) is
    announced on stderr unless `quiet`, by every command that embeds."""
    from recs.backends import load_encoder

    return load_encoder(settings.model, settings.backend, settings.model_cache, notify(quiet))


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Any]:
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


def build_options(settings: Settings, **flags: Any) -> Any:
    """The BuildOptions of a command: its flags and the settings that shape a build."""
    from recs.options import BuildOptions

    return BuildOptions(
        lock_wait=settings.lock_wait,
        keep_generations=settings.keep_generations,
        index=settings.index_settings,
        **flags,
    )


@contextmanager
def skipped_shown(quiet: bool) -> Iterator[None]:
    """When a build refuses to shrink the store, first list the files it skipped: they
    usually say why it read so few articles (a Hugo site root, a wrong folder)."""

    try:
        yield
    except ShrinkRefused as error:
        if not quiet:
            for problem in error.problems:
                echo_err(f"skipped {problem}")
        raise


def open_site(content_dir: Path, settings: Settings, announce: bool = True) -> Any:
    """The site (or plain content folder) a command was given, with its read options;
    says what was detected in one line on stdout (nothing for a plain folder)."""
    from recs.sites import open_site as open_

    site = open_(content_dir, settings.read_options, settings.config, settings.base_url)
    line = site.describe()
    if announce and line:
        click.echo(line)
    return site
