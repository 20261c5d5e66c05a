"""`citypipe export`: every format, read back with pyogrio (GDAL), against the source files.

Coordinates are checked against the files citypipe read: the fountains' lon/lat as published,
Esslingen's UTM 32 rings and the CityGML building's positions taken to lon/lat by pyproj here,
independently of the pipeline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import pyproj
import pytest
import shapely
from conftest import SAMPLES
from lxml import etree

from citypipe.core import warehouse
from citypipe.core.export import export, selection
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

FORMATS = ("gpkg", "fgb", "geojson", "csv")
CRS84 = pyproj.CRS("OGC:CRS84")
BUILDING = "citygml/sig3d_v2_Building_LOD2-EPSG25832.gml"
FOUNTAINS = SAMPLES / "barcelona_drinking_fountains.geojson"
ESSLINGEN = SAMPLES / "esslingen_parking_epsg25832.geojson"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """One lake for the module: 1988 fountains, 250 Esslingen polygons, a CityGML building."""
    root = tmp_path_factory.mktemp("export")
    lake = Lake(root / "lake")
    for name, sample in (
        ("fountains", FOUNTAINS),
        ("esslingen", ESSLINGEN),
        ("building", SAMPLES / BUILDING),
    ):
        copy = root / "in" / sample.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(sample, copy)
        ingest(copy, name, lake, validate=False)
    warehouse.refresh(lake)
    return lake


def read(path: Path) -> tuple[dict, list[shapely.Geometry], dict[str, list]]:
    """What GDAL reads from an exported file: its metadata, geometries and columns (through
    OGR features: GDAL 3.12's Arrow reader of FlatGeobuf breaks on a null geometry)."""
    meta, _, geometries, values = pyogrio.raw.read(path)
    columns = {name: list(v) for name, v in zip(meta["fields"], values, strict=True)}
    return meta, list(shapely.from_wkb(geometries)) if geometries is not None else [], columns


def by_id(columns: dict[str, list], geometries: list) -> dict[str, shapely.Geometry]:
    return dict(zip(columns["feature_id"], geometries, strict=True))


def assert_crs84(meta: dict, fmt: str) -> None:
    if fmt == "csv":
        assert meta["crs"] is None  # CSV holds none; the WKT is lon/lat
    else:  # RFC 7946 GeoJSON is EPSG:4326 to GDAL, in lon/lat order, as CRS84
        crs = pyproj.CRS(meta["crs"])
        assert crs.equals(CRS84, ignore_axis_order=fmt == "geojson"), meta["crs"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_fountains_in_every_format(lake, tmp_path, fmt):
    done = export(lake, selection(lake, source="fountains")[0], tmp_path / f"fountains.{fmt}")
    assert (done.rows, done.geometry_type, done.crs) == (1988, "Point", "OGC:CRS84")
    meta, geometries, columns = read(tmp_path / f"fountains.{fmt}")
    assert_crs84(meta, fmt)
    assert len(geometries) == 1988 and meta["geometry_type"] == (
        "Unknown" if fmt == "csv" else "Point"
    )
    source = json.loads(FOUNTAINS.read_text())["features"]
    got = by_id(columns, geometries)
    for n, feature in enumerate(source, start=1):  # ids are the record numbers: no ids in the file
        point = got[f"fountains/#{n}"]
        assert point.x == pytest.approx(feature["geometry"]["coordinates"][0], abs=1e-7)
        assert point.y == pytest.approx(feature["geometry"]["coordinates"][1], abs=1e-7)


@pytest.mark.parametrize("fmt", FORMATS)
def test_esslingen_polygons_match_the_utm_rings_taken_to_lon_lat_by_pyproj(lake, tmp_path, fmt):
    done = export(lake, selection(lake, source="esslingen")[0], tmp_path / f"e.{fmt}")
    meta, geometries, columns = read(done.path)
    assert_crs84(meta, fmt)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    got = by_id(columns, geometries)
    source = json.loads(ESSLINGEN.read_text())["features"]
    assert len(got) == len(source) == 250
    for n, feature in enumerate(source, start=1):
        polygon, rings = got[f"esslingen/#{n}"], feature["geometry"]["coordinates"]
        if not rings:  # six polygons without coordinates stay empty (or null)
            assert polygon is None or polygon.is_empty
            continue
        x, y = to_lonlat.transform(*np.array(rings[0]).T)
        ring = shapely.get_coordinates(polygon.exterior)
        if fmt == "geojson":  # RFC 7946: exterior rings counterclockwise
            assert polygon.exterior.is_ccw
            if not shapely.LinearRing(np.c_[x, y]).is_ccw:
                x, y = x[::-1], y[::-1]
        assert ring == pytest.approx(np.c_[x, y], abs=1e-7)
    if fmt == "geojson":
        assert '"crs"' not in done.path.read_text()


def _gml_positions(path: Path) -> np.ndarray:
    """Every x y z of the CityGML file's rings (polygons and triangles), in lon/lat by pyproj."""
    ns = {"gml": "http://www.opengis.net/gml"}
    tree = etree.parse(str(path))
    rings = tree.findall(".//gml:LinearRing/gml:posList", ns) + tree.findall(
        ".//gml:LinearRing/gml:pos", ns
    )
    xyz = np.array([float(v) for e in rings for v in e.text.split()]).reshape(-1, 3)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    return np.c_[np.array(to_lonlat.transform(xyz[:, 0], xyz[:, 1])).T, xyz[:, 2]]


def assert_among(vertices: np.ndarray, positions: np.ndarray) -> None:
    """Each vertex is one of the positions: lon/lat within 1e-9 degrees, the height exact."""
    for v in vertices:
        near = np.abs(positions[:, :2] - v[:2]).max(axis=1) < 1e-9
        assert v[2] in positions[near, 2], v


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_citygml_building_keeps_its_heights_in_geometry_3d(lake, tmp_path, fmt):
    """geometry_3d, lon/lat with the file's DHHN2016 heights, is WKT text beside the footprint."""
    positions = _gml_positions(SAMPLES / BUILDING)
    done = export(lake, selection(lake, source="building")[0], tmp_path / f"b.{fmt}")
    meta, geometries, columns = read(done.path)
    assert_crs84(meta, fmt)
    solids = [shapely.from_wkt(t) for t in columns["geometry_3d"] if t]
    assert solids and all(s.has_z for s in solids)
    vertices = np.concatenate([shapely.get_coordinates(s, include_z=True) for s in solids])
    assert_among(vertices, positions)
    assert set(vertices[:, 2]) == set(positions[:, 2]) == {112.0, 114.0, 115.0, 117.0}
    footprints = [g for g in geometries if g is not None and not g.is_empty]
    assert footprints and not any(g.has_z for g in footprints)


def test_geometry_3d_as_the_layer_geometry(lake, tmp_path):
    done = export(
        lake, selection(lake, source="building")[0], tmp_path / "b.fgb", geometry="geometry_3d"
    )
    assert done.geometry_type == "MultiPolygon Z"
    meta, geometries, columns = read(done.path)
    crs = pyproj.CRS(meta["crs"])
    assert (crs.sub_crs_list[0] if crs.is_compound else crs).equals(CRS84)
    vertices = np.concatenate(
        [shapely.get_coordinates(g, include_z=True) for g in geometries if g is not None]
    )
    assert_among(vertices, _gml_positions(SAMPLES / BUILDING))
    assert set(vertices[:, 2]) == {112.0, 114.0, 115.0, 117.0}
    assert all(
        shapely.from_wkt(t).has_z is False for t in columns["geometry"] if t
    )  # the footprint as WKT


def test_a_filtered_query_exports_what_it_selects(lake, tmp_path):
    """The fountains within 300 m of Plaça de Catalunya (README), counted here from the file."""
    sql = """SELECT name, feature_id, geometry FROM features
    WHERE source = 'fountains'
      AND ST_DWithin(ST_Transform(geometry, 'OGC:CRS84', 'EPSG:25831', always_xy := true),
                     ST_Transform(ST_Point(2.1700, 41.3870), 'OGC:CRS84', 'EPSG:25831',
                                  always_xy := true),
                     300)"""
    to_utm = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25831", always_xy=True)
    centre = shapely.Point(to_utm.transform(2.17, 41.387))
    expected = {
        f"fountains/#{n}"
        for n, f in enumerate(json.loads(FOUNTAINS.read_text())["features"], start=1)
        if shapely.Point(to_utm.transform(*f["geometry"]["coordinates"][:2])).distance(centre)
        <= 300
    }
    assert 0 < len(expected) < 1988
    done = export(lake, sql, tmp_path / "near.gpkg", layer="near")
    _, _, columns = read(done.path)
    assert set(columns["feature_id"]) == expected and done.rows == len(expected)
    assert (
        list(columns) == ["name", "feature_id"] and pyogrio.list_layers(done.path)[0][0] == "near"
    )


def test_polygons_beside_multipolygons_make_a_multipolygon_layer(lake, tmp_path):
    sql = """SELECT feature_id, geometry FROM features
             WHERE source = 'esslingen' AND feature_id < 'esslingen/#5'
    UNION ALL SELECT feature_id || 'm', ST_Multi(geometry) FROM features
    WHERE source = 'esslingen' AND feature_id < 'esslingen/#5' ORDER BY 1"""
    for fmt in ("gpkg", "fgb"):
        done = export(lake, sql, tmp_path / f"m.{fmt}")
        meta, geometries, columns = read(done.path)
        assert meta["geometry_type"] == "MultiPolygon" and done.rows == len(geometries) > 2
        got = by_id(columns, geometries)
        for fid in columns["feature_id"]:
            assert got[fid].geom_type == "MultiPolygon"
            assert got[fid].equals(got[fid.removesuffix("m")])


def test_a_result_without_geometry_is_a_table(lake, tmp_path):
    sql = "SELECT source, count(*) AS n FROM features GROUP BY 1 ORDER BY 1"
    for fmt in FORMATS:
        done = export(lake, sql, tmp_path / f"t.{fmt}")
        assert done.geometry is None
        _, _, columns = read(done.path)
        assert columns["source"] == ["building", "esslingen", "fountains"]
        assert [int(n) for n in columns["n"]][1:] == [250, 1988]


def test_a_projected_result_keeps_its_crs_and_geojson_is_lon_lat(lake, tmp_path):
    sql = (
        "SELECT feature_id, ST_Transform(geometry, 'EPSG:25831') AS g FROM features "
        "WHERE source = 'fountains'"
    )
    done = export(lake, sql, tmp_path / "utm.gpkg")
    meta, geometries, columns = read(done.path)
    assert pyproj.CRS(meta["crs"]).equals(pyproj.CRS("EPSG:25831")) and done.crs == "EPSG:25831"
    first = json.loads(FOUNTAINS.read_text())["features"][0]["geometry"]["coordinates"]
    to_utm = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25831", always_xy=True)
    assert by_id(columns, geometries)["fountains/#1"].coords[0] == pytest.approx(
        to_utm.transform(*first), abs=1e-3
    )
    done = export(lake, sql, tmp_path / "lonlat.geojson")  # RFC 7946: taken back to lon/lat
    _, geometries, columns = read(done.path)
    assert by_id(columns, geometries)["fountains/#1"].coords[0] == pytest.approx(first, abs=1e-7)


def citypipe(lake: Lake, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "citypipe.cli", *args, "--lake", str(lake.root)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_writes_and_refuses_to_overwrite_without_force(lake, tmp_path):
    dest = tmp_path / "f.gpkg"
    out = citypipe(lake, "export", str(dest), "--source", "fountains")
    assert out.returncode == 0 and out.stdout.startswith(
        f"{dest}: 1988 rows, gpkg, geometry as Point, OGC:CRS84"
    )
    before = dest.read_bytes()
    out = citypipe(lake, "export", str(dest), "--view", "buildings")
    assert (
        out.returncode == 2
        and out.stderr == f"citypipe: error: {dest} exists: --force replaces it\n"
    )
    assert dest.read_bytes() == before
    out = citypipe(lake, "export", str(dest), "--view", "buildings", "--force")
    assert out.returncode == 0, out.stderr
    assert pyogrio.read_info(dest)["features"] == 1 and sorted(
        p.name for p in tmp_path.iterdir()
    ) == ["f.gpkg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.shp", "--source", "fountains"], "no format known by the suffix '.shp'"),
        (
            ["x.gpkg", "--format", "kml", "--source", "fountains"],
            "format 'kml'; --format gpkg | fgb | geojson | csv",
        ),
        (
            ["x.gpkg", "--sql", "DELETE FROM features"],
            "only queries that read are allowed, not DELETE",
        ),
        (
            ["x.gpkg", "--sql", "COPY features TO '/tmp/x.csv'"],
            "only queries that read are allowed, not COPY",
        ),
        (["x.gpkg", "--sql", "SELECT * FROM read_csv('/etc/passwd')"], "query failed"),
        (["x.gpkg", "--sql", "SELECT CAST(name AS INTEGER) FROM features"], "query failed"),
        (["x.gpkg", "--source", "nowhere"], "no source 'nowhere' in the lake"),
        (["x.gpkg", "--view", "secrets"], "no view 'secrets'"),
        (["x.gpkg", "--sql", "SELECT ST_Point(1, 2) AS g"], "carries no CRS"),
        (
            ["x.gpkg", "--source", "fountains", "--geometry", "name"],
            "--geometry 'name' is not a GEOMETRY column",
        ),
        (["no/such/folder/x.gpkg", "--source", "fountains"], "no folder"),
    ],
)
def test_refusals_exit_2_in_one_line_and_leave_nothing(lake, tmp_path, args, message):
    args[0] = str(tmp_path / args[0])
    out = citypipe(lake, "export", *args)
    assert out.returncode == 2 and out.stderr.startswith("citypipe: error: "), out.stderr
    assert message in out.stderr.splitlines()[0] and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_query_that_fails_while_streaming_leaves_the_old_file(lake, tmp_path):
    """The cast fails on a row past the first batches: the file is only renamed in when whole."""
    dest = tmp_path / "f.fgb"
    export(lake, "SELECT 1 AS a", dest)
    before = dest.read_bytes()
    sql = (
        "SELECT feature_id, CAST(CASE WHEN feature_id = 'fountains/#1900' THEN 'x' ELSE '1' END "
        "AS INTEGER) FROM features"
    )
    out = citypipe(lake, "export", str(dest), "--sql", sql, "--force")
    assert out.returncode == 2 and "query failed" in out.stderr
    assert dest.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.fgb"]


