"""GeoJSON geometry objects -> shapely geometries, a batch at a time.

Building shapely objects one feature at a time costs more than parsing the JSON; grouping the
geometries by type and handing flat coordinate arrays to `shapely.from_ragged_array` keeps the
per-vertex work in C. A geometry that does not fit (ragged dimensions, bad coordinates) is
built on its own, and one that cannot be built at all gets an error message instead. A batch
of 2D points needs no shapely object at all: it becomes one `Points` coordinate array.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from connectors.base import Points
from connectors.coordinates import describe_non_number, from_numbers

__all__ = ["NESTING", "to_geometries"]

NESTING: dict[GeometryType, int] = {
    GeometryType.POINT: 0,
    GeometryType.LINESTRING: 1,
    GeometryType.MULTIPOINT: 1,
    GeometryType.POLYGON: 2,
    GeometryType.MULTILINESTRING: 2,
    GeometryType.MULTIPOLYGON: 3,
}
"""Levels of coordinate lists above the positions, per type: GeoJSON and GeoArrow nest alike."""
_GEOJSON_NAMES = ("Point", "LineString", "MultiPoint", "Polygon", "MultiLineString", "MultiPolygon")
_RAGGED = {name: (t, NESTING[t]) for name, t in zip(_GEOJSON_NAMES, NESTING)}


def _ndim(coords: Any, depth: int) -> int:
    for _ in range(depth):
        if not coords:
            return 2
        coords = coords[0]
    return len(coords) if coords else 2


def _vertices(node: Any, ndim: int) -> np.ndarray:
    """A list of positions as an (n, ndim) array; ValueError if any has another dimension."""
    if not node:
        return np.empty((0, ndim))
    if set(map(len, node)) != {ndim}:
        raise ValueError(f"positions of other than {ndim} values")
    return np.fromiter(chain.from_iterable(node), float, count=ndim * len(node)).reshape(-1, ndim)


def _numbers(nested: list[Any], levels: int, xy: np.ndarray) -> None:
    """ValueError unless the values `xy` was converted from are numbers: numpy's conversion
    reads "12" as 12 and true as 1. One check for all the positions of a group."""
    if not from_numbers(nested, levels, xy):
        raise ValueError("values that are not numbers")


def _ragged(kind: GeometryType, depth: int, ndim: int, items: list[Any]) -> np.ndarray:
    if depth == 0:
        xy = _vertices(items, ndim)
        _numbers(items, 1, xy)
        return shapely.from_ragged_array(kind, xy)
    lists: list[Any] = []  # the lists of positions, for one check of their values
    arrays: list[np.ndarray] = []
    offsets: list[list[int]] = [[0] for _ in range(depth)]

    def walk(node: Any, level: int) -> None:
        # level counts down to 1, where node is a list of vertices
        if level == 1:
            a = _vertices(node, ndim)
            lists.append(node)
            arrays.append(a)
            offsets[0].append(offsets[0][-1] + len(a))
            return
        for child in node:
            walk(child, level - 1)
        offsets[level - 1].append(offsets[level - 1][-1] + len(node))

    for coords in items:
        walk(coords, depth)
    xy = np.concatenate(arrays) if arrays else np.empty((0, ndim))
    _numbers(lists, 2, xy)
    return shapely.from_ragged_array(kind, xy, tuple(np.asarray(o, dtype=np.int64) for o in offsets))


def _one(geometry: Mapping[str, Any]) -> Any:
    """One geometry, GeometryCollections too; ValueError naming a value that is not a number."""
    members = [geometry]
    while members:
        g = members.pop()
        if type(g) is not dict:
            continue
        if g.get("type") == "GeometryCollection" and type(g.get("geometries")) is list:
            members.extend(g["geometries"])
        elif why := describe_non_number(g.get("coordinates")):
            raise ValueError(why)
    return shapely.geometry.shape(geometry)


def _points(geometries: Sequence[Any]) -> Points | None:
    """The batch as `Points` when every geometry is a 2D GeoJSON Point or None: one pass that
    asks nothing of each point but its coordinates, for the commonest city geometry."""
    try:
        coords = [g["coordinates"] for g in geometries if g is not None and g["type"] == "Point"]
        missing = len(geometries) - len(coords)
        if missing > geometries.count(None) or set(map(type, coords)) != {list} or set(map(len, coords)) != {2}:
            return None
        xy = np.fromiter(chain.from_iterable(coords), float, count=2 * len(coords)).reshape(-1, 2)
        if not from_numbers(coords, 1, xy):
            return None
    except (TypeError, KeyError, ValueError):  # not an object: the full way
        return None
    if missing:
        full = np.full((len(geometries), 2), np.nan)
        full[[i for i, g in enumerate(geometries) if g is not None]] = xy
        xy = full
    return Points(xy)


def to_geometries(
    geometries: Sequence[Mapping[str, Any] | None],
) -> tuple[np.ndarray | Points, list[str | None]]:
    """Shapely geometries for GeoJSON geometry objects (None stays None), and per-item errors;
    `Points` where every geometry is a 2D Point (or None)."""
    errors: list[str | None] = [None] * len(geometries)
    points = _points(geometries)
    if points is not None:
        return points, errors
    groups: defaultdict[str, list[int]] = defaultdict(list)
    coordinates: defaultdict[str, list[Any]] = defaultdict(list)
    single: list[int] = []
    for i, g in enumerate(geometries):
        if type(g) is dict:
            kind, coords = g.get("type"), g.get("coordinates")
            if kind in _RAGGED and type(coords) is list:
                groups[kind].append(i)
                coordinates[kind].append(coords)
            else:
                single.append(i)
        elif g is not None:
            errors[i] = f"geometry is not a GeoJSON object: {str(g)[:80]}"
    out = np.full(len(geometries), None, dtype=object)
    for kind, idx in groups.items():
        shape_type, depth = _RAGGED[kind]
        coords = coordinates[kind]
        try:  # one array for the group, if all its positions have the first one's dimension
            ndim = _ndim(coords[0], depth)
            if ndim not in (2, 3):
                raise ValueError(ndim)
            out[idx] = _ragged(shape_type, depth, ndim, coords)
        except (ValueError, TypeError, IndexError, GEOSException):
            single.extend(idx)
    for i in single:
        try:
            out[i] = _one(geometries[i])
        except Exception as e:  # noqa: BLE001 - shapely raises many kinds for malformed input
            errors[i] = f"invalid GeoJSON geometry: {str(e).strip()}"
    return out, errors
