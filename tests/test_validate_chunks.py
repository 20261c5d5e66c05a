"""Validation in chunks: a run validated a few features at a time reports what one GX run over
all of its features reports (citypipe.core.chunk_results), with failures in several chunks."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import shapely
from gx_oracle import gx_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate import BOW_TIE, batch, row

from citypipe.core.chunk_results import PARTIAL, RunUnique
from citypipe.core.validate import Validator


def _rows() -> list[dict[str, Any]]:
    """30 features; failures of every row-level check, spread so that chunks of 4 split them:
    ids repeated within a chunk and across chunks (t/1 three times), a null id, themes outside
    the vocabulary, a longitude of 200, a latitude of -95, a bow tie."""
    rows = [row(i) for i in range(30)]
    rows[2] = row(2, feature_id="t/1")  # same chunk as t/1
    rows[9] = row(9, feature_id="t/1", theme="foo")  # a later chunk, and a second failure
    rows[13] = row(13, feature_id=None)
    rows[17] = row(17, feature_id="t/4")
    rows[21] = row(21, theme="bar")
    rows[22] = row(22, geom=shapely.Point(200, 50))
    rows[25] = row(25, geom=shapely.Point(11, -95))
    rows[27] = row(27, geom=BOW_TIE, feature_id="t/13")  # t/13's row has a null id: no repeat
    rows[29] = row(29, feature_id="t/17")  # row 17 took t/4: t/17 is new
    return rows


def _run(rows: list[dict[str, Any]], per_batch: int, chunk_rows: int) -> Validator:
    v = Validator("t", chunk_rows=chunk_rows)
    for i in range(0, len(rows), per_batch):
        v.add(batch(*rows[i : i + per_batch]))
    v.finish(records=len(rows), features=len(rows), rejects=0, declared_count=None)
    return v


def _plain(value: Any) -> Any:
    """A result as JSON reads it (NaN as null), so that NaN equals NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _by_expectation(results: list[Any]) -> dict[tuple[str, str], tuple[bool, Any]]:
    out = {}
    for r in results:
        config = r.expectation_config
        key = (config.meta["citypipe_check"], config.kwargs.get("column", ""))
        out[key] = (bool(r.success), _plain(r.result))
    return out


def _whole(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[bool, Any]]:
    """What GX itself says of the row-level checks over every row at once (the one-run way)."""
    v = Validator("t")
    return _by_expectation(gx_validate(v._frame(batch(*rows)), v._row))


def test_chunks_report_what_one_run_reports():
    rows = _rows()
    one = _run(rows, per_batch=3, chunk_rows=len(rows))  # one GX run at finish
    whole = _whole(rows)
    for per_batch, chunk_rows in ((3, 4), (1, 1), (5, 7), (30, 4)):
        v = _run(rows, per_batch, chunk_rows)
        checks = v.finish(records=30, features=30, rejects=0, declared_count=None)
        assert checks == one.finish(records=30, features=30, rejects=0, declared_count=None)
        merged = _by_expectation(v._result.results)
        table = merged.pop(("matches_declared_count", ""))
        assert table[0]
        assert merged == whole, (per_batch, chunk_rows)
        assert v._result.success is False
        assert v._result.statistics == one._result.statistics
    by_name = {c.name: c for c in checks}
    unique = by_name["feature_id_unique"]
    assert unique.failed == 3  # t/1 twice more (rows 2 and 9), t/4 once more (row 17)
    assert unique.samples == [
        f"t/{i}: feature_id 't/{i}' is not unique: an earlier row of this run has it"
        for i in (1, 1, 4)
    ]
    assert whole[("feature_id_unique", "feature_id")][1]["unexpected_count"] == 5
    assert by_name["theme_in_vocabulary"].samples == [
        "t/1: theme 'foo' is not in the vocabulary",
        "t/21: theme 'bar' is not in the vocabulary",
    ]
    assert by_name["feature_id_not_null"].failed == 1
    assert by_name["bbox_lon_range"].failed == by_name["bbox_lat_range"].failed == 1
    assert by_name["geometry_valid"].samples[0].startswith("t/13: geometry is not valid")


def test_samples_stop_at_five_over_chunks():
    rows = [row(i, theme="foo" if i % 3 == 0 else "parking") for i in range(24)]
    v = Validator("t", chunk_rows=4)
    for i in range(0, 24, 2):
        v.add(batch(*rows[i : i + 2]))
    theme = {c.name: c for c in v.finish(records=24, features=24, rejects=0, declared_count=24)}
    assert theme["theme_in_vocabulary"].failed == 8
    assert theme["theme_in_vocabulary"].samples == [
        f"t/{i}: theme 'foo' is not in the vocabulary" for i in (0, 3, 6, 9, 12)
    ]


def test_docs_of_a_chunked_run(tmp_path):
    v = _run(_rows(), per_batch=3, chunk_rows=4)
    v.write_docs(tmp_path / "docs")
    [stored] = (tmp_path / "docs" / "results").rglob("*.json")
    result = json.loads(stored.read_text())
    unique = next(
        r for r in result["results"]
        if r["expectation_config"]["meta"]["citypipe_check"] == "feature_id_unique"
    )  # fmt: skip
    assert unique["result"]["unexpected_count"] == 5
    assert unique["result"]["partial_unexpected_list"] == ["t/1", "t/1", "t/4", "t/1", "t/4"]
    [page] = (tmp_path / "docs" / "validations").rglob("*.html")
    assert "t/1" in page.read_text() and "t/4" in page.read_text()


# -- the whole-run uniqueness on its own, against pandas ------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from("abcdefghij")), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_run_unique_is_pandas_over_the_whole_run(values, cuts):
    series = pd.Series(values, dtype=object)
    bounds = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    unique = RunUnique()
    repeats: list[int] = []
    for lo, hi in itertools.pairwise(bounds):
        repeats += [lo + i for i in unique.add(series.iloc[lo:hi].reset_index(drop=True))]
    present = series.notna()
    assert repeats == list(series.index[series.duplicated() & present])
    copies = series[series.duplicated(keep=False) & present]
    success, result = unique.result()
    assert success == copies.empty
    assert result["element_count"] == len(values)
    assert result["missing_count"] == len(values) - int(present.sum())
    assert result["unexpected_count"] == len(copies)
    assert result["partial_unexpected_index_list"] == list(copies.index[:PARTIAL])
    assert result["partial_unexpected_list"] == list(copies[:PARTIAL])


def test_empty_chunks(tmp_path):
    unique = RunUnique()
    assert unique.add(pd.Series([], dtype=object)) == []
    assert unique.add(pd.Series([None, None], dtype=object)) == []
    assert unique.result() == (True, unique.totals.result())
    assert unique.totals.result()["missing_count"] == 2


@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_empty_run_in_chunks(chunk_rows):
    v = Validator("t", chunk_rows=chunk_rows)
    v.add(pa.RecordBatch.from_pylist([], schema=batch().schema))
    checks = v.finish(records=0, features=0, rejects=0, declared_count=None)
    assert all(c.passed for c in checks)
