"""GeoParquet input: the official examples and conformance files against their WKT ground truth,
GeoArrow native encodings, CRS declarations, versions, properties and broken files."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import SAMPLES, data_files, in_source_order

from citypipe.cli import main
from citypipe.connectors.geoparquet import GeoParquetConnector
from citypipe.connectors.parquet_geometry import to_shapely
from citypipe.connectors.registry import detect
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.core.properties import record_text
from citypipe.geo.errors import ConfigurationError, DataError, UnknownCRS

KINDS = ("point", "linestring", "polygon", "multipolygon")
COUNTRIES = ("Fiji", "Tanzania", "W. Sahara", "Canada", "United States of America")
Geom = shapely.Geometry | None


def _ground_truth(name: str) -> list[dict[str, str]]:
    with open(SAMPLES / "geoparquet" / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _truth_geoms(kind: str) -> list[Geom]:
    """The WKT ground truth of a conformance file; an empty cell is a null geometry."""
    rows = _ground_truth(f"data-{kind}-wkt.csv")
    return [shapely.from_wkt(r["geometry"]) if r["geometry"] else None for r in rows]


def _lake_table(
    lake: Lake, source: str, kind: str = "features", ids: Sequence[str] = ()
) -> pa.Table:
    """A lake file's rows, features in their source's order."""
    table = pq.read_table(lake.partition(kind, source) / "part-0.parquet")
    return in_source_order(table, ids) if kind == "features" else table


def _lake_geoms(lake: Lake, source: str) -> list[Geom]:
    """The output geometries in row order, read back with pyarrow and shapely alone."""
    wkb = _lake_table(lake, source).column("geometry").to_numpy(zero_copy_only=False)
    return list(shapely.from_wkb(wkb))


def _lake_props(lake: Lake, source: str) -> list[dict]:
    return [json.loads(p) for p in _lake_table(lake, source).column("properties").to_pylist()]


def _read(path: Path, **options) -> tuple[list, list[dict], list]:
    """Geometries, properties and batches as the connector yields them."""
    batches = list(GeoParquetConnector(path, **options).read())
    geoms = [g for b in batches for g in b.geometries]
    return geoms, [p for b in batches for p in b.properties], batches


def _same(out: Geom, expected: Geom, tolerance: float = 0) -> bool:
    """Same type and coordinates; null only equals null, EMPTY only an EMPTY of its type."""
    if expected is None or out is None:
        return out is expected
    return out.geom_type == expected.geom_type and shapely.equals_exact(out, expected, tolerance)


def _with_geo(src: Path, dest: Path, **changes) -> Path:
    """A copy of `src` whose `geo` metadata has the primary column's members replaced, and the
    top-level members given as `top_<name>`."""
    table = pq.read_table(src)
    geo = json.loads(table.schema.metadata[b"geo"])
    column = geo["columns"][geo["primary_column"]]
    for key, value in changes.items():
        target, key = (geo, key[4:]) if key.startswith("top_") else (column, key)
        target[key] = value
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), dest)
    return dest


# -- the official files ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["wkb", "native"])
@pytest.mark.parametrize("kind", KINDS)
def test_conformance_file_matches_its_wkt(sample, lake, kind, encoding):
    """Every row, EMPTY and null included, arrives as the ground truth says, in row order."""
    path = sample(f"geoparquet/data-{kind}-encoding_{encoding}.parquet")
    truth = _ground_truth(f"data-{kind}-wkt.csv")
    report = ingest(path, "conf", lake)
    assert (report.records, report.features, report.rejects) == (len(truth), len(truth), 0)
    assert report.format == "GeoParquet 1.1.0"
    out = _lake_geoms(lake, "conf")
    expected = _truth_geoms(kind)
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=False):
        assert _same(got, want), (got, want)
    assert [p["col"] for p in _lake_props(lake, "conf")] == [int(r["col"]) for r in truth]


@pytest.mark.parametrize("kind", KINDS)
def test_wkb_and_native_encodings_give_the_same_output(sample, tmp_path, kind):
    outputs = []
    for encoding in ("wkb", "native"):
        lake = Lake(tmp_path / encoding)
        ingest(sample(f"geoparquet/data-{kind}-encoding_{encoding}.parquet"), "s", lake)
        outputs.append(_lake_table(lake, "s").column("geometry").to_pylist())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_natural_earth_example(sample, lake, version):
    path = sample(f"geoparquet/example_v{version}.parquet")
    info = GeoParquetConnector(path).inspect()
    assert (info.format, info.version, info.crs, info.layers, info.count) == (
        "GeoParquet",
        version,
        "OGC:CRS84",
        ("geometry",),
        5,
    )
    report = ingest(path, "countries", lake)
    assert (report.features, report.rejects) == (5, 0)
    props = _lake_props(lake, "countries")
    truth = {r["name"]: r for r in _ground_truth("example_wkt.csv")}
    assert [p["name"] for p in props] == list(truth) and set(COUNTRIES) == set(truth)
    for p, g in zip(props, _lake_geoms(lake, "countries"), strict=False):
        row = truth[p["name"]]
        assert p["iso_a3"] == row["iso_a3"] and p["gdp_md_est"] == int(row["gdp_md_est"])
        assert _same(g, shapely.from_wkt(row["geometry"]), tolerance=1e-9)
        assert "bbox" not in p  # the 1.1 covering column repeats the geometry's box


# -- GeoArrow arrays -----------------------------------------------------------------------


def _geoarrow_array(geoms: np.ndarray, null: np.ndarray, interleaved: bool) -> pa.Array:
    """GeoArrow native array built from shapely's ragged arrays, `null` masked at the top level."""
    _, coords, offsets = shapely.to_ragged_array(geoms, include_z=bool(shapely.has_z(geoms).any()))
    dims = "xyz"[: coords.shape[1]]
    mask = pa.array(null)
    top = None if offsets else mask  # points: the coordinates are the top level
    if interleaved:
        item = pa.field(dims, pa.float64(), nullable=False)
        array: pa.Array = pa.FixedSizeListArray.from_arrays(
            pa.array(coords.ravel()), type=pa.list_(item, len(dims)), mask=top
        )
    else:
        parts = [pa.array(coords[:, i]) for i in range(len(dims))]
        array = pa.StructArray.from_arrays(parts, names=list(dims), mask=top)
    for level, o in enumerate(offsets):
        outer = level == len(offsets) - 1
        array = pa.ListArray.from_arrays(pa.array(o), array, mask=mask if outer else None)
    return array


