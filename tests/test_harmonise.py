"""Harmonisation rules on small hand-made collections: ids, repairs, rejects, 3D, CRS errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import shapely
from conftest import data_files, in_source_order
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors.base import SourceBatch
from citypipe.core.harmonise import REPAIR_NOTE, Harmoniser
from citypipe.core.ids import FeatureIds
from citypipe.core.ingest import ingest
from citypipe.core.positions import POSITION_NOTE
from citypipe.geo.errors import ConfigurationError, UnknownCRS
from citypipe.geo.types import Points


def _collection(tmp_path, features, **members):
    p = tmp_path / "c.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", **members, "features": features}))
    return p


def _point(x, y, fid=None, **props):
    f = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": props,
    }
    return f if fid is None else {**f, "id": fid}


def test_repeated_source_id_is_rejected_and_nothing_is_lost(tmp_path, lake, read_lake):
    path = _collection(tmp_path, [_point(1, 2, "a"), _point(3, 4, "a"), _point(5, 6, "b")])
    report = ingest(path, "s", lake)
    assert (report.features, report.rejects) == (2, 1)
    reject = read_lake("s", "rejects").to_pylist()[0]
    assert reject["source_id"] == "a" and "duplicate id" in reject["reason"]
    assert json.loads(reject["record"])["geometry"]["coordinates"] == [3, 4]


def test_a_repeat_among_records_without_ids_is_the_one_rejected(tmp_path, lake, read_lake):
    path = _collection(tmp_path, [_point(1, 2), _point(3, 4, "a"), _point(5, 6), _point(7, 8, "a")])
    report = ingest(path, "s", lake)
    assert (report.features, report.rejects) == (3, 1)
    assert read_lake("s").column("feature_id").to_pylist() == ["s/#1", "s/a", "s/#3"]
    assert json.loads(read_lake("s", "rejects")["record"][0].as_py())["geometry"][
        "coordinates"
    ] == [7, 8]


def test_an_id_seen_in_an_earlier_batch_or_earlier_in_its_own_is_rejected():
    harmoniser = Harmoniser(source="s", source_format="GeoJSON", ingested_at=datetime.now(UTC))

    def batch(ids):
        xy = np.array([[8.4, 49.0]] * len(ids))
        return SourceBatch(
            ids, Points(xy), [{}] * len(ids), [{"id": i} for i in ids], crs="OGC:CRS84"
        )

    first = harmoniser.harmonise(batch(["a", "b"]))
    second = harmoniser.harmonise(batch(["c", "a", "c", "d"]))
    assert first.features.column("source_id").to_pylist() == ["a", "b"]
    assert second.features.column("source_id").to_pylist() == ["c", "d"]
    assert [(r["source_id"], json.loads(r["record"])) for r in second.rejects] == [
        ("a", {"id": "a"}),
        ("c", {"id": "c"}),
    ]
    assert all("duplicate id" in r["reason"] for r in second.rejects)


def test_feature_ids_number_the_records_without_ids_across_batches():
    ids = FeatureIds("s")
    first, _ = ids(["#1", None, "a"])
    second, _ = ids([None, "b", None])
    assert first.to_pylist() == ["s/##1", "s/#2", "s/a"]
    assert second.to_pylist() == ["s/#4", "s/b", "s/#6"]
    assert ids([None, None])[0].to_pylist() == ["s/#7", "s/#8"]
    assert ids.of(["#p", None, "p"]).to_pylist() == ["s/##p", None, "s/p"]


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=0, max_size=12),
    st.integers(0, 3),
    st.lists(st.integers(0, 40), min_size=1, max_size=4),
)
def test_records_without_any_id_are_numbered_as_pythons_text_of_each(source, before, sizes):
    """A batch of no ids at all is numbered by Arrow: each id Python's f-string of its number
    (`#` and the record's count from 1 over the run), in a string array."""
    ids = FeatureIds(source)
    ids(["x"] * before)
    count = before
    for n in sizes:
        got, dups = ids([None] * n)
        assert got.type == pa.string() and dups == [None] * n
        assert got.to_pylist() == [f"{source}/#{k}" for k in range(count + 1, count + n + 1)]
        count += n


def test_records_without_ids_are_numbered_in_source_order(tmp_path, lake, read_lake):
    path = _collection(tmp_path, [_point(1, 2, n="x"), _point(1, 2, n="x"), _point(9, 9, "own")])
    ingest(path, "s", lake)
    assert read_lake("s").column("feature_id").to_pylist() == ["s/#1", "s/#2", "s/own"]


def test_the_catalog_can_name_the_attribute_that_identifies_records(tmp_path, lake, read_lake):
    path = _collection(
        tmp_path, [_point(1, 2, gid="620-1"), _point(3, 4, gid="620-10"), _point(5, 6, gid="620-1")]
    )
    report = ingest(path, "s", lake, fields={"source_id": "gid"})
    assert (report.features, report.rejects) == (2, 1)
    assert read_lake("s").column("feature_id").to_pylist() == ["s/620-1", "s/620-10"]


def test_invalid_polygon_is_repaired_and_says_so(tmp_path, lake, read_lake):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    path = _collection(tmp_path, [{"type": "Feature", "geometry": bowtie, "properties": {}}])
    assert ingest(path, "s", lake).features == 1
    row = read_lake("s").to_pylist()[0]
    assert shapely.is_valid(shapely.from_wkb(row["geometry"]))
    assert "Self-intersection" in json.loads(row["properties"])[REPAIR_NOTE]


def test_3d_coordinates_fill_geometry_3d(tmp_path, lake, read_lake):
    path = _collection(
        tmp_path,
        [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [7.1, 50.7, 61.5]},
                "properties": {},
            }
        ],
    )
    ingest(path, "s", lake)
    row = read_lake("s").to_pylist()[0]
    assert not shapely.has_z(shapely.from_wkb(row["geometry"]))
    assert shapely.get_coordinates(
        shapely.from_wkb(row["geometry_3d"]), include_z=True
    ).tolist() == [[7.1, 50.7, 61.5]]


