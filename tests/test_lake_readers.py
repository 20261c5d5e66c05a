"""Every reader opens a lake file, and a lake folder, whole: pyarrow (files, folders, datasets),
geopandas (files, folders, from_arrow), DuckDB (files, globs with hive partitioning) give the same
rows, geometries and CRS; every GeoParquet file written passes the GeoParquet 1.1 JSON schema
and geoparquet-io's `gpio check`. Facts (counts, CRSs) come from the sample files themselves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import geopandas
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import ROOT, SAMPLES, geoparquet_validator

from citypipe import schemas
from citypipe.connectors.parquet_facts import HEIGHTS_KEY
from citypipe.core import warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.core.write import SCHEMA_LEVELS_FROM, GeoParquetWriter
from citypipe.geo.errors import DataError

SOURCES = {
    "fountains": "barcelona_drinking_fountains.geojson",
    "esslingen": "esslingen_parking_epsg25832.geojson",
    "rotterdam": "cityjson/rotterdam_one_v1.1.city.json",
    "sig3d": "citygml/sig3d_v2_Building_LOD2-EPSG25832.gml",
    "adv": "citygml/BuildingUnits_Storeys_xlink.gml",
    "denhaag": "citygml/denhaag_1BwBP_citygml1.gml",
}
BAD = {
    "type": "Feature",
    "properties": {"n": 3},
    "geometry": {"type": "Point", "coordinates": ["2", "41"]},
}
GOOD = {
    "type": "Feature",
    "properties": {"n": 1},
    "geometry": {"type": "Point", "coordinates": [2.17, 41.38]},
}
GEO_KINDS = ("features", "surfaces")
GPIO = ROOT / ".venv-gpio"


def _collection(*features: dict) -> bytes:
    return orjson.dumps({"type": "FeatureCollection", "features": list(features)})


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """Samples of every kind (2D points and polygons, CityJSON, CityGML with and without heights),
    a source with a rejected record, and an attempt that did not land (quarantine)."""
    tmp = tmp_path_factory.mktemp("readers")
    lake = Lake(tmp / "lake")
    for name, sample in SOURCES.items():
        ingest(SAMPLES / sample, name, lake)
    (tmp / "mixed.geojson").write_bytes(_collection(GOOD, BAD))
    ingest(tmp / "mixed.geojson", "mixed", lake)
    (tmp / "refused.geojson").write_bytes(_collection(BAD, BAD))
    with pytest.raises(DataError):
        ingest(tmp / "refused.geojson", "refused", lake)
    return lake


def _geoparquet_files(lake: Lake) -> list[Path]:
    """Each GeoParquet file the lake's folders link to, once."""
    return sorted({p.resolve() for kind in GEO_KINDS for p in lake.files(kind)})


def _declared(sample: str) -> str:
    """The CRS a sample declares, as written in it (srsName, referenceSystem)."""
    text = (SAMPLES / sample).read_text(encoding="utf-8")
    return re.search(r'(?:srsName="|"referenceSystem":\s*")([^"]+)"', text).group(1)


# -- one file ------------------------------------------------------------------------------


def test_the_arrow_schema_carries_the_same_geo_as_the_footer(lake):
    expected = {kind: lake.files(kind)[0] for kind in GEO_KINDS}
    for path in _geoparquet_files(lake):
        footer = pq.read_metadata(path).metadata[b"geo"]
        geoparquet_validator().validate(json.loads(footer))
        schema = pq.read_schema(path)
        assert schema.metadata[b"geo"] == footer
        assert pq.read_table(path).schema.metadata[b"geo"] == footer
        assert ds.dataset(path).schema.metadata[b"geo"] == footer
        kind = "surfaces" if "geometry" not in schema.names else "features"
        assert [(f.name, f.type) for f in schema] == [
            (f.name, f.type) for f in pq.read_schema(expected[kind])
        ]
        tagged = schema.field("geometry_3d").metadata
        assert tagged[b"ARROW:extension:name"] == b"geoarrow.wkb"
        assert pyproj.CRS(json.loads(tagged[b"ARROW:extension:metadata"])["crs"]) == pyproj.CRS(
            "OGC:CRS84"
        )
        if kind == "features":  # CRS84 by its code (GeoArrow allows it), not 1.4 kB of PROJJSON
            assert json.loads(schema.field("geometry").metadata[b"ARROW:extension:metadata"]) == {
                "crs": "OGC:CRS84",
                "crs_type": "authority_code",
            }


