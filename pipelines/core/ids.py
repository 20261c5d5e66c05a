"""Feature ids: stable across re-runs of an unchanged source, unique within a run.

A feature's id is `<source>/<the source's id>` where the record has one, else
`<source>/#<its number in the source>` (`#1`, `#2` ...), which an unchanged source, or a live
feed that keeps its order, keeps across runs. Generated ids have a namespace of their own: a
source's id that starts with `#` has it doubled (`##1`), so that no id of a source can be one
given to another record.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.seen_ids import SeenIds

__all__ = ["FeatureIds", "own_ids"]


def own_ids(ids: pa.Array) -> pa.Array:
    """A source's ids as they appear in feature ids: with a leading `#` doubled, as generated
    ids (`#1`) are the only ones that start with a single `#`."""
    doubled = pc.starts_with(ids, "#")
    if not pc.any(doubled).as_py():  # most sources: no id to double, nothing to join
        return ids
    return pc.if_else(doubled, pc.binary_join_element_wise("#", ids, ""), ids)


class FeatureIds:
    """Gives the records of one run's batches their feature ids, remembering the source's ids
    across batches to find the ones it repeats."""

    def __init__(self, source: str) -> None:
        self.prefix = f"{source}/"
        self._seen = SeenIds()
        self._records = 0

    def of(self, source_ids: pa.Array) -> pa.Array:
        """The feature ids of the records `source_ids` name elsewhere (a BuildingPart's parent)."""
        return pc.binary_join_element_wise(self.prefix, own_ids(source_ids), "")

    def __call__(self, source_ids: list[str | None]) -> tuple[pa.Array, list[str | None]]:
        """feature_ids of the next records, and a reason to reject where the source repeats
        an id."""
        first, n = self._records + 1, len(source_ids)
        self._records += n
        missing = source_ids.count(None)
        dups: list[str | None] = [None] * n
        if missing < n:
            own = [i for i, sid in enumerate(source_ids) if sid is not None] if missing else None
            named = cast("list[str]", [source_ids[i] for i in own] if own else source_ids)
            for k in self._seen.add(named):
                i = own[k] if own else k
                dups[i] = f"duplicate id {source_ids[i]!r} in the source"
        numbers = None
        if missing:  # numbers, which never repeat
            numbers = pa.array(np.arange(first, first + n)).cast(pa.string())
            numbers = pc.binary_join_element_wise(f"{self.prefix}#", numbers, "")
            if missing == n:
                return numbers, dups
        ids = self.of(pa.array(source_ids, pa.string()))
        return (ids if numbers is None else pc.coalesce(ids, numbers)), dups
