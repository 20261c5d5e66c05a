"""The DuckDB warehouse: views over the lake's Parquet files, and read-only SQL for analysts.

The warehouse file holds only views, so it can be rebuilt at any time from the lake; the data
stays in GeoParquet where every other tool can read it too.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import duckdb_extension_httpfs
import duckdb_extension_spatial

from citypipe import schemas
from citypipe.core.history import HISTORY
from citypipe.core.lake import KINDS, LAST_ATTEMPT, OBSERVATIONS, RUN_KEY, Lake
from citypipe.geo.errors import ConfigurationError, UnavailableError

__all__ = [
    "BUILDINGS",
    "VIEWS",
    "Limits",
    "connect",
    "httpfs_extension",
    "query",
    "refresh",
    "spatial_extension",
    "stream",
]

VIEWS = (
    *KINDS, "quarantine", HISTORY, "sources", "attempts", "buildings", OBSERVATIONS,
    "relationships",
)  # fmt: skip
"""The lake tables the warehouse has a view of: each kind over its folder of Parquet files (the
landed runs), `quarantine` over the rejects of attempts that did not land, `history` over the
row of every ingest, `sources` and `attempts` over the run records in the footers of the
features files and the records of the attempts that did not land, `observations` over its day
partitions, `relationships` over the relationships the features' properties list."""

BUILDING_CLASSES = ("Building", "BuildingPart")
"""The classes the `buildings` view holds; a building's storeys, units, rooms, installations and
furniture (CityGML 3.0, CityJSON 2.0) stay in `features` with their parent_id."""

