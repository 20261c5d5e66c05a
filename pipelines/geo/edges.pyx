# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The edges of flat faces hashed in one pass (Cython): for footprints.

`solids.Faces` holds a batch's faces as flat arrays (positions, the ring of each, the face of
each ring). Its edges are hashed per position (SplitMix64 over the position's bits), then per
edge (the same both ways round): in numpy that is some twenty calls over arrays of a few
hundred rows on a small file (Melbourne's roads), each a pass and a temporary. Here each is
one loop. The arithmetic is the numpy version's (`solids.mix`, `solids.position_hashes`,
`Faces.edge_hashes`), integer throughout, so the hashes are the same bits. (The closed-shell
test hashes positions alike, in newell.pyx's pass over them: mix.pxi.) The outline edges
chained into rings: outline_rings.pxi.
"""

from libc.math cimport fabs, isnan
from libc.stdint cimport int32_t, int64_t, uint64_t

import numpy as np

include "mix.pxi"


cdef inline uint64_t position(const uint64_t[:, :] key, Py_ssize_t i) noexcept nogil:
    cdef uint64_t h = mix(key[i, 0])
    cdef Py_ssize_t c
    for c in range(1, key.shape[1]):
        h = mix(h ^ key[i, c])
    return h


def edge_hashes(
    const uint64_t[:, :] key,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const unsigned char[:] keep,
):
    """`Faces.edge_hashes`: a hash of each edge of some length (the same both ways round)
    of the faces `keep` picks, its face, the row of its start, and whether it runs from the
    lower position's hash to the higher; `key` holds the bits of each position (uint64
    columns)."""
    cdef Py_ssize_t n = key.shape[0], i, m = 0
    cdef uint64_t start, end
    size = max(n - 1, 0)
    hashes, faces = np.empty(size, np.uint64), np.empty(size, np.int64)
    starts, forward = np.empty(size, np.int64), np.empty(size, np.bool_)
    cdef uint64_t[::1] h = hashes
    cdef int64_t[::1] f = faces, at = starts
    cdef unsigned char[::1] fw = forward.view(np.uint8)
    if n:
        end = position(key, 0)
    with nogil:
        for i in range(n - 1):
            start, end = end, position(key, i + 1)
            if ring[i + 1] != ring[i] or start == end or not keep[polygon[ring[i]]]:
                continue
            h[m], f[m], at[m], fw[m] = mix(start + end), polygon[ring[i]], i, start < end
            m += 1
    return hashes[:m], faces[:m], starts[:m], forward[:m]


def kept_faces(
    const double[:] plane,
    const int64_t[:] owner,
    const unsigned char[:] grounded,
    Py_ssize_t count,
):
    """`footprints._kept` of faces (each one's doubled signed area in the plane, `plane`, and
    its object, `owner`, below `count`; `grounded`: per object, its faces are ground surfaces):
    which faces its footprint keeps (its ground surfaces, else the faces that look down, else
    all), and which of them belong to an object of several kept faces; per object, whether it
    has a face, its kept faces, their area (added in the faces' order, as `np.bincount` adds),
    and those of them that look down and up. Three passes over the faces, where numpy makes
    a pass and a temporary for each of some fifteen steps."""
    cdef Py_ssize_t n = plane.shape[0], f, o
    keep, several = np.empty(n, np.bool_), np.empty(n, np.bool_)
    has, any_down = np.zeros(count, np.bool_), np.zeros(count, np.bool_)
    kept, down, up = np.zeros(count, np.int64), np.zeros(count, np.int64), np.zeros(count, np.int64)
    area = np.zeros(count)
    cdef unsigned char[::1] kp = keep.view(np.uint8), sv = several.view(np.uint8)
    cdef unsigned char[::1] h = has.view(np.uint8), d = any_down.view(np.uint8)
    cdef int64_t[::1] kc = kept, dn = down, upc = up
    cdef double[::1] ar = area
    with nogil:
        for f in range(n):
            o = owner[f]
            h[o] = 1
            d[o] |= plane[f] < 0
        for f in range(n):
            o = owner[f]
            kp[f] = grounded[o] | (not d[o]) | (plane[f] < 0)
            if kp[f]:
                kc[o] += 1
                ar[o] += fabs(plane[f]) / 2
                dn[o] += plane[f] < 0
                upc[o] += plane[f] > 0
        for f in range(n):
            sv[f] = kp[f] & (kc[owner[f]] > 1)
    return keep, several, has, kept, area, down, up


cdef struct Keyed:
    uint64_t key
    Py_ssize_t start  # twice the row of its first edge's start in `xy`, +1 where it runs forward
    int32_t times  # an object's edges, at most a batch's: far below 2**31
    int32_t net


cdef struct Spot:
    uint64_t x  # a position's bits
    uint64_t y
    Py_ssize_t edge  # the edge that starts there, -1: a free slot of a table of them


ctypedef Keyed Item


cdef inline bint before(const Item *p, const Item *q) noexcept nogil:
    """Whether `p` sorts before `q`: edges by key."""
    return p.key < q.key


# `a` sorted: as qsort orders it where no two are equal (an object's edges, each once)
include "sort.pxi"


cdef Py_ssize_t grouped(
    const int64_t[:] obj, Py_ssize_t[::1] lo, Py_ssize_t[::1] hi, Py_ssize_t[::1] rows,
    bint *runs,
) noexcept nogil:
    """Each object's edges, as the rows `lo[k]` to `hi[k]` (both zeros to start with) of the
    edges themselves where each object's come in one run (`runs`: a set's objects in order,
    each object in one set), else of `rows` (the edges counted and placed by object, in
    order: a counting sort, whose count each edge adds to its object's, a pass that waits
    on the last add where one object's edges follow one another); and the most an object has."""
    cdef Py_ssize_t n = obj.shape[0], count = lo.shape[0], i = 0, j, k, s = 0, widest = 0
    runs[0] = True
    while i < n:
        j = i + 1
        while j < n and obj[j] == obj[i]:
            j += 1
        if hi[obj[i]]:  # the object's second run
            runs[0] = False
            break
        lo[obj[i]], hi[obj[i]] = i, j
        widest = max(widest, j - i)
        i = j
    if runs[0]:
        return widest
    widest = 0
    for k in range(count):
        hi[k] = 0
    for i in range(n):
        hi[obj[i]] += 1
    for k in range(count):  # hi: each object's count, then where its next edge goes
        widest = max(widest, hi[k])
        lo[k], s = s, s + hi[k]
        hi[k] = lo[k]
    for i in range(n):
        rows[hi[obj[i]]] = i
        hi[obj[i]] += 1
    return widest


cdef inline Py_ssize_t counted(
    Keyed *table, Py_ssize_t mask, Py_ssize_t *used, Py_ssize_t u, uint64_t key, Py_ssize_t start
) noexcept nogil:
    """An object's edge `key` (its `start`: twice its row, +1 where it runs forward) counted in
    its hash `table` (`mask + 1` slots, `times` 0: a free one) by linear probing; the slots
    filled so far `u`, one more where this edge is new (its slot noted in `used`)."""
    cdef Py_ssize_t j = key & mask
    cdef bint fresh
    # one branch a probe (`&`, not `and`), a slot found new or again without one: either is
    # as likely, which a branch would mispredict half the time
    while (table[j].times != 0) & (table[j].key != key):
        j = (j + 1) & mask
    fresh = table[j].times == 0
    table[j].key = key
    table[j].start = start if fresh else table[j].start
    used[u] = j
    table[j].times += 1
    table[j].net += 2 * (start & 1) - 1
    return u + fresh


cdef Py_ssize_t emitted(
    Keyed *table,
    const Py_ssize_t *used,
    Py_ssize_t u,
    Keyed *odd,
    Py_ssize_t k,
    bint traced,
    unsigned char *shares,
    unsigned char *tangled,
    const double[:, :] xy,
    double[:, :, ::1] out,
    int64_t[::1] own,
    Py_ssize_t m,
) noexcept nogil:
    """Object `k`'s edges counted in `table` (its `u` filled slots `used`) told: whether it
    `shares` an edge and, where `traced`, whether it is `tangled` and its outline edges (those
    held an odd number of times, sorted by key) written from row `m` of `out` (their ends in
    `xy`) and `own`; the slots freed. Returns the rows written up to."""
    cdef Py_ssize_t i, j, o = 0, back
    for i in range(u):  # the filled slots alone, not the whole table (2-4 slots an edge)
        j = used[i]
        shares[k] |= table[j].times > 1
        if traced:
            # |net| 0 or 1 (squared in 64 bits: an edge run 2**16 times overflows 32)
            tangled[k] |= <int64_t>table[j].net * table[j].net != table[j].times % 2
        if table[j].times % 2:
            odd[o] = table[j]
            o += 1
        table[j].times = table[j].net = 0
    if not traced:
        return m
    sort(odd, o)
    for j in range(o):
        i = odd[j].start >> 1
        # an edge run against the way its faces run it more often (net's sign, never 0 for an
        # odd count) starts at its end
        back = (odd[j].start & 1) != (odd[j].net > 0)
        out[m, 0, 0], out[m, 0, 1] = xy[i + back, 0], xy[i + back, 1]
        out[m, 1, 0], out[m, 1, 1] = xy[i + 1 - back, 0], xy[i + 1 - back, 1]
        own[m] = k
        m += 1
    return m


cdef Py_ssize_t slots_for(Py_ssize_t edges) noexcept nogil:
    """The size of a hash table for `edges` (a power of two, at least twice as many)."""
    cdef Py_ssize_t size = 8
    while size < 2 * edges:
        size *= 2
    return size


def outline(
    const uint64_t[:] edge,
    const int64_t[:] obj,
    const int64_t[:] at,
    const unsigned char[:] forward,
    const double[:, :] xy,
    Py_ssize_t count,
    bint traced,
):
    """`footprints._edges` after the hashing: of the kept faces' `edge` hashes (`edge_hashes`),
    their objects (each below `count`), the rows of their starts in `xy` and their ways round,
    which objects share an edge and, where `traced`, the outline edges (those held an odd
    number of times, directed the way their faces run them more often), their objects, and
    which objects are tangled (`footprints._Edges`).

    numpy sorts every edge by its hash mixed with its object to find the edges held more than
    once; here each object's edges are counted in a hash table of their own, and its outline
    edges alone are sorted by that hash: the order numpy's come in within an object."""
    cdef Py_ssize_t n = edge.shape[0], i, k, r, u, m = 0, widest, mask
    cdef uint64_t tag
    cdef bint runs
    shares, tangled = np.zeros(count, np.bool_), np.zeros(count, np.bool_)
    cdef unsigned char[::1] sh = shares.view(np.uint8), tg = tangled.view(np.uint8)
    cdef Py_ssize_t[::1] lo = np.zeros(count, np.intp), hi = np.zeros(count, np.intp)
    cdef Py_ssize_t[::1] rows = np.empty(n, np.intp)
    with nogil:
        widest = grouped(obj, lo, hi, rows, &runs)
    cdef unsigned char[::1] table_buffer = np.zeros(slots_for(widest) * sizeof(Keyed), np.uint8)
    cdef unsigned char[::1] odd_buffer = np.empty(max(widest, 1) * sizeof(Keyed), np.uint8)
    cdef Keyed *table = <Keyed *>&table_buffer[0]
    cdef Keyed *odd = <Keyed *>&odd_buffer[0]
    cdef Py_ssize_t[::1] used = np.empty(max(widest, 1), np.intp)  # the slots filled, in turn
    ends, owners = np.empty((n if traced else 0, 2, 2)), np.empty(n if traced else 0, np.int64)
    cdef double[:, :, ::1] out = ends
    cdef int64_t[::1] own = owners
    with nogil:
        for k in range(count):
            mask = slots_for(hi[k] - lo[k]) - 1
            tag = mix(<uint64_t>k)
            u = 0
            for i in range(lo[k], hi[k]):
                r = i if runs else rows[i]
                u = counted(table, mask, &used[0], u, mix(edge[r] ^ tag), 2 * at[r] + forward[r])
            m = emitted(table, &used[0], u, odd, k, traced, &sh[0], &tg[0], xy, out, own, m)
    return shares, ends[:m], owners[:m], tangled


def face_outline(
    const uint64_t[:, :] key,
    const double[:, :] xy,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const int64_t[:] owner,
    const unsigned char[:] keep,
    Py_ssize_t count,
    bint traced,
):
    """`edge_hashes` of the faces `keep` picks and `outline` of them, object by object, where
    each object's positions are one run of rows (as a connector's faces come): an object's
    edges hashed, then counted in its table while in the cache, where `edge_hashes` writes
    arrays of every edge of the batch (Delft's 3.6 MB, fresh pages) that `outline` reads again;
    `outline`'s results, the same bits (each edge the same key, each object's outline edges
    sorted by it). None where an object's positions come in two runs or more."""
    cdef Py_ssize_t n = key.shape[0], i, k, r, u, m = 0, widest = 0, mask
    cdef uint64_t tag, start, end
    shares, tangled = np.zeros(count, np.bool_), np.zeros(count, np.bool_)
    cdef unsigned char[::1] sh = shares.view(np.uint8), tg = tangled.view(np.uint8)
    cdef Py_ssize_t[::1] lo = np.zeros(count, np.intp), hi = np.zeros(count, np.intp)
    with nogil:
        i = 0
        while i < n:  # each object's run of rows, lo[k] to hi[k], ring by ring
            k = owner[polygon[ring[i]]]
            if hi[k]:  # its second run
                break
            lo[k] = i
            while i < n and owner[polygon[ring[i]]] == k:
                r = ring[i]
                while i < n and ring[i] == r:
                    i += 1
            hi[k] = i
            widest = max(widest, i - lo[k])
    if i < n:
        return None
    cdef unsigned char[::1] table_buffer = np.zeros(slots_for(widest) * sizeof(Keyed), np.uint8)
    cdef unsigned char[::1] odd_buffer = np.empty(max(widest, 1) * sizeof(Keyed), np.uint8)
    cdef Keyed *table = <Keyed *>&table_buffer[0]
    cdef Keyed *odd = <Keyed *>&odd_buffer[0]
    cdef Py_ssize_t[::1] used = np.empty(max(widest, 1), np.intp)
    # an object's positions hashed in one loop (independent of one another, no branch), then
    # its edges' keys and starts, before the table's probes: one object's at a time, in the cache
    cdef uint64_t[::1] hashed = np.empty(max(widest, 1), np.uint64)
    cdef uint64_t[::1] keys = np.empty(max(widest, 1), np.uint64)
    cdef Py_ssize_t[::1] starts = np.empty(max(widest, 1), np.intp)
    cdef Py_ssize_t e, first
    ends, owners = np.empty((n if traced else 0, 2, 2)), np.empty(n if traced else 0, np.int64)
    cdef double[:, :, ::1] out = ends
    cdef int64_t[::1] own = owners
    with nogil:
        for k in range(count):
            tag = mix(<uint64_t>k)
            first = lo[k]
            for i in range(first, hi[k]):
                hashed[i - first] = position(key, i)
            e = 0
            for i in range(first, hi[k] - 1):
                if ring[i + 1] != ring[i] or not keep[polygon[ring[i]]]:
                    continue
                start, end = hashed[i - first], hashed[i + 1 - first]  # `edge_hashes`' edge
                keys[e], starts[e] = mix(mix(start + end) ^ tag), 2 * i + (start < end)
                e += start != end
            mask = slots_for(e) - 1
            u = 0
            for r in range(e):
                u = counted(table, mask, &used[0], u, keys[r], starts[r])
            m = emitted(table, &used[0], u, odd, k, traced, &sh[0], &tg[0], xy, out, own, m)
    return shares, ends[:m], owners[:m], tangled


include "outline_rings.pxi"
