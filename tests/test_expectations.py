"""The vectorised evaluation of the suite (citypipe.core.expectations) reports what GX's own
execution reports (tests/gx_oracle.py): on every source of the sample catalog, validated in
chunks, and on generated frames with nulls, NaN, infinities and values out of range."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from gx_oracle import gx_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors import registry
from citypipe.core.catalog import load_catalog
from citypipe.core.checks import bound_checks
from citypipe.core.expectations import evaluate
from citypipe.core.harmonise import Harmoniser
from citypipe.core.validate import Validator

CATALOG = load_catalog()


def _plain(value: Any) -> Any:
    """A result as its JSON reads (NaN as null, numpy scalars and tuples as Python values)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _by_expectation(results: list[Any]) -> dict[tuple[str, str], tuple[bool, Any]]:
    out = {}
    for r in results:
        kwargs = r.expectation_config.kwargs
        key = (r.expectation_config.meta["citypipe_check"], kwargs.get("column", ""))
        out[key] = (bool(r.success), _plain(r.result))
    return out


def _counts(records: int, declared: int | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "records": pd.array([records], dtype="Int64"),
            "declared_count": pd.array([declared], dtype="Int64"),
        }
    )


@pytest.mark.parametrize("name", [s.name for s in CATALOG.sources])
def test_a_sample_source_validated_in_chunks_reports_what_gx_reports(name):
    source = CATALOG.get(name)
    args = source.ingest_arguments()
    connector = registry.open_location(source.location, args["format"], **args["options"])
    info = connector.inspect()
    harmoniser = Harmoniser(
        source=name, source_format=info.label, ingested_at=datetime.now(UTC), run_id="r",
        theme=args["theme"], crs=args["crs"], axis_order=args["axis_order"],
        fields=dict(args["fields"]), path=str(source.location),
    )  # fmt: skip
    v = Validator(name, chunk_rows=40)
    frames, records, features, rejects = [], 0, 0, 0
    for batch in connector.read():
        out = harmoniser.harmonise(batch)
        records, rejects = records + len(batch), rejects + len(out.rejects)
        features += out.features.num_rows
        v.add(out.features)
        frames.append(v._frame(out.features))
    assert features, name  # every sample source lands features
    v.finish(
        records=records, features=features, rejects=rejects, declared_count=info.declared_count
    )
    row = [b for b in bound_checks() if not b.check.table]
    table = [b for b in bound_checks() if b.check.table]
    frame = pd.concat(frames, ignore_index=True)
    counts = _counts(features + rejects, info.declared_count)
    whole = gx_validate(frame, row) + gx_validate(counts, table)
    assert _by_expectation(v._result.results) == _by_expectation(whole)
    assert v._result.success == all(r.success for r in whole)


NUMBERS = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-400, 400)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(NUMBERS, max_size=30))
def test_between_on_generated_values(values):
    [lon] = [b for b in bound_checks() if b.spec.name == "bbox_lon_range"]
    frame = pd.DataFrame(
        {c: np.array([np.nan if v is None else v for v in values], dtype="float64")
         for c in ("bbox_xmin", "bbox_xmax")}
    )  # fmt: skip
    oracle = _by_expectation(gx_validate(frame, [lon]))
    for cls, kwargs in lon.expectations():
        outcome = evaluate(cls, kwargs, frame)
        success, result = oracle[(lon.spec.name, kwargs["column"])]
        assert success == (len(outcome.unexpected) == 0)
        assert result["unexpected_count"] == len(outcome.unexpected)
        assert result["missing_count"] == outcome.missing
        assert result["partial_unexpected_index_list"] == outcome.unexpected.tolist()[:20]
        assert result["partial_unexpected_list"] == _plain(outcome.values[:20])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(st.one_of(st.none(), st.text("ab/1", max_size=3)), max_size=30),
    themes=st.lists(st.one_of(st.none(), st.sampled_from(["parking", "foo", "water", ""]))),
)
def test_not_null_and_in_set_on_generated_values(ids, themes):
    n = min(len(ids), len(themes))
    frame = pd.DataFrame({"feature_id": ids[:n], "theme": themes[:n]}, dtype="str")
    checks = [
        b for b in bound_checks() if b.spec.name in ("feature_id_not_null", "theme_in_vocabulary")
    ]
    oracle = _by_expectation(gx_validate(frame, checks))
    for b in checks:
        [(cls, kwargs)] = b.expectations()
        outcome = evaluate(cls, kwargs, frame)
        success, result = oracle[(b.spec.name, kwargs["column"])]
        assert success == (len(outcome.unexpected) == 0)
        assert result["unexpected_count"] == len(outcome.unexpected)
        assert result.get("missing_count") == outcome.missing
        assert result["partial_unexpected_list"] == _plain(outcome.values[:20])


@pytest.mark.parametrize(("records", "declared"), [(5, 5), (5, None), (5, 4), (0, 0), (0, 3)])
def test_declared_count_reports_what_gx_reports(records, declared):
    [b] = [b for b in bound_checks() if b.check.table]
    [(cls, kwargs)] = b.expectations()
    counts = _counts(records, declared)
    [oracle] = gx_validate(counts, [b])
    outcome = evaluate(cls, kwargs, counts)
    assert oracle.success == (len(outcome.unexpected) == 0)
    assert oracle.result["missing_count"] == outcome.missing
    assert _plain(oracle.result["partial_unexpected_list"]) == _plain(outcome.values)


def test_an_expectation_without_an_evaluation_is_refused():
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(ValueError, match="ExpectColumnMeanToBeBetween"):
        evaluate("ExpectColumnMeanToBeBetween", {"column": "x"}, frame)
    with pytest.raises(TypeError):  # an argument it does not know
        evaluate("ExpectColumnValuesToNotBeNull", {"column": "x", "mostly": 0.5}, frame)