MULTI = {
    "multipoint": ["MULTIPOINT ((1 2), (3 4))", None, "MULTIPOINT EMPTY", "MULTIPOINT ((5 6))"],
    "multilinestring": [
        "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3, 4 4))",
        "MULTILINESTRING EMPTY",
        None,
    ],
}


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("kind", [*KINDS, *MULTI])
def test_geoarrow_arrays_sliced_with_nulls(kind, interleaved):
    """Slices keep their own offsets; nulls stay null and EMPTY stays EMPTY."""
    if kind in MULTI:
        truth = [None if w is None else shapely.from_wkt(w) for w in MULTI[kind]]
    else:
        truth = _truth_geoms(kind)
    empty = shapely.from_wkt(f"{kind.upper()} EMPTY")  # a placeholder under the null mask
    geoms = np.array([empty if g is None else g for g in truth] * 2)
    null = np.array([g is None for g in truth] * 2)
    array = _geoarrow_array(geoms, null, interleaved)
    expected = np.where(null, None, geoms)
    for start in range(len(geoms)):
        for stop in range(start, len(geoms) + 1):
            out, unreadable = to_shapely(array.slice(start, stop - start), kind)
            assert not unreadable.any()
            assert len(out) == stop - start
            assert all(_same(a, b) for a, b in zip(out, expected[start:stop], strict=False))


