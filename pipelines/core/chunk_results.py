"""One run's GX results from the results of its chunks, so that validation holds one chunk of a
large source at a time and still reports what a single GX run over the whole source reports.

A row-level (column map) expectation's result adds up over chunks: counts are summed, the
first PARTIAL unexpected rows kept (GX's SUMMARY format keeps as many), the percentages
recomputed from the sums as GX computes them. Uniqueness does not add up (a value may repeat
in a later chunk): `RunUnique` answers it for the whole run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PARTIAL", "MapTotals", "RunUnique"]

PARTIAL = 20
"""Unexpected values a SUMMARY result lists (GX's default partial_unexpected_count)."""


@dataclass
class MapTotals:
    """A column map expectation's counts over the chunks of a run, and its first PARTIAL
    unexpected rows as (row of the run, value)."""

    element: int = 0
    missing: int | None = None
    """Null values, where the expectation counts them apart (not_null does not)."""
    unexpected: int = 0
    partial: list[tuple[int, Any]] = field(default_factory=list)

    def add(self, result: Mapping[str, Any], offset: int) -> None:
        """Add the SUMMARY result of a chunk whose first row is row `offset` of the run."""
        self.element += result["element_count"]
        self.unexpected += result["unexpected_count"]
        if "missing_count" in result:
            self.missing = (self.missing or 0) + result["missing_count"]
        rows = [offset + i for i in result["partial_unexpected_index_list"]]
        self.keep(zip(rows, result["partial_unexpected_list"], strict=True))

    def keep(self, unexpected: Any) -> None:
        """Keep the first PARTIAL of the unexpected rows known and `unexpected`."""
        self.partial = sorted([*self.partial, *unexpected], key=lambda r: r[0])[:PARTIAL]

    def result(self) -> dict[str, Any]:
        """The result as GX gives it for the whole run at once (SUMMARY format; the fields and
        arithmetic of great_expectations' `_format_map_output`)."""
        n, bad = self.element, self.unexpected
        total = bad / n * 100 if n else None
        values = [v for _, v in self.partial]
        out: dict[str, Any] = {
            "element_count": n,
            "unexpected_count": bad,
            "unexpected_percent": total,
            "partial_unexpected_list": values,
        }
        if self.missing is not None:
            nonnull = n - self.missing
            share = bad / nonnull * 100 if n and nonnull else None
            out["unexpected_percent"] = share
            out["missing_count"] = self.missing
            out["missing_percent"] = self.missing / n * 100 if n else None
            out["unexpected_percent_total"] = total
            out["unexpected_percent_nonmissing"] = share
        try:  # GX leaves the counts out where the values do not sort
            out["partial_unexpected_counts"] = [
                {"value": v, "count": c}
                for v, c in sorted(
                    Counter(values).most_common(PARTIAL), key=lambda x: (-x[1], x[0])
                )
            ]
        except TypeError:
            pass
        out["partial_unexpected_index_list"] = [i for i, _ in self.partial]
        return out


class RunUnique:
    """Whether a column's values repeat anywhere in a run read chunk by chunk.

    GX's uniqueness expectation sees one chunk; a value may repeat in a later one. Harmonise
    guarantees unique feature ids already (its SeenIds), but the suite checks rather than
    trusts it, so this keeps what a whole-run answer needs and no more: per distinct value its
    64-bit hash (salted per process, which is all one run needs), the row that first had it and
    whether it repeated, 17 bytes a feature (10 MB for 600,000) in sorted numpy arrays. Two
    different values share a hash with a probability of about n² / 2⁶⁵ (one in 36 million for
    a million features); they would be reported as a repeat.
    """

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.int64)
        self._first = np.empty(0, dtype=np.int64)
        self._repeated = np.empty(0, dtype=bool)
        self.totals = MapTotals(missing=0)

    def add(self, values: pd.Series) -> list[int]:
        """Record the next chunk's values; the positions in `values` of the rows repeating the
        value of an earlier row of the run (the first row with a value passes)."""
        offset, totals = self.totals.element, self.totals
        at = np.flatnonzero(values.notna().to_numpy())
        present = values.to_numpy()[at]
        hashes = np.fromiter(map(hash, present), dtype=np.int64, count=len(at))
        order = np.argsort(hashes, kind="stable")  # copies of a value in row order
        ordered = hashes[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        pos = np.searchsorted(self._hashes, ordered)
        known = pos < len(self._hashes)
        known[known] = self._hashes[pos[known]] == ordered[known]
        repeats = known | ~first
        new = first & ~known
        # rows that have a copy now and had none: the first row of an earlier chunk's value
        # repeated in this one, and the first row of a new value repeated within this chunk
        earlier = np.unique(pos[known])
        earlier = earlier[~self._repeated[earlier]]
        again = np.zeros(len(ordered), dtype=bool)
        again[:-1] = ~first[1:]
        totals.element += len(values)
        totals.missing = (totals.missing or 0) + len(values) - len(at)
        totals.unexpected += int(repeats.sum()) + len(earlier) + int((new & again).sum())
        self._keep_partial(offset, at[order], present[order], repeats | (new & again), earlier)
        self._repeated[earlier] = True
        self._hashes = np.insert(self._hashes, pos[new], ordered[new])
        self._first = np.insert(self._first, pos[new], offset + at[order[new]])
        self._repeated = np.insert(self._repeated, pos[new], again[new])
        return sorted(at[order[repeats]].tolist())

    def _keep_partial(
        self, offset: int, rows: np.ndarray, values: np.ndarray, copies: np.ndarray,
        earlier: np.ndarray,
    ) -> None:  # fmt: skip
        """Offer the first PARTIAL rows with a copy to the totals: of this chunk (`rows` and
        `values` in hash order, `copies` a mask of them), and the first rows, in earlier
        chunks, of values in `earlier` (positions of the run's values) that repeat now."""
        mine = np.flatnonzero(copies)
        mine = mine[np.argsort(rows[mine], kind="stable")[:PARTIAL]]
        earlier = earlier[np.argsort(self._first[earlier], kind="stable")[:PARTIAL]]
        value = {hash(v): v for v in values[copies]}
        self.totals.keep(
            [(offset + int(rows[i]), values[i]) for i in mine]
            + [(int(self._first[p]), value[int(self._hashes[p])]) for p in earlier]
        )

    def result(self) -> tuple[bool, dict[str, Any]]:
        """Success and the SUMMARY result of the run, as GX's uniqueness expectation gives
        them over the whole run at once."""
        return self.totals.unexpected == 0, self.totals.result()