def test_dictionary_valueless_and_tiny_columns_are_stored_uncompressed_others_in_zstd(lake):
    """As the schema file marks its columns (`dictionary: true`): a dictionary column's pages
    hold a few values and runs of indices, which zstd made no smaller; a features file's column
    that holds no value in any of its rows is only null flags, which zstd makes no smaller; a
    column of under a kilobyte in the first row group is not compressed (zstd's fixed cost a
    column chunk buys a few bytes there); the bbox covering, the 3D WKB (features' and
    surfaces') and the surfaces' measures in snappy (`small_file_codec`) in these files of the
    samples, all small; the others in zstd: no LZ4_RAW, which Spark before 3.5 cannot read."""
    import yaml

    raw = yaml.safe_load((ROOT / "schemas" / "feature-v1.yaml").read_text(encoding="utf-8"))
    columns = {"features": raw["columns"], "surfaces": raw["surfaces"]}
    marked = {k: {c["name"] for c in v if c.get("dictionary")} for k, v in columns.items()}
    snappy = {k: {c["name"] for c in v if c.get("small_file_codec")} for k, v in columns.items()}
    assert {"source", "theme"} <= marked["features"] and "surface_type" in marked["surfaces"]
    assert snappy == {
        "features": {"bbox", "geometry_3d"},
        "surfaces": {"geometry_3d", "area_m2", "tilt_deg", "azimuth_deg"},
    }
    valueless_seen = set()
    codecs_seen = set()
    for path in _geoparquet_files(lake):
        meta = pq.read_metadata(path)
        kind = "features" if "geometry" in meta.schema.names else "surfaces"
        table = pq.read_table(path)
        valueless = {
            name
            for name in table.column_names
            if kind == "features" and table.num_rows and table[name].null_count == table.num_rows
        }
        valueless_seen |= valueless
        first = pq.ParquetFile(path).read_row_group(0) if meta.num_row_groups else None
        for g in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                chunk = meta.row_group(g).column(i)
                top = chunk.path_in_schema.split(".")[0]
                tiny = first is not None and first[top].nbytes < 1024
                expected = (
                    "UNCOMPRESSED"
                    if top in marked[kind] | valueless or tiny
                    else "SNAPPY"
                    if top in snappy[kind]
                    else "ZSTD"
                )
                assert chunk.compression == expected, (path, chunk.path_in_schema)
                codecs_seen.add(chunk.compression)
    assert {"height_m", "geometry_3d"} <= valueless_seen  # the 2D sources' features
    assert codecs_seen == {"UNCOMPRESSED", "SNAPPY", "ZSTD"}


def _chunk_bytes(path: Path, column: str) -> list[int]:
    """The stored (compressed) bytes of `column` in each row group of a Parquet file."""
    meta = pq.read_metadata(path)
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    return [
        next(c.total_compressed_size for c in map(g.column, range(g.num_columns))
             if c.path_in_schema == column)
        for g in groups
    ]  # fmt: skip


def test_3d_geometries_take_the_schema_files_lower_zstd_level_in_large_files(lake, tmp_path):
    """A level below zstd's default 3 that the schema file gives (the 3D WKB columns: as
    small, in less time) applies in files of large row groups (write.py), where the samples'
    3D WKB, all in small files, is in snappy (tested above): the samples' surfaces written
    again by the lake's writer as a large file's rows store the level's bytes."""
    import yaml

    raw = yaml.safe_load((ROOT / "schemas" / "feature-v1.yaml").read_text(encoding="utf-8"))
    levels = {
        kind: {c["name"]: c["compression_level"] for c in raw[key] if c.get("compression_level")}
        for kind, key in (("features", "columns"), ("surfaces", "surfaces"))
    }
    assert levels["features"]["geometry_3d"] == levels["surfaces"]["geometry_3d"] < 3
    level = levels["surfaces"]["geometry_3d"]
    differs = 0
    for path in _geoparquet_files(lake):
        meta = pq.read_metadata(path)
        if "geometry" in meta.schema.names:  # features: small files (their codec tested above)
            continue
        rows = pq.read_table(path)
        if rows["geometry_3d"].null_count == rows.num_rows or rows["geometry_3d"].nbytes < 1024:
            continue  # no value, or a tiny column (not compressed)
        large = tmp_path / "large.parquet"
        writer = GeoParquetWriter(
            large, schemas.feature_schema().table("surfaces"), source_bytes=SCHEMA_LEVELS_FROM
        )
        writer.write(rows.combine_chunks())
        writer.close()
        by_level = {}
        for tried in (level, 3):
            out = tmp_path / f"{tried}.parquet"
            pq.write_table(
                rows.select(["geometry_3d"]), out, compression="zstd", compression_level=tried,
                use_dictionary=False, data_page_size=8 << 20, write_statistics=False,
                row_group_size=rows.num_rows,
            )  # fmt: skip
            by_level[tried] = _chunk_bytes(out, "geometry_3d")
        assert _chunk_bytes(large, "geometry_3d") == by_level[level], path
        differs += by_level[3] != by_level[level]
    assert differs  # level 3 would be told apart


