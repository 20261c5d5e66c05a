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
from typing import Any

import numpy as np
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from citypipe.connectors.base import SourceBatch
from citypipe.connectors.coordinates import describe_non_number, to_floats
from citypipe.connectors.ragged import from_ragged
from citypipe.connectors.rings import NOISE
from citypipe.geo.types import CRS84, Points

__all__ = ["GEOMETRY_TYPES", "NESTING", "nesting_fault", "to_geometries", "to_geometry"]

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
GEOMETRY_TYPES = frozenset((*_GEOJSON_NAMES, "GeometryCollection"))
"""GeoJSON's geometry types (RFC 7946 3.1)."""
GEOMETRY_TYPE_NAMES = "|".join(sorted(GEOMETRY_TYPES)).encode()
"""The types as a regular expression's alternatives (bytes), for the sniffs."""
_RAGGED = {name: (t, NESTING[t]) for name, t in zip(_GEOJSON_NAMES, NESTING, strict=False)}


def _ndim(coords: Any, depth: int) -> int:
    for _ in range(depth):
        if not coords:
            return 2
        coords = coords[0]
    return len(coords) if coords else 2


def _ragged(kind: GeometryType, depth: int, ndim: int, items: list[Any]) -> np.ndarray:
    """One geometry array for a group; ValueError (the group is then built one by one) where a
    position has another dimension or a value that is not a number."""
    if depth == 0:
        xy = to_floats(items, 1, len(items) * ndim, ndim).reshape(-1, ndim)
        return from_ragged(kind, xy)
    lists: list[Any] = []  # the lists of positions, converted in one go
    offsets: list[list[int]] = [[0] for _ in range(depth)]
    for coords in items:
        _walk(coords, depth, lists, offsets)
    xy = to_floats(lists, 2, offsets[0][-1] * ndim, ndim).reshape(-1, ndim)
    if kind in (GeometryType.POLYGON, GeometryType.MULTIPOLYGON):
        _close_noisy_rings(xy, np.asarray(offsets[0]))
    return from_ragged(kind, xy, tuple(np.asarray(o, dtype=np.int64) for o in offsets))


def _walk(node: Any, level: int, lists: list[Any], offsets: list[list[int]]) -> None:
    """Gather the lists of positions below `node` into `lists` and their counts into
    `offsets` (level counts down to 1, where node is a list of positions). A function of the
    module, not a closure of `_ragged`: a nested function that calls itself is a reference
    cycle, which kept every position list of the batch alive until the cycle collector ran
    after the run (Barcelona's barris: 30,000 lists, a 4.5 ms collection)."""
    if level == 1:
        lists.append(node)
        offsets[0].append(offsets[0][-1] + len(node))
        return
    for child in node:
        _walk(child, level - 1, lists, offsets)
    offsets[level - 1].append(offsets[level - 1][-1] + len(node))


def _close_noisy_rings(xy: np.ndarray, rings: np.ndarray) -> None:
    """Make each ring's last position its first where they are a float-noise step apart
    (within `NOISE` of the coordinates' magnitude, as the ring repair has it: a conversion's
    rounding, 4.9 written 4.9000000000001): RFC 7946 rings are closed, and shapely closes one
    that is not with one more position, a sliver edge a trillionth of a degree long."""
    start, end = rings[:-1], rings[1:] - 1
    start, end = start[end > start], end[end > start]
    first, last = xy[start], xy[end]
    with np.errstate(invalid="ignore"):
        near = np.abs(last - first) <= NOISE * np.maximum(np.abs(first), 1.0)
    noisy = near.all(axis=1) & (last != first).any(axis=1)
    xy[end[noisy]] = first[noisy]


def _one(geometry: Mapping[str, Any]) -> Any:
    """One geometry, GeometryCollections too; ValueError naming a value that is not a number.
    Positions of more than three values are read to their third (RFC 7946 3.1.1: parsers may
    ignore the rest), and a geometry whose positions mix two and three values in two
    dimensions: its heights are not all known, where its plan is (GDAL makes the missing
    ones 0; shapely refuses the mix, or makes them NaN in a collection)."""
    members = [geometry]
    sizes: set[int] = set()
    while members:
        g = members.pop()
        if type(g) is not dict:
            continue
        if g.get("type") == "GeometryCollection" and type(g.get("geometries")) is list:
            members.extend(g["geometries"])
        elif why := describe_non_number(g.get("coordinates")):
            raise ValueError(why)
        else:
            sizes |= _sizes(g.get("coordinates"))
    if sizes and sizes not in ({2}, {3}):
        geometry = _cut(geometry, 2 if min(sizes) < 3 else 3)
    return shapely.geometry.shape(geometry)


def _is_position(node: Any) -> bool:
    return type(node) is list and bool(node) and type(node[0]) in (int, float)