@pytest.mark.parametrize("interleaved", [False, True])
def test_geoarrow_3d_keeps_z(interleaved):
    geoms = shapely.from_wkt(["LINESTRING Z (1 2 3, 4 5 6)", "LINESTRING Z (7 8 9, 10 11 12)"])
    out, _ = to_shapely(_geoarrow_array(geoms, np.array([False, False]), interleaved), "linestring")
    assert all(shapely.equals_exact(a, b) and a.has_z for a, b in zip(out, geoms, strict=False))


def test_geoarrow_measures_are_dropped():
    item = pa.field("xym", pa.float64(), nullable=False)
    values = pa.array([1.0, 2.0, 99.0, 3.0, 4.0, 99.0])
    array = pa.FixedSizeListArray.from_arrays(values, type=pa.list_(item, 3))
    out, _ = to_shapely(array, "point")
    assert [g.wkt for g in out] == ["POINT (1 2)", "POINT (3 4)"]


# -- CRS and versions ----------------------------------------------------------------------


def test_projected_crs_lands_at_the_right_lon_lat(tmp_path, lake):
    xy = [(500_000.0, 5_400_000.0), (691_000.0, 5_335_000.0), (356_000.0, 5_645_000.0)]
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"]},
        geometry=gpd.points_from_xy(*zip(*xy, strict=False)),
        crs="EPSG:25832",
    )
    path = tmp_path / "utm.parquet"
    frame.to_parquet(path)
    assert GeoParquetConnector(path).inspect().crs == "EPSG:25832"
    report = ingest(path, "utm", lake)
    assert report.features == 3
    assert set(_lake_table(lake, "utm").column("source_crs").to_pylist()) == {"EPSG:25832"}
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(*zip(*xy, strict=False))
    out = shapely.get_coordinates(np.array(_lake_geoms(lake, "utm")))
    assert out == pytest.approx(np.column_stack([lon, lat]), abs=1e-9)


def test_crs_absent_null_and_projjson_without_id(sample, tmp_path):
    src = sample("geoparquet/data-point-encoding_wkb.parquet")
    assert GeoParquetConnector(src).inspect().crs == "OGC:CRS84"  # no member: OGC:CRS84
    undefined = _with_geo(src, tmp_path / "null.parquet", crs=None)
    assert GeoParquetConnector(undefined).inspect().crs is None
    projjson = pyproj.CRS("EPSG:25832").to_json_dict()
    projjson.pop("id")
    anonymous = _with_geo(src, tmp_path / "anon.parquet", crs=projjson)
    declared = GeoParquetConnector(anonymous).inspect().crs
    assert pyproj.CRS.from_user_input(declared).equals(pyproj.CRS("EPSG:25832"))


def test_unknown_version_is_read_when_its_encoding_is_known(sample, tmp_path):
    src = sample("geoparquet/data-polygon-encoding_wkb.parquet")
    path = _with_geo(src, tmp_path / "v2.parquet", top_version="2.0-dev")
    info = GeoParquetConnector(path).inspect()
    assert (info.format, info.version) == ("GeoParquet", "2.0-dev")
    geoms, _, _ = _read(path)
    assert [_same(a, b) for a, b in zip(geoms, _truth_geoms("polygon"), strict=False)] == [True] * 4


def test_unknown_encoding_names_the_version(sample, tmp_path):
    path = _with_geo(
        sample("geoparquet/data-polygon-encoding_wkb.parquet"),
        tmp_path / "v9.parquet",
        top_version="9.0-dev",
        encoding="geoarrow.box",
    )
    with pytest.raises(DataError, match=r"9\.0-dev.*geoarrow\.box") as e:
        GeoParquetConnector(path).inspect()
    assert str(e.value).startswith(str(path))


