"""The suite's GX expectations evaluated on a chunk's slim frame with vectorised pandas/numpy,
as GX's own execution evaluates them.

GX's validation of a frame costs a fixed 150-300 ms however small the frame (metric graph,
resolution, result formatting) and re-reads every column per expectation: 20-100x the ingest of
a small source. These functions give, per expectation of the suite (citypipe.core.checks), what
GX's column map metrics give: how many values were looked at, how many were missing (where the
expectation counts them apart), and which rows are unexpected, with their values. The result a
run reports is built from these as GX builds it (citypipe.core.chunk_results.MapTotals);
tests/test_expectations.py holds them to GX's own results on the samples and generated frames.

Only the expectations and keyword arguments the check table uses are known: another one raises
rather than being evaluated wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Outcome", "evaluate"]


@dataclass(frozen=True)
class Outcome:
    """An expectation on one frame: `unexpected` the positions (rows) failing it, in order,
    `values` their values as GX lists them; `missing` the rows it skips as null, or None where
    the expectation does not count them apart (not-null: a null is what it looks for)."""

    element_count: int
    missing: int | None
    unexpected: np.ndarray
    values: list[Any]

    def summary(self) -> dict[str, Any]:
        """The counts and unexpected rows that `MapTotals.add` takes (GX's SUMMARY names)."""
        out: dict[str, Any] = {
            "element_count": self.element_count,
            "unexpected_count": len(self.unexpected),
            "partial_unexpected_index_list": self.unexpected.tolist(),
            "partial_unexpected_list": self.values,
        }
        if self.missing is not None:
            out["missing_count"] = self.missing
        return out


def _outcome(column: pd.Series, missing: np.ndarray | None, bad: np.ndarray) -> Outcome:
    at = np.flatnonzero(bad)
    return Outcome(
        element_count=len(column),
        missing=None if missing is None else int(missing.sum()),
        unexpected=at,
        values=column.iloc[at].tolist(),
    )


def _not_null(frame: pd.DataFrame, column: str) -> Outcome:
    values = frame[column]
    return _outcome(values, None, values.isna().to_numpy())


def _in_set(frame: pd.DataFrame, column: str, value_set: list[Any]) -> Outcome:
    values = frame[column]
    missing = values.isna().to_numpy()
    return _outcome(values, missing, ~missing & ~values.isin(value_set).to_numpy())


def _between(frame: pd.DataFrame, column: str, min_value: float, max_value: float) -> Outcome:
    values = frame[column]
    missing = values.isna().to_numpy()
    inside = ((values >= min_value) & (values <= max_value)).to_numpy()
    return _outcome(values, missing, ~missing & ~inside)


def _pair_equal(frame: pd.DataFrame, column_A: str, column_B: str, ignore_row_if: str) -> Outcome:
    if ignore_row_if != "either_value_is_missing":
        raise ValueError(f"ignore_row_if={ignore_row_if!r} is not evaluated")
    a, b = frame[column_A], frame[column_B]
    missing = (a.isna() | b.isna()).to_numpy()
    bad = np.zeros(len(frame), dtype=bool)
    bad[~missing] = (a[~missing].to_numpy() != b[~missing].to_numpy()).astype(bool)
    at = np.flatnonzero(bad)
    pairs = list(zip(a.iloc[at].to_numpy(), b.iloc[at].to_numpy(), strict=True))
    return Outcome(len(frame), int(missing.sum()), at, pairs)


EVALUATE: dict[str, Callable[..., Outcome]] = {
    "ExpectColumnValuesToNotBeNull": _not_null,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnValuesToBeBetween": _between,
    "ExpectColumnPairValuesToBeEqual": _pair_equal,
}
"""GX expectation class (great_expectations.expectations) -> its evaluation; the uniqueness
expectation is answered for the whole run instead (citypipe.core.chunk_results.RunUnique)."""


def evaluate(kind: str, kwargs: dict[str, Any], frame: pd.DataFrame) -> Outcome:
    """Evaluate the expectation of GX class `kind` with `kwargs` (as the check table gives
    them, citypipe.core.checks) on `frame`."""
    if kind not in EVALUATE:
        raise ValueError(f"{kind} has no vectorised evaluation in citypipe.core.expectations")
    return EVALUATE[kind](frame, **kwargs)