def test_a_given_crs_labels_a_result_that_carries_none(lake, tmp_path):
    sql = (
        "SELECT ST_Transform(geometry, 'OGC:CRS84', 'EPSG:25831', always_xy := true) AS g "
        "FROM features WHERE source = 'fountains'"
    )
    out = citypipe(lake, "export", str(tmp_path / "u.fgb"), "--sql", sql, "--crs", "EPSG:25831")
    assert out.returncode == 0, out.stderr
    assert pyproj.CRS(pyogrio.read_info(tmp_path / "u.fgb")["crs"]).equals(pyproj.CRS("EPSG:25831"))


CHILD = """
import sys
from citypipe import cli  # imported before the baseline
from citypipe.core import export, warehouse

def peak():  # VmHWM starts afresh at exec, unlike ru_maxrss (the parent's high-water mark)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

before = peak()
code = cli.main(sys.argv[1:])
print(code, peak() - before)
"""


def test_memory_is_bounded_by_a_batch_not_by_the_result(tmp_path):
    """80,000 rows of 1 KB each peak within 70 MB of 20,000 (measured: 35 MB more; held whole
    in memory, the result made it 145 MB more)."""
    lake = Lake(tmp_path / "lake")
    sizes = {"small": 20_000, "large": 80_000}
    for name, n in sizes.items():
        path = tmp_path / f"{name}.geojson"
        features = (
            {
                "type": "Feature",
                "properties": {"text": f"{i:06d}" * 170},
                "geometry": {"type": "Point", "coordinates": [9 + i * 1e-5, 48.7]},
            }
            for i in range(n)
        )
        with path.open("w") as f:
            f.write('{"type": "FeatureCollection", "features": [')
            f.write(",".join(json.dumps(x) for x in features) + "]}")
        ingest(path, name, lake, validate=False)
    warehouse.refresh(lake)
    peaks = {}
    for name in ("small", "large"):
        args = [
            "export",
            str(tmp_path / f"{name}.gpkg"),
            "--source",
            name,
            "--lake",
            str(lake.root),
        ]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
        )
        code, peaks[name] = out.stdout.split()[-2:]
        assert code == "0", out.stderr
        assert pyogrio.read_info(tmp_path / f"{name}.gpkg")["features"] == sizes[name]
    assert float(peaks["large"]) < float(peaks["small"]) + 70, peaks
