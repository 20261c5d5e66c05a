"""2D WKB of a column of polygons written from their positions (pipelines/geo/wkb.py) is
GEOS's, byte for byte, with the compiled pass (wkb_faces.pyx) and with numpy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.geo import wkb, wkb_ragged


def _geos(geometries: np.ndarray) -> pa.Array:
    return pa.array(shapely.to_wkb(geometries, output_dimension=2), pa.binary())


@pytest.fixture(params=["compiled", "numpy"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: with the compiled pass, and with numpy's; every column written from
    its positions, however small."""
    monkeypatch.setattr(wkb, "FEW", 0)
    monkeypatch.setattr(wkb, "ROWS", 0)
    if request.param == "numpy":
        monkeypatch.setattr(wkb_ragged, "compiled", None)
    elif wkb_ragged.compiled is None:
        pytest.skip("the WKB kernel (wkb_faces.pyx) did not build")
    return str(request.param)


_OTHERS = [
    "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
    "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
    "LINESTRING (0 0, 3 4)",
    "POINT (7 8)",
]


def _polygon(rng: np.random.Generator, holes: int, z: bool) -> shapely.Polygon:
    """A polygon of random rings (closed, of 3 to 8 positions, not necessarily valid: WKB
    carries them as they are), with heights where `z`."""
    rings = []
    for _ in range(holes + 1):
        ring = rng.normal(size=(int(rng.integers(3, 9)), 3 if z else 2)) * 1e5
        rings.append(np.vstack([ring, ring[:1]]))
    return shapely.Polygon(rings[0], rings[1:])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.sampled_from(["polygon", "holed", "many holes", "z", "none", "other"]), max_size=14
    ),
    st.integers(0, 2**32 - 1),
)
def test_random_columns_are_geos_bytes(kinds: list[str], seed: int) -> None:
    """Polygons with and without holes (up to 7: their rings asked for otherwise), with Z,
    None, and other geometries among them (written by GEOS): GEOS's bytes, nulls as nulls."""
    rng = np.random.default_rng(seed)
    column = np.full(len(kinds), None, dtype=object)
    for i, kind in enumerate(kinds):
        if kind == "other":
            column[i] = shapely.from_wkt(_OTHERS[int(rng.integers(len(_OTHERS)))])
        elif kind != "none":
            holes = {"holed": int(rng.integers(1, 3)), "many holes": 7}.get(kind, 0)
            column[i] = _polygon(rng, holes, kind == "z")
    kernel = wkb_ragged.compiled
    for compiled in {kernel, None}:
        wkb_ragged.compiled = compiled
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(wkb, "FEW", 0)
                patch.setattr(wkb, "ROWS", 0)
                written = wkb.to_wkb_2d(column)
        finally:
            wkb_ragged.compiled = kernel
        assert written.equals(_geos(column))


def test_polygons_nan_and_signed_zero_positions_are_geos_bytes(kernel: str) -> None:
    column = np.array(
        [
            shapely.from_wkt("POLYGON ((0 0, 1 0, 1 1, 0 0))"),
            None,
            shapely.from_wkt("POLYGON ((-0.0 0, NaN 0, 2.5e-300 1e300, -0.0 0))"),
            shapely.from_wkt(
                "POLYGON Z ((0 0 1, 4 0 1, 4 4 2, 0 0 1), (1 1 0, 2 1 0, 2 2 0, 1 1 0))"
            ),
        ],
        dtype=object,
    )
    written = wkb.to_wkb_2d(column)
    assert written.equals(_geos(column)) and written.null_count == 1


def test_an_empty_polygon_or_few_polygons_are_left_to_geos(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column with an empty polygon (GEOS writes it with no ring) is GEOS's alone; so is
    one of fewer than `FEW` positions, or `ROWS` polygons."""
    column = np.array([shapely.Polygon(), shapely.box(0, 0, 1, 1)], dtype=object)
    kinds = shapely.get_type_id(column)
    assert wkb._polygons(column, kinds) is None
    assert wkb.to_wkb_2d(column).equals(_geos(column))
    boxes = shapely.box(np.arange(10.0), 0, np.arange(10.0) + 1, 1)
    assert wkb._polygons(boxes, shapely.get_type_id(boxes)) is not None
    monkeypatch.setattr(wkb, "FEW", 10 * (5 + wkb.ROW) + 1)
    assert wkb._polygons(boxes, shapely.get_type_id(boxes)) is None
    monkeypatch.setattr(wkb, "FEW", 0)
    monkeypatch.setattr(wkb, "ROWS", 11)
    assert wkb._polygons(boxes, shapely.get_type_id(boxes)) is None
