"""How long work reports progress: a callback per stage, and the ones that show nothing.

`Progress(stage, done, total)` is called as a stage advances (the CLI draws a bar per
stage on a terminal); library functions take one and default to `no_progress`.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
Notify = Callable[[str], None]  # one line about a rare slow step (the first ONNX export)


def no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""


def no_progress_message(message: str) -> None:
    """A message callback that shows nothing."""
