"""Errors a user can act on. Every message says what happened and what to do next.

The CLI prints `str(error)` on one line and exits with `exit_code`; the API answers
application/problem+json with `status`, `title` and the message as `detail`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


class RecsError(Exception):
    """Base class: a problem the user can fix, never a bug."""

    exit_code = 1
    status = 500
    title = "Internal error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(RecsError):
    """A setting (flag or RECS_* variable) has a value recs cannot use."""

    exit_code = 2
    status = 500
    title = "Bad configuration"


class InvalidInput(RecsError):
    """A request or argument is malformed (bad URL, out-of-range limit, bad body)."""

    exit_code = 2
    status = 422
    title = "Invalid input"


class BadRequest(InvalidInput):
    """A request FastAPI accepted but recs cannot (unknown parameters, for one)."""

    status = 400
    title = "Bad request"


class StoreNotFound(RecsError):
    """No built store where one was expected."""

    status = 503
    title = "Store not available"


class StoreIncompatible(RecsError):
    """A store exists but cannot be used as asked (other model, other format)."""

    status = 503
    title = "Store incompatible"


class StoreLocked(RecsError):
    """Another recs process holds the store or content lock."""

    exit_code = 75  # EX_TEMPFAIL: trying again later can succeed
    status = 503
    title = "Store busy"


class StoreWriteError(RecsError):
    """Writing the store failed (read-only or full disk); the previous store is intact."""

    exit_code = 74  # EX_IOERR
    status = 507
    title = "Store not writable"


class ArticleNotFound(RecsError):
    """No stored article has this URL."""

    status = 404
    title = "Article not found"


class CorpusError(RecsError):
    """The corpus had problems and --strict was asked for."""

    title = "Corpus has problems"


class ShrinkRefused(RecsError):
    """A build would remove most of the store's articles and was not asked to."""

    exit_code = 65  # EX_DATAERR: the input (a wrong or empty folder) is the likely cause
    title = "Build not published"

    def __init__(self, message: str, problems: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)  # the files skipped, which often explain it


class ModelError(RecsError):
    """The embedding model cannot be loaded or run."""

    status = 503
    title = "Model unavailable"


class EngineError(RecsError):
    """The batch engine cannot run: Ray missing, or its cluster unreachable."""

    exit_code = 69  # EX_UNAVAILABLE
    status = 503
    title = "Engine unavailable"


class Unauthorized(RecsError):
    """A write without a valid bearer token."""

    status = 401
    title = "Unauthorized"


class Forbidden(RecsError):
    """Writes are switched off (no RECS_API_TOKEN configured)."""

    status = 403
    title = "Forbidden"


class PayloadTooLarge(RecsError):
    """A request body over RECS_MAX_BODY_BYTES."""

    status = 413
    title = "Payload too large"


# Characters a line of output must not carry as they are: C0 and C1 controls (a newline
# would start a forged line, ESC a terminal sequence), DEL, and bidi controls, which
# reorder what a terminal shows.
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def one_line(text: str) -> str:
    """`text` safe to print as part of one line: each control, bidi control or undecodable
    byte (a surrogate escape from a file name) as a backslash escape."""
    if text.isprintable():
        return text
    escaped = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Problem:
    """Why one file (or one line of a .jsonl file) was not used."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        """One line, whatever the file's name or the reason holds."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        return one_line(f"{where}: {self.reason}")
