# cython: language_level=3, boundscheck=False, wraparound=False
"""The CityJSON object walk compiled: orjson's dicts and lists read through the C API (Cython).

A CityJSON batch is thousands of objects, each a few dicts and the nested lists of its
boundaries; the Python walk pays an interpreter step for every member, geometry and list.
`add` does Batch.add's work for the common object (a JSON object whose geometries are
objects, none a GeometryInstance, each geometry's job made by `geometry_job` without
complaint): its LoD picked, its properties gathered, its row appended. `flatten` does
cityjson_geometry._flatten for boundaries that are lists of lists down to integer vertex
indices within int64. `semantic_values` gathers the semantic values and surface types of a
batch's geometries for cityjson_semantics._together (those cityjson_lift lifted from its
arrays: cityjson_passed_read.pxi); `positions` reads vertices that are all
[x, y, z] numbers for cityjson_values.vertices; `close_rings` repairs and closes the rings of
a batch's polygons for cityjson_geometry (cityjson_rings.pxi). At anything else nothing is written
and the Python code reads it, so every unusual case (and its reason for a reject) keeps its
one meaning there. cityjson_values.compiled is this module, or None where it did not build.
"""

from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLong
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy

import numpy as np
import orjson

from citypipe.connectors import value_limit
from citypipe.geo.errors import ConfigurationError

cdef object Row = None, Invalid, Job, POLYGONS, geometry_job, lod_order
"""The Python walk's names, read at the first call (its modules import this one)."""
cdef dict _LOD_KEYS = {}
"""Each LoD value's order, by (type, value): a file has a few."""
cdef tuple _NOT_LOD = (-1,)


cdef names():
    global Row, Invalid, Job, POLYGONS, geometry_job, lod_order
    from citypipe.connectors import cityjson_geometry as g
    from citypipe.connectors import cityjson_objects as o

    Row, lod_order = o._Row, o._lod_key
    Invalid, Job, POLYGONS, geometry_job = g.Invalid, g.Job, g._POLYGONS, g.geometry_job


cdef object job_of(dict g, Py_ssize_t base, Py_ssize_t limit, Lifted lifted):
    """geometry_job of a surface or Solid geometry whose semantics are an object (or absent)
    with a list of values (or none) or lifted (cityjson_lift), its boundaries lifted or
    lists; geometry_job itself for any other (what is lifted read back into lists for it)."""
    cdef object t = g.get("type"), b = g.get("boundaries"), semantics = g.get("semantics")
    cdef object values = None
    cdef SemanticValues lifted_values = None
    cdef Py_ssize_t k, s = placed_row(semantics, "s")
    cdef int skip = -1
    if s >= 0:
        lifted_values = semantic_values_of(lifted, s, t)
        if lifted_values is None:  # not as the walk reads them: as lists
            g["semantics"] = semantics = orjson.loads(semantics_text(lifted, s))
    cdef bint plain = (
        t == "MultiSurface" or t == "CompositeSurface" or t == "Solid"
    ) and (semantics is None or type(semantics) is dict or lifted_values is not None)
    if plain and lifted_values is None and semantics:
        values = (<dict>semantics).get("values")
        plain = values is None or type(values) is list
    if is_placed(b):  # read in place where plain and as deep as its type; else as lists
        k = int((<str>b)[1:])
        depth = lifted.where[k * WHERE + W_DEPTH]
        if plain and depth == 3 and (t == "MultiSurface" or t == "CompositeSurface"):
            skip = 0
        elif plain and depth == 4 and t == "Solid":
            skip = 1
        else:
            g["boundaries"] = b = orjson.loads(boundaries_text(lifted, k))
    if not plain or (skip < 0 and type(b) is not list):
        if lifted_values is not None:
            g["semantics"] = orjson.loads(semantics_text(lifted, s))
        return geometry_job(g, base, limit)
    if t == "Solid":
        if skip < 0:
            b = (<list>b)[0] if b else []
        if lifted_values is None:
            values = (<list>values)[0] if values else None
    if skip >= 0:
        b = flat(lifted, k, skip)
    if lifted_values is not None:  # Job's fields in order, without its Python-level __new__
        return tuple.__new__(Job, (POLYGONS, b, base, limit, lifted_values, None))
    return tuple.__new__(Job, (POLYGONS, b, base, limit, values, semantics if values else None))


cdef inline bint is_placed(object b):
    """Whether `b` is a placeholder of cityjson_lift's boundaries (a string no document lifted
    holds: "\\x00" and a row)."""
    return type(b) is str and len(<str>b) > 1 and (<str>b)[0] == "\x00"


