# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Newell's vectors of flat faces, the volumes they bound and their heights, in one pass (Cython).

`solids.Faces` holds a batch's faces as flat arrays; numpy measures them in a pass and a
temporary per step (the terms of each axis, their sums per face, each face's first position,
the products with it, their sums per object). Here each is one loop, adding in numpy's order
(`np.bincount` adds in row order, `Faces.volume_terms` as written there), so the sums are the
same bits; the volumes' pass also tells which shells close (`solids._closed`'s hashes to the
millimetre, mix.pxi), while the positions are read.
"""

from libc.math cimport isfinite, isinf, isnan
from libc.float cimport DBL_MAX
from libc.stdint cimport int64_t, uint64_t

import numpy as np

include "mix.pxi"


cdef inline double finite(double v) noexcept nogil:
    """`np.nan_to_num`: NaN as 0, infinities as the largest doubles."""
    if isnan(v):
        return 0.0
    if isinf(v):
        return DBL_MAX if v > 0 else -DBL_MAX
    return v


cdef void newell(
    const double[:, :] coords,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    int axis,
    double[:, ::1] out,
    int column,
) noexcept nogil:
    """Component `axis` of each face's Newell vector into `out[:, column]`."""
    cdef Py_ssize_t i, n = coords.shape[0]
    cdef int a = (axis + 1) % 3, b = (axis + 2) % 3
    for i in range(n - 1):
        if ring[i + 1] == ring[i]:
            out[polygon[ring[i]], column] += (
                (finite(coords[i, a]) - finite(coords[i + 1, a]))
                * (finite(coords[i, b]) + finite(coords[i + 1, b]))
            )


cdef inline void extend(double *top, double *bottom, Py_ssize_t o, double v) noexcept nogil:
    """Object `o`'s extents in Z grown to `v` (NaN passed over)."""
    if isnan(v):
        return
    if not v <= top[o]:  # also where top is NaN: none yet
        top[o] = v
    if not v >= bottom[o]:
        bottom[o] = v


def area_vectors(
    const double[:, :] coords,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    Py_ssize_t faces,
    tuple axes,
):
    """`Faces.area_vectors`: the components `axes` of each of `faces` faces' Newell vector."""
    vectors = np.zeros((faces, len(axes)))
    cdef double[:, ::1] out = vectors
    cdef int column, axis
    for column, axis in enumerate(axes):
        with nogil:
            newell(coords, ring, polygon, axis, out, column)
    return vectors


def volumes(
    const double[:, :] coords,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const int64_t[:] owner,
    Py_ssize_t count,
):
    """`solids.volumes_and_faces`' sums: each face's Newell vector, each of `count` objects'
    signed volume (its faces' vectors dotted with their first positions, over 6), which
    objects' faces (owned by them, ascending) share every edge an even number of times,
    positions compared to the millimetre (`solids._closed`), and each object's height
    (`solids.heights`' of the same positions, their Z read in the same pass: top minus
    bottom, NaN passed over, NaN where its top is not finite, a height of zero +0 whichever
    zero its top and bottom are, as numpy's).

    One pass over the positions for the three components, the first positions and the edges'
    hashes (each position read and made finite once): each component's terms are added in
    row order, as `newell` adds them axis by axis, so the sums are the same bits; each edge's
    hash XORed into its object's, so a closed shell's come to 0. Each is a pass over Delft's
    145,084 positions (3.5 MB, beyond a core's cache) where they were two."""
    cdef Py_ssize_t faces = owner.shape[0], i, f, n = coords.shape[0]
    cdef double x0, y0, z0, x1 = 0.0, y1 = 0.0, z1 = 0.0
    cdef uint64_t start, end = 0
    vectors, first, totals = np.zeros((faces, 3)), np.zeros((faces, 3)), np.zeros(count)
    closed, odd = np.zeros(count, np.bool_), np.zeros(count, np.uint64)
    cdef double[:, ::1] out = vectors, at = first
    cdef double[::1] total = totals
    cdef double[::1] top = np.full(count, np.nan), bottom = np.full(count, np.nan)
    cdef unsigned char[::1] has = closed.view(np.uint8)
    cdef uint64_t[::1] xor = odd
    with nogil:
        for f in range(faces):
            has[owner[f]] = 1
        if n:
            x1, y1, z1 = finite(coords[0, 0]), finite(coords[0, 1]), finite(coords[0, 2])
            end = rounded(coords, 0)
        for i in range(n):
            x0, y0, z0 = x1, y1, z1
            f = polygon[ring[i]]
            if i == 0 or f != polygon[ring[i - 1]]:  # a face's first row (a later run wins)
                at[f, 0], at[f, 1], at[f, 2] = x0, y0, z0
            extend(&top[0], &bottom[0], owner[f], coords[i, 2])  # each object's extents in Z
            if i + 1 == n:
                break
            x1 = finite(coords[i + 1, 0])
            y1, z1 = finite(coords[i + 1, 1]), finite(coords[i + 1, 2])
            start, end = end, rounded(coords, i + 1)
            if ring[i + 1] == ring[i]:  # `newell`'s terms of axes 0, 1, 2
                out[f, 0] += (y0 - y1) * (z0 + z1)
                out[f, 1] += (z0 - z1) * (x0 + x1)
                out[f, 2] += (x0 - x1) * (y0 + y1)
                if start != end:  # an edge of some length, at the millimetre
                    xor[owner[f]] ^= mix(start + end)
        for f in range(faces):
            total[owner[f]] += (
                (out[f, 0] * at[f, 0] + out[f, 2] * at[f, 2]) + out[f, 1] * at[f, 1]
            ) / 6
    closed &= odd == 0
    return vectors, totals, closed, _heights(top, bottom)


cdef object _heights(const double[::1] top, const double[::1] bottom):
    """Each object's top minus bottom (`volumes`' extents), NaN where its top is not finite."""
    cdef Py_ssize_t o, count = top.shape[0]
    out = np.full(count, np.nan)
    cdef double[::1] height = out
    with nogil:
        for o in range(count):
            if isfinite(top[o]):
                height[o] = (top[o] - bottom[o]) + 0.0
    return out
