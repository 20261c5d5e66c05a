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

VIEWS = (*KINDS, "quarantine", "sources", "attempts")
"""The lake tables the warehouse has a view of: each kind over its folder of Parquet files (the
landed runs), `quarantine` over the rejects of attempts that did not land, `sources` and
`attempts` over the run records in the footers of the features files and the records of the
attempts that did not land."""

BUILDING_CLASSES = ("Building", "BuildingPart")
"""The classes the `buildings` view holds; a building's storeys, units, rooms, installations and
furniture (CityGML 3.0, CityJSON 2.0) stay in `features` with their parent_id."""

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
WHERE f.feature_class IN ({classes})
""".format(classes=", ".join(f"'{c}'" for c in BUILDING_CLASSES))
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


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob(lake: Lake, folder: str, suffix: str = "parquet") -> str:
    return _sql_string(str((lake.root / folder).resolve() / "source=*" / f"*.{suffix}"))


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


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """A lake table's columns and their DuckDB types, from the schema file."""
    rel = con.from_arrow(schemas.feature_schema().table(table).arrow.empty_table())
    return dict(zip(rel.columns, map(str, rel.types), strict=True))


def _nothing(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A SELECT of no rows with a table's columns: what a view shows while the lake has none."""
    nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in _columns(con, table).items())
    return f"SELECT {nulls} WHERE false"


def _runs(lake: Lake, con: duckdb.DuckDBPyConnection) -> str:
    """The landed runs' records, from the footers of the features files (the CASE keeps a filter
    pushed below the key test from parsing other metadata as JSON)."""
    structure = _sql_string(json.dumps(_columns(con, "sources")))
    key = f"{_sql_string(RUN_KEY)}::BLOB"
    return (
        f"SELECT unnest(from_json(CASE WHEN key = {key} THEN decode(value) END, {structure})) "
        f"FROM parquet_kv_metadata({_glob(lake, 'features')}) WHERE key = {key}"
    )


LAST_ATTEMPT = ("last_attempt", "last_attempt_status", "last_attempt_reason", "last_attempt_run_id")
SOURCES = """
WITH tried AS ({attempts}),
last AS (
    SELECT source, max(started_at) AS last_attempt,
           arg_max(status, run_id) AS last_attempt_status,
           arg_max(reason, run_id) AS last_attempt_reason,
           max(run_id) AS last_attempt_run_id
    FROM tried GROUP BY source
)
SELECT {columns} FROM last LEFT JOIN ({landed}) USING (source)
"""
"""One row per source ever tried: its landed run, if any, beside its last attempt (run ids sort
by start time)."""


def _views(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, str]:
    """The SELECT of each view over what the lake holds now."""
    sql: dict[str, str] = {}
    for folder, table in (*((k, k) for k in KINDS), ("quarantine", "rejects")):
        sql[folder] = (
            f"SELECT * FROM read_parquet({_glob(lake, folder)}, union_by_name = true)"
            if lake.files(folder)
            else _nothing(con, table)
        )
    runs = _runs(lake, con) if lake.files("features") else _nothing(con, "sources")
    landed = (
        "SELECT source, run_id, path, last_ingest AS started_at, 'ok' AS status, "
        f"NULL AS reason, records, rejects FROM ({runs})"
    )
    tried = [landed]
    if lake.attempt_records():
        columns = ", ".join(
            f"{_sql_string(c)}: {_sql_string(t)}" for c, t in _columns(con, "attempts").items()
        )
        tried.append(
            f"SELECT * FROM read_json({_glob(lake, 'attempts', 'json')}, columns = {{{columns}}}, "
            "format = 'newline_delimited')"
        )
    sql["attempts"] = " UNION ALL BY NAME ".join(tried)
    sql["sources"] = SOURCES.format(
        attempts=sql["attempts"],
        landed=f"SELECT * EXCLUDE ({', '.join(LAST_ATTEMPT)}) FROM ({runs})",
        columns=", ".join(_columns(con, "sources")),
    )
    return sql


def refresh(lake: Lake) -> None:
    """(Re)create the views over whatever the lake holds now, in one transaction: a reader sees
    the old views or the new ones, and a refresh that is killed leaves the old ones."""
    lake.root.mkdir(parents=True, exist_ok=True)
    con = connect(lake, read_only=False)
    try:
        con.execute("BEGIN TRANSACTION")
        for name, kind in con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall():  # earlier versions made tables for views without files
            con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")
        sql = _views(con, lake)
        for view in VIEWS:
            con.execute(f"CREATE VIEW {view} AS {sql[view]}")
        con.execute(BUILDINGS)
        con.execute("COMMIT")
    finally:
        con.close()


def query(lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one or more read-only statements; the columns and rows of the last one.

    Only SELECT statements run, on a read-only connection that may read the lake's tables and
    nothing else on the machine or the network (not the staging area of runs in progress).
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
        readable = ", ".join(_sql_string(f"{d.resolve()}/") for d in lake.readable)
        con.execute(f"SET allowed_directories = [{readable}]")
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
