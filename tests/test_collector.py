"""Tests for recs.collector: the garbage collector paused around bulk work."""

from __future__ import annotations

import gc

import pytest

from recs.collector import collector_paused


@collector_paused
def _watch(seen: list[bool], fail: bool = False) -> str:
    seen.append(gc.isenabled())
    if fail:
        raise RuntimeError("the work failed")
    return "done"


def test_the_collector_is_paused_for_the_call_and_running_again_after_it():
    seen: list[bool] = []
    assert _watch(seen) == "done"
    assert seen == [False] and gc.isenabled()


def test_a_failing_call_still_restarts_the_collector():
    with pytest.raises(RuntimeError):
        _watch([], fail=True)
    assert gc.isenabled()


def test_a_caller_that_paused_the_collector_keeps_it_paused():
    gc.disable()
    try:
        seen: list[bool] = []
        _watch(seen)
        assert seen == [False] and not gc.isenabled()
    finally:
        gc.enable()
