"""Integers beyond 64 bits in GeoJSON (ids of national registers, hashes written as numbers):
orjson reads them as floats, losing digits. Ids and properties keep the digits the file wrote
(as text where no integer type holds them, which the feature says), and the integers within
64 bits stay integers, read whole, streamed or a record at a time."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import json_numbers
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.json_numbers import WIDE_NOTE, digit_run_in_python, loads
from citypipe.core.ingest import ingest

WIDE = "123456789012345678901234567890"
NEGATIVE = "-98765432109876543210"
U64 = str(2**64 - 1)
I64 = str(-(2**63))
FEATURES = [
    (
        f'{{"type":"Feature","id":{WIDE},"properties":{{"big":{WIDE},"u64":{U64},"i64":{I64},'
        f'"deep":{{"list":[1,{NEGATIVE}]}},"name":"{WIDE}"}},'
        f'"geometry":{{"type":"Point","coordinates":[4.9,52.37]}}}}'
    ),
    (
        f'{{"type":"Feature","id":{U64},"properties":{{"big":7}},'
        f'"geometry":{{"type":"Point","coordinates":[4.8,52.36]}}}}'
    ),
]


def _write(path, how: str):
    if how == "seq":
        path.write_text("\n".join(FEATURES) + "\n")
    else:
        path.write_text('{"type":"FeatureCollection","features":[' + ",".join(FEATURES) + "]}")
    return path


@pytest.mark.parametrize("how", ["whole", "streamed", "seq"])
def test_wide_integers_keep_their_digits_and_64_bit_ones_stay_integers(
    tmp_path, lake, read_lake, monkeypatch, how
):
    path = _write(tmp_path / f"wide.{'geojsons' if how == 'seq' else 'geojson'}", how)
    if how == "streamed":  # every feature a batch of its own
        monkeypatch.setattr(GeoJSONConnector, "batch_bytes", 64)
        assert len(list(GeoJSONConnector(path).read())) == 2
    ingest(path, "wide", lake)
    table = read_lake("wide")
    rows = dict(zip(table["source_id"].to_pylist(), table["properties"].to_pylist(), strict=True))
    assert set(rows) == {WIDE, U64}
    first = json.loads(rows[WIDE])
    assert first["big"] == WIDE and first["deep"]["list"] == [1, NEGATIVE]
    assert first["u64"] == int(U64) and first["i64"] == int(I64)  # numbers, exact
    assert first["name"] == WIDE  # a string of digits stays the string it was
    assert first[WIDE_NOTE].startswith("big, deep.list[1]:")
    second = json.loads(rows[U64])
    assert second == {"big": 7}  # no note where nothing was turned to text


_KEYS = st.text(max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.recursive(
    st.integers() | st.text(max_size=4) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
))  # fmt: skip
def test_every_integer_reads_exactly_as_python_reads_it(value):
    """Any JSON (integers of any size among floats and strings): the value Python's parser
    reads, the integers beyond 64 bits as their digits."""
    text = json.dumps(value).encode()

    def as_read(v):
        if type(v) is int and not -(2**63) <= v < 2**64:
            return str(v)
        if isinstance(v, dict):
            return {k: as_read(x) for k, x in v.items()}
        if isinstance(v, list):
            return [as_read(x) for x in v]
        return v

    assert loads(text)[0] == as_read(json.loads(text))


compiled = pytest.mark.skipif(
    json_numbers.has_digit_run is digit_run_in_python, reason="json_digits did not build"
)


@compiled
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(b"0123456789" * 8 + b'.,-e"[ \\/\x00\xff'), max_size=120).map(bytes),
    st.integers(1, 24),
)
def test_the_compiled_run_test_says_what_the_python_one_says(data, run):
    """Text of mostly digits (coordinates' runs of every length, cut by what JSON puts between
    numbers and bytes beside the digits): the compiled test finds a run where Python does."""
    assert json_numbers.has_digit_run(data, run) == digit_run_in_python(data, run)


@compiled
def test_a_run_of_digits_is_found_wherever_it_stands():
    run = "1" * 20
    for text in (run, f"[{run}]", f"[1.{'2' * 19},{run}", f"{'3' * 19}.{'4' * 19}{run[1:]}5"):
        assert json_numbers.has_digit_run(text.encode(), 20), text
    for text in ("", "1" * 19, f"[{'1' * 19},{'2' * 19}]", "x" * 40):
        assert not json_numbers.has_digit_run(text.encode(), 20), text
    assert json_numbers.has_digit_run(bytearray(b"a12"), 2)


def test_an_ngsi_entitys_wide_integer_keeps_its_digits_and_says_so(tmp_path, lake, read_lake):
    entity = (
        '[{"id": "urn:ngsi-ld:OffStreetParking:p1", "type": "OffStreetParking",'
        f' "meterId": {{"type": "Property", "value": {WIDE}}},'
        f' "spots": {{"type": "Property", "value": {U64}}},'
        ' "location": {"type": "GeoProperty",'
        ' "value": {"type": "Point", "coordinates": [-8.61, 41.15]}}}]'
    )
    path = tmp_path / "parking.jsonld"
    path.write_text(entity)
    ingest(path, "parking", lake)
    [properties] = [json.loads(p) for p in read_lake("parking")["properties"].to_pylist()]
    assert properties["meterId"] == WIDE and properties["spots"] == int(U64)
    assert properties[WIDE_NOTE].startswith("meterId:")