BUILDINGS = """
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


RELATIONSHIPS = """
WITH named AS (
    SELECT feature_id, source, properties,
           unnest(CAST(properties -> '$."citypipe:relationships"' AS VARCHAR[])) AS relationship
    FROM features
    WHERE json_type(properties, '$."citypipe:relationships"') = 'ARRAY'
),
targets AS (
    SELECT feature_id, source, relationship,
           json_extract(properties, '$."' || replace(relationship, '"', '\\"') || '"') AS target
    FROM named
),
ids AS (
    SELECT feature_id, source, relationship,
           unnest(CASE json_type(target) WHEN 'ARRAY' THEN CAST(target AS VARCHAR[])
                  ELSE [target ->> '$'] END) AS to_id
    FROM targets WHERE target IS NOT NULL
)
SELECT i.feature_id AS from_feature_id, i.relationship, i.to_id, t.feature_id AS to_feature_id
FROM ids i LEFT JOIN features t ON t.source_id = i.to_id
QUALIFY row_number() OVER (
    PARTITION BY i.feature_id, i.relationship, i.to_id
    ORDER BY t.source = i.source DESC NULLS LAST, t.feature_id
) = 1
"""
"""One row per target of each relationship a feature's properties list under
`citypipe:relationships` (NGSI Relationships, kept as properties holding the target id, or a
list of them); the target's feature_id where an entity of that id is in the lake (of the same
source when several sources hold it)."""


def _extension(package: ModuleType, name: str) -> Path:
    """An extension binary shipped by its PyPI package (duckdb-extension-NAME), for the duckdb
    installed: nothing is downloaded at run time."""
    root = Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    path = root / f"{name}.duckdb_extension"
    if not path.exists():
        raise ConfigurationError(
            f"no {name} extension for duckdb {duckdb.__version__} in {root.parent}: "
            f"install duckdb-extension-{name} of the same version as duckdb"
        )
    return path


def spatial_extension() -> Path:
    """The spatial extension binary shipped by the duckdb-extension-spatial package."""
    return _extension(duckdb_extension_spatial, "spatial")


def httpfs_extension() -> Path:
    """The httpfs extension binary (s3:// paths) shipped by duckdb-extension-httpfs."""
    return _extension(duckdb_extension_httpfs, "httpfs")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob(base: str, folder: str, suffix: str = "parquet") -> str:
    """The files of a lake folder, under `base`: the lake's absolute path with a slash, or ""
    for paths relative to the lake folder."""
    return _sql_string(f"{base}{folder}/*/*.{suffix}")


def _observation_files(base: str) -> str:
    """The observations table's files: one folder per day (`day=<YYYY-MM-DD>`), a hive
    partition, so a query on `day` opens only those days' files."""
    return _sql_string(f"{base}{OBSERVATIONS}/day=*/*.parquet")


def _open(path: Path, read_only: bool, lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path` with the spatial functions loaded, and for a lake on an
    object store httpfs with a temporary secret made from the environment."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as e:
        raise UnavailableError(f"{path}: the warehouse cannot be opened: {e}") from e
    con.execute(f"LOAD {_sql_string(str(spatial_extension()))}")
    if (access := lake.duckdb_access()) is not None:
        con.execute(f"LOAD {_sql_string(str(httpfs_extension()))}")
        con.execute(access)
    return con


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse with the spatial functions loaded."""
    if not lake.warehouse.exists():
        raise ConfigurationError(f"{lake.warehouse}: no warehouse yet; ingest a source first")
    return _open(lake.warehouse, read_only=True, lake=lake)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """A lake table's columns and their DuckDB types, from the schema file."""
    rel = con.from_arrow(schemas.feature_schema().table(table).arrow.empty_table())
    return dict(zip(rel.columns, map(str, rel.types), strict=True))


def _nothing(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A SELECT of no rows with a table's columns: what a view shows while the lake has none."""
    nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in _columns(con, table).items())
    return f"SELECT {nulls} WHERE false"


def _runs(base: str, con: duckdb.DuckDBPyConnection) -> str:
    """The landed runs' records, from the footers of the features files (the CASE keeps a filter
    pushed below the key test from parsing other metadata as JSON)."""
    structure = _sql_string(json.dumps(_columns(con, "sources")))
    key = f"{_sql_string(RUN_KEY)}::BLOB"
    return (
        f"SELECT unnest(from_json(CASE WHEN key = {key} THEN decode(value) END, {structure})) "
        f"FROM parquet_kv_metadata({_glob(base, 'features')}) WHERE key = {key}"
    )


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
by start time). Every ingest of it is a row of `history`, which this view does not join: a
source landed every few seconds (`citypipe listen`) has thousands of rows there, one file each,
and a look at the sources' state must not read them all."""


def _views(con: duckdb.DuckDBPyConnection, lake: Lake, base: str) -> dict[str, str]:
    """The SELECT of each view over what the lake holds now, its files named under `base`."""
    sql: dict[str, str] = {}
    for folder, table in (*((k, k) for k in KINDS), ("quarantine", "rejects"), (HISTORY, HISTORY)):
        sql[folder] = (
            f"SELECT * FROM read_parquet({_glob(base, folder)}, union_by_name = true)"
            if lake.holds(folder)
            else _nothing(con, table)
        )
    runs = _runs(base, con) if lake.holds("features") else _nothing(con, "sources")
    landed = (
        "SELECT source, run_id, path, last_ingest AS started_at, 'ok' AS status, "
        f"NULL AS reason, records, rejects FROM ({runs})"
    )
    tried = [landed]
    if lake.holds("attempts", "json"):
        columns = ", ".join(
            f"{_sql_string(c)}: {_sql_string(t)}" for c, t in _columns(con, "attempts").items()
        )
        tried.append(
            f"SELECT * FROM read_json({_glob(base, 'attempts', 'json')}, columns = {{{columns}}}, "
            "format = 'newline_delimited')"
        )
    sql["attempts"] = " UNION ALL BY NAME ".join(tried)
    sql["sources"] = SOURCES.format(
        attempts=sql["attempts"],
        landed=f"SELECT * EXCLUDE ({', '.join(LAST_ATTEMPT)}) FROM ({runs})",
        columns=", ".join(_columns(con, "sources")),
    )
    sql["buildings"] = BUILDINGS
    sql[OBSERVATIONS] = (
        f"SELECT * FROM read_parquet({_observation_files(base)}, hive_partitioning = true, "
        "hive_types = {'day': DATE})"
        if lake.holds(OBSERVATIONS)
        else f"SELECT *, CAST(NULL AS DATE) AS day FROM ({_nothing(con, OBSERVATIONS)})"
    )
    sql["relationships"] = RELATIONSHIPS
    return sql


def _create_views(con: duckdb.DuckDBPyConnection, lake: Lake, base: str, temp: bool) -> None:
    sql = _views(con, lake, base)
    for view in VIEWS:
        con.execute(f"CREATE {'TEMP ' if temp else ''}VIEW {view} AS {sql[view]}")


def _clear_stale(lake: Lake) -> None:
    """Remove the half-built warehouses of refreshes whose process died."""
    for stale in lake.root.glob(".warehouse.*.duckdb*"):
        pid = int(stale.name.split(".")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def refresh(lake: Lake) -> None:
    """Build the views over whatever the lake holds now in a new warehouse file, then put it in
    place in one rename: a reader sees the old views or the new ones, never none, never waits
    for a lock, and a refresh that fails or is killed (or a warehouse file a full disk left
    broken) costs nothing; the warehouse holds only views, rebuilt from the lake each time."""
    lake.root.mkdir(parents=True, exist_ok=True)
    _clear_stale(lake)
    new = lake.root / f".warehouse.{os.getpid()}.{uuid.uuid4().hex[:8]}.duckdb"
    try:
        con = _open(new, read_only=False, lake=lake)
        try:  # relative paths, so that the lake can move; bound against the lake meanwhile
            con.execute(f"SET file_search_path = {_sql_string(str(lake.root.resolve()))}")
            _create_views(con, lake, lake.files_base(relative=True), temp=False)
        finally:
            con.close()
        os.replace(new, lake.warehouse)
    except (duckdb.Error, OSError) as e:
        raise UnavailableError(f"{lake.warehouse}: the warehouse could not be written: {e}") from e
    finally:
        for left in (new, new.with_name(new.name + ".wal")):
            with suppress(OSError):
                left.unlink(missing_ok=True)


READ_ONLY_WORDS = frozenset(
    {
        "select",
        "with",
        "from",
        "values",
        "table",
        "pivot",
        "unpivot",
        "describe",
        "show",
        "summarize",
    }
)
"""The words a statement of analysts' SQL may start with: reads only. PRAGMA, CALL, SET,
IMPORT / EXPORT, ATTACH, COPY, INSTALL / LOAD, DDL and DML are refused before DuckDB parses the
text (its parser acts on some of them, PRAGMA import_database among them)."""


def seconds_limit(text: str) -> float:
    """A query's time limit from `--timeout` or `CITYPIPE_SQL_SECONDS`: seconds above 0 that a
    timer can wait (0, a negative or an infinite limit would stop every query, or none)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= threading.TIMEOUT_MAX:
        raise ConfigurationError(
            f"time limit {text!r} is not a number of seconds above 0 "
            "(--timeout, CITYPIPE_SQL_SECONDS)"
        )
    return seconds


@dataclass(frozen=True)
class Limits:
    """How long and how much memory one `query` may take (`CITYPIPE_SQL_SECONDS`,
    `CITYPIPE_SQL_MEMORY`; `citypipe sql --timeout / --memory`)."""

    seconds: float = field(
        default_factory=lambda: seconds_limit(os.environ.get("CITYPIPE_SQL_SECONDS") or "60")
    )
    memory: str = field(default_factory=lambda: os.environ.get("CITYPIPE_SQL_MEMORY") or "2GB")


def _first_words(sql: str) -> list[str]:
    """The first word of each statement, from DuckDB's tokenizer, which only splits the text
    (comments and strings are tokens of their own, so `';'` ends nothing)."""
    tokens = duckdb.tokenize(sql)
    if not tokens:  # blank, or comments alone: no statement, which `stream` says
        return []
    words, start = [], True
    for (pos, kind), nxt in zip(tokens, [*tokens[1:], (len(sql), None)], strict=True):
        text = sql[pos : nxt[0]]
        if kind == duckdb.token_type.operator and text.lstrip().startswith(";"):
            start = True
        elif start and not (kind == duckdb.token_type.operator and text.strip() == "("):
            words.append(re.findall(r"^\w*", text)[0].lower() or text.strip()[:1])
            start = False
    return words


def _one_line(error: duckdb.Error) -> str:
    """DuckDB's message in one line: its text spans several (a hint, then the statement's line
    and a caret under the place), and a refusal is one line. The place is kept as its line
    number."""
    text, _, where = str(error).partition("\nLINE ")
    place = f" (line {where.split(':', 1)[0]})" if where else ""
    return " ".join(text.split()) + place


def _sandbox(con: duckdb.DuckDBPyConnection, lake: Lake, limits: Limits) -> None:
    """Before the user's text is seen: the lake's tables are all the connection may read, within
    the memory limit, with nothing spilled to disk, and no setting can be changed back."""
    try:
        con.execute(f"SET memory_limit = {_sql_string(limits.memory)}")
    except duckdb.Error as e:
        raise ConfigurationError(f"memory limit {limits.memory!r} is not a size such as 2GB") from e
    con.execute("SET temp_directory = ''")
    readable = ", ".join(map(_sql_string, lake.readable))
    con.execute(f"SET allowed_directories = [{readable}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


@contextmanager
def stream(
    lake: Lake, sql: str, limits: Limits | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The result of the last of one or more read-only statements, to fetch within the block
    (`fetchmany`, `to_arrow_reader`: results larger than memory stream through).

    Only reads run, on a read-only connection that may read the lake's tables and nothing else
    on the machine or the network (not the staging area of runs in progress), within a time
    and a memory limit that cover the fetching too.
    """
    limits = limits or Limits()
    refused = [w for w in _first_words(sql) if w not in READ_ONLY_WORDS]
    if refused:
        raise ConfigurationError(f"only queries that read are allowed, not {refused[0].upper()}")
    con = connect(lake)
    timer = threading.Timer(limits.seconds, con.interrupt)
    try:
        # the stored views name their files relative to the lake folder (for DuckDB opened
        # there); these shadow them with the lake's own path, wherever it has been moved to
        _create_views(con, lake, lake.files_base(relative=False), temp=True)
        _sandbox(con, lake, limits)
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as e:
            raise ConfigurationError(f"SQL does not parse: {_one_line(e)}") from e
        if not statements:
            raise ConfigurationError("no SQL statement given")
        for st in statements:
            if st.type != duckdb.StatementType.SELECT:
                raise ConfigurationError(
                    f"only SELECT queries are allowed, not {st.type.name}: "
                    f"{' '.join(st.query.split())[:60]}"
                )
        timer.start()
        try:
            for st in statements[:-1]:
                con.execute(st.query).fetchall()
            yield con.execute(statements[-1].query)
        except duckdb.InterruptException as e:
            raise ConfigurationError(
                f"query stopped after {limits.seconds:g} s, its time limit "
                "(--timeout, CITYPIPE_SQL_SECONDS)"
            ) from e
        except duckdb.OutOfMemoryException as e:
            raise ConfigurationError(
                f"query needs more than {limits.memory} of memory, its limit "
                "(--memory, CITYPIPE_SQL_MEMORY)"
            ) from e
        except duckdb.Error as e:
            raise ConfigurationError(f"query failed: {_one_line(e)}") from e
    finally:
        timer.cancel()
        con.close()


def query(
    lake: Lake, sql: str, limits: Limits | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one or more read-only statements (see `stream`); the columns and rows of the last."""
    with stream(lake, sql, limits) as result:
        return [d[0] for d in result.description or []], result.fetchall()
