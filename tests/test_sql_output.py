"""`citypipe sql` output: geometry as WKT (or WKB with --wkb) in table, CSV and JSON; the table
stops at --limit and says how many rows there were; CSV and JSON print every row unless told."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import shapely
from conftest import SAMPLES

from citypipe.cli import main
from citypipe.core import warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

FOUNTAINS = SAMPLES / "barcelona_drinking_fountains.geojson"
FIRST = json.loads(FOUNTAINS.read_text())["features"][0]["geometry"][
    "coordinates"
]  # 2.189875, 41.387735
ONE = (
    "SELECT geometry, ST_AsWKB(geometry) AS wkb, feature_id FROM features WHERE feature_id = 'f/#1'"
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("sql")
    shutil.copyfile(FOUNTAINS, root / FOUNTAINS.name)
    lake = Lake(root / "lake")
    ingest(root / FOUNTAINS.name, "f", lake, validate=False)
    warehouse.refresh(lake)
    return lake


def sql(lake: Lake, capsys, *args: str) -> str:
    assert main(["sql", *args, "--lake", str(lake.root)]) == 0
    return capsys.readouterr().out


def test_geometry_is_wkt_in_every_format(lake, capsys):
    point = f"POINT ({FIRST[0]} {FIRST[1]})"
    assert shapely.from_wkt(point).equals(shapely.Point(FIRST))
    [row] = json.loads(sql(lake, capsys, ONE, "--format", "json"))
    assert row == {"geometry": point, "wkb": point, "feature_id": "f/#1"}  # GEOMETRY and WKB BLOB
    [header, values] = list(csv.reader(io.StringIO(sql(lake, capsys, ONE, "--format", "csv"))))
    assert header == ["geometry", "wkb", "feature_id"] and values == [point, point, "f/#1"]
    lines = sql(lake, capsys, ONE).splitlines()
    assert len(lines) == 3 and lines[2].split("  ")[0] == point


def test_wkb_keeps_the_bytes(lake, capsys):
    wkb = shapely.to_wkb(shapely.Point(FIRST)).hex()  # little-endian 2D point, as the lake holds it
    [row] = json.loads(sql(lake, capsys, ONE, "--format", "json", "--wkb"))
    assert row["geometry"] == row["wkb"] == wkb
    [_, values] = list(csv.reader(io.StringIO(sql(lake, capsys, ONE, "--format", "csv", "--wkb"))))
    assert values[:2] == [wkb, wkb]
    assert sql(lake, capsys, ONE, "--wkb").splitlines()[2].startswith("0x" + wkb[:32] + "…")


def test_3d_geometry_and_bytes_that_are_not_wkb(lake, capsys):
    q = "SELECT ST_GeomFromText('POINT Z (2.1 41.3 12.5)') AS g, 'citypipe'::BLOB AS b"
    [row] = json.loads(sql(lake, capsys, q, "--format", "json"))
    assert row == {"g": "POINT Z (2.1 41.3 12.5)", "b": b"citypipe".hex()}


def test_the_table_stops_at_the_limit_and_counts_the_rest(lake, capsys):
    q = "SELECT feature_id, geometry FROM features ORDER BY ST_X(geometry)"
    lines = sql(lake, capsys, q).splitlines()
    assert (
        len(lines) == 2 + 100 + 1 and lines[-1] == "(100 of 1988 rows shown; --limit N shows more)"
    )
    lines = sql(lake, capsys, q, "--limit", "5").splitlines()
    assert len(lines) == 2 + 5 + 1 and lines[-1] == "(5 of 1988 rows shown; --limit N shows more)"
    lines = sql(lake, capsys, q, "--limit", "5000").splitlines()
    assert len(lines) == 2 + 1988  # all shown: no footer
    west = min(
        json.loads(FOUNTAINS.read_text())["features"], key=lambda f: f["geometry"]["coordinates"][0]
    )
    assert f"POINT ({west['geometry']['coordinates'][0]} " in lines[2]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_print_every_row_unless_limited(lake, capsys, fmt):
    def rows(*args: str) -> list:
        text = sql(
            lake, capsys, "SELECT feature_id, geometry FROM features", "--format", fmt, *args
        )
        return json.loads(text) if fmt == "json" else list(csv.DictReader(io.StringIO(text)))

    everything = rows()
    assert len(everything) == 1988 and all(r["geometry"].startswith("POINT (") for r in everything)
    assert len(rows("--limit", "7")) == 7 and rows("--limit", "0") == []


def test_json_of_no_rows_is_an_empty_array(lake, capsys):
    assert json.loads(sql(lake, capsys, "SELECT 1 AS a WHERE false", "--format", "json")) == []


def test_the_districts_areas_as_barcelona_states_them(tmp_path, capsys):
    """README: DuckDB's spheroid functions take latitude first; flipped, every district's area
    is the one the file states (AREA, m2) within 0.2 %."""
    districts = SAMPLES / "barcelona_districtes.geojson"
    stated = {
        f["properties"]["NOM"]: f["properties"]["AREA"]
        for f in json.loads(districts.read_bytes())["features"]
    }
    lake = Lake(tmp_path / "lake")
    ingest(districts, "districts", lake, validate=False)
    warehouse.refresh(lake)
    query = "SELECT name, ST_Area_Spheroid(ST_FlipCoordinates(geometry)) AS m2 FROM features"
    rows = json.loads(sql(lake, capsys, query, "--format", "json"))
    assert len(rows) == len(stated) == 10
    assert all(abs(r["m2"] / stated[r["name"]] - 1) < 0.002 for r in rows)


@pytest.mark.parametrize(
    "query, says",
    [
        ("SELECT * FROM read_csv('/etc/passwd')", ['"/etc/passwd"', "(line 1)"]),
        ("SELECT *\nFROM read_text('/etc/passwd')", ['"/etc/passwd"', "(line 2)"]),
        ("SELECT getenv('HOME')", ["getenv", "Did you mean"]),
        ("SELECT FROM WHERE", ["does not parse", "WHERE"]),
        ("WITH x AS (SELECT 1)\nDELETE FROM features", ["not DELETE", "SELECT 1) DELETE"]),
    ],
)
def test_a_refused_query_is_one_line(lake, capsys, query, says):
    """DuckDB's messages span lines (a hint, the statement's line, a caret): the refusal is one
    line, with the reason and where the query went wrong."""
    assert main(["sql", query, "--lake", str(lake.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("citypipe: error: "), err
    assert all(s in err for s in says), err


@pytest.mark.parametrize("query", ["", "   ", "-- a comment alone"])
def test_no_statement_is_refused_in_one_line(lake, capsys, query):
    assert main(["sql", query, "--lake", str(lake.root)]) == 2
    assert capsys.readouterr().err == "citypipe: error: no SQL statement given\n"


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "1e308", "soon"])
def test_a_time_limit_no_timer_can_keep_is_refused(lake, capsys, monkeypatch, seconds):
    """0 or less would stop every query, inf or beyond the platform's clock none (the timer's
    thread died with a traceback and the query ran unbounded)."""
    assert main(["sql", "SELECT 1", "--timeout", seconds, "--lake", str(lake.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"time limit {seconds!r}" in err, err
    monkeypatch.setenv("CITYPIPE_SQL_SECONDS", seconds)
    assert main(["sql", "SELECT 1", "--lake", str(lake.root)]) == 2
    assert f"time limit {seconds!r}" in capsys.readouterr().err
    # the option given wins over the variable
    assert main(["sql", "SELECT 1", "--timeout", "5", "--lake", str(lake.root)]) == 0
