# Included (Cython's `include`) by edges.pyx and newell.pyx: SplitMix64's finaliser, and a
# position's hash to the millimetre, the same bits as numpy's arithmetic in solids.py
# (`solids.mix`, `solids._closed`). The including module cimports isnan, int64_t, uint64_t.

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #if defined(__x86_64__) || defined(_M_X64)
    #include <emmintrin.h>
    /* cvtsd2si: one instruction, rounding as nearbyint does (to nearest, ties to even: the
       mode in force) into the integer the cast makes, out of range INT64_MIN as the cast
       gives it; nearbyint is a library call where SSE4.1 is not assumed */
    static inline int64_t rounded_int64(double v) { return _mm_cvtsd_si64(_mm_set_sd(v)); }
    #else
    static inline int64_t rounded_int64(double v) { return (int64_t)nearbyint(v); }
    #endif
    """
    int64_t rounded_int64(double v) noexcept nogil

cdef inline uint64_t mix(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t millimetres(double v) noexcept nogil:
    """`np.round(np.nan_to_num(v) * 1000).astype(np.int64)`'s bits: NaN as 0; an infinite
    `v` needs no clamp (nan_to_num's +-DBL_MAX is infinite again once scaled), it is cast as
    numpy casts it."""
    if isnan(v):
        v = 0.0
    return <uint64_t>rounded_int64(v * 1000)


cdef inline uint64_t rounded(const double[:, :] coords, Py_ssize_t i) noexcept nogil:
    cdef uint64_t h = mix(millimetres(coords[i, 0]))
    cdef Py_ssize_t c
    for c in range(1, coords.shape[1]):
        h = mix(h ^ millimetres(coords[i, c]))
    return h
