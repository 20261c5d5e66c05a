"""`citypipe export`: a source, a view or a SQL result as GeoPackage, FlatGeobuf, GeoJSON or CSV.

Desktop GIS often has a GDAL without the Parquet driver; these four formats every GDAL writes
and reads. The rows come through `warehouse.stream`, the sandbox and limits of `citypipe sql`,
a batch at a time, and are spooled once to an Arrow IPC file beside the output: GDAL (through
pyogrio) must be told the layer's geometry type before the first row, and FlatGeobuf's spatial
index takes no null geometry, which only the whole result tells. Memory stays bounded by a batch
whatever the size, and the file appears under its name complete or not at all.
"""

from __future__ import annotations

import glob
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.errors
import pyproj
import shapely

from citypipe.core import progress, warehouse
from citypipe.core.lake import Lake, check_source_name
from citypipe.core.results import BATCH_ROWS
from citypipe.geo.crs import label, resolve
from citypipe.geo.errors import ConfigurationError, UnavailableError
from citypipe.geo.wkb import geometry_types, to_wkt

__all__ = ["FORMATS", "Exported", "export", "selection"]


@dataclass(frozen=True)
class Format:
    driver: str
    suffix: str
    options: tuple[tuple[str, str], ...] = ()
    """Layer creation options."""


FORMATS = {
    "gpkg": Format("GPKG", ".gpkg"),
    "fgb": Format("FlatGeobuf", ".fgb"),
    "geojson": Format("GeoJSON", ".geojson", (("RFC7946", "YES"),)),  # lon/lat, no crs member
    "csv": Format("CSV", ".csv", (("GEOMETRY", "AS_WKT"),)),  # geometry first, as column WKT
}
"""The formats by name; a file name's suffix names its format when `--format` does not."""

_SUFFIXES = {f.suffix: name for name, f in FORMATS.items()} | {".json": "geojson"}
_GEOARROW_WKB = b"geoarrow.wkb"  # how DuckDB marks a GEOMETRY column in Arrow
_MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}
_SINGLE_IDS = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    path: Path
    format: str
    rows: int
    geometry: str | None
    """The layer's geometry column; other geometry columns are written as WKT text."""
    geometry_type: str | None
    crs: str | None
    notes: tuple[str, ...] = ()


def selection(
    lake: Lake, source: str | None = None, view: str | None = None, sql: str | None = None
) -> tuple[str, str | None]:
    """The SQL that reads what is to be exported (one of the three), and its layer name."""
    if source is not None:
        check_source_name(source)
        if not any(p.exists() for p in lake.partition("features", source).glob("*.parquet")):
            raise ConfigurationError(
                f"no source {source!r} in the lake {lake.root} "
                "(SELECT source FROM sources lists them)"
            )
        return f"SELECT * FROM features WHERE source = '{source}'", source
    if view is not None:
        if view not in warehouse.VIEWS:
            raise ConfigurationError(
                f"no view {view!r}: the views are {', '.join(warehouse.VIEWS)}"
            )
        return f"SELECT * FROM {view}", view
    if sql is None:
        raise ConfigurationError("nothing to export: name a source, a view or a query")
    return sql, None


def _format(dest: Path, name: str | None) -> str:
    name = name or _SUFFIXES.get(dest.suffix.lower())
    if name not in FORMATS:
        given = f"format {name!r}" if name else f"no format known by the suffix {dest.suffix!r}"
        raise ConfigurationError(f"{dest}: {given}; --format {' | '.join(FORMATS)}")
    return name


@dataclass
class _Spooled:
    """What the spool pass learnt about the result."""

    schema: pa.Schema
    rows: int = 0
    types: frozenset[str] = frozenset()
    empty: int = 0
    """Rows whose geometry is null or empty."""


def _geometry_column(schema: pa.Schema, wanted: str | None) -> str | None:
    """The layer's geometry: `wanted`, else `geometry`, else the first GEOMETRY column."""
    names = [f.name for f in schema if _is_geometry(f)]
    if wanted is not None and wanted not in names:
        raise ConfigurationError(
            f"--geometry {wanted!r} is not a GEOMETRY column of the result "
            f"(those are: {', '.join(names) or 'none'})"
        )
    return wanted or ("geometry" if "geometry" in names else next(iter(names), None))


