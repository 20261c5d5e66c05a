"""A GeoJSON batch's members gathered compiled (connectors/geojson_members.pyx) and in Python
(geojson._members) alike: the same lists, of the same objects, for whatever a document's
features array may hold (Features with any of their members missing, null or of another JSON
type, records that are not Features, text orjson could not parse)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import geojson
from citypipe.connectors.json_numbers import WideInteger
from citypipe.connectors.jsonstream import Unparsed

pytestmark = pytest.mark.skipif(geojson.members is None, reason="geojson_members did not build")

_SCALAR = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | st.text(max_size=3)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)
_ID = _JSON | st.builds(WideInteger, st.just("123456789012345678901"))
_TIME = _JSON | st.fixed_dictionaries(
    {}, optional={"instant": _JSON, "date": _JSON, "interval": _JSON}
)
_GEOMETRY = _JSON | st.fixed_dictionaries(
    {"type": st.just("Point"), "coordinates": st.just([1.0, 2.0])}, optional={"crs": _JSON}
)
_FEATURE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["Feature", "FeatureCollection", "feature"]) | _SCALAR,
        "id": _ID,
        "properties": _JSON,
        "featureType": _JSON,
        "time": _TIME,
        "geometry": _GEOMETRY,
        "place": _GEOMETRY,
        "crs": _JSON,
    },
)


def _unparsed(text: str) -> Unparsed:
    record = Unparsed(text)
    record.reason = "not valid JSON"
    return record


_RECORD = (
    _FEATURE
    | _FEATURE.map(lambda f: {**f, "type": "Feature"})
    | _JSON
    | st.builds(_unparsed, st.text(max_size=4))
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_RECORD, max_size=8),
    st.sampled_from(["geometry", "place"]),
    st.none() | st.text(max_size=3) | st.integers(0, 3),
)
def test_compiled_and_python_gather_the_same(features, key, collection_class):
    compiled = geojson.members(features, key, collection_class, geojson._id)
    python = geojson._members(features, key, collection_class, geojson._id)
    assert compiled == python
    # the same objects where they are the features' own (their properties, geometries, ids)
    for ours, theirs in zip(compiled, python, strict=True):
        assert [type(v) for v in ours] == [type(v) for v in theirs]
    for ours, theirs in zip(compiled[1], python[1], strict=True):
        assert ours is theirs or ours == theirs == {}
    assert all(a is b for a, b in zip(compiled[4], python[4], strict=True))


def test_a_feature_is_read_for_what_it_says():
    features = [
        {"type": "Feature", "id": 7, "properties": {"a": 1}, "geometry": None, "place": {}},
        {"type": "Feature", "id": "b", "properties": [1], "geometry": {"crs": "x"}},
        {"type": "Feature", "time": {"date": "2026-12-05"}, "featureType": "Tree"},
        ["not", "a", "feature"],
    ]
    ids, props, classes, observed, _, not_features, on_place, own_crs, bad = geojson.members(
        features, "geometry", "Park", geojson._id
    )
    assert ids == ["7", "b", None, None]
    assert props == [{"a": 1}, {}, {}, {}]
    assert classes == ["Park", "Park", "Tree", "Park"]
    assert observed == [None, None, "2026-12-05", None]
    assert (not_features, on_place, own_crs, bad) == ([3], [0], [1], [1])