def test_an_unknown_crs_refuses_the_source_with_its_name(tmp_path, lake):
    path = _collection(
        tmp_path, [_point(1, 2)], crs={"type": "name", "properties": {"name": "EPSG:999999"}}
    )
    with pytest.raises(UnknownCRS, match="EPSG:999999.*--crs"):
        ingest(path, "s", lake)
    with pytest.raises(ConfigurationError, match="--crs: unknown CRS 'EPSG:999998'"):
        ingest(path, "s", lake, crs="EPSG:999998")
    assert not lake.root.exists() or not data_files(lake.root)
    # --crs fixes it
    assert ingest(path, "s", lake, crs="EPSG:4326").features == 1


def test_not_a_feature_is_a_reject_not_a_crash(tmp_path, lake, read_lake):
    path = _collection(tmp_path, [_point(1, 2), {"type": "Point", "coordinates": [1, 2]}, 7])
    report = ingest(path, "s", lake)
    assert (report.records, report.features, report.rejects) == (3, 1, 2)
    assert {r["reason"] for r in read_lake("s", "rejects").to_pylist()} == {
        "not a GeoJSON Feature object"
    }


def test_epoch_milliseconds_and_iso_times_become_observed_at(tmp_path, lake, read_lake):
    path = _collection(
        tmp_path,
        [
            _point(1, 2, Timestamp=1740651467085),
            _point(1, 3, dateObserved="2024-06-10T10:20:00+02:00"),
        ],
    )
    ingest(path, "s", lake)
    times = [t.isoformat() for t in read_lake("s").column("observed_at").to_pylist()]
    assert times == ["2025-02-27T10:17:47.085000+00:00", "2024-06-10T08:20:00+00:00"]


def test_a_count_below_the_declared_one_keeps_the_previous_output(tmp_path, lake, read_lake):
    """A response cut short (numberMatched 3, two features) fails its blocking check."""
    from citypipe.core.ingest import ChecksFailed

    good = _collection(
        tmp_path, [_point(1, 2, "a"), _point(3, 4, "b"), _point(5, 6, "c")], numberMatched=3
    )
    assert ingest(good, "s", lake).features == 3
    cut = _collection(tmp_path, [_point(1, 2, "a"), _point(3, 4, "b")], numberMatched=3)
    with pytest.raises(ChecksFailed, match="matches_declared_count"):
        ingest(cut, "s", lake)
    assert read_lake("s").column("source_id").to_pylist() == ["a", "b", "c"]


def test_axis_order_can_be_overridden(tmp_path, lake, read_lake):
    """A file writing lat, lon under EPSG:4326 lands right with axis_order="authority"."""
    path = _collection(
        tmp_path,
        [_point(48.98864293, 8.40410325)],
        crs={"type": "name", "properties": {"name": "EPSG:4326"}},
    )
    ingest(path, "s", lake, axis_order="authority")
    xy = shapely.get_coordinates(shapely.from_wkb(read_lake("s").column("geometry")[0].as_py()))
    assert xy.tolist() == [[8.40410325, 48.98864293]]


def test_positions_are_checked_against_the_records_own_latitude_longitude(sample, lake, read_lake):
    """Barcelona's 465 Bicing stations repeat their position in latitude/longitude attributes."""
    path = sample("barcelona_bicing_stations.geojson")
    stations = json.loads(path.read_bytes())["features"]
    assert all({"latitude", "longitude"} <= f["properties"].keys() for f in stations)
    assert not ingest(path, "bicing", lake).warnings
    assert not any(POSITION_NOTE in p for p in read_lake("bicing").column("properties").to_pylist())
    # read as EPSG:4326 in its authority's order, lon, lat is taken for lat, lon: every station
    # moves
    report = ingest(path, "bicing", lake, crs="EPSG:4326", axis_order="authority")
    [(warning, n)] = report.warnings.items()
    assert n == len(stations) == 465 and "axes swapped" in warning
    table = in_source_order(read_lake("bicing"), [f.get("id") for f in stations])
    notes = [json.loads(p)[POSITION_NOTE] for p in table.column("properties").to_pylist()]
    first = stations[0]["properties"]
    assert f"({first['latitude']}, {first['longitude']})" in notes[0]


def test_a_misspelt_hand_over_field_is_an_error_not_a_null_column():
    """The hand-over has typed fields: a connector that misspells one fails at once."""
    xy = Points(np.array([[8.4, 49.0]]))
    with pytest.raises(TypeError, match="nmae"):
        SourceBatch(["a"], xy, [{}], [{}], crs="OGC:CRS84", nmae=["Rathaus"])
    batch = SourceBatch(["a"], xy, [{}], [{}], crs="OGC:CRS84", name=["Rathaus"])
    with pytest.raises(AttributeError):
        batch.nmae = ["Rathaus"]  # type: ignore[attr-defined]
    harmoniser = Harmoniser(source="s", source_format="GeoJSON", ingested_at=datetime.now(UTC))
    assert harmoniser.harmonise(batch).features.column("name").to_pylist() == ["Rathaus"]
