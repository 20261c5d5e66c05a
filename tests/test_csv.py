"""CSV files: encodings, delimiters, geometry as WKT, EWKB or coordinate columns, typed attributes.

Expected values are read from the files themselves (with the stdlib csv module) or taken from
the corpus MANIFEST (row counts), never from the connector's own output.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from conftest import data_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors.csvtable import CSVConnector
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.registry import detect
from citypipe.connectors.text import detect_encoding
from citypipe.core.ingest import ingest
from citypipe.geo.errors import CitypipeError, DataError, UnknownCRS

BIELEFELD = "bielefeld_parking_wkt.csv"
BIETIGHEIM = "bietigheim-bissingen_parking_realtime_latin1.csv"
NECKARSULM = "neckarsulm_parking_ewkb.csv"
REUTLINGEN = "reutlingen_bike_parking_utm32_wkt.csv"


def _rows(path: Path, encoding: str, delimiter: str) -> list[dict[str, str]]:
    with open(path, encoding=encoding, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _features(table) -> list[tuple[dict, shapely.Geometry | None]]:
    """(properties, geometry) of each feature row."""
    props = [json.loads(p) for p in table.column("properties").to_pylist()]
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    return list(zip(props, geoms, strict=False))


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# -- detection and encodings -------------------------------------------------------------


@pytest.mark.parametrize("name", [BIELEFELD, BIETIGHEIM, NECKARSULM, REUTLINGEN])
def test_detection_picks_csv_by_content(sample, tmp_path, name):
    path = sample(name)
    assert detect(path) is CSVConnector
    renamed = path.rename(tmp_path / "download.dat")  # the name plays no part
    assert detect(renamed) is CSVConnector


def test_sniff_leaves_other_content_alone(sample):
    geojson = sample("jena_parking.geojson").read_bytes()[:65536]
    assert 0 < CSVConnector.sniff(sample(BIELEFELD).read_bytes()) < GeoJSONConnector.sniff(geojson)
    for head in (
        geojson,
        b'{"a": 1,\n "b": 2,\n "c": 3}\n',
        b'<?xml version="1.0"?>\n<root a="1,2">\n<x>1,2</x>\n</root>\n',
        b"",
        b"12;34\n",  # one record alone, not a header: no names
        b"name;name\n",  # nor with names that repeat
        bytes(range(256)) * 16,
        b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00" * 100,
    ):
        assert CSVConnector.sniff(head) == 0


def test_detect_encoding(sample):
    latin1 = sample(BIETIGHEIM).read_bytes()
    first_row = latin1.decode(detect_encoding(latin1)).splitlines()[1]
    assert first_row.startswith('"Parkplatz Mühlwiesenstr.";"Geöffnet";')
    assert detect_encoding(sample(REUTLINGEN).read_bytes()) == "utf-8-sig"
    assert detect_encoding(sample(BIELEFELD).read_bytes()) == "utf-8"
    assert detect_encoding("Straße".encode()[:-1]) == "utf-8"  # a head cut inside "ß"
    assert detect_encoding(bytes(100)) is None
    # too short for statistics: the Western code page, not any other that decodes the bytes
    assert detect_encoding("name;ort\nMüller;1\n".encode("cp1252")) == "cp1252"
    assert detect_encoding("name;ort\nMüller;Köln\n".encode("latin-1")) == "cp1252"


# -- the four city files -----------------------------------------------------------------


def test_bielefeld_wkt_points_and_j_n_booleans(sample, lake, read_lake):
    """Bare WKT declares no CRS: refused whole until --crs says these are longitude/latitude."""
    path = sample(BIELEFELD)
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs"):
        ingest(path, "bielefeld", lake)
    report = ingest(path, "bielefeld", lake, crs="OGC:CRS84")
    assert report.records == 853 and report.features + report.rejects == 853
    assert report.rejects == 0 and report.declared_crs is None
    rows = {r["gid"]: r for r in _rows(path, "utf-8", ";")}
    features = _features(read_lake("bielefeld"))
    assert len(features) == len(rows)
    for props, geom in features:
        row = rows[props["gid"]]
        assert "WKT" not in props
        assert shapely.equals_exact(geom, shapely.from_wkt(row["WKT"]), tolerance=1e-9)
        for flag in ("oeffi", "kundenp", "frauen"):
            assert props[flag] == {"J": True, "N": False, "": None}[row[flag]]
        assert props["zufahrt"] == (row["zufahrt"] or None)
    assert "gegenüber Lutterstraße 20" in {p["zufahrt"] for p, _ in features}


def test_bietigheim_latin1_without_geometry(sample, lake, read_lake):
    path = sample(BIETIGHEIM)
    report = ingest(path, "bietigheim", lake)
    assert (report.records, report.features, report.rejects) == (14, 14, 0)
    table = read_lake("bietigheim")
    assert table.column("geometry").null_count == 14
    names = table.column("name").to_pylist()
    assert "Parkplatz Mühlwiesenstr." in names and "Parkhaus Löchgauer Str." in names
    first = json.loads(table.column("properties")[names.index("Parkplatz Mühlwiesenstr.")].as_py())
    assert first == {
        "Name": "Parkplatz Mühlwiesenstr.",
        "OpeningState": "Geöffnet",
        "Capacity": 106,
        "OccupiedSites": 81,
        "Timestamp": 1740651467085,
    }
    observed = table.column("observed_at")[names.index("Parkplatz Mühlwiesenstr.")].as_py()
    assert observed == datetime.fromtimestamp(1740651467.085, tz=UTC)


def test_neckarsulm_ewkb_matches_its_coordinate_columns(sample, lake, read_lake):
    path = sample(NECKARSULM)
    report = ingest(path, "neckarsulm", lake, options={"id": "id"})
    assert (report.records, report.features, report.rejects) == (41, 41, 0)
    assert report.declared_crs == "EPSG:4326"
    rows = {r["id"]: r for r in _rows(path, "utf-8", ";")}
    table = read_lake("neckarsulm")
    assert set(table.column("source_id").to_pylist()) == set(rows)  # the `id` option
    compared = 0
    ids, raw = table.column("source_id").to_pylist(), table.column("properties").to_pylist()
    for sid, text, (props, geom) in zip(ids, raw, _features(table), strict=False):
        row = rows[sid]
        assert len(props) == 66 and "geom" not in props  # 67 columns less the geometry
        assert props["mobiwert"] is {"ja": True, "nein": False}[row["mobiwert"]]
        assert f'"mobiwert":{json.dumps(row["mobiwert"] == "ja")}' in text
        assert props["name"] == row["name"]
        if row["dhid"] == "N/A":
            assert props["dhid"] is None and '"dhid":null' in text
        if row["x-koord"]:
            point = [float(row["x-koord"]), float(row["y-koord"])]
            assert shapely.get_coordinates(geom)[0] == pytest.approx(point, abs=1e-8)
            compared += 1
    assert compared >= 40


@pytest.mark.parametrize("blank", ["\n", "\r\n\n"])
def test_blank_lines_before_the_header_are_skipped(sample, tmp_path, lake, read_lake, blank):
    """pyarrow's reader skips blank lines, the header's first among them: the dialect takes the
    same header (found by hypothesis: a newline in place of the first byte crashed the run)."""
    path = tmp_path / "blank.csv"
    path.write_bytes(blank.encode() + sample(NECKARSULM).read_bytes())
    report = ingest(path, "blank", lake, options={"id": "id"})
    assert (report.records, report.features, report.rejects) == (41, 41, 0)
    rows = _rows(sample(NECKARSULM), "utf-8", ";")
    assert set(read_lake("blank").column("source_id").to_pylist()) == {r["id"] for r in rows}


def test_reutlingen_utm_without_crs_is_refused_with_advice(sample, lake):
    """UTM metres in a WKT column, no CRS stated (MANIFEST): the source is refused, nothing
    written."""
    path = sample(REUTLINGEN)
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs") as refused:
        ingest(path, "reutlingen", lake)
    assert str(path) in str(refused.value)
    assert not lake.root.exists() or not data_files(lake.root)


def test_reutlingen_with_crs_lands_in_reutlingen(sample, lake, read_lake):
    path = sample(REUTLINGEN)
    report = ingest(path, "reutlingen", lake, crs="EPSG:25832")
    assert (report.records, report.features, report.rejects) == (334, 334, 0)
    features = _features(read_lake("reutlingen"))
    lonlat = shapely.get_coordinates(np.array([g for _, g in features]))
    # Reutlingen and its districts: about 9.1-9.3 E, 48.4-48.6 N
    assert (abs(lonlat[:, 0] - 9.2) < 0.1).all() and (abs(lonlat[:, 1] - 48.5) < 0.1).all()
    first = _rows(path, "utf-8-sig", ",")[0]
    x, y = map(float, re.findall(r"[\d.]+", first["GEOM"]))
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    (got,) = [g for p, g in features if p["STANDORT"] == first["STANDORT"]]
    geod = pyproj.Geod(ellps="WGS84")
    assert geod.inv(lon, lat, got.x, got.y)[2] < 3.0  # metres
    assert {p["STANDORT"] for p, _ in features} >= {"Oberamteistraße / Heimatmuseum"}


# -- generated files -------------------------------------------------------------------------


def test_wkt_in_a_middle_column_with_comma_delimiter(tmp_path, lake, read_lake):
    path = _write(
        tmp_path,
        "places.csv",
        "id,name,geometry,height,plz,code,size\n"
        '1,"Rathaus, Nord",POINT (9.18 48.78),12.5,01067,1,"1,80 m"\n'
        '2,Markt,"LINESTRING (9.1 48.7, 9.2 48.8)",7,70173,0,2 m\n'
        '3,"Park ""Ost""","POLYGON ((9 48, 9.1 48, 9.1 48.1, 9 48))",,80331,1,\n',
    )
    report = ingest(path, "places", lake, crs="OGC:CRS84", options={"id": "id"})
    assert (report.features, report.rejects) == (3, 0)
    table = read_lake("places")
    got = dict(zip(table.column("source_id").to_pylist(), _features(table), strict=False))
    props, geom = got["1"]
    assert props == {
        "id": 1,
        "name": "Rathaus, Nord",
        "height": 12.5,
        "plz": "01067",  # a leading zero keeps a code text
        "code": 1,  # 1/0 is a number, not a boolean
        "size": "1,80 m",
    }
    assert geom.equals(shapely.Point(9.18, 48.78))
    assert got["2"][1].equals(shapely.from_wkt("LINESTRING (9.1 48.7, 9.2 48.8)"))
    assert got["3"][0]["name"] == 'Park "Ost"' and got["3"][0]["height"] is None
    assert got["3"][1].geom_type == "Polygon"


