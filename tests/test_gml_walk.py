"""The compiled surface walk (connectors/gml_walk.pyx) reads what the Python walk reads.

Both walks read every corpus CityGML file and generated GML (comments and CDATA inside the
geometry, text split by them, srsDimension on the geometry, posList or neither, Rings of curve
members, xlinks, empty rings, OrientableSurface turned over, Solids with interior shells,
gml:ids on polygons); the reader's whole state after each batch (records, rings, polygon ring
counts and sizes, gml:ids) must be the same, and so must any error.
"""

from __future__ import annotations

import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CORPUS, ROOT, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from citypipe.connectors import gml
from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.gml import GeometryReader
from citypipe.connectors.gml_xlinks import Xlinks
from citypipe.core import solids

FILES = sorted(
    [*(CORPUS / "citygml").glob("*.gml"), *(CORPUS / "citygml3").glob("*.gml")]
    + [*(SAMPLES / "citygml").glob("*.gml")]
)
GML = "http://www.opengis.net/gml"
NS = f'xmlns:gml="{GML}" xmlns:xlink="http://www.w3.org/1999/xlink"'
CITYGML_1 = "http://www.opengis.net/citygml/building/1.0"


def test_the_compiled_walk_is_built_where_a_compiler_is() -> None:
    """CI must not run the Python walk or the numpy edges alone without saying so."""
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler: the Python walk reads every surface")
    assert gml.compiled is not None and solids.compiled is not None
    stale = []
    for module, folder in ((gml.compiled, "connectors"), (solids.compiled, "pipelines/geo")):
        built = Path(module.__file__).stat().st_mtime
        sources = [*(ROOT / folder).glob("*.pyx"), *(ROOT / folder).glob("*.pxi")]
        stale += [p.name for p in sources if p.stat().st_mtime > built]
    assert not stale, f"{', '.join(stale)} changed since they were built: run `make setup`"


def _plain(value: Any) -> Any:
    """A record's or reader's value as comparable data (arrays as lists, elements by tag)."""
    if isinstance(value, np.ndarray):
        return ("array", value.tolist())
    if isinstance(value, etree._Element):
        return ("element", value.tag)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, gml.Parts):
        return [_plain(value.polygons), _plain(value.lines), _plain(value.points)]
    if hasattr(value, "feature_class"):  # a Record: its parent by index (no cycles)
        return {
            k: (
                getattr(value, k).index
                if k == "parent" and value.parent
                else _plain(getattr(value, k))
            )
            for k in value.__annotations__
        }
    return value


def _state(geometry: GeometryReader) -> Any:
    return _plain(
        [geometry.rings(), geometry._sizes, geometry.ids, geometry.srs_name, geometry.dimension]
    )


def _batches(path: Path, batch_size: int) -> list[Any]:
    def take(reader: ObjectReader) -> Any:
        taken = reader.take()
        if taken is not None:
            yield [_plain(taken[0]), _state(taken[1])]

    connector = CityGMLConnector(path, split_bytes=0, batch_size=batch_size)
    return list(connector._read(take))


def _both(monkeypatch: pytest.MonkeyPatch, read: Any) -> tuple[Any, Any]:
    """`read()` with the compiled walk, then with the Python walk alone (an error raised: its
    type and message)."""
    assert gml.compiled is not None
    fast = _outcome(read)
    monkeypatch.setattr(gml, "compiled", None)
    slow = _outcome(read)
    monkeypatch.undo()
    return fast, slow


def _outcome(read: Any) -> Any:
    try:
        return read()
    except Exception as e:  # noqa: BLE001 - compared, as what is read is
        return ("error", type(e).__name__, str(e))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_both_walks_read_every_corpus_file_alike(monkeypatch, path: Path) -> None:
    for batch_size in (2000, 3):
        fast, slow = _both(monkeypatch, lambda: _batches(path, batch_size))  # noqa: B023
        assert isinstance(fast, list) and fast == slow  # batches, not an error alike


# -- generated GML ---------------------------------------------------------------------------

_numbers = st.lists(
    st.sampled_from(["1", "2.5", "-3", "1e3", "0", "x", "nan"]), min_size=0, max_size=10
)


