"""3D measures of many objects at once: the closed-shell test, volumes and footprints of a batch
agree with each object taken alone, and with what a box's dimensions say.

Boxes are generated (any size, place, and a face left out or not) and the shell test is
checked against a plain count of each object's edges; footprints of faces split in patches
(a ground surface in triangles, as the Delft CityJSON model has them) against the rectangle
they cover.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import coordinates
from citypipe.connectors.base import Surface
from citypipe.core import footprints, orientation, solids
from citypipe.geo.surfaces import SurfaceColumns


def box(x: float, y: float, w: float, d: float, h: float) -> list[shapely.Polygon]:
    """A box's six faces, counter-clockwise seen from outside: ground, roof, four walls."""
    x1, y1 = x + w, y + d
    P = lambda *pts: shapely.Polygon(pts)
    return [
        P((x, y, 0), (x, y1, 0), (x1, y1, 0), (x1, y, 0)),
        P((x, y, h), (x1, y, h), (x1, y1, h), (x, y1, h)),
        P((x, y, 0), (x1, y, 0), (x1, y, h), (x, y, h)),
        P((x1, y, 0), (x1, y1, 0), (x1, y1, h), (x1, y, h)),
        P((x1, y1, 0), (x, y1, 0), (x, y1, h), (x1, y1, h)),
        P((x, y1, 0), (x, y, 0), (x, y, h), (x, y1, h)),
    ]


def courtyard(
    faces: list[shapely.Polygon], hole: list[tuple[float, float]], h: float
) -> list[shapely.Polygon]:
    """A box's faces (`box`) with a courtyard `hole` (x, y corners, counter-clockwise) through
    it: the ground and the roof with the hole as a ring, and four inner walls facing into it."""
    ground = shapely.Polygon(faces[0].exterior.coords, [[(x, y, 0) for x, y in hole]])
    roof = shapely.Polygon(faces[1].exterior.coords, [[(x, y, h) for x, y in reversed(hole)]])
    inner = [
        shapely.Polygon([(*a, 0), (*a, h), (*b, h), (*b, 0)]) for a, b in pairwise([*hole, hole[0]])
    ]
    return [ground, roof, *faces[2:], *inner]


def odd_edges(faces: list[shapely.Polygon]) -> int:
    """How many edges (mm positions, either direction) the faces hold an odd number of times."""
    edges: Counter[frozenset] = Counter()
    for face in faces:
        ring = np.round(np.asarray(face.exterior.coords) * 1000).astype(np.int64)
        for a, b in pairwise(ring):
            if (a != b).any():
                edges[frozenset((tuple(a), tuple(b)))] += 1
    return sum(n % 2 for n in edges.values())