cdef placed(dict obj, Lifted lifted, bint as_lists):
    """What was lifted of `obj`'s geometries put back: as lists (for the Python walk) or as
    the JSON text they were (orjson.Fragment, which its record is written with)."""
    cdef object raw = obj.get("geometry"), g, b
    cdef Py_ssize_t k
    if type(raw) is not list:
        return
    for g in <list>raw:
        if type(g) is not dict:
            continue
        if is_placed(b := (<dict>g).get("boundaries")):
            text = boundaries_text(lifted, int((<str>b)[1:]))
            (<dict>g)["boundaries"] = orjson.loads(text) if as_lists else Fragment(text)
        k = placed_row((<dict>g).get("semantics"), "s")
        if k >= 0:
            text = semantics_text(lifted, k)
            (<dict>g)["semantics"] = orjson.loads(text) if as_lists else Fragment(text)
        for name in ("material", "texture"):
            k = placed_row((<dict>g).get(name), "p")
            if k >= 0:
                text = passed_text(lifted, k)
                (<dict>g)[name] = orjson.loads(text) if as_lists else Fragment(text)


include "cityjson_boundaries.pxi"
include "cityjson_rings.pxi"


cdef class Lifted:
    """cityjson_lift.Boundaries read through pointers, once per batch."""

    cdef object boundaries  # owns the arrays the pointers are into
    cdef const int64_t *levels[DEEPEST]
    cdef const int64_t *idx
    cdef const int64_t *where
    cdef const int64_t *semantics  # its `passed` (cityjson_lift.Passed)
    cdef const int64_t *members
    cdef const int64_t *values
    cdef const int64_t *codes
    cdef const int64_t *spans  # where each material or texture's text starts, ends, its longest
    cdef list names
    cdef bytes data
    cdef dict lods  # each LoD's JSON text
    cdef Py_ssize_t limit  # the longest text the properties keep whole (value_limit)

    def __init__(self, boundaries):
        self.boundaries, self.data = boundaries, boundaries.data
        for j in range(DEEPEST):
            self.levels[j] = pointer(boundaries.levels[j])
        self.idx = pointer(boundaries.idx)
        self.where = pointer(boundaries.where.reshape(-1))
        passed = boundaries.passed
        self.semantics = pointer(passed.semantics.reshape(-1))
        self.members = pointer(passed.members.reshape(-1))
        self.values, self.codes = pointer(passed.values), pointer(passed.codes)
        self.spans = pointer(passed.texts.reshape(-1))
        self.names, self.lods = passed.names, {}
        try:
            self.limit = value_limit.max_value_bytes()
        except ConfigurationError:  # the properties say so: nothing handed on as text
            self.limit = -1


include "cityjson_passed_read.pxi"


cdef const int64_t *pointer(const int64_t[::1] a):
    """Where the array `a` (which its owner keeps) starts; NULL where it is empty."""
    return &a[0] if a.shape[0] else NULL


cdef class Flat:
    """The surfaces of lifted boundaries as a polygon job's parts: the whole of boundaries k
    (`skip` 0) or of their first element, a Solid's outer shell (`skip` 1): where its lists of
    each nesting level and its indices are, and how many (none empty: lifted boundaries reach
    an index through their first elements)."""

    cdef Lifted lifted
    cdef const int64_t *levels[3]
    cdef const int64_t *idx
    cdef Py_ssize_t start[4]
    cdef Py_ssize_t count[4]


cdef Flat flat(Lifted lifted, Py_ssize_t k, int skip):
    cdef Flat f = Flat.__new__(Flat)
    cdef const int64_t *where = lifted.where + k * WHERE
    cdef Py_ssize_t j, i, total = 1
    f.lifted = lifted
    for j in range(3):
        f.levels[j] = lifted.levels[j + skip]
        f.start[j], f.count[j] = where[W_LEVELS + j + skip], total
        total = 0
        for i in range(f.start[j], f.start[j] + f.count[j]):
            total += f.levels[j][i]
    f.idx = lifted.idx
    f.start[3], f.count[3] = where[W_IDX], total  # the first element's come first
    return f


cdef tuple lod_key(object lod):
    """cityjson_objects._lod_key, cached in a dict (its lru_cache is the Python path's)."""
    cdef object key = (type(lod), lod)
    cdef object order
    try:
        order = _LOD_KEYS.get(key)
    except TypeError:  # unhashable: a list, an object
        return _NOT_LOD
    if order is None:
        order = lod_order(lod)
        _LOD_KEYS[key] = order
    return <tuple>order


cdef dict _MEMBER_NAMES = {}
"""Each CityObject member's property name ("cityjson:" and its own), by member: a file has a
few, every object most of them."""


cdef object member_name(object name):
    cdef object out = _MEMBER_NAMES.get(name)
    if out is None:
        out = f"cityjson:{name}"
        if len(_MEMBER_NAMES) < 1024:  # an extension's members may be many: a bounded cache
            _MEMBER_NAMES[name] = out
    return out


cdef bint rich(list surfaces):
    """cityjson_objects._rich: whether a semantic surface says more than its type."""
    cdef object s
    for s in surfaces:
        if type(s) is dict and len(<dict>s) > 1:
            return True
    return False


