# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The distinct positions of a coordinate array found in one hashed pass (Cython).

A 3D model's faces share their corners (Den Haag's 119,000 corners are 11,000 positions), and
PROJ costs far more per position than finding the repeats, so each distinct position is
transformed once (`crs.ToCrs84`). pandas' `factorize` of the positions as complex numbers
does this in a complex array made first and a hash table of Python-level generality; here it
is one loop over the (x, y) bits. Positions are the same as `factorize` holds them the same:
equal as floats (0.0 and -0.0 one position), any NaN equal to any NaN, each numbered by its
first row, in order of first appearance, where x + iy has NaN parts as complex arithmetic
makes them. A batch's solids' distinct positions, found so on the CRS84 thread, are kept as a
`Table` there, among which the run's thread then looks up its footprints' corners alone.
"""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np


cdef inline Py_ssize_t spot(uint64_t x, uint64_t y, int shift) noexcept nogil:
    """The slot of (x, y) in a table of 2**(64 - shift) slots: a multiplicative hash's top bits."""
    return ((x ^ (y * <uint64_t>0x9E3779B97F4A7C15ULL)) * <uint64_t>0xBF58476D1CE4E5B9ULL) >> shift


cdef uint64_t NAN = 0x7FF8000000000000ULL
LIMIT = 2**31
"""Positions of one call: fewer (a slot holds a 32-bit number)."""


cdef inline uint64_t bits(double v) noexcept nogil:
    """The bits of a number that is not NaN as equality sees it: -0.0 as 0.0."""
    cdef uint64_t b
    v = v + 0.0
    memcpy(&b, &v, 8)
    return b


cdef inline uint64_t key_x(double x, double y) noexcept nogil:
    """The first half of the key of position (x, y): x's bits, NaN where x is NaN or y is
    infinite or NaN (x + iy has a NaN real part)."""
    return NAN if x != x or y - y != 0 else bits(x)


cdef inline uint64_t key_y(double y) noexcept nogil:
    return NAN if y != y else bits(y)


cdef struct Key:
    uint64_t x, y


cdef int32_t* placed(
    const Key* keys, Py_ssize_t k, Py_ssize_t size, int shift
) noexcept nogil:
    """A table of `size` slots holding the numbers of the `k` positions `keys`, each at its
    slot or the first free one after it (-1: free); NULL where memory runs out."""
    cdef int32_t* table = <int32_t*> malloc(size * sizeof(int32_t))
    cdef Py_ssize_t j, slot
    if table != NULL:
        memset(table, 0xFF, size * sizeof(int32_t))
        for j in range(k):
            slot = spot(keys[j].x, keys[j].y, shift)
            while table[slot] >= 0:
                slot = (slot + 1) & (size - 1)
            table[slot] = <int32_t>j
    return table


cdef inline Py_ssize_t slot_of(
    const Key* keys, const int32_t* table, Py_ssize_t size, int shift, uint64_t x, uint64_t y
) noexcept nogil:
    """The slot of key (x, y) in `table` (of `size` slots numbering `keys`): its own, or the
    free one where it would go."""
    cdef Py_ssize_t slot = spot(x, y, shift)
    cdef int32_t code = table[slot]
    while code >= 0 and (keys[code].x != x or keys[code].y != y):
        slot = (slot + 1) & (size - 1)
        code = table[slot]
    return slot


