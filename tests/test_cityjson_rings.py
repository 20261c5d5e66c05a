"""The compiled ring pass (connectors/cityjson_rings.pxi) repairs and closes rings as numpy does.

cityjson_geometry._rings hands a batch's polygon rings to `close_rings` where it is built, else
repairs them with connectors/rings.py and closes them in numpy. Hand-made rings say what the
repair must do (CityJSON closes rings by definition: an open ring is closed without a note, a
last position within float noise of the first becomes it, a ring with fewer than three distinct
positions is dropped, and its polygon with its exterior); Hypothesis then draws rings of a few
shared vertices (repeated, explicitly closed, empty, nearly closed) through both paths, which
must agree to the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import cityjson_geometry, cityjson_values
from citypipe.connectors.base import FlatFaces
from citypipe.connectors.cityjson_values import Vertices

pytestmark = pytest.mark.skipif(
    cityjson_values.compiled is None, reason="the compiled walk is not built"
)

SQUARE = [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [10.0, 10.0, 1.0], [0.0, 10.0, 1.0]]
Rings = tuple[np.ndarray, list[np.ndarray], np.ndarray, list[list[bool] | None], FlatFaces]
Batch = tuple[list[list[float]], list[int], list[list[int]]]


def _rings(xyz: list[list[float]], rows: list[int], nesting: list[list[int]]) -> Rings:
    """cityjson_geometry._rings of polygon jobs: positions, nesting, repairs per job, kept, and
    the polygons as flat arrays."""
    counts = [np.array(c, np.int64) for c in nesting]
    out = cityjson_geometry.Built.empty(len(counts[0]))
    pool = Vertices(np.array(xyz, np.float64).reshape(-1, 3), {})
    faces, nested = cityjson_geometry._rings(pool, np.array(rows, np.int64), counts, out)
    kept = [None if k is None else k.tolist() for k in out.kept]
    return faces.coords, nested, out.repairs, kept, faces


def test_an_open_ring_is_closed_by_its_first_position_without_a_note() -> None:
    coords, nested, repairs, kept, _ = _rings(SQUARE, [0, 1, 2, 3], [[1], [1], [4]])
    assert coords.tolist() == [*SQUARE, SQUARE[0]]
    assert [n.tolist() for n in nested] == [[1], [1], [5]]
    assert repairs.tolist() == [[0, 0, 0, 0]] and kept == [None]


def test_a_closed_ring_stays_as_it_is() -> None:
    coords, nested, repairs, *_ = _rings(SQUARE, [0, 1, 2, 3, 0], [[1], [1], [5]])
    assert coords.tolist() == [*SQUARE, SQUARE[0]]
    assert nested[2].tolist() == [5] and not repairs.any()


def test_a_last_position_within_noise_becomes_the_first() -> None:
    noisy = [*SQUARE, [1e-12, 0.0, 1.0]]  # the first position written again, a picometre off
    coords, nested, repairs, *_ = _rings(noisy, [0, 1, 2, 3, 4], [[1], [1], [5]])
    assert coords.tolist() == [*SQUARE, SQUARE[0]]
    assert nested[2].tolist() == [5] and repairs.tolist() == [[1, 0, 0, 0]]


def test_a_position_a_millimetre_off_is_another_corner() -> None:
    off = [*SQUARE, [1e-3, 0.0, 1.0]]
    coords, nested, repairs, *_ = _rings(off, [0, 1, 2, 3, 4], [[1], [1], [5]])
    assert nested[2].tolist() == [6]
    assert coords.tolist() == [*off, SQUARE[0]] and not repairs.any()


def test_rings_without_three_distinct_positions_are_dropped() -> None:
    # job 0: a square with a collapsed hole; job 1: a collapsed polygon, then a square
    rows = [0, 1, 2, 3, 1, 1, 2, 1, 0, 0, 1, 0, 1, 2, 3]
    coords, nested, repairs, kept, _ = _rings(SQUARE, rows, [[1, 2], [2, 1, 1], [4, 3, 4, 4]])
    assert [n.tolist() for n in nested] == [[1, 1], [1, 1], [5, 5]]
    assert coords.tolist() == [*SQUARE, SQUARE[0]] * 2
    assert repairs.tolist() == [[0, 0, 1, 0], [0, 0, 0, 1]]
    assert kept == [None, [False, True]]


def test_a_position_that_is_not_finite_leaves_the_rings_to_numpy() -> None:
    xyz = np.array([*SQUARE, [np.nan, 0.0, 0.0]])
    rows, counts = np.arange(5, dtype=np.int64), [np.array([n], np.int64) for n in (1, 1, 5)]
    assert cityjson_values.compiled is not None
    assert cityjson_values.compiled.close_rings(xyz, rows, *counts, 1e-10) is None


def test_a_vertex_no_ring_uses_is_not_read() -> None:
    # the pool (5 vertices) read whole before the rows (8): its NaN is no ring's
    xyz = np.array([*SQUARE, [np.nan, 0.0, 0.0]])
    rows = np.tile(np.arange(4, dtype=np.int64), 2)
    counts = [np.array(n, np.int64) for n in ([2], [1, 1], [4, 4])]
    assert cityjson_values.compiled is not None
    done = cityjson_values.compiled.close_rings(xyz, rows, *counts, 1e-10)
    assert done is not None and done[0].tolist() == [*SQUARE, SQUARE[0]] * 2


_VALUES = st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 1e6, 4.5e5])


@st.composite
def _batches(draw: st.DrawFn) -> Batch:
    """Polygon jobs over a few shared vertices, the last of them maybe the first nudged."""
    xyz = draw(st.lists(st.lists(_VALUES, min_size=3, max_size=3), min_size=1, max_size=8))
    if len(xyz) > 1 and draw(st.booleans()):
        nudge = draw(st.sampled_from([1e-13, 1e-11, 1e-9, 1e-3]))
        xyz[-1] = [v + nudge * max(1.0, abs(v)) for v in xyz[0]]
    per_job = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    per_surface = draw(st.lists(st.integers(1, 3), min_size=sum(per_job), max_size=sum(per_job)))
    rings = draw(
        st.lists(
            st.lists(st.integers(0, len(xyz) - 1), max_size=6),
            min_size=sum(per_surface),
            max_size=sum(per_surface),
        )
    )
    rings = [ring + ring[:1] if draw(st.booleans()) else ring for ring in rings]  # closed
    rows = [v for ring in rings for v in ring]
    sizes = [len(ring) for ring in rings]
    return xyz, rows, [per_job, per_surface, sizes]


@settings(max_examples=400, deadline=None)
@given(_batches())
def test_the_compiled_pass_is_numpys(batch: Batch) -> None:
    compiled = _rings(*batch)
    with pytest.MonkeyPatch.context() as m:  # the numpy path alone
        m.setattr(cityjson_values, "compiled", None)
        numpy = _rings(*batch)
    assert compiled[0].tobytes() == numpy[0].tobytes()
    assert [n.tolist() for n in compiled[1]] == [n.tolist() for n in numpy[1]]
    assert compiled[2].tolist() == numpy[2].tolist() and compiled[3] == numpy[3]
    for column in ("ring", "polygon", "owner"):  # whose each position, ring, polygon is
        made, repeated = getattr(compiled[4], column), getattr(numpy[4], column)
        assert made.dtype == repeated.dtype and made.tolist() == repeated.tolist()
    rows = compiled[4].rows  # each position's pool row: the vertex it was read from
    assert rows is not None and numpy[4].rows is None
    pool = np.array(batch[0], np.float64).reshape(-1, 3)
    assert pool[rows].tobytes() == compiled[0].tobytes()


def test_nesting_that_does_not_add_up_is_refused_not_read() -> None:
    close = cityjson_values.compiled.close_rings if cityjson_values.compiled else None
    assert close is not None
    xyz, rows = np.array(SQUARE), np.arange(4, dtype=np.int64)
    one = np.array([1], np.int64)
    with pytest.raises(ValueError, match="do not add up"):
        close(xyz, rows, one, one, np.array([5], np.int64), 1e-10)
    with pytest.raises(ValueError, match="pool row 4"):
        close(xyz, rows + 1, one, one, np.array([4], np.int64), 1e-10)
