"""The code builds the lake's rows against schemas/feature-v1.yaml: a column renamed in the file
(and not in the code) fails the run at once, before any row lands, never as a column of nulls;
the CRS a GeoParquet file declares is the one the file gives its geometry column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
import yaml
from conftest import ROOT

from citypipe import schemas
from citypipe.core import checks
from citypipe.core.ingest import ingest
from citypipe.core.write import GeoParquetWriter


def _forget() -> None:
    loaded = (schemas.feature_schema_bytes, schemas.feature_schema, schemas.themes)
    for cached in (*loaded, schemas.class_themes, schemas.mappings):
        cached.cache_clear()
    checks.bound_checks.cache_clear()


@pytest.fixture
def schema_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the schema files, which the code then loads as it loads the real ones."""
    folder = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(schemas, "HERE", folder)
    _forget()
    yield folder / "feature-v1.yaml"
    monkeypatch.undo()
    _forget()


def _edit(path: Path, table: str, column: str, **changes: str) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    columns = raw["columns"] if table == "features" else raw[table]
    next(c for c in columns if c["name"] == column).update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("table", "column", "renamed"),
    [
        ("features", "name", "title"),
        ("features", "source_crs", "crs"),
        ("surfaces", "area_m2", "area"),
        ("rejects", "reason", "why"),
        ("sources", "licence", "license"),
    ],
)
def test_a_column_renamed_in_the_schema_file_alone_fails_the_run(
    schema_file, sample, lake, table, column, renamed
):
    _edit(schema_file, table, column, name=renamed)
    assert renamed in schemas.feature_schema().table(table).arrow.names  # the copy is the one read
    with pytest.raises(
        schemas.SchemaMismatch,
        match=rf"{table} table: \['{column}'\] filled but not in the schema file, \['{renamed}'\]",
    ):
        ingest(sample("jena_parking.geojson"), "jena", lake)
    assert not lake.files("features")


def test_the_unchanged_copy_of_the_schema_file_ingests(schema_file, sample, lake, read_lake):
    path = sample("jena_parking.geojson")
    names = [f["properties"]["name"] for f in json.loads(path.read_text())["features"]]
    report = ingest(path, "jena", lake)
    assert (report.features, report.rejects) == (len(names), 0)
    assert sorted(read_lake("jena").column("name").to_pylist()) == sorted(names)


def test_a_geometry_column_in_another_crs_than_harmonising_gives_fails(schema_file, sample, lake):
    _edit(schema_file, "features", "geometry", crs="EPSG:25832")
    with pytest.raises(schemas.SchemaMismatch, match="EPSG:25832.*OGC:CRS84"):
        ingest(sample("jena_parking.geojson"), "jena", lake)


def test_the_geoparquet_crs_is_the_one_the_schema_file_gives(tmp_path):
    column = schemas.Column(name="shape", type="wkb", description="", crs="EPSG:25832")
    table = schemas.Table("plots", (column,))
    path = tmp_path / "plots.parquet"
    writer = GeoParquetWriter(path, table)
    point = shapely.to_wkb(shapely.Point(500_000, 5_400_000))
    writer.write(pa.RecordBatch.from_arrays([pa.array([point])], schema=table.arrow))
    writer.close()
    geo = json.loads(pq.read_metadata(path).metadata[b"geo"])
    crs = pyproj.CRS.from_json_dict(geo["columns"]["shape"]["crs"])
    assert crs.to_epsg() == 25832
