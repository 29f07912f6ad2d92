"""Regenerating related blocks of a content folder: golden seed, idempotence, modes, pins."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from recs import filecache, store
from recs.cli import main
from recs.corpus import parse_article_text, read_front_matter
from recs.encoder import HashingEncoder
from recs.errors import StoreLocked
from recs.fsio import TEMP_PREFIX
from recs.options import BuildOptions, ReadOptions
from recs.rank_settings import RankSettings
from recs.regenerate import content_locked, regenerate
from tests.conftest import EXAMPLES, SEED

SEED_SOURCE = "technology/chinese-school-facial-recognition.md"
MATH_SOURCE = "education/is-chinese-math-education-as-good-as-it-seems.md"


def copy_examples(tmp_path: Path, *sources: str) -> Path:
    """A copy of the sample corpus (or some of its files); tests never touch the original."""
    content = tmp_path / "content"
    if not sources:
        shutil.copytree(EXAMPLES, content)
        return content
    for source in sources:
        (content / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(EXAMPLES / source, content / source)
    return content


def snapshot_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*.md")}


def test_golden_seed_and_its_related_article_stay_byte_for_byte(tmp_path, encoder):
    content = copy_examples(tmp_path, SEED_SOURCE, MATH_SOURCE)
    assert (content / SEED_SOURCE).read_bytes() == SEED.read_bytes()
    before = snapshot_bytes(content)
    # Both are `published: false`: listed for each other only as drafts of a preview.
    rank = RankSettings(limit=1, include_drafts=True)
    report = regenerate(content, tmp_path / "store", encoder, rank)
    assert snapshot_bytes(content) == before
    assert (content / SEED_SOURCE).read_bytes() == SEED.read_bytes()
    assert (report.changed, report.unchanged) == ([], [MATH_SOURCE, SEED_SOURCE])
    assert report.summary().startswith("2 files: 0 changed, 2 unchanged, 0 skipped;")


def test_second_run_changes_nothing_and_touches_nothing(tmp_path, encoder):
    content = copy_examples(tmp_path)
    first = regenerate(content, tmp_path / "store", encoder, RankSettings())
    assert len(first.changed) == 51 and first.build.published
    times, data = mtimes(content), snapshot_bytes(content)
    time.sleep(0.01)
    second = regenerate(content, tmp_path / "store", encoder, RankSettings())
    assert second.changed == [] and len(second.unchanged) == 51
    assert not second.build.published  # rewriting the blocks did not make the store stale
    assert second.build.recomputed == 0
    assert mtimes(content) == times and snapshot_bytes(content) == data
    # Every file now holds its stored list, in the stored order, without scores.
    snap = store.load(tmp_path / "store")
    # Blocks are output: neither the store nor the parse cache keeps a copy of them.
    sig = filecache.signature(ReadOptions())
    cached = [entry.article for entry in filecache.load(tmp_path / "store", sig).values()]
    assert len(cached) == len(snap.articles) > 0
    assert not any("related" in a.fields for a in snap.articles + cached)
    for row, article in enumerate(snap.articles):
        fields = read_front_matter((content / article.source).read_bytes())
        urls = [entry["webUrl"] for entry in fields["related"]]
        assert urls == [snap.articles[i.row].fields["webUrl"] for i in snap.related[row]]
        assert all("score" not in entry for entry in fields["related"])


def test_a_file_without_related_gets_one_and_an_empty_list_is_written(write_article, tmp_path):
    path = write_article("only.md", "The only article", "Nothing else is here.")
    original = path.read_bytes()
    from recs.encoder import HashingEncoder

    report = regenerate(write_article.content, tmp_path / "s", HashingEncoder(), RankSettings())
    assert report.changed == ["only.md"]
    # The file separates its blocks with blank lines, so the new block gets one too.
    assert path.read_bytes() == original.replace(b"---\nBody", b"\nrelated: []\n---\nBody")


def test_dry_run_prints_diffs_and_writes_nothing(tmp_path, encoder):
    content = copy_examples(tmp_path)
    before = snapshot_bytes(content)
    store_dir = tmp_path / "store"
    # Without the freshness decay the hashing model drops one of the seed's entries, so the
    # diff has lines out as well as in.
    settings = RankSettings(half_life_days=None)
    report = regenerate(content, store_dir, encoder, settings, mode="dry-run")
    assert snapshot_bytes(content) == before
    assert not store_dir.exists()  # not even a lock file
    assert len(report.diffs) == len(report.changed) == 51
    diff = next(d for d in report.diffs if d.startswith(f"--- a/{SEED_SOURCE}"))
    assert diff.startswith(f"--- a/{SEED_SOURCE}\n+++ b/{SEED_SOURCE}\n")
    assert "+  - title: " in diff and "-  - title: " in diff
    assert "nothing written" in report.summary()


def test_skipped_files_are_reported_with_reasons(tmp_path, encoder):
    content = copy_examples(tmp_path, SEED_SOURCE, MATH_SOURCE)
    (content / "notes.md").write_text("no front matter here\n")
    (content / "more.jsonl").write_text(
        '{"title": "J", "excerpt": "E", "webUrl": "https://e.com/j"}\n'
    )
    report = regenerate(content, tmp_path / "store", encoder, RankSettings(limit=1))
    reasons = {p.path: p.reason for p in report.skipped}
    assert "no front matter" in reasons["notes.md"]
    assert "jsonl" in reasons["more.jsonl"]
    assert report.summary().startswith("4 files: ")
    assert "2 skipped" in report.summary()


def test_pins_survive_regeneration_and_unknown_urls_are_reported(write_article, tmp_path):
    from recs.encoder import HashingEncoder

    pinned = "https://example.com/cooking/0"
    extra = (
        f'relatedPinned:\n  - "{pinned}"\n  - "https://example.com/nowhere"\n'
        'relatedExclude: ["https://example.com/space/1", "https://example.com/gone"]\n'
    )
    stories = {
        "space": [
            "rocket launch delayed",
            "rover drills rock",
            "telescope sees galaxy",
            "crew lands",
        ],
        "cooking": ["bread recipe", "rice recipe", "soup recipe", "cake recipe"],
    }
    for topic, titles in stories.items():
        for n, title in enumerate(titles):
            write_article(
                f"{topic}/{n}.md",
                f"{topic} {title}",
                f"A {topic} story: {title}.",
                url=f"https://example.com/{topic}/{n}",
                extra=extra if (topic, n) == ("space", 0) else "",
            )
    content = write_article.content
    path = content / "space" / "0.md"
    original = path.read_bytes()
    settings = RankSettings(limit=3)
    for _ in range(2):
        report = regenerate(content, tmp_path / "s", HashingEncoder(), settings)
        related = read_front_matter(path.read_bytes())["related"]
        urls = [entry["webUrl"] for entry in related]
        assert urls[0] == pinned  # pinned first although it is about cooking
        assert "https://example.com/space/1" not in urls and len(urls) == 3
        # The editorial keys themselves are untouched.
        assert path.read_bytes().startswith(original[: original.index(b"---\nBody")])
    assert sorted(n.split(": ", 1)[1] for n in report.notices) == [
        "relatedExclude names https://example.com/gone, which is not an article of the corpus; "
        "it has no effect",
        "relatedPinned names https://example.com/nowhere, which is not an article of the corpus; "
        "it has no effect",
    ]
    # Editing another article keeps the pin.
    (content / "space" / "2.md").write_text(
        (content / "space" / "2.md").read_text().replace("All about", "Everything about")
    )
    regenerate(content, tmp_path / "s", HashingEncoder(), settings)
    related = read_front_matter(path.read_bytes())["related"]
    assert related[0]["webUrl"] == pinned


def test_editorial_key_names_are_configurable(write_article, tmp_path, monkeypatch, capsys):
    for n, title in enumerate(["rocket launch", "rover on mars", "bread recipe", "rice recipe"]):
        extra = 'featured: ["https://example.com/2", "https://example.com/404"]\n' if n == 0 else ""
        write_article(
            f"{n}.md", title, f"About {title}.", url=f"https://example.com/{n}", extra=extra
        )
    monkeypatch.setenv("RECS_MODEL", "hashing")
    monkeypatch.setenv("RECS_PINNED_KEY", "featured")
    content = str(write_article.content)
    assert main(["regenerate", content, "--store", str(tmp_path / "s"), "--limit", "2", "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: 0.md: featured names https://example.com/404" in err
    fields = read_front_matter((write_article.content / "0.md").read_bytes())
    assert fields["related"][0]["webUrl"] == "https://example.com/2"


def test_a_second_regenerate_on_the_same_folder_fails_clearly(tmp_path, encoder, capsys):
    content = copy_examples(tmp_path, SEED_SOURCE)
    with content_locked(content):
        with pytest.raises(StoreLocked, match="being rewritten by another recs regenerate"):
            regenerate(content, tmp_path / "store", encoder, RankSettings())
        # Read-only modes need no lock.
        regenerate(content, tmp_path / "store", encoder, RankSettings(), mode="check")
        env_code = main(["regenerate", str(content), "--store", str(tmp_path / "s"), "-q"])
        assert env_code == 75
        err = capsys.readouterr().err
        assert err.startswith("error: the content folder") and err.count("\n") == 1
    assert os.listdir(content) == ["technology"]  # the lock leaves nothing in the folder


def test_leftover_temp_files_are_removed(tmp_path, encoder):
    content = copy_examples(tmp_path, SEED_SOURCE, MATH_SOURCE)
    left = content / "technology" / f"{TEMP_PREFIX}abc123"
    left.write_bytes(b"half a file")
    report = regenerate(content, tmp_path / "store", encoder, RankSettings(limit=1))
    assert report.cleaned == 1 and not left.exists()


def test_parse_cache_skips_unchanged_files_and_never_changes_results(tmp_path, encoder):
    content = copy_examples(tmp_path)
    store_dir = tmp_path / "store"
    regenerate(content, store_dir, encoder, RankSettings())
    sig = filecache.signature(ReadOptions())
    cached = filecache.load(store_dir, sig)
    assert len(cached) == 51
    # Cached entries match a fresh parse of the files as rewritten (related block included).
    for source, entry in cached.items():
        raw = (content / source).read_bytes()
        fresh = parse_article_text(raw, source)
        assert dict(entry.article.fields) == dict(fresh.fields) and entry.article.url == fresh.url
        assert entry.sha == hashlib.sha256(raw).hexdigest() and entry.block
    # A file edited by hand is read and checked again, even though its list did not change.
    seed = content / SEED_SOURCE
    stale = seed.read_bytes().replace(b"    type: article\n", b"    type: video\n", 1)
    seed.write_bytes(stale)
    assert regenerate(content, store_dir, encoder, RankSettings()).changed == [SEED_SOURCE]
    assert seed.read_bytes() != stale
    assert filecache.load(store_dir, filecache.signature(ReadOptions(pinned_key="pins"))) == {}
    # A corrupt cache is ignored.
    (store_dir / filecache.FILE).write_bytes(b"not sqlite")
    report = regenerate(content, store_dir, encoder, RankSettings())
    assert report.changed == [] and len(filecache.load(store_dir, sig)) == 51


def test_incremental_regeneration_equals_a_full_one(tmp_path, encoder):
    """Corpus large enough for link_changes to reach only some lists."""
    rng = random.Random(7)
    words = [f"word{n}" for n in range(400)]
    content = tmp_path / "content"
    content.mkdir()
    for n in range(160):
        topic = n % 8
        text = " ".join(rng.choice(words[topic * 50 : topic * 50 + 50]) for _ in range(12))
        (content / f"{n}.md").write_text(
            f'---\ntitle: "Story {n} {text[:30]}"\nexcerpt: "{text}"\n'
            f'webUrl: "https://e.com/{n}"\n---\n'
        )
    settings = RankSettings(limit=3, pool=10)
    regenerate(content, tmp_path / "a", encoder, settings)
    edited = content / "5.md"
    edited.write_text(edited.read_text().replace("Story 5", "Story five word399 word398"))
    report = regenerate(content, tmp_path / "a", encoder, settings)
    assert 1 <= report.build.recomputed < 160
    incremental = snapshot_bytes(content)
    full = regenerate(content, tmp_path / "b", encoder, settings, BuildOptions(rebuild=True))
    assert full.build.recomputed == 160 and full.changed == []
    assert snapshot_bytes(content) == incremental


# Killed at random moments (50 SIGKILLs, store and files checked after each, then the next
# run): tests/test_crash_safety.py::test_killed_regenerates_leave_every_file_old_or_new


# --- 10,000 real articles ---------------------------------------------------------------


@pytest.fixture
def fast_tmp(tmp_path):
    """A temp folder in memory when there is one: 10,000 fsyncs on disk would dominate."""
    import tempfile

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="recs-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.data
def test_incremental_on_10k_articles_recomputes_only_reachable_lists(fast_tmp, encoder):
    from bench.regenerate import edit, read_rows, write_corpus
    from tests.conftest import DATA

    rows = read_rows(path=DATA / "huffpost.jsonl")
    assert len(rows) == 10_000
    content = fast_tmp / "content"
    paths = write_corpus(rows, content)
    settings = RankSettings()
    first = regenerate(content, fast_tmp / "store", encoder, settings)
    assert first.build.recomputed == first.build.articles == 9_998  # two URLs appear twice
    assert len(first.changed) == 9_998 and len(first.skipped) == 2

    edit(paths[1234], 1)  # a new excerpt: one article to embed
    before = snapshot_bytes(content)
    report = regenerate(content, fast_tmp / "store", encoder, settings)
    assert report.build.embedded == 1
    assert 1 <= report.build.recomputed < 500  # only the lists the change can reach
    assert paths[1234].relative_to(content).as_posix() in report.changed
    after = snapshot_bytes(content)
    assert {s for s in after if after[s] != before[s]} == set(report.changed)

    # A full regeneration from scratch (all lists ranked, in memory) finds nothing to change:
    # every block, hence every list and its order, is what the incremental run wrote.
    full = regenerate(
        content, fast_tmp / "full", encoder, settings, BuildOptions(rebuild=True), mode="check"
    )
    assert full.build.recomputed == 9_998 and full.changed == []
    assert len(full.unchanged) == 9_998


def test_a_symlink_leading_outside_the_folder_is_not_written_through(topic_corpus, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_bytes((topic_corpus / "space" / "0.md").read_bytes())
    (topic_corpus / "space" / "0.md").unlink()
    (topic_corpus / "space" / "0.md").symlink_to(outside)
    (topic_corpus / ".kept").mkdir()  # hidden: not read, but inside the folder
    (topic_corpus / "space" / "1.md").rename(topic_corpus / ".kept" / "1.md")
    (topic_corpus / "space" / "1.md").symlink_to(topic_corpus / ".kept" / "1.md")
    before = outside.read_bytes()
    report = regenerate(topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings())
    [problem] = report.skipped
    assert problem.path == "space/0.md" and "outside the content folder" in problem.reason
    assert "--allow-outside-links" in problem.reason and outside.read_bytes() == before
    assert "space/1.md" in report.changed  # a link inside the folder is written through
    report = regenerate(
        topic_corpus, tmp_path / "s", HashingEncoder(), RankSettings(), outside_links=True
    )
    assert "space/0.md" in report.changed and outside.read_bytes() != before
    assert (topic_corpus / "space" / "0.md").is_symlink()


def test_toml_files_get_tables_and_json_files_are_reported_untouched(tmp_path, encoder):
    content = tmp_path / "content"
    content.mkdir()
    toml = content / "t.md"
    toml.write_bytes(
        b'+++\ntitle = "Rockets"\nexcerpt = "Launch"\nwebUrl = "https://a.example/t"\n+++\n'
    )
    json_file = content / "j.md"
    json_raw = (
        b'{\n  "title": "Rocket",\n  "excerpt": "Launch",\n  "webUrl": "https://a.example/j"\n}\n'
    )
    json_file.write_bytes(json_raw)
    report = regenerate(content, tmp_path / "store", encoder, RankSettings())
    assert report.changed == ["t.md"]
    assert [(p.path, p.reason.split(":")[0]) for p in report.skipped] == [
        ("j.md", "JSON front matter")
    ]
    assert "recs export --site" in report.skipped[0].reason
    assert json_file.read_bytes() == json_raw
    assert read_front_matter(toml.read_bytes())["related"][0]["webUrl"] == "https://a.example/j"
    again = regenerate(content, tmp_path / "store", encoder, RankSettings())
    assert again.changed == [] and again.unchanged == ["t.md"]
