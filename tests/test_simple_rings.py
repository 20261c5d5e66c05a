"""`validity.is_valid` says what GEOS says of every geometry (pipelines/geo/simple_rings.pyx
vouches for polygons whose rings are surely simple and apart, their holes inside their shell and
outside one another; GEOS is asked of the rest), and what GEOS says without the kernel.

Rings are drawn on a small grid, where positions repeat, three fall on a line, segments cross,
overlap, turn back on themselves or touch another's vertex; then moved far from the origin and
shrunk, as a footprint's metres or degrees are, where floating point no longer holds the grid
exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.geo import validity

pytestmark = pytest.mark.skipif(validity.compiled is None, reason="simple_rings did not build")


@pytest.fixture(autouse=True, scope="module")
def kernel_for_any_count() -> Iterator[None]:
    """The kernel asked of any number of geometries (below `validity.FEW` GEOS alone is)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validity, "FEW", 0)
        yield


def polygon(
    positions: list[tuple[float, float]], holes: list[list[tuple[float, float]]] | None = None
) -> shapely.Polygon:
    return shapely.Polygon(positions, holes)


def vouched(geometries: list[shapely.Geometry]) -> np.ndarray:
    """Which polygons' rings the kernel vouches for (polygons of one ring alone)."""
    xy = shapely.get_coordinates(geometries)
    at = np.zeros(len(geometries) + 1, np.int64)
    np.cumsum(shapely.get_num_coordinates(geometries), out=at[1:])
    return validity.compiled.simple_rings(xy, at).view(bool)


def test_simple_rings_are_vouched_for_and_others_left_to_geos() -> None:
    """A square, a triangle, an L-shaped building's ground (either way round), a ring going
    straight on through a position are simple; a bow tie crosses itself, a spike turns back
    along its segment, a ring touches itself at a vertex: not vouched for, GEOS says invalid."""
    square = polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    triangle = polygon([(0, 0), (2, 0), (1, 3)])
    ell = polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)][::-1])
    bow_tie = polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    spike = polygon([(0, 0), (2, 0), (2, 2), (2, 3), (2, 2), (0, 2)])
    touching = polygon([(0, 0), (4, 0), (2, 2), (3, 4), (1, 4), (2, 2)])
    on_a_line = polygon([(0, 0), (1, 0), (2, 0), (2, 2)])
    shapes = [square, triangle, ell, bow_tie, spike, touching, on_a_line]
    assert vouched(shapes).tolist() == [True, True, True, False, False, False, True]
    assert shapely.is_valid(shapes).tolist() == [True, True, True, False, False, False, True]
    assert (
        validity.is_valid(np.array(shapes, dtype=object)).tolist()
        == shapely.is_valid(shapes).tolist()
    )


