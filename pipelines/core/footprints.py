"""2D footprints of 3D objects: their ground surfaces, else the faces that look down, projected.

The faces of an object's footprint that share edges (a triangulated surface, a bottom split in
patches) form a coverage, whose union is bounded by the edges that are not shared: those are
found for all objects of a batch at once (a 64-bit hash per edge, counted per object) and
chained into rings (edges.pyx; numpy's sorts where it did not build), GEOS asked only to make
them polygons. The result is kept where it is valid and its area is the
faces' own (no face overlaps another); the others are merged by coverage unions, and a full
union where faces overlap.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely
from shapely import GeometryType

from citypipe.connectors.ragged import offsets
from citypipe.core import solids
from citypipe.core.solids import Faces, Ragged, mix, position_hashes
from citypipe.geo import validity
from citypipe.geo.surfaces import SurfaceColumns

__all__ = ["footprints"]

AREA_TOLERANCE = 1e-9
"""The outline of an object's faces is its footprint where the area it encloses is the sum of
its faces' areas to this fraction (float rounding of the sums); faces that overlap by more
are merged by a union."""


def footprints(
    geometries: np.ndarray,
    surfaces: SurfaceColumns | None,
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
    ground_of, ground_faces = _grounds(surfaces, faces)
    grounded = np.zeros(n, dtype=bool)
    grounded[ground_of] = True
    own = np.flatnonzero(~grounded)
    own_faces = Faces.of(geometries[own]) if faces is None else faces.take(own)
    sets = [  # the owner of a face is its object, in order (as the multipolygons need it)
        ground_faces._replace(owner=ground_of[ground_faces.owner]),
        own_faces._replace(owner=own[own_faces.owner]),
    ]
    plane = [f.area_vectors((2,))[:, 0] for f in sets]  # twice the area in the plane, signed
    chosen = _kept(sets, plane, grounded, n)
    rest = ~chosen.has & ~shapely.is_missing(geometries)  # no polygon: the geometry itself, in 2D
    out[rest] = shapely.force_2d(geometries[rest])
    if not chosen.has.any():
        return out
    # faces that share an edge are no valid multipolygon: GEOS need not be asked, only
    # whether the other faces overlap; an object's one face is its footprint, whatever its
    # edges, so only the edges of objects of several faces are hashed
    edges = _edges(sets, chosen.several, n, outlines)
    traced = np.flatnonzero(edges.shares & (chosen.kept > 1) & outlines)
    # faces all turning one way in the plane: their outline edges chain into rings
    one_way = ((np.minimum(chosen.down, chosen.up) == 0) & ~edges.tangled)[traced]
    chain = traced[one_way]
    out[chain] = _chained(edges, chain, chosen.area[chain], chosen.up[chain] > 0)
    again = traced[shapely.is_missing(out[traced])]
    out[again] = _outlined(edges, again, chosen.area[again])
    done = np.zeros(n, dtype=bool)
    done[traced] = ~shapely.is_missing(out[traced])
    for faces_of, kept in zip(sets, chosen.keep, strict=True):
        merging = kept & ~done[faces_of.owner]
        if not merging.any():  # a set without faces left (no ground surfaces, all traced)
            continue
        merged, sizes, single = faces_of.shapes_2d(merging)
        at = np.flatnonzero(sizes)
        out[at] = _valid(merged[at], sizes[at], edges.shares[at], single)
    return out


class _Kept(NamedTuple):
    """The faces a batch's footprints are made of, of each set of faces (`footprints`' sets)."""

    keep: list[np.ndarray]
    """Per set, per face: its object's footprint keeps it (its ground surfaces, else its faces
    that look down, else all its faces)."""
    several: list[np.ndarray]
    """Per set, per face: kept, and its object keeps several."""
    has: np.ndarray
    """Per object: it has a face."""
    kept: np.ndarray
    """Per object: the faces kept."""
    area: np.ndarray
    """Per object: the kept faces' area in the plane, added in their order."""
    down: np.ndarray
    """Per object: the kept faces that look down (turn clockwise in the plane)."""
    up: np.ndarray
    """Per object: the kept faces that look up."""