@st.composite
def _text(draw: st.DrawFn) -> str:
    """Coordinate text, perhaps split by a comment or CDATA, perhaps blank."""
    values = draw(_numbers)
    cut = draw(st.integers(0, len(values)))
    head, tail = " ".join(values[:cut]), " ".join(values[cut:])
    join = draw(st.sampled_from([" ", " <!-- c --> ", " <![CDATA[ ", "<?pi x?>", "\n"]))
    if "CDATA" in join:
        return f"{head} <![CDATA[ {tail} ]]>"
    return f"{head}{join}{tail}"


def _dim(draw: st.DrawFn) -> str:
    value = draw(st.sampled_from([None, None, None, "2", "3", "4", " 3", "5", ""]))
    return "" if value is None else f' srsDimension="{value}"'


@st.composite
def _ring(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["posList", "posList", "pos", "empty", "Ring", "comment"]))
    text, ring = draw(_text()), "<gml:LinearRing>{}</gml:LinearRing>"
    if kind == "posList":
        return ring.format(f"<gml:posList{_dim(draw)}>{text}</gml:posList>")
    if kind == "pos":
        return ring.format(f"<gml:pos>1 2 3</gml:pos><gml:pos>{text}</gml:pos>")
    if kind == "empty":
        return "<gml:LinearRing/>"
    if kind == "comment":
        return ring.format(f"<!-- c --><gml:posList>{text}</gml:posList>")
    return (
        "<gml:Ring><gml:curveMember><gml:LineString><gml:posList>1 2 3 4 5 6 1 2 3"
        "</gml:posList></gml:LineString></gml:curveMember></gml:Ring>"
    )


@st.composite
def _polygon(draw: st.DrawFn) -> str:
    gid = draw(st.sampled_from(["", ' gml:id="p1"', ' gml:id="p2"']))
    boundaries = [
        f"<gml:{b}>{draw(_ring())}</gml:{b}>"
        for b in draw(st.lists(st.sampled_from(["exterior", "interior", "other"]), max_size=3))
    ]
    if draw(st.booleans()):
        boundaries.insert(0, "<!-- before -->")
    return f"<gml:Polygon{gid}>{''.join(boundaries)}</gml:Polygon>"


@st.composite
def _surface(draw: st.DrawFn, depth: int = 2) -> str:
    kinds = ["Polygon", "MultiSurface", "CompositeSurface", "Solid", "OrientableSurface"]
    kind = draw(st.sampled_from(kinds if depth else ["Polygon"]))
    gid = draw(st.sampled_from(["", ' gml:id="s1"', ' gml:id="p1"']))
    if kind == "Polygon":
        return draw(_polygon())
    if kind == "Solid":
        shells = [
            f"<gml:{b}><gml:Shell>{draw(_members(depth - 1))}</gml:Shell></gml:{b}>"
            for b in draw(st.lists(st.sampled_from(["exterior", "interior"]), max_size=2))
        ]
        return f"<gml:Solid{gid}>{''.join(shells)}</gml:Solid>"
    if kind == "OrientableSurface":
        orientation = draw(st.sampled_from(["", ' orientation="-"', ' orientation="+"']))
        return (
            f"<gml:OrientableSurface{gid}{orientation}><gml:baseSurface>"
            f"{draw(_surface(depth - 1))}</gml:baseSurface></gml:OrientableSurface>"
        )
    return f"<gml:{kind}{gid}>{draw(_members(depth - 1))}</gml:{kind}>"


@st.composite
def _members(draw: st.DrawFn, depth: int) -> str:
    members = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 4)) == 0:
            members.append('<gml:surfaceMember xlink:href="#p1"/>')
        else:
            members.append(f"<gml:surfaceMember>{draw(_surface(depth))}</gml:surfaceMember>")
    return "".join(members)


@st.composite
def _geometry(draw: st.DrawFn) -> str:
    """A surface whose top element may carry srsName and srsDimension."""
    body = draw(_surface())
    attributes = draw(st.sampled_from(["", ' srsName="EPSG:25832"', ' srsDimension="2"']))
    head, rest = body.split(">", 1)
    return f"{head}{attributes} {NS}>{rest}"


