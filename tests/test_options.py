"""recs/options.py: the options a build travels with: which index, how the store is
treated, how files are read."""

from __future__ import annotations

import numpy as np
import pytest

from recs.errors import ConfigError
from recs.index import VectorIndex
from recs.options import EXACT_MAX, IndexSettings


def test_auto_is_exact_up_to_the_threshold_then_ivf():
    assert IndexSettings().kind_for(EXACT_MAX) == "exact"
    assert IndexSettings().kind_for(EXACT_MAX + 1) == "ivf"
    assert IndexSettings(exact_max=10).kind_for(11) == "ivf"
    assert IndexSettings("exact").kind_for(10**7) == "exact"
    assert IndexSettings("ivf").kind_for(3) == "ivf"
    assert VectorIndex(np.zeros((5, 4), np.float32), IndexSettings(exact_max=4)).kind == "ivf"
    with pytest.raises(ConfigError, match="RECS_INDEX"):
        IndexSettings("hnsw")
