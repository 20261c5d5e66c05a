# A batch's coordinate text parsed in C (included by gml_walk.pyx): gml_polygons' Arrow parse
# (split, then cast) costs about 60 ns a number, most of a batch's polygon build; this reads
# each ring's numbers in one pass. Only the plain case is read here: ASCII text whose every
# token is a decimal number (gml_polygons._NUMBER) of a finite value; anything else (a token
# that is no number, nan, inf, 1e309, text beyond ASCII) answers None and Arrow parses the batch,
# so every defect keeps its one meaning there.
#
# Values are rounded as Python's float() and Arrow round them (correctly: the nearest double):
# by Clinger's exact fast path where the digits fit 53 bits and the power of ten is at most 22,
# else by Eisel and Lemire's algorithm (the one Arrow's fast_float uses: a 128-bit product
# with a truncated power of five); the cases it leaves (over 19 significant digits, subnormal
# results, a product it cannot round) go to CPython's own parser.

from cpython.unicode cimport PyUnicode_GET_LENGTH

import numpy as np

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void *PyUnicode_DATA(object)
    double PyOS_string_to_double(const char *s, char **endptr, void *overflow) except? -1.0

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static uint64_t gml_pow5[2 * 651];  /* 5^q, q in [-342, 308], as fast_float writes it */
    static const double gml_pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
        1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

    static inline int gml_blank(char c) { return c == ' ' || (c >= 9 && c <= 13); }

    /* A fraction's first eight digits at p read at once where they are (SWAR, as fast_float
       reads them; GML's coordinates often have ten): 1 and w = w * 10^8 + their value; else
       0. Only where no digit of the eight would be dropped (w holds a significant digit
       already, and 19 at most with them), so that w, sig and digits come out as the digit by
       digit loop leaves them. Asked once a number: asked at every digit, it cost the NRW
       tile's short fractions 15 %. */
    static inline int gml_eight(const char *p, const char *end, uint64_t *w, int sig) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v;
        if (!*w || sig > 11 || end - p < 8) return 0;
        memcpy(&v, p, 8);
        if (((v + 0x4646464646464646ULL) | (v - 0x3030303030303030ULL)) & 0x8080808080808080ULL)
            return 0;
        v -= 0x3030303030303030ULL;
        v = v * 10 + (v >> 8);
        v = (((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL)
             + (((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
        *w = *w * 100000000ULL + (uint32_t)v;
        return 1;
    #else
        return 0;
    #endif
    }

    /* The token at *at (up to ASCII whitespace or `end`; *at is moved past it). 0: *out is
       its value; 1: it is no decimal number; 2: a number left to CPython's parser (over 19
       significant digits, subnormal, or a product too close to call). */
    static int gml_number(const char **at, const char *end, double *out) {
        const char *p = *at;
        int neg = 0, sig = 0, digits = 0, frac = 0;
        uint64_t w = 0;
        int64_t e = 0, q;
        if (p < end && (*p == '+' || *p == '-')) { neg = *p == '-'; p++; }
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (w || *p != '0') { if (sig < 19) w = w * 10 + (uint64_t)(*p - '0'); sig++; }
            p++; digits++;
        }
        if (p < end && *p == '.') {
            p++;
            if (gml_eight(p, end, &w, sig)) { p += 8; digits += 8; sig += 8; frac += 8; }
            while (p < end && (unsigned)(*p - '0') < 10) {
                if (w || *p != '0') { if (sig < 19) w = w * 10 + (uint64_t)(*p - '0'); sig++; }
                p++; digits++; frac++;
            }
        }
        if (!digits) return 1;
        if (p < end && (*p == 'e' || *p == 'E')) {
            int eneg = 0;
            p++;
            if (p < end && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
            if (p >= end || (unsigned)(*p - '0') >= 10) return 1;
            while (p < end && (unsigned)(*p - '0') < 10) {
                if (e < 100000) e = e * 10 + (*p - '0');
                p++;
            }
            if (eneg) e = -e;
        }
        if (p < end && !gml_blank(*p)) return 1;
        *at = p;
        if (sig > 19) return 2;
        if (w == 0) { *out = neg ? -0.0 : 0.0; return 0; }
        q = e - frac;
        if (q >= -22 && q <= 22 && w <= 9007199254740992ULL) {
            double v = (double)w;
            v = q < 0 ? v / gml_pow10[-q] : v * gml_pow10[q];
            *out = neg ? -v : v;
            return 0;
        }
        if (q < -342 || q > 308) return 2;
        {
            int lz = __builtin_clzll(w);
            int index = 2 * (int)(q + 342), upperbit, shift;
            unsigned __int128 first, second;
            uint64_t hi, lo, mantissa, bits;
            int64_t power2;
            const uint64_t mask = 0xFFFFFFFFFFFFFFFFULL >> 55;  /* 52 mantissa bits + 3 */
            w <<= lz;
            first = (unsigned __int128)w * gml_pow5[index];
            hi = (uint64_t)(first >> 64);
            lo = (uint64_t)first;
            if ((hi & mask) == mask) {
                uint64_t shi;
                second = (unsigned __int128)w * gml_pow5[index + 1];
                shi = (uint64_t)(second >> 64);
                lo += shi;
                if (shi > lo) hi++;
                if (lo == 0xFFFFFFFFFFFFFFFFULL && (q < -27 || q > 55)) return 2;
            }
            upperbit = (int)(hi >> 63);
            shift = upperbit + 64 - 52 - 3;
            mantissa = hi >> shift;
            power2 = ((((152170 + 65536) * (int32_t)q) >> 16) + 63) + upperbit - lz + 1023;
            if (power2 <= 0) return 2;
            if (lo <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1
                    && (mantissa << shift) == hi)
                mantissa &= ~(uint64_t)1;  /* exactly halfway: to even */
            mantissa += mantissa & 1;
            mantissa >>= 1;
            if (mantissa >= ((uint64_t)2 << 52)) { mantissa = (uint64_t)1 << 52; power2++; }
            mantissa &= ~((uint64_t)1 << 52);
            if (power2 >= 0x7FF) return 2;
            bits = mantissa | ((uint64_t)power2 << 52) | ((uint64_t)neg << 63);
            memcpy(out, &bits, sizeof bits);
            return 0;
        }
    }
    """
    unsigned long long gml_pow5[1302]
    bint gml_blank(char c) noexcept nogil
    int gml_number(const char **at, const char *end, double *out) noexcept nogil

cdef bint _powers_ready = False


cdef void _powers() noexcept:
    """gml_pow5: each power of five as fast_float's table holds it (its 128 leading bits; for
    negative powers the reciprocal, rounded up), made once with Python's integers."""
    global _powers_ready
    cdef int i = 0
    for q in range(-342, 309):
        if q < 0:
            power5 = 5 ** -q
            z = power5.bit_length() if power5 & (power5 - 1) else power5.bit_length() - 1
            c = 2 ** (z + 127 if q >= -27 else 2 * z + 128) // power5 + 1
            while c >= 1 << 128:
                c //= 2
        else:
            c = 5 ** q
            c <<= max(0, 128 - c.bit_length())
            c >>= max(0, c.bit_length() - 128)
        gml_pow5[i] = c >> 64
        gml_pow5[i + 1] = c & 0xFFFFFFFFFFFFFFFF
        i += 2
    _powers_ready = True


def parse_numbers(list texts, list blank):
    """Every text's numbers in one float64 array and how many each text has (`blank`: the
    texts without any, ascending), as gml_polygons.parse reads them where all are finite
    numbers; None where any is not, or a text is not ASCII (Arrow reads those). The array
    grows by doubling from an eighth of the text's length, and is copied to its size."""
    if not _powers_ready:
        _powers()
    cdef Py_ssize_t n = len(texts), i, total = 0, count = 0, first, next_blank, b = 0, cap
    for text in texts:
        if type(text) is not str:
            return None
        total += PyUnicode_GET_LENGTH(text)
    cap = max(16, total // 8)
    values = np.empty(cap, dtype=np.float64)
    sizes = np.zeros(n, dtype=np.int64)
    cdef double[::1] out = values
    cdef long long[::1] counts = sizes
    cdef const char *p
    cdef const char *end
    cdef const char *start
    cdef char *stop
    cdef double value
    cdef int done
    next_blank = blank[0] if blank else n
    for i in range(n):
        text = texts[i]
        if i == next_blank:
            b += 1
            next_blank = blank[b] if b < len(blank) else n
            continue
        if not PyUnicode_IS_COMPACT_ASCII(text):
            return None
        p = <const char *>PyUnicode_DATA(text)
        end = p + PyUnicode_GET_LENGTH(text)
        first = count
        while True:
            while p < end and gml_blank(p[0]):  # ASCII whitespace, as Arrow splits on
                p += 1
            if p == end:
                break
            start = p
            done = gml_number(&p, end, &value)
            if done == 1:
                return None
            if done == 2:
                value = PyOS_string_to_double(start, &stop, NULL)
                if stop != p or not (-1.7976931348623157e308 <= value <= 1.7976931348623157e308):
                    return None
            if count == cap:
                cap *= 2
                grown = np.empty(cap, dtype=np.float64)
                grown[:count] = values
                values, out = grown, grown
            out[count] = value
            count += 1
        counts[i] = count - first
    return values[:count].copy(), sizes
