"""Evaluation: labelled rows -> articles, the figures, the baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recs import evaluate as evaluation
from recs.encoder import HashingEncoder, normalise
from recs.errors import InvalidInput
from recs.evaluate import evaluate, random_lists, read_labelled, score, tfidf_lists
from recs.rank_settings import RankSettings
from tests.conftest import write_rows
from tests.test_pipeline import CountingEncoder


def test_labelled_rows_map_to_article_fields(tmp_path):
    path = write_rows(
        tmp_path / "l.jsonl",
        [
            {
                "id": "a",
                "title": "One",
                "excerpt": "x",
                "label": "L",
                "date": "2022-09-23",
                "url": "http://Example.com/one?utm_source=x",
                "provider": "HuffPost",
            },
            {"id": "b/2", "title": "Two", "excerpt": "", "label": 7, "url": None},
            {
                "id": "c",
                "title": "Three",
                "excerpt": "",
                "label": "L",
                "url": "http://example.com/one",
            },
            {"id": "d", "title": "Four", "label": "L", "url": "not a url", "provider": None},
        ],
    )
    data = read_labelled(path)
    one, two, three, four = data.articles
    assert one.url == "https://example.com/one"
    assert one.fields["webUrl"] == "http://Example.com/one?utm_source=x"
    assert one.fields["publishedDateTime"] == "2022-09-23"
    assert one.published_ts == 1663891200.0
    assert one.fields["provider"] == {"name": "HuffPost"}
    # No URL, a URL taken by an earlier row, an unusable URL: a stable URL from the id.
    assert two.url == "https://labelled.invalid/b%2F2"
    assert three.url == "https://labelled.invalid/c"
    assert four.url == "https://labelled.invalid/d" and four.excerpt == ""
    assert data.synthetic_urls == 3
    assert data.labels == ["L", "7", "L", "L"]
    for article in data.articles:  # the label is never part of what ranking sees
        assert set(article.fields) <= {
            "title",
            "excerpt",
            "publishedDateTime",
            "webUrl",
            "provider",
        }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "l.jsonl:2: invalid JSON"),
        ('{"id": "b", "title": "T", "excerpt": ""}', "l.jsonl:2: 'label' is required"),
        ('{"id": "b", "title": " ", "label": "x"}', "'title' must be non-empty"),
        (
            '{"id": "b", "title": "T", "label": "x", "date": "yesterday"}',
            "l.jsonl:2: date: 'yesterday' is not an ISO 8601",
        ),
        ('{"id": "a", "title": "T", "label": "x"}', "id 'a' is used by another row"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_a_bad_line_is_an_error_naming_it(tmp_path, line, message):
    path = tmp_path / "l.jsonl"
    path.write_text('{"id": "a", "title": "T", "label": "x"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        read_labelled(path)


def test_figures_on_hand_made_lists():
    # Rows 0-2 label A, 3-4 label B, 5 label C (alone). Row 1 and 2 are the same story.
    labels = ["A", "A", "A", "B", "B", "C"]
    vectors = normalise(
        np.array(
            [[1, 0, 0], [0, 1, 0], [0, 1, 0.01], [0, 0, 1], [0.3, 0, 1], [1, 1, 1]],
            dtype=np.float32,
        )
    )
    keys = ["a", "b", "c", "d", "d", "f"]  # 3 and 4 share a normalised title
    providers = ["P", "P", "Q", None, "Q", "P"]
    lists = [[1, 3], [0, 2], [4], [4, 0], [0, 1], []]
    s = score(lists, labels, vectors, keys, providers, limit=2)
    assert s.precision == pytest.approx((1 + 2 + 0 + 1 + 0 + 0) / 2 / 6)
    # nDCG@2: row 5 has no other C and is left out. Row 0: hit at rank 1 of an ideal 2.
    ideal2 = 1 + 1 / math.log2(3)
    assert s.ndcg == pytest.approx((1 / ideal2 + 1 + 0 + 1 / 1 + 0) / 5)
    assert s.coverage == pytest.approx(4 / 6)
    # Duplicate pairs: row 1's list holds 2 (its own near-duplicate); row 3's list holds 4
    # (same title as 3); row 4's list holds nothing close to 4 or to each other.
    assert s.duplicates == pytest.approx(2 / 6)
    assert s.providers == pytest.approx((2 + 2 + 1 + 1 + 1) / 5)


def test_baselines_leave_out_the_article_and_its_copies():
    texts = ["red apple pie", "red apple pie", "red apple pie recipe", "blue sky", "green apple"]
    lists = tfidf_lists(texts, 2)
    assert lists[0] == [2, 4]  # the near copy first, then the one sharing "apple"
    assert lists[1] == [2, 4]
    assert all(row not in items and len(items) == 2 for row, items in enumerate(lists))
    rand = random_lists(texts, 3)
    assert rand == random_lists(texts, 3)  # seeded
    for row, items in enumerate(rand):
        assert row not in items and len(set(items)) == 3
        if row in (0, 1):
            assert not {0, 1} & set(items)  # never a copy of the article
    assert sorted(random_lists(texts, 10)[0]) == [2, 3, 4]  # all there is, no more


def test_evaluate_runs_the_production_pipeline(topics_file, monkeypatch):
    seen = {}
    real_prepare = evaluation.prepare

    def spy(articles, encoder, settings, **kwargs):
        seen["articles"], seen["settings"] = list(articles), settings
        return real_prepare(articles, encoder, settings, **kwargs)

    monkeypatch.setattr(evaluation, "prepare", spy)
    settings = RankSettings(limit=3, mmr_lambda=0.9)
    result = evaluate(topics_file, HashingEncoder(), settings)
    assert seen["settings"] == settings
    assert all("label" not in a.fields for a in seen["articles"])
    assert (result.articles, result.labels, result.limit) == (12, 3, 3)
    assert result.options == {"mmr_lambda": 0.9}
    assert list(result.methods) == ["recs", "tfidf", "random"]
    recs = result.methods["recs"]
    assert recs.coverage == 1.0 and recs.duplicates == 0.0
    assert recs.precision > result.methods["random"].precision
    assert recs.precision >= 0.8  # three clearly separate topics, even for the hashing model
    assert set(result.as_dict()["methods"]["recs"]) == {
        "precision",
        "ndcg",
        "coverage",
        "duplicates",
        "providers",
    }


def test_labels_do_not_change_the_lists(topics_file, tmp_path, monkeypatch):
    lists = []
    real_score = evaluation.score

    def spy(lists_, *args, **kwargs):
        lists.append([list(x) for x in lists_])
        return real_score(lists_, *args, **kwargs)

    monkeypatch.setattr(evaluation, "score", spy)
    rows = [json.loads(line) for line in topics_file.read_text().splitlines()]
    shuffled = write_rows(
        tmp_path / "s.jsonl", [{**r, "label": str(i % 2)} for i, r in enumerate(rows)]
    )
    evaluate(topics_file, HashingEncoder(), RankSettings(limit=3), baselines=False)
    evaluate(shuffled, HashingEncoder(), RankSettings(limit=3), baselines=False)
    assert lists[0] == lists[1]


def test_variants_are_scored_on_one_embedding(topics_file):
    encoder = CountingEncoder()
    base = RankSettings(limit=3)
    result = evaluate(
        topics_file,
        encoder,
        base,
        baselines=False,
        variants={"mmr": base.with_options(mmr_lambda=0.2), "plain": base.with_options(pool=2)},
    )
    assert len(encoder.texts) == 12
    assert list(result.methods) == ["recs", "recs mmr", "recs plain"]
    assert result.variants == {"recs mmr": {"mmr_lambda": 0.2}, "recs plain": {"pool": 2}}
    with pytest.raises(InvalidInput, match="variant 'x' has limit 5, not 3"):
        evaluate(topics_file, encoder, base, variants={"x": RankSettings()})


def test_progress_is_reported_for_every_stage(topics_file):
    stages: dict[str, tuple[int, int]] = {}

    def progress(stage, done, total):
        stages[stage] = (done, total)

    evaluate(topics_file, HashingEncoder(), RankSettings(limit=3), progress=progress)
    assert stages["embedding"] == (12, 12)
    assert stages["ranking"] == (12, 12)
    assert stages["tf-idf"] == (12, 12)
    assert {"scoring recs", "scoring tfidf", "scoring random"} <= set(stages)


def test_labelled_rows_are_read_through_the_field_mapping(tmp_path):
    path = write_rows(
        tmp_path / "sites.jsonl",
        [
            {"id": 1, "title": "A", "description": "D", "pubDate": "2024-01-05", "label": "x",
             "tags": ["t"]},
            {"id": 2, "title": "B", "summary": "S", "label": "x"},
        ],
    )  # fmt: skip
    one, two = read_labelled(path).articles
    assert (one.excerpt, one.fields["publishedDateTime"], one.fields["topics"]) == (
        "D", "2024-01-05", ["t"],
    )  # fmt: skip
    assert two.excerpt == "S" and "label" not in one.fields and "tags" not in one.fields
