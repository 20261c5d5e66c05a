# A batch's polygon handles flattened in C (included by gml_walk.pyx): each record's lists of
# handles (its polygons, its thematic surfaces') made into the int64 arrays the batch is built
# from in one pass, where numpy's fromiter over map and chain iterators took a step of the
# interpreter's iterator protocol per list and per handle (Melbourne's 256 records: 24 us a
# list of lists, 82 us for the surfaces' handles and types).

from cpython.list cimport PyList_GET_ITEM


def flattened(list lists):
    """The length of each of `lists` (lists of ints) and their ints one after another, as int64
    arrays: what np.fromiter(map(len, lists)) and np.fromiter(chain.from_iterable(lists)) make;
    TypeError where one is not a list."""
    cdef Py_ssize_t n = PyList_GET_SIZE(lists), k, i, total = 0, at = 0
    cdef list items
    counts_np = np.empty(n, dtype=np.int64)
    cdef long long[::1] counts = counts_np
    for k in range(n):
        items = <list?>lists[k]
        counts[k] = PyList_GET_SIZE(items)
        total += counts[k]
    flat_np = np.empty(total, dtype=np.int64)
    cdef long long[::1] flat = flat_np
    for k in range(n):
        items = <list>lists[k]
        for i in range(min(PyList_GET_SIZE(items), total - at)):  # as counted, at most
            flat[at] = <object>PyList_GET_ITEM(items, i)
            at += 1
    return counts_np, flat_np


def surface_handles(list records):
    """citygml_records._SurfaceHandles.of's arrays: the polygon handles of every record's
    thematic surfaces (`surface_handles`: (type, handles) pairs) one after another, the type of
    each handle's surface, and where each record's handles start (and the last one's end);
    TypeError where a pair is not a tuple of a type and a list."""
    cdef Py_ssize_t n = PyList_GET_SIZE(records), k, i, total = 0, at = 0
    cdef list pairs, handles_of
    cdef tuple pair
    starts_np = np.empty(n + 1, dtype=np.int64)
    cdef long long[::1] starts = starts_np
    for k in range(n):
        starts[k] = total
        for pair in <list?>(records[k].surface_handles):
            total += PyList_GET_SIZE(<list?>pair[1])
    starts[n] = total
    handles_np = np.empty(total, dtype=np.int64)
    kinds_np = np.empty(total, dtype=object)
    cdef long long[::1] handles = handles_np
    cdef object[::1] kinds = kinds_np
    for k in range(n):
        for pair in <list?>(records[k].surface_handles):
            kind, handles_of = pair[0], <list?>pair[1]
            for i in range(min(PyList_GET_SIZE(handles_of), total - at)):  # as counted
                handles[at] = <object>PyList_GET_ITEM(handles_of, i)
                kinds[at] = kind
                at += 1
    if at != total:
        raise ValueError("a record's surfaces changed while they were flattened")
    return handles_np, kinds_np, starts_np