def test_latitude_longitude_columns(tmp_path, lake, read_lake):
    path = _write(
        tmp_path,
        "stations.csv",
        "Station;Latitude;Longitude;Offen\n"
        "Königstraße;48,7838;9,1818;ja\n"
        "Nord;48.8001;9.2002;nein\n"
        "Ohne Lage;;;ja\n",
        encoding="cp1252",
    )
    report = ingest(path, "stations", lake)
    assert (report.features, report.rejects) == (3, 0)
    got = {p["Station"]: (p, g) for p, g in _features(read_lake("stations"))}
    point = got["Königstraße"][1]
    assert (point.x, point.y) == pytest.approx((9.1818, 48.7838))
    assert (got["Nord"][1].x, got["Nord"][1].y) == pytest.approx((9.2002, 48.8001))
    assert got["Ohne Lage"][1] is None
    assert got["Königstraße"][0]["Offen"] is True and got["Nord"][0]["Offen"] is False


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        ("Breitengrad", "Längengrad"),
        ("geo_breite", "geo_laenge"),
        ("Latitud", "Longitud"),
        ("LATITUDINE", "LONGITUDINE"),
        ("breedtegraad", "lengtegraad"),
        ("Y_WGS84", "X_WGS84"),  # x / y of WGS 84 are longitude / latitude
        ("coord_y_wgs84", "coord_x_wgs84"),
        ("Breddegrad", "Længdegrad"),  # Danish
        ("breddegrad", "lengdegrad"),  # Norwegian
        ("Leveysaste", "Pituusaste"),  # Finnish
        ("Platuma", "Ilguma"),  # Lithuanian
    ],
)
def test_coordinate_columns_named_in_the_languages_of_city_portals(
    tmp_path, lake, read_lake, lat, lon
):
    path = _write(
        tmp_path, "p.csv", f"Name;{lat};{lon}\nMarktplatz;48,7758;9,1829\n", encoding="cp1252"
    )
    assert ingest(path, "p", lake).features == 1
    [(_, point)] = _features(read_lake("p"))
    assert (point.x, point.y) == pytest.approx((9.1829, 48.7758))


