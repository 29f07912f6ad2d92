"""The widget and the preview page in a real browser: Debian's Chromium, headless, driven by
selenium, against a real `recs serve` and plain static file servers on loopback.

Each page is saved as a screenshot in test-artifacts/browser/ (RECS_TEST_ARTIFACTS to
choose another folder). Chromium and chromedriver come from `make system-deps`.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from recs.export import article_path
from tests.conftest import BIN, EXAMPLES, ROOT
from tests.servers import free_port, request, stop, wait_until

pytestmark = pytest.mark.e2e

SEED_URL = (
    "https://www.sixthtone.com/news/1009712/"
    "chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
)
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"> Face scanners in school canteens'
QUOTED_TITLE = HOSTILE_TITLE.replace('"', '\\"')
HOSTILE = f"""---
title: "{QUOTED_TITLE}"
excerpt: "<script>window.__pwned=2</script> A middle school makes students pay with facial \
recognition scanners, and parents worry about their children's privacy."
publishedDateTime: 2022-03-01T08:00:00Z
webUrl: "https://hostile.example/news/face-scanners"
type: article
provider:
  name: "<b onmouseover=window.__pwned=3>Evil Press</b>"
  domain: hostile.example
images:
  - url: "https://hostile.example/x.jpg\\" onerror=\\"window.__pwned=4"
    width: 800
    height: 450
---
"""
# A per-article file as anyone with access to a static folder could write it: the widget
# must not trust it either.
EVIL_EXPORT = {
    "url": "https://site.example/a",
    "related": [
        {
            "title": "<svg onload=window.__pwned=5>Script link",
            "webUrl": "javascript:window.__pwned=6",
            "images": [{"url": "javascript:window.__pwned=7"}, {"url": "data:image/gif,x"}],
        },
        {"title": "Data link", "webUrl": "data:text/html,<script>window.__pwned=8</script>"},
        {"title": "Fine link", "webUrl": "https://site.example/b"},
    ],
}
ERRORS_SCRIPT = (
    "<script>window.__errors = []; addEventListener('error', e => __errors.push(e.message));"
    " addEventListener('unhandledrejection', e => __errors.push(String(e.reason)));</script>"
)


# --- processes ----------------------------------------------------------------------------


def artifacts() -> Path:
    folder = Path(os.environ.get("RECS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:  # never skip: CI installs them (make system-deps)
        pytest.fail("chromium is not installed: run `make system-deps` (chromium, chromium-driver)")
    profile = tempfile.mkdtemp(prefix="recs-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
        # No network here: names other than loopback fail at once instead of after the
        # resolver's timeouts (the sample's image hosts are fictional).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_script_timeout(10)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_server() -> Iterator[object]:
    """start(folder) -> base URL of a plain static file server for that folder."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def recs(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "recs"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("page")


@pytest.fixture(scope="module")
def page_base(static_server, page_folder) -> str:
    return static_server(page_folder)


