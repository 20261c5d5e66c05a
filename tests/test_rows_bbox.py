"""The bbox covering (rows.bbox): float32 boxes that hold their geometries' float64 bounds and are
the tightest that do, null where a geometry has no bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from citypipe.core import rows

_COORDINATE = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False) | st.sampled_from(
    [0.0, -0.0, 1e-46, -1e-46, 41.3851, 2.1734]
)
_BOX = st.tuples(_COORDINATE, _COORDINATE, _COORDINATE, _COORDINATE).map(
    lambda c: (min(c[0], c[2]), min(c[1], c[3]), max(c[0], c[2]), max(c[1], c[3]))
)


@given(st.lists(_BOX | st.just((np.nan,) * 4), min_size=1, max_size=40))
def test_each_box_holds_its_bounds_and_is_the_tightest_that_does(boxes) -> None:
    bounds = np.array(boxes, dtype=np.float64)
    covering = rows.bbox(bounds)
    missing = np.isnan(bounds).any(axis=1)
    assert covering.is_null().to_pylist() == missing.tolist()
    for i, name in enumerate(("xmin", "ymin", "xmax", "ymax")):
        got = covering.field(name).to_numpy(zero_copy_only=False)[~missing]
        assert got.dtype == np.float32
        given_ = bounds[~missing, i]
        outwards = np.float32(-np.inf if i < 2 else np.inf)
        inwards = np.nextafter(got, -outwards)
        if i < 2:  # a minimum: at or below, and the next float32 up is above
            assert (got.astype(np.float64) <= given_).all()
            assert (inwards.astype(np.float64) > given_).all()
        else:
            assert (got.astype(np.float64) >= given_).all()
            assert (inwards.astype(np.float64) < given_).all()
