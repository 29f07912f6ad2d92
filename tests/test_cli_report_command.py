"""recs/cli/report_command.py: `recs report`, the readers' events as figures."""

from __future__ import annotations

import json

from recs import events
from recs.cli import main
from recs.events import DAY, Event
from tests.test_events import NOW, A, B, C, record, shown


def test_recs_report_prints_the_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(events.time, "time", lambda: NOW)
    record(tmp_path, [(NOW - 10, e) for e in shown(A, [B, C]) * 4])
    record(tmp_path, [(NOW - 5, Event("click", A, B, 1))])
    assert main(["report", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"reader events in {tmp_path}, 2023-11-14T22:13:10Z to 2023-11-14T22:13:15Z" in out
    assert "8 impressions, 1 clicks, CTR 12.5%, 1 lists" in out
    assert "       1            4          1   25.0%" in out
    assert "       2            4          0    0.0%" in out
    assert f"          4  {C}" in out  # never clicked

    assert main(["report", "--store", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == {"impressions": 8, "clicks": 1, "ctr": 0.125, "lists": 1}
    assert data["window"]["since"] == "2023-08-16T22:13:20Z"  # RECS_EVENTS_DAYS, 90


def test_recs_report_says_when_there_is_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(events.time, "time", lambda: NOW)
    assert main(["report", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "RECS_EVENTS=on" in out
    assert main(["report", "--store", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["impressions"] == 0
    record(tmp_path, [(NOW - 10 * DAY, Event("impression", A, B, 1))])
    assert main(["report", "--store", str(tmp_path), "--days", "7"]) == 0
    assert capsys.readouterr().out.strip() == f"no reader events in {tmp_path} in the last 7 days"


def test_recs_report_prunes_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(events.time, "time", lambda: NOW)
    monkeypatch.setenv("RECS_EVENTS_DAYS", "30")
    record(tmp_path, [(NOW - 40 * DAY, Event("impression", A, B, 1))])
    record(tmp_path, [(NOW - 1, Event("impression", A, C, 1))])
    assert main(["report", "--store", str(tmp_path), "--days", "60", "--prune"]) == 0
    captured = capsys.readouterr()
    assert "pruned 1 events older than 30 days" in captured.err
    assert "1 impressions" in captured.out