@pytest.fixture(scope="module")
def service(tmp_path_factory, page_base) -> Iterator[dict]:
    """`recs serve` over the sample corpus and one hostile article, allowing the widget
    from the test page's origin only."""
    root = tmp_path_factory.mktemp("service")
    content = root / "content"
    shutil.copytree(EXAMPLES, content)
    (content / "technology" / "face-scanners.md").write_text(HOSTILE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    model = os.environ.get("RECS_SCREENSHOT_MODEL", "hashing")  # see screenshot()
    env.update(
        RECS_MODEL=model,
        RECS_STORE=str(root / "store"),
        RECS_CORS_ORIGINS=page_base,
        RECS_EVENTS="on",  # for the widget's `events` attribute
    )
    recs("build", str(content), env=env)
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    process = subprocess.Popen(
        [str(BIN / "recs"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: request(base, "GET", "/readyz")[0] == 200, 60, "recs serve")
        yield {"base": base, "content": content, "env": env}
    finally:
        stop(process)
        log.close()


def wait(browser, condition, what: str, timeout: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition, f"timed out waiting for {what}")


def state(browser, element_id: str) -> str | None:
    return browser.execute_script(
        f"return document.getElementById('{element_id}').getAttribute('state')"
    )


def screenshot(browser, name: str, height: int | None = None) -> None:
    """Save the page. The README's pictures are hugo-0.png (docs/widget-hugo.png) and
    preview.png (docs/preview.png) of a run with the bundled model:
    `RECS_SCREENSHOT_MODEL=all-MiniLM-L6-v2 pytest tests/test_browser.py`; the tests
    assert the same either way (the hashing encoder by default: fast)."""
    if height is not None:
        browser.set_window_size(1200, height)
    browser.execute_script("window.scrollTo(0, 0)")  # the page as it opens
    browser.save_screenshot(str(artifacts() / name))


# --- the widget ---------------------------------------------------------------------------


def widget_page(api: str) -> str:
    dead = f"http://127.0.0.1:{free_port()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>widget test</title>{ERRORS_SCRIPT}
<script src="{api}/widget.js" defer></script></head>
<body style="font-family: sans-serif; max-width: 60rem; margin: 1rem auto">
<h1>A page with the widget</h1>
<recs-related id="seed" url="{SEED_URL}" api="{api}" limit="5"><p>fallback</p></recs-related>
<recs-related id="unknown" url="https://no.example/x" api="{api}"><p>fallback</p></recs-related>
<recs-related id="down" url="{SEED_URL}" api="{dead}"><p>fallback</p></recs-related>
<recs-related id="evil" url="https://site.example/a" src="evil-export"></recs-related>
<div style="height: 4000px"></div>
<recs-related id="far" url="{SEED_URL}" api="{api}"></recs-related>
</body></html>"""


def test_widget_shows_the_related_titles_as_links_and_hostile_text_as_text(
    browser, service, page_folder, page_base
):
    from selenium.webdriver.common.by import By

    api = service["base"]
    (page_folder / "widget.html").write_text(widget_page(api), encoding="utf-8")
    evil = page_folder / "evil-export"
    evil.mkdir(exist_ok=True)
    (evil / "_manifest.json").write_text(json.dumps({EVIL_EXPORT["url"]: "a.json"}))
    (evil / "a.json").write_text(json.dumps(EVIL_EXPORT))
    browser.get(page_base + "/widget.html")
    wait(browser, lambda b: state(b, "seed") == "loaded", "the seed's list")

    status, expected = request(api, "GET", f"/related?url={urllib.parse.quote(SEED_URL)}&limit=5")
    assert status == 200
    links = browser.find_elements(By.CSS_SELECTOR, "#seed a.recs-link")
    assert [a.text for a in links] == [item["title"] for item in expected["related"]]
    assert [a.get_attribute("href") for a in links] == [i["webUrl"] for i in expected["related"]]
    assert HOSTILE_TITLE in [a.text for a in links]  # the hostile article is related: as text
    assert browser.find_element(By.CSS_SELECTOR, "#seed h2.recs-heading").text == "Related articles"
    for img in browser.find_elements(By.CSS_SELECTOR, "#seed .recs-image"):
        if img.tag_name == "img":  # a placeholder box replaces an image that failed
            assert int(img.get_attribute("width")) > 0 and int(img.get_attribute("height")) > 0

    # A missing article, a service that is down: the page's own fallback content stays.
    wait(browser, lambda b: state(b, "unknown") == state(b, "down") == "failed", "failures")
    for element_id in ("unknown", "down"):
        assert browser.find_element(By.ID, element_id).text == "fallback"

    # A hand-edited export: no javascript: or data: URL becomes a link or an image.
    wait(browser, lambda b: state(b, "evil") == "loaded", "the hand-edited export")
    evil_links = browser.find_elements(By.CSS_SELECTOR, "#evil a")
    assert [a.get_attribute("href") for a in evil_links] == ["https://site.example/b"]
    assert browser.find_elements(By.CSS_SELECTOR, "#evil img") == []
    titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#evil .recs-link")]
    assert titles == [item["title"] for item in EVIL_EXPORT["related"]]

    # Lazy: the element far below the fold has not asked for anything yet.
    assert state(browser, "far") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#far *") == []
    screenshot(browser, "widget.png")
    browser.execute_script("document.getElementById('far').scrollIntoView()")
    wait(browser, lambda b: state(b, "far") == "loaded", "the lazy widget")

    found = browser.execute_script(
        "return [window.__pwned, window.__errors, document.querySelectorAll("
        "'recs-related b, recs-related script, recs-related svg, img[src=\"x\"]').length]"
    )
    assert found == [None, [], 0]


def test_widget_with_events_reports_the_items_in_view_and_the_one_followed(
    browser, service, page_folder, page_base
):
    """Impressions only for the list a reader scrolled to (half of it in view), a click for
    the item followed; `recs report` counts them by position."""
    from selenium.webdriver.common.by import By

    api = service["base"]
    # The page stops the link from leaving it (the item is on the internet): the widget's
    # own click handler still runs.
    stay = "<script>addEventListener('click', e => e.preventDefault(), true)</script>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>events</title>{ERRORS_SCRIPT}{stay}
<script src="{api}/widget.js" defer></script></head><body>
<recs-related id="counted" url="{SEED_URL}" api="{api}" limit="3" events></recs-related>
<recs-related id="quiet" url="{SEED_URL}" api="{api}" limit="3"></recs-related>
<div style="height: 4000px"></div>
<recs-related id="below" url="{SEED_URL}" api="{api}" limit="3" events loading="eager">
</recs-related></body></html>"""
    (page_folder / "events.html").write_text(page, encoding="utf-8")
    browser.set_window_size(1200, 900)
    browser.get(page_base + "/events.html")
    wait(browser, lambda b: state(b, "counted") == state(b, "below") == "loaded", "the lists")
    links = browser.find_elements(By.CSS_SELECTOR, "#counted a.recs-link")
    links[1].click()

    reports: list[dict] = []

    def clicked() -> bool:  # the server writes its events about once a second
        reports.append(json.loads(recs("report", "--json", env=service["env"])))
        return reports[-1]["total"]["clicks"] >= 1

    wait_until(clicked, 15, "the events to be written")
    report = reports[-1]
    positions = {p["position"]: (p["impressions"], p["clicks"]) for p in report["positions"]}
    # One list was in view: one impression per position; the list below the fold and the
    # list without `events` sent none. The click was on the second item.
    assert positions == {1: (1, 0), 2: (1, 1), 3: (1, 0)}
    assert [entry["article"] for entry in report["lists"]] == [SEED_URL]
    assert browser.execute_script("return window.__errors") == []


def test_widget_from_an_origin_that_is_not_allowed_shows_the_fallback(
    browser, service, page_folder, page_base
):
    """CORS: the service allows the origin the site configured (RECS_CORS_ORIGINS), and
    http://localhost:PORT is another origin than http://127.0.0.1:PORT."""
    (page_folder / "widget.html").write_text(widget_page(service["base"]), encoding="utf-8")
    browser.get(page_base.replace("127.0.0.1", "localhost") + "/widget.html")
    wait(browser, lambda b: state(b, "seed") == "failed", "the refused list")
    assert browser.execute_script("return document.getElementById('seed').textContent") == (
        "fallback"
    )
    assert browser.execute_script("return window.__errors") == []


def test_widget_path_rule_agrees_with_the_export(browser, service, page_folder, page_base):
    """The widget's readable-path shortcut gives exactly the export's path for the URLs
    whose path is readable, and nothing (the manifest answers) for every other URL."""
    (page_folder / "blank.html").write_text(
        f'<!doctype html><script src="{service["base"]}/widget.js"></script>'
    )
    browser.get(page_base + "/blank.html")
    # Half the draws from the characters a readable path may hold, half from any.
    alphabets = ("abcz019.-_/", "abcxyz019.-_/%?#:~AZ\u00e9 ")
    rng = random.Random(7)
    urls = [
        "https://example.com/news/a-story",
        "https://example.com/feed.json",
        "https://example.com/feed.json/item",
        "https://example.com/.hidden/x",
        "https://example.com/a//b",
        "https://example.com/",
        "https://example.com:443/a",
        "https://example.com./a",
        "https://example.com/" + "a/" * 16 + "b",
        "https://example.com/" + "a/" * 17 + "b",
        "https://example.com/" + "x" * 100,
        "https://example.com/" + "x" * 101,
        "https://example.com/" + "/".join(["y" * 99] * 5),
        "https://" + "h" * 101 + "/a",
        "https://host.json/a",
        "http://example.com/a",
        SEED_URL,
    ]
    for _ in range(3000):
        chars = rng.choice(alphabets)
        path = "".join(rng.choice(chars) for _ in range(rng.randint(1, 24)))
        host = rng.choice(["example.com", "Example.com", "a-b.example", "x_y.example", ".e"])
        urls.append(f"{rng.choice(['https', 'http'])}://{host}/{path.lstrip('/')}")
    computed = browser.execute_script(
        "const rule = customElements.get('recs-related').readablePath;"
        "return arguments[0].map(url => rule(url));",
        urls,
    )
    readable = 0
    for url, path in zip(urls, computed, strict=True):
        try:
            expected = article_path(url).as_posix()
        except ValueError:
            expected = None
        if expected is not None and "~" not in expected:
            assert path == expected, url
            readable += 1
        else:
            assert path is None, (url, path, expected)
    assert readable > 100  # the draw reaches both branches


# --- the static export on the example Hugo site ----------------------------------------


def test_widget_reads_a_static_per_article_export_on_the_hugo_example(
    browser, static_server, tmp_path
):
    hugo = shutil.which("hugo")
    if hugo is None:
        pytest.fail("hugo is not installed: run `make system-deps` (Debian package hugo)")
    site = tmp_path / "hugo"
    shutil.copytree(EXAMPLES.parent / "hugo", site, ignore=shutil.ignore_patterns("public"))
    # The README's snippet, in the example's article layout, instead of its related partial.
    layout = site / "layouts" / "_default" / "single.html"
    html = layout.read_text()
    html = html.replace("<head>", '<head><script src="/related/widget.js" defer></script>', 1)
    html = html.replace(
        '{{ partial "related.html" . }}',
        '<recs-related url="{{ .Params.webUrl }}" src="/related" limit="4"></recs-related>',
    )
    layout.write_text(html)
    config = site / "hugo.toml"
    config.write_text(config.read_text().replace('"../content"', json.dumps(str(EXAMPLES))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    model = os.environ.get("RECS_SCREENSHOT_MODEL", "hashing")  # see screenshot()
    env.update(RECS_MODEL=model, RECS_STORE=str(tmp_path / "store"))
    recs("build", str(EXAMPLES), env=env)
    export = site / "static" / "related"
    recs("export", "--format", "per-article", "--out", str(export), env=env)
    recs("export", "--format", "widget", "--out", str(export), env=env)
    built = subprocess.run(
        [hugo, "--source", str(site), "--destination", str(site / "public"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    base = static_server(site / "public")
    manifest = json.loads((export / "_manifest.json").read_text())

    def titles(url: str) -> list[str]:
        listed = json.loads((export / manifest[url]).read_text())["related"]
        return [item["title"] for item in listed[:4]]

    # The seed's URL is readable (its own path); the other page's file writes its URL in
    # upper case, which only the manifest knows.
    pages = {
        "technology/chinese-school-facial-recognition": SEED_URL,
        "space/private-space-station-module-passes-pressure-test": (
            "https://WWW.OrbitDaily.example/news/2024/06/private-station-module-pressure-test"
        ),
    }
    for number, (page, url) in enumerate(pages.items()):
        browser.get(f"{base}/{page}/")
        wait(browser, lambda b: b.execute_script(
            "const e = document.querySelector('recs-related'); return e && e.getAttribute('state')"
        ) == "loaded", page)  # fmt: skip
        shown = browser.execute_script(
            "return [...document.querySelectorAll('recs-related a.recs-link')].map(a => a.text)"
        )
        assert shown == titles(url), page
        wait(browser, lambda b: b.execute_script(  # thumbnails settled: loaded or replaced
            "return [...document.querySelectorAll('img.recs-image')].every(i => i.complete)"
        ), "thumbnails")  # fmt: skip
        screenshot(browser, f"hugo-{number}.png", height=700)
    browser.set_window_size(1200, 900)


# --- the preview page ---------------------------------------------------------------------


def test_preview_lists_a_typed_draft_and_copies_lines_regenerate_keeps(browser, service):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, content, env = service["base"], service["content"], service["env"]
    browser.get(base + "/preview")
    parameters = request(base, "GET", "/openapi.json")[1]["paths"]["/related"]["post"]["parameters"]
    wait(browser, lambda b: b.find_elements(By.ID, "param-" + parameters[-1]["name"]), "options")
    for parameter in parameters:  # one control per option of the API, made from its schema
        assert browser.find_element(By.ID, "param-" + parameter["name"])

    title = "Schools adopt facial recognition scanners for lunch payments"
    excerpt = "Parents worry about their children's privacy as face scanners spread."
    browser.find_element(By.ID, "title").send_keys(title)
    browser.find_element(By.ID, "excerpt").send_keys(excerpt)

    def items(b) -> list[str] | None:
        """The titles of the list once it shows the answer to the last change."""
        return b.execute_script(
            "const list = document.getElementById('list');"
            "return list.getAttribute('aria-busy') === 'false' ?"
            " [...list.querySelectorAll('.item .title')].map(e => e.textContent) : null"
        )

    def click(item: int, button: int) -> None:
        browser.find_elements(By.CSS_SELECTOR, "#list .item")[item].find_elements(
            By.CSS_SELECTOR, ".toggle"
        )[button].click()

    listed = wait(browser, lambda b: len(items(b) or ()) == 5 and items(b), "the draft's list")
    assert HOSTILE_TITLE in listed  # as text, and nothing ran
    assert browser.execute_script("return window.__pwned") is None
    scores = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#list .score .value")]
    assert len(scores) == 5 and all(float(s) > 0 for s in scores)

    # An option of the API: the list follows it, and follows its removal.
    limit = browser.find_element(By.ID, "param-limit")
    limit.send_keys("2")
    wait(browser, lambda b: len(items(b) or ()) == 2, "the limit")
    limit.send_keys(Keys.BACKSPACE)
    assert wait(browser, lambda b: len(items(b) or ()) == 5 and items(b), "no limit") == listed

    # Pin the third, exclude the (new) second: the list follows.
    third = listed[2]
    click(2, 0)
    listed = wait(browser, lambda b: (items(b) or [None])[0] == third and items(b), "the pin")
    second = listed[1]
    click(1, 1)
    wait(browser, lambda b: len(items(b) or ()) == 5 and second not in items(b), "the exclusion")
    pinned = browser.find_element(By.CSS_SELECTOR, "#pinned .chip-text").text
    assert pinned == third

    browser.find_element(By.ID, "copy").click()
    wait(browser, lambda b: b.find_element(By.ID, "block").get_attribute("value"), "the lines")
    block = browser.find_element(By.ID, "block").get_attribute("value")
    assert block.startswith("relatedPinned:\n") and "\nrelatedExclude:\n" in block
    assert block.count("\n  - title: ") == 5  # the list regenerate writes: no options
    screenshot(browser, "preview.png", height=1500)
    browser.set_window_size(1200, 900)
    assert request(base, "GET", "/readyz")[1]["revision"] == 0  # the page stored nothing

    # The copied lines in a new article's file: `recs regenerate` keeps them as they are.
    path = content / "technology" / "lunch-scanners.md"
    text = (
        f'---\ntitle: "{title}"\nexcerpt: "{excerpt}"\n'
        'webUrl: "https://news.example/lunch-scanners"\n' + block + "---\nBody.\n"
    )
    path.write_text(text, encoding="utf-8")
    out = recs("regenerate", str(content), env=env)
    assert " 0 skipped" in out, out
    assert path.read_text(encoding="utf-8") == text
