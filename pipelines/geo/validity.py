"""`shapely.is_valid`, with GEOS asked only of the geometries that need it.

A footprint is most often a polygon of one ring of a few positions (Den Haag's 1,990 ground
faces: six on average), which GEOS checks in some 0.9 us each, the footprints once in their
source CRS and once in CRS84. Such a polygon is valid where its ring is simple, and one with
holes (a traced outline around a courtyard) where its rings are simple, apart, and its holes
inside its shell and outside one another, which a compiled pass tells for most of them in
floating point where its signs are sure (simple_rings.pyx); GEOS is asked of the others, so
every answer is GEOS's.
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

__all__ = ["is_valid", "is_valid_built"]

FEW = 32
"""Fewer geometries are all asked of GEOS: reading their positions out of it for the kernel
costs some 16 us a call, GEOS 0.6 us a footprint of a few positions; so are fewer polygons
with holes, whose rings are read in some 30 us more (Melbourne's 3 to 8 roads with an island
are checked faster by GEOS, Delft's 46 traced outlines with courtyards 4x as fast here)."""


def is_valid(geometries: np.ndarray) -> np.ndarray:
    """Whether each geometry is valid, as `shapely.is_valid` says (False for None): polygons
    whose rings are surely simple and apart without asking GEOS, the others asked of it."""
    geometries = np.asarray(geometries, dtype=object)
    if compiled is None or len(geometries) < FEW:
        return shapely.is_valid(geometries)
    polygons = np.flatnonzero(shapely.get_type_id(geometries) == shapely.GeometryType.POLYGON)
    if not len(polygons):  # points, lines, multipolygons: no pass of the kernel's
        return shapely.is_valid(geometries)
    shapes = geometries[polygons]
    holes = shapely.get_num_interior_rings(shapes)
    out = np.zeros(len(geometries), dtype=bool)
    one = holes == 0
    if one.any():  # a ring a polygon: its positions read without asking for its rings
        vouched = compiled.simple_rings(*_positions(shapes if one.all() else shapes[one]))
        out[polygons[one]] = vouched.view(bool)
    holed = ~one
    if holed.sum() >= FEW:  # with holes: their rings asked for, where there are enough
        first = np.zeros(holed.sum() + 1, np.int64)  # the shell of each, then its holes
        np.cumsum(holes[holed] + 1, out=first[1:])
        vouched = compiled.valid_polygons(*_positions(shapely.get_rings(shapes[holed])), first)
        out[polygons[holed]] = vouched.view(bool)
    asked = np.flatnonzero(~out)
    out[asked] = shapely.is_valid(geometries[asked])
    return out


def _positions(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of `shapes` (rings, or polygons of one ring) one after another, and the
    row each starts at (and the end)."""
    at = np.zeros(len(shapes) + 1, np.int64)
    np.cumsum(shapely.get_num_coordinates(shapes), out=at[1:])
    return shapely.get_coordinates(shapes), at


def is_valid_built(
    polygons: np.ndarray, xy: np.ndarray, rings: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """`is_valid` of `polygons` built of arrays (`shapely.from_ragged_array`'s: their
    positions `xy`, x and y first, the offsets of the rings in them and of each polygon's
    first ring): the kernel reads the arrays as they are, not the polygons out of GEOS again,
    and GEOS is asked of those it does not vouch for (of all where they are few)."""
    if compiled is None or len(polygons) < FEW:
        return shapely.is_valid(polygons)
    offsets = (np.asarray(at, dtype=np.int64) for at in (rings, first))  # shapely's: int32
    out = compiled.valid_polygons(np.ascontiguousarray(xy[:, :2]), *offsets).view(bool)
    asked = np.flatnonzero(~out)
    out[asked] = shapely.is_valid(polygons[asked])
    return out
