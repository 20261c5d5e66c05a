"""Coordinates that are not positions in CSV, GeoParquet and CityJSON samples: NaN, infinity,
1e309, values beyond any Earth, values that are not numbers, transforms that cannot dequantise.

Each record holding one is rejected with the reason; the others of the sample ingest as they do
untouched (counts from the samples: 853 Bielefeld rows, 41 Neckarsulm rows, 4 rows of the
GeoParquet point example, 10 buildings of the 3D BAG multi-LoD file).
"""

from __future__ import annotations

import csv
import json
import math
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from citypipe.core.ingest import NothingIngested, ingest
from citypipe.geo.errors import DataError

BIELEFELD, BIELEFELD_ROWS = "bielefeld_parking_wkt.csv", 853
NECKARSULM, NECKARSULM_ROWS = "neckarsulm_parking_ewkb.csv", 41
POINTS_WKB, POINTS_ROWS = "geoparquet/data-point-encoding_wkb.parquet", 4
LINES_NATIVE = "geoparquet/data-linestring-encoding_native.parquet"
MULTI_LOD, BUILDINGS = "cityjson/3dbag_multi_lod_v2.0.city.json", 10
RD_NAP = "EPSG:7415"  # the 3D BAG's CRS, which the multi-LoD sample does not declare
SEQ = "cityjson/3dbag_b2.city.jsonl"


def _replace_first_wkt(path: Path, wkt: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next(csv.reader([lines[1]], delimiter=";"))
    lines[1] = ";".join([f'"{wkt}"', *first[1:]])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("wkt", "why"),
    [
        ("POINT (nan 52.03)", "not finite (nan"),
        ("POINT (inf 52.03)", "not finite (inf"),
        ("POINT (1e309 52.03)", "not finite (inf"),
        ("POLYGON ((8.5 52, nan 52, 8.6 52.1, 8.5 52))", "not finite (nan"),
        ("POINT (8.5 1e20)", "beyond ±1e10"),
    ],
)
def test_csv_wkt_that_is_not_a_position(sample, lake, read_lake, wkt, why):
    path = sample(BIELEFELD)
    _replace_first_wkt(path, wkt)
    report = ingest(path, "s", lake, crs="OGC:CRS84", validate=False)
    assert (report.records, report.features, report.rejects) == (
        BIELEFELD_ROWS,
        BIELEFELD_ROWS - 1,
        1,
    )
    reject = read_lake("s", "rejects").to_pylist()[0]
    assert why in reject["reason"] and reject["record"].startswith(wkt)


def _ewkb(x: float, y: float) -> str:
    return struct.pack("<BII", 1, 0x20000001, 4326).hex() + struct.pack("<dd", x, y).hex()


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_csv_ewkb_that_is_not_a_position(sample, lake, read_lake, x):
    path = sample(NECKARSULM)
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(";")
    cells[1] = _ewkb(x, 49.19)
    lines[1] = ";".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(path, "s", lake, options={"id": "id"}, validate=False)
    assert (report.features, report.rejects) == (NECKARSULM_ROWS - 1, 1)
    reject = read_lake("s", "rejects").to_pylist()[0]
    assert reject["source_id"] == cells[0] and "not finite" in reject["reason"]


def test_csv_coordinate_columns_beyond_a_double(tmp_path, lake, read_lake):
    path = tmp_path / "lonlat.csv"
    path.write_text("name;lon;lat\na;8.53;52.03\nb;1e309;52.03\nc;8.54;52.04\n", encoding="utf-8")
    report = ingest(path, "s", lake, validate=False)
    assert (report.features, report.rejects) == (2, 1)
    assert "not finite (inf, 52.03)" in read_lake("s", "rejects")["reason"][0].as_py()


def _geoparquet_with(sample, name: str, column: list) -> Path:
    path = sample(name)
    table = pq.read_table(path)
    field = table.schema.field("geometry")
    table = table.set_column(
        table.schema.get_field_index("geometry"), field, pa.array(column, field.type)
    )
    pq.write_table(table.replace_schema_metadata(pq.read_schema(SAMPLE_ROOT / name).metadata), path)
    return path


SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "data" / "samples"


@pytest.mark.parametrize("x", [math.nan, math.inf, 1e300])
def test_geoparquet_wkb_that_is_not_a_position(sample, lake, read_lake, x):
    wkb = pq.read_table(SAMPLE_ROOT / POINTS_WKB).column("geometry").to_pylist()
    wkb[0] = struct.pack("<BIdd", 1, 1, x, 10.0)
    report = ingest(_geoparquet_with(sample, POINTS_WKB, wkb), "s", lake, validate=False)
    assert (report.records, report.features, report.rejects) == (POINTS_ROWS, POINTS_ROWS - 1, 1)
    assert "geometry has a coordinate" in read_lake("s", "rejects")["reason"][0].as_py()


def test_geoparquet_native_linestring_of_one_point(sample, lake, read_lake):
    lines = pq.read_table(SAMPLE_ROOT / LINES_NATIVE).column("geometry").to_pylist()
    lines[0] = [{"x": 30.0, "y": 10.0}]
    report = ingest(_geoparquet_with(sample, LINES_NATIVE, lines), "s", lake, validate=False)
    assert (report.records, report.rejects) == (len(lines), 1)
    assert report.features == len(lines) - 1


