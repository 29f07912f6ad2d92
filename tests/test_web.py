"""The browser routes in process (TestClient): /widget.js, /preview and its files,
POST /preview/block, and CORS for the widget. The browser itself: tests/test_browser.py."""

from __future__ import annotations

import gzip
import re
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from recs.draft import block_entries
from recs.frontmatter import load_yaml
from recs.rank_settings import REQUEST_FILTERS
from recs.rewrite import render_block
from recs.web import PREVIEW_FILES
from tests.test_api import make_client

STATIC = resources.files("recs").joinpath("static")
SITE = "https://www.site.example"
DRAFT = {
    "title": "Space rocket launch to the space station",
    "excerpt": "The crewed space rocket launch to the station in orbit.",
}


@pytest.fixture
def client(built) -> TestClient:
    with make_client(built, cors_origins=(SITE,)) as client:
        yield client


# --- /widget.js --------------------------------------------------------------------------


def test_widget_is_served_from_the_package_with_an_etag(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content == STATIC.joinpath("widget.js").read_bytes()
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    again = client.get("/widget.js?v=2", headers={"If-None-Match": f'W/"x", {etag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    head = client.head("/widget.js")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    put = client.put("/widget.js")
    assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD"


def test_widget_stays_under_5_kb_gzipped():
    size = len(gzip.compress(STATIC.joinpath("widget.js").read_bytes(), compresslevel=9))
    assert size < 5 * 1024, f"widget.js is {size} bytes gzipped"


def test_widget_inserts_text_only(client):
    """The rule the browser test checks in action, held in the source too: no HTML
    parsing sink in the widget or the preview's script."""
    for name in ("widget.js", "preview.js"):
        source = STATIC.joinpath(name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (name, sink)


# --- /preview ----------------------------------------------------------------------------


def test_preview_page_needs_no_internet_and_allows_nothing_else(client):
    response = client.get("/preview")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = response.text
    assert 'data-pinned-key="relatedPinned" data-excluded-key="relatedExclude"' in html
    named = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert {"/preview/preview.css", "/preview/preview.js"} <= set(named)
    for url in named:
        assert url.startswith("/") or url == "data:,", url
        if url.startswith("/"):
            assert client.get(url).status_code == 200, url
    for name in PREVIEW_FILES:
        text = client.get(f"/preview/{name}").text
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", text), name  # nothing from the web
    assert client.get("/preview/preview.css").headers["content-type"].startswith("text/css")
    assert client.get("/preview/nope.js").status_code == 404


def test_preview_page_names_the_configured_keys_escaped(built):
    with make_client(built, pinned_key='pins"<b>', excluded_key="never") as client:
        html = client.get("/preview").text
    assert 'data-pinned-key="pins&quot;&lt;b&gt;" data-excluded-key="never"' in html


def test_preview_options_come_from_the_openapi_parameters_of_post_related(client):
    """The page builds one control per query parameter of POST /related, by its schema
    type: the parameters it reads are there, each with a name and a schema."""
    schema = client.get("/openapi.json").json()
    parameters = schema["paths"]["/related"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["limit", *REQUEST_FILTERS]
    for parameter in parameters:
        assert parameter["in"] == "query" and parameter["schema"]["type"], parameter
    # The browser routes are pages and files, not part of the API document.
    assert not [path for path in schema["paths"] if "preview" in path or "widget" in path]


# --- POST /preview/block -----------------------------------------------------------------


def test_block_is_the_list_regenerate_writes_with_the_pins_first(client):
    pin = "https://example.com/cooking/3"
    exclude = "https://example.com/space/1"
    draft = {**DRAFT, "relatedPinned": [pin], "relatedExclude": [exclude]}
    # Options of the list are not part of the block: regenerate writes the plain list.
    listed = client.post("/related", json=draft).json()["related"]
    response = client.post("/preview/block", json=draft)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    assert text == (
        f'relatedPinned:\n  - "{pin}"\nrelatedExclude:\n  - "{exclude}"\n'
        + render_block(block_entries(listed))
    )
    data = load_yaml(text)
    assert data["relatedPinned"] == [pin] and data["relatedExclude"] == [exclude]
    assert data["related"][0]["webUrl"] == pin
    assert exclude not in [item["webUrl"] for item in data["related"]]
    assert all("score" not in item for item in data["related"]) and len(data["related"]) == 3
    revision = client.get("/readyz").json()["revision"]
    assert revision == 0  # the preview stored nothing


def test_block_without_pins_is_the_related_block_alone(client):
    text = client.post("/preview/block", json=DRAFT).text
    assert text.startswith("related:\n  - title: ") and "relatedPinned" not in text


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"title=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"json": {"excerpt": "no title"}}, 422),
        ({"json": {**DRAFT, "relatedPinned": ["not a url"]}}, 422),
        ({"json": DRAFT, "params": {"limit": "3"}}, 400),
    ],
)
def test_block_refuses_what_post_related_refuses(client, kwargs, status):
    response = client.post("/preview/block", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


# --- CORS and metrics --------------------------------------------------------------------


def test_cors_allows_the_widget_from_the_configured_origins_only(client):
    url = "/related?url=https://example.com/space/0"
    allowed = client.get(url, headers={"Origin": SITE})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SITE
    other = client.get(url, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "Origin" in other.headers["vary"]


def test_cors_is_off_without_configured_origins(built):
    with make_client(built) as client:
        response = client.get("/related?url=https://example.com/space/0", headers={"Origin": SITE})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_metrics_name_the_browser_routes(client):
    for path in ("/widget.js", "/preview", "/preview/preview.js"):
        assert client.get(path).status_code == 200
    client.post("/preview/block", json=DRAFT)
    lines = client.get("/metrics").text.splitlines()
    for route, method in (
        ("/widget.js", "GET"),
        ("/preview", "GET"),
        ("/preview/preview.js", "GET"),
        ("/preview/block", "POST"),
    ):
        line = f'recs_http_requests_total{{method="{method}",route="{route}",status="200"}} 1.0'
        assert line in lines
