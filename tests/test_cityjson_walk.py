"""The compiled CityJSON walk (connectors/cityjson_walk.pyx) reads what the Python walk reads.

Both walks read every corpus and sample CityJSON file, in one batch and in batches of three
objects, and documents and streams broken in the ways CityJSON files are (values that are no
index, lists nested too deep or too shallow, geometries that are no objects, semantics that do
not fit, templates, appearances, parents); every record, reason, property, geometry, semantic
surface and face array must be the same, and only the objects outside the compiled subset may
reach the Python walk. Hypothesis puts odd values anywhere in an object and random nested
lists through `flatten`.
"""

from __future__ import annotations

import copy
import json
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
from conftest import CORPUS, ROOT, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors import cityjson, cityjson_values
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.connectors.cityjson_objects import Batch
from citypipe.core.ingest import ingest

FILES = sorted([*(CORPUS / "cityjson").glob("*.city.json*"), *(SAMPLES / "cityjson").glob("*")])


def test_the_compiled_walk_is_built_where_a_compiler_is() -> None:
    """CI must not run the Python walk alone without saying so."""
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler: the Python walk reads every object")
    compiled = cityjson_values.compiled
    assert compiled is not None
    source = ROOT / "connectors" / "cityjson_walk.pyx"
    assert source.stat().st_mtime <= Path(compiled.__file__).stat().st_mtime, (
        "cityjson_walk.pyx changed since the walk was built: run `make setup`"
    )


def _batches(path: Path, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list, set]:
    """The batches read with the compiled walk or without it, and the keys of the objects the
    Python walk read."""
    slow: set[str] = set()
    add = Batch.add
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(cityjson_values, "compiled", None)
            m.setattr(cityjson_values, "lifting", None)

        def spy(self: Batch, key: str, *args: Any) -> None:
            slow.add(key)
            add(self, key, *args)

        m.setattr(Batch, "add", spy)
        return list(CityJSONConnector(path).read()), slow


def _plain(value: Any) -> Any:
    """Values kept as their JSON text (orjson.Fragment: boundaries, semantics, materials) as
    the values the text holds."""
    return json.loads(orjson.dumps(value)) if isinstance(value, orjson.Fragment) else repr(value)


def _arrays(value: Any) -> Any:
    return None if value is None else [np.asarray(a).tolist() for a in value]


def _rows(batches: list[Any]) -> list[Any]:
    """Every record of the batches as plain values (geometries as WKB), and each batch's face
    arrays."""
    out: list[Any] = []
    for b in batches:
        wkb = shapely.to_wkb(np.asarray(b.geometries, dtype=object))
        solid = shapely.to_wkb(np.asarray(b.solids.built().geometry_3d, dtype=object))
        flat = b.solids.faces  # its pool rows aside: only the compiled ring pass tells them
        out.append(("faces", _arrays(None if flat is None else flat[:4])))
        for i, key in enumerate(b.source_ids):
            surfaces = b.solids.surfaces[i]
            faces = b.solids.surface_faces[i]
            out.append(
                (
                    key,
                    b.errors[i],
                    json.dumps(b.records[i], default=_plain),
                    json.dumps(b.properties[i], default=_plain),
                    b.feature_classes[i],
                    b.name[i],
                    b.height_m[i],
                    b.lod[i],
                    b.parent_source_id[i],
                    b.repairs[i],
                    wkb[i],
                    solid[i],
                    None if surfaces is None else [(t, p.wkb) for t, p in surfaces],
                    None if faces is None else faces.tolist(),
                )
            )
    return out


def _same(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], set[str]]:
    """The records read with the compiled walk, checked against the Python walk's; the keys of
    the objects the Python walk read beside the compiled one."""
    (fast, slow_keys), (slow, _) = (_batches(path, c, monkeypatch) for c in (True, False))
    assert _rows(fast) == _rows(slow)
    return _rows(fast), slow_keys


