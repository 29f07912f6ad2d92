"""Same lists, same speed: two revisions of recs build the same corpus, compared.

    python -m bench.same_lists --old REV --new REV [--runs 3] [--model hashing|bundled]

A change that should not change behaviour (a renovation, a refactor) is checked here: each
revision's `recs` package is taken from git (`git archive`, nothing checked out), and both
build the 10,000 HuffPost articles written as files (bench/regenerate.py's layout) with the
same interpreter and packages. Per run, both revisions make a full build (`--rebuild`), then
both rebuild after the same 1% of the articles was edited (a different 1% every run), and
after every build the related lists of both stores are exported as JSON (`recs export
--format json`) and compared: byte for byte, and list by list (each article's list as a
JSON value, and which keys only one export has), so an export whose format changed on
purpose (an escape, keys added for URLs as written) still shows whether any list changed;
"URL lists that differ" compares only what a reader sees, the items' URLs in order, so two
revisions whose items carry different fields (a `reason`, a `similarity`) are compared too.
The builds of the two revisions alternate, so load on a shared machine falls on both; the
table gives median wall seconds and the CPU seconds of the build processes (getrusage of
the children), and new / old ratios.

`--model hashing` (the default) uses the dependency-free hashing encoder: the lists then
test the ranking, store and build code, and a run takes minutes; `--model bundled` embeds
with all-MiniLM-L6-v2 (the ONNX export is made once per revision's cache).

The check of the renovation: `--old 5042189 --new 0a5596b` (the last commit before it and
the last before the ranking changes of "lists an editor trusts", which change lists on
purpose). Between the two the JSON export also changed on purpose (`<`, `>`, `&` escaped
for inlining in a script element; keys for URLs as a file writes them): the bytes differ,
the lists must not. The exit code is 0 when no list differs.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DATA, ROOT, header, median, table
from bench.regenerate import edit, read_rows, write_corpus

EDIT_SHARE = 0.01


def checkout(revision: str, target: Path) -> Path:
    """The `recs` package of `revision` under target/<revision>; returns that folder."""
    folder = target / revision
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "recs"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


class Revision:
    """One revision's recs, run as `python -m recs` with its package first on the path."""

    def __init__(self, name: str, package: Path, store: Path, model: str) -> None:
        self.name = name
        self.store = store
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
        self.env |= {
            "PYTHONPATH": str(package),
            "HF_HUB_OFFLINE": "1",
            "RECS_CACHE_DIR": str(store.parent / f"cache-{name}"),
        }
        if model == "hashing":
            self.env["RECS_MODEL"] = "hashing"
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def recs(self, *arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "recs", *arguments],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=str(self.store.parent),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: recs {' '.join(arguments)}: {result.stderr}")
        return result.stdout.strip()

    def build(self, kind: str, content: Path, *extra: str) -> str:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        summary = self.recs("build", str(content), "--store", str(self.store), "-q", *extra)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.wall.setdefault(kind, []).append(wall)
        self.cpu.setdefault(kind, []).append(cpu)
        return summary

    def export(self, out: Path) -> Path:
        self.recs("export", "--format", "json", "--store", str(self.store), "--out", str(out))
        return out


def differing_lists(old: Path, new: Path) -> tuple[int, int, int]:
    """Between two JSON exports (URL -> list), under the keys both have: how many lists
    differ as JSON values, how many differ in what a reader sees (the items' URLs, in
    order); and how many keys only one has."""
    import json

    a, b = json.loads(old.read_bytes()), json.loads(new.read_bytes())
    both = set(a) & set(b)

    def urls(items: list[dict[str, object]]) -> list[object]:
        return [item.get("webUrl") for item in items]

    return (
        sum(a[url] != b[url] for url in both),
        sum(urls(a[url]) != urls(b[url]) for url in both),
        len(set(a) ^ set(b)),
    )


def run(old: str, new: str, runs: int, model: str) -> bool:
    rows = read_rows(path=DATA / "huffpost.jsonl")
    header(
        f"Same lists: recs at {old} against {new}, 10,000 HuffPost article files ({model})",
        f"full builds and 1% rebuilds, alternating; medians of {runs} runs",
    )
    identical = same_urls = True
    with tempfile.TemporaryDirectory(prefix="recs-bench-same-") as folder:
        work = Path(folder)
        content = work / "content"
        paths = write_corpus(rows, content)
        revisions = [
            Revision(name, checkout(rev, work / "src"), work / f"store-{name}", model)
            for name, rev in (("old", old), ("new", new))
        ]
        for revision in revisions:  # a first build each: exports, caches, bytecode
            revision.build("first", content)
        edits = max(1, round(len(paths) * EDIT_SHARE))
        comparisons = []
        for number in range(runs):
            for kind in ("full", "1% edited"):
                if kind == "1% edited":
                    for offset in range(edits):  # the same 1% for both, another each run
                        edit(paths[(number * edits + offset) * 97 % len(paths)], number)
                order = revisions if number % 2 == 0 else revisions[::-1]
                for revision in order:
                    revision.build(kind, content, *(["--rebuild"] if kind == "full" else []))
                exports = [r.export(work / f"{r.name}-{number}-{kind[:4]}.json") for r in revisions]
                same_bytes = filecmp.cmp(*exports, shallow=False)
                differing, seen, keys = (0, 0, 0) if same_bytes else differing_lists(*exports)
                identical &= differing == 0
                same_urls &= seen == 0 and keys == 0
                comparisons.append(
                    (number + 1, kind, "yes" if same_bytes else "no", differing, seen, keys)
                )
        table(
            [
                "run",
                "build",
                "export byte for byte",
                "lists that differ",
                "URL lists that differ",
                "keys in one only",
            ],
            comparisons,
        )
        old_rev, new_rev = revisions
        table(
            ["build", "old s", "new s", "new / old", "old CPU s", "new CPU s", "new / old CPU"],
            [
                [
                    kind,
                    median(old_rev.wall[kind]),
                    median(new_rev.wall[kind]),
                    median(new_rev.wall[kind]) / median(old_rev.wall[kind]),
                    median(old_rev.cpu[kind]),
                    median(new_rev.cpu[kind]),
                    median(new_rev.cpu[kind]) / median(old_rev.cpu[kind]),
                ]
                for kind in ("full", "1% edited")
            ],
        )
    if identical:
        print("every list identical in every comparison")
    elif same_urls:
        print("LISTS DIFFER in their fields; every list names the same URLs in the same order")
    else:
        print("LISTS DIFFER")
    return identical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision of the baseline")
    parser.add_argument("--new", default="HEAD", help="git revision to compare (HEAD)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", choices=("hashing", "bundled"), default="hashing")
    arguments = parser.parse_args()
    sys.exit(0 if run(arguments.old, arguments.new, arguments.runs, arguments.model) else 1)


if __name__ == "__main__":
    main()
