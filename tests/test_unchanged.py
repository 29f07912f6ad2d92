"""Proving lists unchanged: an incremental build equals a full one under every setting.

The settings are drawn from the fields of RankSettings themselves (their types and
bounds), so an option added tomorrow is exercised by these tests the day it is added; a
field this file cannot draw a value for fails `test_every_option_can_be_drawn`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recs import scoring
from recs.rank_settings import RankSettings
from recs.related import link_all, link_changes
from recs.unchanged import PROOF_COVERS, vouches_for
from tests.test_rank import make_articles
from tests.test_related import clustered_vectors, nudge, twins

DAY = 86_400.0
# One small vocabulary for every text filter: the corpus below uses it for providers,
# types and topics, so a drawn filter always has something to keep or leave out.
WORDS = ("a", "b", "c")
START = 1_600_000_000.0
N = 160


def corpus(seed: int) -> tuple[list, np.ndarray]:
    """Articles whose providers, types, topics, categories, dates, quality and drafts vary,
    over clustered vectors with near-duplicates."""
    rng = np.random.default_rng(seed)
    overrides = {
        i: {
            "provider": {"name": WORDS[i % 3], "domain": "a.com"},
            "type": WORDS[(i // 3) % 3],
            "topics": [WORDS[j] for j in range(3) if rng.random() < 0.4],
            "category": WORDS[i % 2],
            "published": bool(rng.random() > 0.1),
        }
        for i in range(N)
    }
    articles = [
        replace(a, published_ts=START + float(rng.integers(0, 60)) * DAY)
        for a in make_articles(N, overrides=overrides)
    ]
    return articles, twins(N, seed)


def _number(spec, draw_low: float, draw_high: float):
    """Values of a numeric option within its bounds (and a range the corpus exercises)."""
    meta = spec.metadata
    low = meta.get("low") if meta.get("low") is not None else meta.get("above")
    high = meta.get("high")
    low = draw_low if low is None else max(low, draw_low)
    high = draw_high if high is None else min(high, draw_high)
    if meta.get("above") is not None and low <= meta["above"]:
        low = meta["above"] + (high - meta["above"]) / 10
    return low, high


def strategy_for(spec) -> st.SearchStrategy:
    """Values of one RankSettings field, from its type and bounds."""
    hint = typing.get_type_hints(RankSettings)[spec.name]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    request = spec.metadata.get("request")
    if base is bool:
        values: st.SearchStrategy = st.booleans()
    elif typing.get_origin(base) is typing.Literal:
        values = st.sampled_from(typing.get_args(base))
    elif base is int:
        low, high = _number(spec, 0, 8)
        values = st.integers(int(low), int(high))
    elif base is float and request == "date":
        values = st.floats(START, START + 60 * DAY)
    elif base is float and request == "days":
        values = st.sampled_from([5.0, 20.0, 45.0])
    elif base is float:
        low, high = _number(spec, -0.2, 2.0)
        values = st.floats(low, high, allow_nan=False)
    elif typing.get_origin(base) is tuple and request == "url":
        values = st.lists(st.integers(0, N - 1), max_size=3).map(
            lambda rows: tuple(f"https://a.com/{r:03d}" for r in rows)
        )
    elif typing.get_origin(base) is tuple:
        values = st.lists(st.sampled_from(WORDS), max_size=2, unique=True).map(tuple)
    else:
        raise LookupError(f"no way to draw RankSettings.{spec.name} ({hint}): add one here")
    return st.none() | values if optional else values


# Options whose drawn value would make every list a full ranking of the corpus (it is
# small): the pool is kept small, so that lists have floors and bases to prove with.
SMALL = {"pool": st.integers(3, 25), "limit": st.integers(1, 6)}


@st.composite
def rank_settings(draw) -> RankSettings:
    """A RankSettings with every field drawn (a field left out would never be tested)."""
    values = {}
    for spec in fields(RankSettings):
        strategy = SMALL[spec.name] if spec.name in SMALL else strategy_for(spec)
        values[spec.name] = draw(strategy)
    return RankSettings(**values)


def test_every_option_can_be_drawn():
    for spec in fields(RankSettings):
        strategy_for(spec)  # raises for a field of a kind this file does not know


def edit_rounds_equal_full_builds(articles, vectors, rank, seed, rounds=2, edits=4, step=0.1):
    """Rounds of small edits, each linked incrementally from the last (with the clock
    moving a day a round): always a full build's lists, floors and bases."""
    now = START + 30 * DAY
    lists = link_all(articles, vectors, rank, now=now)
    for round_ in range(rounds):
        new_articles, new_vectors = nudge(articles, vectors, seed + round_, edits, step)
        later = now + DAY
        lists = link_changes(
            articles, vectors, lists, new_articles, new_vectors, rank, now=later, old_now=now
        )
        full = link_all(new_articles, new_vectors, rank, now=later)
        assert lists.related == full.related
        assert np.array_equal(lists.floors, full.floors)
        assert lists.bases == full.bases
        articles, vectors, now = new_articles, new_vectors, later


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rank=rank_settings(), seed=st.integers(0, 1000))
def test_incremental_equals_full_under_any_settings(rank, seed):
    articles, vectors = corpus(seed)
    edit_rounds_equal_full_builds(articles, vectors, rank, seed)


