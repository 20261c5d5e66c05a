# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The WKB of a batch's solids written from their flat faces in one pass (Cython).

`wkb_ragged` writes the same bytes with numpy: the faces' rings gathered without the empty
ones, each ring's header put in place, the positions joined to them by Arrow, the moved
positions first gathered back to every corner and stacked with their heights. Here each
corner's position is read where it was moved (`xy[codes[i]]`, each distinct position
transformed once: `crs.ToCrs84.distinct`) and its height where it was read (`z[i]`), and
written straight after its ring's header: one loop, no temporaries. Each face's bytes are
noted, so the semantic surfaces that are faces are cut out of them (`cut`), as
`wkb_ragged.parts_z` cuts them. 2D polygons (footprints) are written so too (`polygons_2d`),
each ring's positions copied as GEOS handed them out.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy

import numpy as np

cdef uint32_t POLYGON = 3, POLYGON_Z = 0x80000003, MULTIPOLYGON_Z = 0x80000006
cdef int64_t HEAD = 9, INT32_MAX = 2**31 - 1


cdef inline int64_t head(uint8_t* out, int64_t at, uint32_t kind, uint32_t count) noexcept nogil:
    out[at] = 1
    memcpy(out + at + 1, &kind, 4)
    memcpy(out + at + 5, &count, 4)
    return at + HEAD


def multipolygons_z(
    const double[:, :] xy,
    const int64_t[:] codes,
    const double[:] z,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const int64_t[:] owner,
    const uint8_t[:] present,
):
    """`wkb_ragged.polygons_z` of the multipolygons of faces held flat (each corner's ring,
    each ring's face, each face's geometry of `len(present)`, all ascending), each corner at
    `xy[codes[i]]` with height `z[i]`: the bytes, each geometry's end offset (int32, a
    leading 0), and where each face's bytes start and end. None where `polygons_z` is None
    (a face without a ring of positions, a present geometry without faces or one not present
    with some, more than 2 GiB)."""
    cdef Py_ssize_t n = codes.shape[0], rings = polygon.shape[0], faces = owner.shape[0]
    cdef Py_ssize_t count = present.shape[0], i, r, f, g
    sizes = np.zeros(rings, np.int64)
    per_face = np.zeros(faces, np.int64)
    per_geometry = np.zeros(count, np.int64)
    cdef int64_t[::1] size = sizes, nf = per_face, ng = per_geometry
    cdef int64_t total = 0
    cdef bint writable = True
    with nogil:
        for i in range(n):
            size[ring[i]] += 1
        for r in range(rings):
            if size[r]:
                nf[polygon[r]] += 1
                total += 4 + 24 * size[r]
        for f in range(faces):
            writable = writable and nf[f] > 0
            ng[owner[f]] += 1
        total += HEAD * faces
        for g in range(count):
            writable = writable and (ng[g] == 0) != (present[g] != 0)
            total += HEAD if present[g] else 0
    if not writable or total > INT32_MAX:
        return None
    data = np.empty(total, np.uint8)
    offsets = np.zeros(count + 1, np.int32)
    face_starts, face_ends = np.empty(faces, np.int64), np.empty(faces, np.int64)
    cdef uint8_t[::1] buffer = data
    if total:
        _write(&buffer[0], xy, codes, z, size, nf, ng, polygon, owner, present,
               offsets, face_starts, face_ends)
    return data, offsets, face_starts, face_ends


