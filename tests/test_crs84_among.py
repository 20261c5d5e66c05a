"""A batch's footprints' corners found among its solids' corners, hashed once on the CRS84
thread (positions.Table, crs84._among): each row numbered and moved as the search over both
(`ToCrs84.distinct` with the solids' corners `known`) numbers and moves it, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core import crs84
from citypipe.core.solids import Faces
from citypipe.geo import crs, transform

_VALUE = st.sampled_from([0.0, -0.0, 1.5, -2.25, 85_000.5, 1e300, np.nan, np.inf, -np.inf])
_PAIRS = st.lists(st.tuples(_VALUE, _VALUE), max_size=400)

needs_search = pytest.mark.skipif(
    transform.compiled is None, reason="the positions kernel (positions.pyx) did not build"
)


def _xy(pairs: list[tuple[float, float]]) -> np.ndarray:
    return np.array(pairs, dtype=float).reshape(-1, 2)


@needs_search
@settings(max_examples=150, deadline=None)
@given(_PAIRS, _PAIRS, st.booleans())
@pytest.mark.filterwarnings("ignore:invalid value")
def test_a_table_numbers_positions_as_the_search_over_both(
    known: list[tuple[float, float]], asked: list[tuple[float, float]], third: bool
) -> None:
    """Positions looked up among distinct ones hashed before get the number the search over
    both gives them (0.0 and -0.0 one position, NaN parts equal, an infinite y a NaN real
    part), -1 for those not among them; a third column (a height) read past."""
    search = transform.compiled
    distinct = search.distinct([_xy(known)])[1]
    rows = _xy(asked)
    if third:
        rows = np.column_stack([rows, np.arange(len(rows), dtype=float)])
    both = search.distinct([distinct, rows[:, :2]])[0][len(distinct) :]
    half = len(rows) // 2
    codes = search.Table(distinct).codes([rows[:half], rows[half:]])
    np.testing.assert_array_equal(codes, np.where(both < len(distinct), both, -1))


@needs_search
def test_a_table_grown_past_its_first_size_finds_every_position() -> None:
    """Far more positions than a first table's slots: each found at its row."""
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 1_000, (50_000, 2))
    table = transform.compiled.Table(xy)
    picked = rng.integers(0, len(xy), 20_000)
    np.testing.assert_array_equal(table.codes([xy[picked]]), picked)
    np.testing.assert_array_equal(table.codes([xy[:5] + 0.25]), [-1] * 5)


@needs_search
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=300),
    st.lists(st.integers(0, 60), max_size=300),
    st.lists(st.tuples(_VALUE, _VALUE), max_size=5),
)
@pytest.mark.filterwarnings("ignore:invalid value")
def test_corners_found_among_the_solids_are_moved_as_the_search_moves_them(
    grid: list[tuple[int, int]], picks: list[int], odd: list[tuple[float, float]]
) -> None:
    """The footprints' corners (the solids' corners, others beside them, positions that are
    not finite) moved through the solids' table and through the search over both: every row
    at the same moved position, bit for bit; the solids' corners taken as they were moved
    (marked by a shift of 1 degree), the others moved by PROJ."""
    to = crs.to_crs84(crs.resolve("EPSG:28992"), "xy")
    solid = 85_000 + 10.0 * _xy(grid)
    faces = Faces(np.column_stack([solid, np.zeros(len(solid))]), *[np.zeros(0, np.int64)] * 3)
    corners = to.distinct(faces.coords, known=None)
    corners = corners._replace(moved=corners.moved + 1.0)
    placed = crs84._Placed(faces, corners, None, transform.compiled.Table(corners.read))
    beside = 85_000 + 7.5 * np.arange(len(picks), dtype=float)
    taken = solid[np.asarray(picks, np.int64) % len(solid)]
    footprints = np.concatenate([taken, np.column_stack([beside, beside]), _xy(odd)])
    parts = [footprints[: len(picks)], footprints[len(picks) :]]
    found = crs84._among(to, parts, placed)
    searched = crs84._among(to, parts, placed._replace(table=None))
    np.testing.assert_array_equal(found.moved[found.codes], searched.moved[searched.codes])
    alone = np.column_stack(to._tr.transform(*taken.T, errcheck=False))
    np.testing.assert_array_equal(found.moved[found.codes][: len(picks)], alone + 1.0)


@needs_search
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=60),
    st.lists(st.integers(0, 80), min_size=1, max_size=300),
    st.sets(st.integers(0, 59), max_size=3),
)
def test_corners_read_through_their_vertices_are_those_the_search_finds(
    grid: list[tuple[int, int]], picks: list[int], bad: set[int]
) -> None:
    """A solid's corners read through the rows of the vertices they were read from
    (`FlatFaces.rows`), among the vertices moved ahead: each row at the moved position the
    search over the corners puts it, bit for bit (numbered among the vertices as moved,
    which are not searched for repeats where they are few); not read so where a corner is
    none of those vertices (a row beyond them) or one not moved (not finite: its object
    rejected)."""
    to = crs.to_crs84(crs.resolve("EPSG:28992"), "xy")
    vertices = np.column_stack([85_000 + 10.0 * _xy(grid), np.zeros(len(grid))])
    rows = np.asarray(picks, np.int64) % len(vertices)
    zeros = np.zeros(0, np.int64)
    faces = Faces(vertices[rows], zeros, zeros, zeros, rows)
    ahead = crs84._Worker()._moved(to, vertices)
    searched = to.distinct(faces.coords, known=ahead)
    read = crs84._through_rows(faces, ahead)
    assert read is not None
    np.testing.assert_array_equal(read.moved[read.codes], searched.moved[searched.codes])
    assert len(read.codes) == len(rows) and read.moved is ahead.moved
    beyond = faces._replace(rows=np.append(rows[:-1], len(vertices)))
    assert crs84._through_rows(beyond, ahead) is None
    lost = np.array(sorted(k for k in bad if k < len(vertices)), np.int64)
    if len(lost):
        vertices[lost] = np.nan
        moved = crs84._Worker()._moved(to, vertices)
        assert crs84._through_rows(faces._replace(rows=lost), moved) is None
