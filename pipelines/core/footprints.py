"""2D footprints of 3D objects: their ground surfaces, else the faces that look down, projected.

The faces of an object's footprint that share edges (a triangulated surface, a bottom split in
patches) form a coverage, whose union is bounded by the edges that are not shared: those are
found for all objects of a batch at once (a 64-bit hash per edge, one sort) and GEOS is asked
only to build the areas they enclose. The result is kept where it is valid and its area is the
faces' own (no face overlaps another); the others are merged by coverage unions, and a full
union where faces overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely import GeometryType

from citypipe.core.solids import Faces, flat_surfaces, mix, offsets

__all__ = ["footprints"]

AREA_TOLERANCE = 1e-9
"""The outline of an object's faces is its footprint where the area it encloses is the sum of
its faces' areas to this fraction (float rounding of the sums); faces that overlap by more
are merged by a union."""


def footprints(
    geometries: np.ndarray,
    surfaces: Sequence[Any],
    faces: Faces | None = None,
    outlines: bool = True,
) -> np.ndarray:
    """2D footprint of each object: its ground surfaces, else the faces of its 3D geometry that
    look down, else all its faces, projected on the plane; None without any.

    Faces that do not overlap in the plane (a solid's bottom) already form a valid footprint;
    faces that share edges (a surface split in patches) are merged as a coverage, and only
    faces that overlap need a full union. `faces` are the geometries' where the caller has
    read them (`Faces.of`). `outlines`: a coverage's union is built from its outline edges
    (the same area as GEOS's coverage union, its rings started and turned otherwise).
    """
    geometries = np.asarray(geometries, dtype=object)
    n = len(geometries)
    out = np.full(n, None, dtype=object)
    owner, types, polygons = flat_surfaces(surfaces)
    is_ground = np.fromiter(("Ground" in t for t in types), bool, len(types))
    ground_of = owner[is_ground]
    grounded = np.zeros(n, dtype=bool)
    grounded[ground_of] = True
    own = np.flatnonzero(~grounded)
    ground_faces = Faces.of(polygons[is_ground])
    own_faces = Faces.of(geometries[own]) if faces is None else faces.take(own)
    sets = [  # the owner of a face is its object, in order (as the multipolygons need it)
        ground_faces._replace(owner=ground_of[ground_faces.owner]),
        own_faces._replace(owner=own[own_faces.owner]),
    ]
    plane = [f.area_vectors()[:, 2] for f in sets]  # twice the area in the plane, signed
    down = [z < 0 for z in plane]
    obj = np.concatenate([f.owner for f in sets])
    has = np.bincount(obj, minlength=n) > 0
    rest = ~has & ~shapely.is_missing(geometries)  # no polygon: the geometry itself, in 2D
    out[rest] = shapely.force_2d(geometries[rest])
    if not len(obj):
        return out
    any_down = np.bincount(obj, weights=np.concatenate(down), minlength=n) > 0
    keep = [grounded[f.owner] | ~any_down[f.owner] | d for f, d in zip(sets, down, strict=True)]
    # faces that share an edge are no valid multipolygon: GEOS need not be asked, only
    # whether the other faces overlap
    edges = _edges(sets, keep, n)
    kept_faces = np.bincount(
        np.concatenate([f.owner[k] for f, k in zip(sets, keep, strict=True)]), minlength=n
    )
    area = np.zeros(n)
    for f, k, z in zip(sets, keep, plane, strict=True):
        area += np.bincount(f.owner[k], weights=np.abs(z[k]) / 2, minlength=n)
    traced = np.flatnonzero(edges.shares & (kept_faces > 1) & outlines)
    out[traced] = _outlined(edges, traced, area[traced])
    done = np.zeros(n, dtype=bool)
    done[traced] = ~shapely.is_missing(out[traced])
    for chosen, kept in zip(sets, keep, strict=True):
        merged, sizes = chosen.multipolygons_2d(kept & ~done[chosen.owner])
        at = np.flatnonzero(sizes)
        out[at] = _valid(merged[at], sizes[at], edges.shares[at])
    return out


def _valid(merged: np.ndarray, sizes: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Each object's footprint from its faces (a multipolygon of `sizes` faces): its face,
    or its faces where they neither share an edge nor overlap, else their union."""
    single = sizes == 1
    merged[single] = shapely.get_geometry(merged[single], 0)
    joint = shares & ~single
    asked = np.flatnonzero(~joint)
    joint[asked[~shapely.is_valid(merged[asked])]] = True
    joint = np.flatnonzero(joint)
    if len(joint):
        merged[joint] = _unions(merged[joint])
    return merged


class _Edges(NamedTuple):
    """The edges of the kept faces of a batch's objects, in the plane."""

    shares: np.ndarray
    """Per object: two of its kept faces have an edge of the same two positions (bit for bit,
    as GEOS compares them)."""
    outline: np.ndarray
    """(m, 2, 2): the edges no other kept face of the object shares (an odd number of times),
    ordered by object."""
    owner: np.ndarray
    """The object of each outline edge."""


def _edges(sets: list[Faces], keep: list[np.ndarray], count: int) -> _Edges:
    """The shared and the outline edges of the faces `keep` picks, each edge hashed with its
    object so that one sort finds both."""
    hashes, owners, ends = [], [], []
    for faces, kept in zip(sets, keep, strict=True):
        xy = np.ascontiguousarray(faces.coords[:, :2])
        edge, face, at = faces.edge_hashes(xy.view(np.uint64))
        chosen = kept[face]
        hashes.append(edge[chosen])
        owners.append(faces.owner[face[chosen]])
        ends.append(np.stack([xy[at[chosen]], xy[at[chosen] + 1]], axis=1))
    obj = np.concatenate(owners)
    edge = mix(np.concatenate(hashes) ^ mix(obj.astype(np.uint64)))
    order = np.argsort(edge)
    ordered = edge[order]
    first = np.ones(len(edge), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    shares = np.zeros(count, dtype=bool)
    shares[obj[order][~first]] = True
    starts = np.flatnonzero(first)
    odd = starts[np.diff(starts, append=len(edge)) % 2 == 1]
    by_object = order[odd][np.argsort(obj[order[odd]], kind="stable")]
    return _Edges(shares, np.concatenate(ends)[by_object], obj[by_object])


def _outlined(edges: _Edges, objects: np.ndarray, area: np.ndarray) -> np.ndarray:
    """The footprint of each of `objects` (ascending) as the area its outline edges enclose,
    None where that is not valid or its area not the faces' `area` (faces that overlap)."""
    chosen = np.isin(edges.owner, objects)
    lines = edges.outline[chosen].reshape(-1, 2)
    per_object = np.bincount(edges.owner[chosen], minlength=int(objects.max(initial=-1)) + 1)
    nesting = (np.arange(0, len(lines) + 1, 2), offsets(per_object[objects]))
    outlines = shapely.from_ragged_array(GeometryType.MULTILINESTRING, lines, nesting)
    out = np.asarray(shapely.build_area(outlines), dtype=object)
    fits = (
        (area > 0)
        & shapely.is_valid(out)
        & (np.abs(shapely.area(out) - area) <= AREA_TOLERANCE * area)
    )
    out[~fits] = None
    return out


GROUP = 8
"""At most this many objects in one coverage union call: GEOS refuses the whole call for one
object's overlapping faces, and the call is halved until that object is found. On Delft (569
objects, 2 refused) 1 to 32 objects a call take the same time (within the noise), all 569 in
one call 1.4-2x that."""


def _unions(merged: np.ndarray) -> np.ndarray:
    """The union of each multipolygon's faces: a coverage union where they only share edges,
    for many objects in one GEOS call, else a full union of the repaired faces."""
    out = np.concatenate(
        [_coverage_unions(merged[lo : lo + GROUP]) for lo in range(0, len(merged), GROUP)]
    )
    for k in np.flatnonzero(~shapely.is_valid(out)):  # overlapping faces (None: refused)
        out[k] = shapely.union_all(shapely.make_valid(shapely.get_parts(merged[k])))
    return out


def _coverage_unions(merged: np.ndarray) -> np.ndarray:
    """Coverage unions of multipolygons' faces, None for those GEOS refuses (found by halving)."""
    try:
        return np.asarray(shapely.coverage_union_all(merged[:, None], axis=1), dtype=object)
    except shapely.errors.GEOSException:
        if len(merged) == 1:
            return np.full(1, None, dtype=object)
    half = len(merged) // 2
    return np.concatenate([_coverage_unions(merged[:half]), _coverage_unions(merged[half:])])
