"""WKB written from ragged arrays (pipelines/geo/wkb_ragged.py) is GEOS's, byte for byte."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import GeometryType

from citypipe.geo import wkb_ragged
from citypipe.geo.wkb_ragged import face_rings, polygons_z

_SHAPES = [
    "MULTIPOLYGON Z (((0 0 1, 4 0 1, 4 4 2, 0 0 1)), ((0 0 0, 0 4 0, 4 4 0, 0 0 0)))",
    # a hole, and a ring that repeats a position (the reader keeps it as written)
    (
        "MULTIPOLYGON Z (((0 0 5, 10 0 5, 10 10 5, 0 10 5, 0 0 5), (2 2 5, 2 3 5, 3 3 5, 2 2 5)),"
        " ((0 0 0, 1 0 0, 1 0 0, 1 1 0, 0 0 0)))"
    ),
    "MULTIPOLYGON Z (((0 0 NaN, 1 0 NaN, 1 1 NaN, 0 0 NaN)))",  # heights unknown
    "MULTIPOLYGON Z (((-1e300 2.5e-300 -0.0, 1 0 0, 1 1 0, -1e300 2.5e-300 -0.0)))",
]


def _geos(geometries: np.ndarray) -> pa.Array:
    return pa.array(shapely.to_wkb(geometries, output_dimension=3), pa.binary())


def _ragged(geometries: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """shapely's ragged arrays of `geometries`, a missing one a geometry of no parts."""
    present = ~shapely.is_missing(geometries)
    _, coords, nesting = shapely.to_ragged_array(geometries[present], include_z=True)
    if len(nesting) == 3:
        parts = np.zeros(len(geometries), np.int64)
        parts[present] = np.diff(nesting[2])
        nesting = (*nesting[:2], np.concatenate([[0], np.cumsum(parts)]))
    return coords, nesting, present


def test_multipolygons_with_holes_nan_heights_and_missing_rows_are_geos_bytes() -> None:
    geometries = np.array([shapely.from_wkt(s) for s in _SHAPES] + [None], dtype=object)
    geometries = geometries[[0, 4, 1, 2, 4, 3]]  # nulls between and at the end
    coords, nesting, present = _ragged(geometries)
    written = polygons_z(coords, nesting, present)
    assert written is not None and written.equals(_geos(geometries))
    assert written.null_count == 2


def test_polygons_are_geos_bytes() -> None:
    polygons = shapely.get_parts(np.array([shapely.from_wkt(s) for s in _SHAPES]))
    coords, nesting, _ = _ragged(polygons)
    written = polygons_z(coords, nesting)
    assert written is not None and written.equals(_geos(polygons))


def test_many_random_faces_round_trip() -> None:
    rng = np.random.default_rng(17)
    rings = rng.integers(1, 3, 200)  # rings per face: an exterior, some a hole
    sizes = rng.integers(4, 9, int(rings.sum()))  # positions per ring, the last the first
    faces_per = np.bincount(rng.integers(0, 40, len(rings)), minlength=40)
    coords = rng.normal(size=(int(sizes.sum()), 3)) * 1e5
    ends = np.cumsum(sizes)
    coords[ends - 1] = coords[ends - sizes]
    nesting = tuple(np.concatenate([[0], np.cumsum(c)]) for c in (sizes, rings, faces_per))
    present = faces_per > 0
    built = shapely.from_ragged_array(GeometryType.MULTIPOLYGON, coords, nesting)
    built[~present] = None
    written = polygons_z(coords, nesting, present)
    assert written is not None and written.equals(_geos(built))