def test_polygons_with_holes_multipolygons_and_none_are_geos_answers() -> None:
    """A polygon with a hole inside it (valid) or crossing its shell (invalid), two squares
    apart or overlapping (asked of GEOS), an empty polygon and None: GEOS's answers, None
    False."""
    shell = [(0, 0), (10, 0), (10, 10), (0, 10)]
    holed = polygon(shell, [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    crossing = polygon(shell, [[(8, 8), (12, 8), (12, 12), (8, 12)]])
    apart = shapely.MultiPolygon([polygon(shell), polygon([(20, 0), (30, 0), (30, 10)])])
    overlapping = shapely.MultiPolygon([polygon(shell), polygon([(5, 5), (15, 5), (15, 15)])])
    shapes = np.array([holed, crossing, apart, overlapping, shapely.Polygon(), None], object)
    assert validity.is_valid(shapes).tolist() == [True, False, True, False, True, False]


def test_long_rings_are_swept() -> None:
    """Rings of more segments than are compared pair by pair: a circle of 200 positions is
    simple, the same with two positions swapped crosses itself (GEOS: invalid)."""
    turn = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = np.column_stack([np.cos(turn), np.sin(turn)]) * 50 + [81_000, 455_000]
    crossed = circle.copy()
    crossed[[10, 120]] = crossed[[120, 10]]
    shapes = [shapely.Polygon(circle), shapely.Polygon(crossed)]
    assert vouched(shapes).tolist() == [True, False]
    assert shapely.is_valid(shapes).tolist() == [True, False]


def test_longer_rings_are_left_to_geos() -> None:
    """A ring of more segments than the sweep takes (1,024) is not vouched for, GEOS says
    whether it is valid (a circle: valid)."""
    turn = np.linspace(0, 2 * np.pi, 1_100, endpoint=False)
    circle = np.column_stack([np.cos(turn), np.sin(turn)]) * 50 + [81_000, 455_000]
    shapes = np.array([shapely.Polygon(circle), shapely.Polygon(circle[:1_000])], dtype=object)
    assert vouched(shapes).tolist() == [False, True]
    assert validity.is_valid(shapes).tolist() == [True, True]


def holed(shell: list[tuple[float, float]], holes: list[list[tuple[float, float]]]) -> bool:
    """Whether the kernel vouches for the polygon of `shell` and `holes`."""
    rings = shapely.get_rings(polygon(shell, holes))
    at = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(shapely.get_num_coordinates(rings), out=at[1:])
    polygons = np.array([0, len(rings)], np.int64)
    return bool(validity.compiled.valid_polygons(shapely.get_coordinates(rings), at, polygons)[0])


def square(x: float, y: float, size: float) -> list[tuple[float, float]]:
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]


def test_polygons_with_holes_apart_inside_their_shell_are_vouched_for() -> None:
    """A courtyard, two apart, one either way round: vouched for, GEOS says valid. A hole
    outside the shell, inside another hole, crossing or touching the shell, two holes sharing
    a corner (GEOS: valid, a touch), more holes than the kernel places: left to GEOS."""
    shell = square(0, 0, 10)
    vouched_for = [[square(2, 2, 2)], [square(2, 2, 2), square(6, 6, 2)[::-1]]]
    left = [
        [square(12, 2, 2)],  # outside
        [square(1, 1, 8), square(3, 3, 2)],  # nested
        [square(8, 8, 4)],  # crossing
        [square(0, 2, 2)],  # touching the shell along an edge
        [square(2, 2, 2), square(4, 4, 2)],  # sharing a corner
        [square(0.5 * k, 0.5, 0.25) for k in range(1, 19)],  # 18 holes
    ]
    assert [holed(shell, h) for h in vouched_for] == [True, True]
    assert [holed(shell, h) for h in left] == [False] * len(left)
    shapes = np.array([polygon(shell, h) for h in vouched_for + left], dtype=object)
    assert validity.is_valid(shapes).tolist() == shapely.is_valid(shapes).tolist()
    assert shapely.is_valid(shapes).tolist() == [True, True, False, False, False, False, True, True]


hole = st.tuples(st.integers(-1, 7), st.integers(-1, 7), st.integers(1, 3), st.booleans())


@settings(max_examples=400, deadline=None)
@given(
    shell=st.just(square(0, 0, 8))
    | st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=3, max_size=10),
    holes=st.lists(hole, min_size=1, max_size=5),
    origin=st.sampled_from([(0.0, 0.0), (81_234.5, 455_678.25), (4.3, 52.07)]),
    scale=st.sampled_from([1.0, 1e-3, 0.1 + 1e-9]),
)
def test_answers_for_polygons_with_holes_are_geos_answers(
    shell: list[tuple[int, int]],
    holes: list[tuple[int, int, int, bool]],
    origin: tuple[float, float],
    scale: float,
) -> None:
    """Square holes anywhere about a square or a drawn shell (inside, apart, touching,
    overlapping, nested, outside, either way round), wherever the polygon lies: GEOS's answers,
    asked of the polygon or of the arrays it is built of."""

    def placed(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(origin[0] + x * scale, origin[1] + y * scale) for x, y in ring]

    rings = [square(x, y, size)[:: -1 if back else 1] for x, y, size, back in holes]
    shapes = np.array([shapely.Polygon(placed(shell), [placed(r) for r in rings])], dtype=object)
    want = shapely.is_valid(shapes).tolist()
    assert validity.is_valid(shapes).tolist() == want
    _, xy, (ring_at, first) = shapely.to_ragged_array(shapes)  # as footprints build them
    assert validity.is_valid_built(shapes, xy, ring_at, first).tolist() == want


grid_ring = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=3, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    radii=st.lists(st.floats(0.2, 1.0), min_size=17, max_size=60),
    swaps=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), max_size=2),
    repeat=st.sets(st.integers(0, 59), max_size=2),
)
def test_long_rings_answers_are_geos_answers(
    radii: list[float], swaps: list[tuple[int, int]], repeat: set[int]
) -> None:
    """Star-shaped rings of 17 to 60 positions (swept, not compared pair by pair), some with
    two positions swapped (crossings, touches) or one written twice: GEOS's answers."""
    m = len(radii)
    turn = np.arange(m) * 2 * np.pi / m
    ring = np.column_stack([np.cos(turn), np.sin(turn)]) * np.array(radii)[:, None]
    for a, b in swaps:
        ring[[a % m, b % m]] = ring[[b % m, a % m]]
    ring = np.repeat(ring, [2 if k in repeat else 1 for k in range(m)], axis=0)
    shapes = np.array([shapely.Polygon(ring * 30 + [4.3, 52.07])], dtype=object)
    assert validity.is_valid(shapes).tolist() == shapely.is_valid(shapes).tolist()


@settings(max_examples=400, deadline=None)
@given(
    rings=st.lists(grid_ring, min_size=1, max_size=8),
    origin=st.sampled_from([(0.0, 0.0), (81_234.5, 455_678.25), (4.3, 52.07), (-1e7, 1e7)]),
    scale=st.sampled_from([1.0, 1e-3, 1e-7, 0.1 + 1e-9]),
)
def test_answers_are_geos_answers(
    rings: list[list[tuple[int, int]]], origin: tuple[float, float], scale: float
) -> None:
    """Whatever the ring (grid positions that repeat, lie on a line, cross, overlap, touch)
    and wherever it lies (positions that floating point rounds), every answer is GEOS's, with
    the kernel as without it."""
    closed = [r + r[:1] for r in rings]  # closed here: a ring drawn closed is closed twice
    shapes = np.array(
        [
            shapely.polygons([(origin[0] + x * scale, origin[1] + y * scale) for x, y in r])
            for r in closed
        ],
        dtype=object,
    )
    want = shapely.is_valid(shapes)
    assert validity.is_valid(shapes).tolist() == want.tolist()
    kernel = validity.compiled
    validity.compiled = None  # type: ignore[assignment]
    try:
        assert validity.is_valid(shapes).tolist() == want.tolist()
    finally:
        validity.compiled = kernel
