# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Polygons of short rings vouched valid without GEOS (Cython), for `validity.is_valid`.

GEOS checks a polygon's validity by noding all its segments (some 0.9 us for a footprint of
six positions). A polygon without holes is valid where its ring is simple: closed, of three
positions or more, no two segments meeting but neighbours at their shared position (turning
there, or going straight on). Most
footprints are such rings of a few positions, whose segments are told apart by orientations
computed in floating point; where such a sign is sure (Shewchuk's error bound, widened) it is
the exact sign GEOS computes. Segments of a long ring are compared in order of their least x, each
with those that reach as far (a sweep: a traced outline of Delft's has up to 645). A ring any of whose
signs is not sure is not vouched for: GEOS is asked, so the answer is always GEOS's.

A polygon with holes (a traced outline around a courtyard) is valid where each ring is simple,
no two rings meet (their segments surely apart: a hole touching its shell at a position, which
GEOS allows, is left to GEOS), each hole lies inside the shell and outside the other holes
(its first position, by the crossings of a ray, each sure of its side); its interior is then
connected, the holes being apart.
"""

from libc.math cimport fabs, isfinite
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, labs, malloc

import numpy as np

cdef double ERR = 1e-15
"""A determinant's sign is sure beyond this fraction of its terms' magnitudes (Shewchuk's
bound for orient2d is 3.3e-16)."""
cdef double TINY = 1e-280
"""Nor is it below this, where the terms may have lost bits to underflow."""
cdef Py_ssize_t LONGEST = 1024
"""Polygons of more segments are left to GEOS: segments that all reach over one another (a
comb) would each be compared with each, and GEOS's noding is the faster from about there on
(Barcelona's barris: 4 rings of 1,025-4,370 positions 0.22 ms here, 0.11 by GEOS; 22 of
257-1,024 0.58 against 0.55)."""

cdef Py_ssize_t FEW = 16
"""Rings of as many segments or fewer compare each pair, sooner than sort them (a footprint's
six)."""

cdef Py_ssize_t HOLES = 16
"""Polygons of more holes are left to GEOS: each hole is placed against every other."""


cdef struct Segment:
    double left, right  # its least and greatest x
    double low, high  # its least and greatest y
    Py_ssize_t start  # the row of its first position
    Py_ssize_t ring  # its ring's number


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


cdef inline bint apart(const double *p, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Whether the segments p[i] -> p[i + 1] and p[j] -> p[j + 1] surely do not meet: their
    boxes are apart, or one lies wholly on one side of the other's line."""
    cdef double ax = p[2 * i], ay = p[2 * i + 1], bx = p[2 * i + 2], by = p[2 * i + 3]
    cdef double cx = p[2 * j], cy = p[2 * j + 1], dx = p[2 * j + 2], dy = p[2 * j + 3]
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


cdef int inside(
    const double *p, Py_ssize_t start, Py_ssize_t end, double x, double y
) noexcept nogil:
    """1 where (x, y) is surely inside the closed ring of positions `start` to `end`, 0 where
    surely outside, -1 where a side is not sure: by the parity of the segments a ray from it
    to the east crosses, those that span its y (told exactly) and lie east of it."""
    cdef Py_ssize_t i
    cdef int s, crossings = 0
    for i in range(start, end - 1):
        if (p[2 * i + 1] > y) != (p[2 * i + 3] > y):
            s = side(p[2 * i], p[2 * i + 1], p[2 * i + 2], p[2 * i + 3], x, y)
            if s == 0:
                return -1
            crossings += (s > 0) == (p[2 * i + 3] > p[2 * i + 1])  # left of a segment going north
    return crossings & 1


cdef inline Py_ssize_t ring_segments(
    const double *p, const int64_t *rings, Py_ssize_t r, Segment* segments
) noexcept nogil:
    """The segments of ring `r` (positions `rings[r]` to `rings[r + 1]`, its last its first
    again) into `segments`, and their number; 0 where the ring is not closed, has fewer than
    three segments or a coordinate that is not finite, or turns back on itself at a position."""
    cdef Py_ssize_t start = rings[r], end = rings[r + 1], m = end - start - 1, i, before
    cdef const double *a
    cdef const double *b
    cdef const double *c
    if m < 3:
        return 0
    if p[2 * start] != p[2 * end - 2] or p[2 * start + 1] != p[2 * end - 1]:
        return 0
    for i in range(start, end):
        if not (isfinite(p[2 * i]) and isfinite(p[2 * i + 1])):
            return 0
    for i in range(start, end - 1):
        before = end - 2 if i == start else i - 1  # neighbours meet at p[i] alone: a turn,
        a, b, c = p + 2 * before, p + 2 * i, p + 2 * (i + 1)
        if side(a[0], a[1], b[0], b[1], c[0], c[1]) == 0:
            if not ahead(a[0], a[1], b[0], b[1], c[0], c[1]):
                return 0  # or straight on
        segments[i - start].left = min(b[0], c[0])
        segments[i - start].right = max(b[0], c[0])
        segments[i - start].low = min(b[1], c[1])
        segments[i - start].high = max(b[1], c[1])
        segments[i - start].start = i
        segments[i - start].ring = r
    return m


cdef bint simple(
    const double *p, const int64_t *rings, Py_ssize_t lo, Py_ssize_t hi,
    Segment* segments
) noexcept nogil:
    """Whether the polygon of rings `lo` to `hi` (the shell, then its holes; ring r holds
    positions `rings[r]` to `rings[r + 1]`, x and y in turn in `p`, its last its first again)
    is surely valid; `segments` has room for LONGEST segments."""
    cdef Py_ssize_t m = 0, r, g, i, j, k, made
    cdef double x, y
    if hi - lo - 1 > HOLES:
        return False
    for r in range(lo, hi):
        if m + rings[r + 1] - rings[r] - 1 > LONGEST:
            return False
        made = ring_segments(p, rings, r, segments + m)
        if made == 0:
            return False
        m += made
    if m > FEW:
        sort(segments, m)  # inlined: qsort's call per comparison was half the time
    for k in range(m):  # sorted: each with those that start left of its end, the others apart
        for j in range(k + 1, m):
            if m > FEW and segments[j].left > segments[k].right:
                break
            r = segments[k].ring
            if segments[j].ring == r:  # of one ring: neighbours meet
                i = labs(segments[k].start - segments[j].start)
                if i == 1 or i == rings[r + 1] - rings[r] - 2:
                    continue  # neighbours (the last segment is the first one's)
            if segments[j].high < segments[k].low or segments[k].high < segments[j].low:
                continue  # apart in y, told without reading their positions again
            if not apart(p, segments[k].start, segments[j].start):
                return False
    for r in range(lo + 1, hi):  # rings apart: a hole inside the shell, outside the others
        x, y = p[2 * rings[r]], p[2 * rings[r] + 1]
        if inside(p, rings[lo], rings[lo + 1], x, y) != 1:
            return False
        for g in range(lo + 1, hi):
            if g != r and inside(p, rings[g], rings[g + 1], x, y) != 0:
                return False
    return True


def simple_rings(const double[:, ::1] xy, const int64_t[::1] offsets):
    """Which rings (`xy[offsets[k]:offsets[k + 1]]`, x and y) are surely simple (uint8)."""
    return valid_polygons(xy, offsets, np.arange(max(offsets.shape[0], 1), dtype=np.int64))


def valid_polygons(
    const double[:, ::1] xy, const int64_t[::1] rings, const int64_t[::1] polygons
):
    """Which polygons (of rings `polygons[k]` to `polygons[k + 1]`, the shell first; ring r
    is `xy[rings[r]:rings[r + 1]]`, x and y) are surely valid (uint8)."""
    cdef Py_ssize_t n = polygons.shape[0] - 1, k
    if xy.shape[1] != 2:
        raise ValueError(f"positions of x and y wanted, not {xy.shape[1]} columns")
    cdef const double *p = &xy[0, 0] if xy.shape[0] else NULL
    cdef const int64_t *at = &rings[0] if rings.shape[0] else NULL
    out = np.zeros(max(n, 0), np.uint8)
    cdef uint8_t[::1] o = out
    cdef Segment* segments = <Segment*> malloc(LONGEST * sizeof(Segment))
    if segments == NULL:
        raise MemoryError()
    with nogil:
        for k in range(n):
            o[k] = simple(p, at, polygons[k], polygons[k + 1], segments)
    free(segments)
    return out