def distinct(list parts):
    """The number of each row's position (x, y: the first two columns) among the distinct
    positions of the arrays `parts`, taken one after another, and each distinct position as
    first found (k, 2), as `pandas.factorize` of `x + 1j * y` numbers them
    (`use_na_sentinel=False`), where any NaN equals any NaN, and an infinite y makes the real
    part NaN (0 * inf). Fewer than 2**31 rows (`LIMIT`).

    The table holds each slot's number (4 bytes), the positions' bits are kept in order of
    their numbers: Delft's 65,536 slots take 256 kB, where slots holding the bits too took
    1.5 MB, and most probes missed the cache."""
    cdef Py_ssize_t n = sum(len(p) for p in parts), i, at = 0, slot, k = 0, size = 1024
    cdef int shift = 64 - 10
    cdef int32_t code
    if n >= LIMIT:
        raise OverflowError(f"{n} positions: a table of 32-bit numbers holds fewer")
    while size < n // 4:  # a city model's positions are some 10 % distinct: grown seldom
        size, shift = 2 * size, shift - 1
    cdef uint64_t x, y
    cdef const double[:, :] xy
    codes, found = np.empty(n, np.int64), np.empty((n, 2), np.float64)
    cdef int64_t[::1] c = codes
    cdef double[:, ::1] f = found
    cdef Key* keys = <Key*> malloc(max(n, 1) * sizeof(Key))  # its first k rows touched alone
    cdef int32_t* table = placed(keys, 0, size, shift)
    if keys == NULL or table == NULL:
        free(keys)
        free(table)
        raise MemoryError()
    for part in parts:
        xy = part
        with nogil:
            for i in range(xy.shape[0]):
                x, y = key_x(xy[i, 0], xy[i, 1]), key_y(xy[i, 1])
                slot = slot_of(keys, table, size, shift, x, y)
                code = table[slot]
                if code >= 0:
                    c[at + i] = code
                    continue
                table[slot], keys[k].x, keys[k].y = <int32_t>k, x, y
                f[k, 0], f[k, 1], c[at + i] = xy[i, 0], xy[i, 1], k
                k += 1
                if 2 * k > size:  # at most half full: probes stay short
                    free(table)
                    size, shift = 2 * size, shift - 1
                    table = placed(keys, k, size, shift)
                    if table == NULL:
                        break
        if table == NULL:
            free(keys)
            raise MemoryError()
        at += xy.shape[0]
    free(table)
    free(keys)
    return codes, found[:k].copy()


cdef Py_ssize_t slots_for(Py_ssize_t n, int *shift) noexcept:
    """The slots of a table for `n` positions (at most half full), and its hash's `shift`."""
    cdef Py_ssize_t size = 1024
    shift[0] = 64 - 10
    while size < 2 * n:
        size, shift[0] = 2 * size, shift[0] - 1
    return size


cdef class Table:
    """Positions hashed once (x, y: the first two columns of an array of distinct ones, as
    `distinct` finds them), each numbered by its row, among which other positions are then
    looked up (`codes`) without hashing them again: a batch's solids' corners, found on the
    CRS84 thread, among which the run's thread finds its footprints' corners."""

    cdef Key* keys
    cdef int32_t* table
    cdef Py_ssize_t size
    cdef int shift

    def __cinit__(self, const double[:, :] xy):
        cdef Py_ssize_t n = xy.shape[0], i, slot
        if n >= LIMIT:
            raise OverflowError(f"{n} positions: a table of 32-bit numbers holds fewer")
        self.size = slots_for(n, &self.shift)
        self.keys = <Key*> malloc(max(n, 1) * sizeof(Key))
        if self.keys == NULL:
            raise MemoryError()
        with nogil:
            for i in range(n):
                self.keys[i].x, self.keys[i].y = key_x(xy[i, 0], xy[i, 1]), key_y(xy[i, 1])
            self.table = placed(self.keys, 0, self.size, self.shift)
            if self.table != NULL:  # each row at its slot; a row given again: the first's
                for i in range(n):
                    slot = self.found(self.keys[i].x, self.keys[i].y)
                    if self.table[slot] < 0:
                        self.table[slot] = <int32_t>i
        if self.table == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.keys)
        free(self.table)

    cdef inline Py_ssize_t found(self, uint64_t x, uint64_t y) noexcept nogil:
        return slot_of(self.keys, self.table, self.size, self.shift, x, y)

    def codes(self, list parts):
        """The row of each row's position (x, y) of the arrays `parts`, taken one after
        another, among the table's; -1 where it is not there."""
        cdef Py_ssize_t n = sum(len(p) for p in parts), i, at = 0
        cdef const double[:, :] xy
        codes = np.empty(n, np.int64)
        cdef int64_t[::1] c = codes
        for part in parts:
            xy = part
            with nogil:
                for i in range(xy.shape[0]):
                    c[at + i] = self.table[self.found(key_x(xy[i, 0], xy[i, 1]), key_y(xy[i, 1]))]
            at += xy.shape[0]
        return codes