def _read_geometry(xml: str, dimension: int) -> Any:
    reader = GeometryReader(GML, dimension)
    reader.record = 7
    elem = etree.fromstring(xml)
    return [_plain(reader.read(elem)), _state(reader)]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(xml=_geometry(), dimension=st.sampled_from([2, 3]))
def test_both_walks_read_generated_gml_alike(monkeypatch, xml: str, dimension: int) -> None:
    fast, slow = _both(monkeypatch, lambda: _read_geometry(xml, dimension))
    assert fast == slow, xml


# -- generated CityGML objects -----------------------------------------------------------------

_ATTRIBUTES = [
    "<core:creationDate>2021-01-23</core:creationDate>",
    "<core:creationDate> </core:creationDate>",
    '<core:creationDate xml:lang="de">2021</core:creationDate>',
    "<bldg:storeysAboveGround>3</bldg:storeysAboveGround>",
    '<gen:stringAttribute name="a"><gen:value>v</gen:value></gen:stringAttribute>',
    '<gen:stringAttribute name="a"><gen:value><![CDATA[w]]></gen:value></gen:stringAttribute>',
    '<gen:stringAttribute name="a"><gen:value>v</gen:value><gen:value/></gen:stringAttribute>',
    "<gen:stringAttribute><gen:value>v</gen:value></gen:stringAttribute>",
    '<gen:stringAttribute name="b"><!-- c --></gen:stringAttribute>',
    '<gen:intAttribute name="n"><gen:value>7</gen:value></gen:intAttribute>',
    "<!-- a comment -->",
]


