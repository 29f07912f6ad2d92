"""`recs serve`: the HTTP service (uvicorn) over a built store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from recs.cli.options import (
    backend_option,
    echo_err,
    model_option,
    settings_from,
    store_option,
)


@click.command()
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

    settings = settings_from(store=store, model=model, backend=backend)
    info = stores.store_info(settings.store)  # fails with one line when there is no store
    stores.check_model(
        settings.store, info["model_id"], model_id_of(settings.model, settings.backend)
    )
    if settings.events:
        from recs.events import check_writable

        check_writable(settings.store)  # the workers will write events.sqlite
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
