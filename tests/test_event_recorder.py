"""recs/event_recorder.py: one server process's reader events on their way to disk: the
rate bound, the bounded queue, the writer thread and what it does when it cannot write."""

from __future__ import annotations

import logging
import time

import pytest

from recs import event_recorder, events
from recs.event_recorder import EventQueueFull, EventRecorder, TooManyEvents
from recs.events import DAY, Event
from tests.test_events import NOW, A, B, C, D, record, shown


def test_the_rate_bound_is_a_token_bucket(tmp_path):
    clock = [100.0]
    recorder = EventRecorder(tmp_path, rate=10, retention_days=90, monotonic=lambda: clock[0])
    recorder.admit(10)  # a burst of one second's worth
    with pytest.raises(TooManyEvents, match=r"10 events a second.*RECS_EVENTS_RATE"):
        recorder.admit(0)
    clock[0] += 0.5
    with pytest.raises(TooManyEvents):
        recorder.admit(6)  # nothing is taken by a refusal
    recorder.admit(5)
    clock[0] += 60
    recorder.admit(10)  # never more than a second's worth saved up
    with pytest.raises(TooManyEvents):
        recorder.admit(1)


def test_the_queue_is_bounded_and_written_on_close(tmp_path, monkeypatch):
    monkeypatch.setattr(event_recorder, "FLUSH_SECONDS", 3600.0)  # only close() writes
    recorder = EventRecorder(tmp_path, rate=1, retention_days=90, clock=lambda: NOW)
    capacity = event_recorder.QUEUE_SECONDS
    recorder.submit(shown(A, [B] * capacity))
    assert recorder.pending == capacity
    with pytest.raises(EventQueueFull, match="events are waiting to be written"):
        recorder.submit(shown(B, [C]))
    recorder.close()
    assert recorder.pending == 0
    report = events.read_report(tmp_path, since=0, until=NOW)
    assert report.total.impressions == capacity and report.first == NOW
    with pytest.raises(EventQueueFull):  # closed: nothing more is taken
        recorder.submit(shown(A, [B]))


def test_the_recorder_prunes_as_it_writes(tmp_path):
    record(tmp_path, [(NOW - 31 * DAY, Event("impression", A, B, 1))])
    recorder = EventRecorder(tmp_path, rate=100, retention_days=30, clock=lambda: NOW)
    recorder.submit(shown(C, [D]))
    recorder.close()
    report = events.read_report(tmp_path, since=0, until=NOW)
    assert [url for url, _ in report.lists] == [C]


def test_events_that_cannot_be_written_are_counted_and_logged(tmp_path, caplog):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    recorder = EventRecorder(not_a_folder, rate=100, retention_days=90)
    with caplog.at_level(logging.WARNING, logger="recs.events"):
        recorder.submit(shown(A, [B, C]))
        recorder.close()
    assert recorder.dropped == 2
    assert "reader events not written (2 dropped)" in caplog.text


def test_a_full_batch_is_written_at_once_stamped_with_the_servers_whole_second(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(event_recorder, "FLUSH_SECONDS", 3600.0)  # only a full batch wakes it
    monkeypatch.setattr(event_recorder, "FLUSH_EVENTS", 3)
    recorder = EventRecorder(tmp_path, rate=100, retention_days=90, clock=lambda: NOW + 0.7)
    recorder.submit([])  # nothing to queue
    assert recorder.pending == 0
    try:
        recorder.submit(shown(A, [B, C, D]))
        deadline = time.monotonic() + 10
        while recorder.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.pending == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            report = events.read_report(tmp_path, since=0, until=NOW + 1)
            if report.total.impressions == 3:
                break
            time.sleep(0.01)
        assert report.total.impressions == 3 and report.first == NOW
    finally:
        recorder.close()
