"""recs/options.py: the options a build travels with: which index, how the store is
treated, how files are read."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from recs.errors import ConfigError
from recs.index import VectorIndex
from recs.options import (
    EXACT_MAX,
    KEEP,
    MAX_FILE_BYTES,
    MIN_KEEP,
    BuildOptions,
    FieldMap,
    IndexSettings,
    ReadOptions,
)


def test_auto_is_exact_up_to_the_threshold_then_ivf():
    assert IndexSettings().kind_for(EXACT_MAX) == "exact"
    assert IndexSettings().kind_for(EXACT_MAX + 1) == "ivf"
    assert IndexSettings(exact_max=10).kind_for(11) == "ivf"
    assert IndexSettings("exact").kind_for(10**7) == "exact"
    assert IndexSettings("ivf").kind_for(3) == "ivf"
    assert VectorIndex(np.zeros((5, 4), np.float32), IndexSettings(exact_max=4)).kind == "ivf"
    with pytest.raises(ConfigError, match="RECS_INDEX"):
        IndexSettings("hnsw")


def test_a_negative_exact_max_names_its_variable():
    with pytest.raises(ConfigError, match="RECS_INDEX_EXACT_MAX must be 0 or more, not -1"):
        IndexSettings(exact_max=-1)
    assert IndexSettings(exact_max=0).kind_for(1) == "ivf"


@pytest.mark.parametrize(
    ("options", "label"),
    [
        (BuildOptions(), "build"),
        (BuildOptions(rebuild=True), "build --rebuild"),
        (BuildOptions(allow_shrink=True, made="regenerate"), "regenerate --allow-shrink"),
        (BuildOptions(rebuild=True, allow_shrink=True), "build --rebuild --allow-shrink"),
        (BuildOptions(strict=True, publish=False), "build"),  # flags that publish nothing
    ],
)
def test_a_generation_is_labelled_with_the_command_and_the_flags_that_shaped_it(options, label):
    assert options.label() == label


def test_options_are_frozen_values_a_call_cannot_change():
    """Defaults are shared instances (`read: ReadOptions = ReadOptions()`): no call may
    change one for the next."""
    for value in (ReadOptions(), BuildOptions(), IndexSettings(), FieldMap()):
        field = next(iter(vars(value)))
        with pytest.raises(FrozenInstanceError):
            setattr(value, field, None)
    assert ReadOptions() == ReadOptions() and hash(ReadOptions()) == hash(ReadOptions())


def test_the_defaults_read_the_seeds_keys_and_keep_a_generation_to_roll_back_to():
    read = ReadOptions()
    assert (read.pinned_key, read.excluded_key, read.max_file_bytes) == (
        "relatedPinned",
        "relatedExclude",
        MAX_FILE_BYTES,
    )
    fields = read.fields
    assert fields.title[0] == "title" and fields.excerpt[0] == "excerpt"
    assert fields.date[0] == "publishedDateTime" and fields.url == ("webUrl",)
    assert read.urls is None and read.skip == ()
    assert BuildOptions().keep_generations == KEEP >= MIN_KEEP == 2
    assert BuildOptions().index == IndexSettings("auto", EXACT_MAX)
