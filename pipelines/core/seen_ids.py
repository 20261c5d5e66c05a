"""Which ids a run has seen, in 8 bytes an id, so uniqueness costs little memory on large sources.

Ids are kept as Python's 64-bit string hashes (salted per process, which is all a run needs) in
one sorted numpy array; two different ids share a hash with a probability of about n² / 2⁶⁵
(one in 36 million for a million features). A small first batch's hashes wait in a list until
a second batch comes: a source read in one small batch (every small file) never sorts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SeenIds"]


SMALL = 4096
"""A first batch of fewer ids, each once, is told so by a set of their hashes, kept in a list:
inside an ingest numpy's fromiter, sort and comparisons cost some 0.1 ms more (their code
cold), on batches of a few hundred ids."""


class SeenIds:
    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.int64)
        self._repeats: dict[int, int] = {}
        self._first: list[int] | None = None
        """The hashes of a small first batch of ids each once, not yet in `_sorted`."""

    def add(self, ids: Sequence[str]) -> list[int]:
        """Record `ids`; the positions of those seen before, earlier in `ids` or in an earlier
        call (none, mostly: the common case takes a sort and two comparisons)."""
        if self._first is None and not len(self._sorted) and len(ids) < SMALL:
            first = list(map(hash, ids))
            if len(set(first)) == len(first):
                self._first = first
                return []
        elif self._first is not None:
            self._sorted = np.sort(np.array(self._first, dtype=np.int64))
            self._first = None
        hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
        ordered = np.sort(hashes)
        each_once = not (ordered[1:] == ordered[:-1]).any()
        if each_once and not len(self._sorted):  # a first batch
            self._sorted = ordered
            return []
        pos = np.searchsorted(self._sorted, ordered)
        known = pos < len(self._sorted)
        known[known] = self._sorted[pos[known]] == ordered[known]
        if each_once and not known.any():  # all new
            self._sorted = np.insert(self._sorted, pos, ordered)
            return []
        old = set(ordered[known].tolist())
        repeats: list[int] = []
        for i, h in enumerate(hashes.tolist()):
            n = self._repeats.get(h, 1 if h in old else 0) + 1
            self._repeats[h] = n
            if n > 1:
                repeats.append(i)
        new = np.unique(ordered[~known])
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)
        return repeats
