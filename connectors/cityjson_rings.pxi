# The rings of a batch's polygon jobs gathered, repaired and closed in one pass (included by
# cityjson_walk.pyx). cityjson_geometry took the positions out of the pool (a gather), repaired
# them (connectors/rings.repair: eight numpy passes) and closed them (another gather): three
# copies of every corner. Here each ring is read from the pool once and written once, already
# closed, with rings.repair's rules to the bit (implicit_closure: CityJSON closes rings by
# definition): a last position within NOISE of the first becomes it, a ring with fewer than three
# distinct positions is dropped, and with its exterior the polygon. Where a position is not
# finite, nothing is written: the numpy path reads it. The same pass numbers each position's
# ring, each ring's polygon and each polygon's job (FlatFaces' columns), which numpy made by
# three repeats of what it wrote, and each position's pool row (FlatFaces.rows: the CRS84
# thread reads a corner's moved position through its vertex's, not hashing it again).

from libc.math cimport fabs, isfinite


cdef enum:  # how a ring's last position closes it
    CLOSED = 0  # it is the first position (finite numbers differ by 0 only where they are equal)
    SNAPPED = 1  # within noise of the first: it becomes the first
    OPEN = 2  # another corner: the first is written again after it


cdef inline double largest3(double a, double b, double c) noexcept nogil:
    """np.maximum(np.maximum(a, b), c) of numbers (none NaN)."""
    cdef double m = a if a >= b else b
    return m if m >= c else c


cdef inline bint same(const double[:, ::1] xyz, int64_t a, int64_t b) noexcept nogil:
    return xyz[a, 0] == xyz[b, 0] and xyz[a, 1] == xyz[b, 1] and xyz[a, 2] == xyz[b, 2]


cdef bint three_distinct(
    const double[:, ::1] xyz, const int64_t[::1] rows, Py_ssize_t start, Py_ssize_t size,
    int64_t last,
) noexcept nogil:
    """Whether the ring's positions (pool rows rows[start:start + size], its last read as
    pool row `last`) hold three distinct ones."""
    cdef Py_ssize_t k, second = -1
    cdef int64_t first = rows[start], here
    if size < 3:
        return False
    for k in range(1, size):
        here = last if k == size - 1 else rows[start + k]
        if second < 0:
            if not same(xyz, here, first):
                second = here
        elif not same(xyz, here, first) and not same(xyz, here, second):
            return True
    return False


cdef Py_ssize_t total_of(const int64_t[::1] counts) noexcept:
    """The sum of `counts`; -1 where one is negative."""
    cdef Py_ssize_t k, total = 0
    for k in range(counts.shape[0]):
        if counts[k] < 0:
            return -1
        total += counts[k]
    return total


cdef inline void copy(
    const double[:, ::1] xyz, int64_t row, double[:, ::1] coords, Py_ssize_t at
) noexcept nogil:
    coords[at, 0], coords[at, 1], coords[at, 2] = xyz[row, 0], xyz[row, 1], xyz[row, 2]


cdef bint finite(const double[:, ::1] xyz, Py_ssize_t r) noexcept nogil:
    return isfinite(xyz[r, 0]) and isfinite(xyz[r, 1]) and isfinite(xyz[r, 2])


cdef bint finite_rows(const double[:, ::1] xyz, const int64_t[::1] rows) except -1:
    """Whether the positions of pool `rows` of `xyz` are finite: the whole pool read once in
    order where it has no more rows than `rows` (a document's vertices are used by three faces
    or more), each row's position where not, or where the pool has one that is not;
    ValueError where a row is not in `xyz`."""
    cdef Py_ssize_t k, r, n = xyz.shape[0]
    cdef bint every = n <= rows.shape[0]
    if every:
        for r in range(n):
            if not finite(xyz, r):
                every = False  # maybe a vertex no ring uses (its object rejected): the rows'
                break
    for k in range(rows.shape[0]):
        r = rows[k]
        if not 0 <= r < n:
            raise ValueError(f"pool row {r} of {n}")
        if not every and not finite(xyz, r):
            return False
    return True


