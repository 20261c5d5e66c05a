"""coordinates.to_floats compiled (connectors/float_lists.pyx) and in Python give the same
array, bit for bit, or refuse alike: lists of floats and ints at any depth the readers ask,
with what JSON may put among them (strings, booleans, null, objects, integers beyond a double,
NaN's stand-ins), tuples where lists stand, and counts that are not the values'."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import coordinates

pytestmark = pytest.mark.skipif(coordinates.floats_of is None, reason="float_lists did not build")

_NUMBER = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**70), 2**70)
_ODD = st.sampled_from(["12", True, False, None, {"x": 1}, 10**400, -(10**400), 0, 1, -0.0])


def _both(nested, levels, count, width=None):
    """What each way makes of it: the array's bytes, or the error's type."""
    out = []
    for compiled in (coordinates.floats_of, None):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(coordinates, "floats_of", compiled)
            try:
                out.append(coordinates.to_floats(nested, levels, count, width).tobytes())
            except (ValueError, OverflowError) as e:
                out.append(type(e))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.lists(_NUMBER | _ODD, max_size=4), max_size=4), max_size=4),
    st.booleans(),
    st.integers(-2, 2),
)
def test_both_ways_agree(nested, as_tuples, extra):
    if as_tuples and nested:
        nested[0] = tuple(nested[0])
    count = sum(len(p) for ring in nested for p in ring)
    compiled, python = _both(nested, 2, max(count + extra, 0))
    assert compiled == python


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.lists(_NUMBER, min_size=1, max_size=4), max_size=4), max_size=4),
    st.sampled_from([2, 3]),
)
def test_a_width_refuses_positions_of_another_dimension_alike(rings, width):
    """Positions of 2 and 3 numbers may sum to a count of pairs: the width tells them apart."""
    count = sum(len(p) for ring in rings for p in ring)
    compiled, python = _both(rings, 2, count, width)
    assert compiled == python
    held = {len(p) for ring in rings for p in ring}
    assert (compiled is ValueError) == (held - {width} != set())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_NUMBER, min_size=2, max_size=3), max_size=8))
def test_positions_of_numbers_are_read_exactly(positions):
    count = sum(map(len, positions))
    out = coordinates.to_floats(positions, 1, count)
    assert out.tobytes() == np.array([float(v) for p in positions for v in p]).tobytes()


def test_what_is_not_a_number_is_refused_by_both():
    for odd in ("12", True, None, {"x": 1}, 10**400, [1.0]):
        compiled, python = _both([[1.0, odd]], 1, 2)
        assert compiled is python is ValueError, odd
    assert math.isclose(coordinates.to_floats([[0, 1]], 1, 2)[1], 1.0)