def _flat(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The faces of `geometries` (multipolygons or None) held flat, as `FlatFaces`: positions,
    each position's ring, each ring's face, each face's geometry."""
    parts, owner = shapely.get_parts(geometries, return_index=True)
    rings, face = shapely.get_rings(parts, return_index=True)
    coords, ring = shapely.get_coordinates(rings, include_z=True, return_index=True)
    return coords, ring, face, owner


@pytest.fixture(params=["compiled", "numpy"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test of solids' WKB twice: with the compiled pass (wkb_faces.pyx), and without."""
    if request.param == "numpy":
        monkeypatch.setattr(wkb_ragged, "compiled", None)
    elif wkb_ragged.compiled is None:
        pytest.skip("the WKB kernel (wkb_faces.pyx) did not build")
    return str(request.param)


def test_solids_and_their_parts_at_moved_positions_are_geos_bytes(kernel: str) -> None:
    """Multipolygons written from flat faces whose corners are read at distinct positions
    (`xy[codes]`, heights apart), with nulls between, are GEOS's bytes of the same solids;
    any parts cut out of them, in any order and repeated, GEOS's of each polygon alone."""
    geometries = np.array([shapely.from_wkt(s) for s in _SHAPES] + [None], dtype=object)
    geometries = geometries[[4, 0, 4, 1, 2, 4, 3, 4]]
    coords, ring, face, owner = _flat(geometries)
    codes, found = pd.factorize(coords[:, 0] + 1j * coords[:, 1])
    xy = np.column_stack([found.real, found.imag])
    present = ~shapely.is_missing(geometries)
    written = wkb_ragged.solids_z(xy, codes, coords[:, 2], (ring, face, owner), present)
    assert written is not None and written.wkb.equals(_geos(geometries))
    polygons = shapely.get_parts(geometries)
    rng = np.random.default_rng(17)
    for parts in (np.arange(len(polygons)), rng.integers(0, len(polygons), 20), [3, 0, 3]):
        parts = np.asarray(parts, np.int64)
        assert written.faces(parts).equals(_geos(polygons[parts]))
    assert len(written.faces(np.zeros(0, np.int64))) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(3, 7), min_size=1, max_size=3), min_size=1, max_size=12),
    st.lists(st.integers(0, 3), min_size=12, max_size=12),
    st.integers(0, 2**32 - 1),
)
def test_random_solids_are_geos_bytes_with_the_kernel_and_without(
    faces: list[list[int]], owners: list[int], seed: int
) -> None:
    """Random faces (holes, shared corners) of random solids, each written by the compiled
    pass and by numpy: both GEOS's bytes, and so are their faces cut out."""
    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(8, 3)) * 1e3  # few positions: corners shared as a model's are
    polygons = []
    for rings in faces:
        built = [pool[rng.integers(0, 8, n)] for n in rings]
        polygons.append(shapely.Polygon(built[0], built[1:]))
    owner = np.sort(np.asarray(owners[: len(faces)]))
    count = int(owner.max()) + 2  # a geometry without faces at the end: null
    geometries = np.full(count, None, dtype=object)
    for g in np.unique(owner):
        geometries[g] = shapely.MultiPolygon([polygons[k] for k in np.flatnonzero(owner == g)])
    coords, ring, face, owner = _flat(geometries)
    codes, found = pd.factorize(coords[:, 0] + 1j * coords[:, 1])
    xy = np.column_stack([found.real, found.imag])
    present = ~shapely.is_missing(geometries)
    kernel = wkb_ragged.compiled
    for compiled in {kernel, None}:
        wkb_ragged.compiled = compiled
        try:
            written = wkb_ragged.solids_z(xy, codes, coords[:, 2], (ring, face, owner), present)
        finally:
            wkb_ragged.compiled = kernel
        assert written is not None and written.wkb.equals(_geos(geometries))
        parts = rng.integers(0, len(owner), 5)
        assert written.faces(parts).equals(_geos(shapely.get_parts(geometries)[parts]))


def test_solids_geos_writes_otherwise_are_left_to_geos(kernel: str) -> None:
    """A face of no positions, a present solid of no faces, a null one with faces: None."""
    xy, codes, z = np.array([[0.0, 0], [1, 0], [1, 1]]), np.array([0, 1, 2, 0]), np.zeros(4)
    ring, face = np.zeros(4, np.int64), np.array([0, 1])  # face 1's ring holds no position
    write = wkb_ragged.solids_z
    assert write(xy, codes, z, (ring, face, np.array([0, 0])), np.array([True])) is None
    assert write(xy, codes, z, (ring, face[:1], np.array([0])), np.array([True, True])) is None
    assert write(xy, codes, z, (ring, face[:1], np.array([1])), np.array([True, False])) is None
    written = write(xy, codes, z, (ring, face[:1], np.array([1])), np.array([False, True]))
    assert written is not None and written.wkb.null_count == 1


def test_what_geos_writes_otherwise_is_left_to_geos() -> None:
    """An empty polygon (a face of no rings) or a present geometry of no parts: None."""
    coords = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=float)
    no_rings = (np.array([0, 4]), np.array([0, 1, 1]))
    assert polygons_z(coords, no_rings) is None
    no_parts = (np.array([0, 4]), np.array([0, 1]), np.array([0, 1, 1]))
    assert polygons_z(coords, no_parts) is None
    assert polygons_z(coords, no_parts, np.array([True, False])) is not None


def test_face_rings_are_the_picked_faces_of_flat_arrays() -> None:
    """The faces picked from flat arrays (each position's ring, each ring's face), holes and
    all, are the polygons they were read from; a ring of no positions is left out."""
    polygons = shapely.get_parts(np.array([shapely.from_wkt(s) for s in _SHAPES]))
    rings, face = shapely.get_rings(polygons, return_index=True)
    coords, ring = shapely.get_coordinates(rings, include_z=True, return_index=True)
    ring = np.where(ring >= 2, ring + 1, ring)  # an empty ring, the second face's hole
    face = np.insert(face, 2, 1)
    pick = np.array([False, True, True, False, True, True])  # the hole, NaN heights
    ragged, sizes, per_face = face_rings(coords, ring, face, pick)
    _, coords, nesting = shapely.to_ragged_array(polygons[pick], include_z=True)
    np.testing.assert_array_equal(ragged, coords)  # NaN heights included
    assert sizes.tolist() == np.diff(nesting[0]).tolist()
    assert per_face.tolist() == np.diff(nesting[1]).tolist() == [1, 2, 1, 1]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=12),
    st.data(),
)
def test_few_faces_picked_by_bisection_are_those_of_the_pass(faces, data) -> None:
    """Faces of rings of 0 to 4 positions (an empty ring left out) and faces of no rings:
    the faces picked by bisection (`face_rings` of a few faces) are those the pass over every
    position picks, the same arrays."""
    ring_sizes = [size for rings in faces for size in rings]
    polygon = np.repeat(np.arange(len(faces)), [len(rings) for rings in faces])
    ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    coords = np.arange(3.0 * len(ring)).reshape(-1, 3)
    select = np.array(data.draw(st.lists(st.booleans(), min_size=len(faces), max_size=len(faces))))
    few = wkb_ragged._few_face_rings(coords, ring, polygon, np.flatnonzero(select))
    every = wkb_ragged._every_face_rings(coords, ring, polygon, select)
    for got, want in zip(few, every, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
