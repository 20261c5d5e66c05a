"""The compiled kernels of footprints and measures (pipelines/geo/edges.pyx's outline, rings
and the faces a footprint keeps, pipelines/geo/newell.pyx's vectors, volumes and heights,
pipelines/geo/taken.pyx's faces taken out) give the numpy path's results bit for bit.

Objects are drawn as cells of a small grid, each cell two triangles (a ground in patches, as
Delft's are written), facing down or up, some cells left out (holes, courtyards, parts apart,
parts meeting at a corner), some triangles written the other way round or twice (overlapping
faces, tangled outlines), a vertex repeated (an edge of no length), over a roof; and faces of
random positions with holes and coordinates that are not finite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core import footprints, solids

pytestmark = pytest.mark.skipif(
    solids.compiled is None or solids.newell is None or solids.taken is None,
    reason="the kernels did not build",
)


@contextmanager
def numpy_path() -> Iterator[None]:
    """The numpy path while in the block: the kernels set aside."""
    kernels = solids.compiled, solids.newell, solids.taken
    solids.compiled = solids.newell = solids.taken = None  # type: ignore[assignment]
    try:
        yield
    finally:
        solids.compiled, solids.newell, solids.taken = kernels


def both(run: Callable[[], Any]) -> tuple[Any, Any]:
    """`run`'s result with the kernels, and on the numpy path."""
    got = run()
    with numpy_path():
        return got, run()


def same_bits(got: np.ndarray | None, want: np.ndarray | None) -> None:
    if want is None:  # FlatFaces.rows, where no connector gave them
        assert got is None
        return
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


cell = st.tuples(st.integers(0, 3), st.integers(0, 3))
GRID_OBJECT = {
    "cells": st.sets(cell, min_size=1, max_size=10),
    "down": st.booleans(),  # a bottom (clockwise from above) or faces looking up
    "flipped": st.sets(st.integers(0, 19), max_size=3),  # triangles written reversed
    "twice": st.sets(st.integers(0, 19), max_size=2),  # triangles written again
    "repeat": st.booleans(),  # the first triangle's first vertex written twice
    "size": st.sampled_from([1.0, 0.1, 2.5, 1e-3]),
    "origin": st.tuples(st.floats(-1e5, 1e5), st.floats(-1e5, 1e5)),
    "roof": st.booleans(),
}
grid_object = st.fixed_dictionaries(GRID_OBJECT)
# objects of 17 outline edges and more, each sorted by the kernels' quicksort (16 and fewer
# by its insertion sort): cells of a wider grid, many of them apart
wide_object = st.fixed_dictionaries(
    {**GRID_OBJECT, "cells": st.sets(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=9)}
)


def grid_faces(spec: dict[str, Any]) -> list[shapely.Polygon]:
    """The object `spec` draws: its cells' triangles at height 0, maybe a roof at 5."""
    s, (x0, y0) = spec["size"], spec["origin"]
    out = []
    for i, j in sorted(spec["cells"]):
        a, b, c, d = (
            (x0 + (i + u) * s, y0 + (j + v) * s) for u, v in ((0, 0), (1, 0), (1, 1), (0, 1))
        )
        for tri in ([a, b, c], [a, c, d]):
            k = len(out)
            ring = tri[::-1] if spec["down"] != (k in spec["flipped"]) else tri
            if k == 0 and spec["repeat"]:
                ring = [ring[0], *ring]
            out.append(shapely.Polygon([(x, y, 0.0) for x, y in ring]))
            if k in spec["twice"]:
                out.append(out[-1])
    if spec["roof"]:
        out.append(shapely.Polygon([(x0, y0, 5), (x0 + s, y0, 5), (x0 + s, y0 + s, 5)]))
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(grid_object, min_size=1, max_size=6) | st.lists(wide_object, min_size=1, max_size=2),
    st.booleans(),
)
def test_footprints_traced_by_the_kernels_are_numpys(specs, outlines):
    """The footprints (their WKB: rings started and turned the same), the edges they are
    traced from and the rings they chain into are the numpy path's."""
    geometries = np.array([shapely.MultiPolygon(grid_faces(s)) for s in specs], dtype=object)
    faces = solids.Faces.of(geometries)
    got, want = both(lambda: footprints.footprints(geometries, None, faces, outlines))
    assert shapely.to_wkb(got).tolist() == shapely.to_wkb(want).tolist()
    plane = faces.area_vectors((2,))[:, 0]
    for keep in ([plane > 0], [np.ones(len(faces.owner), bool)]):  # some faces left out, none
        got, want = both(lambda keep=keep: footprints._edges([faces], keep, len(specs), outlines))
        for g, w in zip(got, want, strict=True):
            same_bits(g, w)
    # an object's edges in two runs (its faces in both sets): counted and placed by object
    twice = both(lambda: footprints._edges([faces, faces], [plane > 0] * 2, len(specs), outlines))
    for g, w in zip(*twice, strict=True):
        same_bits(g, w)
    objects = np.flatnonzero(~got.tangled)
    ccw = np.bincount(faces.owner, weights=plane > 0, minlength=len(specs))[objects] > 0
    area = np.bincount(faces.owner, weights=np.abs(plane) / 2, minlength=len(specs))[objects]
    chained, chained_np = both(lambda: footprints._chained(got, objects, area, ccw))
    assert shapely.to_wkb(chained).tolist() == shapely.to_wkb(chained_np).tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(grid_object, min_size=2, max_size=6), st.booleans(), st.data())
