"""One CRS decision per source (README, "CRS and axis order"): coordinates are lon/lat without a
declared CRS only where the format says so; any other source without a CRS, or with one pyproj
does not know, is refused whole before anything is written, never half accepted because some
of its coordinates happen to fit -180..180 / -90..90.

The inputs are generated here; expected positions come from pyproj, never from citypipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import data_files

from citypipe.cli import main
from citypipe.core.ingest import NothingIngested, ingest
from citypipe.core.positions import POSITION_NOTE
from citypipe.geo.errors import UnknownCRS

RD = pyproj.Transformer.from_crs("EPSG:7415", "OGC:CRS84", always_xy=True)
UTM32 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
FITS, FAR = (4.3, 52.08), (85_000.0, 446_000.0)
"""A corner that passes for lon/lat (Den Haag's, in degrees) and one that cannot (Den Haag's,
in RD New metres): the same file may hold both when its CRS is metres."""


def _cityjson(path: Path, corners: list[tuple[float, float]], crs: str | None = None) -> Path:
    """A CityJSON 2.0 file with one Building per corner: a 10 x 10 square at height 0."""
    vertices, objects = [], {}
    for k, (x, y) in enumerate(corners):
        first = len(vertices)
        square = [(x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10)]
        vertices += [[round(a * 1000), round(b * 1000), 0] for a, b in square]
        surface = [[list(range(first, first + 4))]]
        objects[f"b{k}"] = {
            "type": "Building",
            "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": surface}],
        }
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [0, 0, 0]},
        "CityObjects": objects,
        "vertices": vertices,
    }
    if crs:
        doc["metadata"] = {"referenceSystem": crs}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _csv(path: Path, header: str, points: list[tuple[float, float]]) -> Path:
    rows = "".join(f"p{i};{x};{y}\n" for i, (x, y) in enumerate(points))
    path.write_text(f"name;{header}\n{rows}", encoding="utf-8")
    return path


def _features(lake, source: str) -> dict[str, shapely.Geometry]:
    """feature_id -> the 2D geometry a source has in the lake."""
    table = pq.read_table(lake.partition("features", source))
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    return dict(zip(table.column("feature_id").to_pylist(), geoms, strict=False))


def _nothing_written(lake) -> bool:
    return not lake.root.exists() or not data_files(lake.root)


# -- refused whole -----------------------------------------------------------------------------


def test_cityjson_partly_fitting_lon_lat_is_refused_whole(tmp_path, lake):
    path = _cityjson(tmp_path / "half.city.json", [FITS, FAR, FITS])
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs") as refused:
        ingest(path, "half", lake, validate=False)
    assert str(path) in str(refused.value) and "crs: in its catalog entry" in str(refused.value)
    assert _nothing_written(lake)
    # with --crs every object lands where pyproj puts its corner, the fitting ones too
    report = ingest(path, "half", lake, crs="EPSG:7415", validate=False)
    assert (report.records, report.features, report.rejects) == (3, 3, 0)
    for key, (x, y) in zip(("b0", "b1", "b2"), (FITS, FAR, FITS), strict=False):
        lon, lat = RD.transform([x, x + 10, x + 10, x], [y, y, y + 10, y + 10])
        placed = shapely.bounds(_features(lake, "half")[f"half/{key}"])
        assert placed == pytest.approx([min(lon), min(lat), max(lon), max(lat)], abs=1e-9)


@pytest.mark.parametrize(
    "header", ["x;y", "X;Y", "easting;northing", "Rechtswert;Hochwert", "ostwert;nordwert"]
)
def test_csv_projected_columns_partly_fitting_lon_lat_are_refused_whole(tmp_path, lake, header):
    path = _csv(tmp_path / "xy.csv", header, [(9.18, 48.78), (513_000.5, 5_402_000.25)])
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs"):
        ingest(path, "xy", lake)
    assert _nothing_written(lake)
    report = ingest(path, "xy", lake, crs="EPSG:25832")
    assert (report.features, report.rejects) == (2, 0)
    far = _features(lake, "xy")["xy/#2"]
    assert (far.x, far.y) == pytest.approx(UTM32.transform(513_000.5, 5_402_000.25), abs=1e-9)


@pytest.mark.parametrize(
    ("column", "value"),
    [("wkt", "POINT (9.18 48.78)"), ("geom", shapely.to_wkb(shapely.Point(9.18, 48.78), hex=True))],
)
def test_csv_bare_wkt_or_wkb_is_refused_whole(tmp_path, lake, column, value):
    """WKT and WKB (EWKB without SRID) define no CRS, whatever their numbers look like."""
    path = tmp_path / "bare.csv"
    path.write_text(f"name;{column}\na;{value}\n", encoding="utf-8")
    with pytest.raises(UnknownCRS, match="no CRS is declared"):
        ingest(path, "bare", lake)
    assert _nothing_written(lake)
    assert ingest(path, "bare", lake, crs="OGC:CRS84").features == 1
    [point] = _features(lake, "bare").values()
    assert (point.x, point.y) == pytest.approx((9.18, 48.78))


@pytest.mark.parametrize(
    "crs", ["urn:ogc:def:crs:EPSG::999999", "#local-CRS-1", "https://example.org/crs/local"]
)
def test_a_crs_pyproj_does_not_know_refuses_the_source_naming_it(tmp_path, lake, crs):
    path = _cityjson(tmp_path / "unknown.city.json", [FAR], crs=crs)
    with pytest.raises(UnknownCRS) as refused:
        ingest(path, "unknown", lake, validate=False)
    assert crs in str(refused.value) and "--crs" in str(refused.value)
    assert _nothing_written(lake)


def test_a_refused_source_keeps_its_previous_output(tmp_path, lake, read_lake):
    good = _cityjson(tmp_path / "good.city.json", [FAR], crs="EPSG:7415")
    ingest(good, "city", lake, validate=False)
    before = read_lake("city")
    undeclared = _cityjson(tmp_path / "undeclared.city.json", [FAR, (FAR[0] + 50, FAR[1])])
    with pytest.raises(UnknownCRS):
        ingest(undeclared, "city", lake, validate=False)
    assert read_lake("city").equals(before)


def test_cli_refusal_is_one_line_with_the_hint_and_exit_2(tmp_path, capsys):
    path = _cityjson(tmp_path / "metres.city.json", [FAR])
    code = main(["ingest", str(path), "--source", "m", "--lake", str(tmp_path / "lake")])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith("citypipe: error: ")
    assert str(path) in line and "no CRS is declared" in line and "--crs" in line
    assert not data_files(tmp_path / "lake")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("cityjson/denhaag_DH_01_subset_v1.1.city.json", "no CRS is declared"),
        ("cityjson/3dbag_multi_lod_v2.0.city.json", "no CRS is declared"),
        ("citygml/LocalCRS_CityGML3.gml", "unknown CRS '#local-CRS-1'"),
        ("citygml/sig3d_v2_Building_LOD1-LocalEngineeringCRS.gml", "unknown CRS '#local-CRS-1'"),
        ("reutlingen_bike_parking_utm32_wkt.csv", "no CRS is declared"),
    ],
)
def test_files_of_the_corpus_without_a_usable_crs_exit_2(sample, tmp_path, capsys, name, why):
    """The MANIFEST's files without a CRS (or with a local one), as the CLI refuses them."""
    path = sample(name)
    code = main(["ingest", str(path), "--source", "s", "--lake", str(tmp_path / "lake")])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and str(path) in line and why in line and "--crs" in line
    assert not data_files(tmp_path / "lake")


