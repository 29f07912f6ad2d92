"""`recs report`: what readers did with the related lists (events from POST /events)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recs.cli.options import echo_err, settings_from, store_option

if TYPE_CHECKING:
    from recs.events import Counts, Report


@click.command()
@store_option
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    help="Report the last N days [default: RECS_EVENTS_DAYS, 90 unless set]",
)
@click.option(
    "--top",
    type=click.IntRange(1, 1000),
    default=10,
    help="How many lists, and items never clicked, to show",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
@click.option(
    "--prune",
    is_flag=True,
    help="First delete the events older than RECS_EVENTS_DAYS days (the servers do it "
    "hourly while they record)",
)
def report(store: Path | None, days: int | None, top: int, as_json: bool, prune: bool) -> None:
    """Click-through rate of the related lists by position, the lists shown most and the
    items shown most often without a click, from the readers' impressions and clicks."""
    from recs import events

    settings = settings_from(store=store)
    directory = settings.store
    if prune:
        removed = events.prune_store(directory, settings.events_days)
        echo_err(f"pruned {removed:,} events older than {settings.events_days} days")
    span = days or settings.events_days
    if not events.has_events(directory) and not as_json:
        click.echo(
            f"no reader events recorded in {directory}: servers record them only with "
            "RECS_EVENTS=on, from the widget's POST /events (docs/api.md, Reader events)"
        )
        return
    result = events.read_report(directory, events.cutoff(span), top=top)
    if as_json:
        click.echo(json.dumps(result.as_json(), sort_keys=True, indent=2))
    elif result.empty:
        click.echo(f"no reader events in {directory} in the last {span} days")
    else:
        click.echo("\n".join(_lines(result, directory, span)))


def _rate(counts: Counts) -> str:
    rate = counts.ctr
    return "-" if rate is None else f"{rate:.1%}"


def _lines(result: Report, directory: Path, span: int) -> list[str]:
    from recs.errors import one_line
    from recs.events import iso

    assert result.first is not None and result.last is not None
    total = result.total
    lines = [
        f"reader events in {directory}, {iso(result.first)} to {iso(result.last)} "
        f"(last {span} days)",
        f"{total.impressions:,} impressions, {total.clicks:,} clicks, CTR {_rate(total)}, "
        f"{result.list_count:,} lists",
        "",
        "position  impressions     clicks     CTR",
    ]
    for position, counts in result.positions:
        lines.append(
            f"{position:>8}  {counts.impressions:>11,}  {counts.clicks:>9,}  {_rate(counts):>6}"
        )
    lines += ["", "lists shown most", "impressions     clicks     CTR  article"]
    for url, counts in result.lists:
        lines.append(
            f"{counts.impressions:>11,}  {counts.clicks:>9,}  {_rate(counts):>6}  {one_line(url)}"
        )
    lines += ["", "items shown most often without a click", "impressions  item"]
    for url, impressions in result.unclicked:
        lines.append(f"{impressions:>11,}  {one_line(url)}")
    if not result.unclicked:
        lines.append("          -  (every item shown was clicked at least once)")
    return lines