def close_rings(
    const double[:, ::1] xyz,
    const int64_t[::1] rows,
    const int64_t[::1] per_job,
    const int64_t[::1] per_surface,
    const int64_t[::1] sizes,
    double noise,
):
    """cityjson_geometry's polygon positions (pool rows `rows` of `xyz`, nested by `per_job`,
    `per_surface`, `sizes`) repaired (`noise`: rings.NOISE) and closed: the positions, the
    polygons left per job, the rings left per polygon left, their sizes closed, the repair
    counts per job (n, 4: the columns of rings.Repair.counts, summed per job), which polygons
    are left, and the ring of each position, the polygon of each ring, the job of each
    polygon left and the pool row of each position; None where a position of the pool is not
    finite. ValueError where the
    nesting does not add up or a row is not in `xyz` (the loops below trust both)."""
    cdef Py_ssize_t n = per_job.shape[0], n_poly = per_surface.shape[0], n_rings = sizes.shape[0]
    cdef Py_ssize_t j, p, r, k, at = 0, ring = 0, poly = 0, total = 0, left_rings = 0
    cdef Py_ssize_t start, size, first_ring
    cdef int64_t first, last, row
    cdef double gap, tolerance
    if total_of(per_job) != n_poly or total_of(per_surface) != n_rings or (
        total_of(sizes) != rows.shape[0]
    ):
        raise ValueError("ring nesting whose counts do not add up")
    if not finite_rows(xyz, rows):
        return None
    ends_a = np.zeros(n_rings, np.uint8)
    area_a = np.zeros(n_rings, np.uint8)
    kept_a = np.zeros(n_poly, np.bool_)
    left_a = np.zeros(n, np.int64)
    repairs_a = np.zeros((n, 4), np.int64)
    cdef unsigned char[::1] ends = ends_a, area = area_a
    cdef unsigned char[::1] kept = kept_a.view(np.uint8)
    cdef int64_t[::1] left = left_a
    cdef int64_t[:, ::1] repairs = repairs_a
    for r in range(n_rings):  # how each ring's last position closes it, and its area
        size = sizes[r]
        if size > 0:
            first, last = rows[at], rows[at + size - 1]
            gap = largest3(
                fabs(xyz[last, 0] - xyz[first, 0]),
                fabs(xyz[last, 1] - xyz[first, 1]),
                fabs(xyz[last, 2] - xyz[first, 2]),
            )
            tolerance = largest3(fabs(xyz[first, 0]), fabs(xyz[first, 1]), fabs(xyz[first, 2]))
            tolerance = noise * (tolerance if tolerance > 1.0 else 1.0)
            ends[r] = CLOSED if gap == 0 else SNAPPED if gap <= tolerance else OPEN
            area[r] = three_distinct(xyz, rows, at, size, first if ends[r] == SNAPPED else last)
        at += size
    for j in range(n):  # polygons kept by their exterior; what the repair did, per job
        for p in range(poly, poly + per_job[j]):
            first_ring = ring
            kept[p] = per_surface[p] > 0 and area[first_ring]
            repairs[j, 3] += not kept[p]
            left[j] += kept[p]
            for r in range(first_ring, first_ring + per_surface[p]):
                if kept[p] and area[r]:
                    repairs[j, 0] += ends[r] == SNAPPED
                    left_rings += 1
                    total += sizes[r] + (ends[r] == OPEN)
                elif kept[p]:
                    repairs[j, 2] += 1
            ring += per_surface[p]
        poly += per_job[j]
    coords_a = np.empty((total, 3))
    rings_left_a = np.zeros(n_poly, np.int64)
    closed_a = np.empty(left_rings, np.int64)
    ring_of_a = np.empty(total, np.int64)
    source_a = np.empty(total, np.int64)
    polygon_of_a = np.empty(left_rings, np.int64)
    job_of_a = np.empty(n_poly, np.int64)
    cdef double[:, ::1] coords = coords_a
    cdef int64_t[::1] rings_left = rings_left_a, closed = closed_a
    cdef int64_t[::1] ring_of = ring_of_a, polygon_of = polygon_of_a, job_of = job_of_a
    cdef int64_t[::1] source = source_a
    cdef Py_ssize_t out = 0, kept_poly = 0, kept_ring = 0
    ring = at = poly = 0
    for j in range(n):  # the positions of the rings left, each closed, and whose each is
        for p in range(poly, poly + per_job[j]):
            for r in range(ring, ring + per_surface[p]):
                start, size = at, sizes[r]
                at += size
                if not (kept[p] and area[r]):
                    continue
                first = rows[start]
                for k in range(size):
                    row = first if k == size - 1 and ends[r] == SNAPPED else rows[start + k]
                    copy(xyz, row, coords, out + k)
                    source[out + k] = row
                if ends[r] == OPEN:
                    copy(xyz, first, coords, out + size)
                    source[out + size] = first
                    size += 1
                for k in range(out, out + size):
                    ring_of[k] = kept_ring
                out += size
                closed[kept_ring] = size
                polygon_of[kept_ring] = kept_poly
                rings_left[kept_poly] += 1
                kept_ring += 1
            ring += per_surface[p]
            if kept[p]:
                job_of[kept_poly] = j
                kept_poly += 1
        poly += per_job[j]
    return (
        coords_a, left_a, rings_left_a[:kept_poly], closed_a, repairs_a, kept_a,
        (ring_of_a, polygon_of_a, job_of_a[:kept_poly], source_a),
    )