def test_edges_hashed_object_by_object_are_the_batch_s(specs, traced, data):
    """The kernel that hashes each object's edges as it reads its rows (face_outline) gives
    `outline`'s results on `edge_hashes`' arrays of the whole batch, bit for bit, whichever
    faces are kept; and None where an object's faces come in two runs (its edges would be
    counted apart), for the batch's path to count."""
    geometries = np.array([shapely.MultiPolygon(grid_faces(s)) for s in specs], dtype=object)
    faces = solids.Faces.of(geometries)
    count = len(faces.owner)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=count, max_size=count)))
    xy, kernel = faces.coords[:, :2], solids.compiled
    ring, polygon, owner = (np.asarray(a, dtype=np.int64) for a in faces[1:4])
    edge, face, at, forward = faces.edge_hashes(xy.view(np.uint64), keep)
    want = kernel.outline(edge, owner[face], at, forward.view(np.uint8), xy, len(specs), traced)
    key, kept = xy.view(np.uint64), keep.view(np.uint8)
    got = kernel.face_outline(key, xy, ring, polygon, owner, kept, len(specs), traced)
    for g, w in zip(got, want, strict=True):
        same_bits(g, w)
    apart = owner.copy()
    apart[-1] = 0  # the last face (the last object's: not the first's) given to the first
    assert kernel.face_outline(key, xy, ring, polygon, apart, kept, len(specs), traced) is None


plane_value = st.floats(-1e4, 1e4, allow_nan=False) | st.sampled_from(
    [0.0, -0.0, np.nan, np.inf, -np.inf]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(plane_value, max_size=6)), max_size=8))
def test_faces_kept_by_the_kernel_are_numpys(objects):
    """Which faces the footprints keep (of each set) and each object's tallies (whether it has
    a face, its kept faces, their area added in order, those looking down and up) are the
    numpy path's, bit for bit: objects of ground surfaces (the first set) and of their own
    faces (the second), objects without faces, faces of no area, of NaN or infinite area."""
    grounded = np.array([g for g, _ in objects], dtype=bool)
    sets, plane = [], []
    for ground in (True, False):
        mine = [(k, p) for k, (g, planes) in enumerate(objects) if g == ground for p in planes]
        owner = np.array([k for k, _ in mine], dtype=np.int64)
        sets.append(solids.Faces(np.zeros((0, 3)), owner[:0], owner[:0], owner))
        plane.append(np.array([p for _, p in mine], dtype=float))
    got, want = both(lambda: footprints._kept(sets, plane, grounded, len(objects)))
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True) if isinstance(g, list) else [(g, w)]:
            same_bits(a, b)


finite = st.floats(-1e4, 1e4, allow_nan=False)
wild = finite | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0])


