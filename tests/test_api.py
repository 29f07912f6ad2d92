"""The HTTP API in process (TestClient): every route, every error shape, writes, reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recs import journal, store
from recs.api import create_app
from recs.config import Settings
from recs.encoder import HashingEncoder
from recs.pipeline import build
from recs.rank_settings import REQUEST_FILTERS
from recs.service import Service

TOKEN = "s3cret-token-0123456789"
SPACE0 = "https://example.com/space/0"


def make_client(store_dir: Path, **options) -> TestClient:
    settings = Settings(store=store_dir, model="hashing", **options)
    service = Service(settings)
    service.poll()
    return TestClient(create_app(settings, service))


@pytest.fixture
def client(built) -> TestClient:
    with make_client(built) as client:
        yield client


@pytest.fixture
def writer(built) -> TestClient:
    with make_client(built, api_token=TOKEN) as client:
        yield client


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (
        body["status"] == status
        and body["title"]
        and body["detail"]
        and body["type"] == "about:blank"
    )
    return body


def related(client, url: str, **params: str) -> list[dict]:
    """The entries of GET /related for `url` with `params`."""
    response = client.get("/related", params={"url": url, **params})
    assert response.status_code == 200, response.text
    return response.json()["related"]


def urls(response) -> list[str]:
    return [item["webUrl"] for item in response.json()["related"]]


def test_get_related_answers_the_stored_list(client):
    response = client.get(
        "/related", params={"url": "http://EXAMPLE.com/space/0/?utm_source=x#top"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == SPACE0
    assert len(body["related"]) == 3
    assert all("/space/" in u for u in urls(response)[:2])
    entry = body["related"][0]
    assert list(entry) == [
        "title",
        "excerpt",
        "publishedDateTime",
        "webUrl",
        "type",
        "provider",
        "quality",
        "score",
        "similarity",
        "reason",
    ]
    assert 0 < entry["similarity"] <= 1
    assert entry["reason"] == {"kind": "similar", "category": "news"}
    scores = [e["score"] for e in body["related"]]
    assert scores == sorted(scores, reverse=True)


def test_limit_and_larger_limits_rank_live(client):
    assert len(client.get("/related", params={"url": SPACE0, "limit": 1}).json()["related"]) == 1
    eight = client.get("/related", params={"url": SPACE0, "limit": 8}).json()["related"]
    assert len(eight) == 8
    three = client.get("/related", params={"url": SPACE0}).json()["related"]
    assert [e["webUrl"] for e in eight[:3]] == [e["webUrl"] for e in three]


def test_filters(client):
    response = client.get(
        "/related", params={"url": SPACE0, "limit": 8, "exclude_url": "https://example.com/space/1"}
    )
    assert "https://example.com/space/1" not in urls(response)
    assert (
        client.get("/related", params={"url": SPACE0, "provider": "Nobody"}).json()["related"] == []
    )
    assert (
        len(
            client.get("/related", params={"url": SPACE0, "provider": "example news"}).json()[
                "related"
            ]
        )
        == 3
    )
    assert (
        client.get("/related", params={"url": SPACE0, "exclude_provider": "Example News"}).json()[
            "related"
        ]
        == []
    )
    assert (
        client.get("/related", params={"url": SPACE0, "since": "2024-01-01"}).json()["related"]
        == []
    )
    assert (
        len(
            client.get(
                "/related", params={"url": SPACE0, "until": "2024-01-01", "min_quality": 50}
            ).json()["related"]
        )
        == 3
    )
    assert client.get("/related", params={"url": SPACE0, "min_quality": 51}).json()["related"] == []
    assert client.get("/related", params={"url": SPACE0, "type": "video"}).json()["related"] == []
    assert len(related(client, SPACE0, include_drafts="true")) == 3
    assert related(client, SPACE0, topic="space") == []  # the corpus has no topics
    assert len(related(client, SPACE0, same_category="true")) == 3  # all are "news"
    assert len(related(client, SPACE0, exclude_type="video")) == 3
    assert related(client, SPACE0, max_age_days="30") == []  # dated 2023: long before now


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({}, 422, "url: required"),
        ({"url": "not a url"}, 422, "not an article URL"),
        ({"url": SPACE0, "limit": 0}, 422, "between 1 and 50"),
        ({"url": SPACE0, "limit": 51}, 422, "between 1 and 50"),
        ({"url": SPACE0, "limit": "x"}, 422, "not a whole number"),
        ({"url": SPACE0, "since": "yesterday"}, 422, "since"),
        ({"url": SPACE0, "min_quality": "nan"}, 422, "out of range"),
        ({"url": SPACE0, "include_drafts": "maybe"}, 422, "not true or false"),
        ({"url": SPACE0, "max_age_days": "0"}, 422, "out of range"),
        ({"url": SPACE0, "colour": "red"}, 400, "unknown query parameter(s): colour"),
        (
            {"url": "https://example.com/missing"},
            404,
            "no stored article has the URL https://example.com/missing",
        ),
    ],
)
def test_errors_are_problem_json(client, params, status, text):
    body = is_problem(client.get("/related", params=params), status)
    assert text in body["detail"]


def test_repeated_single_parameter_is_refused(client):
    assert (
        "given 2 times"
        in is_problem(client.get(f"/related?url={SPACE0}&limit=1&limit=2"), 422)["detail"]
    )


def test_unknown_route_and_method_are_problem_json(client):
    is_problem(client.get("/nope"), 404)
    is_problem(client.patch("/related"), 405)


def test_etag_and_cache_control(client):
    first = client.get("/related", params={"url": SPACE0})
    assert first.headers["cache-control"] == "public, max-age=60"
    etag = first.headers["etag"]
    assert etag.startswith('"gen-000001.0-')
    again = client.get("/related", params={"url": SPACE0}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    other = client.get(
        "/related", params={"url": SPACE0, "limit": 2}, headers={"If-None-Match": etag}
    )
    assert other.status_code == 200 and other.headers["etag"] != etag
    assert (
        client.get(
            "/related", params={"url": SPACE0}, headers={"If-None-Match": f'W/{etag}, "x"'}
        ).status_code
        == 304
    )


def test_if_none_match_star_matches_only_an_article_that_exists(client):
    """`*` matches any current representation (RFC 9110, 13.1.2): an unknown URL has none."""
    star = {"If-None-Match": "*"}
    is_problem(
        client.get("/related", params={"url": "https://example.com/missing"}, headers=star), 404
    )
    known = client.get("/related", params={"url": SPACE0}, headers=star)
    assert known.status_code == 304 and known.content == b""
    assert known.headers["etag"] == client.get("/related", params={"url": SPACE0}).headers["etag"]


def test_cache_max_age_is_configurable(built):
    with make_client(built, cache_max_age=5) as client:
        assert (
            client.get("/related", params={"url": SPACE0}).headers["cache-control"]
            == "public, max-age=5"
        )


def test_cors_off_by_default_and_configurable(client, built):
    origin = {"Origin": "https://widget.example"}
    assert (
        "access-control-allow-origin"
        not in client.get("/related", params={"url": SPACE0}, headers=origin).headers
    )
    with make_client(built, cors_origins=("https://widget.example",)) as cors:
        response = cors.get("/related", params={"url": SPACE0}, headers=origin)
        assert response.headers["access-control-allow-origin"] == "https://widget.example"
        assert "etag" in response.headers["access-control-expose-headers"].lower()


def test_with_cors_every_answer_varies_on_origin(built):
    """A shared cache must not hand an answer made for one origin (or for none) to another:
    every answer says Vary: Origin, whatever its status and whether Origin was sent."""
    origin = "https://widget.example"
    draft = {"title": "Football final", "excerpt": "The football match."}
    with make_client(built, cors_origins=(origin,), api_token=TOKEN, max_body_bytes=2048) as client:
        etag = client.get("/related", params={"url": SPACE0}).headers["etag"]
        requests = {
            "GET 200": lambda h: client.get("/related", params={"url": SPACE0}, headers=h),
            "GET 304": lambda h: client.get(
                "/related", params={"url": SPACE0}, headers={**h, "If-None-Match": etag}
            ),
            "GET 404": lambda h: client.get(
                "/related", params={"url": "https://example.com/missing"}, headers=h
            ),
            "GET 400": lambda h: client.get("/related", params={"nope": "1"}, headers=h),
            "no route": lambda h: client.get("/nope", headers=h),
            "PATCH 405": lambda h: client.patch("/related", headers=h),
            "POST 200": lambda h: client.post("/related", json=draft, headers=h),
            "POST 413": lambda h: client.post(
                "/related", json={**draft, "excerpt": "x" * 5000}, headers=h
            ),
            "POST 415": lambda h: client.post(
                "/related", content=b"{}", headers={**h, "Content-Type": "text/plain"}
            ),
            "PUT 401": lambda h: client.put("/articles", json=draft, headers=h),
            "healthz": lambda h: client.get("/healthz", headers=h),
            "docs": lambda h: client.get("/docs", headers=h),
            "preflight": lambda h: client.options(
                "/related", headers={**h, "Access-Control-Request-Method": "GET"}
            ),
        }
        for name, send in requests.items():
            for headers in ({}, {"Origin": origin}, {"Origin": "https://other.example"}):
                if name == "preflight" and not headers:
                    continue  # without Origin an OPTIONS is no preflight: 405 below
                response = send(headers)
                vary = {v.strip().lower() for v in response.headers.get("vary", "").split(",")}
                assert "origin" in vary, (name, headers, response.status_code)
            assert send({"Origin": origin}).headers["access-control-allow-origin"] == origin
        assert "origin" in client.options("/related").headers["vary"].lower()


def test_post_related_for_a_draft(client):
    draft = {
        "title": "Football club wins the cup final",
        "excerpt": "The football match went to penalties.",
    }
    response = client.post("/related", json=draft, params={"limit": 2})
    assert response.status_code == 200
    assert response.json()["url"] is None
    assert all("/football/" in u for u in urls(response))
    stored = {**draft, "webUrl": "https://example.com/football/0"}
    assert "https://example.com/football/0" not in urls(
        client.post("/related", json=stored, params={"limit": 4})
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"excerpt": "no title"}, "title"),
        ({"title": "t"}, "excerpt"),
        ({"title": 5, "excerpt": "e"}, "title"),
        ({"title": "t", "excerpt": "e", "publishedDateTime": "someday"}, "publishedDateTime"),
        ({"title": "t", "excerpt": "e", "quality": "high"}, "quality"),
    ],
)
def test_post_related_rejects_bad_articles(client, body, text):
    assert text in is_problem(client.post("/related", json=body), 422)["detail"]


def test_a_json_body_must_be_sent_as_json(writer):
    """415 for another media type, before the body is parsed; application/json with a
    UTF-8 charset (and the +json types) is read."""
    draft = b'{"title": "Football final", "excerpt": "The football match went to penalties."}'
    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = draft[:-1] + b', "webUrl": "https://example.com/typed"}'
    for content_type in (
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        None,
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        for response in (
            writer.post("/related", content=draft, headers=headers),
            writer.put("/articles", content=article, headers={**headers, **auth}),
        ):
            body = is_problem(response, 415)
            assert body["title"] == "Unsupported media type"
            assert "application/json" in body["detail"], content_type
    form = writer.post("/related", data={"title": "Football final", "excerpt": "match"})
    assert "application/x-www-form-urlencoded" in is_problem(form, 415)["detail"]
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON; charset=UTF-8",
        'application/json;charset="utf-8"',
        "application/merge-patch+json",
    ):
        headers = {"Content-Type": content_type}
        assert writer.post("/related", content=draft, headers=headers).status_code == 200
        response = writer.put("/articles", content=article, headers={**headers, **auth})
        assert response.status_code in (200, 201), (content_type, response.text)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"title": "t",\n "excerpt": }', "invalid JSON: expecting value at line 2, column 13"),
        (
            b'{"title": "t" "excerpt": "e"}',
            "invalid JSON: expecting ',' delimiter at line 1, column 15",
        ),
        (
            b'{"title": "t\x1b", "excerpt": "e"}',
            "invalid JSON: invalid control character at line 1, column 13",
        ),
        (b'{"title": "unclosed', "invalid JSON: unterminated string starting at line 1, column 11"),
        (b'{"title": "t", "excerpt": "e"} x', "invalid JSON: extra data at line 1, column 32"),
        (
            b'{"title": "caf\xe9", "excerpt": "e"}',
            "invalid JSON: byte 0xe9 is not UTF-8 at line 1, column 15",
        ),
        (b"  ", "the body is empty: send a JSON object"),
        (b"[1, 2]", "body: Input should be a valid dictionary or instance of ArticleIn"),
    ],
    ids=[
        "no value",
        "no comma",
        "raw ESC",
        "unterminated",
        "extra data",
        "latin-1",
        "empty",
        "list",
    ],
)
def test_invalid_json_says_what_is_wrong_and_where(writer, body, detail):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    for response in (
        writer.post("/related", content=body, headers=headers),
        writer.put("/articles", content=body, headers=headers),
    ):
        assert is_problem(response, 422)["detail"] == detail


def test_the_token_is_checked_before_the_body_is_read(writer):
    """Without the token a write learns nothing about what a body should hold."""
    for content, content_type in (
        (b"{not json", "application/json"),
        (b'{"title": 5}', "application/json"),
        (b"[]", "application/json"),
        (b"title=t&excerpt=e", "application/x-www-form-urlencoded"),
        (b"{}", "text/plain"),
        (b"", None),
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        for token in (None, "wrong-token-0123456789"):
            auth = {} if token is None else {"Authorization": f"Bearer {token}"}
            response = writer.put("/articles", content=content, headers={**headers, **auth})
            assert is_problem(response, 401), (content, token)
        right = {**headers, "Authorization": f"Bearer {TOKEN}"}
        assert writer.put("/articles", content=content, headers=right).status_code in (415, 422)


def test_writes_are_off_without_a_token(client):
    body = is_problem(
        client.put("/articles", json={"title": "t", "excerpt": "e", "webUrl": "https://a.com/x"}),
        403,
    )
    assert "RECS_API_TOKEN" in body["detail"]
    is_problem(client.delete("/articles", params={"url": SPACE0}), 403)


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-0123456789", "Basic abc", f"Bearer {TOKEN}x", "Bearer "]
)
def test_writes_need_the_right_token(writer, header):
    headers = {"Authorization": header} if header else {}
    response = writer.put(
        "/articles",
        json={"title": "t", "excerpt": "e", "webUrl": "https://a.com/x"},
        headers=headers,
    )
    assert is_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_put_is_durable_and_visible_everywhere(writer, built):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = {
        "title": "Space rocket launch to the space station",
        "excerpt": "A space rocket with astronauts launched to the space station orbit.",
        "webUrl": "https://example.com/space/new",
        "provider": {"name": "Example News", "domain": "example.com"},
        "publishedDateTime": "2023-01-02T00:00:00Z",
    }
    response = writer.put("/articles", json=article, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["created"] is True and response.json()["revision"] >= 1
    # Durable: a fresh process reading the store sees the journal entry.
    changes = journal.read_changes(built, store.current_generation(built))
    assert [c.url for c in changes] == ["https://example.com/space/new"]
    # Its own list, and it enters the lists of stored space articles.
    own = writer.get("/related", params={"url": "https://example.com/space/new"})
    assert own.status_code == 200 and all("/space/" in u for u in urls(own))
    entered = [
        u
        for u in ("https://example.com/space/0", "https://example.com/space/3")
        if "https://example.com/space/new" in urls(writer.get("/related", params={"url": u}))
    ]
    assert entered
    again = writer.put(
        "/articles", json={**article, "title": "Rocket launch to space"}, headers=auth
    )
    assert again.status_code == 200 and again.json()["created"] is False

    gone = writer.delete("/articles", params={"url": "http://example.com/space/new/"}, headers=auth)
    assert gone.status_code == 200 and gone.json() == {
        "url": "https://example.com/space/new",
        "revision": 3,
        "deleted": True,
    }
    is_problem(writer.get("/related", params={"url": "https://example.com/space/new"}), 404)
    for url in ("https://example.com/space/0", "https://example.com/space/3"):
        assert "https://example.com/space/new" not in urls(
            writer.get("/related", params={"url": url, "limit": 11})
        )
    is_problem(
        writer.delete("/articles", params={"url": "https://example.com/space/new"}, headers=auth),
        404,
    )


def test_put_rejects_an_article_without_url(writer):
    body = is_problem(
        writer.put(
            "/articles",
            json={"title": "t", "excerpt": "e"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ),
        422,
    )
    assert "webUrl" in body["detail"]


def test_writes_survive_the_next_build(writer, built, topic_corpus):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    writer.put(
        "/articles",
        json={
            "title": "Space news",
            "excerpt": "space station",
            "webUrl": "https://example.com/api-only",
        },
        headers=auth,
    )
    writer.delete("/articles", params={"url": "https://example.com/cooking/0"}, headers=auth)
    snapshot, report = build(
        topic_corpus, built, HashingEncoder(), Settings().rank.with_options(limit=3)
    )
    assert report.published
    assert "https://example.com/api-only" in snapshot.row_of
    # Files are the source of truth for articles that have one: the deleted file article is back.
    assert "https://example.com/cooking/0" in snapshot.row_of
    assert journal.read_changes(built, snapshot.generation) == []


def test_body_over_the_limit_is_413(built):
    with make_client(built, api_token=TOKEN, max_body_bytes=2048) as client:
        response = client.post("/related", json={"title": "t", "excerpt": "x" * 5000})
        assert is_problem(response, 413)
        response = client.put(
            "/articles",
            content=b"{" + b" " * 4000 + b"}",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert is_problem(response, 413)


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert (
        ready["status"] == "ready"
        and ready["articles"] == 12
        and ready["model"] == "hashing-384-v1"
    )
    assert ready["generation"] == "gen-000001" and ready["revision"] == 0
    client.get("/related", params={"url": SPACE0})
    client.get("/related", params={"url": "https://example.com/missing"})
    text = client.get("/metrics").text
    assert 'recs_http_requests_total{method="GET",route="/related",status="200"} 1.0' in text
    assert 'recs_http_requests_total{method="GET",route="/related",status="404"} 1.0' in text
    assert 'recs_http_request_duration_seconds_bucket{le="0.005",route="/related"}' in text
    assert "recs_articles 12.0" in text
    is_problem(client.get("/healthz", params={"x": "1"}), 400)


def test_not_ready_until_the_store_loads(tmp_path):
    settings = Settings(store=tmp_path / "empty", model="hashing")
    with TestClient(create_app(settings, Service(settings))) as client:
        assert client.get("/healthz").status_code == 200
        body = is_problem(client.get("/readyz"), 503)
        assert "no store" in body["detail"] or "loading" in body["detail"]
        is_problem(client.get("/related", params={"url": SPACE0}), 503)


def test_hot_reload_under_concurrent_requests(built, topic_corpus):
    with make_client(built, reload_interval=0.05) as client:
        failures: list[int] = []
        seen: set[str] = set()
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                response = client.get("/related", params={"url": SPACE0})
                if response.status_code != 200:
                    failures.append(response.status_code)
                seen.add(response.headers.get("etag", "").rsplit("-", 1)[0])

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for limit in (2, 4, 3):
            build(topic_corpus, built, HashingEncoder(), Settings().rank.with_options(limit=limit))
            time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(seen) >= 3  # requests were answered from at least three generations
        assert client.get("/readyz").json()["generation"] == "gen-000004"


def test_openapi_documents_every_route_and_parameter(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {"/related", "/articles", "/events", "/healthz", "/readyz", "/metrics"}
    get = paths["/related"]["get"]
    # Every request filter of RankSettings, by its own name.
    assert [p["name"] for p in get["parameters"]] == ["url", "limit", *REQUEST_FILTERS]
    assert {"200", "304", "400", "404", "422", "503"} <= set(get["responses"])
    assert "application/problem+json" in get["responses"]["404"]["content"]
    assert paths["/articles"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert client.get("/docs").status_code == 200


def test_docs_need_no_internet(client):
    """/docs and /redoc load every asset from this server: no URL in the pages leaves it,
    and each one they name answers 200."""
    import re

    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/html"
        )
        html = response.text
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", html), page  # no absolute URL at all
        named = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html)
        for url in {a or b for a, b in named}:
            assert url.startswith("/") and not url.startswith("//"), (page, url)
            asset = client.get(url)
            assert asset.status_code == 200, (page, url)
            assert asset.content, (page, url)
    css = client.get("/docs/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")


def test_metrics_name_the_documentation_routes(client):
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/nope").status_code == 404
    lines = [line for line in client.get("/metrics").text.splitlines() if "requests_total{" in line]
    for route in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/docs/assets"):
        assert f'recs_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0' in lines
    assert 'recs_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    assert len([line for line in lines if "unmatched" in line]) == 1


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("title", "Red \x1b[31malert", "title: holds the control character U+001B at character 5"),
        ("title", "null\x00byte", "title: holds the control character U+0000"),
        ("title", "tab\there", "title: holds the control character U+0009"),
        ("excerpt", "bell\x07", "excerpt: holds the control character U+0007"),
        ("excerpt", "C1 \x9b control", "excerpt: holds the control character U+009B"),
        ("excerpt", "txt.exe\u202egnp", "excerpt: holds the bidirectional control U+202E"),
        ("title", "isolate \u2066x\u2069", "title: holds the bidirectional control U+2066"),
        ("provider", {"name": "A\u202bB"}, "provider.name: holds the bidirectional control U+202B"),
        ("topics", ["ok", "b\x1bad"], "topics[1]: holds the control character U+001B"),
        ("type", "article\x7f", "type: holds the control character U+007F"),
        ("images", [{"url": "javascript:alert(1)"}], "images[0].url: 'javascript:alert(1)' is not"),
        ("images", [{"url": "/relative.png"}], "images[0].url: '/relative.png' is not"),
        ("images", [{"url": "https://a.example/i.png", "alt": "\x1b"}], "images[0].alt: holds"),
    ],
)
def test_unsafe_text_and_image_urls_are_refused(writer, field, value, detail):
    article = {
        "title": "Space station",
        "excerpt": "Astronauts in orbit.",
        "webUrl": "https://example.com/unsafe",
        field: value,
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for response in (
        writer.put("/articles", json=article, headers=auth),
        writer.post("/related", json=article),
    ):
        body = is_problem(response, 422)
        assert body["detail"].startswith(f"invalid article: {detail}"), body["detail"]
    is_problem(writer.get("/related", params={"url": "https://example.com/unsafe"}), 404)


def test_excerpts_keep_tabs_and_line_breaks(writer):
    article = {
        "title": "Space station \u2028 news",
        "excerpt": "First line.\r\n\tSecond line.\nשלום \u200fmarks\u200e stay.",
        "webUrl": "https://example.com/multiline",
    }
    response = writer.put("/articles", json=article, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201, response.text


def test_python_api_sees_writes_made_through_the_http_api(writer, built):
    from recs import Recommender

    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = {
        "title": "Space walk",
        "excerpt": "Astronauts walk outside the space station.",
        "webUrl": "https://example.com/walk",
    }
    assert writer.put("/articles", json=article, headers=auth).status_code == 201
    recommender = Recommender.open(built)
    assert recommender.canonical("https://example.com/walk") == "https://example.com/walk"
    assert recommender.related("https://example.com/walk", limit=2)


def test_delete_right_after_a_put_through_another_worker(built):
    """Two services on one store stand for two workers: B deletes what A just wrote."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        make_client(built, api_token=TOKEN, reload_interval=60) as a,
        make_client(built, api_token=TOKEN, reload_interval=60) as b,
    ):
        article = {
            "title": "Space",
            "excerpt": "space station",
            "webUrl": "https://example.com/fresh",
        }
        assert a.put("/articles", json=article, headers=auth).status_code == 201
        response = b.delete("/articles", params={"url": "https://example.com/fresh"}, headers=auth)
        assert response.status_code == 200, response.text


