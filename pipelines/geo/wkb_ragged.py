"""Polygons and multipolygons written as WKB straight from the flat arrays they are built of.

The faces of a batch's solids and its semantic surfaces are held as ragged arrays (positions,
ring / polygon / geometry offsets) before shapely builds them; GEOS then writes their WKB one
geometry and one ordinate at a time (7 ms for Den Haag's 106,000 solid positions). WKB's layout
is fixed: each ring is a 4-byte position count and its positions as little-endian doubles,
which the flat arrays already hold, each polygon and multipolygon a 9-byte header before its
first ring. So the headers are made for all rings at once with numpy and joined to the
positions by Arrow in one call. The bytes are GEOS's (`shapely.to_wkb(output_dimension=3)`:
the extended flavour's Z flag, little-endian). A batch's solids, taken to CRS84, are written
in one compiled pass where it is built (`solids_z`, wkb_faces.pyx), each corner read where
its distinct position was moved. 2D polygons (footprints) are written the same way from the
positions GEOS hands out (`polygons_2d`, `wkb.to_wkb_2d`).
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Solids", "face_rings", "polygons_2d", "polygons_z", "solids_z"]

# the solids' WKB written in one pass (pipelines/geo/wkb_faces.pyx), optional: where it did not
# build, or on a big-endian machine (WKB here is little-endian), numpy writes the same bytes
try:
    if sys.byteorder != "little":
        raise ImportError("WKB is written little-endian")
    from citypipe.geo import wkb_faces as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]

_POLYGON, _MULTIPOLYGON, _Z = 3, 6, 0x80000000
"""WKB's type codes, and the extended flavour's flag of a geometry with Z (GEOS's)."""
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
    picked = np.flatnonzero(select)
    if len(picked) * FEW_FACES < len(select):
        return _few_face_rings(coords, ring, polygon, picked)
    return _every_face_rings(coords, ring, polygon, select)


def _every_face_rings(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, select: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`face_rings` by a pass over every position and ring."""
    sizes = np.bincount(ring, minlength=len(polygon))
    rings = select[polygon] & (sizes > 0)
    per_face = np.bincount(polygon[rings], minlength=len(select))[select]
    # the rows picked by compress: a 2D array's boolean index takes 3-4x as long
    return np.compress(rings[ring], coords, axis=0), sizes[rings], per_face


FEW_FACES = 8
"""`face_rings` finds the rows of the faces it picks by bisection where it picks fewer than
one face in this many (Delft's 2 objects of 36,271 triangles merged by GEOS: a pass over the
145,084 positions and their rings to pick some 100 rows)."""


def _spans(start: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The numbers `start[i]` to `start[i] + counts[i] - 1` of each span, one after another."""
    return np.repeat(start - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())


def _few_face_rings(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, picked: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`face_rings` of the faces `picked` (their numbers, ascending): their rings and rows
    found by bisection, rings and faces being numbered in order (`FlatFaces`)."""
    first, last = np.searchsorted(polygon, picked), np.searchsorted(polygon, picked, "right")
    counts = last - first
    rings = _spans(first, counts)
    start, end = np.searchsorted(ring, rings), np.searchsorted(ring, rings, "right")
    sizes = end - start
    kept = sizes > 0
    per_face = np.bincount(np.repeat(np.arange(len(picked)), counts)[kept], minlength=len(picked))
    sizes, start = sizes[kept], start[kept]
    rows = _spans(start, sizes)
    return coords.take(rows, axis=0), sizes, per_face


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
    return _polygons(coords, offsets, valid)


def polygons_2d(
    coords: np.ndarray, offsets: tuple[np.ndarray, np.ndarray], valid: np.ndarray
) -> pa.Array | None:
    """`polygons_z` of polygons of positions `coords` (n, 2) in 2D, as
    `to_wkb(output_dimension=2)` writes them; null where not `valid`, with no rings: in one
    compiled pass where it is built (wkb_faces.pyx), else with numpy."""
    if compiled is None:
        return _polygons(coords, offsets, valid)
    present = np.asarray(valid, bool)
    rings, polygons = (_int64(o) for o in offsets)
    xy = np.ascontiguousarray(coords, np.float64)
    written = compiled.polygons_2d(xy, rings, polygons, present.view(np.uint8))
    return None if written is None else _nullable(present, written[1], written[0])


def _polygons(
    coords: np.ndarray, offsets: tuple[np.ndarray, ...], valid: np.ndarray | None
) -> pa.Array | None:
    """`polygons_z`, or `polygons_2d` where `coords` hold x and y alone."""
    flag = _Z if coords.shape[1] == 3 else 0
    width = 8 * coords.shape[1]  # bytes a position
    ring_offsets, polygon_offsets = (np.asarray(o, np.int64) for o in offsets[:2])
    sizes = np.diff(ring_offsets)
    rings = np.diff(polygon_offsets)
    multi = len(offsets) > 2
    parts = np.diff(np.asarray(offsets[2], np.int64)) if multi else rings
    present = np.ones(len(parts), dtype=bool) if valid is None else np.asarray(valid, bool)
    polygon_rings = rings if multi else rings[present]  # a null polygon has none
    if (polygon_rings == 0).any() or (parts[present] == 0).any() or (parts[~present] != 0).any():
        return None
    head, start, first_ring = _layout(offsets)
    heads = np.empty(int(head.sum()), np.uint8)
    if multi:
        at = start[first_ring[_first(parts)]]
        heads[at] = 1
        _put_u32(heads, at + 1, _MULTIPOLYGON | flag)
        _put_u32(heads, at + 5, parts[parts > 0])
    at = start[first_ring] + head[first_ring] - 4 - _HEAD
    heads[at] = 1
    _put_u32(heads, at + 1, _POLYGON | flag)
    _put_u32(heads, at + 5, rings[rings > 0])
    _put_u32(heads, start + head - 4, sizes)
    # each geometry's bytes end where its last ring's do: offsets read from the rings' ends
    ends = np.concatenate([[0], np.cumsum(head + sizes * width)])[polygon_offsets]
    if multi:
        ends = ends[np.asarray(offsets[2], np.int64)]
    if ends[-1] > _INT32_MAX:
        return None
    joined = pc.binary_join_element_wise(
        _binary(heads, head), _binary(np.ascontiguousarray(coords, "<f8"), sizes * width), b""
    )
    return _nullable(present, ends.astype(np.int32), joined.buffers()[2])


def _nullable(present: np.ndarray, ends: np.ndarray, data: np.ndarray | pa.Buffer) -> pa.Array:
    """A binary array of `data` cut at `ends` (int32, a leading 0), null where not `present`."""
    nulls = int((~present).sum())
    return pa.Array.from_buffers(
        pa.binary(),
        len(present),
        [
            pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None,
            pa.py_buffer(ends),
            data if isinstance(data, pa.Buffer) else pa.py_buffer(data),
        ],
        null_count=nulls,
    )


class Solids(NamedTuple):
    """Multipolygons' WKB written from their faces' flat arrays, and where each face's own
    WKB lies in its buffer (GEOS writes each part so, header and all)."""

    wkb: pa.Array
    starts: np.ndarray
    ends: np.ndarray

    def faces(self, parts: np.ndarray) -> pa.Array:
        """The WKB of the faces `parts` (numbered over all geometries, in any order), cut out
        of the solids' buffer, not written again."""
        if not len(parts):
            return pa.array([], pa.binary())
        data = np.frombuffer(self.wkb.buffers()[2], np.uint8)
        parts = np.asarray(parts, np.int64)
        if compiled is not None:
            cut, ends = compiled.cut(data, self.starts, self.ends, parts)
            return pa.Array.from_buffers(
                pa.binary(), len(parts), [None, pa.py_buffer(ends), pa.py_buffer(cut)]
            )
        # the buffer cut into each face and what comes before it (its multipolygon's header)
        before = self.starts - np.concatenate([[0], self.ends[:-1]])
        pieces = _binary(data, np.stack([before, self.ends - self.starts], axis=1).ravel())
        return pieces.take(pa.array(2 * parts + 1))


def solids_z(
    xy: np.ndarray,
    codes: np.ndarray,
    z: np.ndarray,
    flat: tuple[np.ndarray, np.ndarray, np.ndarray],
    present: np.ndarray,
) -> Solids | None:
    """`polygons_z` of the multipolygons of faces held `flat` (each corner's ring, each ring's
    face, each face's owner of `len(present)` geometries, all ascending), each corner at
    `xy[codes]` with height `z`: in one compiled pass where it is built (wkb_faces.pyx), else
    the positions gathered and written with numpy. None where `polygons_z` is."""
    present = np.asarray(present, bool)
    ring, polygon, owner = flat
    if compiled is not None:
        written = compiled.multipolygons_z(
            xy, codes, z, _int64(ring), _int64(polygon), _int64(owner), present.view(np.uint8)
        )
        if written is None:
            return None
        data, ends, starts, face_ends = written
        return Solids(_nullable(present, ends, data), starts, face_ends)
    coords = np.column_stack([xy[codes], z])
    everything = np.ones(len(owner), dtype=bool)
    ragged, sizes, per_face = face_rings(coords, ring, polygon, everything)
    per_geometry = np.bincount(owner, minlength=len(present))
    nesting = tuple(np.concatenate([[0], np.cumsum(c)]) for c in (sizes, per_face, per_geometry))
    wkb = polygons_z(ragged, nesting, present)
    if wkb is None:
        return None
    head, start, first_ring = _layout(nesting)
    ring_offsets, polygon_offsets = nesting[:2]
    # a ring's bytes follow the headers and positions of the rings before it
    starts = start[first_ring] + head[first_ring] - 4 - _HEAD + 24 * ring_offsets[first_ring]
    last = polygon_offsets[1:] - 1
    return Solids(wkb, starts, start[last] + head[last] + 24 * ring_offsets[last + 1])


def _layout(offsets: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The WKB layout of polygons (`offsets` = rings', polygons') or multipolygons (rings',
    polygons', geometries') without empty polygons: the header bytes before each ring's
    positions (its count, and its polygon's and multipolygon's headers before a first ring),
    where those start among all the headers, and each polygon's first ring."""
    rings = np.diff(np.asarray(offsets[1], np.int64))
    first_ring = _first(rings)
    head = np.full(len(offsets[0]) - 1, 4, np.int64)  # each ring's count, before its positions
    head[first_ring] += _HEAD
    if len(offsets) > 2:  # the multipolygon's header before the first ring of its first polygon
        head[first_ring[_first(np.diff(np.asarray(offsets[2], np.int64)))]] += _HEAD
    return head, np.cumsum(head) - head, first_ring


def _int64(rows: np.ndarray) -> np.ndarray:
    """`rows` as int64, the compiled kernel's index type (not copied where they are)."""
    return np.asarray(rows, dtype=np.int64)


def _binary(data: np.ndarray, sizes: np.ndarray) -> pa.Array:
    """A binary array of consecutive byte runs of `sizes` of `data`, without a copy."""
    ends = np.zeros(len(sizes) + 1, np.int32)
    np.cumsum(sizes, out=ends[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(sizes), [None, pa.py_buffer(ends), pa.py_buffer(data)]
    )
