"""POST /events (recs.events_api): in process with TestClient, and through a real
`recs serve --workers 2`."""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from recs import events
from tests.conftest import BIN
from tests.servers import free_port, stop, wait_until
from tests.test_api import make_client

SPACE0, SPACE1, SPACE2 = (f"https://example.com/space/{n}" for n in range(3))
ORIGIN = "https://widget.example"


def impression(article: str = SPACE0, item: str = SPACE1, position: int = 1) -> dict:
    return {"type": "impression", "article": article, "item": item, "position": position}


def report(store_dir: Path) -> events.Report:
    return events.read_report(store_dir, since=0)


def is_problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()["detail"]


def test_events_are_off_by_default(built):
    with make_client(built) as client:
        response = client.post("/events", json=impression())
        assert "set RECS_EVENTS=on" in is_problem(response, 403)
        # Off is said before anything of the request is judged.
        assert is_problem(client.post("/events", content=b"nonsense"), 403)
        assert is_problem(client.post("/events?x=1", json=impression()), 403)
    assert not (built / events.EVENTS).exists()


def test_one_event_or_a_batch_is_recorded_with_canonical_urls(built):
    with make_client(built, events=True) as client:
        one = client.post(
            "/events",
            json=impression("http://EXAMPLE.com/space/0/?utm_source=x#top", SPACE1 + "/", 2),
        )
        assert one.status_code == 202 and one.json() == {"accepted": 1, "ignored": 0}
        batch = [impression(SPACE0, SPACE1, 1), impression(SPACE0, SPACE2, 2)]
        batch.append({**impression(SPACE0, SPACE1, 1), "type": "click"})
        batch.append(impression(SPACE0, "https://example.com/not-stored", 3))
        many = client.post("/events", json={"events": batch})
        assert many.status_code == 202 and many.json() == {"accepted": 3, "ignored": 1}
    # Closing the app wrote what its recorder held.
    result = report(built)
    assert result.total == events.Counts(impressions=3, clicks=1)
    assert [(url, c.impressions) for url, c in result.lists] == [(SPACE0, 3)]
    assert [(p, c.impressions, c.clicks) for p, c in result.positions] == [(1, 1, 1), (2, 2, 0)]
    assert result.unclicked == [(SPACE2, 1)]


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ({**impression(), "ip": "203.0.113.9"}, "ip: unknown field"),
        ({**impression(), "userAgent": "Mozilla/5.0"}, "userAgent: unknown field"),
        ({"events": [impression(), {**impression(), "sessionId": "abc"}]}, "events.1.sessionId"),
        ({"events": [impression()], "reader": "r-1"}, "reader: unknown field"),
        ({**impression(), "position": 0}, "position"),
        ({**impression(), "position": 51}, r"position: must be between 1 and 50"),
        ({**impression(), "position": "1"}, "position"),  # no silent coercion
        ({**impression(), "type": "view"}, "type"),
        ({**impression(), "item": "javascript:alert(1)"}, "item: "),
        ({"events": [impression(), impression(item="/x")]}, "events.1.item: "),
        ({"events": []}, "events"),
        ({"events": [impression()] * 101}, "events: List should have at most 100 items"),
        ([impression()], "body"),
    ],
)
def test_bad_events_are_refused_naming_the_field(built, body, wanted):
    with make_client(built, events=True) as client:
        detail = is_problem(client.post("/events", json=body), 422)
        assert re.search(wanted, detail), detail
    assert report(built).empty


def test_the_request_rules_of_the_api_apply(built):
    with make_client(built, events=True, max_body_bytes=4096) as client:
        assert "unknown query parameter" in is_problem(
            client.post("/events", params={"id": "1"}, json=impression()), 400
        )
        text = client.post("/events", content=json.dumps(impression()).encode())
        assert "application/json" in is_problem(text, 415)
        assert "invalid JSON" in is_problem(
            client.post("/events", content=b"{", headers={"Content-Type": "application/json"}),
            422,
        )
        big = {"events": [impression()] * 60}  # under the batch bound, over the byte limit
        assert "RECS_MAX_BODY_BYTES" in is_problem(client.post("/events", json=big), 413)


