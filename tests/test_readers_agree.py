"""The same answer whatever a file's size: GeoJSON's streamed and whole-parse paths accept the
same documents and give the same records; a CSV's encoding does not depend on where a byte
falls; truncated files end in exit 0 or 2, never in an internal error.

Generated documents are read twice, once with the connector's whole-parse threshold above
their size and once below it (`GeoJSONConnector.batch_bytes`), and through the real 4 MB
threshold with documents just below and just above it.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import orjson
import pytest
import shapely
from conftest import in_source_order
from hypothesis import HealthCheck, example, given, settings

from citypipe.cli import main
from citypipe.connectors.csvtable import CSVConnector
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.jsonstream import BATCH_BYTES
from citypipe.connectors.text import TextEncoding, file_encoding
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError
from citypipe.geo.types import Points

# -- GeoJSON: one document, two paths -----------------------------------------------------


def _reader(batch_bytes: int) -> type[GeoJSONConnector]:
    return type("GeoJSONAt", (GeoJSONConnector,), {"batch_bytes": batch_bytes})


def _geometries(geoms: np.ndarray | Points) -> list[str | None]:
    if isinstance(geoms, Points):
        points = shapely.points(geoms.xy)
        points[~geoms.present] = None
        geoms = points
    return [None if g is None else shapely.to_wkt(g) for g in geoms]


def _read(path: Path, batch_bytes: int) -> Any:
    """What the connector makes of the file: its description and one tuple per record, or the
    kind of error that refused it."""
    connector = _reader(batch_bytes)(path)
    try:
        info = connector.inspect()
        rows = []
        for b in connector.read():
            n = len(b)
            observed = b.observed_at or [None] * n
            rows += zip(
                b.source_ids, b.properties, b.records, _geometries(b.geometries),
                b.errors or [None] * n, b.feature_classes or [None] * n, observed,
                [(b.crs, b.default_crs, b.axis_order)] * n, strict=False,
            )  # fmt: skip
    except DataError as e:
        return type(e).__name__
    return info, rows


def _both(doc: bytes, batch_bytes: int = 256) -> tuple[Any, Any]:
    """The document read whole and streamed (in batches of about `batch_bytes`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.json"
        path.write_bytes(doc)
        streamed = min(batch_bytes, len(doc) - 1)
        return _read(path, len(doc)), _read(path, streamed)


def _feature(i: int, lon: float = 2.15, lat: float = 41.39) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": f"font-{i}",
        "properties": {"name": f'Font "{i}" [ {{', "n": i},
        "geometry": {"type": "Point", "coordinates": [lon + i * 1e-6, lat]},
    }


def _collection(members: list[tuple[bytes, Any]], space: bytes = b"") -> bytes:
    """A top-level object of these members, in this order (names may repeat), `space` between
    every token of the top level."""
    items = [space + k + space + b":" + space + orjson.dumps(v) + space for k, v in members]
    return b"{" + b",".join(items) + b"}"


def test_600_spaces_before_the_features_array_are_whitespace_on_both_paths():
    """The issue's case: streamed, 600 spaces between `"features":` and `[` hid the array."""
    features = [_feature(i) for i in range(500)]
    doc = (
        b'{"type":"FeatureCollection","features":' + b" " * 600
        + orjson.dumps(features) + b"}"
    )  # fmt: skip
    whole, streamed = _both(doc, 4096)
    assert whole == streamed
    info, rows = whole
    assert info.count == 500 and [r[0] for r in rows] == [f["id"] for f in features]


def test_the_last_of_two_features_members_is_read_on_both_paths():
    """RFC 8259 leaves repeated names open; citypipe keeps the last, as orjson does."""
    first, last = [_feature(i) for i in range(3)], [_feature(i) for i in range(100, 400)]
    doc = _collection([(b'"type"', "FeatureCollection"), (b'"features"', first),
                       (b'"features"', last)])  # fmt: skip
    whole, streamed = _both(doc, 1024)
    assert whole == streamed
    assert [r[0] for r in whole[1]] == [f["id"] for f in last]
    # a later features member that is not an array means there is no features array
    doc = _collection([(b'"type"', "FeatureCollection"), (b'"features"', last),
                       (b'"features"', None)])  # fmt: skip
    assert _both(doc, 1024) == ("DataError", "DataError")


