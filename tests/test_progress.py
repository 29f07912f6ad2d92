"""recs/progress.py: the progress callbacks library functions take, and the silent ones
they default to."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import recs
from recs.progress import no_progress, no_progress_message


def public_functions_taking_progress() -> list[tuple[str, inspect.Signature]]:
    """Every public function and method of recs with a `progress` parameter."""
    found = []
    for info in pkgutil.walk_packages(recs.__path__, "recs."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        functions = []
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                functions.append(value)
            elif inspect.isclass(value):
                functions += [
                    f
                    for n, f in vars(value).items()
                    if inspect.isfunction(f) and (not n.startswith("_") or n == "__call__")
                ]
        for function in functions:
            signature = inspect.signature(function)
            if "progress" in signature.parameters:
                found.append((f"{module.__name__}.{function.__qualname__}", signature))
    return found


def test_library_functions_that_report_progress_default_to_showing_nothing():
    found = public_functions_taking_progress()
    assert len(found) >= 10  # build, regenerate, link_all, the engines, the index, ...
    names = {name for name, _ in found}
    assert {"recs.pipeline.build", "recs.regenerate.regenerate", "recs.related.link_all"} <= names
    wrong = [
        name
        for name, signature in found
        if signature.parameters["progress"].default is not no_progress
    ]
    assert wrong == []


def test_the_silent_callbacks_take_what_a_callback_is_given():
    assert inspect.signature(no_progress).bind("embedding", 3, 12)
    assert inspect.signature(no_progress_message).bind("exporting the model")
    assert no_progress("embedding", 3, 12) is None
    assert no_progress_message("exporting the model") is None