dimension = st.floats(0.5, 80, allow_nan=False)
boxes = st.lists(
    st.tuples(
        st.floats(-1e6, 1e6, allow_nan=False),  # west
        st.floats(-1e6, 1e6, allow_nan=False),  # south
        dimension,
        dimension,
        dimension,
        st.none() | st.integers(0, 5),  # the face left out, if any
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(boxes)
def test_a_batch_of_boxes_has_the_volumes_its_closed_ones_have(specs):
    shells = []
    for x, y, w, d, h, missing in specs:
        faces = box(x, y, w, d, h)
        shells.append([f for i, f in enumerate(faces) if i != missing])
    geometries = np.array([shapely.MultiPolygon(f) for f in shells], dtype=object)
    got = solids.volumes(geometries)
    for (_, _, w, d, h, missing), faces, v in zip(specs, shells, got, strict=True):
        assert (odd_edges(faces) == 0) == (missing is None)
        if missing is None:
            assert v == pytest.approx(w * d * h, rel=1e-6)
        else:
            assert np.isnan(v)


@pytest.mark.skipif(
    solids.compiled is None or solids.newell is None, reason="the kernels (edges.pyx, newell.pyx)"
)
@settings(max_examples=40, deadline=None)
@given(boxes, st.integers(0, 2))
def test_the_compiled_edges_are_numpys(specs, repeated):
    """The kernels' edge hashes and volumes (NaN where a shell is open) are numpy's, bit for
    bit: boxes open and closed, the first with a courtyard (faces with a hole: a ring's index
    is not its face's), a position written twice in a row (an edge of no length), a face
    without Z."""
    shells = []
    for k, (x, y, w, d, h, missing) in enumerate(specs):
        faces = box(x, y, w, d, h)
        if k == 0:
            x0, y0, x1, y1 = x + w / 3, y + d / 3, x + 2 * w / 3, y + 2 * d / 3
            faces = courtyard(faces, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], h)
        faces = [f for i, f in enumerate(faces) if i != missing]
        ring = np.asarray(faces[0].exterior.coords)
        faces[0] = shapely.Polygon(np.insert(ring, 1, ring[:repeated], axis=0), faces[0].interiors)
        shells.append(shapely.MultiPolygon(faces))
    shells.append(shapely.box(0, 0, 1, 1))
    geometries = np.array(shells, dtype=object)
    faces = solids.Faces.of(geometries)
    key = np.ascontiguousarray(faces.coords[:, :2]).view(np.uint64)
    got = faces.edge_hashes(key), solids.volumes(geometries)  # NaN: not closed
    kernels = solids.compiled, solids.newell
    solids.compiled = solids.newell = None  # type: ignore[assignment]
    try:
        want = faces.edge_hashes(key), solids.volumes(geometries)
    finally:
        solids.compiled, solids.newell = kernels
    for g, w in zip(got[0], want[0], strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert got[1].tobytes() == want[1].tobytes()
    assert np.isfinite(got[1][:-1]).tolist() == [m is None for *_, m in specs]


def test_shells_of_a_batch_are_told_apart_whatever_their_order():
    """A closed box, an open one, one without geometry and a line: only the first has a volume,
    in whichever order they come."""
    closed = shapely.MultiPolygon(box(0, 0, 10, 20, 6))
    opened = shapely.MultiPolygon(box(100, 0, 10, 20, 6)[1:])
    line = shapely.LineString([(0, 0, 0), (1, 1, 1)])
    for order in ([closed, opened, None, line], [line, None, opened, closed]):
        got = solids.volumes(np.array(order, dtype=object))
        expected = [1200.0 if g is closed else np.nan for g in order]
        np.testing.assert_allclose(got, expected)


def triangles(x: float, y: float, w: float, d: float, n: int) -> list[shapely.Polygon]:
    """A w x d rectangle at height 0 as 2n triangles in n strips, facing down (a solid's
    bottom), sharing their edges."""
    out = []
    for k in range(n):
        x0, x1 = x + w * k / n, x + w * (k + 1) / n
        out.append(shapely.Polygon([(x0, y, 0), (x0, y + d, 0), (x1, y + d, 0)]))
        out.append(shapely.Polygon([(x0, y, 0), (x1, y + d, 0), (x1, y, 0)]))
    return out


@pytest.mark.parametrize("outlines", [True, False])  # traced from the edges, or GEOS's unions
@pytest.mark.parametrize("group", [8, 1])  # several objects to a GEOS call, or one
def test_footprints_of_triangulated_grounds_are_their_rectangles(group, outlines, monkeypatch):
    monkeypatch.setattr(footprints, "GROUP", group)
    specs = [(0.0, 0.0, 10.0, 20.0, 1), (50.0, 0.0, 8.0, 4.0, 3), (0.0, 90.0, 30.0, 5.0, 7)]
    ground = [triangles(*s) for s in specs]
    roofs = [
        shapely.Polygon([(x, y, 5), (x + w, y, 5), (x + w, y + d, 5)]) for x, y, w, d, _ in specs
    ]
    geometries = np.array(
        [shapely.MultiPolygon([*g, r]) for g, r in zip(ground, roofs, strict=True)], dtype=object
    )
    grounds = [[Surface("GroundSurface", t) for t in g] for g in ground]
    for surfaces in (None, SurfaceColumns.of(grounds, None, lambda pair: Surface(*pair))):
        got = footprints.footprints(geometries, surfaces, outlines=outlines)
        for (x, y, w, d, _), footprint in zip(specs, got, strict=True):
            assert footprint.geom_type == "Polygon" and not footprint.has_z
            assert shapely.equals(footprint, shapely.box(x, y, x + w, y + d))


def test_overlapping_faces_are_joined_by_a_full_union():
    """Two squares that overlap by half are no coverage: GEOS refuses or returns something
    invalid, and the footprint is their union, 1.5 times a square."""
    a = shapely.Polygon([(0, 0, 0), (0, 2, 0), (2, 2, 0), (2, 0, 0)])
    b = shapely.Polygon([(1, 0, 0), (1, 2, 0), (3, 2, 0), (3, 0, 0)])
    fine = triangles(10, 10, 4, 4, 2)
    geometries = np.array([shapely.MultiPolygon([a, b]), shapely.MultiPolygon(fine)], dtype=object)
    got = footprints.footprints(geometries, None)
    assert got[0].is_valid and got[0].area == pytest.approx(6.0)
    assert shapely.equals(got[1], shapely.box(10, 10, 14, 14))


def _frame() -> list[shapely.Polygon]:
    """A 6 x 6 square with a 2 x 2 hole in its middle, as four 6 x 2 / 2 x 2 rectangles in
    triangles around the hole, facing down."""
    return [
        *triangles(0, 0, 6, 2, 3),
        *triangles(0, 4, 6, 2, 3),
        *triangles(0, 2, 2, 2, 1),
        *triangles(4, 2, 2, 2, 1),
    ]


@pytest.mark.parametrize("outlines", [True, False])
def test_footprints_traced_from_triangles_keep_holes_parts_and_touching_corners(outlines):
    """Triangulated grounds as the Delft model writes them: a square around a hole (one shell,
    one hole), two squares apart (two shells), two squares meeting at a corner (an outline
    that touches itself), a square whose triangles all face up (no face looks down: all are
    its footprint, their rings turning the other way): each footprint is the area the
    triangles cover, as the rectangles say."""
    frame = _frame()
    apart = [*triangles(0, 0, 2, 2, 1), *triangles(5, 0, 2, 2, 2)]
    corner = [*triangles(0, 0, 2, 2, 1), *triangles(2, 2, 2, 2, 1)]
    up = [shapely.Polygon(t.exterior.coords[::-1]) for t in triangles(0, 0, 4, 4, 2)]
    geometries = np.array(
        [shapely.MultiPolygon(g) for g in (frame, apart, corner, up)], dtype=object
    )
    got = footprints.footprints(geometries, None, outlines=outlines)
    hole = shapely.box(0, 0, 6, 6).difference(shapely.box(2, 2, 4, 4))
    want = [
        hole,
        shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(5, 0, 7, 2)]),
        shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(2, 2, 4, 4)]),
        shapely.box(0, 0, 4, 4),
    ]
    for footprint, expected in zip(got, want, strict=True):
        assert footprint.is_valid and not footprint.has_z
        assert shapely.equals(footprint, expected)
    assert len(got[0].interiors) == 1


