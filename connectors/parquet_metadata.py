"""What a Parquet file's footer says about its geometry: the `geo` metadata of GeoParquet,
Parquet's own GEOMETRY / GEOGRAPHY types, or, for plain Parquet, columns named as geometries;
and from it the layout a file is read with, checked before any batch is read.

A missing `crs` member means OGC:CRS84; `crs: null` means undefined (GeoParquet spec). Without
`geo` metadata nothing declares a CRS, except Parquet's geometry types (OGC:CRS84 when absent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from citypipe.connectors.parquet_geometry import ENCODINGS, conforms, plain_encoding
from citypipe.geo.errors import ConfigurationError, DataError
from citypipe.geo.types import CRS84

__all__ = ["GeoColumn", "Layout", "geo_raw", "read_layout"]

_GEOMETRY_NAMES = ("geometry", "wkb_geometry", "wkt_geometry", "geom", "the_geom", "wkt")
"""Geometry columns of Parquet files without `geo` metadata, by name, in order of preference:
GDAL's GEOM_POSSIBLE_NAMES and the names PostGIS and ogr2ogr exports give them."""


class GeoColumn(NamedTuple):
    encoding: str
    crs: str | None


@dataclass(frozen=True)
class Layout:
    """What the footer says: the format, where the geometries are and which columns to leave out."""

    format: str
    version: str | None
    primary: str | None
    geometries: Mapping[str, GeoColumn]
    hidden: frozenset[str]


def _crs_text(crs: Any) -> str | None:
    """A declared CRS as a string pyproj reads: AUTH:CODE when PROJJSON has an id, else the
    PROJJSON as JSON text; None when undefined."""
    if crs is None or isinstance(crs, str):
        return crs or None
    ident = crs.get("id") if isinstance(crs, Mapping) else None
    if isinstance(ident, Mapping) and "authority" in ident and "code" in ident:
        return f"{ident['authority']}:{ident['code']}"
    return json.dumps(crs)


def _geo_columns(meta: Mapping[str, Any]) -> tuple[dict[str, GeoColumn], frozenset[str]]:
    """Geometry columns, and the covering columns that only repeat their bounding boxes.

    A missing `crs` member means OGC:CRS84; `crs: null` means undefined (GeoParquet spec).
    """
    columns: dict[str, GeoColumn] = {}
    hidden: set[str] = set()
    for name, column in meta.items():
        if not isinstance(column, Mapping):
            continue
        crs = _crs_text(column["crs"]) if "crs" in column else CRS84
        columns[name] = GeoColumn(str(column.get("encoding")), crs)
        covering = column.get("covering")
        bbox = covering.get("bbox") if isinstance(covering, Mapping) else None
        if isinstance(bbox, Mapping):
            hidden.update(p[0] for p in bbox.values() if isinstance(p, list) and p)
    return columns, frozenset(hidden)


def geo_raw(pf: pq.ParquetFile) -> bytes | None:
    """The `geo` metadata: in the footer, where GeoParquet puts it, else in the stored Arrow
    schema (pyarrow shows only the latter where a file has both, ARROW-16688)."""
    return (pf.metadata.metadata or {}).get(b"geo") or (pf.schema_arrow.metadata or {}).get(b"geo")


def _parquet_geometries(pf: pq.ParquetFile) -> dict[str, GeoColumn]:
    """Top-level columns of Parquet's own GEOMETRY / GEOGRAPHY logical types: WKB by definition.

    Their `crs` is OGC:CRS84 when absent, or `projjson:KEY` naming a footer key with PROJJSON.
    """
    kv = pf.metadata.metadata or {}
    found: dict[str, GeoColumn] = {}
    for i in range(len(pf.schema)):
        column = pf.schema.column(i)
        if column.logical_type.type not in ("GEOMETRY", "GEOGRAPHY") or "." in column.path:
            continue
        crs = json.loads(column.logical_type.to_json()).get("crs") or CRS84
        if crs.startswith("projjson:"):
            text = kv.get(crs.removeprefix("projjson:").encode())
            crs = _crs_text(json.loads(text)) if text else None
        found[column.path] = GeoColumn("WKB", crs)
    return found