@pytest.mark.corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("batch", [cityjson.BATCH_OBJECTS, 3])
def test_both_walks_read_every_corpus_file_alike(monkeypatch, path: Path, batch: int) -> None:
    monkeypatch.setattr(cityjson, "BATCH_OBJECTS", batch)
    rows, slow = _same(path, monkeypatch)
    assert len(rows) > 1
    assert not slow, slow  # every object of the corpus is in the compiled subset


# -- broken documents and streams -------------------------------------------------------------

_HEADER = {
    "type": "CityJSON",
    "version": "2.0",
    "transform": {"scale": [0.001, 0.001, 0.001], "translate": [85000.0, 447000.0, 0.0]},
    "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"},
    "geometry-templates": {
        "templates": [{"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2]]]}],
        "vertices-templates": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    },
}
_VERTICES = [[x, y, z] for z in (0, 3000) for y in (0, 4000) for x in (0, 5000)]
_CUBE = [
    [[0, 2, 3, 1]],
    [[4, 5, 7, 6]],
    [[0, 1, 5, 4]],
    [[1, 3, 7, 5]],
    [[3, 2, 6, 7]],
    [[2, 0, 4, 6]],
]


def _solid(**extra: Any) -> dict[str, Any]:
    return {"type": "Solid", "lod": "2", "boundaries": [copy.deepcopy(_CUBE)], **extra}


def _semantics() -> dict[str, Any]:
    return {
        "surfaces": [
            {"type": "GroundSurface"},
            {"type": "RoofSurface", "slope": 30},
            {"type": "WallSurface"},
        ],
        "values": [[0, 1, 2, 2, None, 2]],
    }


def _objects() -> dict[str, Any]:
    """One object of each kind a broken file has, beside good ones."""
    wall = {"type": "MultiSurface", "lod": 1, "boundaries": copy.deepcopy(_CUBE)}
    attrs = {"name": "a", "measuredHeight": 3.5, "roofType": "flat"}
    return copy.deepcopy(
        {
            "good": {"type": "Building", "attributes": attrs, "geometry": [_solid()]},
            "semantic": {"type": "Building", "geometry": [_solid(semantics=_semantics())]},
            "lods": {"type": "Building", "geometry": [wall, _solid(), {**wall, "lod": 0}]},
            "parent": {"type": "Building", "children": ["part"], "geographicalExtent": [0] * 6},
            "part": {"type": "BuildingPart", "parents": ["parent"], "geometry": [_solid()]},
            "address": {"type": "Building", "address": [{"x": 1}], "attributes": 5},
            "float": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, 2.0]]]}]},
            "bool": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, True]]]}]},
            "null": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, None]]]}]},
            "text": {"type": "Building", "geometry": [{**wall, "boundaries": [[["0", 1, 2]]]}]},
            "shallow": {"type": "Building", "geometry": [{**_solid(), "boundaries": _CUBE}]},
            "deep": {"type": "Building", "geometry": [{**wall, "boundaries": [_CUBE]}]},
            "empty": {"type": "Building", "geometry": [{**wall, "boundaries": []}]},
            "empty_ring": {"type": "Building", "geometry": [{**wall, "boundaries": [[[]]]}]},
            "range": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, 99]]]}]},
            "negative": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, -2]]]}]},
            "huge": {"type": "Building", "geometry": [{**wall, "boundaries": [[[0, 1, 2**70]]]}]},
            "none": {"type": "Building", "geometry": [{"type": "Solid", "lod": 1}]},
            "unknown": {"type": "Building", "geometry": [{**wall, "type": "Polygon"}]},
            "points": {
                "type": "Building",
                "geometry": [{"type": "MultiPoint", "boundaries": [0, 1]}],
            },
            "lines": {
                "type": "Building",
                "geometry": [{"type": "MultiLineString", "lod": 1, "boundaries": [[0, 1, 3]]}],
            },
            "multi": {
                "type": "Building",
                "geometry": [
                    {
                        "type": "MultiSolid",
                        "lod": 2,
                        "boundaries": [[copy.deepcopy(_CUBE)], []],
                        "semantics": {
                            "surfaces": [{"type": "RoofSurface"}],
                            "values": [[[0, 0, 0, 0, 0, 0]], []],
                        },
                    }
                ],
            },
            "composite": {
                "type": "Building",
                "geometry": [
                    {"type": "CompositeSolid", "lod": 2, "boundaries": [[_CUBE], [_CUBE]]}
                ],
            },
            "bad_values": {
                "type": "Building",
                "geometry": [_solid(semantics={**_semantics(), "values": 5})],
            },
            "number_values": {
                "type": "Building",
                "geometry": [{**wall, "semantics": {"surfaces": [], "values": 5}}],
            },
            "short_values": {
                "type": "Building",
                "geometry": [_solid(semantics={**_semantics(), "values": [[0, 1]]})],
            },
            "untyped": {
                "type": "Building",
                "geometry": [_solid(semantics={"surfaces": [{}], "values": [[0] * 6]})],
            },
            "look": {
                "type": "Building",
                "geometry": [_solid(material={"visual": {"values": [[0] * 6]}}, texture={})],
            },
            "instance": {
                "type": "SolitaryVegetationObject",
                "geometry": [
                    {
                        "type": "GeometryInstance",
                        "template": 0,
                        "boundaries": [3],
                        "transformationMatrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
                    }
                ],
            },
            "no_object": 5,
            "no_geometry_object": {"type": "Building", "geometry": [5]},
            "geometry_object": {"type": "Building", "geometry": {"lod": 1}},
        }
    )


