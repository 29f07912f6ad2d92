"""The browser files recs serves (`/widget.js`, `/preview`) and exports (`recs export
--format widget`): recs/static/ in the installed package, read as bytes."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

WIDGET = "widget.js"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


@functools.cache
def asset(name: str) -> bytes:
    """The bytes of recs/static/NAME (read once per process)."""
    return resources.files("recs").joinpath("static", name).read_bytes()


def media_type(name: str) -> str:
    """The Content-Type of a static file, by its extension."""
    return MEDIA_TYPES[name[name.rindex(".") :]]


def etag(data: bytes) -> str:
    """A strong ETag for a file's bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
