"""Which model a setting names, the id a store records for it, and its calibration."""

from __future__ import annotations

import pytest

from recs.errors import ConfigError
from recs.evaluate import DUPLICATE_COSINE
from recs.models import (
    BUNDLED_MODEL,
    CALIBRATIONS,
    MULTILINGUAL_MODEL,
    NAMED_MODELS,
    STATIC_MODEL,
    Calibration,
    calibration,
    resolve_model,
)
from recs.rank import RankSettings


def test_every_named_model_is_calibrated_and_minilm_is_the_reference():
    assert set(CALIBRATIONS) == set(NAMED_MODELS) - {"hashing"}
    minilm = CALIBRATIONS[BUNDLED_MODEL]
    # MiniLM's duplicate cosine is the ranking default and the cosine `recs eval` counts.
    assert minilm.dedup_threshold == RankSettings().dedup_threshold == DUPLICATE_COSINE
    for calibrated in CALIBRATIONS.values():
        assert calibrated.min_similarity is not None
        assert calibrated.relevant_similarity is not None
        assert calibrated.dedup_threshold is not None
        assert 0 < calibrated.min_similarity < calibrated.relevant_similarity
        assert calibrated.relevant_similarity < calibrated.dedup_threshold <= 1
    # Random pairs score higher with the static and (centred) multilingual models.
    for model in (STATIC_MODEL, MULTILINGUAL_MODEL):
        assert CALIBRATIONS[model].min_similarity > minilm.min_similarity  # type: ignore[operator]
    # Only the multilingual model keeps lists to a language.
    assert [m for m, c in CALIBRATIONS.items() if c.same_language] == [MULTILINGUAL_MODEL]


def test_a_store_model_id_finds_its_calibration_at_any_precision():
    spec = resolve_model(None)
    assert spec is not None
    assert calibration(spec.model_id) == CALIBRATIONS[BUNDLED_MODEL]
    assert calibration(spec.model_id + "+int8") == CALIBRATIONS[BUNDLED_MODEL]
    static = resolve_model(STATIC_MODEL)
    assert static is not None and calibration(static.model_id) == CALIBRATIONS[STATIC_MODEL]
    assert (
        calibration("multilingual-e5-small-q4@0123456789ab-v1") == CALIBRATIONS[MULTILINGUAL_MODEL]
    )
    assert calibration("my-own-model@0123456789ab") == Calibration()  # no opinion
    assert calibration("hashing-384-v1") == Calibration()


def test_a_calibration_applies_where_a_setting_is_left_at_its_default():
    from dataclasses import replace

    from recs.config import Settings

    settings = Settings.from_env({})
    e5 = "multilingual-e5-small-q4@0123456789ab-v2"
    ranked = settings.rank_for(e5)
    assert ranked.dedup_threshold == CALIBRATIONS[MULTILINGUAL_MODEL].dedup_threshold
    assert ranked.min_similarity == CALIBRATIONS[MULTILINGUAL_MODEL].min_similarity
    assert ranked.same_language is True
    own = replace(settings, rank=RankSettings(dedup_threshold=0.9, min_similarity=-1.0))
    mine = own.rank_for(e5)
    assert mine.dedup_threshold == 0.9 and mine.min_similarity == -1.0  # the user's word
    assert own.rank_for("my-own-model@0123456789ab") == own.rank  # no calibration


def test_an_unknown_model_name_lists_the_named_ones(tmp_path):
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2-static, multilingual-e5-small"):
        resolve_model(str(tmp_path / "nothing-here"))