_PYTHON = {
    *("no_object", "no_geometry_object", "geometry_object", "instance"),
    *("none", "unknown", "bad_values", "number_values"),
}
"""The objects of `_objects` that the Python walk reads: not an object, a geometry that is no
object, a template instance; a geometry that geometry_job refuses (no boundaries, an unknown
type, semantic values that are no list)."""


def _document(tmp_path: Path, objects: dict[str, Any], compact: bool = True, **header: Any) -> Path:
    """The document written as orjson writes JSON (`compact`: its semantics and materials
    lifted as they are) or with blanks (parsed by orjson)."""
    path = tmp_path / "broken.city.json"
    document = {**_HEADER, **header, "CityObjects": objects, "vertices": _VERTICES}
    path.write_text(json.dumps(document, separators=(",", ":") if compact else None))
    return path


def test_a_broken_document_reads_alike(tmp_path, monkeypatch):
    objects = _objects()
    rows, slow = _same(_document(tmp_path, objects), monkeypatch)
    assert slow == _PYTHON
    errors = {r[0]: r[1] for r in rows if r[0] != "faces"}
    assert set(errors) == set(objects)
    for key in ("good", "semantic", "lods", "parent", "part", "multi", "composite", "look"):
        assert errors[key] is None, key
    for key in ("float", "bool", "null", "text", "shallow", "deep", "empty", "range", "huge"):
        assert errors[key], key
    assert errors["number_values"] == "MultiSurface semantics values that are not an array"


def test_many_members_are_named_alike(tmp_path, monkeypatch):
    """More distinct CityObject members than the walk keeps the property names of (an
    extension's, say): each still under "cityjson:" and its own name, as the Python walk."""
    objects = {
        f"o{i}": {"type": "Building", "geometry": [_solid()], f"+member{i % 1500}": i}
        for i in range(3000)
    }
    rows, slow = _same(_document(tmp_path, objects), monkeypatch)
    assert not slow
    props = [json.loads(r[3]) for r in rows if r[0] != "faces"]
    assert [p[f"cityjson:+member{i % 1500}"] for i, p in enumerate(props)] == list(range(3000))