def _kept(sets: list[Faces], plane: list[np.ndarray], grounded: np.ndarray, count: int) -> _Kept:
    """Which faces of `sets` (`plane`: each face's twice signed area in the plane) the footprints
    of `count` objects (`grounded`: those of ground surfaces) keep, and their tallies: in one
    compiled loop (edges.kept_faces), else numpy's. Each object's faces are in one set alone
    (its ground surfaces or its own), so one tally over both sets adds what each set's adds."""
    z, obj = _joined(plane), _joined([f.owner for f in sets])
    if solids.compiled is not None:
        owner, ground = np.asarray(obj, dtype=np.int64), grounded.view(np.uint8)
        keep, several, *tallies = solids.compiled.kept_faces(z, owner, ground, count)
    else:
        down = z < 0
        has = np.bincount(obj, minlength=count) > 0
        any_down = np.bincount(obj, weights=down, minlength=count) > 0
        keep = grounded[obj] | ~any_down[obj] | down
        kept = np.bincount(obj[keep], minlength=count)
        several = keep & (kept[obj] > 1)
        area = np.bincount(obj[keep], weights=np.abs(z[keep]) / 2, minlength=count)
        area = area.astype(float, copy=False)  # numpy's bincount of nothing: integers
        turns = [np.bincount(obj[keep & way], minlength=count) for way in (down, z > 0)]
        tallies = [has, kept, area, *turns]
    at = np.cumsum([len(f.owner) for f in sets])[:-1]
    return _Kept(np.split(keep, at), np.split(several, at), *tallies)


def _grounds(surfaces: SurfaceColumns | None, faces: Faces | None) -> tuple[np.ndarray, Faces]:
    """The object of each ground surface, and their faces (owned by their place in order):
    taken from the objects' `faces` where every ground surface is one of those, in their
    order, else read from their polygons (CityGML's come in another order than the solid's)."""
    if surfaces is None:
        return np.zeros(0, np.int64), Faces.of(np.empty(0, dtype=object))
    is_ground = surfaces.named("Ground")
    ground_of, face = surfaces.owner[is_ground], surfaces.face[is_ground]
    if faces is not None and not len(face):  # none (Delft's): the faces' starts not counted
        return ground_of, faces.pick(face)
    if faces is not None and (face >= 0).all():
        picked = faces.starts(len(surfaces))[ground_of] + face
        if (np.diff(picked) > 0).all():
            return ground_of, faces.pick(picked)
    return ground_of, Faces.of(surfaces.polygons()[is_ground])


def _valid(
    merged: np.ndarray, sizes: np.ndarray, shares: np.ndarray, single: Ragged | None
) -> np.ndarray:
    """Each object's footprint from its faces (its face, or a multipolygon of `sizes` faces):
    its face, or its faces where they neither share an edge nor overlap, else their union.
    `single`: the arrays the faces of the objects of one face are built of, whose validity is
    told from them (`Faces.shapes_2d`)."""
    valid = np.zeros(len(merged), dtype=bool)
    one = sizes == 1
    if single is not None:
        valid[one] = validity.is_valid_built(merged[one], *single)
    apart = np.flatnonzero(~shares & ~one)  # faces that share no edge may still overlap
    valid[apart] = shapely.is_valid(merged[apart])  # multipolygons: GEOS's (validity.is_valid's)
    rows = np.flatnonzero(~valid)
    if len(rows):
        merged[rows] = _unions(merged[rows])
    return merged


class _Edges(NamedTuple):
    """The edges of the kept faces of a batch's objects, in the plane."""

    shares: np.ndarray
    """Per object: two of its kept faces have an edge of the same two positions (bit for bit,
    as GEOS compares them)."""
    outline: np.ndarray
    """(m, 2, 2): the edges no other kept face of the object shares (an odd number of times),
    ordered by object; each the way round its faces run it more often."""
    owner: np.ndarray
    """The object of each outline edge."""
    tangled: np.ndarray
    """Per object: an edge its faces run more than once the same way round, beyond the times
    they run it back (faces that overlap): its outline does not chain into rings."""


