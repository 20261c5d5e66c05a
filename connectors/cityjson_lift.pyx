# cython: language_level=3, boundscheck=False, wraparound=False
"""A CityJSON document's numbers lifted out of its bytes before orjson parses it (Cython).

A document's top-level `vertices` and its geometries' `boundaries` are nearly all of its
bytes: parsed by orjson they are a list per vertex, ring and surface and a Python number per
coordinate and index, walked once into numpy and freed. `lift` reads them from the bytes
straight into arrays: the vertices into an (n, 3) float64 array, each
CityObjects/*/geometry[*]/boundaries that is lists of integers nested alike into `Boundaries`
(a list's length per nesting level, the vertex indices, flat), and hands back the document
with a placeholder where each was, so orjson parses only the rest; top-level members the
reader never reads (a document's appearance) are checked as JSON and left out of the parse
the same way (`checked`: where it cannot tell, orjson parses them); a geometry's semantics,
material and texture, which the reader hands on as they are, are left out where their text
is what orjson would write of them, a semantics' values and surface types read into arrays
(cityjson_passed.pxi: `Passed`). The scanner knows JSON strings and follows the path, so a
member so named anywhere else (in attributes, say) stays.
Anything this does not read exactly as orjson would (a vertex that is not three JSON numbers,
an integer beyond int64 or written -0, a number beyond a double, lists nested unevenly or
whose depth their first element does not show, a key written with escapes on the path) stays
in the document as it is: that value (or, for such a key or a document that holds the
placeholders' "\\u0000", the whole document: `lift` returns None) is orjson's, so every
case keeps its one meaning and its reason for a reject.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy
from libc.math cimport isfinite
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject
from cython.view cimport array as cyarray

import numpy as np

cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow) except? -1.0

include "cityjson_boundaries.pxi"


include "json_text.pxi"


cdef enum:
    OBJECTS, CITYOBJECT, GEOMETRIES, GEOMETRY  # what `Scan.walk` walks


cdef struct Vec:
    int64_t *data
    Py_ssize_t n, cap


cdef inline int push(Vec *v, int64_t x) except -1:
    cdef int64_t *grown
    if v.n == v.cap:
        grown = <int64_t *>realloc(v.data, (2 * v.cap + 4096) * sizeof(int64_t))
        if grown == NULL:
            raise MemoryError()
        v.data, v.cap = grown, 2 * v.cap + 4096
    v.data[v.n] = x
    v.n += 1
    return 0


cdef inline int push_row(Vec *v, const int64_t *row, Py_ssize_t size) except -1:
    """Push the `size` values of `row`."""
    for k in range(size):
        push(v, row[k])
    return 0


cdef object array(Vec *v):
    """The vector as an int64 array that owns the vector's memory, cut to its length (the
    vector left empty): not copied into a fresh array (a document's indices and counts,
    Delft's 1.5 MB, written once)."""
    cdef int64_t *data = v.data
    cdef int64_t *cut
    cdef Py_ssize_t n = v.n
    cdef cyarray owner
    v.data, v.n, v.cap = NULL, 0, 0
    if n == 0:
        free(data)
        return np.zeros(0, np.int64)
    cut = <int64_t *>realloc(data, n * sizeof(int64_t))
    if cut != NULL:  # else the longer block, as it is
        data = cut
    try:
        owner = <int64_t[:n]>data
    except BaseException:
        free(data)
        raise
    owner.callback_free_data = free
    return np.asarray(owner)


include "cityjson_numbers.pxi"
include "cityjson_passed.pxi"


cdef enum:
    BOUNDARIES, SEMANTICS, TEXT, VERTICES, UNREAD  # what a placeholder stands for
    PLACED = 4  # columns of a row of Scan.placed: start, end, what, its row among those


cdef Py_ssize_t placeholder(char *out, int what, Py_ssize_t row) noexcept:
    """Write the JSON text of a placeholder at `out` (where not NULL); its length. Boundaries,
    semantics, a material or texture: a string, "\\x00", its kind ("s", "p"; none for
    boundaries) and its row, which no document lifted holds; the vertices "\\x00vertices";
    a member never read null."""
    cdef Py_ssize_t size, k = row
    if what == VERTICES or what == UNREAD:
        size = 16 if what == VERTICES else 4
        if out != NULL:
            memcpy(out, b'"\\u0000vertices"' if what == VERTICES else b"null", size)
        return size
    size = 9 if what == BOUNDARIES else 10  # the quotes, \\u0000, the kind, one digit
    while k >= 10:
        size, k = size + 1, k // 10
    if out == NULL:
        return size
    memcpy(out, b'"\\u0000', 7)
    if what != BOUNDARIES:
        out[7] = 115 if what == SEMANTICS else 112  # s, p
    out[size - 1] = 34
    k = size - 2
    while True:  # the row's digits, from the last
        out[k] = 48 + row % 10
        row //= 10
        k -= 1
        if row == 0:
            return size


cdef bytes slim(bytes data, Vec *placed):
    """`data` with a placeholder where each value lifted or left out was (`placed`, in order)."""
    cdef const char *p = PyBytes_AS_STRING(data)
    cdef Py_ssize_t size = len(data), k, at = 0
    cdef int64_t *w
    for k in range(placed.n // PLACED):
        w = placed.data + k * PLACED
        size += placeholder(NULL, w[2], w[3]) - (w[1] - w[0])
    out = PyBytes_FromStringAndSize(NULL, size)
    cdef char *q = PyBytes_AS_STRING(out)
    for k in range(placed.n // PLACED):
        w = placed.data + k * PLACED
        memcpy(q, p + at, w[0] - at)
        q += w[0] - at
        q += placeholder(q, w[2], w[3])
        at = w[1]
    memcpy(q, p + at, len(data) - at)
    return out


@cython.final
cdef class Scan:
    """The document's bytes and what is lifted from them so far."""

    cdef const unsigned char *p
    cdef Py_ssize_t n
    cdef Vec levels[DEEPEST]
    cdef Vec idx, where
    cdef Passing passing
    cdef Vec placed  # the placeholders of the values lifted, in document order
    cdef bint spaced
    cdef Py_ssize_t objects  # the members of CityObjects: an id given twice is one parsed

    def __dealloc__(self):
        for k in range(DEEPEST):
            free(self.levels[k].data)
        free(self.idx.data)
        free(self.where.data)
        free(self.placed.data)
        free_passing(&self.passing)

    cdef Py_ssize_t place(self, Py_ssize_t i, Py_ssize_t end, int what, Py_ssize_t row) except -2:
        """A placeholder for the value lifted from `i` to `end`; where it ends."""
        cdef int64_t columns[PLACED]
        columns[:] = [i, end, what, row]
        push_row(&self.placed, columns, PLACED)
        return end

    cdef Py_ssize_t blank(self, Py_ssize_t i) noexcept:
        cdef Py_ssize_t j = blank(self.p, i, self.n)
        if j != i:
            self.spaced = True
        return j

    cdef Py_ssize_t nested(self, Py_ssize_t i, int level, int depth) except -2:
        """Read the list at `i` (nesting `level` of `depth`) into the vectors; where it ends, or
        -1 where it is not lists of integers nested `depth` deep."""
        cdef Py_ssize_t at = self.levels[level].n, count = 0
        cdef const unsigned char *p = self.p
        push(&self.levels[level], 0)
        i = self.blank(i + 1)
        if i < self.n and p[i] == 93:
            return i + 1
        while i < self.n:
            if level < depth - 1:
                if p[i] != 91:
                    return -1
                i = self.nested(i, level + 1, depth)
            else:
                i = index(p, i, self.n, &self.idx)
            if i < 0:
                return -1
            count += 1
            i = self.blank(i)
            if i < self.n and p[i] == 44:
                i = self.blank(i + 1)
            elif i < self.n and p[i] == 93:
                self.levels[level].data[at] = count
                return i + 1
            else:
                return -1
        return -1

    cdef Py_ssize_t boundaries(self, Py_ssize_t i) except -2:
        """Lift the boundaries at `i` (a list) where they read as `nested` needs; where they end."""
        cdef int depth = 0, k
        cdef Py_ssize_t j = i, end
        cdef Py_ssize_t marks[DEEPEST]
        while j < self.n and self.p[j] == 91 and depth < DEEPEST + 1:
            depth += 1
            j = blank(self.p, j + 1, self.n)
        if depth > DEEPEST or j >= self.n or self.p[j] == 93:
            return after_value(self.p, i, self.n)  # too deep, or its depth not shown
        for k in range(DEEPEST):
            marks[k] = self.levels[k].n
        j, self.spaced = self.idx.n, False
        end = self.nested(i, 0, depth)
        if end < 0:  # as it was: orjson's
            for k in range(DEEPEST):
                self.levels[k].n = marks[k]
            self.idx.n = j
            return after_value(self.p, i, self.n)
        # a row of where, its columns in order: W_DEPTH, W_LEVELS.., W_IDX, W_START, W_END, W_SPACED
        cdef int64_t row[WHERE]
        row[:] = [depth, marks[0], marks[1], marks[2], marks[3], marks[4], j, i, end, self.spaced]
        push_row(&self.where, row, WHERE)
        return self.place(i, end, BOUNDARIES, self.where.n // WHERE - 1)

    cdef Py_ssize_t walk(self, Py_ssize_t i, int kind) except -2:
        """Walk the container at `i` (`kind`: the CityObjects object, a CityObject, its geometry
        array, a geometry), each member's value handed to `value`; where it ends, or -1 where
        it is not one this can follow (a key with escapes in a CityObject or a geometry)."""
        cdef const unsigned char *p = self.p
        cdef Py_ssize_t key = 0, size = 0
        cdef bint in_array = kind == GEOMETRIES
        cdef unsigned char close = 93 if in_array else 125
        cdef int done
        i = blank(p, i + 1, self.n)
        if i < self.n and p[i] == close:
            return i + 1
        while i < self.n and (in_array or p[i] == 34):
            if not in_array:
                key = i + 1
                i = after_string(p, i, self.n)  # an object's id, whatever it is
                if i >= 0 and kind != OBJECTS and memchr(p + key, 92, i - 1 - key) != NULL:
                    return -1
                size = i - 1 - key
                if i >= 0:
                    i = member_value(p, i, self.n)
                if i < 0:
                    return -1
            i = self.value(i, kind, p + key, size)
            if i < 0:
                return -1
            self.objects += kind == OBJECTS
            done = after_member(p, &i, self.n, close)
            if done != NEXT:
                return i if done == CLOSED else -1
        return -1

    cdef inline Py_ssize_t value(
        self, Py_ssize_t i, int kind, const unsigned char *key, Py_ssize_t size
    ) except -2:
        """Walk the value at `i` of a member of a container of `kind` (its `key`, `size` bytes,
        in an object): what holds boundaries walked into, the boundaries lifted, the rest
        passed over; where it ends, or -1."""
        cdef unsigned char c = self.p[i]
        cdef Py_ssize_t end
        if c == 123 and kind == OBJECTS:
            return self.walk(i, CITYOBJECT)
        if c == 91 and kind == CITYOBJECT and size == 8 and memcmp(key, b"geometry", 8) == 0:
            return self.walk(i, GEOMETRIES)
        if c == 123 and kind == GEOMETRIES:
            return self.walk(i, GEOMETRY)
        if c == 91 and kind == GEOMETRY and size == 10 and memcmp(key, b"boundaries", 10) == 0:
            return self.boundaries(i)
        if c == 123 and kind == GEOMETRY:
            if size == 9 and memcmp(key, b"semantics", 9) == 0:
                end = lift_semantics(&self.passing, self.p, i, self.n)
                if end >= 0:
                    return self.place(i, end, SEMANTICS, self.passing.semantics.n // SEM - 1)
            elif (size == 8 and memcmp(key, b"material", 8) == 0) or (
                size == 7 and memcmp(key, b"texture", 7) == 0
            ):
                end = lift_text(&self.passing, self.p, i, self.n)
                if end >= 0:
                    return self.place(i, end, TEXT, self.passing.texts.n // 3 - 1)
        return after_value(self.p, i, self.n)


include "cityjson_checked.pxi"


class Boundaries:
    """The geometries' boundaries lifted from a document: `levels[k]` the length of each list
    at nesting k, of all of them in order, `idx` their vertex indices; row k of `where` is
    the k-th placeholder's: its depth, where its lists start in each of `levels`, where its
    indices start in `idx`, where its text starts and ends in `data` (the document's bytes),
    whether it holds blanks; `objects` how many members CityObjects has in the bytes (more
    than orjson keeps where an id is given twice); `passed` their semantics, materials and
    textures lifted."""

    def __init__(self, list levels, idx, where, Py_ssize_t objects, passed, bytes data):
        self.levels, self.idx, self.where = levels, idx, where
        self.objects, self.passed, self.data = objects, passed, data


def lift(bytes data, tuple read=None, tuple found=()):
    """(the document with placeholders where its numbers were lifted, its vertices as an (n, 3)
    float64 array or None where they stay, its `Boundaries` or None where none are, and where
    the values of its top-level members named in `found` (bytes) are in `data`: {name: (start,
    end)}, the last of a name given twice, as orjson keeps it), or None where nothing is
    lifted (see the module's docstring). Placeholders are strings: "\\x00" and the row of
    `where`. A top-level member not named in `read` (bytes; None: every member is read) is
    checked as JSON orjson parses (`checked`) and, where it is, left out of the parse as
    null: what the reader never reads is not made into objects."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = len(data), i, key, end, size, stop, count = 0, k, rows
    cdef int done
    cdef int64_t *w
    cdef double[:, ::1] xyz
    cdef Scan scan = Scan()
    cdef bint seen = False
    if holds_nul_escape(p, n):
        return None
    scan.p, scan.n = p, n
    i = blank(p, 0, n)
    if i >= n or p[i] != 123:
        return None
    i = blank(p, i + 1, n)
    out, spans = None, {}
    while i < n and p[i] == 34:
        key = i + 1
        i = after_string(p, i, n)
        if i < 0 or memchr(p + key, 92, i - 1 - key) != NULL:
            return None  # a key with escapes may name what is lifted: left to orjson
        end = member_value(p, i, n)
        if end < 0:
            return None
        size = i - 1 - key
        if size == 8 and memcmp(p + key, b"vertices", 8) == 0:
            if seen:
                return None  # orjson keeps the last of two: left to it
            seen, stop = True, -1
            if p[end] == 91:
                out = np.empty(((n - end) // 7 + 1, 3))
                xyz = out
                stop = positions(p, end, n, &xyz[0, 0], &count)
                xyz = None  # the view released: `out` is shrunk in place to its vertices
            if stop < 0:  # orjson's
                out, i = None, after_value(p, end, n)
            else:
                i = scan.place(end, stop, VERTICES, 0)
                out.resize((count, 3), refcheck=False)
        elif p[end] == 123 and size == 11 and memcmp(p + key, b"CityObjects", 11) == 0:
            scan.objects = 0  # orjson keeps the last of two
            i = scan.walk(end, OBJECTS)
        elif read is not None and data[key : key + size] not in read:
            i = checked(p, end, n)
            if i >= 0:
                scan.place(end, i, UNREAD, 0)
            else:
                i = after_value(p, end, n)
        else:
            i = after_value(p, end, n)
        if i < 0:
            return None
        if found and data[key : key + size] in found:
            spans[data[key : key + size]] = (end, i)
        done = after_member(p, &i, n, 125)
        if done == CLOSED:
            break
        if done == BROKEN:
            return None
    if not scan.placed.n:
        return None
    if not scan.where.n and not scan.passing.semantics.n and not scan.passing.texts.n:
        return slim(data, &scan.placed), out, None, spans
    lifted = Boundaries(
        [array(&scan.levels[k]) for k in range(DEEPEST)],
        array(&scan.idx),
        array(&scan.where).reshape(-1, WHERE),
        scan.objects,
        passed(&scan.passing, data),
        data,
    )
    return slim(data, &scan.placed), out, lifted, spans