def test_a_long_text_in_a_semantic_surface_or_material_is_cut_alike(
    tmp_path, lake, read_lake, monkeypatch
):
    """A text longer than CITYPIPE_MAX_VALUE_BYTES in what the lift hands on as its text (a
    semantic surface, a material) is cut in the properties as where orjson parsed it."""
    monkeypatch.setenv("CITYPIPE_MAX_VALUE_BYTES", "1000")
    long, short = "x" * 1500, "y" * 900
    semantics = _semantics()
    semantics["surfaces"][1]["note"] = long
    semantics["surfaces"][2]["note"] = short
    material = {"visual": {"values": [[0] * 6]}, "name": long}
    objects = {
        "long": {"type": "Building", "geometry": [_solid(semantics=semantics, material=material)]},
        "short": {"type": "Building", "geometry": [_solid(material={**material, "name": short})]},
    }
    path = _document(tmp_path, objects)
    assert cityjson_values.lifting is None or cityjson_values.lifting.lift(path.read_bytes())
    written = []
    for lifted in (True, False):
        with monkeypatch.context() as m:
            if not lifted:
                m.setattr(cityjson_values, "lifting", None)
            ingest(path, "s", lake, validate=False, render_docs=False)
        written.append(read_lake("s").column("properties").to_pylist())
    assert written[0] == written[1]
    props = {
        p["cityjson:appearance"][0]["material"]["name"][:1]: p for p in map(json.loads, written[0])
    }
    assert len(props["x"]["cityjson:appearance"][0]["material"]["name"]) == 1000
    assert len(props["y"]["cityjson:appearance"][0]["material"]["name"]) == 900
    assert len(props["x"]["cityjson:semantics"][0]["surfaces"][1]["note"]) == 1000
    assert props["x"]["cityjson:semantics"][0]["surfaces"][2]["note"] == short


def _many_types() -> dict[str, Any]:
    """Semantics of more surface types than the lift names (64): read as lists."""
    surfaces = [{"type": f"Surface{k}"} for k in range(70)]
    return {"surfaces": surfaces, "values": [[k % 70 for k in range(6)]]}


def _deep(depth: int) -> Any:
    return [_deep(depth - 1)] if depth else 0


@pytest.mark.parametrize(
    ("semantics", "material"),
    [
        (_many_types(), None),
        (None, {"visual": {"values": [[0] * 6]}, "deep": _deep(70)}),
        (None, {f"k{k}": k for k in range(300)}),
        ({**_semantics(), "values": [[0, 1, 2, 2, -1, 2]]}, None),
        ({**_semantics(), "values": [[0, 1, 2, 2, 2**63 - 1, 2]]}, None),
        ({**_semantics(), "values": [[0, 1, 2], [0]]}, None),
        ({"values": [[0] * 6]}, None),
        ({**_semantics(), "lod": "x"}, {"a\\u00e9": 1}),
    ],
)
def test_what_the_lift_leaves_or_reads_reads_alike(tmp_path, monkeypatch, semantics, material):
    """Semantics and materials the lift does not take (more types than it names, nesting or
    keys beyond what it checks, a key written with an escape) or whose values the walk does
    not read from its arrays (a value that is no index, a shell more): both walks alike."""
    extra = {k: v for k, v in (("semantics", semantics), ("material", material)) if v}
    objects = {"a": {"type": "Building", "geometry": [_solid(**extra)]}, "b": _objects()["good"]}
    _same(_document(tmp_path, objects), monkeypatch)


def test_a_key_given_twice_in_semantics_is_left_to_orjson(tmp_path, monkeypatch):
    """orjson keeps the last of two: the text with both is not what it writes."""
    objects = {"a": {"type": "Building", "geometry": [_solid(semantics=_semantics())]}}
    path = _document(tmp_path, objects)
    path.write_text(path.read_text().replace('"surfaces":', '"values":[[0]],"surfaces":', 1))
    _same(path, monkeypatch)


def test_numbers_json_does_not_have_leave_the_document_to_python(tmp_path, monkeypatch):
    """A number beyond a double (which only Python's parser reads) in one object: the whole
    document is read by the Python walk, which rejects that object."""
    objects = {k: o for k, o in _objects().items() if k != "no_object"}
    path = _document(tmp_path, objects)
    path.write_text(path.read_text().replace('"roofType":"flat"', '"roofType":1e400'))
    rows, slow = _same(path, monkeypatch)
    assert slow == set(objects)
    errors = {r[0]: r[1] for r in rows if r[0] != "faces"}
    assert errors["good"] == "attributes.roofType is inf, a number JSON does not have"


