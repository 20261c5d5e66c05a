"""JSON-FG 1.0 solids in `place`: Prism, MultiPrism, Polyhedron and MultiPolyhedron.

JSON-FG (OGC 21-045) adds these to the GeoJSON types for `place`, in a 3D CRS. A Prism is a
base (Point, LineString, Polygon or their Multi forms, 2D) extruded from `lower` to `upper` on
the CRS's vertical axis; a Polyhedron is a list of closed shells of 3D polygons, the first the
exterior, the others voids. They are handed over the way CityJSON solids are: `geometry_3d` is
the faces of the outer shells as a MultiPolygon Z (a prism of a point is a vertical line, of a
line a vertical ribbon), the footprint is a prism's base (a polyhedron's the pipeline derives:
its faces projected), and a prism's height is `upper` - `lower`. The standard makes `lower`
optional and names no default: an absent `lower` is the origin of the vertical axis (0).

A prism's base is read by GeoJSON's rules (geojson_shapes). A polyhedron's positions are read
by the same rules where they can be (values after the third ignored, rings left open closed,
as GeoJSON polygons are), but a solid has no plan-only form: a position without a z, a ring of
fewer than three distinct positions and a shell that is not closed (an edge bounding one face
only, or three) reject the record, saying which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from citypipe.connectors.base import Solids
from citypipe.connectors.coordinates import describe_non_number
from citypipe.connectors.geojson_shapes import nesting_fault, to_geometry
from citypipe.connectors.rings import NOISE
from citypipe.geo.types import Points

__all__ = ["SOLIDS", "Solid", "merge", "read", "split"]

SOLIDS = frozenset({"Prism", "MultiPrism", "Polyhedron", "MultiPolyhedron"})
_BASES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
_DEPTH = {"Polyhedron": 4, "MultiPolyhedron": 5}
"""Arrays around a solid's positions: (its polyhedra,) its shells, a shell's faces, a face's
rings, a ring."""


@dataclass(frozen=True)
class Solid:
    footprint: BaseGeometry | None
    """2D, in the source CRS; None where the pipeline derives it from `shape`."""
    shape: BaseGeometry
    """With Z, in the source CRS."""
    height: float | None
    """Top minus bottom where the geometry states it (prisms)."""


def _limit(prism: Mapping[str, Any], key: str, default: float | None) -> float:
    value = prism.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"'{key}' is {'missing' if value is None else 'not a number'}")
    return float(value)


def _at(xy: np.ndarray, z: float) -> np.ndarray:
    return np.column_stack([xy, np.full(len(xy), z)])


def _walls(ring: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """A vertical quad per segment of `ring` (n, 2): a-lower, b-lower, b-upper, a-upper, which
    faces right of the way a -> b (outwards for a counter-clockwise exterior ring)."""
    a, b = ring[:-1], ring[1:]
    keep = (a != b).any(axis=1)
    a, b = a[keep], b[keep]
    lo, up = np.full((len(a), 1), lower), np.full((len(a), 1), upper)
    corners = [np.hstack(c) for c in ([a, lo], [b, lo], [b, up], [a, up], [a, lo])]
    return shapely.polygons(np.stack(corners, axis=1))


def _extrude(base: BaseGeometry, lower: float, upper: float) -> list[BaseGeometry]:
    """The parts of a base extruded: vertical lines, ribbons, or the closed faces of a solid."""
    parts = shapely.get_parts(base)
    kind = shapely.get_type_id(parts[0]) if len(parts) else -1
    if kind == 0:  # points
        xy = shapely.get_coordinates(parts)
        return list(shapely.linestrings(np.stack([_at(xy, lower), _at(xy, upper)], axis=1)))
    if kind == 1:  # lines
        return [q for line in parts for q in _walls(shapely.get_coordinates(line), lower, upper)]
    faces: list[BaseGeometry] = []
    for polygon in parts:
        polygon = shapely.geometry.polygon.orient(polygon, 1.0)  # exterior counter-clockwise
        faces.append(shapely.force_3d(shapely.geometry.polygon.orient(polygon, -1.0), lower))
        faces.append(shapely.force_3d(polygon, upper))
        for ring in [polygon.exterior, *polygon.interiors]:  # holes clockwise: walls face the hole
            faces.extend(_walls(shapely.get_coordinates(ring), lower, upper))
    return faces


def _prism(prism: Mapping[str, Any]) -> tuple[BaseGeometry, list[BaseGeometry], float, float]:
    base = prism.get("base")
    if not isinstance(base, Mapping) or base.get("type") not in _BASES:
        raise ValueError(f"the base is not a {', '.join(sorted(_BASES))}")
    upper = _limit(prism, "upper", None)
    lower = _limit(prism, "lower", 0.0)
    if lower > upper:
        raise ValueError(f"lower {lower} is above upper {upper}")
    try:
        footprint = shapely.force_2d(to_geometry(base))
    except ValueError as e:
        raise ValueError(f"the base is {e}") from e
    if footprint.is_empty:
        raise ValueError("the base is empty")
    return footprint, _extrude(footprint, lower, upper), lower, upper


def _collect(parts: Sequence[BaseGeometry]) -> BaseGeometry:
    """One geometry of parts: faces as a MultiPolygon (as CityJSON solids are handed over),
    vertical lines as a LineString or MultiLineString, or a collection of both."""
    kinds = set(shapely.get_type_id(parts).tolist())
    if kinds == {3}:
        return shapely.multipolygons(parts)
    if kinds == {1}:
        return parts[0] if len(parts) == 1 else shapely.multilinestrings(parts)
    return shapely.geometrycollections(parts)


def _shells(kind: str, coordinates: Any) -> BaseGeometry:
    """The faces of the outer shells of a Polyhedron's or MultiPolyhedron's coordinates as a
    MultiPolygon Z; ValueError saying what keeps them from being closed shells of 3D faces."""
    if coordinates is not None and (why := describe_non_number(coordinates)):
        raise ValueError(why)
    if fault := nesting_fault(kind, coordinates, _DEPTH[kind]):
        raise ValueError(fault)
    polyhedra = [coordinates] if kind == "Polyhedron" else coordinates
    if not polyhedra or not all(polyhedra):
        raise ValueError("a polyhedron without shells")
    outer = []
    for p, polyhedron in enumerate(polyhedra):
        for s, shell in enumerate(polyhedron):
            where = f"shell {s + 1}" + (f" of polyhedron {p + 1}" if kind != "Polyhedron" else "")
            faces = _faces(shell, where)
            if odd := _unpaired_edges([ring for face in faces for ring in face]):
                raise ValueError(
                    f"{where} is not closed: {odd} edges bound an odd number of its faces"
                )
            outer += faces if s == 0 else []
    return shapely.MultiPolygon([shapely.Polygon(face[0], face[1:]) for face in outer])


def _faces(shell: list[Any], where: str) -> list[list[np.ndarray]]:
    """The rings of each of a shell's faces as (n, 3) arrays, each closed."""
    if not shell or not all(shell):
        raise ValueError(f"{where} has a face without rings" if shell else f"{where} is empty")
    faces: list[list[np.ndarray]] = []
    for face in shell:
        faces.append([])
        for ring in face:
            if odd := sorted({len(p) for p in ring if len(p) < 3}):
                many = "s" if odd[0] != 1 else ""
                raise ValueError(
                    f"a position of {odd[0]} number{many} in {where} "
                    "(a solid's hold three coordinates, x, y and z)"
                )
            xyz = np.array([p[:3] for p in ring], dtype=float)
            if len(np.unique(xyz, axis=0)) < 3:
                raise ValueError(f"a ring of fewer than 3 distinct positions in {where}")
            faces[-1].append(xyz if (xyz[0] == xyz[-1]).all() else np.vstack([xyz, xyz[:1]]))
    return faces


