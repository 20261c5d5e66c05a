"""The lift (connectors/cityjson_lift.pyx) takes out of a document's bytes only what orjson would
parse the same way, and gives it back whole.

For every corpus and sample document and for random ones (random boundaries nested anyhow,
odd values among them, vertices of any numbers, members named `boundaries`, `geometry` and
`vertices` where they are not CityJSON's, any blanks): the document orjson parses from the
lifted bytes, with each placeholder replaced by the text the lift keeps and the vertices by
their array, is the document orjson parses from the original, and the flat arrays hold each
lifted value's lists. What the walk makes of the lifted arrays is tests/test_cityjson_walk.py's.
"""

from __future__ import annotations

import json
import math
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from conftest import CORPUS, ROOT, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import cityjson_values

lifting = cityjson_values.lifting
needs_lift = pytest.mark.skipif(lifting is None, reason="the lift is not compiled")

DOCUMENTS = sorted(
    [*(CORPUS / "cityjson").glob("*.city.json"), *(SAMPLES / "cityjson").glob("*.json")]
)


def test_the_lift_is_built_where_a_compiler_is() -> None:
    """CI must not parse every document whole without saying so."""
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler: orjson parses every document whole")
    assert lifting is not None
    source = ROOT / "connectors" / "cityjson_lift.pyx"
    assert source.stat().st_mtime <= Path(lifting.__file__).stat().st_mtime, (
        "cityjson_lift.pyx changed since it was built: run `make setup`"
    )


def _nested(levels: list[list[int]], idx: list[int]) -> Any:
    """The lists a lifted value's flat arrays describe, read from their fronts."""
    n = levels[0].pop(0)
    if len(levels) == 1:
        return [idx.pop(0) for _ in range(n)]
    return [_nested(levels[1:], idx) for _ in range(n)]


def _restored(data: bytes) -> tuple[Any, int]:
    """The document orjson parses from the lifted bytes, its placeholders and vertices put
    back, each lifted value checked against its flat arrays; how many values were lifted."""
    lifted = lifting.lift(data)
    if lifted is None:
        return orjson.loads(data), 0
    slim, xyz, boundaries, _ = lifted
    document = orjson.loads(slim)
    if xyz is not None:
        raw = document["vertices"]
        assert raw == "\x00vertices"
        document["vertices"] = xyz
    seen = 0
    for obj in (document.get("CityObjects") or {}).values():
        geometries = obj.get("geometry") if isinstance(obj, dict) else None
        for g in geometries if isinstance(geometries, list) else ():
            if isinstance(g, dict) and boundaries is not None:
                _put_back(g, boundaries.passed, boundaries.data)
            b = g.get("boundaries") if isinstance(g, dict) else None
            if isinstance(b, str) and b.startswith("\x00"):
                k = int(b[1:])
                depth, *starts, start, end, _ = boundaries.where[k].tolist()
                g["boundaries"] = orjson.loads(boundaries.data[start:end])
                levels = [
                    a[s:].tolist() for a, s in zip(boundaries.levels, starts[:5], strict=True)
                ]
                idx = boundaries.idx[starts[5] :].tolist()
                assert _nested(levels[:depth], idx) == g["boundaries"]
                seen += 1
    assert seen == (0 if boundaries is None else len(boundaries.where))
    return document, seen


def _put_back(g: dict[str, Any], passed: Any, data: bytes) -> None:
    """A geometry's lifted semantics, material and texture put back, each text checked to be
    what orjson writes of the value it holds, a semantics' arrays against its values and
    surfaces."""
    for name in ("semantics", "material", "texture"):
        placeholder = g.get(name)
        if not (isinstance(placeholder, str) and placeholder.startswith("\x00")):
            continue
        k = int(placeholder[2:])
        kind = "s" if name == "semantics" else "p"
        assert placeholder[1] == kind
        row = passed.semantics[k].tolist() if kind == "s" else passed.texts[k].tolist()
        text = data[row[0] : row[1]]
        g[name] = value = orjson.loads(text)
        assert orjson.dumps(value) == text
        assert row[-1] == _longest(value)
        if kind == "s":
            _check_semantics(passed, row, value)
            members = passed.members[row[8] : row[8] + row[9]].tolist()
            assert {
                data[key:key_end].decode(): orjson.loads(data[at:end])
                for key, key_end, at, end in members
            } == value


def _longest(value: Any) -> int:
    """The bytes of the longest string value in `value`, as orjson writes it (0: none)."""
    if isinstance(value, str):
        return len(orjson.dumps(value)) - 2
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max(map(_longest, inner), default=0)