def test_width_and_length_are_not_taken_for_coordinates(tmp_path, lake, read_lake):
    """Czech "šířka" and "délka" (and Polish "szerokość", "długość") are a parking space's
    width and length as well as latitude and longitude: alone they name no coordinates."""
    text = "Název;Šířka;Délka;Szerokość;Długość\nStání 1;2,5;5,0;2,5;5,0\n"
    path = _write(tmp_path, "p.csv", text, encoding="utf-8")
    assert ingest(path, "p", lake).features == 1
    [(properties, point)] = _features(read_lake("p"))
    assert point is None and properties["Šířka"] == "2,5"


def test_projected_coordinate_columns_land_with_their_crs(tmp_path, lake, read_lake):
    path = _write(tmp_path, "gk.csv", "Name;Rechtswert;Hochwert\nA;513000,5;5402000,25\n")
    with pytest.raises(UnknownCRS, match="--crs"):  # never taken for lon/lat
        ingest(path, "gk", lake)
    utm = _write(tmp_path, "utm.csv", "Name;X_WGS84_UTM32;Y_WGS84_UTM32\nA;513000,5;5402000,25\n")
    with pytest.raises(UnknownCRS, match="--crs"):  # WGS 84, projected
        ingest(utm, "utm", lake)
    assert ingest(path, "gk", lake, crs="EPSG:25832").features == 1
    [(_, point)] = _features(read_lake("gk"))
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    assert (point.x, point.y) == pytest.approx(to_lonlat.transform(513000.5, 5402000.25), abs=1e-7)


