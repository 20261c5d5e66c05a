"""Positions that contradict the record: a geometry far from the latitude / longitude the
record states itself (attributes in schemas/mappings.yaml).

It is the sign of a wrong CRS or axis order that lands every point on the globe, just in the
wrong place; the feature is kept, with a note, and the run counts a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyproj
import shapely

from citypipe.core.geometry import positioned
from citypipe.core.values import AttributeMap, number
from citypipe.geo.types import Points

__all__ = ["POSITION_NOTE", "POSITION_TOLERANCE_M", "conflicts"]

POSITION_NOTE = "citypipe:position_conflict"
POSITION_TOLERANCE_M = 500.0
"""How far a geometry may lie from the latitude / longitude its record states before that is
reported: generous for attributes rounded or taken at a building's centre, yet far below what a
wrong CRS or swapped axes make of the position."""
_GEOD = pyproj.Geod(ellps="WGS84")


def _metres_apart(geometries: np.ndarray | Points, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Geodesic distance from each lon/lat position to the nearest point of its geometry."""
    if isinstance(geometries, Points):
        x, y = geometries.xy.T
        return _GEOD.inv(x, y, lon, lat)[2]
    ends = shapely.shortest_line(geometries, shapely.points(lon, lat))
    ends = shapely.get_coordinates(ends).reshape(-1, 4)
    return _GEOD.inv(ends[:, 0], ends[:, 1], ends[:, 2], ends[:, 3])[2]


def _stated(
    attributes: AttributeMap, props: Sequence[Mapping[str, Any]], keys: frozenset[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The longitude and latitude each record states (NaN where it states none); None when the
    batch has no such attributes."""
    lat_keys, lon_keys = attributes.keys("latitude", keys), attributes.keys("longitude", keys)
    if not lat_keys or not lon_keys:
        return None
    first = attributes.first_filled
    lat = np.array([number(first(p, lat_keys)) for p in props], dtype=float)
    lon = np.array([number(first(p, lon_keys)) for p in props], dtype=float)
    return lon, lat


def conflicts(
    attributes: AttributeMap,
    geoms: np.ndarray | Points,
    props: Sequence[Mapping[str, Any]],
    keys: frozenset[str],
    reasons: list[str | None],
) -> Iterator[tuple[int, str, str]]:
    """Records not rejected whose geometry (in CRS84) lies far from the position they state,
    with the message and the stated position."""
    stated = _stated(attributes, props, keys)
    if stated is None:
        return
    lon, lat = stated
    usable = (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & positioned(geoms)
    usable &= np.array([r is None for r in reasons])
    idx = np.flatnonzero(usable)
    if not len(idx):
        return
    far = _metres_apart(geoms[idx], lon[idx], lat[idx]) > POSITION_TOLERANCE_M
    if not far.any():
        return
    swapped = np.abs(lon[idx]) <= 90
    swapped[swapped] = (
        _metres_apart(geoms[idx][swapped], lat[idx][swapped], lon[idx][swapped])
        <= POSITION_TOLERANCE_M
    )
    for k in np.flatnonzero(far):
        hint = (
            "it matches them with the axes swapped: --axis-order fixes it"
            if swapped[k]
            else "the declared CRS or axis order may be wrong (--crs / --axis-order)"
        )
        i = int(idx[k])
        why = (
            f"geometry more than {POSITION_TOLERANCE_M:.0f} m from the latitude/longitude the "
            f"record states; {hint}"
        )
        yield i, why, f"{lat[i]}, {lon[i]}"