def test_encoding_that_does_not_match_the_column_type(sample, tmp_path):
    src = sample("geoparquet/data-polygon-encoding_wkb.parquet")
    path = _with_geo(src, tmp_path / "x.parquet", encoding="polygon")
    with pytest.raises(DataError, match="declared polygon"):
        list(GeoParquetConnector(path).read())


# -- plain Parquet -------------------------------------------------------------------------


def test_parquet_without_geo_metadata_has_no_geometries(tmp_path, lake):
    path = tmp_path / "plain.parquet"
    wkb = shapely.to_wkb(shapely.points([[7.0, 50.0], [8.0, 51.0]]))
    pq.write_table(pa.table({"k": [1, 2], "wkb": pa.array(list(wkb))}), path)
    info = GeoParquetConnector(path).inspect()
    assert (info.format, info.version, info.layers, info.count) == ("Parquet", None, (), 2)
    geoms, props, batches = _read(path)
    assert geoms == [None, None]
    assert props[0] == {"k": 1, "wkb": base64.b64encode(wkb[0]).decode()}
    assert batches[0].records[0] == props[0]
    assert ingest(path, "plain", lake).features == 2
    # naming the column says what a file without metadata cannot
    named, _, _ = _read(path, geometry="wkb")
    assert [g.wkt for g in named] == ["POINT (7 50)", "POINT (8 51)"]


def _plain(src: Path, dest: Path, name: str, as_wkt: bool = False) -> Path:
    """`src` without its `geo` metadata, its geometry column renamed `name` (and as WKT text)."""
    table = pq.read_table(src).replace_schema_metadata(None)
    geometry = table.column("geometry")
    if as_wkt:
        geoms = shapely.from_wkb(geometry.to_numpy(zero_copy_only=False))
        geometry = pa.array(shapely.to_wkt(geoms, rounding_precision=-1), pa.string())
    i = table.schema.get_field_index("geometry")
    pq.write_table(table.set_column(i, name, geometry), dest)
    return dest