def test_a_broken_stream_reads_alike(tmp_path, monkeypatch):
    objects = _objects()
    lines = [json.dumps({**_HEADER, "CityObjects": {}, "vertices": []})]
    for key, obj in objects.items():
        feature = {"type": "CityJSONFeature", "id": key, "CityObjects": {key: obj}}
        lines.append(json.dumps({**feature, "vertices": _VERTICES}))
    lines.insert(3, "{not json")
    path = tmp_path / "broken.city.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rows, slow = _same(path, monkeypatch)
    assert slow == _PYTHON
    assert len([r for r in rows if r[0] != "faces"]) == len(objects) + 1


_ODD = st.sampled_from(
    [1.5, None, True, False, "0", -1, 0, 2, 2**63, 2**64, [], [0], [[0]], {}, {"a": 0}, "]"]
    + [0.10000000000000002, 1e-05, "Wall\\Surface", {"lod": 3}, [None], {"type": "X"}]
)


_KEYS = ["type", "lod", "values", "surfaces", "semantics", "boundaries", "attributes", "x"]


def _put(data: st.DataObject, target: Any) -> None:
    """Put an odd value somewhere inside the list or object `target`."""
    while True:
        if isinstance(target, dict) and target and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(target)))
        elif isinstance(target, list) and target and data.draw(st.booleans()):
            key = data.draw(st.integers(0, len(target) - 1))
        else:
            if isinstance(target, list):
                target.insert(
                    data.draw(st.integers(0, len(target))), copy.deepcopy(data.draw(_ODD))
                )
            elif isinstance(target, dict):
                target[data.draw(st.sampled_from(_KEYS))] = copy.deepcopy(data.draw(_ODD))
            return
        if not isinstance(target[key], list | dict) or data.draw(st.booleans()):
            target[key] = copy.deepcopy(data.draw(_ODD))
            return
        target = target[key]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_odd_values_anywhere_in_an_object_read_alike(tmp_path, data):
    """Any value put anywhere in an object (its boundaries, semantic values and surfaces, its
    geometries' members, its attributes): both walks read the same records."""
    objects = _objects()
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(k for k in objects if k not in _PYTHON)))
        _put(data, objects[key])
    path = _document(tmp_path, objects, data.draw(st.booleans()))
    with pytest.MonkeyPatch.context() as m:
        _same(path, m)


# -- flatten ---------------------------------------------------------------------------------


def _nested(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(0, 999), max_size=6)
    out: st.SearchStrategy[Any] = leaf
    for _ in range(depth - 1):
        out = st.lists(out, max_size=4)
    return out


class _Job:
    def __init__(self, parts: Any) -> None:
        self.parts = parts


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(st.just(d), st.lists(_nested(d), max_size=5))))
def test_flatten_gives_the_counts_and_indices_python_gives(case):
    depth, parts = case
    compiled = cityjson_values.compiled
    if compiled is None:
        pytest.skip("the walk is not compiled")
    counts, idx = compiled.flatten([_Job(p) for p in parts], depth)
    expected, level = [], parts
    for _ in range(depth):
        expected.append([len(x) for x in level])
        level = [y for x in level for y in x]
    assert [c.tolist() for c in counts] == expected
    assert idx.tolist() == level and idx.dtype == np.int64


@pytest.mark.parametrize(
    "parts",
    [[[[1, 2.0]]], [[[1, True]]], [[[1, None]]], [[1]], [[[[1]]]], [[[2**63]]], [[(1, 2)]], 5],
)
def test_flatten_leaves_what_is_no_list_of_ints_to_python(parts):
    """A job's surfaces (rings of vertex indices) holding a float, a bool, null, a surface or
    ring that is no list, a list where an index belongs, an index beyond int64, a tuple."""
    compiled = cityjson_values.compiled
    if compiled is None:
        pytest.skip("the walk is not compiled")
    good = _Job([[[0, 1, 2]]])
    assert compiled.flatten([good, _Job(parts)], 3) is None
    assert compiled.flatten([good], 3) is not None


