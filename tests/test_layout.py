"""The layout of the tests: every module of recs has its own test file (recs/x.py ->
tests/test_x.py, recs/cli/x.py -> tests/test_cli_x.py), and no test reaches into a private
name of recs (what a caller cannot rely on is not what a test pins). Both lists are drawn
from the code, so a new module or a new reach is found the day it is added."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
from pathlib import Path

import recs

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

# Source files without a test file of their own, and why. A name here whose test file
# appears, or whose module goes, fails the test below: the list stays exact.
WITHOUT_MIRROR = {
    "recs/__init__.py": "the package: its version and a lazy import of Recommender",
    "recs/__main__.py": "`python -m recs` runs recs.cli.run (tests/test_cli.py runs it)",
}

# Test files that reach into a private name of recs today, and the names. Each is to be
# made public (or the test to go through public behaviour), then removed from here.
REACHES: dict[str, set[str]] = {}


def modules() -> dict[str, Path]:
    """Every module and package of recs, by dotted name, with its source file."""
    found = {"recs": Path(recs.__file__)}
    for info in pkgutil.walk_packages(recs.__path__, "recs."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None, info.name
        found[info.name] = Path(spec.origin)
    return found


def mirror(name: str) -> str:
    """The test file of a module: recs.x -> test_x.py, recs.cli.x -> test_cli_x.py (a
    package's own file, recs/cli/__init__.py, -> test_cli.py)."""
    return "test_" + "_".join(name.split(".")[1:]) + ".py"


def relative(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def test_every_module_has_its_own_test_file():
    found = modules()
    assert "recs.cli" in found and "recs.cli.store_commands" in found and "recs.rank" in found
    files = {relative(path): name for name, path in found.items()}
    missing = [
        f"{path} -> tests/{mirror(name)}"
        for path, name in sorted(files.items())
        if path not in WITHOUT_MIRROR and not (TESTS / mirror(name)).is_file()
    ]
    assert missing == [], "write these test files (tests mirror modules)"
    stale = [
        path
        for path in WITHOUT_MIRROR
        if path not in files or (TESTS / mirror(files[path])).is_file()
    ]
    assert stale == [], "these have a test file now, or are gone: remove them from WITHOUT_MIRROR"


def private_names() -> set[str]:
    """Every private name recs defines: module-level functions, classes, variables and
    imports, methods and class attributes, and attributes set on `self`."""
    names: set[str] = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.rsplit(".", 1)[-1])
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


PRIVATE = r"_[A-Za-z]\w*"
# `module._name` or `object._name` (not a test's own `self._name`)
ATTRIBUTE = re.compile(rf"\b(?!self\.|cls\.)\w+\.({PRIVATE})\b")
# monkeypatch.setattr(module, "_name", ...), getattr(object, "_name"), patch.object(...)
BY_NAME = re.compile(rf"(?:attr|\.object)\(\s*[\w.]+\s*,\s*[\"']({PRIVATE})[\"']")
# monkeypatch.setattr("recs.x._name", ...), mock.patch("recs.x._name")
BY_PATH = re.compile(rf"[\"']recs(?:\.\w+)*\.({PRIVATE})[\"']")
# from recs.x import _name (on one line or in parentheses)
IMPORT = re.compile(r"^from recs[\w.]* import (\([^)]*\)|[^\n]*)", re.MULTILINE)


def reaches(text: str, private: set[str]) -> set[str]:
    """The private names of recs a test file's text reaches into."""
    found = {m.group(1) for m in ATTRIBUTE.finditer(text)} & private
    found |= {m.group(1) for m in BY_NAME.finditer(text)} & private
    found |= {m.group(1) for m in BY_PATH.finditer(text)}
    for match in IMPORT.finditer(text):
        for item in match.group(1).strip("()").split(","):
            name = item.split(" as ")[0].strip()
            if re.fullmatch(PRIVATE, name):
                found.add(name)
    return found


def test_the_check_finds_each_way_of_reaching_in():
    private = {"_block", "_cgroup_quota", "_ivf"}
    assert reaches("related._block(3)", private) == {"_block"}
    assert reaches("assert index._ivf is None", private) == {"_ivf"}
    assert reaches('monkeypatch.setattr(cpus, "_cgroup_quota", f)', private) == {"_cgroup_quota"}
    assert reaches('monkeypatch.setattr("recs.related._other", f)', private) == {"_other"}
    assert reaches("from recs.ray_engine import (\n    RayEngine,\n    _failure,\n)", private) == {
        "_failure"
    }
    assert reaches("from recs.x import y as _y", private) == set()  # a test's own alias
    assert reaches("self._read = 1; os._exit(0); obj.__dict__", private) == set()


def test_no_test_reaches_into_a_private_name_of_recs():
    private = private_names()
    assert len(private) > 100 and "_same" in private  # drawn from the code (related._same)
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        names = reaches(path.read_text(encoding="utf-8"), private)
        if names:
            found[relative(path)] = names
    found.pop(relative(Path(__file__)), None)  # this file's examples above
    new = {f: n - REACHES.get(f, set()) for f, n in found.items()}
    assert {f: sorted(n) for f, n in new.items() if n} == {}, (
        "test public behaviour, or make the name public"
    )
    gone = {f: n - found.get(f, set()) for f, n in REACHES.items()}
    assert {f: sorted(n) for f, n in gone.items() if n} == {}, (
        "these reaches are gone: remove them from REACHES"
    )
