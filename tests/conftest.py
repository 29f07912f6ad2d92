"""Shared fixtures: the seed, a fake encoder, article files written on disk."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_957447c83a5266ed.txt"
DATA = SHARED / "data"
EXAMPLES = ROOT / "examples" / "content"
BIN = Path(sys.executable).parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def encoder():
    from recs.encoder import HashingEncoder

    return HashingEncoder()


def article_text(
    title: str,
    excerpt: str,
    url: str,
    date: str = "2023-01-01T00:00:00Z",
    provider: str = "Example News",
    extra: str = "",
) -> str:
    """One article file in the seed's format."""
    title_q = title.replace('"', '\\"')
    excerpt_q = excerpt.replace('"', '\\"')
    return (
        "---\n"
        "category: news\n"
        f'title: "{title_q}"\n'
        f'excerpt: "{excerpt_q}"\n'
        f"publishedDateTime: {date}\n"
        f'webUrl: "{url}"\n'
        "type: article\n"
        "quality: 50\n"
        "\n"
        "provider:\n"
        f"  name: {provider}\n"
        "  domain: example.com\n"
        f"{extra}"
        "---\n"
        "Body text.\n"
    )


@pytest.fixture
def write_article(tmp_path: Path) -> Callable[..., Path]:
    content = tmp_path / "content"
    content.mkdir()

    def write(name: str, title: str, excerpt: str, **kwargs: str) -> Path:
        url = kwargs.pop("url", f"https://example.com/{Path(name).stem}")
        path = content / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article_text(title, excerpt, url, **kwargs), encoding="utf-8")
        return path

    write.content = content  # type: ignore[attr-defined]
    return write


TOPICS = {
    "space": [
        (
            "Rocket launch to space station delayed",
            "The crewed space rocket launch moved to next week.",
        ),
        (
            "Mars rover finds lake on the planet",
            "The space agency rover drilled rock on the planet Mars.",
        ),
        (
            "Space telescope images distant galaxy",
            "The space telescope captured light from a galaxy.",
        ),
        (
            "Astronauts return from space station",
            "Three astronauts landed after months in space orbit.",
        ),
    ],
    "football": [
        (
            "Football striker scores twice in derby",
            "The football club won the derby match with two goals.",
        ),
        (
            "Football coach sacked after defeat",
            "The football club dismissed its coach after a league match.",
        ),
        (
            "Football cup final goes to penalties",
            "The football cup final match was decided by penalties.",
        ),
        (
            "Football goalkeeper signs new contract",
            "The football club goalkeeper signed until 2027.",
        ),
    ],
    "cooking": [
        (
            "Easy bread recipe for home cooking",
            "A recipe to bake crusty bread at home with flour and yeast.",
        ),
        (
            "Recipe: how to cook perfect rice",
            "A rice recipe for home cooking: rinse, then cook in a pot.",
        ),
        (
            "Soup recipe for cooking on cold evenings",
            "A warming vegetable soup recipe with lentils.",
        ),
        (
            "Chocolate cake recipe without eggs",
            "A chocolate cake recipe for home cooking without eggs.",
        ),
    ],
}


@pytest.fixture
def topic_corpus(write_article) -> Path:
    """Twelve articles in three clearly separate topics."""
    for topic, items in TOPICS.items():
        for number, (title, excerpt) in enumerate(items):
            write_article(
                f"{topic}/{number}.md", title, excerpt, url=f"https://example.com/{topic}/{number}"
            )
    return write_article.content


@pytest.fixture
def cli_built(topic_corpus, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The topic corpus built by `recs build --limit 3` into tmp_path/store, with
    RECS_MODEL=hashing set for the rest of the test: (content folder, store)."""
    from recs.cli import main

    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = tmp_path / "store"
    assert main(["build", str(topic_corpus), "--store", str(store_dir), "--limit", "3"]) == 0
    return topic_corpus, store_dir


@pytest.fixture
def recommender(topic_corpus, tmp_path, encoder):
    """A Recommender over the topic corpus built with limit 3 into tmp_path/store."""
    from recs.pipeline import build
    from recs.rank_settings import RankSettings
    from recs.recommender import Recommender

    build(topic_corpus, tmp_path / "store", encoder, RankSettings(limit=3))
    return Recommender.open(tmp_path / "store")


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write `rows` as a .jsonl file at `path`."""
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def topics_file(tmp_path) -> Path:
    """The TOPICS articles as labelled rows (the label is the topic), for `recs eval`."""
    rows = [
        {"id": f"{topic}-{i}", "title": title, "excerpt": excerpt, "label": topic}
        for topic, items in TOPICS.items()
        for i, (title, excerpt) in enumerate(items)
    ]
    return write_rows(tmp_path / "topics.jsonl", rows)


@contextlib.contextmanager
def read_only_mount(source: Path, mount: Path) -> Iterator[Path]:
    """`source` seen read-only at `mount` (a bind mount); skips the test where this
    machine cannot mount."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "--bind", str(source), str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def built(topic_corpus, tmp_path) -> Path:
    """A store of the topic corpus (hashing encoder, lists of 3), for the API tests."""
    from recs.encoder import HashingEncoder
    from recs.pipeline import build
    from recs.rank_settings import RankSettings

    store_dir = tmp_path / "store"
    build(topic_corpus, store_dir, HashingEncoder(), RankSettings(limit=3))
    return store_dir


class _MemoEncoder:
    """Wraps the default encoder; remembers every text's vector for the whole test session.

    Several test modules embed the same ../shared/data texts (quality, backends, engines);
    this keeps CI from embedding them more than once. Vectors are exactly the encoder's.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.memo: dict[str, object] = {}

    def encode(self, texts):
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self.memo[text] = vector
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts]).astype(np.float32)


@pytest.fixture(scope="session")
def model_encoder():
    """The default production encoder (bundled model), shared by the whole session."""
    from recs.backends import load_encoder

    return _MemoEncoder(load_encoder())


def read_jsonl(name: str, limit: int | None = None) -> list[dict]:
    """Rows of ../shared/data/<name>.jsonl (never copied into the repository)."""
    import json

    path = DATA / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the evaluation data must sit in ../shared/data")
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return rows[:limit] if limit is not None else rows