@pytest.mark.parametrize(
    "name",
    [b'"feat\\u0075res"', b'"\\u0066eatures"', b'"features"'],
    ids=["escaped", "first", "plain"],
)
def test_the_features_member_is_found_however_its_name_is_escaped(name):
    features = [_feature(i) for i in range(200)]
    doc = _collection([(b'"type"', "FeatureCollection"), (name, features)], b"\n\t ")
    whole, streamed = _both(doc, 512)
    assert whole == streamed and len(whole[1]) == 200


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b'}},{"type"', b'}},,{"type"'),  # a doubled comma between features
        (b'}},{"type"', b'}}{"type"'),  # a missing one
        (b"}}]}", b"}},]}"),  # a trailing comma
        (b"}}]}", b"}}}}"),  # the array closed by a brace
        (b'}},{"type"', b'}],{"type"'),  # a feature closed by a bracket
    ],
    ids=[
        "doubled comma",
        "missing comma",
        "trailing comma",
        "array closed by }",
        "object closed by ]",
    ],
)
def test_invalid_json_is_never_read_as_valid_on_either_path(good, bad):
    doc = orjson.dumps({"type": "FeatureCollection", "features": [_feature(i) for i in range(50)]})
    damaged = doc.replace(good, bad)
    assert damaged != doc
    whole, streamed = _both(damaged, 300)
    assert whole == streamed and _not_taken_as_valid(whole)


def _not_taken_as_valid(result: Any) -> bool:
    """Refused, or read with a record rejected for what is wrong with it."""
    return result == "DataError" or any(row[4] is not None for row in result[1])


def _twenty_with(fault: bytes, at: int) -> bytes:
    """A collection of 20 features with `fault` in place of what stands between feature
    `at - 1` and feature `at` (the comma; `[` before the first, `]` after the last)."""
    texts = [orjson.dumps(_feature(i)) for i in range(20)]
    before, after = b",".join(texts[:at]), b",".join(texts[at:])
    array = (b"[" if at else b"") + before + fault + after + (b"]" if at < 20 else b"")
    return b'{"type":"FeatureCollection","features":' + array + b"}"


@pytest.mark.parametrize(
    ("fault", "at"),
    [(b"[,", 0), (b",,", 10), (b"", 10), (b" ", 10), (b" 5,", 10), (b",{},5 ", 10),
     (b",]", 20)],
    ids=["leading comma", "doubled comma", "missing comma", "missing comma, a space",
         "a number without its comma", "a number without its comma, after", "trailing comma"],
)  # fmt: skip
def test_a_fault_between_features_refuses_the_document_wherever_the_batches_are_cut(fault, at):
    """Not a bad record but a bad array: refused on both paths, whether a batch ends at the
    fault or not (a record reader would otherwise read `[ ,{…}]` or `{…}{…}` as valid when a
    batch happens to begin there)."""
    doc = _twenty_with(fault, at)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(doc)
    for batch_bytes in range(16, len(doc), 23):
        assert _both(doc, batch_bytes) == ("DataError", "DataError"), batch_bytes


@pytest.mark.parametrize(
    "bad",
    [b'{"type":"Feature","id":"bad","geometry":{"type":"Point","coordinates":[NaN,41.4]}}',
     b'{"type":"Feature","id":"bad","properties":{"n":7,},"geometry":null}', b"tru"],
    ids=["NaN", "a trailing comma inside", "not a value"],
)  # fmt: skip
def test_a_bad_feature_is_the_same_reject_wherever_the_batches_are_cut(bad):
    """One element JSON cannot read is one rejected record, the same on both paths and for
    every cut: the other 20 read, the bad one kept as written with its reason."""
    doc = _twenty_with(b"," + bad + b",", 10)
    whole = _both(doc, len(doc))[0]
    info, rows = whole
    assert info.count == 20 + (bad[0] == ord("{")) and len(rows) == 21
    assert [r[2] for r in rows[:10] + rows[11:]] == [_feature(i) for i in range(20)]
    assert rows[10][2] == bad.decode() and rows[10][4]
    assert all(r[4] is None for r in rows[:10] + rows[11:])
    for batch_bytes in range(16, len(doc), 23):
        assert _both(doc, batch_bytes) == (whole, whole), batch_bytes


def test_invalid_json_in_a_features_member_that_is_not_read_is_refused_too():
    last = [_feature(i) for i in range(100)]
    doc = _collection([(b'"type"', "FeatureCollection"), (b'"features"', last),
                       (b'"features"', last)])  # fmt: skip
    bad = doc.replace(b'"n":7}', b'"n":7,}', 1)
    assert bad != doc
    assert _both(bad, 300) == ("DataError", "DataError")


