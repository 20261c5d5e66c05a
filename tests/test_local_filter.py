"""The CQL2 filter citypipe applies itself (services that cannot filter): its meaning on
properties, and batches cut alike in every aligned sequence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oapif_service import FEATURES

from citypipe.connectors.base import Observation, SourceBatch
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.local_filter import PropertyFilter
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.types import Points

values = st.one_of(st.none(), st.integers(-50, 50), st.text(max_size=3))


@settings(deadline=None)  # the first example imports pygeofilter
@given(st.dictionaries(st.sampled_from(["storeys", "units"]), values), st.integers(-50, 50))
def test_a_comparison_matches_only_numbers_that_satisfy_it(props: dict[str, Any], k: int):
    """CQL2: a comparison with a null, a missing or a text value is not true."""
    n = props.get("storeys")
    expected = isinstance(n, int) and n > k
    assert PropertyFilter(f"storeys > {k}").matches(props) == expected
    assert PropertyFilter(f"NOT storeys > {k}").matches(props) == (isinstance(n, int) and n <= k)


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("region = 'Pfalz'", ["810601", "821717"]),
        ("name LIKE 'R%'", ["821717"]),  # Römerstraße
        ("village IN ('Sponheim', 'Edesheim')", ["810601", "511431"]),
        ("subregion = 'Bereich Nahetal' OR cluster = 'Ordensgut'", ["810601", "511431"]),
        ("nonexistent IS NULL", ["810601", "821717", "511431"]),
        ("area_ha = '54.0'", ["821717"]),  # ldproxy serves area_ha as text
    ],
)
def test_vineyards_matching_a_filter(expression: str, ids: list[str]) -> None:
    kept = [str(f["id"]) for f in FEATURES if PropertyFilter(expression).matches(f["properties"])]
    assert kept == ids


def test_a_batch_is_cut_alike_in_every_aligned_sequence() -> None:
    (batch,) = page_batches({}, FEATURES)
    cut = PropertyFilter("region = 'Pfalz'").select(batch)
    assert list(cut.source_ids) == ["810601", "821717"]
    assert [p["name"] for p in cut.properties] == ["Forst", "Römerstraße"]
    assert [r["id"] for r in cut.records] == [810601, 821717]
    assert len(cut.geometries) == 2 and cut.geometries[1].equals(batch.geometries[1])
    assert cut.crs == batch.crs and cut.default_crs == batch.default_crs


def test_a_points_batch_keeps_its_coordinates_with_their_records() -> None:
    xy = np.array([[7.0, 49.0], [8.0, 50.0], [9.0, 51.0]])
    batch = SourceBatch(
        source_ids=["a", "b", "c"],
        geometries=Points(xy),
        properties=[{"rank": 1}, {"rank": 2}, {"rank": 3}],
        records=["ra", "rb", "rc"],
        crs="OGC:CRS84",
        name=["A", "B", "C"],
    )
    cut = PropertyFilter("rank >= 2").select(batch)
    assert isinstance(cut.geometries, Points)
    assert cut.geometries.xy.tolist() == [[8.0, 50.0], [9.0, 51.0]]
    assert list(cut.name or []) == ["B", "C"] and list(cut.records) == ["rb", "rc"]


def test_observations_stay_with_their_records_renumbered() -> None:
    batch = SourceBatch(
        source_ids=["a", "b", "c"],
        geometries=Points(np.array([[7.0, 49.0], [8.0, 50.0], [9.0, 51.0]])),
        properties=[{"rank": 1}, {"rank": 2}, {"rank": 3}],
        records=["ra", "rb", "rc"],
        crs="OGC:CRS84",
        observations=[
            Observation(0, "NO2", 10.0, None, "GQ", None),
            Observation(2, "NO2", 30.0, None, "GQ", None),
            Observation(1, "level", None, "high", None, "2016-03-15T11:00:00Z"),
            Observation(2, "CO", 3.0, None, "GP", None, "urn:x"),
        ],
    )
    cut = PropertyFilter("rank >= 2").select(batch)
    assert list(cut.observations) == [
        Observation(1, "NO2", 30.0, None, "GQ", None),
        Observation(0, "level", None, "high", None, "2016-03-15T11:00:00Z"),
        Observation(1, "CO", 3.0, None, "GP", None, "urn:x"),
    ]


def test_what_is_not_cql2_or_not_on_properties_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not CQL2 text"):
        PropertyFilter("region == 'Pfalz'")
    for expression in (
        "S_INTERSECTS(geometry, POINT(7 49))",
        "S_WITHIN(geometry, POLYGON((7 49, 8 49, 8 50, 7 49)))",
    ):
        with pytest.raises(ConfigurationError, match="properties only"):
            PropertyFilter(expression).check_local()
