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
    calibration_of,
    resolve_model,
)
from recs.rank import RankSettings


def test_every_named_model_is_calibrated_and_minilm_is_the_reference():
    assert set(CALIBRATIONS) == set(NAMED_MODELS) - {"hashing"}
    minilm = CALIBRATIONS[BUNDLED_MODEL]
    # MiniLM's duplicate cosine is the ranking default and the cosine `recs eval` counts.
    assert minilm.duplicate_cosine == RankSettings().dedup_threshold == DUPLICATE_COSINE
    for calibration in CALIBRATIONS.values():
        assert 0 < calibration.relevance_floor < calibration.duplicate_cosine <= 1
        assert calibration.floor_quantile == 0.99
    # Random pairs score higher with the static and (centred) multilingual models.
    assert CALIBRATIONS[STATIC_MODEL].relevance_floor > minilm.relevance_floor
    assert CALIBRATIONS[MULTILINGUAL_MODEL].relevance_floor > minilm.relevance_floor


def test_a_store_model_id_finds_its_calibration_at_any_precision():
    spec = resolve_model(None)
    assert spec is not None and spec.calibration == CALIBRATIONS[BUNDLED_MODEL]
    assert calibration_of(spec.model_id) == CALIBRATIONS[BUNDLED_MODEL]
    assert calibration_of(spec.model_id + "+int8") == CALIBRATIONS[BUNDLED_MODEL]
    static = resolve_model(STATIC_MODEL)
    assert static is not None and calibration_of(static.model_id) == CALIBRATIONS[STATIC_MODEL]
    assert (
        calibration_of("multilingual-e5-small-q4@0123456789ab-v1")
        == CALIBRATIONS[MULTILINGUAL_MODEL]
    )
    assert calibration_of("my-own-model@0123456789ab") is None
    assert calibration_of("hashing-384-v1") is None


def test_an_unknown_model_name_lists_the_named_ones(tmp_path):
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2-static, multilingual-e5-small"):
        resolve_model(str(tmp_path / "nothing-here"))