def _spool(
    reader: pa.RecordBatchReader, path: Path, geometry: str | None, task: progress.Task
) -> _Spooled:
    facts = _Spooled(reader.schema)
    types: set[str] = set()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as spool:
        for batch in reader:
            spool.write_batch(batch)
            facts.rows += batch.num_rows
            if geometry is not None:
                column = batch.column(geometry)
                types |= geometry_types(column)
                parsed = shapely.from_wkb(column.to_numpy(zero_copy_only=False))
                facts.empty += column.null_count + int(shapely.is_empty(parsed).sum())
            task.add("rows read", batch.num_rows)
    facts.types = frozenset(types)
    return facts


def _crs(schema: pa.Schema, geometry: str, named: str | None) -> pyproj.CRS:
    """The CRS of the geometry column: `named` (--crs), else the one DuckDB carries in the
    column's type (ST_Transform, ST_SetCRS set it), else refused."""
    meta = json.loads(schema.field(geometry).metadata.get(b"ARROW:extension:metadata") or b"{}")
    carried = meta.get("crs")
    if named is None and carried is None:
        raise ConfigurationError(
            f"the geometry column {geometry!r} carries no CRS (ST_Point, ST_GeomFromText and "
            "ST_Transform from one CRS to another leave it unset): name it with --crs, or in the "
            "query with ST_SetCRS or ST_Transform(geom, 'EPSG:...')"
        )
    return resolve(named or (carried if isinstance(carried, str) else json.dumps(carried)))


def _gdal_crs(crs: pyproj.CRS) -> str:
    """The CRS as GDAL writes it best: its authority code (GeoPackage's srs table, FlatGeobuf's
    header), else WKT."""
    auth = crs.to_authority(min_confidence=90)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def _layer_type(types: frozenset[str]) -> tuple[str, bool]:
    """The layer's geometry type, and whether single geometries are made multi to fit it
    (GeoPackage and FlatGeobuf hold one type a layer; Polygon beside MultiPolygon is common)."""
    z = " Z" if any(t.endswith(" Z") for t in types) else ""
    kinds = {t.removesuffix(" Z") for t in types}
    if len(kinds) == 1:
        return kinds.pop() + z, False
    multi = {_MULTI.get(k, k) for k in kinds}
    if len(multi) == 1 and (only := multi.pop()) in _MULTI.values():
        return only + z, True
    return "Unknown", False


def _multi(wkb: pa.Array) -> pa.Array:
    """The geometries with each single one (Point, LineString, Polygon) made a multi of one."""
    geometries = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    ids = shapely.get_type_id(geometries)
    for type_id, make in _SINGLE_IDS.items():
        single = ids == type_id
        if single.any():
            geometries[single] = make(geometries[single], indices=np.arange(int(single.sum())))
    return pa.array(shapely.to_wkb(geometries, flavor="iso"), pa.binary())


def _is_geometry(field: pa.Field) -> bool:
    return (field.metadata or {}).get(b"ARROW:extension:name") == _GEOARROW_WKB


def _written_schema(schema: pa.Schema, geometry: str | None) -> pa.Schema:
    """The spooled schema as written: geometry columns but the layer's become WKT text (each
    format holds one geometry a layer)."""
    return pa.schema(
        [
            pa.field(f.name, pa.string()) if _is_geometry(f) and f.name != geometry else f
            for f in schema
        ]
    )


def _batches(
    spool: pa.RecordBatchFileReader,
    schema: pa.Schema,
    geometry: str | None,
    promote: bool,
    task: progress.Task,
) -> Iterator[pa.RecordBatch]:
    for i in range(spool.num_record_batches):
        batch = spool.get_batch(i)
        columns = []
        for field, out, column in zip(spool.schema, schema, batch.columns, strict=True):
            if field.name == geometry and promote:
                column = _multi(column)
            elif out.type != field.type:
                column = pa.array(to_wkt(column), pa.string())
            columns.append(column)
        yield pa.RecordBatch.from_arrays(columns, schema=schema)
        task.add("rows written", batch.num_rows)


