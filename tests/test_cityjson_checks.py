"""A batch's faulty CityJSON geometries are told apart: each its own reason, the others built.

cityjson_geometry checks a batch's boundaries together, as arrays (empty lists, rings too
short, vertex indices beyond their vertices, vertices that are not positions), and names
the job of each fault found. Hypothesis draws batches of MultiSurface jobs, some with such
faults, over one pool or several (a stream's lines, placed templates index their own rows of
it): each job must get the reason it gets alone, and the batch's polygons must be those of its
good jobs built alone.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors.cityjson_geometry import build_shapes, geometry_job
from citypipe.connectors.cityjson_values import Vertices

_SQUARE = [0, 1, 2, 3]
_POOL = 8  # vertices a pool has: a square, a bigger square, each row its own position
_XYZ = np.array(
    [[0, 0, 1], [4, 0, 1], [4, 4, 1], [0, 4, 1], [-1, -1, 2], [5, -1, 2], [5, 5, 2], [-1, 5, 2]],
    np.float64,
)

_RING = st.one_of(
    st.just(_SQUARE),
    st.just([4, 5, 6, 7]),
    st.just([]),  # a ring without any vertex
    st.lists(st.integers(0, _POOL - 1), min_size=1, max_size=2),  # too short for a polygon
    st.just([0, 1, 2, _POOL + 3]),  # beyond the pool's vertices
    st.just([0, 1, 2, -1]),
)
_SURFACE = st.lists(_RING, min_size=0, max_size=2)  # a surface without any ring, or holes


@st.composite
def _batches(draw: st.DrawFn) -> tuple[list, Vertices]:
    """MultiSurface jobs over `pools` copies of the pool, each job indexing one of them; a NaN
    vertex in the last copy where drawn."""
    pools = draw(st.integers(1, 3))
    xyz = np.concatenate([_XYZ] * pools)
    problems = {}
    if draw(st.booleans()):
        at = (pools - 1) * _POOL + draw(st.integers(0, _POOL - 1))
        xyz[at] = np.nan
        problems[at] = f"vertex {at} is not a position"
    jobs = []
    for _ in range(draw(st.integers(1, 6))):
        surfaces = draw(st.lists(_SURFACE, min_size=0, max_size=3))
        pool = draw(st.integers(0, pools - 1))
        g = {"type": "MultiSurface", "boundaries": surfaces}
        jobs.append(geometry_job(g, pool * _POOL, _POOL))
    return jobs, Vertices(xyz, problems)


@settings(max_examples=300, deadline=None)
@given(_batches())
def test_each_fault_is_its_own_job_s(batch: tuple[list, Vertices]) -> None:
    jobs, pool = batch
    together = build_shapes(jobs, pool).shaped()
    for k, job in enumerate(jobs):
        alone = build_shapes([job], pool).shaped()
        assert together.errors[k] == alone.errors[0]
        a, b = together.shapes[k], alone.shapes[0]
        assert (a is None) == (b is None)
        if a is not None:
            assert a.wkb == b.wkb