@pytest.mark.parametrize(
    ("name", "as_wkt"),
    [
        ("geometry", False),
        ("WKB_GEOMETRY", False),
        ("geom", False),
        ("the_geom", False),
        ("wkt", True),
        ("wkt_geometry", True),
        ("geometry", True),
    ],
)
def test_parquet_without_geo_metadata_is_read_as_gdal_reads_it(
    sample, tmp_path, lake, name, as_wkt
):
    """A geometry column named as GDAL looks for it, WKB if binary, WKT if text; without `geo`
    nothing declares a CRS and neither encoding defines one: refused until --crs."""
    src = sample("geoparquet/data-polygon-encoding_wkb.parquet")
    path = _plain(src, tmp_path / "plain.parquet", name, as_wkt)
    assert detect(path) is GeoParquetConnector
    info = GeoParquetConnector(path).inspect()
    assert (info.format, info.version, info.layers, info.crs) == ("Parquet", None, (name,), None)
    geoms, props, _ = _read(path)
    assert [_same(a, b) for a, b in zip(geoms, _truth_geoms("polygon"), strict=True)] == [True] * 4
    assert all(name not in p for p in props)  # not base64 or text among the attributes
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs") as refused:
        ingest(path, "plain", lake)
    assert str(path) in str(refused.value)
    assert not lake.root.exists() or not data_files(lake.root)
    report = ingest(path, "plain", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (4, 4, 0)
    assert [
        _same(a, b)
        for a, b in zip(_lake_geoms(lake, "plain"), _truth_geoms("polygon"), strict=False)
    ] == [True] * 4


def test_inspect_names_plain_parquet_and_its_geometry_column(sample, tmp_path, capsys):
    path = _plain(
        sample("geoparquet/data-point-encoding_wkb.parquet"), tmp_path / "p.parquet", "geom"
    )
    assert main(["inspect", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (facts["format"], facts["layers"], facts["crs"]) == ("Parquet", "geom", "not declared")
    assert facts["features"] == len(_truth_geoms("point"))


def test_plain_parquet_in_utm_lands_with_its_crs(tmp_path, lake):
    xy = [(500_000.0, 5_400_000.0), (691_000.0, 5_335_000.0), (356_000.0, 5_645_000.0)]
    wkt = [f"POINT ({x} {y})" for x, y in xy]
    path = tmp_path / "utm.parquet"
    pq.write_table(pa.table({"name": ["a", "b", "c"], "the_geom": wkt}), path)
    report = ingest(path, "utm", lake, crs="EPSG:25832")
    assert (report.features, report.rejects) == (3, 0)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(*zip(*xy, strict=False))
    out = shapely.get_coordinates(np.array(_lake_geoms(lake, "utm")))
    assert out == pytest.approx(np.column_stack([lon, lat]), abs=1e-9)


def test_plain_parquet_geometry_option_names_a_text_column(tmp_path):
    path = tmp_path / "named.parquet"
    pq.write_table(
        pa.table({"lage": ["POINT (7 50)", "POINT (8 51)"], "shape": [b"\x01", None]}), path
    )
    assert GeoParquetConnector(path).inspect().layers == ()  # neither name is a geometry's
    geoms, props, _ = _read(path, geometry="lage")
    assert [g.wkt for g in geoms] == ["POINT (7 50)", "POINT (8 51)"]
    assert props == [{"shape": base64.b64encode(b"\x01").decode()}, {"shape": None}]


def test_parquet_geometry_logical_type_is_wkb(tmp_path):
    """Parquet's own GEOMETRY type (written from a geoarrow.wkb extension array) needs no `geo`."""

    class Wkb(pa.ExtensionType):
        def __init__(self) -> None:
            super().__init__(pa.binary(), "geoarrow.wkb")

        def __arrow_ext_serialize__(self) -> bytes:
            return b'{"crs": "EPSG:25832"}'

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    wkb = pa.array(list(shapely.to_wkb(shapely.points([[500_000.0, 5_400_000.0]]))))
    path = tmp_path / "native.parquet"
    pq.write_table(pa.table({"geom": pa.ExtensionArray.from_storage(Wkb(), wkb)}), path)
    if pq.ParquetFile(path).schema.column(0).logical_type.type != "GEOMETRY":
        pytest.skip("this pyarrow does not write Parquet GEOMETRY columns")
    info = GeoParquetConnector(path).inspect()
    assert (info.format, info.layers, info.crs) == ("Parquet", ("geom",), "EPSG:25832")
    geoms, _, _ = _read(path)
    assert geoms[0].wkt == "POINT (500000 5400000)"


# -- properties, ids, rejects --------------------------------------------------------------


def _wkb(*wkt: str) -> pa.Array:
    return pa.array(list(shapely.to_wkb(shapely.from_wkt(list(wkt)))))


def _geo(**columns: dict) -> dict:
    """GeoParquet 1.1 metadata with WKB columns (the first is primary) and extra members."""
    return {
        "version": "1.1.0",
        "primary_column": next(iter(columns)),
        "columns": {n: {"encoding": "WKB", "geometry_types": [], **m} for n, m in columns.items()},
    }


def _write(path: Path, table: pa.Table, geo: dict) -> Path:
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), path)
    return path


def _typed_table() -> tuple[pa.Table, dict]:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    box = ("xmin", "ymin", "xmax", "ymax")
    table = pa.table(
        {
            "fid": ["a", "b"],
            "observed": pa.array([when, None], pa.timestamp("ms", tz="UTC")),
            "day": pa.array([date(2024, 5, 1), None], pa.date32()),
            "price": pa.array([Decimal("12.34"), None], pa.decimal128(10, 2)),
            "blob": pa.array([b"\x00\x01", None]),
            "tags": pa.array([["x", "y"], []]),
            "info": pa.array(
                [{"at": when, "n": 1}, None],
                pa.struct([("at", pa.timestamp("us", tz="UTC")), ("n", pa.int64())]),
            ),
            "counts": pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int64())),
            "kind": pa.array(["p", "p"]).dictionary_encode(),
            "geometry": _wkb("POINT (7 50)", "LINESTRING (0 0, 1 1)"),
            "centroid": _wkb("POINT (7 50)", "POINT (0.5 0.5)"),
            "bbox": pa.array(
                [dict(zip(box, b, strict=False)) for b in ([7, 50, 7, 50], [0, 0, 1, 1])]
            ),
        }
    )
    return table, _geo(
        geometry={"covering": {"bbox": {k: ["bbox", k] for k in box}}},
        centroid={"geometry_types": ["Point"]},
    )


