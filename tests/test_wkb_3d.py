"""`wkb.to_wkb_3d` selects the same rows by a slice as by an index array, whether the 3D
geometries are shapely's or their WKB already written (pipelines/geo/wkb.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import shapely

from citypipe.geo.wkb import to_wkb_3d

_WKT = [
    "POLYGON Z ((0 0 1, 4 0 1, 4 4 2, 0 0 1))",
    None,
    "POLYGON Z ((0 0 0, 0 4 0, 4 4 0, 0 0 0))",
    "MULTIPOLYGON Z (((0 0 5, 1 0 5, 1 1 5, 0 0 5)))",
    "POLYGON Z ((2 2 3, 3 2 3, 3 3 3, 2 2 3))",
]
_GEOMETRIES = np.array([None if w is None else shapely.from_wkt(w) for w in _WKT], dtype=object)


@pytest.mark.parametrize("rows", [slice(None), slice(1, 4), slice(None, None, 2), slice(3, 3)])
@pytest.mark.parametrize("written", [False, True], ids=["shapely", "wkb"])
def test_a_slice_and_an_index_array_give_the_same_rows(rows: slice, written: bool) -> None:
    index = np.arange(len(_WKT), dtype=np.int64)[rows]
    expected = [None if w is None else shapely.from_wkt(w) for w in np.array(_WKT)[rows]]
    geometries = (
        pa.array(shapely.to_wkb(_GEOMETRIES, output_dimension=3), pa.binary())
        if written
        else _GEOMETRIES
    )
    by_slice, by_index = to_wkb_3d(geometries, rows), to_wkb_3d(geometries, index)
    assert by_slice.equals(by_index)
    read = shapely.from_wkb(by_slice.to_numpy(zero_copy_only=False))
    assert len(read) == len(expected)
    for got, want in zip(read, expected, strict=True):
        assert (got is None and want is None) or (shapely.equals_exact(got, want) and got.has_z)