def _sizes(node: Any) -> set[int]:
    """How many values the positions under `node` hold."""
    if _is_position(node):
        return {len(node)}
    if type(node) is list:
        return set().union(*map(_sizes, node))
    return set()


def _cut(node: Any, ndim: int) -> Any:
    """`node` (a geometry object, a member list, coordinates) with every position cut to its
    first `ndim` values."""
    if _is_position(node):
        return node[:ndim]
    if type(node) is list:
        return [_cut(n, ndim) for n in node]
    if type(node) is dict:
        return {
            k: _cut(v, ndim) if k in ("coordinates", "geometries") else v for k, v in node.items()
        }
    return node


def _position_fault(geometry: Mapping[str, Any]) -> str | None:
    """What is wrong with the positions of a geometry shapely refused, said in GeoJSON's terms
    (shapely's own words are numpy's: "inhomogeneous shape", "not enough dimensions"); None
    where its positions are not the fault."""
    members, sizes = [geometry], set()
    while members:
        g = members.pop()
        kind = g.get("type") if type(g) is dict else None
        if kind == "GeometryCollection" and type(g.get("geometries")) is list:
            members.extend(g["geometries"])
            continue
        if kind != "Point" and kind not in _RAGGED:
            continue
        depth = 0 if kind == "Point" else _RAGGED[kind][1]
        coordinates = g.get("coordinates")
        if coordinates is not None and describe_non_number(coordinates):
            return None  # _one's reason names the value
        if fault := nesting_fault(kind, coordinates, depth):
            return fault
        sizes |= _sizes(coordinates)
    if 1 in sizes:  # more than 3 are read to the third (`_one`)
        return "a position of 1 number (GeoJSON's hold x, y and an optional z)"
    return None


def nesting_fault(kind: str, coordinates: Any, depth: int) -> str | None:
    """What is wrong with the nesting of `coordinates`, whose positions lie `depth` arrays
    deep (a Polygon's 2, a JSON-FG Polyhedron's 4), in GeoJSON's terms; None where nothing."""
    if coordinates is None:
        return f"a {kind} without coordinates"
    level = [coordinates]
    for _ in range(depth):
        if not all(type(c) is list for c in level):
            return f"a {kind}'s coordinates nested fewer than {depth + 1} arrays deep"
        level = [c for items in level for c in items]
    if not all(type(p) is list for p in level):
        return f"a {kind}'s coordinates nested fewer than {depth + 1} arrays deep"
    if any(type(v) is list for p in level for v in p):
        return f"a {kind}'s coordinates nested more than {depth + 1} arrays deep"
    return None


def _points(geometries: Sequence[Any]) -> Points | None:
    """The batch as `Points` when every geometry is a 2D GeoJSON Point or None: one pass that
    asks nothing of each point but its coordinates, for the commonest city geometry."""
    try:
        coords = [g["coordinates"] for g in geometries if g is not None and g["type"] == "Point"]
        missing = len(geometries) - len(coords)
        if missing > geometries.count(None) or set(map(type, coords)) != {list}:
            return None
        xy = to_floats(coords, 1, 2 * len(coords), 2).reshape(-1, 2)  # each of two numbers
    except (TypeError, KeyError, ValueError):  # not an object, not numbers: the full way
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
        if (geometry := geometries[i]) is None:
            continue
        try:
            out[i] = to_geometry(geometry)
        except ValueError as e:
            errors[i] = f"invalid GeoJSON geometry: {e}"
    return out, errors


def to_geometry(geometry: Mapping[str, Any]) -> Any:
    """The shapely geometry of one GeoJSON geometry object; ValueError saying in GeoJSON's
    terms what is wrong with it (the reason alone: callers say whose geometry it is)."""
    try:
        return _one(geometry)
    except Exception as e:  # shapely raises many kinds for malformed input
        why = _position_fault(geometry) or str(e).strip()
        raise ValueError(why) from e


def geojson_batch(
    ids: Sequence[str | None],
    shapes: np.ndarray | Points,
    properties: Sequence[Mapping[str, Any]],
    records: Sequence[Any],
    classes: Sequence[str | None],
    observed: Sequence[Any],
    errors: Sequence[str | None],
    **more: Any,
) -> SourceBatch:
    """The batch of JSON records whose geometries are GeoJSON (`to_geometries`): lon / lat in
    OGC:CRS84 where the source declares no CRS, times only where a record has one."""
    return SourceBatch(
        source_ids=ids,
        geometries=shapes,
        properties=properties,
        records=records,
        crs=more.pop("crs", None),
        feature_classes=classes,
        observed_at=observed if observed.count(None) < len(observed) else None,
        errors=errors,
        default_crs=CRS84,
        **more,
    )