def test_properties_are_json_values(tmp_path, lake):
    path = _write(tmp_path / "typed.parquet", *_typed_table())
    _, props, batches = _read(path, id="fid")
    assert props[0] == {
        "fid": "a",
        "observed": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "price": 12.34,
        "blob": "AAE=",
        "tags": ["x", "y"],
        "info": {"at": "2024-05-01T12:30:00+00:00", "n": 1},
        "counts": {"a": 1},
        "kind": "p",
        "centroid": "POINT (7 50)",
    }
    assert props[1]["observed"] is None and props[1]["centroid"] == "POINT (0.5 0.5)"
    assert list(batches[0].source_ids) == ["a", "b"]
    record = json.loads(record_text(batches[0].records[1]))
    assert record["geometry"] == "LINESTRING (0 0, 1 1)" and record["fid"] == "b"
    json.dumps(props)  # plain JSON values: the standard library serialises them as they are
    report = ingest(path, "typed", lake, options={"id": "fid"})
    assert report.features == 2
    assert sorted(_lake_table(lake, "typed", ids=["b", "a"]).column("source_id").to_pylist()) == [
        "a",
        "b",
    ]


def test_unknown_id_column_is_a_configuration_error(sample):
    with pytest.raises(ConfigurationError, match="nope"):
        GeoParquetConnector(sample("geoparquet/example_v1.1.0.parquet"), id="nope").inspect()


def test_unreadable_wkb_goes_to_rejects(tmp_path, lake):
    good = shapely.to_wkb(shapely.Point(7, 50))
    table = pa.table({"n": [1, 2], "geometry": pa.array([good, b"\x01\x02garbage"])})
    path = _write(tmp_path / "bad_wkb.parquet", table, _geo(geometry={}))
    report = ingest(path, "badwkb", lake)
    assert (report.features, report.rejects) == (1, 1)
    rejects = _lake_table(lake, "badwkb", "rejects").to_pylist()
    assert "not valid WKB" in rejects[0]["reason"]
    assert json.loads(rejects[0]["record"])["n"] == 2


def test_batches_are_bounded(sample):
    path = sample("geoparquet/data-multipolygon-encoding_native.parquet")
    whole, _, _ = _read(path)
    small, _, batches = _read(path, batch_size=2)
    assert max(len(b) for b in batches) == 2 and len(batches) == 3
    assert [_same(a, b) for a, b in zip(small, whole, strict=False)] == [True] * len(whole)


# -- detection and broken files ------------------------------------------------------------


def test_detected_by_its_magic(sample):
    path = sample("geoparquet/example_v1.0.0.parquet")
    assert detect(path) is GeoParquetConnector
    assert GeoParquetConnector.sniff(b'{"type": "FeatureCollection"}') == 0.0