def test_from_arrow_finds_the_geometry_and_its_crs(lake):
    path = lake.partition("features", "esslingen") / "part-0.parquet"
    table = pq.read_table(path)
    gdf = geopandas.GeoDataFrame.from_arrow(table)
    source = json.loads((SAMPLES / SOURCES["esslingen"]).read_bytes())
    assert len(gdf) == len(source["features"]) == 250
    assert gdf.geometry.name == "geometry" and gdf.crs == pyproj.CRS("OGC:CRS84")
    ours = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    assert shapely.equals_exact(gdf.geometry.values, ours, tolerance=0).all()
    assert set(gdf["source"]) == {"esslingen"}


# -- a folder ------------------------------------------------------------------------------


def _rows(table: pa.Table, key: str) -> list[tuple]:
    cols = [key, "source"] + (["geometry"] if "geometry" in table.column_names else [])
    return sorted(zip(*(table.column(c).to_pylist() for c in cols), strict=True))


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("features", "feature_id"),
        ("rejects", "record"),
        ("surfaces", "geometry_3d"),
        ("quarantine", "record"),
    ],
)
def test_a_folder_reads_as_one_dataset_in_every_reader(lake, kind, key):
    folder = lake.root / kind
    files = lake.files(kind)
    expected = _rows(pa.concat_tables([pq.read_table(f) for f in files]), key)
    assert expected and {r[1] for r in expected} == {
        f.parent.name.removeprefix("source=") for f in files if pq.read_metadata(f).num_rows
    }
    for table in (  # as users type them
        pq.read_table(folder),
        ds.dataset(folder, partitioning="hive").to_table(),
        ds.dataset(
            folder, partitioning=ds.HivePartitioning.discover(infer_dictionary=True)
        ).to_table(),
        ds.dataset(folder).to_table(),
    ):
        assert _rows(table, key) == expected
        assert table.schema.field("source").type == pa.string()
    con = duckdb.connect()
    con.load_extension(str(warehouse.spatial_extension()))
    sql = f"SELECT * FROM read_parquet('{folder}/*/*.parquet', hive_partitioning = true)"
    with con.cursor() as cur:
        cur.execute("SET enable_geoparquet_conversion = false")  # WKB bytes, as pyarrow reads them
        assert _rows(cur.sql(sql).to_arrow_table(), key) == expected
    if kind in GEO_KINDS:
        gdf = geopandas.read_parquet(folder)
        assert len(gdf) == len(expected) and gdf.crs == pyproj.CRS("OGC:CRS84")
        types = dict(
            con.sql(
                f"SELECT DISTINCT 1, typeof({key if kind == 'surfaces' else 'geometry'}) "
                f"FROM ({sql})"
            ).fetchall()
        )
        assert types == {1: "GEOMETRY('OGC:CRS84')"}


def test_a_file_reads_with_its_source_in_every_reader(lake):
    """One file (and its source's folder) as users open it: the `source` column is the folder's
    name, a string, in pyarrow, pyarrow datasets with hive partitioning, geopandas and DuckDB."""
    for file in lake.files("features"):
        name = file.parent.name
        rows = pq.read_metadata(file).num_rows
        for table in (
            pq.read_table(file),
            pq.read_table(file.parent),
            ds.dataset(file, partitioning="hive").to_table(),
            ds.dataset(file.parent, partitioning="hive").to_table(),
        ):
            assert table.num_rows == rows and set(table.column("source").to_pylist()) <= {name}
            assert table.schema.field("source").type == pa.string()
        if rows:
            assert set(geopandas.read_parquet(file)["source"]) == {name}
            sql = f"SELECT DISTINCT source FROM read_parquet('{file}', hive_partitioning = true)"
            assert duckdb.sql(sql).fetchall() == [(name,)]


def test_a_lake_of_hive_folders_is_renamed_by_its_next_run(tmp_path):
    """A lake written with `source=<NAME>` folders (before this layout, and so before the
    history table): the next run of any source renames them, and the folder reads whole with
    the hive literal."""
    lake = Lake(tmp_path / "lake")
    ingest(SAMPLES / SOURCES["esslingen"], "esslingen", lake)
    for kind in ("features", "rejects", "surfaces"):
        (lake.root / kind / "esslingen").rename(lake.root / kind / "source=esslingen")
    shutil.rmtree(lake.root / "history")
    with pytest.raises(pa.ArrowTypeError, match="Field source has incompatible types"):
        pq.read_table(lake.root / "features")  # a hive key in the path: a dictionary
    ingest(SAMPLES / SOURCES["fountains"], "fountains", lake)
    assert pq.read_table(lake.root / "features").num_rows == 250 + 1988
    table = ds.dataset(lake.root / "features", partitioning="hive").to_table()
    assert sorted(p.name for p in (lake.root / "features").iterdir()) == ["esslingen", "fountains"]
    assert table.num_rows == 250 + 1988