@pytest.mark.parametrize("size", ["below", "above"])
def test_empty_feature_collections_are_valid_sources_with_no_records(
    tmp_path, lake, read_lake, size
):
    """An empty FeatureCollection is exit 0 with 0 features, also when foreign members make it
    larger than the streaming threshold."""
    pad = "x" * (BATCH_BYTES + 10) if size == "above" else "x"
    path = tmp_path / "empty.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "note": pad, "features": []}))
    assert (path.stat().st_size > BATCH_BYTES) == (size == "above")
    assert main(["ingest", str(path), "--source", "empty", "--lake", str(lake.root)]) == 0
    assert read_lake("empty").num_rows == 0


@pytest.mark.parametrize("batch_bytes", [BATCH_BYTES, 4096], ids=["whole", "streamed"])
def test_whitespace_longer_than_detection_looks_at_leaves_a_document_geojson(
    tmp_path, lake, read_lake, monkeypatch, batch_bytes
):
    """100 KB of JSON whitespace before the document (more than the 64 KB head detection
    reads), 600 bytes between its tokens: still GeoJSON, with all its features."""
    monkeypatch.setattr(GeoJSONConnector, "batch_bytes", batch_bytes)
    features = [_feature(i) for i in range(300)]
    doc = _collection([(b'"type"', "FeatureCollection"), (b'"features"', features)], b"\n" * 600)
    path = tmp_path / "spaced.json"
    path.write_bytes(b"\xef\xbb\xbf" + b" \r\n\t" * 25_000 + doc)
    assert main(["ingest", str(path), "--source", "spaced", "--lake", str(lake.root)]) == 0
    ids = [f["id"] for f in features]
    assert in_source_order(read_lake("spaced"), ids).column("source_id").to_pylist() == ids


def _around_threshold(features: list[dict], head: bytes, size: int) -> bytes:
    """A FeatureCollection of exactly `size` bytes: `head` members, then whitespace before the
    features array, as much as makes the size."""
    body = orjson.dumps(features) + b"}"
    start = b"{" + head + b'"features":'
    pad = size - len(start) - len(body)
    assert pad >= 600
    return start + b" " * pad + body


@pytest.mark.parametrize(
    "head",
    [
        b'"type":"FeatureCollection",',
        b'"type":"FeatureCollection","features":[{"type":"Feature"}],',
    ],
    ids=["600+ spaces", "two features members"],
)
def test_documents_just_below_and_just_above_4_mb_give_the_same_rows(
    tmp_path, lake, read_lake, head
):
    """Ingested through the real threshold: the same features, whatever side of it a file is."""
    features, size = [], 0
    while size < BATCH_BYTES - 2000:  # the features fill all but the 2000 bytes of whitespace
        features.append(_feature(len(features)))
        size += len(orjson.dumps(features[-1])) + 1
    tables = []
    for name, size in (("below", BATCH_BYTES - 1), ("above", BATCH_BYTES + 1)):
        path = tmp_path / f"{name}.geojson"
        path.write_bytes(_around_threshold(features, head, size))
        assert path.stat().st_size == size
        report = ingest(path, name, lake, validate=False)
        assert (report.records, report.features, report.rejects) == (len(features),) * 2 + (0,)
        ordered = in_source_order(read_lake(name), [f["id"] for f in features])
        tables.append(ordered.drop_columns(["feature_id", "source", "ingested_at"]))
    assert tables[0].column("source_id").to_pylist() == [f["id"] for f in features]
    assert tables[0].equals(tables[1])


# -- GeoJSON: generated documents ---------------------------------------------------------