@pytest.mark.parametrize(
    "content",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated: the footer is gone
        lambda raw: b"PAR1" + bytes(range(256)) * 8,  # the magic, then garbage
        lambda raw: b"PAR1" + b"\xff" * 64 + b"\x10\x00\x00\x00PAR1",  # both magics, no footer
    ],
    ids=["truncated", "garbage", "fake-footer"],
)
def test_broken_files_are_data_errors(sample, tmp_path, lake, content):
    path = tmp_path / "broken.parquet"
    path.write_bytes(content(sample("geoparquet/example_v1.1.0.parquet").read_bytes()))
    connector = GeoParquetConnector(path)
    for attempt in (connector.inspect, lambda: list(connector.read())):
        with pytest.raises(DataError) as e:
            attempt()
        assert str(e.value).startswith(f"{path}: ")
    with pytest.raises(DataError):
        ingest(path, "broken", lake)


def test_a_geoarrow_multipolygon_with_a_polygon_of_no_rings_is_read_without_it():
    """A GeoArrow multipolygon whose polygon list holds an empty polygon (no rings): shapely's
    from_ragged_array crashed the process on it (a segmentation fault, exit 139); the polygon
    holds nothing to draw and is left out, as shapely's `shape` leaves GeoJSON's `[[]]` out."""
    square = [{"x": x, "y": y} for x, y in [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]]
    point = pa.struct([("x", pa.float64()), ("y", pa.float64())])
    kind = pa.list_(pa.list_(pa.list_(point)))
    array = pa.array([[[square]], [[], [square]], [[]]], type=kind)
    out, unreadable = to_shapely(array, "multipolygon")
    assert not unreadable.any()
    polygon = shapely.Polygon([(p["x"], p["y"]) for p in square])
    assert [g.wkt for g in out] == [
        shapely.MultiPolygon([polygon]).wkt,
        shapely.MultiPolygon([polygon]).wkt,
        "MULTIPOLYGON EMPTY",
    ]


def test_a_further_geometry_column_lands_as_lon_lat_wkt(tmp_path, lake, read_lake):
    """A second geometry column in ETRS89 / UTM 31N (its PROJJSON `crs`): its WKT in the
    properties was in metres, with nothing saying so; it is in OGC:CRS84 as the geometry is."""
    utm = {"type": "ProjectedCRS", "name": "ETRS89 / UTM zone 31N",
           "id": {"authority": "EPSG", "code": 25831}}  # fmt: skip
    centroids = [(430000.0, 4580000.0), (430100.0, 4580100.0)]
    table = pa.table({
        "id": ["a", "b"],
        "centroid": _wkb(*(f"POINT ({x} {y})" for x, y in centroids)),
        "geometry": _wkb("POINT (2.17 41.38)", "POINT (2.18 41.39)"),
    })  # fmt: skip
    geo = _geo(geometry={}, centroid={"crs": utm})
    path = _write(tmp_path / "two.parquet", table, geo)
    ingest(path, "two", lake)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25831", "OGC:CRS84", always_xy=True)
    landed = {p["id"]: shapely.from_wkt(p["centroid"]) for p in _lake_props(lake, "two")}
    for key, (x, y) in zip("ab", centroids, strict=True):
        assert landed[key].coords[0] == pytest.approx(to_lonlat.transform(x, y), abs=1e-9)


def test_a_further_geometry_column_in_wgs84_lands_as_written(tmp_path, lake):
    """EPSG:4326's WKB in GeoParquet is longitude first (x/y whatever the CRS's axis order):
    the column is already OGC:CRS84 and its coordinates land as written, not swapped."""
    wgs84 = {"type": "GeographicCRS", "name": "WGS 84", "id": {"authority": "EPSG", "code": 4326}}
    table = pa.table({
        "id": ["a"],
        "centroid": _wkb("POINT (2.1734 41.3851)"),
        "geometry": _wkb("POINT (2.17 41.38)"),
    })  # fmt: skip
    path = _write(tmp_path / "wgs.parquet", table, _geo(geometry={}, centroid={"crs": wgs84}))
    ingest(path, "wgs", lake)
    (landed,) = _lake_props(lake, "wgs")
    assert shapely.from_wkt(landed["centroid"]).coords[0] == (2.1734, 41.3851)
