"""Which ids a run has seen, in 8 bytes an id, so uniqueness costs little memory on large sources.

Ids are kept as Python's 64-bit string hashes (salted per process, which is all a run needs) in
one sorted numpy array; two different ids share a hash with a probability of about n² / 2⁶⁵
(one in 36 million for a million features).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SeenIds"]


class SeenIds:
    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.int64)
        self._repeats: dict[int, int] = {}

    def add(self, ids: Sequence[str]) -> np.ndarray:
        """Record `ids`; for each, how many times it has now been seen (1 the first time)."""
        hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
        ordered = np.sort(hashes)
        if not len(self._sorted) and not (ordered[1:] == ordered[:-1]).any():  # a first batch, each once
            self._sorted = ordered
            return np.ones(len(ids), dtype=np.int64)
        pos = np.searchsorted(self._sorted, ordered)
        known = pos < len(self._sorted)
        known[known] = self._sorted[pos[known]] == ordered[known]
        if not known.any() and not (ordered[1:] == ordered[:-1]).any():  # all new, each once
            self._sorted = np.insert(self._sorted, pos, ordered)
            return np.ones(len(ids), dtype=np.int64)
        old = set(ordered[known].tolist())
        seen: list[int] = []
        for h in hashes.tolist():
            n = self._repeats.get(h, 1 if h in old else 0) + 1
            self._repeats[h] = n
            seen.append(n)
        new = np.unique(ordered[~known])
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)
        return np.array(seen, dtype=np.int64)
