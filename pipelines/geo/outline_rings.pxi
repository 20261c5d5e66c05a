# Included (Cython's `include`) by edges.pyx: `rings`, the outline edges of each object chained
# into its footprint's rings (the shell, then the holes), each edge's successor found by its
# end's position in a hash table of the starts, and their turns summed as numpy sums them. The
# including module defines Spot, mix() and slots_for(), cimports int64_t, uint64_t and imports
# numpy as np.


cdef inline Py_ssize_t slot_of(
    const Spot *table, Py_ssize_t mask, uint64_t x, uint64_t y
) noexcept nogil:
    """The slot of position (x, y) (its bits) in `table` (`mask + 1` slots), else the free
    slot where it goes: linear probing, positions compared bit for bit."""
    cdef Py_ssize_t j = mix(x ^ mix(y)) & mask
    while table[j].edge >= 0 and (table[j].x != x or table[j].y != y):
        j = (j + 1) & mask
    return j


cdef inline uint64_t bits(double v) noexcept nogil:
    return (<uint64_t *>&v)[0]


cdef double pairwise(const double *a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise sum of `n` doubles (`np.add.reduce`'s), to the bit."""
    cdef double r[8]
    cdef double res = 0.0
    cdef Py_ssize_t i, j, half
    if n < 8:
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return pairwise(a, half) + pairwise(a + half, n - half)


def rings(
    const double[:, :, :] ends,
    const int64_t[:] owner,
    const int64_t[:] objects,
    const unsigned char[:] ccw,
):
    """`footprints._chained`'s rings: of outline edges `ends` (start, end; their objects
    `owner`, ascending), for each of `objects` (ascending) whose edges chain into rings (one
    leaving each position, one arriving) of which one turns as its faces (counter-clockwise
    where `ccw`): that one (the shell), then the others (holes), each from its lowest edge on,
    closed. Returns their positions, the offsets of the rings and of the objects' rings
    (`shapely.from_ragged_array`'s), and which objects have them.

    A ring's turn is the sum of its edges' cross products, added as numpy's `add.reduceat`
    adds them (the first, then the rest pairwise): the same sign as the numpy path's."""
    cdef Py_ssize_t m = ends.shape[0], count = objects.shape[0], widest = 0, mask
    cdef Py_ssize_t o, e = 0, lo, k, i, j, a, p, r, q, shells, shell, made = 0, rows = 0
    cdef bint broken
    cdef uint64_t x, y
    positions = np.empty((2 * m, 2))
    ring_at, object_at = np.zeros(m + 1, np.int64), np.zeros(count + 1, np.int64)
    fine = np.zeros(count, np.bool_)
    cdef double[:, ::1] xy = positions
    cdef int64_t[::1] ring_offsets = ring_at, object_offsets = object_at
    cdef unsigned char[::1] ok = fine.view(np.uint8)
    with nogil:
        while e < m:  # the most edges an object has (they come by object)
            lo = e
            while e < m and owner[e] == owner[lo]:
                e += 1
            widest = max(widest, e - lo)
    e = 0
    cdef unsigned char[::1] table_buffer = np.empty(slots_for(widest) * sizeof(Spot), np.uint8)
    cdef Spot *table = <Spot *>&table_buffer[0]
    cdef Py_ssize_t[::1] succ = np.empty(m, np.intp), order = np.empty(m, np.intp)
    cdef Py_ssize_t[::1] heads = np.empty(m + 1, np.intp)
    cdef unsigned char[::1] seen = np.empty(m, np.uint8), hit = np.empty(m, np.uint8)
    cdef double[::1] terms = np.empty(m, np.double), turn = np.empty(m, np.double)
    with nogil:
        for o in range(count):
            while e < m and owner[e] < objects[o]:
                e += 1
            lo = e
            while e < m and owner[e] == objects[o]:
                e += 1
            k = e - lo
            mask = slots_for(k) - 1
            for j in range(mask + 1):
                table[j].edge = -1
            broken = k == 0
            for i in range(k):  # each start in the table: two at one position break the rings
                x, y = bits(ends[lo + i, 0, 0]), bits(ends[lo + i, 0, 1])
                j = slot_of(table, mask, x, y)
                broken |= table[j].edge >= 0
                table[j].x, table[j].y, table[j].edge = x, y, i
                hit[i], seen[i] = 0, 0
            for i in range(k):  # each end a start's, no start two ends'
                if broken:
                    break
                x, y = bits(ends[lo + i, 1, 0]), bits(ends[lo + i, 1, 1])
                a = table[slot_of(table, mask, x, y)].edge
                broken = a < 0 or hit[a]
                if not broken:
                    hit[a], succ[i] = 1, a
            if broken:
                continue
            p = r = 0
            for i in range(k):  # the cycles, each from its lowest edge (seen first)
                if seen[i]:
                    continue
                heads[r], j = p, i
                r += 1
                while True:
                    order[p], seen[j] = j, 1
                    terms[p] = (
                        ends[lo + j, 0, 0] * ends[lo + j, 1, 1]
                        - ends[lo + j, 0, 1] * ends[lo + j, 1, 0]
                    )
                    p += 1
                    j = succ[j]
                    if j == i:
                        break
            heads[r] = p
            shells, shell = 0, 0
            for q in range(r):
                turn[q] = terms[heads[q]] + pairwise(&terms[heads[q] + 1], heads[q + 1] - heads[q] - 1)
                if (turn[q] > 0) == (ccw[o] != 0):
                    shells, shell = shells + 1, q
            if shells != 1:
                continue
            ok[o] = 1
            for q in range(-1, r):  # the shell, then the holes
                if q == shell:
                    continue
                i = shell if q < 0 else q
                for j in range(heads[i], heads[i + 1]):
                    xy[rows, 0], xy[rows, 1] = ends[lo + order[j], 0, 0], ends[lo + order[j], 0, 1]
                    rows += 1
                xy[rows, 0] = ends[lo + order[heads[i]], 0, 0]
                xy[rows, 1] = ends[lo + order[heads[i]], 0, 1]
                rows += 1
                ring_offsets[made + 1] = rows
                made += 1
            object_offsets[o + 1] = made
    # an object without rings adds none: the offsets of those with them are theirs
    return positions[:rows], ring_at[: made + 1], object_at[np.insert(fine, 0, True)], fine