def test_coordinate_columns_named_in_options(tmp_path, lake, read_lake):
    path = _write(tmp_path, "xy.csv", "name|rechts|hoch\nA|513000|5402000\n")
    report = ingest(path, "xy", lake, crs="EPSG:25832", options={"x": "rechts", "y": "hoch"})
    assert report.features == 1
    [(props, geom)] = _features(read_lake("xy"))
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    assert (geom.x, geom.y) == pytest.approx(to_lonlat.transform(513000, 5402000), abs=1e-7)
    assert props == {"name": "A", "rechts": 513000, "hoch": 5402000}


def test_ewkt_srid_declares_the_crs(tmp_path, lake, read_lake):
    path = _write(tmp_path, "ewkt.csv", "n,wkt\na,SRID=25832;POINT (515638.229 5370830.304)\n")
    report = ingest(path, "ewkt", lake)
    assert report.declared_crs == "EPSG:25832" and report.features == 1
    [(_, geom)] = _features(read_lake("ewkt"))
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    expected = to_lonlat.transform(515638.229, 5370830.304)
    assert (geom.x, geom.y) == pytest.approx(expected, abs=1e-7)


EWKT_ROWS = [
    ("1", "Plaça Reial", "SRID=25832;POINT (515638.229 5370830.304)"),
    ("2", 'a "quoted" note; SRID=1;X', "SRID=25832;LINESTRING (515600 5370800, 515700 5370900)"),
    (
        "3",
        "two\nlines",
        "SRID=25832;POLYGON ((515600 5370800, 515700 5370800, 515700 5370900, 515600 5370800))",
    ),
    ("4", "empty", "SRID=25832;POINT EMPTY"),
]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_unquoted_ewkt_in_a_semicolon_file_reads_as_its_quoted_form(
    tmp_path, lake, read_lake, encoding
):
    """PostGIS EWKT exported to `;` text without quotes around it: the `;` of each value splits
    it, yet the rows land as the same rows written with it quoted (csv.writer's), with the
    SRID as the CRS; a quoted value that mentions an SRID and a line end is kept as written."""
    quoted = io.StringIO()
    csv.writer(quoted, delimiter=";", lineterminator="\r\n").writerows(
        [("id", "name", "geom"), *EWKT_ROWS]
    )
    unquoted = (
        quoted.getvalue().replace('"SRID', "SRID").replace(')"', ")").replace('EMPTY"', "EMPTY")
    )
    assert unquoted.count("SRID=25832;") == len(EWKT_ROWS) and '"SRID=25832' not in unquoted
    for name, text in (("quoted", quoted.getvalue()), ("unquoted", unquoted)):
        report = ingest(_write(tmp_path, f"{name}.csv", text, encoding), name, lake)
        assert (report.features, report.rejects) == (len(EWKT_ROWS), 0)
        assert report.declared_crs == "EPSG:25832"
    landed = {
        n: sorted(_features(read_lake(n)), key=lambda f: f[0]["id"]) for n in ("quoted", "unquoted")
    }
    assert [p for p, _ in landed["unquoted"]] == [p for p, _ in landed["quoted"]]
    assert [p["name"] for p, _ in landed["unquoted"]] == [name for _, name, _ in EWKT_ROWS]
    for (_, a), (_, b) in zip(landed["unquoted"], landed["quoted"], strict=True):
        assert a is None and b is None or shapely.equals_exact(a, b, 0)
    assert landed["unquoted"][0][1] is not None


