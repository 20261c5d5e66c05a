# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The edges of flat faces hashed in one pass (Cython): for footprints and closed shells.

`solids.Faces` holds a batch's faces as flat arrays (positions, the ring of each, the face of
each ring). Its edges are hashed per position (SplitMix64 over the position's bits), then per
edge (the same both ways round), and for a closed-shell test XORed per object: in numpy that
is some twenty calls over arrays of a few hundred rows on a small file (Melbourne's roads),
each a pass and a temporary. Here each is one loop. The arithmetic is the numpy version's
(`solids.mix`, `solids.position_hashes`, `Faces.edge_hashes`, `solids._closed`), integer
throughout, so the hashes are the same bits.
"""

from libc.math cimport isnan, nearbyint
from libc.stdint cimport int64_t, uint64_t

import numpy as np

cdef inline uint64_t mix(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t position(const uint64_t[:, :] key, Py_ssize_t i) noexcept nogil:
    cdef uint64_t h = mix(key[i, 0])
    cdef Py_ssize_t c
    for c in range(1, key.shape[1]):
        h = mix(h ^ key[i, c])
    return h


def edge_hashes(const uint64_t[:, :] key, const int64_t[:] ring, const int64_t[:] polygon):
    """`Faces.edge_hashes`: a hash of each edge of some length (the same both ways round),
    its face, the row of its start, and whether it runs from the lower position's hash to
    the higher; `key` holds the bits of each position (uint64 columns)."""
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
            if ring[i + 1] != ring[i] or start == end:
                continue
            h[m], f[m], at[m], fw[m] = mix(start + end), polygon[ring[i]], i, start < end
            m += 1
    return hashes[:m], faces[:m], starts[:m], forward[:m]


cdef inline uint64_t millimetres(double v) noexcept nogil:
    """`np.round(np.nan_to_num(v) * 1000).astype(np.int64)`'s bits: NaN as 0; an infinite
    `v` needs no clamp (nan_to_num's +-DBL_MAX is infinite again once scaled), it is cast as
    numpy casts it."""
    if isnan(v):
        v = 0.0
    return <uint64_t><int64_t>nearbyint(v * 1000)


cdef inline uint64_t rounded(const double[:, :] coords, Py_ssize_t i) noexcept nogil:
    cdef uint64_t h = mix(millimetres(coords[i, 0]))
    cdef Py_ssize_t c
    for c in range(1, coords.shape[1]):
        h = mix(h ^ millimetres(coords[i, c]))
    return h


def closed(
    const double[:, :] coords,
    const int64_t[:] ring,
    const int64_t[:] polygon,
    const int64_t[:] owner,
    Py_ssize_t count,
):
    """`solids._closed`: which of `count` objects have faces (owned by them, ascending) that
    share every edge an even number of times, positions compared to the millimetre."""
    out = np.zeros(count, np.bool_)
    odd = np.zeros(count, np.uint64)
    cdef unsigned char[::1] has = out.view(np.uint8)
    cdef uint64_t[::1] xor = odd
    cdef Py_ssize_t n = coords.shape[0], i, k
    cdef uint64_t start, end
    with nogil:
        for k in range(owner.shape[0]):
            has[owner[k]] = 1
        if n:
            end = rounded(coords, 0)
        for i in range(n - 1):
            start, end = end, rounded(coords, i + 1)
            if ring[i + 1] != ring[i] or start == end:
                continue
            k = owner[polygon[ring[i]]]
            xor[k] ^= mix(start + end)
    out &= odd == 0
    return out