cdef void _write(
    uint8_t* out,
    const double[:, :] xy,
    const int64_t[:] codes,
    const double[:] z,
    const int64_t[::1] size,
    const int64_t[::1] per_face,
    const int64_t[::1] per_geometry,
    const int64_t[:] polygon,
    const int64_t[:] owner,
    const uint8_t[:] present,
    int32_t[::1] offsets,
    int64_t[::1] face_starts,
    int64_t[::1] face_ends,
) noexcept nogil:
    """The bytes `multipolygons_z` counted, written in order."""
    cdef Py_ssize_t rings = polygon.shape[0], faces = owner.shape[0], count = present.shape[0]
    cdef Py_ssize_t g, f = 0, r = 0, i = 0, end
    cdef int64_t at = 0
    cdef uint32_t s
    cdef double v[3]
    for g in range(count):
        if present[g]:
            at = head(out, at, MULTIPOLYGON_Z, <uint32_t>per_geometry[g])
            while f < faces and owner[f] == g:
                face_starts[f] = at
                at = head(out, at, POLYGON_Z, <uint32_t>per_face[f])
                while r < rings and polygon[r] == f:
                    if size[r]:
                        s = <uint32_t>size[r]
                        memcpy(out + at, &s, 4)
                        at += 4
                        end = i + size[r]
                        while i < end:
                            v[0], v[1], v[2] = xy[codes[i], 0], xy[codes[i], 1], z[i]
                            memcpy(out + at, v, 24)
                            at += 24
                            i += 1
                    r += 1
                face_ends[f] = at
                f += 1
        offsets[g + 1] = <int32_t>at


def cut(const uint8_t[::1] data, const int64_t[:] starts, const int64_t[:] ends, const int64_t[:] parts):
    """The bytes `data[starts[p]:ends[p]]` of each of `parts`, one after another, and the
    offsets of each (int32, a leading 0): faces' WKB cut out of their solids'."""
    cdef Py_ssize_t n = parts.shape[0], k
    cdef int64_t total = 0, p
    for k in range(n):
        total += ends[parts[k]] - starts[parts[k]]
    out = np.empty(total, np.uint8)
    offsets = np.zeros(n + 1, np.int32)
    cdef int32_t[::1] o = offsets
    cdef uint8_t[::1] b = out
    cdef int64_t at = 0
    if not total:
        return out, offsets
    with nogil:
        for k in range(n):
            p = parts[k]
            memcpy(&b[at], &data[starts[p]], ends[p] - starts[p])
            at += ends[p] - starts[p]
            o[k + 1] = <int32_t>at
    return out, offsets


def polygons_2d(
    const double[:, ::1] xy, const int64_t[::1] rings, const int64_t[::1] polygons,
    const uint8_t[::1] present,
):
    """`wkb_ragged.polygons_2d` in one pass: the 2D polygons of rings `polygons[g]` to
    `polygons[g + 1]` (none for a row not `present`), ring r of positions `xy[rings[r]:rings[r
    + 1]]` (x and y, copied as they lie): the bytes and each row's end offset (int32, a leading
    0). None where the numpy code answers None (a present row of no ring, one not present with
    rings, more than 2 GiB)."""
    cdef Py_ssize_t count = present.shape[0], g, r
    cdef int64_t total = 0
    cdef uint32_t s
    if xy.shape[1] != 2 or polygons.shape[0] != count + 1:
        raise ValueError("positions of x and y and an offset a row wanted")
    for g in range(count):
        if (polygons[g + 1] > polygons[g]) != (present[g] != 0):
            return None
        if present[g]:
            total += HEAD + 4 * (polygons[g + 1] - polygons[g])
    total += 16 * (rings[polygons[count]] - rings[polygons[0]])
    if total > INT32_MAX:
        return None
    data = np.empty(total, np.uint8)
    offsets = np.zeros(count + 1, np.int32)
    cdef uint8_t[::1] buffer = data
    cdef int32_t[::1] ends = offsets
    cdef uint8_t* out = &buffer[0] if total else NULL
    cdef const double* p = &xy[0, 0] if xy.shape[0] else NULL
    cdef int64_t at = 0
    with nogil:
        for g in range(count):
            if present[g]:
                at = head(out, at, POLYGON, <uint32_t>(polygons[g + 1] - polygons[g]))
                for r in range(polygons[g], polygons[g + 1]):
                    s = <uint32_t>(rings[r + 1] - rings[r])
                    memcpy(out + at, &s, 4)
                    memcpy(out + at + 4, p + 2 * rings[r], 16 * s)
                    at += 4 + 16 * s
            ends[g + 1] = <int32_t>at
    return data, offsets
