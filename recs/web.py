"""What `recs serve` serves to browsers: the widget script and the editor's preview page.

`/widget.js` is the `<recs-related>` element (recs/static/widget.js); `/preview` is a page
where an editor types a draft and sees its related list (recs/static/preview.*), and
`POST /preview/block` renders the front-matter lines to copy into the draft's file, with
recs.rewrite, exactly as `recs regenerate` writes them. Every file comes from the
installed package: no CDN, nothing from the network. Nothing here writes: the preview
ranks drafts with POST /related, which stores nothing.

The routes are left out of the OpenAPI document (they are pages and files, not the API)
and described in docs/api.md.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import html
import json

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from recs.assets import WIDGET, asset, etag, media_type
from recs.config import Settings
from recs.draft import front_matter_lines, url_list
from recs.http_body import read_json
from recs.schema import ArticleIn, parse_query

PREVIEW_FILES = ("preview.js", "preview.css")
# The page loads its own script, style and API answers and nothing else; no inline script
# or style, so text that slipped into the page as markup could still run nothing.
PREVIEW_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
WIDGET_CACHE = "public, max-age=3600"
NO_PARAMETERS: frozenset[str] = frozenset()
FILE_METHODS = ["GET", "HEAD"]


def _file(request: Request, data: bytes, content_type: str, cache: str) -> Response:
    """A static file with a strong ETag; 304 when If-None-Match names it. The query is
    ignored, so a page may add a cache-busting `?v=...`."""
    tag = etag(data)
    headers = {"ETag": tag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if tag in (part.strip() for part in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=content_type, headers=headers)


def preview_page(settings: Settings) -> bytes:
    """preview.html with the server's front-matter key names filled in."""
    page = asset("preview.html").decode("utf-8")
    for name, value in (
        ("PINNED_KEY", settings.pinned_key),
        ("EXCLUDED_KEY", settings.excluded_key),
    ):
        page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
    return page.encode("utf-8")


def web_router(settings: Settings) -> APIRouter:
    """The browser routes of the app: /widget.js, /preview and its files, /preview/block."""
    router = APIRouter(include_in_schema=False)
    page = preview_page(settings)
    read = settings.read_options

    @router.api_route("/widget.js", methods=FILE_METHODS)
    async def widget(request: Request) -> Response:
        return _file(request, asset(WIDGET), media_type(WIDGET), WIDGET_CACHE)

    @router.api_route("/preview", methods=FILE_METHODS)
    async def preview(request: Request) -> Response:
        response = _file(request, page, media_type(".html"), "no-cache")
        response.headers["Content-Security-Policy"] = PREVIEW_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def preview_file(name: str) -> None:
        async def serve(request: Request) -> Response:
            return _file(request, asset(name), media_type(name), "no-cache")

        router.add_api_route(f"/preview/{name}", serve, methods=FILE_METHODS, name=name)

    for name in PREVIEW_FILES:
        preview_file(name)

    @router.post("/preview/block")
    async def block(request: Request) -> Response:
        """The lines for a draft's file: its pins and exclusions (the body's relatedPinned
        and relatedExclude, RECS_PINNED_KEY and RECS_EXCLUDED_KEY) and the `related:` block
        of the list `recs regenerate` would write for it: the store's limit, no filters."""
        parse_query(request.query_params.multi_items(), NO_PARAMETERS, settings.max_limit)
        article = await read_json(request, ArticleIn)
        fields = article.model_dump(exclude_none=True)
        service = request.app.state.service
        answer = await run_in_threadpool(service.draft, fields, None, {})
        text = front_matter_lines(
            json.loads(answer)["related"],
            url_list(fields, read.pinned_key),
            url_list(fields, read.excluded_key),
            read,
        )
        return Response(
            text, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"}
        )

    return router
