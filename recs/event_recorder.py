"""One server process's reader events on their way to disk: a rate bound, a bounded
queue and one writer thread.

POST /events only checks an event and puts it in memory (`EventRecorder.submit`); a
thread of its own writes what has queued up to `events.sqlite` once a second, or sooner
when FLUSH_EVENTS are waiting, in one short transaction. No request ever waits for the
disk, so recording events cannot slow GET /related, and a slow or locked disk costs
queued events, never requests.

Bounds, per process: `rate` events a second (RECS_EVENTS_RATE) with a burst of one
second's worth (a token bucket), and at most QUEUE_SECONDS seconds' worth waiting to be
written. Past either, events are refused (the route answers 429 or 503) rather than
queued: they are measurements, and a lost few do not change a rate.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from recs import events as event_store
from recs.errors import RecsError
from recs.events import Event

log = logging.getLogger("recs.events")

FLUSH_SECONDS = 1.0  # the longest an accepted event waits in memory
FLUSH_EVENTS = 1000  # a queue this long is written at once
QUEUE_SECONDS = 10  # the queue holds at most this many seconds' worth of events
PRUNE_SECONDS = 3600.0  # how often a writer deletes events past the retention


class TooManyEvents(RecsError):
    """More events than this process accepts per second (RECS_EVENTS_RATE)."""

    status = 429
    title = "Too many requests"


class EventQueueFull(RecsError):
    """Events arrive faster than they can be written."""

    status = 503
    title = "Event queue full"


class EventRecorder:
    """Accept events at a bounded rate and write them in batches from a thread."""

    def __init__(
        self,
        store_dir: Path,
        rate: int,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store_dir = store_dir
        self.rate = rate
        self.capacity = rate * QUEUE_SECONDS
        self.retention_days = retention_days
        self.clock = clock
        self.monotonic = monotonic
        self.dropped = 0  # accepted events that could not be written
        self._tokens = float(rate)
        self._refilled = monotonic()
        self._pending: list[tuple[int, Event]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- the request side (the event loop) ---------------------------------------------

    def admit(self, count: int) -> None:
        """Take `count` events from the allowance, or raise TooManyEvents (nothing taken).
        `count` 0 only checks that the allowance is not spent."""
        with self._lock:
            now = self.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens < max(count, 1):
                raise TooManyEvents(
                    f"this server process accepts {self.rate} events a second "
                    "(RECS_EVENTS_RATE); send fewer, or try again in a second"
                )
            self._tokens -= count

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events (stamped with the server's time, in whole seconds) for writing,
        or raise EventQueueFull."""
        if not events:
            return
        stamp = int(self.clock())
        with self._lock:
            if self._closed or len(self._pending) + len(events) > self.capacity:
                raise EventQueueFull(
                    f"{len(self._pending)} events are waiting to be written to "
                    f"{self.store_dir / event_store.EVENTS}; try again later"
                )
            self._pending.extend((stamp, event) for event in events)
            waiting = len(self._pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="recs-events", daemon=True)
                self._thread.start()
        if waiting >= FLUSH_EVENTS:
            self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # --- the writer thread --------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the writer."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join(timeout)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        next_prune = 0.0
        last_error = ""
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, []
                closing = self._closed
            try:
                if connection is None:
                    connection = event_store.connect(self.store_dir)
                event_store.write_events(connection, batch)
                if self.monotonic() >= next_prune:
                    before = event_store.cutoff(self.retention_days, self.clock())
                    event_store.prune(connection, before)
                    next_prune = self.monotonic() + PRUNE_SECONDS
                last_error = ""
            except (sqlite3.Error, RecsError) as error:
                # A full disk, a lock held past BUSY_SECONDS: these events are lost, the
                # next batch tries again on a new connection.
                self.dropped += len(batch)
                if str(error) != last_error:
                    log.warning("reader events not written (%d dropped): %s", len(batch), error)
                last_error = str(error)
                if connection is not None:
                    connection.close()
                    connection = None
            if closing:
                break
        if connection is not None:
            connection.close()
