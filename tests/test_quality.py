"""The quality bar: default ranking, the real model, the shared labelled news.

Both files are embedded once per test session (the `model_encoder` fixture remembers every
text), and only the production lists are scored here; `recs eval` adds the baselines.
docs/quality.md has the figures and the commands that produce them.
"""

from __future__ import annotations

import pytest

from recs.config import Settings
from recs.evaluate import evaluate
from tests.conftest import DATA

pytestmark = [pytest.mark.model, pytest.mark.data]

# precision@5 of the same label that the default ranking must reach on each file.
BAR = {"huffpost.jsonl": 0.575, "uci_stories.jsonl": 0.87}


@pytest.mark.parametrize("name", sorted(BAR))
def test_default_ranking_meets_the_quality_bar(name, model_encoder):
    path = DATA / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the evaluation data must sit in ../shared/data")
    settings = Settings.from_env({}).rank_for(model_encoder.model_id)  # as `recs build`
    assert settings.limit == 5 and settings.min_similarity is not None
    result = evaluate(path, model_encoder, settings, baselines=False)
    recs = result.methods["recs"]
    assert recs.precision >= BAR[name], result.table()
    assert recs.duplicates == 0.0, result.table()
    # The relevance floor may leave a list short rather than pad it: at most 1% of them.
    assert recs.coverage >= 0.99, result.table()