def test_the_proof_keeps_most_lists_with_the_defaults():
    """Under the default settings the proof is on (or incremental builds would rank every
    reached list: right, but slow)."""
    rank = RankSettings(pool=20)
    assert vouches_for(rank)
    articles = make_articles(600)
    vectors = clustered_vectors(600, 4, dim=32)
    before = link_all(articles, vectors, rank)
    edited, moved = nudge(articles, vectors, 8, 6, 0.1)
    after = link_changes(articles, vectors, before, edited, moved, rank)
    assert after.related == link_all(edited, moved, rank).related
    assert after.recomputed < 100


@dataclass(frozen=True)
class WithBonus(RankSettings):
    """A newcomer's option, added the obvious way: a field, and a term in the ordering."""

    bonus: float = field(default=0.3, metadata={"doc": "bonus for topic a", "request": None})


def test_a_new_option_added_the_obvious_way_keeps_incremental_equal_to_full(monkeypatch):
    """The trap of old: an option added as a field and one term of the ordering value
    left incremental builds stale. The term goes into the one ordering function both sides
    call, and the proof refuses a setting it does not know; either alone would do."""
    plain = scoring.order_values

    def with_bonus(catalog, rows, base, s, query_ts, query_tags):
        values = plain(catalog, rows, base, s, query_ts, query_tags)
        bonus = getattr(s, "bonus", 0.0)
        return values + bonus * np.array([("a" in catalog.topics[r]) for r in rows.tolist()])

    monkeypatch.setattr(scoring, "order_values", with_bonus)
    monkeypatch.setattr("recs.select.order_values", with_bonus)
    monkeypatch.setattr("recs.unchanged.order_values", with_bonus)
    rank = WithBonus(pool=12, limit=4)
    assert not vouches_for(rank)  # "bonus" is not in PROOF_COVERS
    articles, vectors = corpus(7)
    edit_rounds_equal_full_builds(articles, vectors, rank, 7, rounds=3)
    # Even with the proof told it covers the new option, the lists stay right: the term is
    # in the function the proof checks with.
    monkeypatch.setattr("recs.unchanged.PROOF_COVERS", PROOF_COVERS | {"bonus"})
    assert vouches_for(rank)
    edit_rounds_equal_full_builds(articles, vectors, rank, 11, rounds=3)


@pytest.mark.parametrize("name", sorted(f.name for f in fields(RankSettings)))
def test_the_proof_names_every_option(name):
    """Each option is accounted for by the proof (its comment says how): a new one is
    refused until then (test_a_new_option_added_the_obvious_way_...)."""
    assert name in PROOF_COVERS
