"""The properties' JSON text (pipelines/core/properties.py): each record's text, and the
measures rounded as Python's round() rounds them."""

from __future__ import annotations

import math
import struct
from typing import cast

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core.properties import json_texts, rounded


def _bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack("<d", x)


def _expected(values: list[float], digits: int) -> list[bytes | None]:
    return [None if math.isnan(x) else _bits(round(x, digits)) for x in values]


# ties and near-ties of 3 decimals (k / 2000 and the doubles either side), halves of the
# exact range's end, and what is not finite
_TIES = st.integers(-(10**9), 10**9).flatmap(
    lambda k: st.sampled_from(
        [k / 2000, np.nextafter(k / 2000, np.inf), np.nextafter(k / 2000, -np.inf)]
    )
)
_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    _TIES,
    st.sampled_from([2.0**52 / 1000, 2.0**52 / 1000 + 0.5, 2.0**53, -0.0, 5e-324, -5e-324]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FLOATS, max_size=40), st.integers(0, 6))
def test_rounded_is_pythons_round(values: list[float], digits: int) -> None:
    got = rounded(np.array(values, np.float64), digits)
    assert [_bits(x) for x in got] == _expected([float(x) for x in values], digits)


def test_rounded_ties_go_to_the_even_decimal() -> None:
    # 0.0625 and 2.5 are exact doubles: round() takes the even neighbour, as rint does
    assert rounded(np.array([0.0625, 0.0635, 2.5, -0.0004, np.nan]), 3) == [
        0.062,
        round(0.0635, 3),
        2.5,
        -0.0,
        None,
    ]
    assert math.copysign(1.0, cast(float, rounded(np.array([-0.0004]), 3)[0])) == -1.0


def test_json_texts_are_each_records_orjson_text() -> None:
    records = [{"a": 1.5, "b": [1, "x"]}, {}, {"name": "é"}, {"deep": {"er": None}}]
    texts, failed = json_texts(records, 1 << 20)
    assert failed == {}
    assert texts.to_pylist() == [orjson.dumps(r).decode() for r in records]


def test_json_texts_cut_a_long_value_and_name_the_unwritable() -> None:
    records = [{"long": "x" * 50}, {1j: 2}, {"short": "y"}]
    texts, failed = json_texts(records, 10)
    assert texts[1].as_py() is None and list(failed) == [1]
    assert orjson.loads(texts[0].as_py())["long"] == "x" * 10
    assert texts[2].as_py() == '{"short":"y"}'
    texts, failed = json_texts([{"long": "x" * 50}, {"short": "y"}], 10)
    assert failed == {} and orjson.loads(texts[0].as_py())["long"] == "x" * 10
    assert texts[1].as_py() == '{"short":"y"}'