def _check_semantics(passed: Any, row: list[int], semantics: dict[str, Any]) -> None:
    """The lift's row of a semantics (its columns in connectors/cityjson_boundaries.pxi)
    against the semantics it lifted."""
    depth, at, count, codes_at, typed, rich = row[2:8]
    values, surfaces = semantics.get("values"), semantics.get("surfaces")
    if depth > 0:
        flat = values if depth == 1 else values[0]
        assert [-1 if v is None else v for v in flat] == passed.values[at : at + count].tolist()
    elif depth == 0:
        assert "values" not in semantics
    if typed >= 0:
        codes = passed.codes[codes_at : codes_at + typed].tolist()
        assert [passed.names[c] for c in codes] == [s["type"] for s in surfaces]
    assert bool(rich) == (
        type(surfaces) is list and any(type(s) is dict and len(s) > 1 for s in surfaces)
    )


def _same(data: bytes) -> int:
    """Check the lift of `data` against orjson's parse of it; how many values it lifted."""
    expected = orjson.loads(data)
    got, lifted = _restored(data)
    if isinstance(got.get("vertices"), np.ndarray):
        fast = got.pop("vertices")
        slow = cityjson_values.vertices(expected.pop("vertices")).xyz
        assert fast.dtype == np.float64 and fast.tobytes() == slow.tobytes()
    assert got == expected
    return lifted


@needs_lift
@pytest.mark.corpus
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_document_is_lifted_whole(path: Path) -> None:
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    geometries = sum(
        len(o.get("geometry") or []) for o in orjson.loads(data)["CityObjects"].values()
    )
    assert _same(data) == geometries  # every geometry of the corpus is lists of integers


_INDEX = st.integers(-5, 40) | st.integers(-(2**63), 2**63 - 1)
_ODD = st.sampled_from([1.5, None, True, "0", 2**63, 2**64, {}, -0.0])


