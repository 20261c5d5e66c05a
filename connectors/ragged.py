"""shapely.from_ragged_array, safe for every array a reader can hand it.

GEOS crashes the process (a segmentation fault, shapely 2.x) on a MultiPolygon one of whose
polygons has no rings, which a GeoJSON `[[]]` member or a GeoArrow multipolygon with an empty
polygon list gives. Such a polygon holds nothing to draw: it is left out, as shapely's own
`shape` leaves it (a MultiPolygon of none is MULTIPOLYGON EMPTY).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely import GeometryType

__all__ = ["from_ragged", "offsets"]


def offsets(counts: np.ndarray) -> np.ndarray:
    """The offsets of ragged parts of `counts` elements each: 0, then their running sums."""
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def from_ragged(
    kind: GeometryType, coords: np.ndarray, offsets: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
    """`shapely.from_ragged_array(kind, coords, offsets)` (offsets innermost first), the
    polygons without rings of a MultiPolygon array left out."""
    if kind == GeometryType.MULTIPOLYGON and offsets is not None:
        rings, polygons, parts = (np.asarray(o) for o in offsets)
        kept = np.diff(polygons) > 0
        if not kept.all():
            polygons = np.concatenate([polygons[:1], polygons[1:][kept]])
            parts = np.concatenate([[0], np.cumsum(kept)])[parts]
            offsets = (rings, polygons, parts)
    return shapely.from_ragged_array(kind, coords, offsets)