def _edges(sets: list[Faces], keep: list[np.ndarray], count: int, outlines: bool) -> _Edges:
    """The shared and the outline edges of the faces `keep` picks, each edge hashed with its
    object so that one sort finds both; the shared alone unless `outlines` are traced."""
    hashes, owners, starts_at, coords, ways = [], [], [], [], []
    base = 0
    placed = [(f, k) for f, k in zip(sets, keep, strict=True) if len(f.coords)]
    # a set with no face kept adds no edge, and its positions need no copy into the others'
    picked = [(f, k) for f, k in placed if k.any()]
    if solids.compiled is not None and len(picked) == 1:  # each object's edges hashed as it runs
        traced = _face_outline(*picked[0], count, outlines)
        if traced is not None:
            return traced
    for faces, kept in picked or placed[:1]:
        xy = faces.coords[:, :2]  # the bits of x and y, read in place
        edge, face, at, forward = faces.edge_hashes(xy.view(np.uint64), kept)
        hashes.append(edge)
        owners.append(faces.owner[face])
        starts_at.append(at + base)
        ways.append(forward)
        coords.append(xy)
        base += len(xy)
    xy, at, obj, forward, hashed = map(_joined, (coords, starts_at, owners, ways, hashes))
    if solids.compiled is not None:
        way8 = forward.view(np.uint8)
        return _Edges(*solids.compiled.outline(hashed, obj, at, way8, xy, count, outlines))
    way = np.where(forward, 1, -1)
    edge = mix(hashed ^ mix(obj.astype(np.uint64)))
    order = np.argsort(edge)
    ordered = edge[order]
    first = np.ones(len(edge), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    shares = np.zeros(count, dtype=bool)
    shares[obj[order][~first]] = True
    if not outlines:
        return _Edges(shares, np.zeros((0, 2, 2)), np.zeros(0, np.int64), np.zeros(count, bool))
    starts = np.flatnonzero(first)
    net = np.add.reduceat(way[order], starts) if len(starts) else np.zeros(0, np.int64)
    odd = np.diff(starts, append=len(edge)) % 2 == 1
    tangled = np.zeros(count, dtype=bool)
    tangled[obj[order[starts[np.abs(net) != odd]]]] = True
    rows = order[starts[odd]]
    by_object = np.argsort(obj[rows], kind="stable")
    backwards = way[rows] != np.sign(net[odd])
    start = at[rows] + backwards  # an edge run backwards starts at its end
    outline = np.stack([xy[start], xy[at[rows] + 1 - backwards]], axis=1)
    return _Edges(shares, outline[by_object], obj[rows][by_object], tangled)


def _face_outline(faces: Faces, kept: np.ndarray, count: int, outlines: bool) -> _Edges | None:
    """`_edges` of one set's faces by the kernel that hashes each object's edges into its
    table as it reads its positions (edges.face_outline); None where an object's positions
    come in two runs or more."""
    xy = faces.coords[:, :2]
    ring, polygon, owner = (np.asarray(a, dtype=np.int64) for a in faces[1:4])
    assert solids.compiled is not None
    traced = solids.compiled.face_outline(
        xy.view(np.uint64), xy, ring, polygon, owner, kept.view(np.uint8), count, outlines
    )
    return None if traced is None else _Edges(*traced)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The arrays `parts` one after another: the one itself where the others are empty (a
    batch's objects have their ground surfaces, or none has), not copied."""
    full = [p for p in parts if len(p)]
    return full[0] if len(full) == 1 else np.concatenate(parts)


def _chained(edges: _Edges, objects: np.ndarray, area: np.ndarray, ccw: np.ndarray) -> np.ndarray:
    """The footprint of each of `objects` (ascending) whose outline edges, directed as their
    faces turn (counter-clockwise where `ccw`), chain into rings (one edge leaving each
    position, one arriving): the polygon of its one ring that turns as the faces (the shell)
    and the others (holes), where it is valid and has the faces' `area`; None for the others
    (positions where the outline touches itself, several shells)."""
    out = np.full(len(objects), None, dtype=object)
    if not len(objects):  # none traced (CityGML's, objects of one face): no GEOS call
        return out
    if solids.compiled is not None:
        kernel = solids.compiled.rings
        positions, rings, first, fine = kernel(
            edges.outline, edges.owner, objects, ccw.view(np.uint8)
        )
        made = shapely.from_ragged_array(GeometryType.POLYGON, positions, (rings, first))
        out[fine] = made
        valid = np.zeros(len(objects), dtype=bool)
        valid[fine] = validity.is_valid_built(made, positions, rings, first)
        return _fitting(out, area, valid)
    chosen = np.flatnonzero(np.isin(edges.owner, objects))
    if not len(chosen):
        return out
    ends, owner = edges.outline[chosen], edges.owner[chosen]
    tag = mix(owner.astype(np.uint64))
    start, end = (
        position_hashes(np.ascontiguousarray(ends[:, k]).view(np.uint64)) ^ tag for k in (0, 1)
    )
    by_start = np.argsort(start)
    starts = start[by_start]
    found = np.minimum(np.searchsorted(starts, end), len(starts) - 1)
    twice = np.flatnonzero(starts[1:] == starts[:-1])
    arriving = np.sort(end)
    met = np.flatnonzero(arriving[1:] == arriving[:-1])  # two edges end at one position
    broken = np.unique(
        np.concatenate(
            [
                owner[starts[found] != end],
                owner[by_start[twice]],
                owner[np.isin(end, arriving[met])],
            ]
        )
    )
    succ = by_start[found]
    is_broken = np.isin(owner, broken)
    succ[is_broken] = np.flatnonzero(is_broken)
    ring, place = _cycles(succ)
    order = np.lexsort((place, ring))
    heads = np.flatnonzero(np.diff(ring[order], prepend=-1))
    sizes = np.diff(np.append(heads, len(order))) + 1  # closed: the first position again
    ring_owner = owner[order[heads]]
    a, b = ends[order, 0], ends[order, 1]
    turn = np.add.reduceat(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], heads)
    k = np.searchsorted(objects, ring_owner)
    shell = (turn > 0) == ccw[k]
    fine = (np.bincount(k[shell], minlength=len(objects)) == 1) & ~np.isin(objects, broken)
    rings = np.lexsort((~shell, ring_owner))  # each object's shell, then its holes
    rings = rings[fine[k[rings]]]
    closed = np.insert(a, np.append(heads[1:], len(order)), a[heads], axis=0)
    first = offsets(sizes)[:-1][rings]
    rows = np.repeat(first - offsets(sizes[rings])[:-1], sizes[rings]) + np.arange(
        sizes[rings].sum()
    )
    per_object = np.bincount(k[rings], minlength=len(objects))[fine]
    nesting = (offsets(sizes[rings]), offsets(per_object))
    out[fine] = shapely.from_ragged_array(GeometryType.POLYGON, closed[rows], nesting)
    return _fitting(out, area, validity.is_valid(out))


def _cycles(succ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a permutation `succ` (each element's next), the cycle of each element (named by its
    lowest element) and its place in it from there; by pointer jumping, in log2 steps."""
    n = len(succ)
    label, jump = np.arange(n), succ.copy()
    for _ in range(max(1, int(n).bit_length())):
        label = np.minimum(label, label[jump])
        jump = jump[jump]
    head = label == np.arange(n)
    # steps to the cycle's lowest element: its own next is itself, at distance 0
    ahead, jump = (~head).astype(np.int64), np.where(head, np.arange(n), succ)
    for _ in range(max(1, int(n).bit_length())):
        ahead, jump = ahead + ahead[jump], jump[jump]
    length = np.bincount(label, minlength=n)[label]
    return label, (length - ahead) % length


def _fitting(out: np.ndarray, area: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`out` where each is `valid` and has the faces' `area` (no face overlaps another); None
    for the others."""
    fits = (area > 0) & valid & (np.abs(shapely.area(out) - area) <= AREA_TOLERANCE * area)
    out[~fits] = None
    return out


def _outlined(edges: _Edges, objects: np.ndarray, area: np.ndarray) -> np.ndarray:
    """The footprint of each of `objects` (ascending) as the area its outline edges enclose,
    None where that is not valid or its area not the faces' `area` (faces that overlap)."""
    if not len(objects):  # every traced outline chained into rings, or none traced
        return np.full(0, None, dtype=object)
    chosen = np.isin(edges.owner, objects)
    lines = edges.outline[chosen].reshape(-1, 2)
    per_object = np.bincount(edges.owner[chosen], minlength=int(objects.max(initial=-1)) + 1)
    nesting = (np.arange(0, len(lines) + 1, 2), offsets(per_object[objects]))
    outlines = shapely.from_ragged_array(GeometryType.MULTILINESTRING, lines, nesting)
    out = np.asarray(shapely.build_area(outlines), dtype=object)
    return _fitting(out, area, validity.is_valid(out))


GROUP = 8
"""At most this many objects in one coverage union call: GEOS refuses the whole call for one
object's overlapping faces, and the call is halved until that object is found. On Delft (569
objects, 2 refused) 1 to 32 objects a call take the same time (within the noise), all 569 in
one call 1.4-2x that."""


def _unions(merged: np.ndarray) -> np.ndarray:
    """The union of each multipolygon's faces: a coverage union where they only share edges,
    for many objects in one GEOS call, else a full union of the repaired faces. An object's
    one face whose ring touches itself is made valid by the coverage union too (Melbourne's
    5 road faces: 0.21 ms, where make_valid and union_all take 3.7 and start its ring
    elsewhere)."""
    out = np.concatenate(
        [_coverage_unions(merged[lo : lo + GROUP]) for lo in range(0, len(merged), GROUP)]
    )
    for k in np.flatnonzero(~validity.is_valid(out)):  # overlapping faces (None: refused)
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