def _rarely(odd: st.SearchStrategy[Any], common: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`common`, and one time in ten `odd`."""
    return st.integers(0, 9).flatmap(lambda k: odd if k == 0 else common)


def _boundaries(depth: int) -> st.SearchStrategy[Any]:
    out: st.SearchStrategy[Any] = st.lists(_rarely(_ODD, _INDEX), max_size=4)
    for _ in range(depth - 1):
        out = st.lists(_rarely(_ODD | st.just([]), out), max_size=3)
    return out


_VALUES = st.lists(_rarely(_ODD, st.integers(0, 4) | st.none()), max_size=4)
_SURFACE = st.fixed_dictionaries(
    {"type": _rarely(_ODD, st.sampled_from(["RoofSurface", 'Wall"Surface', "Wall/Surface"]))},
    optional={"Slope": st.sampled_from([30, 12.5, 0.1, 1e-05, 90.0, 0.30]), "lod": st.just(2)},
)
_SEMANTICS = st.fixed_dictionaries(
    {},
    optional={
        "values": _rarely(_ODD, _VALUES | st.lists(_VALUES, max_size=3)),
        "surfaces": _rarely(_ODD, st.lists(_rarely(_ODD, _SURFACE), max_size=4)),
        "lod": st.just(2),
    },
)
_GEOMETRY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Solid", "MultiSurface", "GeometryInstance", "MultiSolid"]),
        "boundaries": _rarely(_ODD, st.integers(1, 6).flatmap(_boundaries)),
    },
    optional={
        "lod": st.sampled_from(["2", 1]),
        "semantics": _rarely(_ODD, _SEMANTICS),
        "material": _rarely(_ODD, st.just({"visual": {"values": [[0, 1, None]]}})),
        "texture": st.just({"x": {"values": [[[0, 10, 11]]]}}),
    },
)
_NAMED = st.dictionaries(
    st.sampled_from(["boundaries", "geometry", "vertices", "CityObjects", "name"]),
    st.just([[[0, 1, 2]]]) | st.just([{"boundaries": [[[0]]]}]) | _ODD,
)
_OBJECT = st.fixed_dictionaries(
    {
        "type": st.just("Building"),
        "geometry": _rarely(_ODD, st.lists(_rarely(_ODD, _GEOMETRY), max_size=3)),
    },
    optional={"attributes": _NAMED, "children": st.just(["x"])},
)
_NUMBER = (
    st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(-1e9, 1e9)
    | st.sampled_from([-0.0, 5e-324, 1e-400, 1.7976931348623157e308])
)
_VERTEX = st.lists(_NUMBER, min_size=3, max_size=3) | st.lists(_NUMBER, max_size=4) | _ODD


@needs_lift
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=3), _OBJECT, min_size=1, max_size=4),
    st.lists(_VERTEX, max_size=6) | _ODD,
    _NAMED,
    st.sampled_from([None, 0, 2]),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")]),
)
def test_random_documents_are_lifted_as_orjson_parses_them(
    objects: dict[str, Any], vertices: Any, extra: dict[str, Any], indent: int | None, seps: Any
) -> None:
    """Boundaries, vertices and members so named anywhere, written with any blanks."""
    document = {"type": "CityJSON", **extra, "CityObjects": objects, "vertices": vertices}
    text = json.dumps(document, indent=indent, separators=seps)
    _same(text.encode())


@needs_lift
@pytest.mark.parametrize(
    "text",
    [
        '{"vertices": [[1, 2, 3]], "vertices": [[4, 5, 6]]}',  # orjson keeps the last
        '{"vert\\u0069ces": [[1, 2, 3]]}',  # a key written with an escape
        '{"CityObjects": {"a": {"geometry": [{"boundaries": [[[0]]]}]}}, "x": "\\u0000"}',
        "[[1, 2, 3]]",
    ],
)
def test_what_the_lift_cannot_tell_is_left_whole(text: str) -> None:
    assert lifting.lift(text.encode()) is None


@needs_lift
@pytest.mark.parametrize(
    ("number", "lifted"),
    [
        ("-0", True),
        ("-0.0", True),
        ("1e-400", True),
        ("1.7976931348623157e308", True),
        ("9223372036854775807", True),
        ("-9223372036854775808", True),
        ("9223372036854775808", False),  # beyond int64: Python's conversion reads it
        ("1e309", False),  # beyond a double: orjson refuses it
        ("01", False),
        ("1.", False),
        ("0.1000000000000000055511151231257827021181583404541015625", True),
        ("1." + "0" * 80 + "1e-3", True),  # longer than any buffer a number might be copied to
    ],
)
def test_vertex_numbers(number: str, lifted: bool) -> None:
    data = f'{{"vertices": [[{number}, 0, 0]], "CityObjects": {{}}}}'.encode()
    out = lifting.lift(data)
    assert (out is not None) == lifted
    if out is not None:
        x = out[1][0, 0]
        expected = float(int(number)) if number.lstrip("-").isdigit() else float(number)
        assert x == expected and math.copysign(1, x) == math.copysign(1, expected)


@needs_lift
@pytest.mark.parametrize(
    "text",
    [
        b'{"vertices": [[1, 2, 3]], "CityObjects": {}} trailing',
        b'{"CityObjects": {"a": {"geometry": [{"boundaries": [[[0, 1, 2]]]}]}}, "x": [1, }',
        b'{"vertices": [[1, 2, 3]], "CityObjects": {"a": {"geometry": [{"boundaries": [[[0',
        b'{"vertices": [[1, 2, 3]], "a": NaN, "CityObjects": {}}',
    ],
)
def test_a_document_orjson_refuses_is_said_as_it_is(text: bytes) -> None:
    """Where the rest does not parse, the whole document is parsed again: the same message,
    at the same byte, or Python's parser's value as before."""
    try:
        expected: Any = cityjson_values.loads(text)
    except orjson.JSONDecodeError as e:
        expected = (e.msg, e.pos)
    try:
        document, lenient, lifted = cityjson_values.loads_document(text)
        got: Any = (document, lenient)
        assert lifted is None
    except orjson.JSONDecodeError as e:
        got = (e.msg, e.pos)
    assert str(got) == str(expected)


def _unread(data: bytes) -> dict[str, Any]:
    """The top-level members of `data` the lift left out of the parse (null in its document)."""
    lifted = lifting.lift(data, cityjson_values.READ)
    document = orjson.loads(lifted[0] if lifted is not None else data)
    expected = orjson.loads(data)
    assert document.keys() == expected.keys()
    out = {}
    for key, value in expected.items():
        if key.encode() in cityjson_values.READ:
            if key not in ("vertices", "CityObjects"):  # as `_same` checks those
                assert document[key] == value
        elif document[key] is None:
            out[key] = value
        else:
            assert document[key] == value
    return out


@needs_lift
@pytest.mark.corpus
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_the_members_never_read_are_left_out(path: Path) -> None:
    """Every member of a corpus document the reader does not read is checked and left out:
    Den Haag's appearance (its materials, a third of the document) among them."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    members = orjson.loads(data).keys()
    assert set(_unread(data)) == {k for k in members if k.encode() not in cityjson_values.READ}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@needs_lift
@settings(max_examples=400, deadline=None)
@given(_JSON, st.booleans(), st.sampled_from([None, 1]), st.integers(0, 60), st.binary(max_size=2))
def test_a_member_never_read_is_left_out_only_where_orjson_reads_it(
    value: Any, ascii_only: bool, indent: int | None, at: int, cut: bytes
) -> None:
    """Any value, written with any blanks, some with a byte or two taken out or put in: left
    out only where orjson parses the document; left out where the value is ASCII JSON with
    finite numbers and no \\u escape."""
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    if cut:
        text = text[:at] + cut[1:] + text[at + 1 :]
    data = b'{"type": "CityJSON", "appearance": ' + text + b', "version": "2.0"}'
    try:
        expected = orjson.loads(data)
    except orjson.JSONDecodeError:
        expected = None
    lifted = lifting.lift(data, cityjson_values.READ)
    if lifted is None:
        assert not _plain(text) or expected is None
        return
    try:
        document = orjson.loads(lifted[0])
    except orjson.JSONDecodeError:  # broken after the value: the whole is parsed again
        assert expected is None
        return
    assert expected is not None and document == {**expected, "appearance": None}


def _plain(text: bytes) -> bool:
    """Whether `text` is JSON the lift's check reads: ASCII, finite numbers (integers within
    int64), no \\u escape."""
    try:
        orjson.loads(text)
        json.loads(text, parse_int=_int64, parse_constant=_refuse)
    except (orjson.JSONDecodeError, ValueError):
        return False
    return text.isascii() and b"\\u" not in text


def _int64(digits: str) -> int:
    if not -(2**63) <= (value := int(digits)) < 2**63:
        raise ValueError(digits)
    return value


def _refuse(name: str) -> None:
    raise ValueError(name)


def _lifted_texts(data: bytes) -> list[bytes]:
    """The texts of the materials the lift took out of `data`."""
    lifted = lifting.lift(data)
    if lifted is None or lifted[2] is None:
        return []
    passed = lifted[2].passed
    return [lifted[2].data[start:end] for start, end, _ in passed.texts.tolist()]


def _as_orjson_writes(value: Any) -> bool:
    """Whether orjson writes `value` as the lift takes it: no floats (`test_numbers_...`),
    integers within int64, strings of ASCII that orjson writes without a \\u escape."""
    if isinstance(value, dict):
        return all(map(_as_orjson_writes, value)) and all(map(_as_orjson_writes, value.values()))
    if isinstance(value, list):
        return all(map(_as_orjson_writes, value))
    if isinstance(value, str):
        return value.isascii() and all(c >= " " or c in "\b\f\n\r\t" for c in value)
    return type(value) is not float and (type(value) is not int or -(2**63) <= value < 2**63)


@needs_lift
@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_a_material_is_lifted_only_as_orjson_writes_it(
    value: Any, seps: Any, ascii_only: bool
) -> None:
    """A geometry's material, any value written anyhow, is taken out where its text is what
    orjson writes of it, and only there (its record and properties are that text)."""
    text = json.dumps({"m": value}, separators=seps, ensure_ascii=ascii_only).encode()
    data = b'{"CityObjects":{"a":{"geometry":[{"type":"Solid","material":%s}]}}}' % text
    texts = _lifted_texts(data)
    if texts:
        assert texts == [text] and orjson.dumps(orjson.loads(text)) == text
        _same(data)
    elif _as_orjson_writes(value) and text == orjson.dumps({"m": value}):
        raise AssertionError(f"{text!r} is left to orjson")


def _significant(text: str) -> int:
    """How many significant digits a decimal's text has (the 0 of "x.0" not counted)."""
    digits = text.lstrip("-").removesuffix(".0").replace(".", "").lstrip("0")
    return len(digits)


@needs_lift
@settings(max_examples=500, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: orjson.dumps(x).decode())
    | st.floats(-1e6, 1e6).map(lambda x: f"{x:.{abs(hash(x)) % 8}f}")
    | st.from_regex(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?(e-?[0-9])?", fullmatch=True)
)
def test_a_number_is_lifted_only_as_orjson_writes_it(number: str) -> None:
    """A number in a material: taken out only where orjson writes its value as its text;
    always where that text has no exponent, at most 15 significant digits (any such decimal
    is the shortest text of its double) and a value between 1e-4 and 1e16, or is an integer
    within int64."""
    data = b'{"CityObjects":{"a":{"geometry":[{"material":{"x":%s}}]}}}' % number.encode()
    texts = _lifted_texts(data)
    written = orjson.dumps(orjson.loads(number)).decode()
    if texts:
        assert written == number
    elif written == number and "e" not in number:
        value = orjson.loads(number)
        assert (
            number == "-0"
            or (type(value) is int and not -(2**63) <= value < 2**63)
            or (type(value) is float and not (value == 0 or 1e-4 <= abs(value) < 1e16))
            or _significant(number) > 15
        ), f"{number} is left to orjson"
