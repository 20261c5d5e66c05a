"""WKB, the lake's geometry encoding, read and written a column at a time with numpy.

GEOS writes and GeoParquet's metadata reads WKB one geometry at a time; for the things done to
every row (writing points, the commonest city geometry, and polygons, the commonest footprint,
and listing a column's geometry types) the fixed layout of the bytes lets numpy and Arrow do it
for the whole column at once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.geo import wkb_ragged
from citypipe.geo.types import Points

__all__ = ["geometry_types", "to_wkb_2d", "to_wkb_3d", "to_wkt"]

_POLYGON = int(shapely.GeometryType.POLYGON)
_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("xy", "<f8", 2)])
"""A 2D point in little-endian WKB: 21 bytes, no padding."""


def to_wkb_2d(geometries: np.ndarray | Points) -> pa.Array:
    """2D WKB of `geometries` (None stays null)."""
    if isinstance(geometries, Points):
        return _points(geometries.xy)
    kinds = shapely.get_type_id(geometries)
    if len(kinds) and (kinds == 0).all() and not shapely.is_empty(geometries).any():
        return _points(shapely.get_coordinates(geometries))
    written = _polygons(geometries, kinds)
    if written is not None:
        return written
    return pa.array(shapely.to_wkb(geometries, output_dimension=2), pa.binary())


def to_wkb_3d(geometries: np.ndarray | pa.Array, rows: slice | np.ndarray) -> pa.Array:
    """3D WKB of `geometries[rows]` (None stays null): shapely geometries written, or WKB
    already written from their arrays (an Arrow array) selected. A slice and an index array
    select the same rows of either."""
    if isinstance(geometries, pa.Array):
        return geometries[rows] if isinstance(rows, slice) else geometries.take(rows)
    return pa.array(shapely.to_wkb(geometries[rows], output_dimension=3), pa.binary())


FEW = 2560
"""Polygons of fewer positions (a row counted as `ROW` positions) are written by GEOS: reading
their positions out of it costs some 40 us more a column than GEOS takes to write that many
(a few buildings' footprints). GEOS writes a position in some 50 ns, one ordinate at a time
through a stream, and takes some 1 us more a polygon. Columns of fewer than `ROWS` polygons
are not looked at further (one building's footprints: the look costs 10-20 us)."""
ROW, ROWS = 24, 8


def _polygons(geometries: np.ndarray, kinds: np.ndarray) -> pa.Array | None:
    """2D WKB of `geometries` (of type ids `kinds`) whose polygons are written from the
    positions GEOS hands out at once (`wkb_ragged.polygons_2d`: GEOS's bytes), the other
    geometries (a multipolygon, a collection) by GEOS; None where there are too few (`FEW`):
    Melbourne's 249 roads of 7,515 positions 0.37 -> 0.13 ms."""
    if len(kinds) < ROWS:
        return None
    polygon = kinds == _POLYGON
    if np.count_nonzero(polygon) < ROWS:
        return None
    shapes = geometries if polygon.all() else geometries[polygon]
    sizes = shapely.get_num_coordinates(shapes)  # a polygon's: its one ring's where no hole
    if sizes.sum() + ROW * len(sizes) < FEW:
        return None
    holes = shapely.get_num_interior_rings(shapes)
    if holes.any():
        holed = holes > 0
        ring_sizes = np.empty(len(shapes) + int(holes.sum()), np.int64)
        of_holed = np.repeat(holed, holes + 1)  # each ring: of a polygon with holes
        ring_sizes[~of_holed] = sizes[~holed]
        ring_sizes[of_holed] = _ring_sizes(shapes[holed], holes[holed])
        sizes = ring_sizes
    if not sizes.all():  # an empty polygon or ring: GEOS writes it otherwise
        return None
    rings = np.zeros(len(geometries) + 1, np.int64)  # a row of no polygon: no ring
    rings[1:][polygon] = holes + 1
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    coords = shapely.get_coordinates(shapes)
    written = wkb_ragged.polygons_2d(coords, (offsets, np.cumsum(rings)), polygon)
    other = ~polygon & (kinds != -1)
    if written is None or not other.any():
        return written
    by_geos = shapely.to_wkb(geometries[other], output_dimension=2)
    return pc.replace_with_mask(written, pa.array(other), pa.array(by_geos, pa.binary()))


_HOLES = 4
"""Polygons of up to this many holes have their rings' sizes read hole by hole (each call
some 2 us), not by `shapely.get_rings` (13 us for one polygon)."""


def _ring_sizes(shapes: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The positions of each ring of the polygons `shapes` (of `holes` holes each), in order:
    each one's shell, then its holes."""
    most = int(holes.max())
    if most > _HOLES:
        return shapely.get_num_coordinates(shapely.get_rings(shapes))
    sizes = np.zeros((len(shapes), most + 1), np.int64)
    sizes[:, 0] = shapely.get_num_coordinates(shapely.get_exterior_ring(shapes))
    for k in range(most):  # a polygon of fewer holes has None there, of 0 positions
        sizes[:, k + 1] = shapely.get_num_coordinates(shapely.get_interior_ring(shapes, k))
    return sizes[np.arange(most + 1) <= holes[:, None]]


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
