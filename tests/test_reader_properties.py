"""Property tests over the readers, through `ingest()`: whatever the records hold, the run ends
in a report or a CitypipeError (never another exception), features + rejects = records in the
file, and every geometry kept is finite and within longitude/latitude.

GeoJSON features get random geometries (right and wrong types, coordinates of numbers, NaN,
Infinity, 1e309, strings, booleans, null, objects) and random properties (nested, sometimes
deeper than orjson writes); CSV rows get random cells in a WKT or a lon/lat column pair. The
scanner that cuts large GeoJSON files is checked against a one-character-at-a-time reading of
random JSON, cut into windows anywhere.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors.json_structure import Strings, structure
from citypipe.core.ingest import ingest
from citypipe.geo.errors import CitypipeError

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_BIG = "@1e309@"
"""Stands for the literal 1e309 (a float Python cannot hold) until the text is written."""

plausible = st.floats(-200, 200, allow_nan=False)
number = st.one_of(
    plausible, plausible, st.integers(-400, 400), st.floats(), st.just(_BIG), st.just(1e300)
)
garbage = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=2), plausible, max_size=2),
)
value = st.one_of(number, number, number, garbage)
position = st.one_of(st.lists(value, min_size=2, max_size=3), st.lists(value, max_size=4), garbage)
ring = st.lists(position, max_size=6).map(lambda r: r + r[:1])  # closed, if it has a first


def _geometry(kind: str, coordinates) -> dict:
    return {"type": kind, "coordinates": coordinates}


simple = st.one_of(
    st.builds(_geometry, st.just("Point"), position),
    st.builds(_geometry, st.just("LineString"), st.lists(position, max_size=4)),
    st.builds(_geometry, st.just("MultiPoint"), st.lists(position, max_size=4)),
    st.builds(_geometry, st.just("Polygon"), st.lists(ring, max_size=2)),
    st.builds(_geometry, st.sampled_from(["Triangle", "point", ""]), position),
)
geometry = st.one_of(
    simple,
    simple,
    st.none(),
    garbage,
    st.builds(
        lambda gs: {"type": "GeometryCollection", "geometries": gs}, st.lists(simple, max_size=3)
    ),
)
json_value = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.floats(), st.integers(-(2**70), 2**70), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
deep = st.integers(240, 300).map(lambda n: json.loads("[" * n + "0" + "]" * n))
properties = st.one_of(
    st.dictionaries(st.text(max_size=6), st.one_of(json_value, json_value, deep), max_size=4),
    json_value,
)
feature = st.fixed_dictionaries(
    {"type": st.just("Feature"), "geometry": geometry, "properties": properties},
    optional={"id": st.one_of(st.sampled_from(["#1", "#2", "a", ""]), st.integers(0, 3))},
)
element = st.one_of(feature, feature, feature, feature, json_value)


def _lonlat(read_lake, source: str) -> np.ndarray:
    table = read_lake(source)
    xy = [
        shapely.get_coordinates(shapely.from_wkb(table.column(c).to_numpy(zero_copy_only=False)))
        for c in ("geometry", "geometry_3d")
    ]
    return np.concatenate(xy)


def _holds(path, lake, read_lake, records: int, **options) -> None:
    try:
        report = ingest(path, "p", lake, validate=False, **options)
    except CitypipeError as e:
        assert "\n" not in str(e)
        return
    assert report.records == records
    assert report.features + report.rejects == records
    assert read_lake("p").num_rows == report.features
    xy = _lonlat(read_lake, "p")
    assert np.isfinite(xy).all() and (np.abs(xy) <= [180, 90]).all()


@_SETTINGS
@given(elements=st.lists(element, min_size=1, max_size=8))
def test_geojson_records_are_kept_or_rejected_never_garbage(tmp_path, lake, read_lake, elements):
    text = json.dumps({"type": "FeatureCollection", "features": elements}, allow_nan=True)
    path = tmp_path / "random.geojson"
    path.write_text(text.replace(json.dumps(_BIG), "1e309"), encoding="utf-8")
    _holds(path, lake, read_lake, len(elements))


wkt_number = st.one_of(
    plausible.map(str), st.sampled_from(["nan", "inf", "-inf", "1e309", "1e300", "NaN", "x", ""])
)
wkt = st.one_of(
    st.builds("POINT ({} {})".format, wkt_number, wkt_number),
    st.builds("LINESTRING ({} {})".format, wkt_number, wkt_number),
    st.builds(
        "POLYGON (({0} {1}, {2} {1}, {2} {0}, {0} {1}))".format, wkt_number, wkt_number, wkt_number
    ),
    st.text(max_size=12),
)
cell = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=8), wkt_number
)


@_SETTINGS
@given(
    rows=st.lists(st.tuples(cell, wkt, wkt_number, wkt_number), min_size=1, max_size=12),
    columns=st.sampled_from([("name", "wkt"), ("name", "lon", "lat")]),
)
def test_csv_rows_are_kept_or_rejected_never_garbage(tmp_path, lake, read_lake, rows, columns):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")  # lines end in \r\n: a cell with \r or \n is quoted
    writer.writerow(columns)
    for name, geometry, lon, lat in rows:
        writer.writerow([name, geometry] if len(columns) == 2 else [name, lon, lat])
    path = tmp_path / "random.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    _holds(path, lake, read_lake, len(rows), crs="OGC:CRS84" if "wkt" in columns else None)


def _brackets_outside_strings(text: str) -> list[int]:
    """Where the brackets outside strings are, read one character at a time."""
    found, inside, escaped = [], False, False
    for i, c in enumerate(text):
        if inside:
            inside, escaped = (True, False) if escaped else (c != '"', c == "\\")
        elif c == '"':
            inside = True
        elif c in "{}[]":
            found.append(i)
    return found


@settings(max_examples=300, deadline=None)
@given(
    strings=st.lists(st.text(alphabet='ab\\"{}[] ', max_size=12), min_size=1, max_size=8),
    data=st.data(),
)
def test_the_scanner_finds_brackets_whatever_the_windows(strings, data):
    text = json.dumps([{s: [s, {"k": s}]} for s in strings])
    raw = np.frombuffer(text.encode(), np.uint8)
    window = data.draw(st.integers(1, len(raw)))
    state, found = Strings(), []
    for start in range(0, len(raw), window):
        at, _ = structure(raw[start : start + window], state)
        found += (at + start).tolist()
    assert found == _brackets_outside_strings(text)
