"""recs/cli/store_commands.py: build, regenerate, watch, generations and rollback as a
user runs them: what they print, their exit codes, what they refuse."""

from __future__ import annotations

import json

import pytest

from recs.cli import main
from tests.conftest import EXAMPLES
from tests.test_regenerate import SEED_SOURCE, copy_examples, snapshot_bytes

SITES = EXAMPLES.parent  # the example Hugo, Jekyll, Eleventy and Astro sites


def test_strict_exits_non_zero(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    (topic_corpus / "bad.md").write_text("---\ntitle: 3\nexcerpt: x\n---\n")
    assert main(["build", str(topic_corpus), "--store", str(tmp_path / "s"), "--strict"]) == 1
    assert "bad.md:2: title: must be text" in capsys.readouterr().err


def test_regenerate_exits_74_when_files_cannot_be_written(
    topic_corpus, tmp_path, capsys, monkeypatch
):
    import recs.regenerate

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("RECS_MODEL", "hashing")
    monkeypatch.setattr(recs.regenerate, "write_atomic", disk_full)
    before = {p: p.read_bytes() for p in topic_corpus.rglob("*.md")}
    assert main(["regenerate", str(topic_corpus), "--store", str(tmp_path / "s"), "-q"]) == 74
    err = capsys.readouterr().err
    assert "cannot write: No space left on device; the file is unchanged" in err
    assert "error: 12 file(s) could not be written" in err
    assert {p: p.read_bytes() for p in topic_corpus.rglob("*.md")} == before


@pytest.mark.parametrize("command", ["build", "regenerate"])
def test_a_wrong_folder_is_refused_in_one_line_with_its_skipped_files_first(
    topic_corpus, tmp_path, capsys, monkeypatch, command
):
    """A Hugo site root (TOML front matter) or an empty folder reads almost nothing: the
    command says what it would remove and how to force it, and publishes nothing."""
    from recs import store

    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q"]) == 0
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "content" / "post.md").write_text('+++\ntitle = "A post"\n+++\nBody.\n')
    capsys.readouterr()
    assert main([command, str(site), "--store", store_dir]) == 65
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("skipped content/post.md")
    assert lines[-1].startswith("error: not published: this build would remove 12 of the 12")
    assert "--allow-shrink" in lines[-1] and len(lines) == 2
    assert store.current_generation(tmp_path / "s") == "gen-000001"
    assert main([command, str(site), "--store", store_dir, "--allow-shrink", "-q"]) == 0
    assert store.current_generation(tmp_path / "s") == "gen-000002"


def test_generations_and_rollback(topic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    store_dir = str(tmp_path / "s")
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "2"]) == 0
    assert main(["build", str(topic_corpus), "--store", store_dir, "-q", "--limit", "3"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--store", store_dir]) == 0
    assert capsys.readouterr().out.startswith(
        "published gen-000003 (rollback to gen-000001, 12 articles)"
    )
    assert main(["generations", "--store", store_dir]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  gen-000001 ") and lines[0].endswith("12 articles  build")
    assert lines[2].startswith("* gen-000003 ") and lines[2].endswith("rollback to gen-000001")
    assert lines[3].startswith("3 kept (RECS_KEEP_GENERATIONS=5)")
    assert main(["generations", "--store", store_dir, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [g["current"] for g in listed] == [False, False, True]
    assert main(["rollback", "gen-000007", "--store", store_dir]) == 2
    assert "keeps no generation 'gen-000007'" in capsys.readouterr().err


def test_skipped_lines_cannot_be_forged_by_a_file_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    content = tmp_path / "content"
    content.mkdir()
    (content / "x.md\nskipped fake.md: all good\x1b[2J.md").write_text("not an article")
    assert main(["build", str(content), "--store", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "skipped x.md\\nskipped fake.md: all good\\x1b[2J.md:1: no front matter: "
        "the file must start with a line '---' (YAML), '+++' (TOML) or '{' (JSON)"
    ]


def test_check_lists_stale_files_and_exits_1(tmp_path, encoder, capsys, monkeypatch):
    content = copy_examples(tmp_path)
    store_dir = tmp_path / "store"
    monkeypatch.setenv("RECS_MODEL", "hashing")
    before = snapshot_bytes(content)
    assert main(["regenerate", str(content), "--store", str(store_dir), "--check", "-q"]) == 1
    captured = capsys.readouterr()
    assert f"stale {SEED_SOURCE}" in captured.err
    assert snapshot_bytes(content) == before and not store_dir.exists()
    assert main(["regenerate", str(content), "--store", str(store_dir), "-q"]) == 0
    assert "51 files: 51 changed" in capsys.readouterr().out
    assert main(["regenerate", str(content), "--store", str(store_dir), "--check", "-q"]) == 0
    assert "51 files: 0 stale, 51 unchanged" in capsys.readouterr().out
    # A hand edit of one block makes exactly that file stale.
    seed = content / SEED_SOURCE
    seed.write_bytes(seed.read_bytes().replace(b"    type: article\n", b"    type: video\n", 1))
    assert main(["regenerate", str(content), "--store", str(store_dir), "--check", "-q"]) == 1
    assert captured_lines(capsys.readouterr().err, "stale ") == [f"stale {SEED_SOURCE}"]


def captured_lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_build_explain_fields_prints_the_rules_and_builds_nothing(tmp_path, capsys):
    root = SITES / "hugo-blog"
    post = root / "content" / "posts" / "baking-bread-at-high-altitude.md"
    store_dir = tmp_path / "store"
    assert main(["build", str(root), "--explain-fields", str(post), "--store", str(store_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Hugo site {root} (hugo.toml)")
    assert out[1] == "posts/baking-bread-at-high-altitude.md: TOML front matter, Hugo rules"
    assert (
        out[3].startswith('  excerpt  "At 2,000 metres dough rises') and "key `summary`" in out[3]
    )
    assert not store_dir.exists()


def test_regenerate_takes_one_of_dry_run_and_check(topic_corpus, tmp_path, capsys):
    args = ["regenerate", str(topic_corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--dry-run", "--check"]) == 2
    assert "choose one of --dry-run and --check" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_regenerate_dry_run_prints_each_files_diff_and_writes_nothing(
    topic_corpus, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("RECS_MODEL", "hashing")
    before = {p: p.read_bytes() for p in topic_corpus.rglob("*.md")}
    args = ["regenerate", str(topic_corpus), "--store", str(tmp_path / "s"), "-q", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("--- a/") == 12 and "--- a/space/0.md\n+++ b/space/0.md\n" in out
    assert "+related:\n" in out
    assert out.splitlines()[-1].startswith("12 files: 12 would change, 0 unchanged, 0 skipped;")
    assert "nothing written (store and files unchanged)" in out.splitlines()[-1]
    assert {p: p.read_bytes() for p in topic_corpus.rglob("*.md")} == before
    assert not (tmp_path / "s").exists()


def test_generations_and_rollback_without_a_store_say_how_to_make_one(tmp_path, capsys):
    for command in ("generations", "rollback"):
        assert main([command, "--store", str(tmp_path / "none")]) == 1
        err = capsys.readouterr().err
        assert (
            err == f"error: no store at {tmp_path / 'none'}: run `recs build CONTENT_DIR` first\n"
        )
