# gml_xlinks.Xlinks.resolve's loop in C (included by gml_walk.pyx): a solid's surfaceMembers are
# mostly xlinks to one polygon each (NRW's tile: 2,401), each resolved with a dict look-up.
# The rest (a chain of xlinks, a surface of several polygons, a dangling one) and the budget
# are Xlinks' own (`_follow`, `_charge`), called as its Python loop calls them.


def resolve(xlinks, list refs) -> tuple:
    """Xlinks.resolve(refs): polygon handles for `refs`, and the ids defined nowhere read so
    far; XlinkBudgetError past the budget."""
    cdef list out = [], missing = []
    cdef dict ids = xlinks._ids
    cdef list sizes = xlinks._sizes
    cdef Py_ssize_t polygons = 0, chars = 0, h
    cdef bint reverse
    cdef str key
    for r in refs:
        if isinstance(r, int):
            out.append(r)
            continue
        reverse = (<str>r).startswith("-")
        key = (<str>r)[1:] if reverse else <str>r
        target = ids.get(key)
        if target is not None:
            found = (<tuple>target)[1]
            if len(found) == 1 and isinstance(found[0], int):  # a polygon: the common case
                h = found[0]
                out.append(~h if reverse else h)
                polygons += 1
                chars += <Py_ssize_t>sizes[~h if h < 0 else h]
                continue
        xlinks._follow(key, reverse, frozenset(), out, missing)
    if polygons:
        xlinks._charge(polygons, chars)
    return out, missing