def rings(coordinate: st.SearchStrategy[float]) -> st.SearchStrategy[list]:
    return st.lists(st.tuples(coordinate, coordinate, coordinate), min_size=3, max_size=9)


# most faces finite, with holes; some with NaN, infinities and signed zeros
face = st.tuples(rings(finite), st.lists(rings(finite), max_size=2)) | st.tuples(
    rings(wild), st.just([])
)


def flat_faces(objects: list[list[tuple[list, list[list]]]]) -> solids.Faces:
    """The faces of `objects` (each faces of a shell and holes) as `Faces` holds them, rings
    closed: built from the arrays, as GEOS takes no NaN."""
    rings = [(r, k) for k, f in enumerate(f for o in objects for f in o) for r in [f[0], *f[1]]]
    coords = np.array([p for r, _ in rings for p in [*r, r[0]]], dtype=float).reshape(-1, 3)
    ring = np.repeat(np.arange(len(rings)), [len(r) + 1 for r, _ in rings])
    polygon = np.array([k for _, k in rings], dtype=np.int64)
    owner = np.repeat(np.arange(len(objects)), [len(o) for o in objects])
    return solids.Faces(coords, ring, polygon, owner)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(face, max_size=5), st.booleans()), min_size=1, max_size=5))
def test_newell_vectors_and_volumes_of_the_kernel_are_numpys(drawn):
    """Newell's vectors (every axis, the plane's alone) and the volumes are the numpy path's
    sums, bit for bit: faces with holes, positions repeated, NaN and infinities, objects
    without faces; an object's faces written twice where drawn so (a closed shell: every
    edge twice, so that it has a volume)."""
    objects = [f + f if twice else f for f, twice in drawn]
    faces = flat_faces(objects)
    geometries = np.empty(len(objects), dtype=object)
    with np.errstate(all="ignore"):
        for axes in ((0, 1, 2), (2,)):
            same_bits(*both(lambda axes=axes: faces.area_vectors(axes)))
        (volume, vectors, _), (volume_np, vectors_np, _) = both(
            lambda: solids.volumes_and_faces(geometries, faces)
        )
    same_bits(volume, volume_np)
    same_bits(vectors, vectors_np)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(face, max_size=5), min_size=1, max_size=5))
def test_heights_of_the_kernel_are_numpys(objects):
    """Each object's height (top minus bottom of its faces' Z) that the volumes' pass tells is
    the numpy path's, bit for bit: NaN passed over, infinities, signed zeros (a height of zero
    is +0 on both), objects without faces."""
    faces = flat_faces(objects)
    geometries = np.empty(len(objects), dtype=object)
    with np.errstate(all="ignore"):
        extents = solids.volumes_and_faces(geometries, faces)[2]
        got = solids.heights(geometries, faces, extents)
        with numpy_path():
            want = solids.heights(geometries, faces)
    same_bits(got, want)
    assert not np.signbit(got[got == 0]).any()


# coordinates of half millimetres (rounded to even), and beyond 2**51 mm (a double's step a
# half millimetre and more)
half_millimetre = st.integers(-(10**7), 10**7).map(lambda n: (n + 0.5) / 1000)
far = st.floats(2.0**51 / 1000 / 4, 2.0**60 / 1000) | st.floats(-(2.0**60) / 1000, -1e10)
corner = half_millimetre | far | wild
NUDGES = (0.0, 1e-4, -1e-4, 4e-4, -4e-4, 5e-4, -5e-4, 1e-3)
TETRAHEDRON = ((0, 1, 2), (0, 3, 1), (1, 3, 2), (0, 2, 3))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.tuples(corner, corner, corner), min_size=4, max_size=4),
            st.lists(st.sampled_from(NUDGES), min_size=12, max_size=12),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_closed_shells_of_the_kernel_are_numpys_to_the_millimetre(tetrahedra):
    """Whether each tetrahedron closes (told in the volumes' pass), its vertices written again
    in each face a little apart (0 to 1 mm in x: the same millimetre or not, a half millimetre
    rounded to even), is the numpy path's answer: vertices at half millimetres, beyond 2**51
    mm, NaN and infinite."""
    objects = [
        [
            ([(v[k][0] + nudge[3 * f + c], v[k][1], v[k][2]) for c, k in enumerate(ks)], [])
            for f, ks in enumerate(TETRAHEDRON)
        ]
        for v, nudge in tetrahedra
    ]
    faces = flat_faces(objects)
    ring, polygon, owner = (np.asarray(a, dtype=np.int64) for a in faces[1:4])
    with np.errstate(all="ignore"):
        got = solids.newell.volumes(faces.coords, ring, polygon, owner, len(objects))[2]
        with numpy_path():
            same_bits(got, solids._closed(faces, len(objects)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(face, max_size=5), min_size=1, max_size=6), st.data(), st.booleans())