def _write(
    spool_path: Path,
    tmp: Path,
    form: Format,
    facts: _Spooled,
    layer: str,
    geometry: str | None,
    crs: pyproj.CRS | None,
    task: progress.Task,
) -> tuple[str | None, tuple[str, ...]]:
    """Write the spooled result with GDAL; the layer's geometry type and notes for the user."""
    options = dict(form.options) if geometry else {}  # the options all concern the geometry
    notes = []
    kind, promote = _layer_type(facts.types) if geometry else (None, False)
    if form.driver == "FlatGeobuf" and (facts.empty or not geometry):
        options["SPATIAL_INDEX"] = "NO"  # FlatGeobuf's index takes no null or empty geometry
        if geometry:
            notes.append(f"rows with a null or empty geometry: {facts.empty}, so no spatial index")
    if form.driver == "CSV" and crs:
        notes.append(f"CSV holds no CRS: the WKT is in {label(crs)}")
    with pa.OSFile(str(spool_path)) as source:
        spool = pa.ipc.open_file(source)
        schema = _written_schema(spool.schema, geometry)
        task.total("rows written", facts.rows)
        task.probe("bytes written", lambda: _size(tmp))
        stream = pa.RecordBatchReader.from_batches(
            schema, _batches(spool, schema, geometry, promote, task)
        )
        pyogrio.write_arrow(
            stream,
            str(tmp),
            layer=layer,
            driver=form.driver,
            geometry_name=geometry,
            geometry_type=kind,
            crs=crs and _gdal_crs(crs),
            layer_options=options,
        )
    return kind, tuple(notes)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:  # not created yet
        return None


def _exists(dest: Path) -> ConfigurationError:
    return ConfigurationError(f"{dest} exists: --force replaces it")


def _put(tmp: Path, dest: Path, force: bool) -> None:
    """Give the finished file its name in one step; without `force` never over another file,
    even one that appeared meanwhile."""
    if force:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)
    except FileExistsError as e:
        raise _exists(dest) from e
    except OSError:  # a file system without hard links
        if dest.exists():
            raise _exists(dest) from None
        os.replace(tmp, dest)


def export(
    lake: Lake,
    sql: str,
    dest: Path,
    format: str | None = None,
    *,
    layer: str | None = None,
    geometry: str | None = None,
    crs: str | None = None,
    force: bool = False,
    limits: warehouse.Limits | None = None,
    reporter: progress.Reporter = progress.SILENT,
) -> Exported:
    """Write the result of `sql` (read-only, as `citypipe sql` runs it) to `dest`.

    The layer's geometry is `geometry` (else the column named geometry, else the first GEOMETRY
    column) in the CRS the result carries (`crs` names another); other geometry columns, such
    as geometry_3d, become WKT text. ConfigurationError for what the user can fix, and
    UnavailableError when the file cannot be written; either way nothing is left behind.
    `reporter` shows the rows read, then the rows and bytes written.
    """
    name = _format(dest, format)
    form = FORMATS[name]
    if dest.is_dir() or (dest.exists() and not force):
        raise ConfigurationError(f"{dest} is a folder") if dest.is_dir() else _exists(dest)
    if not dest.parent.is_dir():
        raise ConfigurationError(f"{dest}: no folder {dest.parent}")
    tag = f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    spool, tmp = dest.parent / f"{tag}.arrows", dest.parent / f"{tag}{form.suffix}"
    task = progress.Task(f"export {dest.name}")
    try:
        with reporter.track(task):
            with warehouse.stream(lake, sql, limits) as result:
                reader = result.to_arrow_reader(BATCH_ROWS)
                column = _geometry_column(reader.schema, geometry)
                layer_crs = _crs(reader.schema, column, crs) if column else None
                facts = _spool(reader, spool, column, task)
            kind, notes = _write(
                spool, tmp, form, facts, layer or dest.stem, column, layer_crs, task
            )
        _put(tmp, dest, force)
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as e:
        raise UnavailableError(f"{dest}: cannot be written: {e}") from e
    finally:
        for left in dest.parent.glob(glob.escape(tag) + "*"):
            left.unlink(missing_ok=True)
    crs_label = label(layer_crs) if layer_crs else None
    return Exported(dest, name, facts.rows, column, kind, crs_label, notes)
