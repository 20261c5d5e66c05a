# Included by cityjson_walk.pyx: orjson's nested lists read into numpy arrays in one pass each,
# `flatten` a batch's boundaries (counts per nesting level and flat vertex indices), `positions`
# a document's vertices; None where anything is not as that needs, for the Python code to read.


cdef enum:
    MAX_DEPTH = 3  # surface, ring, vertex


cdef int count(object parts, int level, int depth, Py_ssize_t *sizes) except -2:
    """Count the list `parts` at nesting `level` and what is below it in `sizes` (lists per
    level, vertex indices last); -1 where a list is not a list or an index not an int."""
    cdef Py_ssize_t i, n
    cdef Flat flat
    if type(parts) is Flat:
        if depth != 3:
            return -1
        flat = <Flat>parts
        for i in range(depth + 1):
            sizes[i] += flat.count[i]
        return 0
    if type(parts) is not list:
        return -1
    n = PyList_GET_SIZE(parts)
    sizes[level] += 1
    if level == depth - 1:
        for i in range(n):
            if type(<object>PyList_GET_ITEM(parts, i)) is not int:
                return -1
        sizes[depth] += n
        return 0
    for i in range(n):
        if count(<object>PyList_GET_ITEM(parts, i), level + 1, depth, sizes) < 0:
            return -1
    return 0


cdef int fill(object parts, int level, int depth, int64_t **out) except -2:
    """Write the length of `parts` (at nesting `level`) and of every list below it, each at
    `out[level]`, and the vertex indices at `out[depth]`, moving them on; -1 where an index
    is beyond int64."""
    cdef Py_ssize_t i, n
    cdef int64_t *idx
    cdef Flat flat
    if type(parts) is Flat:
        flat = <Flat>parts
        for i in range(depth):
            memcpy(out[i], flat.levels[i] + flat.start[i], flat.count[i] * sizeof(int64_t))
            out[i] += flat.count[i]
        if out[depth] != NULL:  # NULL: the indices are the lifted ones as they are
            memcpy(out[depth], flat.idx + flat.start[3], flat.count[3] * sizeof(int64_t))
            out[depth] += flat.count[3]
        return 0
    n = PyList_GET_SIZE(parts)
    out[level][0] = n
    out[level] += 1
    if level < depth - 1:
        for i in range(n):
            if fill(<object>PyList_GET_ITEM(parts, i), level + 1, depth, out) < 0:
                return -1
        return 0
    idx = out[depth]
    for i in range(n):
        try:
            idx[i] = PyLong_AsLongLong(<object>PyList_GET_ITEM(parts, i))
        except OverflowError:
            return -1
    out[depth] += n
    return 0


cdef Py_ssize_t lifted_run(list parts) noexcept:
    """Where the vertex indices of `parts` start among those lifted, where every part is
    lifted (`Flat`, of one document) and each one's follow the last one's there (a document's
    objects with a geometry each, a single shell each: Delft's, Den Haag's); else -1."""
    cdef Py_ssize_t start = -1, end = -1
    cdef Flat flat, first = None
    for p in parts:
        if type(p) is not Flat:
            return -1
        flat = <Flat>p
        if first is None:
            first, start, end = flat, flat.start[3], flat.start[3]
        if flat.lifted is not first.lifted or flat.start[3] != end:
            return -1
        end += flat.count[3]
    return start


def flatten(list jobs, int depth):
    """cityjson_geometry._flatten's counts per nesting level and flat vertex indices of the
    jobs' parts, lists `depth` (at most 3) deep or surfaces lifted (`Flat`); None where
    anything is not as that needs. Where the parts' indices are one run of the lifted ones
    (`lifted_run`), they are handed on as that run of the lifted array, not copied (Delft's
    108,813: 0.85 MB of fresh memory written)."""
    cdef Py_ssize_t sizes[MAX_DEPTH + 1]
    cdef int64_t *out[MAX_DEPTH + 1]
    cdef int64_t[::1] view
    cdef list parts = [job.parts for job in jobs]
    cdef object p, idx = None
    cdef int k
    cdef Py_ssize_t run
    if not 0 < depth <= MAX_DEPTH:
        raise ValueError(f"boundaries {depth} lists deep")
    for k in range(depth + 1):
        sizes[k] = 0
    for p in parts:
        if count(p, 0, depth, sizes) < 0:
            return None
    run = lifted_run(parts)
    if run >= 0:
        idx = (<Flat>parts[0]).lifted.boundaries.idx[run : run + sizes[depth]]
    cdef list counts = [np.empty(sizes[k], np.int64) for k in range(depth)]
    counts.append(np.empty(sizes[depth], np.int64) if idx is None else idx)
    for k in range(depth + 1):
        view = counts[k]
        out[k] = &view[0] if sizes[k] and (k < depth or idx is None) else NULL
    for p in parts:
        if fill(p, 0, depth, out) < 0:
            return None
    return counts[:depth], counts[depth]


def positions(list raw):
    """cityjson_values.vertices' float array of `raw`, where every vertex is a list of three
    ints or floats (int64 ints: beyond them Python's conversion may differ); None otherwise."""
    cdef Py_ssize_t n = PyList_GET_SIZE(raw), i, k
    cdef object v, x
    out = np.empty((n, 3))
    cdef double[:, ::1] xyz = out
    for i in range(n):
        v = <object>PyList_GET_ITEM(raw, i)
        if type(v) is not list or PyList_GET_SIZE(v) != 3:
            return None
        for k in range(3):
            x = <object>PyList_GET_ITEM(v, k)
            if type(x) is float:
                xyz[i, k] = PyFloat_AS_DOUBLE(x)
            elif type(x) is int:
                try:
                    xyz[i, k] = <double>PyLong_AsLongLong(x)
                except OverflowError:
                    return None
            else:
                return None
    return out
