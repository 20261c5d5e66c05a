"""The lake's files: valid GeoParquet 1.1 that other tools read back the same; atomic,
idempotent runs."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import duckdb
import geopandas
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from conftest import geoparquet_validator

from citypipe.core import warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import DataError


@pytest.fixture
def esslingen(sample, lake):
    ingest(sample("esslingen_parking_epsg25832.geojson"), "esslingen", lake)
    return lake.partition("features", "esslingen") / "part-0.parquet"


def test_geo_metadata_validates_against_the_official_schema(esslingen):
    geo = json.loads(pq.read_metadata(esslingen).metadata[b"geo"])
    geoparquet_validator().validate(geo)
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Polygon"]
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]


def test_points_are_written_as_points(sample, lake):
    """Point sources take numpy's WKB path: other readers must see the file's own coordinates."""
    path = sample("barcelona_drinking_fountains.geojson")
    ingest(path, "fountains", lake)
    written = lake.partition("features", "fountains") / "part-0.parquet"
    geo = json.loads(pq.read_metadata(written).metadata[b"geo"])
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    coords = [f["geometry"]["coordinates"] for f in json.loads(path.read_bytes())["features"]]
    gdf = geopandas.read_parquet(written)
    assert len(gdf) == len(coords) == 1988
    assert (gdf.geometry.geom_type == "Point").all()
    assert sorted(zip(gdf.geometry.x, gdf.geometry.y, strict=False)) == sorted(map(tuple, coords))


def test_other_tools_read_back_the_same_geometries(esslingen):
    table = pq.read_table(esslingen)
    ours = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    gdf = geopandas.read_parquet(esslingen)
    assert gdf.crs.to_string() == "OGC:CRS84" and len(gdf) == 250
    assert shapely.equals_exact(gdf.geometry.values, ours, tolerance=0).all()
    # pyogrio's wheel of GDAL reads Parquet through its ADBC driver, backed by DuckDB's library
    duckdb_library = importlib.util.find_spec("_duckdb").origin
    ogr = pyogrio.read_dataframe(f"ADBC:{esslingen}", ADBC_DRIVER=duckdb_library)
    assert ogr.crs.to_string() == "OGC:CRS84"
    assert shapely.equals_exact(ogr.geometry.values, ours, tolerance=0).all()
    assert list(ogr["feature_id"]) == table.column("feature_id").to_pylist()
    con = duckdb.connect()
    con.execute(f"LOAD '{warehouse.spatial_extension()}'")
    wkb = con.execute(f"SELECT ST_AsWKB(geometry) FROM read_parquet('{esslingen}')").fetchall()
    assert shapely.equals_exact(
        shapely.from_wkb([bytes(r[0]) for r in wkb]), ours, tolerance=0
    ).all()


def test_rerun_gives_the_same_rows_and_ids(sample, lake, read_lake):
    path = sample("barcelona_drinking_fountains.geojson")
    ingest(path, "f", lake)
    first = read_lake("f").drop(["ingested_at"])
    ingest(path, "f", lake)
    second = read_lake("f").drop(["ingested_at"])
    assert first.equals(second)
    assert len(set(first.column("feature_id").to_pylist())) == 1988


@pytest.mark.parametrize(
    "name, content",
    [
        ("truncated.geojson", None),  # filled from a real sample below
        ("garbage.geojson", os.urandom(4096)),
        ("empty.geojson", b""),
        ("fountains.csv", None),  # a GeoJSON with the wrong extension still ingests
    ],
)
def test_bad_input_leaves_the_lake_as_it_was(sample, lake, read_lake, tmp_path, name, content):
    good = sample("jena_parking.geojson")
    ingest(good, "s", lake)
    before = read_lake("s")
    bad = tmp_path / name
    if name == "truncated.geojson":
        content = good.read_bytes()[: good.stat().st_size // 2]
    if name == "fountains.csv":
        bad.write_bytes(good.read_bytes())
        assert ingest(bad, "s", lake).features == 103
        return
    bad.write_bytes(content)
    with pytest.raises(DataError) as err:
        ingest(bad, "s", lake)
    assert str(bad) in str(err.value)
    assert read_lake("s").equals(before)
    assert not list((lake.root / ".staging").iterdir())


def test_warehouse_views_answer_spatial_sql(sample, lake):
    ingest(sample("jena_parking.geojson"), "jena", lake)
    ingest(sample("freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson"), "freiburg", lake)
    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake,
        "SELECT source, count(*), round(avg(ST_Y(geometry)), 1) FROM features "
        "GROUP BY 1 ORDER BY 1",
    )
    assert rows == [("freiburg", 19, 48.0), ("jena", 103, 50.9)]
    _, rows = warehouse.query(
        lake, "SELECT source, features, rejects, format FROM sources ORDER BY 1"
    )
    assert rows == [("freiburg", 19, 0, "GeoJSON"), ("jena", 103, 0, "GeoJSON")]
    # the run record travels in the features file itself, so it is replaced with the data
    footer = pq.read_metadata(lake.partition("features", "jena") / "part-0.parquet").metadata
    run = json.loads(footer[b"citypipe:run"])
    assert (run["source"], run["records"]) == ("jena", 103)
    assert run["declared_crs"] == "urn:ogc:def:crs:EPSG::4326"


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW features",
        "COPY features TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '/tmp/other.duckdb'",
        "SELECT 1; DELETE FROM sources",
        "PRAGMA version",
        "select 1; /* ; */ pragma database_list",
        "CALL pragma_version()",
        "SET memory_limit = '9GB'",
        "RESET lock_configuration",
        "EXPORT DATABASE '/tmp/x'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CREATE VIEW v AS SELECT 1",
        "EXPLAIN ANALYZE COPY features TO '/tmp/y.csv'",
        "CHECKPOINT",
        "DETACH warehouse",
        "USE memory",
        "VACUUM",
    ],
)
def test_analyst_sql_is_read_only(sample, lake, sql):
    from citypipe.geo.errors import ConfigurationError

    ingest(sample("jena_parking.geojson"), "jena", lake)
    warehouse.refresh(lake)
    with pytest.raises(ConfigurationError):
        warehouse.query(lake, sql)
    assert warehouse.query(lake, "SELECT count(*) FROM features")[1] == [(103,)]


def test_warehouse_refreshes_from_empty_to_full_and_back(sample, lake):
    warehouse.refresh(lake)  # nothing landed yet: empty tables with the schema's columns
    assert warehouse.query(lake, "SELECT count(*) FROM features")[1] == [(0,)]
    ingest(sample("jena_parking.geojson"), "jena", lake)
    warehouse.refresh(lake)
    assert warehouse.query(lake, "SELECT count(*) FROM features")[1] == [(103,)]
    warehouse.refresh(lake)
    assert warehouse.query(lake, "SELECT count(*) FROM sources")[1] == [(1,)]


def test_a_lake_copied_with_cp_reads_whole_in_other_tools(sample, lake, tmp_path):
    """The partitions are relative links into the runs: a copy made with `cp -r` reads the same
    in pyarrow (file, folder), geopandas and plain DuckDB (`*` and `**` globs)."""
    import subprocess

    path = sample("barcelona_drinking_fountains.geojson")
    ingest(path, "fountains", lake)
    ingest(sample("jena_parking.geojson"), "jena", lake)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(lake.root), str(copy)], check=True)
    codes = sorted(
        f["properties"]["INVENTARI_CODI"] for f in json.loads(path.read_bytes())["features"]
    )
    folder = pq.read_table(copy / "features")
    assert folder.num_rows == 1988 + 103
    gdf = geopandas.read_parquet(copy / "features" / "fountains" / "part-0.parquet")
    assert sorted(json.loads(p)["INVENTARI_CODI"] for p in gdf["properties"]) == codes
    for pattern in ("*/*.parquet", "**/*.parquet"):
        n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{copy}/features/{pattern}')").fetchone()
        assert n == (1988 + 103,)
    assert pq.read_table(copy / "rejects").num_rows == 0


@pytest.fixture
def jena_warehouse(sample, lake):
    ingest(sample("jena_parking.geojson"), "jena", lake, validate=False)
    warehouse.refresh(lake)
    return lake


def test_import_database_is_refused_before_duckdb_reads_the_folder(jena_warehouse, tmp_path):
    """DuckDB's parser expands PRAGMA import_database by reading <dir>/schema.sql: a link there
    to /etc/passwd leaked its first token in the parse error. Refused before any parse now."""
    from citypipe.geo.errors import ConfigurationError

    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "schema.sql").symlink_to("/etc/passwd")
    first = Path("/etc/passwd").read_text().split(":")[0]
    for sql in (
        f"PRAGMA import_database('{folder}')",
        f"IMPORT DATABASE '{folder}'",
        f"SELECT 1; IMPORT DATABASE '{folder}'",
    ):
        with pytest.raises(ConfigurationError) as e:
            warehouse.query(jena_warehouse, sql)
        assert first not in str(e.value).replace("IMPORT", "")


@pytest.mark.parametrize(
    "reader",
    [
        "read_text('{f}')",
        "read_blob('{f}')",
        "read_csv('{f}')",
        "read_json('{f}')",
        "sniff_csv('{f}')",
        "glob('{d}/*')",
        "st_read('{f}')",
        "ST_Read_Meta('{f}')",
        "read_parquet('{lake}/features/jena/../../../outside.parquet')",
        "read_parquet('{lake}/.staging/*/*.parquet')",
        "read_csv('http://127.0.0.1:9/x.csv')",
        "st_read('/vsicurl/http://127.0.0.1:9/x.json')",
    ],
)
def test_sql_reads_nothing_outside_the_lake(jena_warehouse, sample, tmp_path, reader):
    """A GeoJSON and a Parquet file beside the lake, readable by the user running citypipe."""
    from citypipe.geo.errors import ConfigurationError

    outside = sample("jena_parking.geojson")
    pq.write_table(
        pq.read_table(jena_warehouse.partition("features", "jena")),
        jena_warehouse.root.parent / "outside.parquet",
    )
    sql = "SELECT count(*) FROM " + reader.format(
        f=outside, d=outside.parent, lake=jena_warehouse.root.resolve()
    )
    with pytest.raises(ConfigurationError, match="query failed|disabled|Permission"):
        warehouse.query(jena_warehouse, sql)


def test_queries_stop_at_their_time_and_memory_limits(jena_warehouse):
    from citypipe.geo.errors import ConfigurationError

    limits = warehouse.Limits(seconds=1, memory="200MB")
    with pytest.raises(ConfigurationError, match="stopped after 1 s"):
        warehouse.query(jena_warehouse, "SELECT count(*) FROM range(1e12::BIGINT)", limits)
    with pytest.raises(ConfigurationError, match="more than 200MB of memory"):
        warehouse.query(
            jena_warehouse,
            "SELECT list(range) FROM range(100000000)",
            warehouse.Limits(seconds=60, memory="200MB"),
        )
    assert warehouse.query(jena_warehouse, "SELECT count(*) FROM features", limits)[1] == [(103,)]


def test_a_broken_or_unwritable_warehouse_never_hides_the_lake(jena_warehouse, sample, capsys):
    """A warehouse file a full disk left broken is rebuilt by the next refresh; an ingest whose
    refresh fails still says what the ingest did (exit 2 with its own message)."""
    from citypipe.cli import main

    jena_warehouse.warehouse.write_bytes(b"not a database")
    warehouse.refresh(jena_warehouse)
    assert warehouse.query(jena_warehouse, "SELECT count(*) FROM features")[1] == [(103,)]
    jena_warehouse.warehouse.unlink()
    jena_warehouse.warehouse.mkdir()  # nothing can be renamed onto it
    bad = sample("esslingen_parking_epsg25832.geojson")
    code = main(
        [
            "ingest",
            str(bad),
            "--source",
            "jena",
            "--crs",
            "EPSG:4326",
            "--lake",
            str(jena_warehouse.root),
        ]
    )
    first, *more = capsys.readouterr().err.splitlines()
    assert code == 2 and str(bad) in first and "no record could be ingested" in first
    assert "also:" in more[0] and "warehouse could not be written" in more[0]


def test_a_moved_lake_answers_as_the_original(sample, lake, tmp_path):
    """No absolute path is stored: a lake copied with `cp -r` and the original deleted answers
    `citypipe sql` and plain DuckDB opened in the lake folder, with any WHERE on `sources`."""
    import shutil
    import subprocess
    import sys

    ingest(sample("jena_parking.geojson"), "jena", lake, validate=False)
    ingest(
        sample("citygml/sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml"),
        "garage",
        lake,
        validate=False,
    )
    warehouse.refresh(lake)
    asked = (
        "SELECT source, features FROM sources WHERE records > 0 AND source <> 'x' ORDER BY 1",
        "SELECT count(*) FROM buildings",
        "SELECT count(*) FROM surfaces",
    )
    before = [warehouse.query(lake, q)[1] for q in asked]
    assert before[0] == [("garage", 4), ("jena", 103)]  # 103 parking places; 4 city objects
    moved = tmp_path / "elsewhere" / "lake"
    moved.parent.mkdir()
    subprocess.run(["cp", "-r", str(lake.root), str(moved)], check=True)
    shutil.rmtree(lake.root)
    assert [warehouse.query(type(lake)(moved), q)[1] for q in asked] == before
    plain = (
        "import duckdb, sys; con = duckdb.connect('warehouse.duckdb', read_only=True); "
        f"con.execute(\"LOAD '{warehouse.spatial_extension()}'\"); "
        "print([con.sql(q).fetchall() for q in sys.argv[1:]])"
    )
    out = subprocess.run(
        [sys.executable, "-c", plain, *asked], cwd=moved, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(before)


def test_a_lake_named_by_text_is_a_folder(sample, tmp_path):
    """`Lake("data/lake")` as a Python user writes it: the Jena sample's 103 car parks land."""
    lake = Lake(str(tmp_path / "lake"))
    ingest(sample("jena_parking.geojson"), "jena", lake, validate=False)
    assert lake == Lake(tmp_path / "lake")
    assert pq.read_table(tmp_path / "lake" / "features").num_rows == 103
