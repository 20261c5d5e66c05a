# A batch's faces gathered in C (included by gml_walk.pyx): gml_polygons.faces where the records
# use their polygons otherwise than each once in order (a solid's xlinks to its thematic
# surfaces' polygons, turned over by an OrientableSurface), whose numpy path numbers the rings
# and positions in runs (some 20 calls, and the gather) before the positions are copied. Here
# each face's rings are copied in one pass, each ring's positions backwards where its handle is
# turned over (~i, as shapely.reverse turns each ring), and numbered as they are written.


def gather_faces(
    object coords,
    const long long[::1] handles,
    const long long[::1] first,
    const long long[::1] ends,
):
    """The positions of the polygons `handles` names (each polygon's rings from
    `first[polygon]` on, each ring's rows from `ends[ring]` on: `gml_polygons.Arrays`), one
    after another, the ring of each position and the face of each ring, as
    gml_polygons.faces's numpy path makes them; ValueError where a handle names no polygon."""
    cdef const double[:, :] xyz = coords
    cdef Py_ssize_t n = handles.shape[0], polygons = first.shape[0] - 1
    cdef Py_ssize_t f, r, k, rows = 0, rings = 0, at = 0, ring = 0
    cdef Py_ssize_t row
    cdef long long h, p
    for f in range(n):
        h = handles[f]
        p = ~h if h < 0 else h
        if p >= polygons:
            raise ValueError(f"polygon handle {h} of {polygons} polygons")
        rings += first[p + 1] - first[p]
        rows += ends[first[p + 1]] - ends[first[p]]
    out_np = np.empty((rows, 3), dtype=np.float64)
    ring_of_np = np.empty(rows, dtype=np.int64)
    polygon_of_np = np.empty(rings, dtype=np.int64)
    cdef double[:, ::1] out = out_np
    cdef long long[::1] ring_of = ring_of_np, polygon_of = polygon_of_np
    for f in range(n):
        h = handles[f]
        p = ~h if h < 0 else h
        for r in range(first[p], first[p + 1]):
            for k in range(ends[r], ends[r + 1]):
                row = ends[r + 1] - 1 - (k - ends[r]) if h < 0 else k
                out[at, 0], out[at, 1], out[at, 2] = xyz[row, 0], xyz[row, 1], xyz[row, 2]
                ring_of[at] = ring
                at += 1
            polygon_of[ring] = f
            ring += 1
    return out_np, ring_of_np, polygon_of_np
