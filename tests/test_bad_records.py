"""One bad record in a real sample: rejected with its reason and as read, the others ingested.

Each test takes a bundled sample, puts one defect into it (a LineString of one position, NaN,
Infinity or 1e309 where JSON has no such number, coordinates that are not numbers, properties
nested too deep, an id that looks generated) and checks the counts against the sample's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import orjson
import pytest
import shapely
from conftest import SAMPLES

from citypipe.connectors.jsonstream import Unparsed, open_json
from citypipe.core.ingest import ingest
from citypipe.core.properties import TRUNCATED_NOTE
from citypipe.geo.errors import CitypipeError, ConfigurationError

FOUNTAINS = "barcelona_drinking_fountains.geojson"
FOUNTAINS_COUNT = 1988  # features in the sample (barcelona_drinking_fountains.geojson)


def _fountains(sample, extra: str, at: int = 5) -> Path:
    """The fountains sample with `extra` (a feature's text) inserted as its feature `at`."""
    path = sample(FOUNTAINS)
    doc = json.loads(path.read_text(encoding="utf-8"))
    texts = [json.dumps(f) for f in doc["features"]]
    texts.insert(at, extra)
    path.write_text('{"type": "FeatureCollection", "features": [' + ",\n".join(texts) + "]}")
    return path


def _feature(geometry: str, properties: str = "{}", fid: str | None = None) -> str:
    own = f', "id": {json.dumps(fid)}' if fid is not None else ""
    return f'{{"type": "Feature"{own}, "geometry": {geometry}, "properties": {properties}}}'


def _one_reject(lake, read_lake, path: Path, validate: bool = False) -> dict:
    report = ingest(path, "s", lake, validate=validate)
    assert (report.records, report.features, report.rejects) == (
        FOUNTAINS_COUNT + 1,
        FOUNTAINS_COUNT,
        1,
    )
    return read_lake("s", "rejects").to_pylist()[0]


def test_a_linestring_of_one_position_is_rejected(sample, lake, read_lake):
    path = _fountains(sample, _feature('{"type": "LineString", "coordinates": [[2.17, 41.38]]}'))
    reject = _one_reject(lake, read_lake, path, validate=True)
    assert "point array must contain 0 or >1 elements" in reject["reason"]
    assert json.loads(reject["record"])["geometry"]["coordinates"] == [[2.17, 41.38]]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309"])
@pytest.mark.parametrize(
    "geometry",
    [
        '{"type": "Point", "coordinates": [%s, 41.38]}',
        '{"type": "Polygon", "coordinates": [[[2.1, 41.3], [%s, 41.3], [2.2, 41.4], [2.1, 41.3]]]}',
    ],
)
def test_numbers_json_does_not_have_reject_their_record_as_written(
    sample, lake, read_lake, number, geometry
):
    text = _feature(geometry % number, '{"name": "bad"}')
    reject = _one_reject(lake, read_lake, _fountains(sample, text))
    assert "JSON does not have" in reject["reason"]
    assert reject["record"] == text


def test_a_batch_of_the_streaming_reader_keeps_its_good_elements(sample):
    """Forced through the streaming path (batches of 64 KiB): the batch holding the bad
    element yields every element, the bad one as its text with the reason."""
    bad = _feature('{"type": "Point", "coordinates": [NaN, 41.38]}')
    features = json.loads((SAMPLES / FOUNTAINS).read_text(encoding="utf-8"))["features"]
    path = _fountains(sample, bad, at=700)
    doc = open_json(path, "features", batch_bytes=1 << 16)
    elements = [e for batch in doc.batches() for e in batch]
    doc.close()
    assert elements[:700] == features[:700] and elements[701:] == features[700:]
    assert isinstance(elements[700], Unparsed) and elements[700] == bad
    assert "JSON does not have" in elements[700].reason


@pytest.mark.parametrize(
    ("coordinates", "named"),
    [
        ('["2.17", "41.38"]', '"2.17", a string'),
        ("[true, false]", "true, a boolean"),
        ('{"x": 2.17, "y": 41.38}', '{"x":2.17,"y":41.38}, an object'),
        ("[null, 41.38]", "null,"),
    ],
)
def test_values_that_are_not_numbers_are_not_coordinates(
    sample, lake, read_lake, coordinates, named
):
    reject = _one_reject(
        lake,
        read_lake,
        _fountains(sample, _feature(f'{{"type": "Point", "coordinates": {coordinates}}}')),
    )
    assert f"coordinates hold {named}" in reject["reason"]


def test_a_string_in_a_polygon_is_named_too(sample, lake, read_lake):
    ring = '[[2.1, 41.3], [2.2, "41.3"], [2.2, 41.4], [2.1, 41.3]]'
    reject = _one_reject(
        lake,
        read_lake,
        _fountains(sample, _feature(f'{{"type": "Polygon", "coordinates": [{ring}]}}')),
    )
    assert 'coordinates hold "41.3", a string' in reject["reason"]


def test_a_coordinate_beyond_any_earth_is_rejected_before_geometry_work(sample, lake, read_lake):
    ring = "[[2.1, 41.3], [1e300, 41.3], [2.2, 41.4], [2.1, 41.3]]"
    polygon = f'{{"type": "Polygon", "coordinates": [{ring}]}}'
    reject = _one_reject(lake, read_lake, _fountains(sample, _feature(polygon)))
    assert "beyond ±1e10" in reject["reason"]


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


ORJSON_DEPTH = 254
"""The levels of arrays and objects within each other orjson writes (its documentation)."""


@pytest.mark.parametrize("depth", [ORJSON_DEPTH - 1, 300, 1000])
def test_properties_nested_deeper_than_orjson_writes_are_kept_whole(sample, lake, read_lake, depth):
    """The lake's text column holds any depth, which pyarrow and DuckDB read: properties
    nested deeper than orjson writes (they went to rejects) are written whole."""
    point = '{"type": "Point", "coordinates": [2.17, 41.38]}'
    path = _fountains(sample, _feature(point, f'{{"deep": {_nested(depth)}}}'))
    report = ingest(path, "s", lake)
    assert (report.features, report.rejects) == (FOUNTAINS_COUNT + 1, 0)
    files = str(lake.partition("features", "s") / "*.parquet")
    inner = "$.deep" + "[0]" * depth
    query = f"SELECT json_extract(properties, '{inner}') FROM read_parquet('{files}')"
    found = [v for (v,) in duckdb.sql(query).fetchall() if v is not None]
    assert found == ["1"]


def test_a_real_id_never_takes_a_generated_one_and_ids_stay_across_runs(sample, lake, read_lake):
    """The fountains have no ids: they are numbered #1, #2 ...; a feature whose own id is "#1"
    keeps it (as ##1) instead of being rejected as a repeat of the first fountain's."""
    path = _fountains(sample, _feature('{"type": "Point", "coordinates": [2.17, 41.38]}', fid="#1"))
    runs = []
    for _ in range(2):
        report = ingest(path, "s", lake)
        assert (report.features, report.rejects) == (FOUNTAINS_COUNT + 1, 0)
        table = read_lake("s")
        runs.append(
            dict(
                zip(
                    table.column("feature_id").to_pylist(),
                    table.column("source_id").to_pylist(),
                    strict=False,
                )
            )
        )
    assert runs[0] == runs[1]
    assert runs[0]["s/##1"] == "#1" and runs[0]["s/#1"] is None
    assert len(runs[0]) == FOUNTAINS_COUNT + 1


def test_a_long_text_value_is_cut_with_a_note(sample, lake, read_lake, monkeypatch):
    monkeypatch.setenv("CITYPIPE_MAX_VALUE_BYTES", "1000")
    long = 'àé\\"' * 400  # as written in JSON: two-byte letters and escaped quotes
    point = '{"type": "Point", "coordinates": [2.17, 41.38]}'
    path = _fountains(sample, _feature(point, f'{{"name": "long", "text": "{long}"}}'))
    report = ingest(path, "s", lake)
    assert (report.features, report.rejects) == (FOUNTAINS_COUNT + 1, 0)
    props = [json.loads(p) for p in read_lake("s").column("properties").to_pylist()]
    cut = next(p for p in props if p.get("name") == "long")
    written = json.loads(f'"{long}"')
    assert len(cut["text"].encode()) <= 1000 and written.startswith(cut["text"])
    assert len(cut["text"].encode()) > 1000 - 4  # cut at a character boundary, not sooner
    assert f"text ({len(written.encode())} bytes) cut to 1000 bytes" in cut[TRUNCATED_NOTE]
    assert sum(TRUNCATED_NOTE in p for p in props) == 1


@pytest.mark.parametrize("depth", [300, 1000])  # 1000: deeper than Python's stack
def test_a_record_deeper_than_orjson_writes_with_a_long_text_is_cut_not_a_crash(
    sample, lake, read_lake, monkeypatch, depth
):
    monkeypatch.setenv("CITYPIPE_MAX_VALUE_BYTES", "1000")
    point = '{"type": "Point", "coordinates": [2.17, 41.38]}'
    props = f'{{"name": "deep", "deep": {_nested(depth)}, "text": "{"x" * 2000}"}}'
    report = ingest(_fountains(sample, _feature(point, props)), "s", lake)
    assert (report.features, report.rejects) == (FOUNTAINS_COUNT + 1, 0)
    texts = read_lake("s").column("properties").to_pylist()
    written = [orjson.loads(p) for p in texts]  # json.loads recurses past Python's stack
    cut = next(p for p in written if p.get("name") == "deep")
    assert cut["text"] == "x" * 1000
    assert "text (2000 bytes) cut to 1000 bytes" in cut[TRUNCATED_NOTE]
    inner = cut["deep"]
    for _ in range(depth):
        inner = inner[0]
    assert inner == 1


def test_a_bad_record_past_the_streaming_threshold(sample, tmp_path, lake, read_lake):
    """A file over 4 MB takes the streaming path: the same one reject, the rest ingested."""
    path = sample(FOUNTAINS)
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    texts = [json.dumps(f) for f in features] * 8  # about 5.5 MB
    bad = _feature('{"type": "Point", "coordinates": [1e309, 41.38]}')
    texts.insert(len(texts) // 2, bad)
    big = tmp_path / "big.geojson"
    big.write_text('{"type": "FeatureCollection", "features": [' + ",".join(texts) + "]}")
    assert big.stat().st_size > 4 * 1024 * 1024
    report = ingest(big, "s", lake, validate=False)
    assert (report.features, report.rejects) == (8 * FOUNTAINS_COUNT, 1)
    assert read_lake("s", "rejects")["record"][0].as_py() == bad


def test_every_kept_point_is_on_the_earth(sample, lake, read_lake):
    bad = [
        _feature(f'{{"type": "Point", "coordinates": {c}}}')
        for c in ("[1e300, 41.38]", "[2.17, 1e300]", '["2.17", 41.38]')
    ]
    path = _fountains(sample, ",".join(bad))
    report = ingest(path, "s", lake)
    assert (report.features, report.rejects) == (FOUNTAINS_COUNT, 3)
    xy = shapely.get_coordinates(
        shapely.from_wkb(read_lake("s").column("geometry").to_numpy(zero_copy_only=False))
    )
    assert len(xy) == FOUNTAINS_COUNT and (abs(xy) <= [180, 90]).all()


def test_a_document_with_an_empty_element_is_refused(sample, lake):
    path = _fountains(sample, "")  # two commas in a row: the document is not JSON
    with pytest.raises(CitypipeError, match="empty array element"):
        ingest(path, "s", lake)


def test_a_value_size_that_is_not_a_number_of_bytes_is_a_configuration_error(
    sample, lake, monkeypatch
):
    monkeypatch.setenv("CITYPIPE_MAX_VALUE_BYTES", "1MB")
    with pytest.raises(ConfigurationError, match="CITYPIPE_MAX_VALUE_BYTES='1MB'"):
        ingest(sample(FOUNTAINS), "s", lake)


def test_a_repeated_id_is_rejected_by_harmonise_alone(sample, lake, read_lake):
    """Two features with the id "dup": harmonise rejects the second with its reason, and the
    validation suite, which checks and reports but rejects nothing, finds every id unique."""
    point = '{"type": "Point", "coordinates": [2.17, 41.38]}'
    twice = ",\n".join([_feature(point, fid="dup"), _feature(point, fid="dup")])
    report = ingest(_fountains(sample, twice), "s", lake)
    assert (report.records, report.features, report.rejects) == (
        FOUNTAINS_COUNT + 2,
        FOUNTAINS_COUNT + 1,
        1,
    )
    assert report.reasons == {"duplicate id 'dup' in the source": 1}
    [reject] = read_lake("s", "rejects").to_pylist()
    assert (reject["source_id"], reject["reason"]) == ("dup", "duplicate id 'dup' in the source")
    checks = {c.name: c for c in report.checks}
    assert report.checks_failed == 0 and checks["feature_id_unique"].failed == 0


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_json_in_a_wide_encoding_is_refused_naming_it(sample, lake, codec):
    """RFC 8259 has JSON in UTF-8 alone: a UTF-16 / -32 copy of a real sample is refused in one
    line that names its encoding, not taken for an unknown format."""
    path = sample("jena_parking.geojson")
    path.write_bytes(path.read_text(encoding="utf-8").encode(codec))
    with pytest.raises(CitypipeError, match=f"{codec.upper()} text.*must be UTF-8"):
        ingest(path, "wide", lake)
    assert not lake.holds("features")


def test_a_geojson_written_in_a_code_page_is_read_in_it_with_a_warning(sample, lake, read_lake):
    """Barcelona's districts as a shapefile's cp1252 export would write them (JSON is UTF-8
    alone, GDAL reads such files as their code page): every district lands with its Catalan
    name as the UTF-8 original spells it, and the report says how the text was read."""
    path = sample("barcelona_districtes.geojson")
    text = path.read_text(encoding="utf-8")
    names = [f["properties"]["NOM"] for f in json.loads(text)["features"]]
    assert any(not n.isascii() for n in names)  # Gràcia, Sant Martí ...
    path.write_bytes(text.encode("cp1252"))
    report = ingest(path, "districts", lake)
    assert report.features == 10 and report.rejects == 0
    assert sorted(
        json.loads(p)["NOM"] for p in read_lake("districts").column("properties").to_pylist()
    ) == sorted(names)
    [(warning, n)] = report.warnings.items()
    assert "not UTF-8" in warning and "cp1252" in warning and n == 10