_SPACE = st.sampled_from([b"", b" ", b"\n", b"\t", b"\r\n", b" " * 600, b"\n  " * 40])
_TEXT = st.text(alphabet=st.sampled_from('ab "\\[]{},:é€😀\n\t'), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | _TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_POINT = st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(
    lambda p: {"type": "Point", "coordinates": list(p)}
)
_LINE = st.lists(st.tuples(st.floats(-180, 180), st.floats(-90, 90)), min_size=2, max_size=4).map(
    lambda ps: {"type": "LineString", "coordinates": [list(p) for p in ps]}
)


@st.composite
def _features(draw: st.DrawFn) -> dict[str, Any]:
    """A Feature with its members in any order, foreign members among them."""
    members = {
        "type": "Feature",
        "properties": draw(st.dictionaries(_TEXT, _VALUES, max_size=4)),
        "geometry": draw(st.none() | _POINT | _LINE),
    }
    if draw(st.booleans()):
        members["id"] = draw(st.integers(0, 10**6) | _TEXT)
    if draw(st.booleans()):
        members["features"] = draw(_VALUES)  # a foreign member of the feature named so
    order = draw(st.permutations(list(members)))
    return {k: members[k] for k in order}


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    """A FeatureCollection with its members in any order, foreign members (some holding arrays,
    some named `features` deeper down, some whose text looks like a features member), now and
    then a second `features` member, and any JSON whitespace between its tokens."""
    features = draw(st.lists(_features(), max_size=12))
    members: list[tuple[bytes, Any]] = [(b'"type"', "FeatureCollection"), (b'"features"', features)]
    members += draw(st.lists(st.sampled_from([
        (b'"name"', "fountains"),
        (b'"bbox"', [2.0, 41.0, 2.3, 41.5]),
        (b'"links"', [{"rel": "self", "href": "https://example.org/items?f=json"}]),
        (b'"meta"', {"features": [1, [2], {"features": []}]}),
        (b'"note"', '"features": [ {"type": "Feature"} ]'),
        (b'"numberReturned"', len(features)),
        (b'"features"', [{"type": "Feature", "properties": {}, "geometry": None}]),
        (b'"crs"', {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}),
    ]), max_size=4))  # fmt: skip
    members = draw(st.permutations(members))
    space = cycle(draw(st.lists(_SPACE, min_size=1, max_size=8)))
    items = [
        next(space) + k + next(space) + b":" + next(space) + _dump(v, space) + next(space)
        for k, v in members
    ]
    return next(space) + b"{" + b",".join(items) + b"}" + next(space)


def _dump(value: Any, space: Iterator[bytes]) -> bytes:
    """`value` as JSON with the next whitespace of `space` before every member and element."""
    if isinstance(value, dict):
        return b"{" + b",".join(
            next(space) + orjson.dumps(k) + b":" + next(space) + _dump(v, space)
            for k, v in value.items()
        ) + b"}"  # fmt: skip
    if isinstance(value, list):
        return b"[" + b",".join(next(space) + _dump(v, space) for v in value) + b"]"
    return orjson.dumps(value)


_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(doc=_documents(), batch_bytes=st.sampled_from([16, 64, 300]))
@example(doc=b'{"features":[],"type":"FeatureCollection"}', batch_bytes=16)
def test_generated_documents_give_the_same_records_on_both_paths(doc, batch_bytes):
    whole, streamed = _both(doc, batch_bytes)
    assert whole == streamed
    # the features are those of the document's last features member (orjson's rule too)
    expected = orjson.loads(doc)["features"]
    if isinstance(whole, tuple):
        assert [r[2] for r in whole[1]] == expected
    else:
        assert not isinstance(expected, list)


@_SETTINGS
@example(  # "é" cut to its lead byte: the document is then in a code page, and read so
    doc='{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
    '"geometry":{"type":"Point","coordinates":[0.0,0.0]},"id":"é"}]}'.encode(),
    batch_bytes=16,
    fault=(0.975, b""),
)
@given(
    doc=_documents(),
    batch_bytes=st.sampled_from([16, 64, 300]),
    fault=st.tuples(
        st.floats(0, 1), st.sampled_from([b"", b",", b"]", b"}", b"[", b"{", b'"', b":", b" "])
    ),
)
def test_damaged_documents_are_accepted_or_refused_alike_on_both_paths(doc, batch_bytes, fault):
    """A byte taken out, or one of JSON's structural bytes put in, anywhere."""
    at = int(fault[0] * (len(doc) - 1))
    damaged = doc[:at] + fault[1] + doc[at + (not fault[1]) :]
    whole, streamed = _both(damaged, batch_bytes)
    assert whole == streamed
    if not _valid(damaged):
        assert _not_taken_as_valid(whole)


def _valid(document: bytes) -> bool:
    """Whether `document` is a JSON object: in UTF-8, or, where a byte taken out of a UTF-8
    sequence leaves bytes UTF-8 cannot hold, in a code page (a file in one is read, README)."""
    try:
        return isinstance(orjson.loads(document), dict)
    except orjson.JSONDecodeError as e:
        if "UTF-8" not in e.msg:
            return False
    try:
        return isinstance(orjson.loads(document.decode("latin-1")), dict)
    except orjson.JSONDecodeError:
        return False


# -- CSV: the encoding of the whole file ---------------------------------------------------

_ROWS = 100_000
_MIB = 1 << 20


def _table(name: str) -> bytes:
    """100,000 rows of fountains in UTF-8 (`name` of each row: "<name> <i>"), about 3.5 MB."""
    rows = "".join(f"{i};{name} {i};{2.1 + i * 1e-7:.7f};41.38\n" for i in range(_ROWS))
    return ("id;name;lon;lat\n" + rows).encode()


def _with_row(data: bytes, row: bytes, where: str) -> bytes:
    """`data` with `row` put in as a record of its own: within the first MiB, just after it,
    after two MiB, or as the very last line (without a line end)."""
    if where == "end":
        return data + row
    at = data.index(b"\n", {"head": 1000, "after 1 MiB": _MIB, "after 2 MiB": 2 * _MIB}[where]) + 1
    return data[:at] + row + b"\n" + data[at:]


def _read_csv(path: Path) -> tuple[str, list[tuple[str, Any, str | None]]]:
    """The encoding the file is read in, and (record, name, error) of every record."""
    connector = CSVConnector(path)
    out = []
    for b in connector.read():
        names = [p.get("name") for p in b.properties]
        out += zip(b.records, names, b.errors or [None] * len(b), strict=False)
    return connector._dialect[0].codec, out


_WHERE = ["head", "after 1 MiB", "after 2 MiB", "end"]


@pytest.mark.parametrize(
    ("base", "row", "codec", "name", "error"),
    [
        # one Latin-1 byte in ASCII text: a Latin-1 (Windows-1252) file, every record read
        ("Font", b"x;Caf\xe9 Mitte;2.17;41.38", "cp1252", "Café Mitte", None),
        # the same byte in UTF-8 text: that record rejected, the rest read as UTF-8
        ("Plaça", b"x;Caf\xe9 Mitte;2.17;41.38", "utf-8", None,
         "not UTF-8 as the rest of the file is: 0xE9 in column 'name'"),
        # a NUL byte: not text, that record rejected
        ("Font", b"x;Caf\x00 Mitte;2.17;41.38", "utf-8", None,
         "a NUL byte, which is not text, in column 'name'"),
    ],
    ids=["latin-1 byte in ASCII", "latin-1 byte in UTF-8", "NUL byte"],
)  # fmt: skip
def test_one_byte_gives_the_same_result_wherever_it_falls(tmp_path, base, row, codec, name, error):
    """The issue's case: one Latin-1 byte after the first MiB refused 100,001 valid rows that
    the same byte within the first MiB let through; a NUL byte likewise."""
    data = _table(base)
    results = []
    for where in _WHERE:
        path = tmp_path / "table.csv"
        path.write_bytes(_with_row(data, row, where))
        found, records = _read_csv(path)
        assert found == codec and len(records) == _ROWS + 1
        [odd] = [r for r in records if r[0].startswith("x;")]
        assert odd[1:] == (name, error)
        assert sum(e is None for _, _, e in records) == _ROWS + (error is None)
        results.append(sorted(records, key=lambda r: r[0]))
    assert all(r == results[0] for r in results)
    if base == "Plaça":  # the other rows' own UTF-8 text intact
        assert results[0][0][1] == "Plaça 0"


_LINES = st.sampled_from([
    "Font de Canaletes;2.1700;41.3851",
    "Plaça de Catalunya;2.1700;41.3870",
    "Straße am Münster;9.1829;48.7758",
    "Café Zürich;8.5417;47.3769",
]).flatmap(lambda text: st.sampled_from([
    text.encode(), text.encode("cp1252"), text.encode().replace(b";", b"\x00;", 1),
]))  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINES, min_size=1, max_size=12), data=st.data())
def test_a_files_encoding_depends_on_its_lines_not_on_where_they_are(lines, data):
    """Lines of UTF-8, Windows-1252 and with NUL bytes, in any order, with 2 MiB of ASCII
    lines put in anywhere among them: the same decision."""

    def decide(ordered: list[bytes], at: int) -> TextEncoding | None:
        body = [b"name;lon;lat", *ordered[:at], _PADDING, *ordered[at:]]
        return file_encoding(io.BytesIO(b"\n".join(body)))

    first = decide(lines, 0)
    moved = data.draw(st.permutations(lines))
    assert decide(moved, data.draw(st.integers(0, len(lines)))) == first
    utf8 = sum(not line.isascii() and _is_utf8(line) for line in lines)
    other = sum(not _is_utf8(line) for line in lines)
    assert first is not None and first.nul == any(b"\x00" in line for line in lines)
    assert (first.codec == "utf-8") == (utf8 >= other)


