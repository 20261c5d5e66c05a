# A batch's rings repaired in C (included by gml_walk.pyx): rings.repair's numpy passes (some 40
# calls over the batch's rings and positions, 3-4x their warm time inside an ingest) as one pass
# over the rings, for gml_polygons.build. The same answers, bit for bit (its Python twin is
# rings.repair, which a hypothesis test compares it with): the same tolerance, the same
# comparisons in floating point (a NaN compares unequal, propagates through a maximum), the
# positions compared as `rings._comparable` makes them (NaN as 0, infinities as the largest
# doubles, where a height is NaN).

from libc.math cimport HUGE_VAL, fabs, isnan

from citypipe.connectors.rings import NOISE as _NOISE

cdef double RING_NOISE = _NOISE


cdef inline double nan_max(double a, double b) noexcept nogil:
    """numpy.maximum: NaN where either is."""
    if isnan(a) or isnan(b):
        return a + b
    return a if a >= b else b


cdef inline double comparable(double v, bint flat) noexcept nogil:
    """numpy.nan_to_num of `v` where the batch has a 2D ring (`flat`), else `v`."""
    if not flat:
        return v
    if isnan(v):
        return 0.0
    if v == HUGE_VAL:
        return 1.7976931348623157e308
    if v == -HUGE_VAL:
        return -1.7976931348623157e308
    return v


cdef inline bint same(const double[:, :] c, Py_ssize_t i, Py_ssize_t j, bint flat) noexcept nogil:
    """rings._same of positions i and j, as compared."""
    return (
        comparable(c[i, 0], flat) == comparable(c[j, 0], flat)
        and comparable(c[i, 1], flat) == comparable(c[j, 1], flat)
        and comparable(c[i, 2], flat) == comparable(c[j, 2], flat)
    )


cdef bint three_distinct(
    const double[:, :] c, Py_ssize_t start, Py_ssize_t size, bint flat
) noexcept nogil:
    """rings._three_distinct of one ring: its first three positions apart, else a position
    unlike both the first and the first one unlike that."""
    cdef Py_ssize_t j, second = -1
    if size < 3:
        return False
    if not (
        same(c, start, start + 1, flat) or same(c, start + 1, start + 2, flat)
        or same(c, start, start + 2, flat)
    ):
        return True
    for j in range(start, start + size):
        if same(c, j, start, flat):
            continue
        if second < 0:
            second = j
        if not same(c, j, second, flat):
            return True
    return False


def repair_rings(object coords, const long long[::1] sizes, const long long[::1] per_polygon):
    """rings.repair(coords, sizes, per_polygon) (rings closed explicitly, as GML's are): the
    positions (the array given where no ring was closed within noise), per ring whether it is
    kept, per polygon whether it is kept, and the counts of `rings.Repair`."""
    cdef Py_ssize_t n_rings = sizes.shape[0], n_polygons = per_polygon.shape[0]
    cdef const double[:, :] c = coords
    cdef Py_ssize_t p, r, k, start = 0, first, last, ring = 0
    cdef bint flat = False, area, exterior_kept
    cdef double gap, largest, tolerance
    for k in range(c.shape[0]):
        if isnan(c[k, 2]):
            flat = True
            break
    snapped_np = np.zeros(n_rings, dtype=np.uint8)
    opened_np = np.zeros(n_rings, dtype=np.uint8)
    cdef unsigned char[::1] snapped = snapped_np, opened = opened_np
    cdef double[:, :] out
    cdef bint copied = False
    for r in range(n_rings):
        if sizes[r] > 0:
            first, last = start, start + sizes[r] - 1
            gap = largest = -HUGE_VAL
            for k in range(3):
                gap = nan_max(
                    gap, fabs(comparable(c[last, k], flat) - comparable(c[first, k], flat))
                )
                largest = nan_max(largest, fabs(comparable(c[first, k], flat)))
            tolerance = RING_NOISE * nan_max(1.0, largest)
            if gap > 0 and gap <= tolerance:
                snapped[r] = True
                if not copied:
                    coords = np.array(coords, copy=True)
                    out = coords
                    c = out
                    copied = True
                for k in range(3):
                    out[last, k] = out[first, k]
            elif gap > tolerance:
                opened[r] = True
        start += sizes[r]
    ring_kept_np = np.zeros(n_rings, dtype=bool)
    polygon_kept_np = np.zeros(n_polygons, dtype=bool)
    counts_np = np.zeros((n_polygons, 4), dtype=np.int64)
    cdef unsigned char[::1] ring_kept = ring_kept_np.view(np.uint8)
    cdef unsigned char[::1] polygon_kept = polygon_kept_np.view(np.uint8)
    cdef long long[:, ::1] counts = counts_np
    start = 0
    for p in range(n_polygons):
        exterior_kept = False
        for k in range(per_polygon[p]):
            area = three_distinct(c, start, sizes[ring], flat)
            if k == 0:
                exterior_kept = area
                polygon_kept[p] = area
            if area and exterior_kept:
                ring_kept[ring] = True
                counts[p, 0] += snapped[ring]
                counts[p, 1] += opened[ring]
            elif not area and exterior_kept:
                counts[p, 2] += 1
            start += sizes[ring]
            ring += 1
        counts[p, 3] = not exterior_kept
    return coords, ring_kept_np, polygon_kept_np, counts_np
