"""Properties as JSON texts (connectors/json_properties.py): each read back as the dict it was
written of, and a step that reads some keys given what the dicts would give it; harmonise
writes them as it writes the dicts."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors.json_properties import JSONProperties, holding, keys_of
from citypipe.core.properties import json_texts
from citypipe.core.values import AttributeMap

_KEYS = st.sampled_from(["name", "Name", "height", 'we"ird', "back\\slash", "é", "value", "x"])
_LEAVES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    _KEYS,
    _KEYS.map(lambda k: f'"{k}":'),  # a key's text inside a value
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)
_RECORDS = st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=6)


@settings(max_examples=200, deadline=None)
@given(_RECORDS, st.lists(_KEYS, min_size=1, max_size=3, unique=True))
def test_texts_read_back_and_give_a_step_what_the_dicts_give(
    records: list[dict[str, Any]], keys: list[str]
) -> None:
    texts = JSONProperties.of(records)
    assert texts is not None
    assert texts.texts == [orjson.dumps(r) for r in records]
    assert list(texts) == records and texts[1:3] == records[1:3]
    assert keys_of(texts) == keys_of(records) == frozenset().union(*records)
    first = AttributeMap.first_filled
    held = holding(texts, keys)
    assert [first(held[i], keys) for i in range(len(records))] == [first(r, keys) for r in records]
    assert [first(p, keys) for p in held[:]] == [first(r, keys) for r in records]
    assert holding(records, keys) is records


@settings(max_examples=200, deadline=None)
@given(_RECORDS, st.data())
def test_texts_are_written_as_their_dicts_with_the_notes(records: list[dict[str, Any]], data):
    extras = data.draw(
        st.lists(
            st.none() | st.dictionaries(st.sampled_from(["citypipe:a", "x"]), _LEAVES, max_size=2),
            min_size=len(records),
            max_size=len(records),
        )
    )
    limit = data.draw(st.sampled_from([4, 1 << 20]))
    texts = JSONProperties.of(records)
    assert texts is not None
    merged = [{**r, **e} if e else r for r, e in zip(records, extras, strict=True)]
    got, failed = json_texts(texts, limit, extras)
    want, failed_too = json_texts(merged, limit)
    assert got.equals(want) and failed == failed_too == {}
    assert texts.texts == [orjson.dumps(r) for r in records]  # a cut text is not the batch's


def test_properties_orjson_does_not_write_are_not_texts() -> None:
    assert JSONProperties.of([{"a": 1}, {"b": 1j}]) is None
    assert JSONProperties.of([{"big": 2**64}]) is None
