"""Where one `recs build` spends its time, step by step.

    python -m bench.phases CONTENT_DIR --store STORE [--tree DIR]

Runs `recs build CONTENT_DIR --store STORE` in this process with a wall-clock timer around
each step of the pipeline that exists in the `recs` imported (this checkout's, or the one
in `--tree`: another revision, from `git archive REV recs | tar -x -C DIR`), and prints
milliseconds per step. Steps nest (the ranking is inside `link_changes`, which is
inside `prepare`). Use it beside `bench.same_lists` to find which step of two revisions
differs: run the two trees alternately on copies of the same store after the same edit.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

# (module, attribute or Class.classmethod, label); a step the imported recs lacks is skipped.
STEPS = (
    ("recs.filecache", "load", "parse cache: load"),
    ("recs.pipeline", "read_corpus", "read the folder"),
    ("recs.store", "load", "store: load"),
    ("recs.pipeline", "prepare", "prepare (embed, digest, rank)"),
    ("recs.pipeline", "vectors_for", "vectors"),
    ("recs.pipeline", "_digest", "digest"),
    ("recs.pipeline", "link_changes", "link_changes"),
    ("recs.related", "Catalog.from_articles", "catalog of every article"),
    ("recs.related", "settled", "unchanged lists, all at once"),
    ("recs.engine", "_rank_forked", "ranking in forked workers"),
    ("recs.store", "publish", "publish"),
    ("recs.pipeline", "_save_parsed", "parse cache: save"),
)


def timed(function: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("content")
    parser.add_argument("--store", required=True)
    parser.add_argument("--tree", help="a folder holding another revision's recs package")
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, args.tree)
    os.environ.setdefault("RECS_MODEL", "hashing")
    started = time.perf_counter()
    spent: dict[str, float] = {}
    for module_name, path, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *outer, attribute = path.split(".")
        for name in outer:  # a class method: Class.method
            owner = getattr(owner, name, None)
        if owner is None or not hasattr(owner, attribute):
            continue
        function = getattr(owner, attribute)
        if outer:
            setattr(owner, attribute, classmethod(timed(function.__func__, label, spent)))
        else:
            setattr(owner, attribute, timed(function, label, spent))
    from recs.cli import main as recs_main

    imported = time.perf_counter()
    with contextlib.suppress(SystemExit):
        recs_main(["build", args.content, "--store", args.store, "--quiet"])
    done = time.perf_counter()
    print(f"imports {1000 * (imported - started):.0f} ms, build {1000 * (done - imported):.0f} ms")
    for _, _, label in STEPS:
        if label in spent:
            print(f"  {label}: {1000 * spent[label]:.0f} ms")


if __name__ == "__main__":
    main()
