"""The canonical form of an article URL: one article, one string.

Rules, applied in this order (each has a test in tests/test_urls.py):

1. Only absolute http(s) URLs with a host are article URLs; anything else is rejected.
2. http and https are the same article: the canonical scheme is always `https`.
3. The host is lower-cased (a trailing dot is dropped) and a default port (80, 443) is removed.
4. The fragment is dropped.
5. Tracking parameters are dropped: every `utm_*`, `fbclid`, `gclid` (names compared
   case-insensitively). The remaining parameters are sorted (by name, then value), as written.
6. Percent-escapes are normalised without changing meaning: hex digits upper-cased, escapes
   of unreserved characters (letters, digits, `-._~`) decoded, every other escape kept.
   `%3F` stays `%3F`: decoding it would turn part of the path into a query.
   Characters that must be escaped (spaces, non-ASCII) are escaped as UTF-8.
7. `.` and `..` path segments are resolved; a trailing slash is removed, except for the
   root path, which is always `/`.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from recs.errors import InvalidInput

TRACKING_PARAMS = frozenset({"fbclid", "gclid"})
TRACKING_PREFIXES = ("utm_",)
MAX_URL_LENGTH = 4096

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters allowed unescaped in a path or query component (RFC 3986 pchar + "/" + "?").
_ALLOWED = _UNRESERVED | frozenset("!$&'()*+,;=:@/?")
_PATH = _ALLOWED - {"?"}
_QUERY_PAIR = _ALLOWED - {"&"}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_HOST = re.compile(r"^[a-z0-9._~\-\[\]:%!$&'()*+,;=]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _normalise_component(text: str, allowed: frozenset[str]) -> str:
    """Normalise percent-escapes and escape what must be escaped, never changing meaning."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            match = _ESCAPE.match(text, i)
            if match:
                decoded = chr(int(match.group(1), 16))
                out.append(decoded if decoded in _UNRESERVED else "%" + match.group(1).upper())
                i += 3
                continue
            out.append("%25")  # a lone '%' is a literal percent sign
        elif char in allowed:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    segments: list[str] = []
    parts = path.split("/")
    for index, segment in enumerate(parts):
        if segment == ".":
            if index == len(parts) - 1:
                segments.append("")
            continue
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
            if index == len(parts) - 1:
                segments.append("")
            continue
        segments.append(segment)
    return "/".join(segments)


def _is_tracking(name: str) -> bool:
    lowered = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name).lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


@functools.lru_cache(maxsize=65_536)
def canonical_url(url: str) -> str:
    """Return the canonical form of an article URL, or raise InvalidInput saying why not.

    Cached: the service canonicalises the same URLs over and over.
    """
    if not isinstance(url, str):
        raise InvalidInput(f"an article URL must be a string, not {type(url).__name__}")
    text = url.strip()
    if not text:
        raise InvalidInput("the article URL is empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidInput(
            f"the article URL is {len(text)} characters long; at most {MAX_URL_LENGTH}"
        )
    if _CONTROL.search(text):
        raise InvalidInput(f"the article URL {text[:80]!r} contains control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"{text[:200]!r} is not a valid URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(
            f"{text[:200]!r} is not an article URL: "
            "it needs an absolute http:// or https:// address"
        )
    host = (parts.hostname or "").rstrip(".")
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = ""
    if not host or not _HOST.match(host):
        raise InvalidInput(f"{text[:200]!r} is not an article URL: it has no valid host name")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if parts.username is not None:
        user = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{user}@{host}"
    if port is not None and port not in (80, 443):
        netloc += f":{port}"

    path = _normalise_component(parts.path, _PATH)
    path = _remove_dot_segments(path) if path else "/"
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/") or "/"

    kept = [
        _normalise_component(pair, _QUERY_PAIR)
        for pair in parts.query.split("&")
        if pair and not _is_tracking(pair.split("=", 1)[0])
    ]
    kept.sort(key=lambda pair: (pair.split("=", 1)[0], pair))
    query = "?" + "&".join(kept) if kept else ""
    return f"https://{netloc}{path}{query}"
