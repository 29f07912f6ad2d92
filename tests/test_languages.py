"""An article's language: declared, detected, and the lists that keep to it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recs.config import Settings
from recs.corpus import parse_article_text
from recs.languages import detect, language_code
from recs.models import CALIBRATIONS, Calibration, calibration
from recs.options import ReadOptions
from recs.rank_settings import RankSettings
from tests.test_rank import make_articles, random_vectors, ranked

DETECTING = ReadOptions(detect_language=True)
URL = "webUrl: https://news.example/a\n"


@pytest.mark.parametrize(
    ("declared", "code"),
    [("en", "en"), ("de-CH", "de"), ("pt_BR", "pt"), (" FR ", "fr"), ("zh-Hant-TW", "zh")],
)
def test_a_declared_tag_is_kept_as_its_primary_subtag(declared, code):
    assert language_code(declared) == code


@pytest.mark.parametrize("value", ["German", "e", "en--GB", "", 7, None, ["en"], "de CH"])
def test_what_is_not_a_language_tag_gives_no_code(value):
    assert language_code(value) is None


@pytest.mark.parametrize("key", ["language", "lang", "locale", "inLanguage"])
def test_the_usual_keys_declare_it(key):
    raw = f"---\ntitle: T\nexcerpt: E\n{URL}{key}: de-DE\n---\n".encode()
    assert parse_article_text(raw, "a.md").fields["language"] == "de"


def test_a_name_instead_of_a_tag_is_left_out_not_an_error():
    raw = f"---\ntitle: Ein Titel\nexcerpt: Ein Text\n{URL}lang: German\n---\n".encode()
    assert "language" not in parse_article_text(raw, "a.md").fields
    # ... and with detection on, the text says it.
    detected = parse_article_text(
        "---\ntitle: Die Regierung plant neue Steuern\nexcerpt: Der Bundestag stimmt am "
        f"Freitag über das Gesetz ab.\n{URL}lang: German\n---\n".encode(),
        "a.md",
        DETECTING,
    )
    assert detected.fields["language"] == "de"


def test_detection_only_when_asked_and_never_over_a_declared_language():
    text = (
        "---\ntitle: Le gouvernement annonce un nouveau budget\n"
        f"excerpt: Les députés votent ce soir.\n{URL}"
    )
    assert "language" not in parse_article_text(f"{text}---\n".encode(), "a.md").fields
    assert parse_article_text(f"{text}---\n".encode(), "a.md", DETECTING).fields["language"] == "fr"
    declared = parse_article_text(f"{text}lang: en\n---\n".encode(), "a.md", DETECTING)
    assert declared.fields["language"] == "en"  # the site's word over a guess


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Chinese School Faces Backlash Over Use of Facial Recognition Scanners", "en"),
        ("Chinesische Schule steht wegen Gesichtserkennung in der Kritik", "de"),
        ("Une école chinoise critiquée pour ses scanners de reconnaissance faciale", "fr"),
        ("Escuela china enfrenta críticas por usar escáneres de reconocimiento facial", "es"),
        ("中国学校因使用人脸识别扫描仪遭到强烈反对", "zh"),
    ],
)
def test_headlines_are_detected(text, code):
    assert detect(text) == code


def test_no_text_no_language():
    assert detect("  ") is None


def test_same_language_keeps_a_list_to_the_articles_language():
    languages = {i: {"language": "de" if i % 3 == 0 else "en"} for i in range(12)}
    languages[11] = {}  # unknown: nothing says it is in another language
    articles = make_articles(12, overrides=languages)
    vectors = random_vectors(12, 3)
    everything = ranked(articles, vectors, 0, limit=11)
    kept = ranked(articles, vectors, 0, limit=11, same_language=True)
    assert {articles[i.row].fields.get("language") for i in everything.items} == {"de", "en", None}
    assert {articles[i.row].fields.get("language") for i in kept.items} <= {"de", None}
    assert sorted(i.row for i in kept.items) == [3, 6, 9, 11]
    # An article of unknown language gets every language.
    unknown = ranked(articles, vectors, 11, limit=11, same_language=True)
    assert len(unknown.items) == 11


def test_the_filter_follows_the_models_calibration_unless_set(monkeypatch):
    multilingual = "some-multilingual-model"
    monkeypatch.setitem(CALIBRATIONS, multilingual, Calibration(same_language=True))
    assert calibration(f"{multilingual}@abc").same_language is True
    settings = Settings.from_env({})
    assert settings.rank_for(f"{multilingual}@abc").same_language is True
    assert not settings.rank_for("all-MiniLM-L6-v2@abc").same_language
    off = replace(settings, rank=RankSettings(same_language=False))
    assert off.rank_for(f"{multilingual}@abc").same_language is False


def test_every_calibrated_setting_is_a_ranking_setting():
    """Settings.rank_for fills RankSettings fields by the calibration's field names."""
    from dataclasses import fields

    assert {f.name for f in fields(Calibration)} <= {f.name for f in fields(RankSettings)}


def test_files_are_read_detecting_languages_when_the_lists_keep_to_them():
    assert Settings.from_env({"RECS_MODEL": "hashing"}).read_options.detect_language is False
    on = Settings.from_env({"RECS_MODEL": "hashing", "RECS_RANK_SAME_LANGUAGE": "true"})
    assert on.read_options.detect_language is True


def test_the_languages_of_real_headlines_are_detected():
    """tests/data/multilingual_stories.jsonl: 111 real headlines and lead sentences in 15
    languages, each with its page's language. Measured: 108 detected right (a Dutch
    headline of five words read as Danish, a Spanish one as Italian, an English one as
    Nigerian Pidgin)."""
    import json

    from tests.conftest import ROOT

    text = (ROOT / "tests" / "data" / "multilingual_stories.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    right = sum(detect(f"{r['title']}. {r['excerpt']}") == r["language"] for r in rows)
    assert len(rows) == 111 and right >= 105
