"""The HTTP API under hostile requests: schemathesis against the OpenAPI schema, body and
parameter limits, file paths, the bearer token's comparison, and logs free of tokens."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, settings

from recs import journal, store
from recs.api import create_app
from recs.config import Settings
from recs.cpus import CPU_MAX
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import RankSettings
from recs.service import Service
from tests.conftest import BIN, EXAMPLES
from tests.test_serve_e2e import free_port, request, wait_until

TOKEN = "fuzz-token-0123456789abcdef"
SEED_URL = (
    "https://www.sixthtone.com/news/1009712/"
    "chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
)


def app_for(store_dir: Path, **options) -> tuple[Settings, Service]:
    settings_ = Settings(store=store_dir, model="hashing", **options)
    service = Service(settings_)
    service.poll()
    return settings_, service


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory) -> Path:
    store_dir = tmp_path_factory.mktemp("api") / "store"
    build(EXAMPLES, store_dir, HashingEncoder(), RankSettings())
    return store_dir


@pytest.fixture
def client(sample_store, tmp_path) -> Iterator[TestClient]:
    """A writable copy of the sample store behind the app, with writes on."""
    store_dir = tmp_path / "store"
    shutil.copytree(sample_store, store_dir)
    with TestClient(create_app(*app_for(store_dir, api_token=TOKEN))) as test_client:
        test_client.store_dir = store_dir  # type: ignore[attr-defined]
        yield test_client


# --- schemathesis ----------------------------------------------------------------------


# The schema is the app's own (no store needed to make it); the requests go to a real
# `recs serve --workers 2` over a copy of the sample store.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(model="hashing", api_token=TOKEN), Service(Settings())).openapi(),
    config=schemathesis.Config.from_dict(
        {
            "checks": {
                # A string that is not a URL or a date is schema-valid and still refused
                # (422): the schema bounds values, the parser judges them.
                "positive_data_acceptance": {"enabled": False},
                # Bodies over the byte limit are refused before they are validated.
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 406, 413, 415, 422, "5xx"]
                },
            }
        }
    ),
)


@pytest.fixture(scope="module")
def live(sample_store, tmp_path_factory) -> Iterator[str]:
    """`recs serve --workers 2` with writes and reader events on; yields its base URL."""
    store_dir = tmp_path_factory.mktemp("live") / "store"
    shutil.copytree(sample_store, store_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(
        RECS_MODEL="hashing", RECS_STORE=str(store_dir), RECS_API_TOKEN=TOKEN, RECS_EVENTS="on"
    )
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "recs"), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base), 60, "the server to start")
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def answers(base: str) -> bool:
    try:
        return request(base, "GET", "/readyz")[0] == 200
    except OSError:
        return False


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


# uvicorn refuses a request line over 64 KiB itself, with a plain-text 400, before recs
# sees it (test_an_over_long_request_line_is_refused_by_the_server); generated requests
# longer than that test uvicorn, not recs, and are left out.
MAX_REQUEST_LINE = 60_000


def fits(case, base: str) -> bool:
    import requests

    kwargs = case.as_transport_kwargs(base_url=base)
    prepared = requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params"))
    return len(prepared.prepare().path_url) <= MAX_REQUEST_LINE


@pytest.mark.e2e
@SCHEMA.parametrize()
@FUZZ
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(case, live):
    """Every check that applies: no 5xx, status codes, content types, headers (Allow on
    405), response bodies valid against the schema, schema-violating requests refused."""
    assume(fits(case, live))
    case.call_and_validate(base_url=live)


@pytest.mark.e2e
@SCHEMA.parametrize()
@FUZZ
def test_schemathesis_with_the_right_token(case, live):
    """The same with writes allowed: generated articles are stored and deleted."""
    assume(fits(case, live))
    case.call_and_validate(base_url=live, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.e2e
def test_an_over_long_request_line_is_refused_by_the_server(live):
    import urllib.error
    import urllib.request

    long_url = f"{live}/related?url=https://a.example/x&provider={'p' * 70_000}"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(long_url, timeout=10)
    error.value.close()  # the answer's socket
    assert error.value.code == 400
    assert answers(live)  # and it goes on serving


# --- limits ------------------------------------------------------------------------------


def test_the_body_limit_is_one_megabyte_and_holds_without_content_length(client, monkeypatch):
    assert Settings().max_body_bytes == 1_000_000
    called = []

    def upsert(self, fields):
        called.append(fields)
        raise AssertionError("a body over the limit reached the route")

    monkeypatch.setattr(Service, "upsert", upsert)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    body = b'{"title": "t", "excerpt": "' + b"x" * 1_000_000 + b'"}'
    response = client.put("/articles", content=body, headers=auth)
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the request body is over 1,000,000 bytes (RECS_MAX_BODY_BYTES)"
    )

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to look at
        yield body[:600_000]
        yield body[600_000:]

    response = client.put("/articles", content=chunks(), headers=auth)
    assert response.status_code == 413 and called == []
    assert response.json()["title"] == "Payload too large"
    monkeypatch.undo()
    just_under = b'{"title": "t", "excerpt": "e", "webUrl": "https://a.example/x", "pad": "'
    just_under += b" " * (999_990 - len(just_under)) + b'"}'
    assert len(just_under) <= 1_000_000
    assert client.put("/articles", content=just_under, headers=auth).status_code != 413


def bounded(schema: dict) -> bool:
    kind = schema.get("type")
    if "anyOf" in schema:
        return all(bounded(s) for s in schema["anyOf"])
    if kind == "string":
        return "maxLength" in schema or "enum" in schema
    if kind in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        return "maximum" in schema and low
    if kind == "array":
        return "maxItems" in schema and bounded(schema["items"])
    return kind in ("boolean", "null") or "$ref" in schema


def test_every_parameter_and_body_field_is_bounded(client):
    spec = client.get("/openapi.json").json()
    parameters = [
        parameter
        for path in spec["paths"].values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
    ]
    assert len(parameters) >= 20
    for parameter in parameters:
        if parameter["in"] == "header":
            continue  # Authorization: compared as a digest, whatever its length
        assert bounded(parameter["schema"]), parameter
    for name in ("ArticleIn", "Provider", "ImageIn"):
        for key, field in spec["components"]["schemas"][name]["properties"].items():
            assert bounded(field), (name, key, field)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"url": "https://a.example/" + "x" * 5000}, 422),
        ({"url": SEED_URL, "limit": "51"}, 422),
        ({"url": SEED_URL, "limit": "0"}, 422),
        ({"url": SEED_URL, "limit": "9" * 400}, 422),
        ({"url": SEED_URL, "min_quality": "1e13"}, 422),
        ({"url": SEED_URL, "min_quality": "nan"}, 422),
        ({"url": SEED_URL, "since": "2022-01-01" + "x" * 100}, 422),
        ({"url": SEED_URL, "provider": "p" * 501}, 422),
        ({"url": SEED_URL, "exclude_url": [f"https://a.example/{n}" for n in range(101)]}, 422),
        ({"url": SEED_URL, "x" * 10_000: "1"}, 400),
    ],
)
def test_out_of_bound_parameters_are_refused(client, params, status):
    response = client.get("/related", params=params)
    assert response.status_code == status, response.text
    assert len(response.content) < 2000  # the detail never echoes a huge value back


@pytest.mark.parametrize(
    "extra",
    [
        ', "deep": ' + "[" * 30 + "]" * 30,
        "".join(f', "k{n}": {n}' for n in range(25_000)),
        ', "text": "\\ud800"',  # half a UTF-16 pair: no UTF-8 for it, SQLite would refuse it
        ', "quality": 1e400',
        ', "images": [{"url": "https://a.example/i.png", "width": 1e15}]',
    ],
    ids=["nested 30 deep", "25,000 keys", "lone surrogate", "infinite", "huge width"],
)
def test_body_fields_are_bounded_inside_and_outside_the_schema(client, extra):
    body = ('{"title": "t", "excerpt": "e", "webUrl": "https://a.example/x"' + extra + "}").encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for response in (
        client.put("/articles", content=body, headers=headers),
        client.post("/related", content=body, headers=headers),
    ):
        assert response.status_code == 422, response.text
    assert client.get("/related", params={"url": "https://a.example/x"}).status_code == 404


# --- no request value reaches a file path -------------------------------------------------


HOSTILE = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "https://a.example/../../../../etc/passwd",
    "https://a.example/%2e%2e/%2e%2e/etc/passwd",
    "https://a.example/x\\..\\..\\windows",
    "gen-000001/meta.sqlite",
    "https://a.example/?source=../../etc/passwd",
]


def test_no_request_value_reaches_a_file_path(client, monkeypatch):
    """Every file the app opens while answering hostile requests is one of the store's own."""
    store_dir = client.store_dir.resolve()
    opened: list[str] = []
    real_open, real_os_open, real_connect = builtins.open, os.open, sqlite3.connect

    def record(path) -> None:
        text = os.fsdecode(path) if not isinstance(path, int) else ""
        opened.append(text.removeprefix("file:").split("?")[0])

    def open_(path, *args, **kwargs):
        record(path)
        return real_open(path, *args, **kwargs)

    def os_open(path, *args, **kwargs):
        record(path)
        return real_os_open(path, *args, **kwargs)

    def connect(path, *args, **kwargs):
        record(path)
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)  # pathlib's read_text and open
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(sqlite3, "connect", connect)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for value in HOSTILE:
        client.get("/related", params={"url": value, "exclude_url": value, "provider": value})
        client.get("/" + value.lstrip("/"))
        client.delete("/articles", params={"url": value}, headers=auth)
        for body in (
            {"title": value, "excerpt": value, "webUrl": value},
            {"title": "t", "excerpt": "e", "webUrl": "https://a.example/ok", "source": value},
            {"title": "t", "excerpt": "e", "originalUrl": value, "images": [{"url": value}]},
        ):
            client.put("/articles", json=body, headers=auth)
            client.post("/related", json=body)
    written = client.put(
        "/articles",
        json={"title": "t", "excerpt": "e", "webUrl": "https://a.example/ok", "source": HOSTILE[0]},
        headers=auth,
    )
    assert written.status_code in (200, 201)
    monkeypatch.undo()
    names = {Path(path).name for path in opened}
    assert {store.CURRENT, journal.JOURNAL, store.LOCK} <= names  # the recorder sees them all
    allowed = {store.CURRENT, journal.JOURNAL, store.LOCK, store.DB}
    for path in opened:
        if Path(path) == CPU_MAX:
            continue  # the container's CPU limit, read once per process (recs.cpus)
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(store_dir), path
        assert resolved.name in allowed, path
        assert "passwd" not in path and ".." not in path