_WALLS = {"type": "MultiSurface", "lod": 1, "boundaries": _CUBE}


@pytest.mark.parametrize(
    ("objects", "shells", "run"),
    [
        ({"a": [_solid()], "b": [_WALLS]}, [_CUBE, _CUBE], True),
        ({"a": [_solid()], "b": [_WALLS, _solid()]}, [_CUBE, _CUBE], False),
        ({"a": [_solid(boundaries=[_CUBE, _CUBE[:2]])], "b": [_solid()]}, [_CUBE, _CUBE], False),
    ],
    ids=["one run", "a geometry left out", "an inner shell left out"],
)
def test_indices_lifted_in_one_run_are_handed_on_as_they_are(
    tmp_path, monkeypatch, objects, shells, run
):
    """A batch's geometries' vertex indices, where they are one run of the document's lifted
    ones (each object's one geometry, a shell each), are that run of the lifted array, not a
    copy; otherwise a copy of those read (the richest LoD, a solid's outer shell). Either way
    the indices of the `shells` read."""
    compiled = cityjson_values.compiled
    if compiled is None or cityjson_values.lifting is None:
        pytest.skip("the walk or the lift is not compiled")
    flattened: list[Any] = []
    flatten = compiled.flatten

    def spy(*args: Any) -> Any:
        flattened.append(flatten(*args))
        return flattened[-1]

    monkeypatch.setattr(compiled, "flatten", spy)
    documents = {k: {"type": "Building", "geometry": g} for k, g in objects.items()}
    batch = next(CityJSONConnector(_document(tmp_path, copy.deepcopy(documents))).read())
    idx = flattened[0][1]
    assert np.shares_memory(idx, batch.records._boundaries.idx) == run
    assert idx.tolist() == [i for shell in shells for s in shell for r in s for i in r]


# -- vertices ---------------------------------------------------------------------------------

_COORDINATE = (
    st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([True, False, None, "1", [1], 2**53 + 1, -(2**63), 2**63 - 1])
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-(10**9), 10**9) | st.floats(-1e9, 1e9), min_size=3, max_size=3)
        | st.lists(_COORDINATE, min_size=2, max_size=4)
        | st.sampled_from([None, 5, "abc", {"x": 1}]),
        max_size=8,
    ),
    st.booleans(),
)
def test_vertices_read_alike(raw, transformed):
    """Vertices of numbers, and of anything else (bools, text, null, lists too short or long,
    ints beyond int64 or a double's precision, NaN): the same array and problems both ways."""
    transform = {"scale": [0.001, 0.01, 1.0], "translate": [1.0, 2.0, 3.0]} if transformed else None
    with pytest.MonkeyPatch.context() as m:
        fast = cityjson_values.vertices(copy.deepcopy(raw), transform)
        m.setattr(cityjson_values, "compiled", None)
        slow = cityjson_values.vertices(copy.deepcopy(raw), transform)
    np.testing.assert_array_equal(fast.xyz, slow.xyz)
    assert fast.problems == slow.problems


_NUMBER = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_NUMBER, min_size=3, max_size=3), max_size=8),
    st.lists(_NUMBER, min_size=3, max_size=3),
    st.lists(_NUMBER, min_size=3, max_size=3),
)
def test_vertices_dequantised_a_column_at_a_time_as_broadcast(raw, scale, translate):
    """The vertices' transform applied a column at a time gives numpy's broadcast, bit for bit
    (NaN, infinities and overflow included), whatever the numbers of the transform."""
    xyz = np.tile(np.array(raw, np.float64).reshape(-1, 3), (cityjson_values._COLUMNS_FROM, 1))
    scale_array, translate_array = np.asarray(scale), np.asarray(translate)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = xyz * scale_array + translate_array
    got = cityjson_values._dequantised(xyz, scale_array, translate_array)
    assert got.flags.c_contiguous and got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()