def test_nothing_about_the_reader_is_stored(built):
    """Whatever the request carries (address, cookies, user agent, referrer, request id),
    the file holds the URLs, type, position and time alone."""
    secrets = {
        "User-Agent": "Mozilla/5.0 (UniqueAgent-7f3a)",
        "Cookie": "session=cookie-5c1d",
        "X-Forwarded-For": "198.51.100.77",
        "Referer": "https://example.com/space/0?reader=ref-9e2b",
        "X-Request-Id": "req-4b8e",
    }
    with make_client(built, events=True) as client:
        response = client.post("/events", json=impression(), headers=secrets)
        assert response.status_code == 202
    with sqlite3.connect(built / events.EVENTS) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = connection.execute("SELECT * FROM events").fetchall()
        urls = connection.execute("SELECT url FROM urls ORDER BY url").fetchall()
    assert len(rows) == 1 and len(rows[0]) == 5
    assert urls == [(SPACE0,), (SPACE1,)]
    stored = b"".join(path.read_bytes() for path in built.glob(events.EVENTS + "*"))
    for marker in ("UniqueAgent-7f3a", "cookie-5c1d", "198.51.100.77", "ref-9e2b", "req-4b8e"):
        assert marker.encode() not in stored, marker
    assert b"testclient" not in stored  # the TestClient's own address


def test_the_rate_bound_answers_429(built):
    with make_client(built, events=True, events_rate=5) as client:
        batch = {"events": [impression(position=n) for n in range(1, 6)]}
        assert client.post("/events", json=batch).status_code == 202
        refused = client.post("/events", json=impression())
        assert "RECS_EVENTS_RATE" in is_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert client.get("/related", params={"url": SPACE0}).status_code == 200
    assert report(built).total.impressions == 5


def test_a_request_never_waits_for_the_disk(built):
    """With the event file locked by another writer, POST /events still answers at once
    and GET /related too; the events are written once the lock is gone."""
    events.check_writable(built)
    blocker = sqlite3.connect(built / events.EVENTS, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with make_client(built, events=True) as client:
            assert client.post("/events", json=impression()).status_code == 202
            assert client.get("/related", params={"url": SPACE0}).status_code == 200
            assert report(built).empty  # not written: the lock is held
            blocker.execute("COMMIT")
    finally:
        if blocker.in_transaction:
            blocker.execute("COMMIT")
        blocker.close()
    assert report(built).total.impressions == 1


def test_a_widget_on_an_allowed_origin_may_post_events(built):
    with make_client(built, events=True, cors_origins=(ORIGIN,)) as client:
        preflight = client.options(
            "/events",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers  # no cookies
        posted = client.post("/events", json=impression(), headers={"Origin": ORIGIN})
        assert posted.status_code == 202
        assert posted.headers["access-control-allow-origin"] == ORIGIN
        other = client.options(
            "/events",
            headers={"Origin": "https://other.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 400


def test_the_route_is_documented(built):
    with make_client(built) as client:
        operation = client.get("/openapi.json").json()["paths"]["/events"]["post"]
    assert {"202", "403", "413", "415", "422", "429", "503"} <= set(operation["responses"])
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    single, batch = schema["anyOf"]
    assert single["additionalProperties"] is False
    assert set(single["properties"]) == {"type", "article", "item", "position"}
    assert batch["properties"]["events"]["maxItems"] == 100
    assert "$ref" not in json.dumps(schema)


# --- a real server ------------------------------------------------------------------------


def post_on(connection: http.client.HTTPConnection, body: dict) -> int:
    connection.request("POST", "/events", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def pid_of(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/readyz")
    response = connection.getresponse()
    return int(json.loads(response.read())["pid"])


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_events_from_every_worker_reach_the_report(topic_corpus, tmp_path):
    """Two workers each record on their own connection to events.sqlite; `recs report`
    reads them all, while the server runs."""
    store_dir = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(store_dir), RECS_EVENTS="on")
    recs = str(BIN / "recs")
    subprocess.run([recs, "build", str(topic_corpus), "--quiet"], env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [recs, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    connections: dict[int, http.client.HTTPConnection] = {}
    try:

        def both_workers() -> bool:
            # A keep-alive connection stays with the worker that accepted it: keep one
            # connection per worker, found by the pid its /readyz names.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            pid = pid_of(connection)
            if pid in connections:
                connection.close()
            else:
                connections[pid] = connection
            return len(connections) == 2

        wait_until(both_workers, 90, "connections to both workers")
        for position, (pid, connection) in enumerate(sorted(connections.items()), 1):
            # Each worker gets the events of its own position, and says it took them.
            assert pid_of(connection) == pid
            body = {"events": [impression(SPACE0, SPACE1, position)] * 3}
            assert post_on(connection, body) == 202

        def reported() -> bool:
            done = subprocess.run(
                [recs, "report", "--json"], env=env, capture_output=True, text=True, check=True
            )
            positions = json.loads(done.stdout)["positions"]
            return [p["impressions"] for p in positions] == [3, 3]

        wait_until(reported, 30, "both workers' events in the report")
    finally:
        for connection in connections.values():
            connection.close()
        stop(server)