_PADDING = b"\n".join(b"Font %d;2.1;41.3" % i for i in range(120_000))


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_the_issue_file_ingests_through_the_cli(tmp_path, lake, read_lake):
    path = tmp_path / "late.csv"
    path.write_bytes(_with_row(_table("Font"), b"x;Caf\xe9 Mitte;2.17;41.38", "after 2 MiB"))
    assert main(["ingest", str(path), "--source", "late", "--lake", str(lake.root)]) == 0
    names = [json.loads(p)["name"] for p in read_lake("late").column("properties").to_pylist()]
    assert len(names) == _ROWS + 1 and "Café Mitte" in names


@pytest.mark.parametrize(
    "content",
    [b"id;name;lon;lat\n", b"id;name;lon;lat", b"\xef\xbb\xbfSTANDORT,ANZAHL,GEOM\r\n",
     b"Name;L\xe4ngengrad;Breitengrad\n"],
    ids=["header", "without line end", "BOM and CRLF", "latin-1"],
)  # fmt: skip
def test_a_header_alone_is_a_source_without_records(tmp_path, lake, read_lake, capsys, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    assert main(["ingest", str(path), "--source", "empty", "--lake", str(lake.root)]) == 0
    assert read_lake("empty").num_rows == 0
    capsys.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["format"], info["features"]) == ("CSV", 0)


