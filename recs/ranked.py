"""What ranking produces: a list's items, the list with what proves it unchanged, and the
shapes of a search and of a ranking job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from recs.progress import Progress, no_progress

PINNED = -1  # the `step` of a pinned item


class Item(NamedTuple):
    """One item of a related list.

    `score` is the value the list is ordered by (the ordering value of recs.scoring, kept
    non-increasing down the list: see `recs.rank.scored`); `similarity` the plain cosine of
    the two articles; `step` the fallback ladder step it was chosen at (recs.select.LADDER;
    PINNED for a pin); `same_story` the rows of the duplicates collapsed into it.

    Items and bases are named tuples, not frozen dataclasses: loading a 10,000-article
    store builds 50,000 items, and publishing compares every list with the one before;
    as named tuples decoding the lists took 55 ms instead of 80, comparing them 2 ms
    instead of 8, and with `recs.catalog.Facts` a 1% rebuild took 0.95x the time
    (docs/performance.md).
    """

    row: int
    score: float
    similarity: float
    step: int = 0
    same_story: tuple[int, ...] = ()


class Basis(NamedTuple):
    """What a plainly filled list rested on: enough to prove that a change leaves it alone.

    Kept for a list filled on the first search, at the strictest ladder step, greedily
    (no MMR), without pins and without a duplicate-group swap: with the default settings,
    nearly every list. See `still`.
    """

    neighbours: tuple[int, ...]  # the rows the query was moved towards (expand_neighbours)
    bar: float  # the ordering value (adjusted score) of the last item chosen


@dataclass(frozen=True)
class Ranked:
    """A related list and the lowest cosine of the candidates it looked at.

    `floor` is what incremental updates need: an article whose cosine with this one is
    below the floor cannot change this list. -inf means every article was looked at.
    `basis`, when known, lets an update prove the list unchanged without ranking it again.
    """

    items: list[Item]
    floor: float
    basis: Basis | None = None
    kept: bool = False  # proved unchanged by `still` rather than ranked again

    def named(self) -> list[int]:
        """Every row the list rests on: its items, the duplicates collapsed into them and
        the neighbours its query was moved towards."""
        rows = [item.row for item in self.items]
        rows += [row for item in self.items for row in item.same_story]
        return rows + list(self.basis.neighbours if self.basis is not None else ())

    def renumbered(self, new_row: Callable[[int], int]) -> Ranked:
        """The same list with every row it names renumbered by `new_row`."""
        items = [
            item._replace(
                row=new_row(item.row), same_story=tuple(new_row(r) for r in item.same_story)
            )
            for item in self.items
        ]
        basis = self.basis
        if basis is not None:
            basis = Basis(tuple(new_row(r) for r in basis.neighbours), basis.bar)
        return Ranked(items, self.floor, basis, self.kept)


Search = Callable[[int], np.ndarray]  # k -> up to k distinct rows, best first (may hold -1)


class RankJob(Protocol):
    """The ranking of some rows: (rows, progress) -> their lists. Picklable, so an engine
    can run it in another process or on another machine (recs.related.CorpusJob)."""

    def __call__(
        self, rows: Sequence[int], progress: Progress = no_progress
    ) -> dict[int, Ranked]: ...

    def share(self) -> None:
        """Build, before an engine forks its workers, what each would build again."""
