"""Errors a user can act on. Every message says what happened and what to do next.

The CLI prints `str(error)` on one line and exits with `exit_code`; the API answers
application/problem+json with `status`, `title` and the message as `detail`.
"""

from __future__ import annotations


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


class ModelError(RecsError):
    """The embedding model cannot be loaded or run."""

    status = 503
    title = "Model unavailable"


class FileWriteError(RecsError):
    """An article file could not be rewritten; it is left as it was."""

    exit_code = 74
    title = "File not writable"