def test_a_row_unquoted_ewkt_does_not_explain_is_rejected_with_its_reason(
    tmp_path, lake, read_lake
):
    text = "id;geom\n1;SRID=4326;POINT (2.17 41.38)\n2;3;SRID=4326;POINT (2.18 41.39)\n"
    text += "".join(f"{i};SRID=4326;POINT (2.1{i} 41.3{i})\n" for i in range(3, 9))
    report = ingest(_write(tmp_path, "e.csv", text), "e", lake)
    assert (report.records, report.features, report.rejects) == (8, 7, 1)
    reject = read_lake("e", "rejects").to_pylist()[0]
    assert reject["record"].startswith("2;3;") and "where the header has 2" in reject["reason"]


def test_one_bad_wkt_is_rejected_the_rest_ingested(tmp_path, lake, read_lake):
    path = _write(
        tmp_path,
        "bad.csv",
        "name,wkt\nA,POINT (9.1 48.1)\nB,POINT (9.2 48.2\nC,POINT (9.3 48.3)\nD,\n",
    )
    report = ingest(path, "bad", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (4, 3, 1)
    rejects = read_lake("bad", "rejects")
    assert rejects.column("reason")[0].as_py().startswith("unreadable WKT in column wkt")
    assert rejects.column("record")[0].as_py() == "B,POINT (9.2 48.2"
    names = {p["name"]: g for p, g in _features(read_lake("bad"))}
    assert set(names) == {"A", "C", "D"} and names["D"] is None


def test_row_with_wrong_field_count_is_rejected(tmp_path, lake, read_lake):
    path = _write(
        tmp_path, "ragged.csv", "a;b;wkt\n1;2;POINT (1 2)\n3;4;5;POINT (3 4)\n6;7;POINT (6 7)\n"
    )
    report = ingest(path, "ragged", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (3, 2, 1)
    reject = read_lake("ragged", "rejects").to_pylist()[0]
    assert reject["record"] == "3;4;5;POINT (3 4)" and "4 fields" in reject["reason"]


def test_geometry_column_named_in_options(tmp_path, lake, read_lake):
    """The option wins over detection: here the first column would be taken for the geometry."""
    path = _write(
        tmp_path, "two.csv", "start;end\nPOINT (9.1 48.1);POINT (9.2 48.2)\nPOINT (9.3 48.3);\n"
    )
    assert ingest(path, "two", lake, crs="OGC:CRS84", options={"geometry": "end"}).features == 2
    got = _features(read_lake("two"))
    assert [p for p, _ in got] == [{"start": "POINT (9.1 48.1)"}, {"start": "POINT (9.3 48.3)"}]
    assert got[0][1].equals(shapely.Point(9.2, 48.2)) and got[1][1] is None


def test_rows_longer_than_a_block(tmp_path, lake):
    """A polygon of 4 MB of WKT in one row: the block size grows to hold it."""
    angles = np.linspace(0, 2 * np.pi, 120_000)[:-1]
    ring = ", ".join(f"{9 + 0.1 * np.cos(t):.12f} {48 + 0.1 * np.sin(t):.12f}" for t in angles)
    wkt = f"POLYGON (({ring}, {9.1:.12f} {48:.12f}))"
    assert len(wkt) > 3_000_000
    path = _write(tmp_path, "big.csv", f'name,wkt\na,"{wkt}"\nb,"{wkt}"\nc,POINT (9 48)\n')
    report = ingest(path, "big", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (3, 3, 0)


def test_inspect_counts_rows_with_newlines_in_values(tmp_path):
    path = _write(
        tmp_path, "multi.csv", 'name,note,wkt\nA,"two\nlines",POINT (1 2)\nB,x,POINT (3 4)\n'
    )
    info = CSVConnector(path).inspect()
    assert (info.format, info.count, info.crs) == ("CSV", 2, None)


# -- errors ------------------------------------------------------------------------------------


def test_not_delimited_text_is_a_data_error(sample, tmp_path):
    path = sample("jena_parking.geojson")
    with pytest.raises(DataError) as e:
        list(CSVConnector(path).read())
    assert str(e.value).startswith(f"{path}: not delimited text")
    with pytest.raises(DataError) as e:
        CSVConnector(tmp_path / "missing.csv").inspect()
    assert str(e.value).startswith(f"{tmp_path / 'missing.csv'}: cannot be read")


def test_wrong_encoding_option_is_a_data_error(sample):
    path = sample(BIETIGHEIM)
    with pytest.raises(DataError) as e:
        list(CSVConnector(path, encoding="utf-8").read())
    assert str(e.value).startswith(f"{path}: ") and "encoding" in str(e.value)


@pytest.mark.parametrize("rows", [2, 3])
def test_a_few_rows_with_a_damaged_geometry_reject_that_row_alone(sample, lake, read_lake, rows):
    """Reutlingen's first rows, the last one's GEOM cut short (a truncated export): the column
    named GEOM stays the geometry column though half its values or fewer are readable, so the
    damaged row is rejected with its reason and the others keep their points (before, every row
    landed without a geometry and nothing was rejected)."""
    path = sample(REUTLINGEN)
    source = _rows(path, "utf-8-sig", ",")[:rows]
    lines = path.read_text(encoding="utf-8-sig").splitlines()[: rows + 1]
    lines[-1] = lines[-1][: lines[-1].index("POINT (") + 12]  # "POINT (51563"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(path, "cut", lake, crs="EPSG:25832")
    assert (report.features, report.rejects) == (rows - 1, 1)
    [reason] = read_lake("cut", "rejects").column("reason").to_pylist()
    assert "GEOM" in reason
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    landed = {props["STANDORT"]: geom for props, geom in _features(read_lake("cut"))}
    assert set(landed) == {row["STANDORT"] for row in source[:-1]}
    for row in source[:-1]:
        geom = landed[row["STANDORT"]]
        x, y = shapely.from_wkt(row["GEOM"]).coords[0]
        assert geom.coords[0] == pytest.approx(to_lonlat.transform(x, y), abs=1e-7)


def _bielefeld_head(sample, lake) -> tuple[Path, list[str]]:
    """Bielefeld's header and first 30 rows as a file, landed as source `original`."""
    path = sample(BIELEFELD)
    lines = path.read_text(encoding="utf-8").splitlines()[:31]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest(path, "original", lake, crs="OGC:CRS84")
    return path, lines


def _landed(read_lake, source: str) -> list[tuple[str, str]]:
    """A source's features as (properties' JSON, geometry's WKT), sorted."""
    return sorted((json.dumps(p, sort_keys=True), g.wkt) for p, g in _features(read_lake(source)))


@pytest.mark.parametrize("where", ["rows", "header"])
def test_a_trailing_delimiter_on_rows_or_header_alone_reads_as_the_original(
    sample, lake, read_lake, where
):
    """Bielefeld's first rows with a delimiter ending every row but not the header (or the
    header alone), as some exporters write them: refused as "not a format citypipe reads"
    (no delimiter split header and rows alike); they land as the original rows do."""
    path, lines = _bielefeld_head(sample, lake)
    changed = path.with_name("trailing.csv")
    ended = [
        line + ";" if (i == 0) == (where == "header") else line for i, line in enumerate(lines)
    ]
    changed.write_text("\n".join(ended) + "\n", encoding="utf-8")
    report = ingest(changed, "trailing", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (30, 30, 0)
    assert _landed(read_lake, "trailing") == _landed(read_lake, "original")


@pytest.mark.parametrize("line", ["sep=;", '"sep=;"'])
def test_excels_sep_line_declares_the_delimiter(sample, lake, read_lake, line):
    """Bielefeld's first rows under Excel's `sep=;` line (the delimiter declared above the
    header, as Excel writes and reads it): refused as "not a format citypipe reads"; they land
    as the original rows do, the line neither a row nor the header."""
    path, lines = _bielefeld_head(sample, lake)
    declared = path.with_name("declared.csv")
    declared.write_text("\r\n".join([line, *lines]) + "\r\n", encoding="utf-8")
    assert detect(declared) is CSVConnector
    assert CSVConnector.sniff(f"{line}\r\n".encode()) == 0.0  # the line alone is no table
    report = ingest(declared, "declared", lake, crs="OGC:CRS84")
    assert (report.records, report.features, report.rejects) == (30, 30, 0)
    assert _landed(read_lake, "declared") == _landed(read_lake, "original")


@pytest.mark.parametrize(("name", "column", "quoted"), [
    (BIELEFELD, "WKT", True), (BIELEFELD, "WKT", False), (NECKARSULM, "geom", False),
])  # fmt: skip
def test_a_table_of_one_geometry_column_lands(sample, lake, read_lake, name, column, quoted):
    """The geometry column of Bielefeld (WKT, quoted or not: its points hold no comma) or
    Neckarsulm (hex EWKB) alone, as GDAL writes a layer without attributes: no delimiter
    splits it, and it was refused; every row lands with the geometry the file holds."""
    rows = _rows(sample(name), "utf-8-sig", ";")
    values = [r[column] for r in rows if r[column]]
    path = sample(name).with_name("geometries.csv")
    path.write_text(
        "\n".join([column, *(f'"{v}"' if quoted else v for v in values)]) + "\n",
        encoding="utf-8",
    )
    report = ingest(path, "geometries", lake, crs="EPSG:4326")
    assert (report.records, report.features, report.rejects) == (len(values), len(values), 0)
    landed = sorted(g.wkt for _, g in _features(read_lake("geometries")))
    parse = shapely.from_wkb if column == "geom" else shapely.from_wkt
    assert landed == sorted(shapely.force_2d(parse(v)).wkt for v in values)


def test_a_single_column_without_geometries_is_still_refused(sample):
    """One column of names (Bielefeld's `bez`) is not a table citypipe can place anywhere."""
    rows = _rows(sample(BIELEFELD), "utf-8", ";")
    path = sample(BIELEFELD).with_name("names.csv")
    path.write_text("\n".join(["bez", *(r["bez"] for r in rows[:20])]) + "\n", encoding="utf-8")
    assert CSVConnector.sniff(path.read_bytes()) == 0.0


def test_repeated_and_empty_column_names_keep_every_value(tmp_path, lake, read_lake):
    """A header naming a column twice, and columns without a name (pandas writes its index so):
    the last value of a name replaced the others, and empty names were the key ""; each value
    is kept, the repeated name as name_2, the unnamed as field_N (its position, as GDAL names
    it)."""
    rows = [
        ["0", "Font A", "Font B", "2.17", "41.38", "x"],
        ["1", "Font C", "Font D", "2.18", "41.39", "y"],
    ]
    text = "\n".join(",".join(r) for r in [["", "name", "name", "lon", "lat", ""], *rows])
    report = ingest(_write(tmp_path, "named.csv", text + "\n"), "named", lake)
    assert (report.features, report.rejects) == (2, 0)
    landed = [p for p, _ in _features(read_lake("named"))]
    names = ["field_1", "name", "name_2", "lon", "lat", "field_6"]
    expected = [dict(zip(names, r, strict=True)) for r in rows]
    for got, want in zip(sorted(landed, key=lambda p: p["field_1"]), expected, strict=True):
        assert {k: str(v) for k, v in got.items()} == want


def test_a_column_of_geojson_geometries_lands_as_lon_lat(sample, lake, read_lake):
    """Barcelona's fountains as Opendatasoft exports a dataset to CSV: a "Geo Shape" column of
    GeoJSON geometries (RFC 7946: lon/lat). They landed without geometry; each lands where the
    GeoJSON file puts it, and a damaged one is rejected naming its column."""
    features = json.loads(sample("barcelona_drinking_fountains.geojson").read_text())["features"]
    rows = [(f["properties"]["INVENTARI_CODI"], json.dumps(f["geometry"])) for f in features[:40]]
    rows.append(("broken", '{"type": "Point", "coordinates": [2.17'))
    quoted = [(c, '"' + g.replace('"', '""') + '"') for c, g in rows]
    lines = ["codi;Geo Shape"] + [f"{c};{g}" for c, g in quoted]
    path = _write(
        sample("barcelona_drinking_fountains.geojson").parent, "ods.csv", "\n".join(lines)
    )
    report = ingest(path, "ods", lake)
    assert (report.features, report.rejects) == (40, 1)
    landed = {p["codi"]: g for p, g in _features(read_lake("ods"))}
    for f in features[:40]:
        assert landed[f["properties"]["INVENTARI_CODI"]].equals(
            shapely.geometry.shape(f["geometry"])
        )
    [why] = read_lake("ods", "rejects").column("reason").to_pylist()
    assert why.startswith("unreadable GeoJSON in column Geo Shape")


_WORDS = {"j", "n", "ja", "nein", "true", "false", "yes", "no", "na", "n/a", "null"}
_NAME = (
    st.tuples(
        st.from_regex(r"[A-Za-z][A-Za-z ,;|\t\"']{0,10}[A-Za-z]", fullmatch=True),
        st.sampled_from(["", " Plaça", " Glòries", " Königstraße", " Genève", " Malmö", " Åre"]),
    )
    .map("".join)
    .filter(lambda n: n.lower() not in _WORDS)
)
"""Names with delimiters and quotes inside, some with words of cp1252's languages (random
letters beyond ASCII are no language's, and code pages are told apart by languages); not the
null and boolean words, which are typed."""


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(_NAME, st.floats(-179.9, 179.9).map(lambda v: round(v, 5)),
                  st.floats(-89.9, 89.9).map(lambda v: round(v, 5))),
        min_size=1, max_size=8,
    ),
    delimiter=st.sampled_from(";,\t|"),
    decimal_comma=st.booleans(),
    sep_line=st.booleans(),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    codec=st.sampled_from(["utf-8", "cp1252"]),
)  # fmt: skip
def test_lon_lat_rows_written_any_way_land_as_written(
    tmp_path, rows, delimiter, decimal_comma, sep_line, bom, newline, codec
):
    """Names and lon / lat columns as office software and portals write them: any delimiter,
    decimal comma or point, Excel's sep= line, a BOM, CRLF, UTF-8 or cp1252, every field
    quoted where it must be: each row lands with its name and its point."""
    if decimal_comma and delimiter == ",":
        delimiter = ";"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(["Name", "Longitude", "Latitude"])
    for name, lon, lat in rows:
        numbers = [repr(v).replace(".", ",") if decimal_comma else repr(v) for v in (lon, lat)]
        writer.writerow([name, *numbers])
    text = (f"sep={delimiter}{newline}" if sep_line else "") + out.getvalue()
    data = ("\ufeff" if bom and codec == "utf-8" else "") + text
    path = tmp_path / f"rows-{uuid.uuid4().hex}.csv"
    path.write_bytes(data.encode(codec))
    batches = list(CSVConnector(path).read())
    names = [p["Name"] for b in batches for p in b.properties]
    points = [xy for b in batches for xy in b.geometries.xy.tolist()]
    assert not any(e for b in batches for e in b.errors)
    assert names == [n for n, _, _ in rows]
    assert points == [[lon, lat] for _, lon, lat in rows]


def test_an_opendatasoft_geo_point_column_is_latitude_then_longitude(tmp_path, lake, read_lake):
    """Opendatasoft's exports (Paris, Bordeaux, Brussels ...) give a point as one column, "Geo
    Point" or geo_point_2d, latitude first: "48.8584, 2.2945" is the Eiffel Tower. A value that
    is no such pair is rejected with the reason; an empty one is a record without geometry."""
    text = (
        "nom;Geo Point;arrondissement\n"
        "Tour Eiffel;48.8584, 2.2945;7\n"
        "Notre-Dame;48.853,2.3499;4\n"
        "Sans lieu;;1\n"
        "Ailleurs;quelque part;2\n"
    )
    path = _write(tmp_path, "paris.csv", text, encoding="utf-8")
    report = ingest(path, "paris", lake)
    assert (report.features, report.rejects) == (3, 1)
    got = {p["nom"]: point for p, point in _features(read_lake("paris"))}
    assert (got["Tour Eiffel"].x, got["Tour Eiffel"].y) == pytest.approx((2.2945, 48.8584))
    assert (got["Notre-Dame"].x, got["Notre-Dame"].y) == pytest.approx((2.3499, 48.853))
    assert got["Sans lieu"] is None
    [reject] = read_lake("paris", "rejects").to_pylist()
    assert "Geo Point='quelque part'" in reject["reason"]


def test_a_wkt_column_none_of_whose_values_reads_is_rejected_row_by_row(tmp_path, lake):
    """WKT written with decimal commas (a spreadsheet's export in a German locale), in a
    column named as a geometry: no row readable, each rejected with its reason, none landing
    without a geometry; the run refused in one line naming them."""
    text = "id;wkt;wert\n1;POINT(9,31 48,74);3,5\n2;LINESTRING(9,31 48,74, 9,32 48,75);4\n"
    path = _write(tmp_path, "komma.csv", text)
    with pytest.raises(CitypipeError, match="2 rejected.*unreadable WKT in column wkt"):
        ingest(path, "komma", lake, crs="EPSG:4326")
    assert not lake.partition("features", "komma").exists()