def _named_geometries(schema: pa.Schema) -> dict[str, GeoColumn]:
    """Columns named as geometries (`_GEOMETRY_NAMES`) of a type that can hold them, the
    preferred first; in no declared CRS."""
    columns = {name.lower(): name for name in reversed(schema.names)}  # the first of a name
    found: dict[str, GeoColumn] = {}
    for name in _GEOMETRY_NAMES:
        column = columns.get(name)
        encoding = column and plain_encoding(schema.field(column).type)
        if column and encoding:
            found[column] = GeoColumn(encoding, None)
    return found


def read_layout(pf: pq.ParquetFile, path: Path, options: Mapping[str, Any]) -> Layout:
    """The file's layout; the `geometry` option names the primary column, `id` the ids.

    A primary column whose encoding this reader does not know, or whose type cannot hold it,
    refuses the file; other geometry columns go to properties as WKT where their encoding is
    readable."""
    schema = pf.schema_arrow
    fmt, version, primary, geometries, hidden = _declared(pf, path, options.get("geometry"))
    if primary is not None:
        _check_primary(schema, path, f"{fmt} {version}", primary, geometries)
    id_column = options.get("id")
    if id_column is not None and id_column not in schema.names:
        raise ConfigurationError(
            f"{path}: no column {id_column!r} for the `id` option; "
            f"columns: {', '.join(schema.names)}"
        )
    readable = {
        name: col
        for name, col in geometries.items()
        if name in schema.names
        and col.encoding in ENCODINGS
        and conforms(schema.field(name).type, col.encoding)
    }
    return Layout(fmt, version, primary, readable, hidden)


def _declared(
    pf: pq.ParquetFile, path: Path, option: str | None
) -> tuple[str, str | None, str | None, dict[str, GeoColumn], frozenset[str]]:
    """Format, version, primary column, geometry columns and the columns to leave out, as the
    footer (or, for plain Parquet, the schema) says."""
    raw = geo_raw(pf)
    if raw is None:
        geometries = _parquet_geometries(pf) or _named_geometries(pf.schema_arrow)
        return "Parquet", None, option or next(iter(geometries), None), geometries, frozenset()
    try:
        geo = json.loads(raw)
    except ValueError as e:
        raise DataError(f"{path}: the 'geo' metadata is not JSON: {e}") from e
    if not isinstance(geo, Mapping) or not isinstance(geo.get("columns"), Mapping):
        raise DataError(f"{path}: the 'geo' metadata has no 'columns' object")
    geometries, hidden = _geo_columns(geo["columns"])
    version = str(geo.get("version", "")) or None
    return "GeoParquet", version, option or geo.get("primary_column"), geometries, hidden


def _check_primary(
    schema: pa.Schema, path: Path, what: str, primary: str, geometries: dict[str, GeoColumn]
) -> None:
    """Refuse a primary column that is missing, of an unknown encoding, or of a type that cannot
    hold its encoding; a column without metadata gets the encoding of its type."""
    if primary not in schema.names:
        raise DataError(f"{path}: the geometry column {primary!r} is not in the file")
    plain = plain_encoding(schema.field(primary).type) or "WKB"
    geometries.setdefault(primary, GeoColumn(plain, None))
    encoding = geometries[primary].encoding
    if encoding not in ENCODINGS:
        raise DataError(
            f"{path}: {what}: column {primary!r} has encoding {encoding!r}; "
            f"this connector reads {', '.join(ENCODINGS)}"
        )
    if not conforms(schema.field(primary).type, encoding):
        raise DataError(
            f"{path}: column {primary!r} is declared {encoding} but is {schema.field(primary).type}"
        )
