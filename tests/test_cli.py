"""The CLI contract, from outside: exit codes, messages without tracebacks, what lands where."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import data_files


def citypipe(*args: str, lake) -> subprocess.CompletedProcess:
    env = {**os.environ, "CITYPIPE_LAKE": str(lake.root)}
    return subprocess.run(
        [sys.executable, "-m", "citypipe.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_undeclared_utm_csv_is_refused_until_crs_is_given(sample, lake):
    path = sample("reutlingen_bike_parking_utm32_wkt.csv")
    out = citypipe("ingest", str(path), "--source", "reutlingen", lake=lake)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = out.stderr.splitlines()
    assert str(path) in line and "no CRS is declared" in line and "--crs" in line
    assert not data_files(lake.root)  # nothing written, not even rejects
    out = citypipe("sql", "SELECT status, reason FROM attempts", "--format", "json", lake=lake)
    [attempt] = json.loads(out.stdout)
    assert attempt["status"] == "failed" and line.endswith(attempt["reason"])

    out = citypipe("ingest", str(path), "--source", "reutlingen", "--crs", "EPSG:25832", lake=lake)
    assert out.returncode == 0, out.stderr
    out = citypipe(
        "sql",
        "SELECT count(*), min(ST_X(geometry)), max(ST_X(geometry)), "
        "min(ST_Y(geometry)), max(ST_Y(geometry)) "
        "FROM features WHERE source = 'reutlingen'",
        "--format",
        "csv",
        lake=lake,
    )
    n, xmin, xmax, ymin, ymax = map(float, out.stdout.splitlines()[1].split(","))
    # Reutlingen: about 9.2 E, 48.5 N
    assert n == 334 and 9.1 < xmin < xmax < 9.35 and 48.42 < ymin < ymax < 48.6
    out = citypipe(
        "sql",
        "SELECT count(*) FROM rejects WHERE source = 'reutlingen'",
        "--format",
        "csv",
        lake=lake,
    )
    assert out.stdout.splitlines()[1] == "0"


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x01garbage" * 50, b'{"type": "FeatureCollection", "features": [{"type"']
)
def test_bad_files_exit_non_zero_with_the_file_and_the_reason(tmp_path, lake, content):
    bad = tmp_path / "input.json"
    bad.write_bytes(content)
    out = citypipe("ingest", str(bad), "--source", "bad", lake=lake)
    assert out.returncode == 2
    assert out.stderr.startswith("citypipe: error: ") and str(bad) in out.stderr
    assert "Traceback" not in out.stderr and not (lake.root / "features").exists()


def test_inspect_tells_format_crs_and_count_and_writes_nothing(sample, lake):
    path = sample("esslingen_parking_epsg25832.geojson")
    out = citypipe("inspect", str(path), "--json", lake=lake)
    facts = json.loads(out.stdout)
    assert facts["format"] == "GeoJSON" and facts["crs"] == "urn:ogc:def:crs:EPSG::25832"
    assert facts["features"] == 250 and facts["layers"] == "ES_Parkplätze_2025-03-20"
    assert not lake.root.exists()


def test_sql_refuses_writes(sample, lake):
    assert (
        citypipe(
            "ingest", str(sample("jena_parking.geojson")), "--source", "jena", lake=lake
        ).returncode
        == 0
    )
    out = citypipe("sql", "DELETE FROM features", lake=lake)
    assert out.returncode == 2 and "only queries that read are allowed, not DELETE" in out.stderr
    out = citypipe("sql", "SELECT name FROM features WHERE feature_id = 'jena/~' || 'x'", lake=lake)
    assert out.returncode == 0


def test_a_reader_that_stops_early_is_not_an_error(sample, lake):
    """`citypipe sql ... | head -1` on 1988 rows, in every format: exit 0, nothing on stderr."""
    from citypipe.core import warehouse
    from citypipe.core.ingest import ingest

    ingest(sample("barcelona_drinking_fountains.geojson"), "f", lake, validate=False)
    warehouse.refresh(lake)
    env = {**os.environ, "CITYPIPE_LAKE": str(lake.root)}
    for fmt in ("table", "csv", "json"):
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "citypipe.cli",
                "sql",
                "SELECT * FROM features",
                "--format",
                fmt,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = cli.stdout.readline()
        cli.stdout.close()  # what `head -1` does once it has its line
        err = cli.stderr.read().decode()
        assert first and cli.wait() == 0 and err == "", err


@pytest.mark.parametrize("where", ["a file", "under a file", "/dev/null"])
def test_a_lake_that_cannot_be_a_folder_is_refused_in_one_line(sample, tmp_path, capsys, where):
    from citypipe.cli import main

    file = tmp_path / "file"
    file.write_text("not a folder")
    lake = {"a file": file, "under a file": file / "lake", "/dev/null": "/dev/null"}[where]
    code = main(
        ["ingest", str(sample("jena_parking.geojson")), "--source", "j", "--lake", str(lake)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"citypipe: error: {lake}: the lake cannot be written")
    assert file.read_text() == "not a folder"


def test_a_source_name_too_long_for_a_file_name_is_refused(sample, lake, capsys):
    from citypipe.cli import main

    name = "s" * 250
    code = main(
        ["ingest", str(sample("jena_parking.geojson")), "--source", name, "--lake", str(lake.root)]
    )
    assert code == 2 and "at most 128 characters" in capsys.readouterr().err
    assert not lake.root.exists()
