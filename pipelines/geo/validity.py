"""`shapely.is_valid`, with GEOS asked only of the geometries that need it.

A footprint is most often a polygon of one ring of a few positions (Den Haag's 1,990 ground
faces: six on average), which GEOS checks in some 0.9 us each, the footprints once in their
source CRS and once in CRS84. Such a polygon is valid where its ring is simple, which a
compiled pass tells for most of them in floating point where its signs are sure
(simple_rings.pyx); GEOS is asked of the others, so every answer is GEOS's.
"""

from __future__ import annotations

import numpy as np
import shapely

# the rings vouched for in one pass (pipelines/geo/simple_rings.pyx), optional: where it did not
# build, GEOS is asked of every geometry, with the same answers
try:
    from citypipe.geo import simple_rings as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]

__all__ = ["is_valid"]

FEW = 32
"""Fewer geometries are all asked of GEOS: reading their positions out of it for the kernel
costs some 16 us a call, GEOS 0.6 us a footprint of a few positions."""


def is_valid(geometries: np.ndarray) -> np.ndarray:
    """Whether each geometry is valid, as `shapely.is_valid` says (False for None): polygons
    without holes whose ring is surely simple without asking GEOS, the others asked of it."""
    geometries = np.asarray(geometries, dtype=object)
    if compiled is None or len(geometries) < FEW:
        return shapely.is_valid(geometries)
    rings = np.flatnonzero(shapely.get_type_id(geometries) == shapely.GeometryType.POLYGON)
    shells = geometries[rings]
    one_ring = shapely.get_num_interior_rings(shells) == 0
    if not one_ring.any():  # points, lines, multipolygons: no pass of the kernel's
        return shapely.is_valid(geometries)
    rings, shells = rings[one_ring], shells[one_ring]
    out = np.zeros(len(geometries), dtype=bool)
    xy = shapely.get_coordinates(shells)
    at = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(shapely.get_num_coordinates(shells), out=at[1:])
    out[rings] = compiled.simple_rings(xy, at).view(bool)
    asked = np.flatnonzero(~out)
    out[asked] = shapely.is_valid(geometries[asked])
    return out