@st.composite
def _thematic_surface(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["WallSurface", "RoofSurface", "GroundSurface"]))
    gid = draw(st.sampled_from(["", ' gml:id="t1"', ' gml:id="p1"']))
    children = draw(st.lists(st.sampled_from(_ATTRIBUTES), max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        lod = draw(st.sampled_from(["0", "2"]))
        if draw(st.integers(0, 5)) == 0:
            geometry = f'<bldg:lod{lod}MultiSurface xlink:href="#p1"/>'
        else:
            geometry = f"<bldg:lod{lod}MultiSurface>{draw(_geometry())}</bldg:lod{lod}MultiSurface>"
        children.insert(draw(st.integers(0, len(children))), geometry)
    return f"<bldg:{kind}{gid}>{''.join(children)}</bldg:{kind}>"


_PARTS = [
    '<bldg:BuildingPart gml:id="p2"><bldg:roofType>1000</bldg:roofType></bldg:BuildingPart>',
    "<bldg:BuildingPart><bldg:boundedBy><bldg:WallSurface/></bldg:boundedBy></bldg:BuildingPart>",
    "<!-- a comment -->",
]
_TERRAIN_INTERSECTION = (
    "<bldg:lod2TerrainIntersection><gml:MultiCurve><gml:curveMember><gml:LineString>"
    "<gml:posList>0 0 0 1 1 1</gml:posList></gml:LineString></gml:curveMember></gml:MultiCurve>"
    "</bldg:lod2TerrainIntersection>"
)


@st.composite
def _city_model(draw: st.DrawFn) -> str:
    properties = draw(st.lists(st.sampled_from(_ATTRIBUTES), max_size=2))
    for _ in range(draw(st.integers(0, 3))):
        href = draw(st.sampled_from(["", ' xlink:href="#t1"']))
        surfaces = draw(st.lists(_thematic_surface(), max_size=2))
        properties.append(f"<bldg:boundedBy{href}>{''.join(surfaces)}</bldg:boundedBy>")
    for _ in range(draw(st.integers(0, 2))):  # parts: records of their own, or what is not one
        href = draw(st.sampled_from(["", ' xlink:href="#b2"']))
        parts = draw(st.lists(st.sampled_from(_PARTS), max_size=2))
        properties.append(
            f"<bldg:consistsOfBuildingPart{href}>{''.join(parts)}</bldg:consistsOfBuildingPart>"
        )
    if draw(st.booleans()):
        properties.append(_TERRAIN_INTERSECTION)
    if draw(st.booleans()):
        properties.append(
            "<bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface>"
            '<gml:surfaceMember xlink:href="#p1"/><gml:surfaceMember xlink:href="#p2"/>'
            "</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>"
        )
    return (
        '<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0"'
        ' xmlns:bldg="http://www.opengis.net/citygml/building/2.0"'
        f' xmlns:gen="http://www.opengis.net/citygml/generics/2.0" {NS}>'
        f'<core:cityObjectMember><bldg:Building gml:id="b1">{"".join(properties)}'
        "</bldg:Building></core:cityObjectMember></core:CityModel>"
    )


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(xml=_city_model())
def test_both_walks_read_generated_citygml_alike(monkeypatch, xml: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gml"
        path.write_text(xml)
        fast, slow = _both(monkeypatch, lambda: _batches(path, 2000))
    assert fast == slow, xml


# -- xlinks ----------------------------------------------------------------------------------

_ids = st.sampled_from(["a", "b", "c", "d"])
_ref = st.one_of(st.integers(-6, 5), _ids, _ids.map("-{}".format))
_handles = st.lists(_ref, min_size=0, max_size=3)  # a polygon, several, or xlinks onward


@settings(max_examples=300, deadline=None)
@given(
    surfaces=st.dictionaries(st.sampled_from(["a", "b", "c"]), _handles),
    refs=st.lists(_ref, max_size=12),
)
def test_xlinks_resolve_in_c_as_in_python(surfaces, refs) -> None:
    """Handles, dangling ids (chains, cycles, surfaces of several polygons) and the budget's
    verdict alike; `d` is never defined."""
    assert gml.compiled is not None

    def resolve(compiled: Any) -> Any:
        sizes = [10 + i for i in range(6)]
        xlinks = Xlinks({k: (0, v) for k, v in surfaces.items()}, sizes)
        return _outcome(
            lambda: compiled.resolve(xlinks, refs) if compiled else xlinks.resolve(refs)
        ), xlinks._brought

    assert resolve(gml.compiled) == resolve(None)


def test_a_surface_type_is_one_string_however_many_surfaces_have_it(corpus: Path) -> None:
    """A batch pickles each type once and refers to it after (the pipe of citygml_process)."""
    if gml.compiled is None:
        pytest.skip("no compiled walk")
    path = corpus / "citygml" / "nrw_LoD2_32_326_5727_1_NW.gml"
    bounded = f"{{{CITYGML_1}}}boundedBy"
    in_file = [etree.QName(s).localname for e in etree.parse(str(path)).iter(bounded) for s in e]
    taken = CityGMLConnector(path)._read(lambda reader: iter([reader.take()]))
    types = [t for records, _ in taken for r in records for t, _ in r.surface_handles]
    assert sorted(types) == sorted(in_file)  # the file's surfaces are all of one LoD
    # one object per type, but for a surface the Python walk reads (here one WallSurface)
    assert len({id(t) for t in types}) < len(types) / 100


def test_a_tag_is_its_own_document_s_where_another_had_the_same_pointers(tmp_path: Path) -> None:
    """The compiled walk keeps the tags it made by libxml2's name and namespace pointers: a
    document read after another, whose namespace text may sit where the other's was, names
    its properties by its own namespace (the CityGML module's local name; another's prefix)."""
    building = "http://www.opengis.net/citygml/building/2.0"
    other = "urn:" + "x" * (len(building) - 4)  # the same size: its text may take the place
    for i in range(40):
        ns = (building, other)[i % 2]
        path = tmp_path / f"m{i}.gml"
        path.write_text(
            '<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:gml='
            f'"{GML}" xmlns:bldg="{building}" xmlns:b="{ns}"><core:cityObjectMember>'
            '<bldg:Building gml:id="B"><b:function>x</b:function></bldg:Building>'
            "</core:cityObjectMember></core:CityModel>",
            encoding="utf-8",
        )
        (batch,) = CityGMLConnector(path, split_bytes=0).read()
        assert list(batch.properties[0]) == ["function" if ns == building else "b:function"]
