"""A batch's polygons built from their rings' coordinate text (gml_polygons.build): each the
polygon its positions make, shell first, its rings left open closed by their first position,
2D where a ring of it is, with Z otherwise; the rings with fewer than three distinct positions
dropped, with their polygon where it is the shell. The faces of the records' multipolygons,
handed on from the arrays the polygons were built of, are those GEOS holds (gathered by
gml_walk's compiled pass and by numpy alike)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import gml_polygons
from citypipe.core.solids import Faces

_RING = st.lists(
    st.tuples(*[st.integers(-(10**6), 10**6)] * 3),
    min_size=3,
    max_size=7,
    unique_by=lambda p: p[:2],  # distinct in the plane too
).map(lambda ring: [(x / 8, y / 4, z / 2) for x, y, z in ring])  # exact binary fractions
_POLYGON = st.tuples(
    st.lists(st.tuples(_RING, st.booleans()), min_size=1, max_size=3),  # rings, closed or not
    st.sampled_from([2, 3, 4]),
)


def _text(ring: list[tuple[float, float, float]], dim: int) -> str:
    return " ".join(" ".join(repr(v) for v in (*p, 7.0)[:dim]) for p in ring)


def _expected(rings: list[list[tuple[float, float, float]]], dim: int) -> shapely.Polygon:
    """The polygon of these positions, as shapely makes it (closing its rings itself)."""
    taken = [[p[: min(dim, 3)] for p in ring] for ring in rings]
    return shapely.Polygon(taken[0], taken[1:])


@settings(max_examples=150, deadline=None)
@given(st.lists(_POLYGON, min_size=1, max_size=6))
def test_every_polygon_is_the_one_its_positions_make(polygons) -> None:
    texts, dims, counts, expected = [], [], [], []
    for rings, dim in polygons:
        closed = [ring + ring[:1] if close else ring for ring, close in rings]
        texts += [_text(ring, dim) for ring in closed]
        dims += [dim] * len(rings)
        counts.append(len(rings))
        expected.append(_expected([ring for ring, _ in rings], dim))
    built = gml_polygons.build(texts, dims, [], counts)
    assert not built.reasons
    assert built.repairs[:, 1].tolist() == [sum(not c for _, c in r) for r, _ in polygons]
    assert shapely.to_wkb(built.polygons).tolist() == shapely.to_wkb(expected).tolist()


def test_a_2d_ring_makes_its_polygon_2d_and_a_collapsed_shell_drops_it() -> None:
    square = [(0.0, 0.0, 5.0), (4.0, 0.0, 5.0), (4.0, 4.0, 5.0), (0.0, 4.0, 5.0), (0.0, 0.0, 5.0)]
    hole = [(1.0, 1.0, 5.0), (2.0, 1.0, 5.0), (2.0, 2.0, 5.0)]
    line = [(0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (0.0, 0.0, 1.0)]
    built = gml_polygons.build(
        [_text(square, 3), _text(hole, 2), _text(line, 3), _text(square, 3)], [3, 2, 3, 3],
        [], [2, 1, 1],
    )  # fmt: skip
    first, dropped, whole = built.polygons
    assert not first.has_z and first.equals(shapely.Polygon([p[:2] for p in square], [hole]))
    assert dropped is None and built.repairs[1, 3] == 1
    assert whole.has_z and shapely.get_coordinates(whole, include_z=True).tolist() == [
        list(p) for p in square
    ]
    assert np.array_equal(built.repairs[:, 1], [1, 0, 0])  # the hole left open, closed


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_RING, min_size=1, max_size=3), min_size=1, max_size=5),
    st.data(),
)
def test_the_faces_handed_on_are_those_geos_holds(polygons, data) -> None:
    """Any records' polygons (each used by any records, any number of times, turned over or
    not: a solid's xlinks to its surfaces, an OrientableSurface) have the faces `Faces.of`
    reads out of their multipolygons, bit for bit."""
    texts = [_text(ring + ring[:1], 3) for rings in polygons for ring in rings]
    counts = [len(rings) for rings in polygons]
    built = gml_polygons.build(texts, [3] * len(texts), [], counts)
    assert built.arrays is not None
    handle = st.integers(0, len(polygons) - 1).flatmap(lambda i: st.sampled_from([i, ~i]))
    handles = data.draw(
        st.one_of(
            st.just([[i] for i in range(len(polygons))]),  # each once, in order
            st.lists(st.lists(handle, max_size=4), min_size=1, max_size=4),
        )
    )
    read = Faces.of(gml_polygons.multipolygons(built.polygons, handles))
    handed = gml_polygons.faces(built.arrays, handles)
    with mock.patch.object(gml_polygons, "compiled", None):
        by_numpy = gml_polygons.faces(built.arrays, handles)
    for got, numpy_got, expected in zip(handed[:4], by_numpy[:4], read[:4], strict=True):
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
        assert numpy_got.dtype == expected.dtype and numpy_got.tobytes() == expected.tobytes()


def test_no_faces_are_handed_on_where_geos_holds_others() -> None:
    """A ring left open (GEOS adds its closing position), a 2D polygon: the arrays differ."""
    square = [(0.0, 0.0, 5.0), (4.0, 0.0, 5.0), (4.0, 4.0, 5.0), (0.0, 4.0, 5.0)]
    closed = square + square[:1]
    assert gml_polygons.build([_text(closed, 3)], [3], [], [1]).arrays is not None
    assert gml_polygons.build([_text(square, 3)], [3], [], [1]).arrays is None
    assert gml_polygons.build([_text(closed, 2)], [2], [], [1]).arrays is None
