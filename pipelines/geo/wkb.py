"""WKB, the lake's geometry encoding, read and written a column at a time with numpy.

GEOS writes and GeoParquet's metadata reads WKB one geometry at a time; for the two things done
to every row (writing points, the commonest city geometry, and listing a column's geometry types)
the fixed layout of the bytes lets numpy and Arrow do it for the whole column at once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.geo.types import Points

__all__ = ["geometry_types", "to_wkb_2d", "to_wkb_3d", "to_wkt"]

_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("xy", "<f8", 2)])
"""A 2D point in little-endian WKB: 21 bytes, no padding."""


def to_wkb_2d(geometries: np.ndarray | Points) -> pa.Array:
    """2D WKB of `geometries` (None stays null)."""
    if isinstance(geometries, Points):
        return _points(geometries.xy)
    n = len(geometries)
    if (
        n
        and (shapely.get_type_id(geometries) == 0).all()
        and not shapely.is_empty(geometries).any()
    ):
        return _points(shapely.get_coordinates(geometries))
    return pa.array(shapely.to_wkb(geometries, output_dimension=2), pa.binary())


def to_wkb_3d(geometries: np.ndarray | pa.Array, rows: slice | np.ndarray) -> pa.Array:
    """3D WKB of `geometries[rows]` (None stays null): shapely geometries written, or WKB
    already written from their arrays (an Arrow array) selected. A slice and an index array
    select the same rows of either."""
    if isinstance(geometries, pa.Array):
        return geometries[rows] if isinstance(rows, slice) else geometries.take(rows)
    return pa.array(shapely.to_wkb(geometries[rows], output_dimension=3), pa.binary())


def _points(xy: np.ndarray) -> pa.Array:
    """WKB points from an (n, 2) array; a row with NaN is null."""
    present = ~np.isnan(xy).any(axis=1)
    n, nulls = len(xy), len(xy) - int(present.sum())
    offsets = np.arange(0, (n + 1) * _POINT.itemsize, _POINT.itemsize, dtype=np.int32)
    validity = None
    if nulls:  # a null takes no bytes
        offsets[1:] = np.cumsum(present * np.int32(_POINT.itemsize))
        validity = pa.py_buffer(np.packbits(present, bitorder="little"))
        xy = xy[present]
    packed = np.empty(len(xy), _POINT)
    packed["order"], packed["type"], packed["xy"] = 1, 1, xy
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(packed)]
    return pa.Array.from_buffers(pa.binary(), n, buffers, null_count=nulls)


_TYPE_NAMES = {  # WKB type codes (ISO adds 1000 for Z, EWKB a flag bit)
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def geometry_types(wkb: pa.Array) -> set[str]:
    """GeoParquet geometry type names of a WKB column, read from the distinct header bytes."""
    names: set[str] = set()
    if wkb.null_count == len(wkb):
        return names
    for header in pc.unique(pc.binary_slice(wkb, 0, 5)).to_pylist():
        if header is None:
            continue
        c = int.from_bytes(header[1:], "little" if header[0] == 1 else "big")
        iso = (c & 0x0FFFFFFF) % 1000
        z = bool(c & 0x80000000) or (c & 0x0FFFFFFF) // 1000 in (1, 3)
        names.add(_TYPE_NAMES[iso] + (" Z" if z else ""))
    return names


def to_wkt(values: pa.Array) -> np.ndarray:
    """WKT of each value of a binary column, at full precision with Z kept; None where a value is
    null or not WKB (a BLOB column may hold WKB or any other bytes)."""
    geometries = shapely.from_wkb(values.to_numpy(zero_copy_only=False), on_invalid="ignore")
    return shapely.to_wkt(geometries, rounding_precision=-1)
