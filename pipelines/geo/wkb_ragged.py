"""3D polygons and multipolygons written as WKB straight from the flat arrays they are built of.

The faces of a batch's solids and its semantic surfaces are held as ragged arrays (positions,
ring / polygon / geometry offsets) before shapely builds them; GEOS then writes their WKB one
geometry and one ordinate at a time (7 ms for Den Haag's 106,000 solid positions). WKB's layout
is fixed: each ring is a 4-byte position count and its positions as little-endian doubles,
which the flat arrays already hold, each polygon and multipolygon a 9-byte header before its
first ring. So the headers are made for all rings at once with numpy and joined to the
positions by Arrow in one call. The bytes are GEOS's (`shapely.to_wkb(output_dimension=3)`:
the extended flavour's Z flag, little-endian).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["face_rings", "parts_z", "polygons_z"]

_POLYGON_Z, _MULTIPOLYGON_Z = 0x80000003, 0x80000006
_HEAD = 9
"""A geometry's header: byte order (1), type (4), count of its parts or rings (4)."""
_INT32_MAX = 2**31 - 1


def _put_u32(out: np.ndarray, at: np.ndarray, values: np.ndarray | int) -> None:
    """Little-endian uint32 `values` written at byte offsets `at` of `out`."""
    b = np.broadcast_to(np.asarray(values, "<u4"), at.shape).astype("<u4").view(np.uint8)
    b = b.reshape(-1, 4)
    for k in range(4):
        out[at + k] = b[:, k]


def _first(counts: np.ndarray) -> np.ndarray:
    """The first element of each group of `counts` elements (the non-empty groups)."""
    return (np.cumsum(counts) - counts)[counts > 0]


def face_rings(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, select: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of faces held flat (`coords`, each position's `ring`, each ring's `polygon`: a solid's
    faces as `connectors.base.FlatFaces` hold them), the faces `select` picks as the ragged
    arrays they are built of: their rings' positions, each ring's size and each face's number
    of rings (an empty ring left out, as GEOS holds none)."""
    sizes = np.bincount(ring, minlength=len(polygon))
    rings = select[polygon] & (sizes > 0)
    per_face = np.bincount(polygon[rings], minlength=len(select))[select]
    return coords[rings[ring]], sizes[rings], per_face


def polygons_z(
    coords: np.ndarray,
    offsets: tuple[np.ndarray, ...],
    valid: np.ndarray | None = None,
) -> pa.Array | None:
    """The WKB of the polygons (`offsets` = rings', polygons'), or of the multipolygons
    (rings', polygons', geometries'), with Z, of positions `coords` (n, 3), as shapely's
    `from_ragged_array` builds them and `to_wkb(output_dimension=3)` writes them. `valid`: the
    geometries that are there (the others null, with no parts). None where GEOS writes some
    geometry otherwise (an empty polygon or multipolygon, more than 2 GiB): the caller asks GEOS.
    """
    ring_offsets, polygon_offsets = (np.asarray(o, np.int64) for o in offsets[:2])
    sizes = np.diff(ring_offsets)
    rings = np.diff(polygon_offsets)
    multi = len(offsets) > 2
    parts = np.diff(np.asarray(offsets[2], np.int64)) if multi else rings
    present = np.ones(len(parts), dtype=bool) if valid is None else np.asarray(valid, bool)
    if (rings == 0).any() or (parts[present] == 0).any() or (parts[~present] != 0).any():
        return None
    first_ring = _first(rings)
    head = np.full(len(sizes), 4, np.int64)  # each ring's count, before its positions
    head[first_ring] += _HEAD
    if multi:  # the multipolygon's header before the first ring of its first polygon
        head[first_ring[_first(parts)]] += _HEAD
    start = np.cumsum(head) - head
    heads = np.empty(int(head.sum()), np.uint8)
    if multi:
        at = start[first_ring[_first(parts)]]
        heads[at] = 1
        _put_u32(heads, at + 1, _MULTIPOLYGON_Z)
        _put_u32(heads, at + 5, parts[parts > 0])
    at = start[first_ring] + head[first_ring] - 4 - _HEAD
    heads[at] = 1
    _put_u32(heads, at + 1, _POLYGON_Z)
    _put_u32(heads, at + 5, rings)
    _put_u32(heads, start + head - 4, sizes)
    # each geometry's bytes end where its last ring's do: offsets read from the rings' ends
    ends = np.concatenate([[0], np.cumsum(head + sizes * 24)])[polygon_offsets]
    if multi:
        ends = ends[np.asarray(offsets[2], np.int64)]
    if ends[-1] > _INT32_MAX:
        return None
    joined = pc.binary_join_element_wise(
        _binary(heads, head), _binary(np.ascontiguousarray(coords, "<f8"), sizes * 24), b""
    )
    nulls = int((~present).sum())
    return pa.Array.from_buffers(
        pa.binary(),
        len(parts),
        [
            pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None,
            pa.py_buffer(ends.astype(np.int32)),
            joined.buffers()[2],
        ],
        null_count=nulls,
    )


def parts_z(multi: pa.Array, offsets: tuple[np.ndarray, ...], parts: np.ndarray) -> pa.Array:
    """The WKB of the polygons `parts` (numbered over all geometries, in any order) of the
    multipolygons `multi` that `polygons_z` wrote from `offsets` (rings', polygons',
    geometries'). A polygon's bytes inside its multipolygon's are its own WKB, header and all
    (GEOS writes each part so), so they are cut out of `multi`'s buffer, not written again."""
    if not len(parts):
        return pa.array([], pa.binary())
    ring_offsets, polygon_offsets, geometry_offsets = (np.asarray(o, np.int64) for o in offsets)
    ring_bytes = np.concatenate([[0], np.cumsum(4 + 24 * np.diff(ring_offsets))])
    own = _HEAD + np.diff(ring_bytes[polygon_offsets])  # each polygon's WKB
    per_geometry = np.diff(geometry_offsets)
    geometry = np.repeat(np.arange(len(per_geometry)), per_geometry)
    headers = np.cumsum(per_geometry > 0)[geometry]  # of the geometries up to its own
    start = np.cumsum(own) - own + _HEAD * headers  # the polygons before it and those headers
    # the buffer cut into each geometry's header and each polygon, in order
    piece = np.arange(len(own)) + headers
    cuts = np.empty(len(own) + int(headers[-1]) + 1, np.int64)
    cuts[piece] = start
    first = _first(per_geometry)
    cuts[piece[first] - 1] = start[first] - _HEAD
    cuts[-1] = start[-1] + own[-1]
    pieces = pa.Array.from_buffers(
        pa.binary(), len(cuts) - 1, [None, pa.py_buffer(cuts.astype(np.int32)), multi.buffers()[2]]
    )
    return pieces.take(pa.array(piece[parts]))


def _binary(data: np.ndarray, sizes: np.ndarray) -> pa.Array:
    """A binary array of consecutive byte runs of `sizes` of `data`, without a copy."""
    ends = np.zeros(len(sizes) + 1, np.int32)
    np.cumsum(sizes, out=ends[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(sizes), [None, pa.py_buffer(ends), pa.py_buffer(data)]
    )