cdef dict properties(dict obj, list geoms, list lods, Lifted lifted):
    """cityjson_objects._properties of an object whose geometries (`geoms`) are all objects;
    what was lifted of their looks and rich semantics handed on as its text (orjson.Fragment:
    `appearance_look`, `semantic_look`)."""
    cdef object attrs = obj.get("attributes")
    cdef dict props = dict(<dict>attrs) if isinstance(attrs, dict) else {}
    cdef Py_ssize_t pos = 0, i, k, n = len(geoms)
    cdef PyObject *key
    cdef PyObject *value
    cdef dict g, look
    cdef object s, surfaces, lod
    cdef list looks, semantic
    if attrs is not None and not isinstance(attrs, dict):
        props["cityjson:attributes"] = attrs
    while PyDict_Next(obj, &pos, &key, &value):
        name = <object>key
        if name == "type" or name == "attributes" or name == "geometry":
            continue
        props[name if name == "address" else member_name(name)] = <object>value
    if not n:
        return props
    props["cityjson:lods"] = lods
    looks, semantic = [], []
    for i in range(n):
        g, lod = <dict>geoms[i], lods[i]
        if "material" in g or "texture" in g:
            looks.append(appearance_look(g, lod, lifted))
        s = g.get("semantics")
        k = -1 if lifted is None else placed_row(s, "s")
        if k >= 0:
            if rich_semantics(lifted, k):
                semantic.append(semantic_look(lifted, k, lod))
        elif isinstance(s, dict):
            surfaces = (<dict>s).get("surfaces")
            if type(surfaces) is list and rich(<list>surfaces):
                look = {"lod": lod}
                look.update(<dict>s)
                semantic.append(look)
    if looks:
        props["cityjson:appearance"] = looks
    if semantic:
        props["cityjson:semantics"] = semantic
    return props


def add(batch, object items, Py_ssize_t base, object vertices):
    """Batch.add of each (key, CityObject) of `items`, whose geometries index `vertices`, which
    start at `base` in the batch's pool: read here, or by Batch.add where this cannot (its
    lifted boundaries, `batch.lifted`, put back as lists first)."""
    cdef Py_ssize_t limit = len(vertices)
    cdef list rows = batch.rows
    cdef Lifted lifted = None if batch.lifted is None else Lifted(batch.lifted)
    if Row is None:
        names()
    for key, obj in items:
        if not one(rows, key, obj, base, limit, lifted):
            if lifted is not None and type(obj) is dict:
                placed(<dict>obj, lifted, True)
            batch.add(key, obj, base, vertices)


cdef bint one(
    list rows, object key, object obj, Py_ssize_t base, Py_ssize_t limit, Lifted lifted
) except -1:
    """Append the row of `obj` (a CityObject whose geometries index `limit` vertices from
    `base`, some boundaries maybe `lifted`); False, with nothing appended, where the Python
    walk must read it."""
    if type(obj) is not dict:
        return False
    cdef dict o = <dict>obj
    cdef object raw = o.get("geometry")
    cdef list geoms
    cdef Py_ssize_t i, n, best_at = -1, lod0_at = -1
    cdef tuple order, best_order = None
    cdef object g, lod, job = None, footprint = None, attrs
    cdef list lods
    cdef dict props
    if not raw:
        geoms = []
    elif type(raw) is list:
        geoms = <list>raw
    else:
        return False
    n = PyList_GET_SIZE(geoms)
    lods = [None] * n
    for i in range(n):
        g = <object>PyList_GET_ITEM(geoms, i)
        if type(g) is not dict or (<dict>g).get("type") == "GeometryInstance":
            return False
        lod = (<dict>g).get("lod")
        order = lod_key(lod)
        if best_order is None or order > best_order:
            best_order, best_at = order, i
        if lod0_at < 0 and order[0] == 0:
            lod0_at = i
        lods[i] = None if lod is None else str(lod)
    try:
        if best_at >= 0:
            job = job_of(<dict>geoms[best_at], base, limit, lifted)
        if lod0_at == best_at:
            footprint = job
        elif lod0_at >= 0:
            footprint = job_of(<dict>geoms[lod0_at], base, limit, lifted)
    except Invalid:
        return False  # the Python walk rejects it, with its reason
    props = properties(o, geoms, lods, lifted)
    attrs = o.get("attributes")
    if not isinstance(attrs, dict):
        attrs = {}
    rows.append(
        tuple.__new__(  # Row's fields in order, without its Python-level __new__
            Row,
            (
                key,
                {key: obj},
                o.get("type"),
                props,
                None,
                None if best_at < 0 else lods[best_at],
                (<dict>attrs).get("name"),
                (<dict>attrs).get("measuredHeight"),
                job,
                footprint,
            ),
        )
    )
    return True


include "cityjson_lists.pxi"