def test_overlapping_faces_that_share_an_edge_are_joined_by_a_full_union():
    """A unit square in two triangles, and a third triangle on the first's base, inside it:
    the edges no two faces share enclose 3/4 of the square, less than the faces' 5/4, so the
    outline is no footprint and the union is: the square."""
    faces = [
        shapely.Polygon([(0, 0, 0), (1, 0, 0), (1, 1, 0)]),
        shapely.Polygon([(0, 0, 0), (1, 1, 0), (0, 1, 0)]),
        shapely.Polygon([(0, 0, 0), (1, 0, 0), (0.5, 0.5, 0)]),
    ]
    got = footprints.footprints(np.array([shapely.MultiPolygon(faces)], dtype=object), None)
    assert got[0].is_valid and shapely.equals(got[0], shapely.box(0, 0, 1, 1))


def test_bad_coordinates_are_found_in_2d_and_3d_geometries_alike():
    flat = shapely.Polygon([(0, 0), (1, 0), (1, 1)])
    solid = shapely.MultiPolygon(box(0, 0, 1, 1, 1))
    nan_height = shapely.Polygon([(0, 0, 1), (1, 0, np.nan), (1, 1, 1)])
    far = shapely.Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1e30)])
    found = coordinates.bad_geometries(np.array([flat, solid, None, nan_height, far], dtype=object))
    assert sorted(found) == [3, 4]
    assert "not finite" in found[3] and "(1.0, 0.0, nan)" in found[3]
    assert "beyond" in found[4]


def test_a_single_face_that_crosses_itself_becomes_a_valid_footprint():
    """A bow tie (one ring crossing itself, as some Melbourne road areas are written) beside a
    box: the bow tie's footprint is its two triangles, valid, of area 2 x 1/2 x 2 x 1."""
    tie = shapely.Polygon([(0, 0, 0), (2, 2, 0), (2, 0, 0), (0, 2, 0)])
    geometries = np.array(
        [shapely.MultiPolygon([tie]), shapely.MultiPolygon(box(10, 10, 3, 4, 5))], dtype=object
    )
    got = footprints.footprints(geometries, None)
    assert got[0].is_valid and got[0].area == pytest.approx(2.0)
    assert shapely.equals(got[1], shapely.box(10, 10, 13, 14))


def test_faces_with_holes_are_measured_without_their_holes():
    """A 10 x 20 x 6 box with a 2 x 3 courtyard through it: the roof and the ground lose the
    courtyard, which adds four inner walls; the volume loses 2 x 3 x 6; the footprint has the
    hole. One face with a hole among faces without is enough to read rings one by one."""
    w, d, h, cx, cy, cw, cd = 10.0, 20.0, 6.0, 4.0, 5.0, 2.0, 3.0
    hole = [(cx, cy), (cx + cw, cy), (cx + cw, cy + cd), (cx, cy + cd)]
    faces = courtyard(box(0, 0, w, d, h), hole, h)
    ground, roof = faces[:2]
    solid = shapely.MultiPolygon(faces)
    geometries = np.array([solid], dtype=object)
    assert solids.volumes(geometries)[0] == pytest.approx((w * d - cw * cd) * h)
    area, tilt, _ = orientation.surface_measures(
        np.array([roof, ground], dtype=object), ["Roof", "G"]
    )
    assert list(area) == [pytest.approx(w * d - cw * cd)] * 2
    assert list(tilt) == [pytest.approx(0), pytest.approx(180)]
    footprint = footprints.footprints(geometries, None)[0]
    assert footprint.area == pytest.approx(w * d - cw * cd) and len(footprint.interiors) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["box", "open", "holed", "none", "line"]), min_size=1, max_size=8))
