# cython: language_level=3, boundscheck=False, wraparound=False
"""A CityJSON document's vertices lifted out of its bytes before orjson parses it (Cython).

A document's top-level `vertices` are most of its numbers: parsed by orjson they are a list
per vertex and a Python number per coordinate, read once into numpy and freed. `lift` reads
them from the bytes straight into an (n, 3) float64 array and hands back the document with
`LIFTED` where they were, so orjson parses only the rest. Anything this does not read exactly
as orjson and cityjson_values.vertices would (a vertex that is not three JSON numbers, an
integer beyond int64, a number beyond a double, a key written with escapes, a document that
is not one JSON object) leaves the document as it is: `lift` returns None. The scanner knows
JSON strings, so only the top-level member named `vertices` is lifted.
"""

from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcmp, memcpy
from libc.math cimport isfinite
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.ref cimport PyObject

import numpy as np

cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow) except? -1.0

LIFTED = b'"\\u0000citypipe:lifted"'
"""What stands where the vertices were: a string no vertices array is."""

cdef enum:
    LONGEST_NUMBER = 64  # digits and signs a coordinate is read from; longer ones stay JSON


cdef inline Py_ssize_t blank(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
        i += 1
    return i


cdef Py_ssize_t after_string(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the string opened at `i` ends (after its quote); -1 where it does not."""
    i += 1
    while i < n:
        if p[i] == 92:  # a backslash: the next byte is escaped
            i += 2
        elif p[i] == 34:
            return i + 1
        else:
            i += 1
    return -1


cdef Py_ssize_t after_value(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the value at `i` ends; -1 where it does not. Only strings and brackets are
    followed: whether the value is valid JSON is orjson's to say."""
    cdef int depth = 0
    cdef unsigned char c
    if i >= n:
        return -1
    if p[i] == 34:
        return after_string(p, i, n)
    if p[i] != 91 and p[i] != 123:  # a number or a literal: up to its delimiter
        while i < n and not (p[i] == 44 or p[i] == 93 or p[i] == 125 or p[i] <= 32):
            i += 1
        return i
    while i < n:
        c = p[i]
        if c == 34:
            i = after_string(p, i, n)
            if i < 0:
                return -1
            continue
        if c == 91 or c == 123:
            depth += 1
        elif c == 93 or c == 125:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef Py_ssize_t number(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, double *out) except -2:
    """Read the JSON number at `i` into `out` as orjson and cityjson_values would make it a
    float (an integer through int64); where it ends, or -1 where it is none or not such."""
    cdef Py_ssize_t start = i
    cdef bint negative = False, integer = True
    cdef uint64_t value = 0
    cdef unsigned char d
    cdef char text[LONGEST_NUMBER + 1]
    cdef char *end
    if i < n and p[i] == 45:
        negative, i = True, i + 1
    if i >= n or not 48 <= p[i] <= 57:
        return -1
    if p[i] == 48:
        i += 1
    else:
        while i < n and 48 <= p[i] <= 57:
            d = p[i] - 48
            if value > (<uint64_t>1 << 63) // 10:
                return -1
            value = value * 10 + d
            i += 1
        if value > (<uint64_t>1 << 63) - (0 if negative else 1):
            return -1
    if i < n and p[i] == 46:
        integer, i = False, i + 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if i < n and (p[i] == 101 or p[i] == 69):
        integer, i = False, i + 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if integer:
        out[0] = -<double>value if negative and value else <double>value  # "-0" is the int 0
        return i
    if i - start > LONGEST_NUMBER:
        return -1
    memcpy(text, p + start, i - start)
    text[i - start] = 0
    out[0] = PyOS_string_to_double(text, &end, NULL)
    if end != text + (i - start) or not isfinite(out[0]):
        return -1
    return i


cdef Py_ssize_t positions(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, double *xyz,
                          Py_ssize_t *count) except -2:
    """Read the array of [x, y, z] numbers at `i` into `xyz`, their number into `count`;
    where it ends, or -1 where it is not such an array."""
    cdef Py_ssize_t k = 0, c
    i = blank(p, i + 1, n)
    if i < n and p[i] == 93:
        count[0] = 0
        return i + 1
    while True:
        if i >= n or p[i] != 91:
            return -1
        i += 1
        for c in range(3):
            i = number(p, blank(p, i, n), n, xyz + 3 * k + c)
            if i < 0:
                return -1
            i = blank(p, i, n)
            if i >= n or p[i] != (93 if c == 2 else 44):
                return -1
            i += 1
        k += 1
        i = blank(p, i, n)
        if i < n and p[i] == 44:
            i = blank(p, i + 1, n)
        elif i < n and p[i] == 93:
            count[0] = k
            return i + 1
        else:
            return -1


def lift(bytes data):
    """(the document without its top-level vertices, `LIFTED` in their place; the vertices as
    an (n, 3) float64 array), or None where they are not lifted (see the module's docstring)."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = len(data), i, key, end, start = -1, stop = -1, count = 0
    cdef double[:, ::1] xyz
    i = blank(p, 0, n)
    if i >= n or p[i] != 123:
        return None
    i = blank(p, i + 1, n)
    if i < n and p[i] == 125:
        return None
    out = None
    while True:
        if i >= n or p[i] != 34:
            return None
        key = i + 1
        i = after_string(p, i, n)
        if i < 0 or memchr(p + key, 92, i - 1 - key) != NULL:
            return None  # a key with escapes may name the vertices: left to orjson
        end = blank(p, i, n)
        if end >= n or p[end] != 58:
            return None
        end = blank(p, end + 1, n)
        if i - 1 - key == 8 and memcmp(p + key, b"vertices", 8) == 0:
            if start >= 0:
                return None  # orjson keeps the last of two: left to it
            if end < n and p[end] == 91:
                out = np.empty(((n - end) // 7 + 1, 3))
                xyz = out
                stop = positions(p, end, n, &xyz[0, 0], &count)
            if stop < 0:
                return None
            start, i = end, stop
        else:
            i = after_value(p, end, n)
            if i < 0:
                return None
        i = blank(p, i, n)
        if i < n and p[i] == 44:
            i = blank(p, i + 1, n)
        elif i < n and p[i] == 125:
            break
        else:
            return None
    if start < 0:
        return None
    slim = data[:start] + LIFTED + data[stop:]
    return slim, out[:count].copy()