# --- the token -----------------------------------------------------------------------------


def test_token_comparison_is_of_equal_length_digests_whatever_is_sent(client, monkeypatch):
    """Timing is not asserted (noisy); the mechanism is: one comparison per request, of two
    32-byte SHA-256 digests, whatever the header holds, so its time says nothing."""
    calls: list[tuple[int, int]] = []
    real = secrets.compare_digest

    def compare(a, b):
        calls.append((len(a), len(b)))
        assert isinstance(a, bytes) and isinstance(b, bytes)
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", compare)
    article = {"title": "t", "excerpt": "e", "webUrl": "https://a.example/token"}
    headers = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer x",
        "Bearer " + "x" * 10_000,
        "Bearer " + TOKEN[:-1],
        "Bearer " + TOKEN[:-1] + "X",
        "Bearer " + TOKEN + "x",
        "Basic " + TOKEN,
        "bearer " + TOKEN.upper(),
        TOKEN,
    ]
    answers = set()
    for header in headers:
        calls.clear()
        sent = {} if header is None else {"Authorization": header}
        response = client.put("/articles", json=article, headers=sent)
        assert response.status_code == 401, header
        assert calls == [(32, 32)], header
        answers.add((response.status_code, response.content, response.headers["www-authenticate"]))
    assert len(answers) == 1  # every wrong token gets the very same answer
    calls.clear()
    response = client.put("/articles", json=article, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201 and calls == [(32, 32)]
    assert hashlib.sha256(TOKEN.encode()).digest_size == 32


@pytest.mark.e2e
def test_tokens_never_appear_in_logs(tmp_path):
    """A real server with the access log on, writes that fail and succeed: neither the right
    token nor a wrong one is in anything it prints."""
    store_dir = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(RECS_MODEL="hashing", RECS_STORE=str(store_dir), RECS_API_TOKEN=TOKEN)
    subprocess.run(
        [str(BIN / "recs"), "build", str(EXAMPLES), "-q"], env=env, check=True, timeout=300
    )
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                *(str(BIN / "recs"), "serve", "--workers", "2", "--port", str(port)),
                *("--access-log", "--log-level", "debug"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    wrong = "wrong-secret-9876543210fedcba"
    try:

        def ready() -> bool:
            try:
                return request(base, "GET", "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, 60, "the server to start")
        article = {"title": "Logged", "excerpt": "e", "webUrl": "https://a.example/logged"}
        assert request(base, "PUT", "/articles", article, token=wrong)[0] == 401
        assert request(base, "PUT", "/articles", article, token=TOKEN)[0] == 201
        assert request(base, "PUT", "/articles", {"title": 5}, token=TOKEN)[0] == 422
        # Both workers serve the write (within RECS_RELOAD_INTERVAL) before it is deleted.
        seen = "/related?url=https://a.example/logged"
        wait_until(lambda: all(request(base, "GET", seen)[0] == 200 for _ in range(6)), 10, "it")
        assert (
            request(base, "DELETE", "/articles?url=https://a.example/logged", token=wrong)[0] == 401
        )
        assert (
            request(base, "DELETE", "/articles?url=https://a.example/logged", token=TOKEN)[0] == 200
        )
        assert (
            request(base, "DELETE", "/articles?url=https://a.example/none", token=TOKEN)[0] == 404
        )
        metrics = request_text(base + "/metrics")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    text = log.read_text()
    assert 'PUT /articles HTTP/1.1" 401' in text and "DELETE /articles" in text  # it was logging
    for secret in (TOKEN, wrong, TOKEN[:12], wrong[:12]):
        assert secret not in text
        assert secret not in metrics


def request_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()