def _unpaired_edges(rings: list[np.ndarray]) -> int:
    """How many edges of a shell's rings are shared by an odd number of faces (0 where the
    shell is closed): positions equal within float noise are one, and an edge of no length
    (a position written twice in a row) bounds nothing."""
    xyz = np.concatenate(rings)
    tolerance = NOISE * max(1.0, float(np.abs(xyz).max()))
    key = np.round(xyz / tolerance)
    _, vertex = np.unique(key, axis=0, return_inverse=True)
    ends = np.cumsum([len(r) for r in rings])
    vertex = vertex.reshape(-1)
    a, b = vertex[:-1], vertex[1:]
    within = np.ones(len(a), dtype=bool)
    within[ends[:-1] - 1] = False  # the step from one ring to the next is no edge
    a, b = a[within & (a != b)], b[within & (a != b)]
    _, counts = np.unique(np.sort(np.column_stack([a, b]), axis=1), axis=0, return_counts=True)
    return int(np.count_nonzero(counts % 2))


def read(place: Mapping[str, Any]) -> Solid:
    """The Solid of a JSON-FG solid geometry; ValueError saying what is wrong with it."""
    kind = place.get("type")
    try:
        if kind == "Prism":
            footprint, parts, lower, upper = _prism(place)
            return Solid(footprint, _collect(parts), upper - lower)
        if kind == "MultiPrism":
            members = place.get("prisms")
            if type(members) is not list or not members:
                raise ValueError("'prisms' is not an array" if members else "no prisms")
            prisms = [_prism(p) for p in members]
            footprint = shapely.union_all([p[0] for p in prisms])
            top, bottom = max(p[3] for p in prisms), min(p[2] for p in prisms)
            return Solid(footprint, _collect([f for p in prisms for f in p[1]]), top - bottom)
        return Solid(None, _shells(str(kind), place.get("coordinates")), None)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, GEOSException) as e:
        raise ValueError(f"invalid JSON-FG {kind}: {e}") from e


def split(geometries: list[Any]) -> tuple[list[Any], dict[int, Solid | str]]:
    """A batch's `place` geometries without their solids (None in their stead), and per solid
    its position and what it reads as, or why it cannot be read."""
    solids: dict[int, Solid | str] = {}
    for i, g in enumerate(geometries):
        if type(g) is dict and g.get("type") in SOLIDS:
            try:
                solids[i] = read(g)
            except ValueError as e:
                solids[i] = str(e)
    if not solids:
        return geometries, solids
    return [None if i in solids else g for i, g in enumerate(geometries)], solids


def merge(
    shapes: np.ndarray | Points,
    solids: Mapping[int, Solid | str],
    errors: list[str | None],
) -> tuple[np.ndarray, Solids, list[float | None]]:
    """The batch's geometries with the solids' footprints, the 3D shapes (the other records
    keep their own geometry as their 3D one, as without solids) and the solids' heights; what
    could not be read goes to `errors`."""
    if isinstance(shapes, Points):
        out = np.full(len(shapes), None, dtype=object)
        present = shapes.present
        out[present] = shapely.points(shapes.xy[present])
    else:
        out = np.asarray(shapes, dtype=object).copy()
    shape3d = out.copy()
    height: list[float | None] = [None] * len(out)
    for i, solid in solids.items():
        if isinstance(solid, str):
            errors[i] = solid
            continue
        out[i], shape3d[i], height[i] = solid.footprint, solid.shape, solid.height
    return out, Solids(shape3d), height
