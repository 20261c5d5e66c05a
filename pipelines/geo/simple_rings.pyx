# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Polygons of one short ring vouched valid without GEOS (Cython), for `validity.is_valid`.

GEOS checks a polygon's validity by noding all its segments (some 0.9 us for a footprint of
six positions). A polygon without holes is valid where its ring is simple: closed, of three
positions or more, no two segments meeting but neighbours at their shared position (turning
there, or going straight on). Most
footprints are such rings of a few positions, whose segments are told apart by orientations
computed in floating point; where such a sign is sure (Shewchuk's error bound, widened) it is
the exact sign GEOS computes. Segments of a long ring are compared in order of their least x, each
with those that reach as far (a sweep: a traced outline of Delft's has up to 645). A ring any of whose
signs is not sure is not vouched for: GEOS is asked, so the answer is always GEOS's.
"""

from libc.math cimport fabs, isfinite
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

import numpy as np

cdef double ERR = 1e-15
"""A determinant's sign is sure beyond this fraction of its terms' magnitudes (Shewchuk's
bound for orient2d is 3.3e-16)."""
cdef double TINY = 1e-280
"""Nor is it below this, where the terms may have lost bits to underflow."""
cdef Py_ssize_t LONGEST = 1024
"""Rings of more segments are left to GEOS: segments that all reach over one another (a
comb) would each be compared with each, and GEOS's noding is the faster from about there on
(Barcelona's barris: 4 rings of 1,025-4,370 positions 0.22 ms here, 0.11 by GEOS; 22 of
257-1,024 0.58 against 0.55)."""

cdef Py_ssize_t FEW = 16
"""Rings of as many segments or fewer compare each pair, sooner than sort them (a footprint's
six)."""


cdef struct Segment:
    double left, right  # its least and greatest x
    double low, high  # its least and greatest y
    Py_ssize_t start  # the row of its first position


ctypedef Segment Item


cdef inline bint before(const Segment *p, const Segment *q) noexcept nogil:
    """Whether `p` sorts before `q`: by least x (the order of comparing does not change which
    rings are vouched for: every pair that reaches over one another is compared)."""
    return p.left < q.left


include "sort.pxi"


cdef inline int side(
    double ax, double ay, double bx, double by, double cx, double cy
) noexcept nogil:
    """1 or -1, the side of the line a -> b that c lies on, where the floating-point
    determinant is sure of it; 0 where it is not (c on the line, or too near to tell)."""
    cdef double left = (ax - cx) * (by - cy), right = (ay - cy) * (bx - cx)
    cdef double det = left - right, bound = ERR * (fabs(left) + fabs(right))
    if det > bound and det > TINY:
        return 1
    if -det > bound and -det > TINY:
        return -1
    return 0


cdef inline bint ahead(
    double ax, double ay, double bx, double by, double cx, double cy
) noexcept nogil:
    """Whether a -> b -> c surely goes on forward at b (the dot product of the two steps is
    surely positive, bounded as `side`): b -> c does not turn back along a -> b, where the
    three lie on a line (a road's straight edge, written in several segments)."""
    cdef double along = (bx - ax) * (cx - bx), across = (by - ay) * (cy - by)
    cdef double dot = along + across
    return dot > ERR * (fabs(along) + fabs(across)) and dot > TINY


cdef inline bint apart(const double[:, ::1] p, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Whether the segments p[i] -> p[i + 1] and p[j] -> p[j + 1] surely do not meet: their
    boxes are apart, or one lies wholly on one side of the other's line."""
    cdef double ax = p[i, 0], ay = p[i, 1], bx = p[i + 1, 0], by = p[i + 1, 1]
    cdef double cx = p[j, 0], cy = p[j, 1], dx = p[j + 1, 0], dy = p[j + 1, 1]
    cdef int s
    if (
        max(ax, bx) < min(cx, dx) or max(cx, dx) < min(ax, bx)
        or max(ay, by) < min(cy, dy) or max(cy, dy) < min(ay, by)
    ):
        return True
    s = side(ax, ay, bx, by, cx, cy)
    if s != 0 and s == side(ax, ay, bx, by, dx, dy):
        return True
    s = side(cx, cy, dx, dy, ax, ay)
    return s != 0 and s == side(cx, cy, dx, dy, bx, by)


cdef bint simple(
    const double[:, ::1] p, Py_ssize_t start, Py_ssize_t end, Segment* segments
) noexcept nogil:
    """Whether the ring p[start:end] (its last position its first again) is surely simple;
    `segments` has room for its segments."""
    cdef Py_ssize_t m = end - start - 1, i, j, k, before
    if m < 3 or m > LONGEST:
        return False
    if p[start, 0] != p[end - 1, 0] or p[start, 1] != p[end - 1, 1]:
        return False
    for i in range(start, end):
        if not (isfinite(p[i, 0]) and isfinite(p[i, 1])):
            return False
    for i in range(start, end - 1):
        before = end - 2 if i == start else i - 1  # neighbours meet at p[i] alone: a turn,
        if side(p[before, 0], p[before, 1], p[i, 0], p[i, 1], p[i + 1, 0], p[i + 1, 1]) == 0:
            if not ahead(p[before, 0], p[before, 1], p[i, 0], p[i, 1], p[i + 1, 0], p[i + 1, 1]):
                return False  # or straight on
        segments[i - start].left = min(p[i, 0], p[i + 1, 0])
        segments[i - start].right = max(p[i, 0], p[i + 1, 0])
        segments[i - start].low = min(p[i, 1], p[i + 1, 1])
        segments[i - start].high = max(p[i, 1], p[i + 1, 1])
        segments[i - start].start = i
    if m > FEW:
        sort(segments, m)  # inlined: qsort's call per comparison was half the time
    for k in range(m):  # sorted: each with those that start left of its end, the others apart
        for j in range(k + 1, m):
            if m > FEW and segments[j].left > segments[k].right:
                break
            i = min(segments[k].start, segments[j].start) - start
            if max(segments[k].start, segments[j].start) - start - i in (1, m - 1):
                continue  # neighbours (the last segment is the first one's)
            if segments[j].high < segments[k].low or segments[k].high < segments[j].low:
                continue  # apart in y, told without reading their positions again
            if not apart(p, segments[k].start, segments[j].start):
                return False
    return True


def simple_rings(const double[:, ::1] xy, const int64_t[:] offsets):
    """Which rings (`xy[offsets[k]:offsets[k + 1]]`, x and y) are surely simple (uint8)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k
    out = np.zeros(max(n, 0), np.uint8)
    cdef uint8_t[::1] o = out
    cdef Segment* segments = <Segment*> malloc(LONGEST * sizeof(Segment))
    if segments == NULL:
        raise MemoryError()
    with nogil:
        for k in range(n):
            o[k] = simple(xy, offsets[k], offsets[k + 1], segments)
    free(segments)
    return out