@pytest.mark.parametrize("content", [b"12;34\n", b"name;name\n", b"Hello\n"])
def test_a_record_alone_that_names_no_columns_is_not_a_table(tmp_path, lake, content):
    path = tmp_path / "one.csv"
    path.write_bytes(content)
    assert main(["ingest", str(path), "--source", "one", "--lake", str(lake.root)]) == 2


# -- truncated files through the command line --------------------------------------------


def _cuts(data: bytes) -> list[int]:
    """Offsets to cut at: the start, inside a BOM, early, mid-way, inside a character of two
    or more bytes, one byte short of the end."""
    half = len(data) // 2
    multibyte = next((i + 1 for i in range(half, len(data)) if data[i] >= 0xC0), half)
    return sorted({0, 2, 40, half, multibyte, len(data) - 1})


@pytest.mark.parametrize(
    ("name", "crs", "batch_bytes"),
    [
        ("barcelona_drinking_fountains.geojson", None, BATCH_BYTES),
        ("barcelona_drinking_fountains.geojson", None, 64 * 1024),  # streamed
        ("bietigheim-bissingen_parking_realtime_latin1.csv", None, BATCH_BYTES),
        ("reutlingen_bike_parking_utm32_wkt.csv", "EPSG:25832", BATCH_BYTES),
    ],
    ids=["geojson", "geojson streamed", "csv latin-1", "csv utf-8 bom"],
)
def test_truncations_exit_0_or_2_and_keep_the_previous_output(
    sample, tmp_path, lake, capsys, monkeypatch, name, crs, batch_bytes
):
    monkeypatch.setattr(GeoJSONConnector, "batch_bytes", batch_bytes)
    full = sample(name)
    args = ["--source", "s", "--lake", str(lake.root), *(["--crs", crs] if crs else [])]
    assert main(["ingest", str(full), *args]) == 0
    data = full.read_bytes()
    for cut in _cuts(data):
        path = tmp_path / f"cut{full.suffix}"
        path.write_bytes(data[:cut])
        before = {k: p.read_bytes() for k, p in _landed(lake).items()}
        capsys.readouterr()
        code = main(["ingest", str(path), *args])
        err = capsys.readouterr().err
        assert code in (0, 2), (cut, err)
        assert "Traceback" not in err and "internal error" not in err
        if code == 2:
            assert str(path) in err
            assert {k: p.read_bytes() for k, p in _landed(lake).items()} == before


def _landed(lake) -> dict[str, Path]:
    return {k: lake.partition(k, "s") / "part-0.parquet" for k in ("features", "rejects")}
