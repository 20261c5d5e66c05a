"""Parquet geometry columns to shapely: WKB, WKT and the GeoArrow native encodings.

GeoArrow's nested lists of x/y[/z] structs or interleaved fixed-size lists are handed to
shapely's ragged-array constructor, a batch at a time, with no Python per coordinate; only a
batch GEOS refuses (a linestring of one point) is built row by row, so that only that row fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from citypipe.connectors.geojson_shapes import NESTING
from citypipe.connectors.ragged import from_ragged

__all__ = ["ENCODINGS", "binary", "conforms", "plain_encoding", "to_shapely"]

_GEOARROW: dict[str, tuple[GeometryType, int]] = {
    t.name.lower(): (t, n) for t, n in NESTING.items()
}
"""GeoArrow encoding -> shapely type, levels of list nesting above the coordinates."""
ENCODINGS = ("WKB", "WKT", *_GEOARROW)
"""WKT is not GeoParquet's, but GDAL writes it (GEOMETRY_ENCODING=WKT) and plain Parquet holds
it."""


def binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def plain_encoding(t: pa.DataType) -> str | None:
    """The encoding a column without metadata holds by its type: WKB if binary, WKT if text."""
    return "WKB" if binary(t) else "WKT" if _text(t) else None


def conforms(t: pa.DataType, encoding: str) -> bool:
    """Whether an Arrow type can hold `encoding`; checked on the schema so a mislabelled
    column is reported once, before reading, instead of failing somewhere in a batch."""
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if encoding in ("WKB", "WKT"):
        return plain_encoding(t) == encoding
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
    return from_ragged(kind, coords, tuple(reversed(offsets)) or None)


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