def test_faces_of_some_objects_are_those_read_from_them(kinds):
    """The faces of a batch cut down to some of its objects (`Faces.take`) are those read from
    these objects alone, with holes, missing geometries and lines among them; the footprints
    and volumes built from them are the same."""
    outer, hole = [(0, 0, 0), (9, 0, 0), (9, 9, 0), (0, 9, 0)], [(3, 3, 0), (3, 6, 0), (6, 6, 0)]
    make = {
        "box": lambda k: shapely.MultiPolygon(box(k, 2 * k, 1 + k, 2, 3)),
        "open": lambda k: shapely.MultiPolygon(box(k, 0, 2, 2, 1 + k)[1:]),
        "holed": lambda k: shapely.MultiPolygon([shapely.Polygon(outer, [hole])]),
        "none": lambda k: None,
        "line": lambda k: shapely.LineString([(k, 0, 0), (k, 1, 1)]),
    }
    geometries = np.array([make[kind](k) for k, kind in enumerate(kinds)], dtype=object)
    faces = solids.Faces.of(geometries)
    for rows in (np.arange(len(kinds)), np.arange(0, len(kinds), 2), np.arange(1, len(kinds), 3)):
        alone = solids.Faces.of(geometries[rows])
        taken = faces.take(rows)
        np.testing.assert_array_equal(taken.coords, alone.coords)
        np.testing.assert_array_equal(taken.owner, alone.owner)
        np.testing.assert_array_equal(taken.polygon[taken.ring], alone.polygon[alone.ring])
        np.testing.assert_array_equal(taken.area_vectors(), alone.area_vectors())
        np.testing.assert_array_equal(
            solids.volumes(geometries[rows]),
            solids.volumes_and_faces(geometries[rows], taken)[0],
        )
        got = footprints.footprints(geometries[rows], None, faces.take(rows))
        want = footprints.footprints(geometries[rows], None)
        assert [shapely.to_wkb(g) if g is not None else None for g in got] == [
            shapely.to_wkb(g) if g is not None else None for g in want
        ]
        kept = faces.take(rows, renumber=False)
        np.testing.assert_array_equal(kept.owner, rows[alone.owner])


def test_bad_positions_read_from_flat_faces_are_those_geos_holds():
    """Positions beyond any Earth found in the arrays a connector hands on (`Solids.faces`)
    are those `coordinates.bad_geometries` reads from the geometries: the same records, the
    same first position; lines are read from GEOS."""
    from citypipe.core.geometry import _bad_solids

    good = shapely.MultiPolygon(box(0, 0, 1, 1, 1))
    wrong = shapely.Polygon([(0, 0, 0), (1e30, 0, 0), (1, 1, 0)])
    far = shapely.MultiPolygon([*box(0, 0, 1, 1, 1)[1:], wrong])
    line = shapely.LineString([(0, 0, 0), (0, 2e30, 1)])
    for geometries in ([good, far, None, line], [far, line], [good]):
        src3d = np.array(geometries, dtype=object)
        found = _bad_solids(src3d, solids.Faces.of(src3d))
        assert found == coordinates.bad_geometries(src3d)
        assert len(found) == (far in geometries) + (line in geometries)


def test_surface_lists_become_columns_with_the_faces_they_are():
    """A record whose surfaces are faces of its geometry keeps their numbers; one whose are
    not (or that has none listed) gets -1 for each; the lists read back as given."""
    a, b, c = (shapely.box(k, 0, k + 1, 1) for k in range(3))
    lists = [[Surface("RoofSurface", a), Surface("WallSurface", b)], None, [Surface("X", c)]]
    columns = SurfaceColumns.of(lists, [np.array([3, 1]), None, None], lambda p: Surface(*p))
    np.testing.assert_array_equal(columns.owner, [0, 0, 2])
    np.testing.assert_array_equal(columns.face, [3, 1, -1])
    np.testing.assert_array_equal(columns.listed, [True, False, True])
    assert columns.types.tolist() == ["RoofSurface", "WallSurface", "X"]
    assert list(columns) == lists