# -- lon/lat by the format --------------------------------------------------------------------


def _geojson(path: Path, features: list[dict], **members) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", **members, "features": features}))
    return path


def _point(x: float, y: float, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": props,
    }


def test_geojson_without_crs_is_lon_lat_and_a_wrong_record_is_a_reject(tmp_path, lake, read_lake):
    """RFC 7946 defines lon/lat: a record whose numbers cannot be that is data, rejected alone."""
    path = _geojson(tmp_path / "g.geojson", [_point(9.18, 48.78, n="a"), _point(*FAR, n="b")])
    report = ingest(path, "g", lake)
    assert (report.features, report.rejects) == (1, 1)
    [reason] = report.reasons
    assert "outside longitude/latitude" in reason and "--crs" in reason
    assert read_lake("g").column("source_crs").to_pylist() == ["OGC:CRS84"]


def test_geojson_in_metres_without_crs_is_rejected_with_the_hint(tmp_path, lake):
    path = _geojson(tmp_path / "m.geojson", [_point(*FAR), _point(FAR[0] + 5, FAR[1])])
    with pytest.raises(NothingIngested, match="--crs"):
        ingest(path, "m", lake)


def test_json_fg_place_without_coord_ref_sys_is_lon_lat(tmp_path, lake, read_lake):
    feature = {
        "type": "Feature",
        "geometry": None,
        "place": {"type": "Point", "coordinates": [9.18, 48.78]},
        "properties": {},
    }
    path = _geojson(
        tmp_path / "fg.json",
        [feature],
        conformsTo=["http://www.opengis.net/spec/json-fg-1/0.2/conf/core"],
    )
    assert ingest(path, "fg", lake).features == 1
    [point] = shapely.from_wkb(read_lake("fg").column("geometry").to_numpy(zero_copy_only=False))
    assert (point.x, point.y) == (9.18, 48.78)


@pytest.mark.parametrize(
    "header", ["lon;lat", "Longitude;Latitude", "Längengrad;Breitengrad", "longitud;latitud"]
)
def test_csv_longitude_latitude_columns_need_no_crs(tmp_path, lake, header):
    path = _csv(tmp_path / "ll.csv", header, [(9.18, 48.78), (513_000.5, 5_402_000.25)])
    report = ingest(path, "ll", lake)
    assert (report.features, report.rejects) == (1, 1)  # the second row is data gone wrong
    [point] = _features(lake, "ll").values()
    assert (point.x, point.y) == pytest.approx((9.18, 48.78))


def test_a_declared_crs_that_puts_records_off_the_earth_rejects_them_alone(tmp_path, lake):
    """A wrong --crs is a record-level finding: each record beyond lon/lat says so."""
    path = _csv(tmp_path / "xy.csv", "x;y", [(9.18, 48.78), (513_000.5, 5_402_000.25)])
    report = ingest(path, "xy", lake, crs="EPSG:4326")
    assert (report.features, report.rejects) == (1, 1)
    [reason] = report.reasons
    assert "when read as EPSG:4326" in reason and "--crs" in reason


def test_position_conflicts_are_still_reported(tmp_path, lake, read_lake):
    """A record that states its own latitude/longitude far from its geometry is kept, noted."""
    path = _geojson(tmp_path / "c.geojson", [_point(9.18, 48.78, latitude=52.52, longitude=13.40)])
    report = ingest(path, "c", lake)
    assert report.features == 1 and report.warnings
    assert POSITION_NOTE in json.loads(read_lake("c").column("properties")[0].as_py())