# -- CityJSON ------------------------------------------------------------------------------


def _cityjson(sample, edit) -> tuple[Path, dict]:
    """The multi-LoD sample, its document edited by `edit(doc)` (which returns the text)."""
    path = sample(MULTI_LOD)
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(edit(doc), encoding="utf-8")
    return path, doc


def _vertex_of_one_building(doc: dict) -> tuple[int, str]:
    """A vertex index used by exactly one building of the document, and that building's key."""
    users: dict[int, set[str]] = {}

    def walk(node, key):
        if isinstance(node, list):
            for x in node:
                walk(x, key)
        elif isinstance(node, int):
            users.setdefault(node, set()).add(key)

    for key, obj in doc["CityObjects"].items():
        for g in obj.get("geometry", []):
            walk(g["boundaries"], key)
    vertex = min(v for v, keys in users.items() if len(keys) == 1)
    return vertex, next(iter(users[vertex]))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("NaN", "not finite (nan"),
        ("Infinity", "not finite (inf"),
        ("1e309", "not finite (inf"),
        ('"12"', 'coordinates hold "12", a string'),
        ("true", "coordinates hold true, a boolean"),
        ("null", "coordinates hold null"),
        ("1e300", "beyond ±1e10"),
    ],
)
def test_cityjson_vertex_that_is_not_a_position_rejects_its_objects_only(
    sample, lake, read_lake, value, why
):
    found: dict = {}

    def edit(doc):
        vertex, key = _vertex_of_one_building(doc)
        found.update(vertex=vertex, key=key)
        doc["vertices"][vertex][0] = "@@"
        return json.dumps(doc).replace('"@@"', value)

    path, _ = _cityjson(sample, edit)
    report = ingest(path, "s", lake, crs=RD_NAP, validate=False)
    assert (report.records, report.features, report.rejects) == (BUILDINGS, BUILDINGS - 1, 1)
    reject = read_lake("s", "rejects").to_pylist()[0]
    assert reject["source_id"] == found["key"]
    assert reject["reason"].startswith(f"vertex {found['vertex']}") and why in reject["reason"]


def test_cityjson_attribute_nan_rejects_its_object(sample, lake, read_lake):
    def edit(doc):
        first = next(iter(doc["CityObjects"].values()))
        first.setdefault("attributes", {})["height"] = "@@"
        return json.dumps(doc).replace('"@@"', "NaN")

    path, doc = _cityjson(sample, edit)
    report = ingest(path, "s", lake, crs=RD_NAP, validate=False)
    assert (report.features, report.rejects) == (BUILDINGS - 1, 1)
    reject = read_lake("s", "rejects").to_pylist()[0]
    assert reject["source_id"] == next(iter(doc["CityObjects"]))
    assert "attributes.height is nan" in reject["reason"]


@pytest.mark.parametrize(
    "scale", [[0, 0, 0], [0.001, 0, 0.001], ["0.001", 0.001, 0.001], [0.001, 0.001]]
)
def test_cityjson_transform_that_cannot_dequantise_refuses_the_file(sample, lake, scale):
    def edit(doc):
        doc["transform"]["scale"] = scale
        return json.dumps(doc)

    path, _ = _cityjson(sample, edit)
    with pytest.raises(DataError, match=r"transform\.scale"):
        ingest(path, "s", lake, crs=RD_NAP, validate=False)


def test_cityjson_scale_that_overflows_rejects_every_object_with_the_reason(sample, lake):
    def edit(doc):
        doc["transform"]["scale"] = [1e308, 1e308, 1e308]
        return json.dumps(doc)

    path, _ = _cityjson(sample, edit)
    with pytest.raises(
        NothingIngested,
        match=r"\(10 rejected; \d+ because vertex \d+ has a coordinate that is not finite",
    ):
        ingest(path, "s", lake, crs=RD_NAP, validate=False)


def test_cityjsonseq_line_with_a_nan_vertex(sample, lake, read_lake):
    path = sample(SEQ)
    lines = path.read_text(encoding="utf-8").splitlines()
    feature = json.loads(lines[1])
    feature["vertices"][0][2] = "@@"
    lines[1] = json.dumps(feature).replace('"@@"', "NaN")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    objects = [json.loads(line)["CityObjects"] for line in lines[1:]]
    users = [k for k, o in objects[0].items() if '"boundaries"' in json.dumps(o)]
    report = ingest(path, "s", lake, crs=RD_NAP, validate=False)
    assert report.records == sum(map(len, objects))
    assert report.rejects == len(users) and report.features == report.records - len(users)
    assert set(read_lake("s", "rejects")["source_id"].to_pylist()) == set(users)


def test_kept_3d_objects_stay_on_the_earth(sample, lake, read_lake):
    def edit(doc):
        vertex, _ = _vertex_of_one_building(doc)
        doc["vertices"][vertex] = [10**12, 0, 0]
        return json.dumps(doc)

    path, _ = _cityjson(sample, edit)
    ingest(path, "s", lake, crs=RD_NAP, validate=False)
    table = read_lake("s")
    for column in ("geometry", "geometry_3d"):
        xy = shapely.get_coordinates(
            shapely.from_wkb(table.column(column).to_numpy(zero_copy_only=False))
        )
        assert len(xy) and (abs(xy) <= [180, 90]).all()
