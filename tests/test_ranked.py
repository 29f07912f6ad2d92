"""recs/ranked.py: what ranking produces: items, and a list with the rows it rests on."""

from __future__ import annotations

import math

from recs.ranked import PINNED, Basis, Item, Ranked


def a_list() -> Ranked:
    items = [
        Item(row=7, score=0.9, similarity=0.5, step=PINNED),
        Item(row=3, score=0.8, similarity=0.8, same_story=(4, 5)),
        Item(row=1, score=0.7, similarity=0.7, step=1),
    ]
    return Ranked(items, floor=0.2, basis=Basis(neighbours=(3, 9), bar=0.7))


def test_a_list_names_its_items_their_collapsed_duplicates_and_its_neighbours():
    assert a_list().named() == [7, 3, 1, 4, 5, 3, 9]
    assert Ranked([Item(2, 0.5, 0.5)], floor=-math.inf).named() == [2]


def test_renumbering_moves_every_row_a_list_names_and_nothing_else():
    moved = a_list().renumbered(lambda row: row + 100)
    assert moved.named() == [row + 100 for row in a_list().named()]
    assert [(i.score, i.similarity, i.step) for i in moved.items] == [
        (i.score, i.similarity, i.step) for i in a_list().items
    ]
    assert (moved.floor, moved.basis.bar, moved.kept) == (0.2, 0.7, False)
    kept = Ranked([], floor=0.1, kept=True).renumbered(lambda row: row)
    assert kept == Ranked([], floor=0.1, basis=None, kept=True)


def test_an_item_is_chosen_at_the_first_step_with_no_same_story_unless_told():
    item = Item(row=1, score=0.5, similarity=0.4)
    assert (item.step, item.same_story) == (0, ())
    assert PINNED < 0  # never a ladder step