def test_the_folder_counts_are_the_sources(lake):
    table = pq.read_table(lake.root / "features")
    counts = dict(
        zip(
            *table.group_by("source").aggregate([("source", "count")]).to_pydict().values(),
            strict=True,
        )
    )
    for name in ("fountains", "esslingen"):
        assert counts[name] == len(json.loads((SAMPLES / SOURCES[name]).read_bytes())["features"])
    assert counts["mixed"] == 1 and "refused" not in counts
    assert pq.read_table(lake.root / "quarantine").num_rows == 2


# -- heights -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vertical"),
    [
        ("rotterdam", None),  # https://www.opengis.net/def/crs/EPSG/0/7415: RD New + NAP height
        ("sig3d", None),  # urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783
        ("adv", "EPSG:5783"),  # urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH: DHHN92 height (AdV registry)
    ],
)
def test_geometry_3d_heights_name_the_sources_vertical_crs(lake, name, vertical):
    expected = (
        pyproj.CRS(vertical) if vertical else pyproj.CRS(_declared(SOURCES[name])).sub_crs_list[1]
    )
    for kind in GEO_KINDS:
        path = lake.partition(kind, name) / "part-0.parquet"
        written = pyproj.CRS(json.loads(pq.read_metadata(path).metadata[HEIGHTS_KEY.encode()]))
        assert written.is_compound
        assert written.sub_crs_list[0] == pyproj.CRS("OGC:CRS84")
        assert written.sub_crs_list[1] == expected


def test_no_heights_crs_where_the_source_names_none(lake):
    assert _declared(SOURCES["denhaag"]) == "urn:ogc:def:crs:EPSG::28992"  # 2D: no vertical CRS
    for name in ("denhaag", "fountains"):
        meta = pq.read_metadata(lake.partition("features", name) / "part-0.parquet").metadata
        assert HEIGHTS_KEY.encode() not in meta


def test_duckdb_reads_geometry_3d_across_sources_of_different_height_datums(lake):
    """Why the heights' CRS is a footer key of its own: DuckDB refuses one column in two CRSs."""
    con = duckdb.connect()
    con.load_extension(str(warehouse.spatial_extension()))
    n = con.sql(
        f"SELECT count(geometry_3d) FROM read_parquet('{lake.root}/features/*/*.parquet')"
    ).fetchone()[0]
    assert n == pq.read_table(lake.root / "features").column("geometry_3d").drop_null().length()


# -- inspect -------------------------------------------------------------------------------


def _inspect(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "citypipe.cli", "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_inspect_says_geoparquet_its_crs_covering_row_groups_and_order(lake, tmp_path):
    path = lake.partition("features", "rotterdam") / "part-0.parquet"
    facts = _inspect(path)
    assert facts["format"] == "GeoParquet 1.1.0" and facts["crs"] == "OGC:CRS84"
    assert facts["covering"] == "geometry: bbox bbox.xmin, bbox.ymin, bbox.xmax, bbox.ymax"
    assert facts["row groups"].startswith(f"{pq.read_metadata(path).num_row_groups} ")
    assert facts["heights"] == "WGS 84 (CRS84) + NAP height"
    assert facts["sort order"] == "hilbert (centre of bbox)"  # pipelines/order.py
    table = pq.read_table(path)
    unsorted = {k: v for k, v in table.schema.metadata.items() if k != b"citypipe:sort"}
    pq.write_table(table.replace_schema_metadata(unsorted), tmp_path / "unsorted.parquet")
    assert _inspect(tmp_path / "unsorted.parquet")["sort order"] == "as written (not recorded)"


# -- geoparquet-io -------------------------------------------------------------------------


@pytest.mark.skipif(
    not (GPIO / "bin" / "gpio").exists(),
    reason="geoparquet-io is not installed in .venv-gpio (`make gpio` installs it from PyPI)",
)
def test_gpio_check_passes_every_file(lake):
    env = {**os.environ, "HOME": str(GPIO / "home")}  # where `make gpio` put the spatial extension
    for path in _geoparquet_files(lake):
        for check in ("spec", "all"):
            out = subprocess.run(
                [str(GPIO / "bin" / "gpio"), "check", check, str(path)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            said = out.stdout + out.stderr
            assert out.returncode == 0 and "✗" not in said and "ERROR" not in said, (
                path,
                check,
                said,
            )
