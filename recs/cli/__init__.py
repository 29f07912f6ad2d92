"""The `recs` command: parse arguments, make one library call, render the result.

Heavy modules (torch, faiss, the web stack) are imported inside commands, so `recs --help`
answers at once. A RecsError becomes one line on stderr and a non-zero exit. The commands
live in the modules beside this one, by what they touch: store_commands (build,
regenerate, watch, generations, rollback), query_commands (related, eval, export),
site_commands (init), serve_command and report_command (readers' clicks).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

import click

from recs.cli import query_commands, report_command, serve_command, site_commands, store_commands
from recs.cli.options import echo_err
from recs.errors import RecsError


class _Group(click.Group):
    """A group listing its commands in the order they are added (click sorts by name)."""

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


for command in (
    site_commands.init,
    store_commands.build,
    query_commands.related,
    query_commands.eval_,
    store_commands.regenerate,
    query_commands.export,
    store_commands.watch,
    store_commands.generations,
    store_commands.rollback,
    serve_command.serve,
    report_command.report,
):
    app.add_command(command)


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
