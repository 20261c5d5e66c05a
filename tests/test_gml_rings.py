"""A batch's rings repaired in C (gml_walk.repair_rings) as rings.repair repairs them, bit for bit.

gml_polygons.build takes the compiled pass where gml_walk built and rings.repair where it did
not: both must close the same rings within noise (the same positions written), count the same
open rings, and drop the same rings and polygons of fewer than three distinct positions, for
rings of any size, 2D rings (NaN heights) among 3D ones, repeated positions and NaN values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from citypipe.connectors import gml_polygons, rings
from citypipe.connectors.gml_compiled import compiled

pytestmark = pytest.mark.skipif(compiled is None, reason="gml_walk did not build")

_VALUES = st.sampled_from([0.0, 1.0, -2.5, 1e6, 5.0e6 + 0.25, 1e308, -1e308, np.nan])
"""Few values, so that positions repeat; the largest doubles, whose differences overflow."""


@st.composite
def _batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (x, y, z; a 2D ring's z NaN), the positions of each ring, the rings of each
    polygon; some rings' last position the first moved by float noise, or the first itself."""
    per_polygon = draw(st.lists(st.integers(0, 3), max_size=6))
    sizes = draw(st.lists(st.integers(0, 6), min_size=sum(per_polygon), max_size=sum(per_polygon)))
    rows = []
    for size in sizes:
        ring = [[draw(_VALUES) for _ in range(3)] for _ in range(size)]
        if size > 1 and draw(st.booleans()):
            noise = draw(st.sampled_from([0.0, 1e-12, 1e-9, 1e-3]))
            ring[-1] = [v + noise * draw(st.sampled_from([1, -1])) for v in ring[0]]
        if draw(st.booleans()):
            for position in ring:
                position[2] = np.nan
        rows += ring
    coords = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return coords, np.array(sizes, dtype=np.int64), np.array(per_polygon, dtype=np.int64)


def _bits(a: np.ndarray) -> list:
    return np.ascontiguousarray(a).view(np.int64).tolist()


@given(_batches(), st.booleans())
def test_the_compiled_repair_is_rings_repair(batch, strided):
    coords, sizes, per_polygon = batch
    if strided:  # a 4D text's first three ordinates: a view, not a copy
        coords = np.column_stack([coords, np.ones(len(coords))])[:, :3]
    with np.errstate(invalid="ignore"):
        expected = rings.repair(coords, sizes, per_polygon)
    got = rings.Repair(*compiled.repair_rings(coords, sizes, per_polygon))
    assert _bits(got.coords) == _bits(expected.coords)
    assert (got.coords is coords) == (expected.coords is coords)  # copied where it wrote
    for name in ("ring_kept", "polygon_kept", "counts"):
        assert getattr(got, name).dtype == getattr(expected, name).dtype
        assert getattr(got, name).tolist() == getattr(expected, name).tolist()


def test_build_repairs_as_without_the_compiled_walk(monkeypatch):
    """A ring closed within noise, an open one, a polygon of two distinct positions: the same
    repairs and polygons either way."""
    texts = ["0 0 1 4 0 1 4 4 1 0.0000000000001 0 1", "0 0 0 1 0 0 1 1 0", "5 5 5 6 6 6 5 5 5"]
    args = (texts, [3, 3, 3], [], [1, 1, 1])
    fast = gml_polygons.build(*args)
    monkeypatch.setattr(gml_polygons, "compiled", None)
    slow = gml_polygons.build(*args)
    noise, open_, dropped = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]
    assert fast.repairs.tolist() == slow.repairs.tolist() == [noise, open_, dropped]
    assert fast.kept.tolist() == slow.kept.tolist() == [True, True, False]
    assert [p.wkt for p in fast.polygons[:2]] == [p.wkt for p in slow.polygons[:2]]
