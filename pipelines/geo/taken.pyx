# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Some faces of a batch taken out of its flat arrays without a pass over every position
(Cython).

`solids.Faces.take` picks the faces of some objects (a batch's ground surfaces, the objects
without them): numpy makes a mask of the positions from the rings', compresses the positions
with it, the positions' rings with it, then renumbers those: two passes over every position
and two over the picked ones (Den Haag: 106,604 positions, 0.25-0.45 ms a take). A ring's
positions are consecutive rows, rings in order (`FlatFaces`), so here each picked ring's rows
are found by a search from where the ring before it ended and copied as they are: the
work is the picked positions'. The arrays are numpy's, value for value.
"""

from libc.stdint cimport int64_t

import numpy as np


cdef inline Py_ssize_t first_of(const int64_t[:] ring, Py_ssize_t at, int64_t r) noexcept nogil:
    """The first row of `ring[at:]` (ascending) not below `r`: galloping from `at` (the next
    picked ring is most often a few rings on), then a binary search."""
    cdef Py_ssize_t n = ring.shape[0], lo = at, hi = at, step = 1, mid
    while hi < n and ring[hi] < r:
        lo, hi, step = hi + 1, at + step, 2 * step
    hi = min(hi, n)
    while lo < hi:
        mid = (lo + hi) // 2
        if ring[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    return lo


def taken(
    const double[:, :] coords,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const unsigned char[:] face,
):
    """Of faces held flat (each position's `ring`, ascending; each ring's `polygon`), those
    `face` picks: their positions, each one's ring and each ring's face, renumbered in order."""
    cdef Py_ssize_t n = coords.shape[0], width = coords.shape[1], rings = polygon.shape[0]
    cdef Py_ssize_t i, c, r, kept = 0, faces_kept = 0, k = 0, at = 0, end
    face_number = np.empty(face.shape[0], np.int64)
    cdef int64_t[::1] face_at = face_number
    starts, ends = np.empty(rings, np.intp), np.empty(rings, np.intp)
    cdef Py_ssize_t[::1] start = starts, stop = ends
    out_polygon = np.empty(rings, np.int64)
    cdef int64_t[::1] of_polygon = out_polygon
    with nogil:
        for i in range(face.shape[0]):
            face_at[i] = faces_kept if face[i] else -1
            faces_kept += face[i] != 0
        for r in range(rings):
            if face_at[polygon[r]] < 0:
                continue
            at = first_of(ring, at, r)
            end = at
            while end < n and ring[end] == r:
                end += 1
            start[kept], stop[kept], of_polygon[kept] = at, end, face_at[polygon[r]]
            k += end - at
            kept += 1
            at = end
    out_coords, out_ring = np.empty((k, width)), np.empty(k, np.int64)
    cdef double[:, ::1] xyz = out_coords
    cdef int64_t[::1] of_ring = out_ring
    with nogil:
        k = 0
        for r in range(kept):
            for i in range(start[r], stop[r]):
                for c in range(width):
                    xyz[k, c] = coords[i, c]
                of_ring[k] = r
                k += 1
    return out_coords, out_ring, out_polygon[:kept].copy()
