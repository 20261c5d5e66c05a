"""The DuckDB warehouse: views over the lake's Parquet files, and read-only SQL for analysts.

The warehouse file holds only views, so it can be rebuilt at any time from the lake; the data
stays in GeoParquet where every other tool can read it too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_spatial

import schemas
from connectors.errors import ConfigurationError, UnavailableError
from pipelines.lake import KINDS, RUN_KEY, Lake

__all__ = ["BUILDINGS", "VIEWS", "connect", "query", "refresh", "spatial_extension"]

VIEWS = (*KINDS, "sources")
"""The lake tables the warehouse has a view of: each kind over its folder of Parquet files, and
`sources` over the run records in the footers of the features files."""


BUILDINGS = """
CREATE VIEW buildings AS
WITH areas AS (
    SELECT feature_id,
           sum(area_m2) FILTER (WHERE surface_type = 'RoofSurface') AS roof_area_m2,
           sum(area_m2) FILTER (WHERE surface_type = 'WallSurface') AS wall_area_m2
    FROM surfaces GROUP BY feature_id
)
SELECT f.feature_id, f.parent_id, f.name,
       f.properties ->> '$.function' AS function,
       f.properties ->> '$.usage' AS usage,
       f.properties ->> '$.roofType' AS roof_type,
       TRY_CAST(f.properties ->> '$.yearOfConstruction' AS INTEGER) AS year_of_construction,
       TRY_CAST(f.properties ->> '$.storeysAboveGround' AS INTEGER) AS storeys_above_ground,
       f.height_m, f.lod,
       f.properties -> '$.address' AS address,
       TRY_CAST(f.properties ->> '$."citypipe:footprint_area_m2"' AS DOUBLE) AS footprint_area_m2,
       a.roof_area_m2, a.wall_area_m2,
       TRY_CAST(f.properties ->> '$."citypipe:volume_m3"' AS DOUBLE) AS volume_m3,
       f.source, f.geometry
FROM features f LEFT JOIN areas a USING (feature_id)
WHERE f.theme = 'building'
"""
"""Buildings with their attributes (CityGML / CityJSON names) and the measures harmonise took in
metres: footprint and volume per feature, roof and wall areas from the surfaces table."""


def spatial_extension() -> Path:
    """The spatial extension binary shipped by the duckdb-extension-spatial package."""
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = root / "spatial.duckdb_extension"
    if not path.exists():
        raise ConfigurationError(
            f"no spatial extension for duckdb {duckdb.__version__} in {root.parent}: "
            "install duckdb-extension-spatial of the same version as duckdb"
        )
    return path


def _arrow_schema(view: str) -> Any:
    return schemas.feature_schema().table(view).arrow


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob(lake: Lake, kind: str) -> str:
    return _sql_string(str((lake.root / kind).resolve() / "source=*" / "*.parquet"))


def connect(lake: Lake, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse with the spatial functions loaded."""
    if read_only and not lake.warehouse.exists():
        raise ConfigurationError(f"{lake.warehouse}: no warehouse yet; ingest a source first")
    for attempt in range(20):
        try:
            con = duckdb.connect(str(lake.warehouse), read_only=read_only)
            break
        except duckdb.IOException as e:  # another process holds the write lock
            if attempt == 19:
                raise UnavailableError(f"{lake.warehouse}: locked by another process: {e}") from e
            time.sleep(0.25)
    con.execute(f"LOAD {_sql_string(str(spatial_extension()))}")
    return con


def _empty(con: duckdb.DuckDBPyConnection, view: str) -> duckdb.DuckDBPyRelation:
    """No rows, with the view's columns as DuckDB types them."""
    return con.from_arrow(_arrow_schema(view).empty_table())


def _empty_table(con: duckdb.DuckDBPyConnection, view: str) -> None:
    """An empty table with the view's columns: an empty lake still answers queries."""
    _empty(con, view).create(view)


def _json_structure(con: duckdb.DuckDBPyConnection, view: str) -> str:
    """The view's columns and their DuckDB types, as `from_json` takes them."""
    rel = _empty(con, view)
    return json.dumps(dict(zip(rel.columns, map(str, rel.types), strict=True)))


def refresh(lake: Lake) -> None:
    """(Re)create the views over whatever the lake holds now."""
    lake.root.mkdir(parents=True, exist_ok=True)
    con = connect(lake, read_only=False)
    try:
        for view in VIEWS:
            existing = con.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [view]
            ).fetchone()
            if existing:
                con.execute(f"DROP {'VIEW' if existing[0] == 'VIEW' else 'TABLE'} {view}")
        for kind in KINDS:
            if lake.files(kind):
                con.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet({_glob(lake, kind)})")
            else:
                _empty_table(con, kind)
        if lake.files("features"):
            structure = _sql_string(_json_structure(con, "sources"))
            con.execute(
                f"CREATE VIEW sources AS SELECT unnest(from_json(decode(value), {structure})) "
                f"FROM parquet_kv_metadata({_glob(lake, 'features')}) "
                f"WHERE key = {_sql_string(RUN_KEY)}::BLOB"
            )
        else:
            _empty_table(con, "sources")
        con.execute("DROP VIEW IF EXISTS buildings")
        con.execute(BUILDINGS)
    finally:
        con.close()


def query(lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one or more read-only statements; the columns and rows of the last one.

    Only SELECT statements run, on a read-only connection that may read the lake's files and
    nothing else on the machine or the network.
    """
    con = connect(lake, read_only=True)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as e:
            raise ConfigurationError(f"SQL does not parse: {e}") from e
        if not statements:
            raise ConfigurationError("no SQL statement given")
        for st in statements:
            if st.type != duckdb.StatementType.SELECT:
                raise ConfigurationError(
                    f"only SELECT queries are allowed, not {st.type.name}: {st.query.strip()[:60]}"
                )
        lake_dir = str(lake.root.resolve()) + "/"
        con.execute(f"SET allowed_directories = [{_sql_string(lake_dir)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        result = None
        for st in statements:
            try:
                result = con.execute(st.query)
            except duckdb.Error as e:
                raise ConfigurationError(f"query failed: {e}") from e
        assert result is not None
        columns = [d[0] for d in result.description or []]
        return columns, result.fetchall()
    finally:
        con.close()
