"""Python's cyclic garbage collector, paused around work that makes many long-lived objects.

A build makes about ten long-lived objects per article (parsed fields, lists) and almost
no reference cycles; the collector would scan them again and again as they pile up: a
third of a 1% rebuild of 10,000 articles. An API write's fold into a 20,000-article
snapshot makes fewer, but the collector's passes still took about a tenth of it (30
writes in one process: 960 -> 849 ms of CPU with the collector paused in the fold). A
server loading a 10,000-article store (its articles, and 60,000 list items and bases)
took 232-235 ms with the collector running and 186-190 with it paused (medians of 9
loads, two runs each).
Reference counting still frees everything else at once, and the collector runs again
afterwards.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def collector_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the cyclic garbage collector paused; a caller that paused it
    already keeps it paused. The collector is global to the process: another thread's
    work runs without it meanwhile, which only delays its passes."""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused
