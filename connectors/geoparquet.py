"""GeoParquet 1.0 / 1.1 (and later versions whose encoding is known), and plain Parquet.

The `geo` key of the footer says which columns hold geometries, in which encoding and CRS:
WKB, or the GeoArrow native encodings (nested lists of x/y[/z] structs or interleaved
fixed-size lists). Files are read batch by batch with `ParquetFile.iter_batches`, so memory
holds one batch, never the file. A Parquet file without `geo` metadata is read too: columns
that Parquet itself types as GEOMETRY / GEOGRAPHY are WKB by the Parquet format (the GeoParquet
2.0 direction); else, as GDAL's Parquet driver reads such files, the first column named
geometry, wkb_geometry, wkt_geometry, geom, the_geom or wkt (any case) holds the geometry: WKB
where it is binary, WKT where it is text. Columns of other names stay attributes unless the
`geometry` option names them. Without `geo` metadata nothing declares a CRS (neither WKB nor WKT
defines one): such a source is refused until `--crs` names it.

Options: `id` (column of source ids), `geometry` (primary column), `batch_size` (rows).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.geojson_shapes import NESTING
from citypipe.connectors.parquet_facts import facts
from citypipe.geo.errors import ConfigurationError, DataError
from citypipe.geo.types import CRS84

__all__ = ["GeoParquetConnector", "to_shapely"]

_BATCH_ROWS = 10_000
_GEOARROW: dict[str, tuple[GeometryType, int]] = {
    t.name.lower(): (t, n) for t, n in NESTING.items()
}
"""GeoArrow encoding -> shapely type, levels of list nesting above the coordinates."""
_ENCODINGS = ("WKB", "WKT", *_GEOARROW)
"""WKT is not GeoParquet's, but GDAL writes it (GEOMETRY_ENCODING=WKT) and plain Parquet holds it."""
_GEOMETRY_NAMES = ("geometry", "wkb_geometry", "wkt_geometry", "geom", "the_geom", "wkt")
"""Geometry columns of Parquet files without `geo` metadata, by name, in order of preference:
GDAL's GEOM_POSSIBLE_NAMES and the names PostGIS and ogr2ogr exports give them."""
_LISTS = (
    pa.ListType,
    pa.LargeListType,
    pa.FixedSizeListType,
    pa.ListViewType,
    pa.LargeListViewType,
)


class _GeoColumn(NamedTuple):
    encoding: str
    crs: str | None


@dataclass(frozen=True)
class _Layout:
    """What the footer says: the format, where the geometries are and which columns to leave out."""

    format: str
    version: str | None
    primary: str | None
    geometries: Mapping[str, _GeoColumn]
    hidden: frozenset[str]


# -- geometry ------------------------------------------------------------------------------


def _binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _plain_encoding(t: pa.DataType) -> str | None:
    """The encoding a column without metadata holds by its type: WKB if binary, WKT if text."""
    return "WKB" if _binary(t) else "WKT" if _text(t) else None


def _conforms(t: pa.DataType, encoding: str) -> bool:
    """Whether an Arrow type can hold `encoding`; checked on the schema so a mislabelled
    column is reported once, before reading, instead of failing somewhere in a batch."""
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if encoding in ("WKB", "WKT"):
        return _plain_encoding(t) == encoding
    for _ in range(_GEOARROW[encoding][1]):
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            return False
        t = t.value_type
    if pa.types.is_struct(t):
        return {"x", "y"} <= {f.name for f in t}
    return pa.types.is_fixed_size_list(t) and 2 <= t.list_size <= 4


def _coords(array: pa.Array) -> np.ndarray:
    """x, y[, z] as an (n, 2|3) float array from separated (struct) or interleaved coordinates.

    M is dropped: the shared schema has no measures. Null slots become NaN; their rows are
    masked by the caller.
    """
    if isinstance(array, pa.StructArray):
        dims = [f.name for f in array.type]
        table = np.column_stack([c.to_numpy(zero_copy_only=False) for c in array.flatten()])
    else:
        n = array.type.list_size
        name = array.type.value_field.name
        dims = list(name if len(name) == n and set(name) <= set("xyzm") else "xyzm"[:n])
        # flatten() would drop null slots and misalign the rows; slice the values instead
        flat = array.values.slice(array.offset * n, len(array) * n)
        table = flat.to_numpy(zero_copy_only=False).reshape(-1, n)
    keep = [dims.index(d) for d in "xyz" if d in dims]
    return np.ascontiguousarray(table[:, keep], dtype=np.float64)


def _geoarrow(array: pa.Array, encoding: str) -> np.ndarray:
    kind, levels = _GEOARROW[encoding]
    offsets: list[np.ndarray] = []
    child = array
    for _ in range(levels):
        # `offsets` honours a slice of the array, `values` does not: rebase both on the slice
        o = child.offsets.to_numpy()
        start, end = int(o[0]), int(o[-1])
        offsets.append(o - start)
        child = child.values.slice(start, end - start)
    coords = _coords(child)
    if not len(coords):  # from_ragged_array fails on a batch without any coordinates
        return shapely.empty(len(array), geom_type=kind)
    # from_ragged_array wants the innermost offsets first; all-NaN points are POINT EMPTY
    return shapely.from_ragged_array(kind, coords, tuple(reversed(offsets)) or None)


def to_shapely(array: pa.Array, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Shapely geometries (None for null) of a WKB, WKT or GeoArrow native array, and a mask of the
    rows whose value is present but not a readable geometry."""
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    present = array.is_valid().to_numpy(zero_copy_only=False)
    if encoding == "WKB":
        geoms = shapely.from_wkb(array.to_numpy(zero_copy_only=False), on_invalid="ignore")
    elif encoding == "WKT":
        geoms = shapely.from_wkt(array.to_numpy(zero_copy_only=False), on_invalid="ignore")
    else:
        try:
            geoms = np.asarray(_geoarrow(array, encoding), dtype=object)
        except GEOSException:  # a row GEOS refuses (a linestring of one point): row by row
            rows = [_geoarrow_row(array.slice(i, 1), encoding) for i in range(len(array))]
            geoms = np.array(rows, dtype=object)
        geoms[~present] = None
    return geoms, present & shapely.is_missing(geoms)


def _geoarrow_row(row: pa.Array, encoding: str) -> Any:
    """The geometry of a one-row array, None where GEOS refuses it."""
    try:
        return _geoarrow(row, encoding)[0]
    except GEOSException:
        return None


# -- metadata ------------------------------------------------------------------------------


def _crs_text(crs: Any) -> str | None:
    """A declared CRS as a string pyproj reads: AUTH:CODE when PROJJSON has an id, else the
    PROJJSON as JSON text; None when undefined."""
    if crs is None or isinstance(crs, str):
        return crs or None
    ident = crs.get("id") if isinstance(crs, Mapping) else None
    if isinstance(ident, Mapping) and "authority" in ident and "code" in ident:
        return f"{ident['authority']}:{ident['code']}"
    return json.dumps(crs)


def _geo_columns(meta: Mapping[str, Any]) -> tuple[dict[str, _GeoColumn], frozenset[str]]:
    """Geometry columns, and the covering columns that only repeat their bounding boxes.

    A missing `crs` member means OGC:CRS84; `crs: null` means undefined (GeoParquet spec).
    """
    columns: dict[str, _GeoColumn] = {}
    hidden: set[str] = set()
    for name, column in meta.items():
        if not isinstance(column, Mapping):
            continue
        crs = _crs_text(column["crs"]) if "crs" in column else CRS84
        columns[name] = _GeoColumn(str(column.get("encoding")), crs)
        covering = column.get("covering")
        bbox = covering.get("bbox") if isinstance(covering, Mapping) else None
        if isinstance(bbox, Mapping):
            hidden.update(p[0] for p in bbox.values() if isinstance(p, list) and p)
    return columns, frozenset(hidden)


def _geo_raw(pf: pq.ParquetFile) -> bytes | None:
    """The `geo` metadata: in the footer, where GeoParquet puts it, else in the stored Arrow
    schema (pyarrow shows only the latter where a file has both, ARROW-16688)."""
    return (pf.metadata.metadata or {}).get(b"geo") or (pf.schema_arrow.metadata or {}).get(b"geo")


def _parquet_geometries(pf: pq.ParquetFile) -> dict[str, _GeoColumn]:
    """Top-level columns of Parquet's own GEOMETRY / GEOGRAPHY logical types: WKB by definition.

    Their `crs` is OGC:CRS84 when absent, or `projjson:KEY` naming a footer key with PROJJSON.
    """
    kv = pf.metadata.metadata or {}
    found: dict[str, _GeoColumn] = {}
    for i in range(len(pf.schema)):
        column = pf.schema.column(i)
        if column.logical_type.type not in ("GEOMETRY", "GEOGRAPHY") or "." in column.path:
            continue
        crs = json.loads(column.logical_type.to_json()).get("crs") or CRS84
        if crs.startswith("projjson:"):
            text = kv.get(crs.removeprefix("projjson:").encode())
            crs = _crs_text(json.loads(text)) if text else None
        found[column.path] = _GeoColumn("WKB", crs)
    return found


def _named_geometries(schema: pa.Schema) -> dict[str, _GeoColumn]:
    """Columns named as geometries (`_GEOMETRY_NAMES`) of a type that can hold them, the
    preferred first; in no declared CRS."""
    columns = {name.lower(): name for name in reversed(schema.names)}  # the first of a name
    found: dict[str, _GeoColumn] = {}
    for name in _GEOMETRY_NAMES:
        column = columns.get(name)
        encoding = column and _plain_encoding(schema.field(column).type)
        if encoding:
            found[column] = _GeoColumn(encoding, None)
    return found


# -- properties ----------------------------------------------------------------------------


def _nullsafe(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


def _jsonable(t: pa.DataType) -> Callable[[Any], Any] | None:
    """How to turn `to_pylist` values of type `t` into JSON values; None when they already are.

    Decided once per column type, so plain columns cost nothing per value.
    """
    if isinstance(t, pa.ExtensionType):
        return _jsonable(t.storage_type)
    if pa.types.is_dictionary(t):
        return _jsonable(t.value_type)
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return _nullsafe(lambda v: v.isoformat())
    if pa.types.is_duration(t):
        return _nullsafe(lambda v: v.total_seconds())
    if pa.types.is_decimal(t):
        return _nullsafe(float)
    if _binary(t):
        return _nullsafe(lambda v: base64.b64encode(v).decode("ascii"))
    if pa.types.is_map(t):
        key, item = _jsonable(t.key_type) or str, _jsonable(t.item_type)
        return _nullsafe(lambda v: {key(k): item(x) if item else x for k, x in v})
    if pa.types.is_struct(t):
        fields = {f.name: _jsonable(f.type) for f in t}
        fields = {n: f for n, f in fields.items() if f}
        if not fields:
            return None
        return _nullsafe(lambda v: {k: fields[k](x) if k in fields else x for k, x in v.items()})
    if isinstance(t, _LISTS):
        item = _jsonable(t.value_type)
        return _nullsafe(lambda v: [item(x) for x in v]) if item else None
    return None


def _values(array: pa.Array) -> list[Any]:
    convert = _jsonable(array.type)
    values = array.to_pylist()
    return [convert(v) for v in values] if convert else values


class _Records(Sequence[dict[str, Any]]):
    """The rows as read, for rejects: properties and the geometry as WKT (or the raw value
    when it could not be read), built only for the rows asked for."""

    def __init__(
        self, properties: list[dict[str, Any]], column: str, geoms: np.ndarray, raw: pa.Array
    ) -> None:
        self._properties, self._column, self._geoms, self._raw = properties, column, geoms, raw

    def __len__(self) -> int:
        return len(self._properties)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        g = self._geoms[i]
        if g is not None:
            value: Any = shapely.to_wkt(g, rounding_precision=-1)
        else:
            raw = self._raw[i].as_py()
            value = base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes) else raw
        return {**self._properties[i], self._column: value}


# -- the connector -------------------------------------------------------------------------


class GeoParquetConnector(FileConnector):
    name = "geoparquet"
    title = "GeoParquet"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        # Parquet's footer carries the schema, and it is not in the head: the magic is all there is
        return 0.9 if head.startswith(b"PAR1") else 0.0

    def _fail(self, reason: str) -> DataError:
        return DataError(f"{self.path}: {reason}")

    def _open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as e:
            raise self._fail(f"not a readable Parquet file: {e}") from e

    def _layout(self, pf: pq.ParquetFile) -> _Layout:
        schema = pf.schema_arrow
        raw = _geo_raw(pf)
        if raw is not None:
            try:
                geo = json.loads(raw)
            except ValueError as e:
                raise self._fail(f"the 'geo' metadata is not JSON: {e}") from e
            if not isinstance(geo, Mapping) or not isinstance(geo.get("columns"), Mapping):
                raise self._fail("the 'geo' metadata has no 'columns' object")
            geometries, hidden = _geo_columns(geo["columns"])
            fmt, version = "GeoParquet", str(geo.get("version", "")) or None
            primary = self.options.get("geometry") or geo.get("primary_column")
        else:
            geometries, hidden = _parquet_geometries(pf) or _named_geometries(schema), frozenset()
            fmt, version = "Parquet", None
            primary = self.options.get("geometry") or next(iter(geometries), None)
        if primary is not None:
            if primary not in schema.names:
                raise self._fail(f"the geometry column {primary!r} is not in the file")
            plain = _plain_encoding(schema.field(primary).type) or "WKB"
            geometries.setdefault(primary, _GeoColumn(plain, None))
            encoding = geometries[primary].encoding
            if encoding not in _ENCODINGS:
                raise self._fail(
                    f"{fmt} {version}: column {primary!r} has encoding {encoding!r}; "
                    f"this connector reads {', '.join(_ENCODINGS)}"
                )
            if not _conforms(schema.field(primary).type, encoding):
                raise self._fail(
                    f"column {primary!r} is declared {encoding} but is {schema.field(primary).type}"
                )
        id_column = self.options.get("id")
        if id_column is not None and id_column not in schema.names:
            raise ConfigurationError(
                f"{self.path}: no column {id_column!r} for the `id` option; "
                f"columns: {', '.join(schema.names)}"
            )
        # other geometry columns go to properties as WKT, when their encoding is readable
        readable = {
            name: col
            for name, col in geometries.items()
            if name in schema.names
            and col.encoding in _ENCODINGS
            and _conforms(schema.field(name).type, col.encoding)
        }
        return _Layout(fmt, version, primary, readable, hidden)

    def inspect(self) -> SourceInfo:
        with self._open() as pf:
            layout = self._layout(pf)
            count = pf.metadata.num_rows
            geo = json.loads(raw) if (raw := _geo_raw(pf)) is not None else None
            details = facts(pf, geo)
        primary = layout.geometries.get(layout.primary) if layout.primary else None
        return SourceInfo(
            format=layout.format,
            version=layout.version,
            crs=primary.crs if primary else None,
            layers=(layout.primary,) if layout.primary else (),
            count=count,
            details=details,
        )

    def read(self) -> Iterator[SourceBatch]:
        with self._open() as pf:
            layout = self._layout(pf)
            size = int(self.options.get("batch_size") or _BATCH_ROWS)
            try:
                for batch in pf.iter_batches(batch_size=size):
                    yield self._batch(batch, layout)
            except (pa.ArrowException, OSError) as e:
                raise self._fail(f"cannot be read: {e}") from e

    def _batch(self, batch: pa.RecordBatch, layout: _Layout) -> SourceBatch:
        n = batch.num_rows
        columns: dict[str, list[Any]] = {}
        for name, array in zip(batch.schema.names, batch.columns, strict=False):
            if name == layout.primary or name in layout.hidden:
                continue
            if name in layout.geometries:
                geoms, _ = to_shapely(array, layout.geometries[name].encoding)
                columns[name] = shapely.to_wkt(geoms, rounding_precision=-1).tolist()
            else:
                columns[name] = _values(array)
        names = list(columns)
        properties = (
            [dict(zip(names, row, strict=False)) for row in zip(*columns.values(), strict=False)]
            if columns
            else [{} for _ in range(n)]
        )
        errors: list[str | None] | None = None
        crs: str | None = None
        records: Sequence[dict[str, Any]] = properties
        geoms = np.full(n, None, dtype=object)
        if layout.primary is not None:
            raw = batch.column(layout.primary)
            column = layout.geometries[layout.primary]
            geoms, unreadable = to_shapely(raw, column.encoding)
            crs = column.crs
            records = _Records(properties, layout.primary, geoms, raw)
            if unreadable.any():
                why = f"geometry is not valid {column.encoding}"
                errors = [why if bad else None for bad in unreadable]
        ids = (
            [None if v is None else str(v) for v in batch.column(self.options["id"]).to_pylist()]
            if self.options.get("id")
            else [None] * n
        )
        return SourceBatch(
            source_ids=ids,
            geometries=geoms,
            properties=properties,
            records=records,
            crs=crs,
            axis_order="xy",
            errors=errors,
        )
