"""recs/assets.py: the browser files recs serves and exports, read from the installed
package, with their media types and strong ETags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recs.assets import MEDIA_TYPES, WIDGET, asset, etag, media_type

STATIC = Path(__file__).resolve().parent.parent / "recs" / "static"


@pytest.mark.parametrize("name", sorted(p.name for p in STATIC.iterdir()))
def test_every_static_file_is_read_as_its_bytes_with_a_media_type(name):
    assert asset(name) == (STATIC / name).read_bytes()
    assert asset(name) is asset(name)  # read once per process
    assert media_type(name) == MEDIA_TYPES[Path(name).suffix]
    assert media_type(name).endswith("; charset=utf-8")


def test_the_widget_is_javascript():
    assert WIDGET == "widget.js" and media_type(WIDGET) == "text/javascript; charset=utf-8"


def test_a_file_recs_does_not_ship_is_an_error():
    with pytest.raises(FileNotFoundError):
        asset("missing.js")
    with pytest.raises(KeyError):
        media_type("archive.zip")


def test_an_etag_is_strong_quoted_and_follows_the_bytes():
    tag = etag(b"widget")
    assert re.fullmatch(r'"[0-9a-f]{20}"', tag)
    assert etag(b"widget") == tag and etag(b"widget!") != tag
    assert etag(asset(WIDGET)) != etag(asset("preview.js"))