def test_a_store_built_with_a_filter_still_answers_from_stored_lists(
    topic_corpus, tmp_path, monkeypatch
):
    import recs.recommender

    store_dir = tmp_path / "filtered"
    build(
        topic_corpus,
        store_dir,
        HashingEncoder(),
        Settings().rank.with_options(limit=3, min_quality=10),
    )
    with make_client(store_dir) as client:
        calls = []
        real = recs.recommender.rank
        monkeypatch.setattr(
            recs.recommender, "rank", lambda *a, **k: calls.append(1) or real(*a, **k)
        )
        assert len(client.get("/related", params={"url": SPACE0}).json()["related"]) == 3
        assert (
            len(client.get("/related", params={"url": SPACE0, "limit": 2}).json()["related"]) == 2
        )
        assert calls == []  # both from the stored list
        client.get("/related", params={"url": SPACE0, "limit": 5})
        assert calls == [1]  # a larger limit ranks live


def test_a_draft_pins_and_excludes_with_the_sites_own_keys(built):
    """RECS_PINNED_KEY and RECS_EXCLUDED_KEY hold for drafts too (POST /related, the preview,
    recs related --draft), not only for stored files."""
    pin, gone = "https://example.com/cooking/3", "https://example.com/space/1"
    draft = {
        "title": "Space station news",
        "excerpt": "Astronauts and a space rocket reach orbit.",
        "pins": [pin],
        "hide": [gone],
    }
    with make_client(built, pinned_key="pins", excluded_key="hide") as client:
        entries = client.post("/related", json=draft, params={"limit": 5}).json()["related"]
    assert entries[0]["webUrl"] == pin and entries[0]["pinned"] is True
    assert entries[0]["reason"]["kind"] == "pinned"
    assert gone not in [e["webUrl"] for e in entries]


def test_the_api_reference_lists_every_parameter():
    """docs/api.md's table of GET /related parameters names each one the API takes."""
    from recs.schema import PARAMS

    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    table = text[text.index("| parameter | meaning |") :]
    table = table[: table.index("\n\n")]
    missing = [name for name in PARAMS if f"`{name}`" not in table]
    assert missing == []