def test_faces_taken_by_the_kernel_are_numpys(objects, data, renumber):
    """The faces of some objects taken out (none, some, all; renumbered or not) are the numpy
    path's arrays, bit for bit: faces with holes, objects without faces, rings left without
    positions (GEOS holds no empty ring: a connector's arrays leave it out)."""
    faces = flat_faces(objects)
    emptied = data.draw(st.sets(st.integers(0, max(len(faces.polygon) - 1, 0)), max_size=2))
    kept = ~np.isin(faces.ring, list(emptied))
    faces = faces._replace(coords=faces.coords[kept], ring=faces.ring[kept])
    rows = sorted(data.draw(st.sets(st.integers(0, len(objects) - 1))))
    got, want = both(lambda: faces.take(np.array(rows, dtype=np.int64), renumber))
    for g, w in zip(got, want, strict=True):
        same_bits(g, w)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(face, max_size=4), min_size=1, max_size=5), st.integers(0, 3))
def test_every_object_taken_in_order_is_the_faces_as_they_are(objects, beyond):
    """Every object taken in order (and objects beyond the last face's owner, which own
    none), told without a pass, gives the faces the pass over them gives, bit for bit; none
    taken gives no faces."""
    faces = flat_faces(objects)
    rows = np.arange(len(objects) + beyond)
    passed = faces.take(np.append(rows, len(rows) + 1))  # not 0 to n - 1: the pass
    for got, want in zip(faces.take(rows), passed, strict=True):
        same_bits(got, want)
    none = faces.take(np.zeros(0, np.int64))
    assert len(none.coords) == len(none.ring) == len(none.polygon) == len(none.owner) == 0


def test_a_cube_s_volume_and_a_square_s_footprint_come_from_the_kernels():
    """A fact the kernels must get right on their own: a 2 x 3 x 4 box's volume is 24 and its
    footprint the 2 x 3 rectangle, traced from its bottom in two triangles."""
    x, y, w, d, h = 10.0, 20.0, 2.0, 3.0, 4.0
    bottom = [
        shapely.Polygon([(x, y, 0), (x, y + d, 0), (x + w, y + d, 0)]),
        shapely.Polygon([(x, y, 0), (x + w, y + d, 0), (x + w, y, 0)]),
    ]
    top = shapely.Polygon([(x, y, h), (x + w, y, h), (x + w, y + d, h), (x, y + d, h)])
    walls = [
        shapely.Polygon([(x, y, 0), (x + w, y, 0), (x + w, y, h), (x, y, h)]),
        shapely.Polygon([(x + w, y, 0), (x + w, y + d, 0), (x + w, y + d, h), (x + w, y, h)]),
        shapely.Polygon([(x + w, y + d, 0), (x, y + d, 0), (x, y + d, h), (x + w, y + d, h)]),
        shapely.Polygon([(x, y + d, 0), (x, y, 0), (x, y, h), (x, y + d, h)]),
    ]
    geometries = np.array([shapely.MultiPolygon([*bottom, top, *walls])], dtype=object)
    assert solids.volumes(geometries)[0] == pytest.approx(24.0)
    assert solids.heights(geometries, solids.Faces.of(geometries))[0] == h
    got = footprints.footprints(geometries, None, solids.Faces.of(geometries))[0]
    assert got.geom_type == "Polygon" and shapely.equals(got, shapely.box(x, y, x + w, y + d))
