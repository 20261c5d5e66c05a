"""A CityModel that is not its document's root: in a WFS GetFeature answer's wfs:member (as
3DCityDB's WFS serves CityGML) or an export's envelope.

Each variant wraps a bundled sample's CityModel with lxml (never the corpus); what a test
expects is read from the sample with lxml (its city objects' gml:ids), never from citypipe's
output. A wrapper holding only CityModels is read as the CityModel alone is; one holding
something else is refused in one line naming it (exit 2), rather than read in part.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import SAMPLES
from lxml import etree

from citypipe import cli
from citypipe.connectors.citygml_header import MEMBERS, model_members
from citypipe.connectors.registry import detect

LOD2 = SAMPLES / "citygml" / "sig3d_v2_Building_LOD2-EPSG25832.gml"
GARAGE = SAMPLES / "citygml" / "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml"
GML_ID = "{http://www.opengis.net/gml}id"
CITY_OBJECTS = {"Building", "BuildingPart", "ReliefFeature", "TINRelief"}
"""The classes of city object the samples hold (each one a row)."""
BUILDING = "GML_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68"
"""The LOD2 sample's bldg:Building, whose geometry is a lod2Solid."""
WFS = 'xmlns:wfs="http://www.opengis.net/wfs/2.0" numberMatched="{n}" numberReturned="{n}"'


def _model(path: Path) -> bytes:
    return etree.tostring(etree.parse(str(path)).getroot())


def _ids(*paths: Path) -> set[str]:
    """The gml:ids of the samples' city objects, read with lxml."""
    return {
        e.get(GML_ID)
        for path in paths
        for e in etree.parse(str(path)).iter(etree.Element)
        if etree.QName(e).localname in CITY_OBJECTS
    }


def _wfs_answer(tmp_path: Path, *members: bytes) -> Path:
    body = b"".join(b"<wfs:member>" + m + b"</wfs:member>" for m in members)
    path = tmp_path / "getfeature.xml"
    path.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection '
        + WFS.format(n=len(members)).encode()
        + b">"
        + body
        + b"</wfs:FeatureCollection>"
    )
    return path


def _ingest(capsys, path: Path, tmp_path: Path) -> tuple[int, str]:
    code = cli.main(["ingest", str(path), "--source", "w", "--lake", str(tmp_path / "lake")])
    return code, capsys.readouterr().err


def _source_ids(read_lake) -> set[str]:
    """The source ids of the rows `_ingest` wrote (source "w")."""
    return set(read_lake("w").column("source_id").to_pylist())


def test_a_city_model_in_a_wfs_member_is_read_as_its_city_objects(tmp_path, capsys, read_lake):
    """3DCityDB's WFS answer: each city object a row, as in the CityModel alone (it was one
    row of no geometry, and nothing in rejects)."""
    path = _wfs_answer(tmp_path, _model(LOD2))
    assert detect(path).name == "citygml"
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _source_ids(read_lake) == _ids(LOD2)
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT geometry IS NOT NULL FROM read_parquet('{files}') WHERE source_id = ?"
    assert duckdb.execute(query, [BUILDING]).fetchall() == [(True,)]


def test_city_models_in_several_wfs_members_are_all_read(tmp_path, capsys, read_lake):
    path = _wfs_answer(tmp_path, _model(LOD2), _model(GARAGE))
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _source_ids(read_lake) == _ids(LOD2, GARAGE)


def test_a_city_model_in_an_envelope_of_its_own_is_read(tmp_path, capsys, read_lake):
    """An export's envelope that holds the CityModel only: read (it was "not a format
    citypipe reads")."""
    path = tmp_path / "export.gml"
    path.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<export xmlns="urn:x-example:export">'
        + _model(LOD2)
        + b"</export>"
    )
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _source_ids(read_lake) == _ids(LOD2)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_wrapper_holding_more_than_city_models_is_refused_naming_it(where, tmp_path, capsys):
    """Another feature beside the CityModel: one line naming it, the previous output kept."""
    other = b'<app:Parcel xmlns:app="urn:x-example:app"><app:area>12</app:area></app:Parcel>'
    members = (other, _model(LOD2)) if where == "before" else (_model(LOD2), other)
    path = _wfs_answer(tmp_path, *members)
    code, err = _ingest(capsys, path, tmp_path)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"citypipe: error: {path}: ")
    assert "{urn:x-example:app}Parcel" in line and "CityModel" in line
    assert not (tmp_path / "lake" / "features").exists()


ENVELOPE = (
    b'<gml:boundedBy xmlns:gml="http://www.opengis.net/gml"><gml:Envelope srsDimension="3" '
    b'srsName="urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783"><gml:lowerCorner>458868 5438343 '
    b"112</gml:lowerCorner><gml:upperCorner>458892 5438362 117</gml:upperCorner></gml:Envelope>"
    b"</gml:boundedBy>"
)
"""The LOD2 sample's CityModel envelope (its CRS), as the collection's own."""


@pytest.mark.parametrize(
    ("collection", "member"),
    [
        (b'xmlns:wfs="http://www.opengis.net/wfs/2.0" numberReturned="1"', b"wfs:member"),
        (b'xmlns:wfs="http://www.opengis.net/wfs" numberOfFeatures="1"', b"gml:featureMember"),
    ],
    ids=["wfs 2.0", "wfs 1.1"],
)
def test_city_objects_as_a_wfs_answer_s_members_are_read_as_city_gml(
    collection, member, tmp_path, capsys, read_lake
):
    """3DCityDB's WFS answers with the city objects themselves as members: read as a
    CityModel's, the building's lod2Solid finds the surfaces it refers to (the WFS reader
    rejected it: "xlink:href ... defined nowhere")."""
    building = next(etree.parse(str(LOD2)).iter("{*}Building"))
    tag = member.decode()
    path = tmp_path / "getfeature.xml"
    path.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection '
        + collection
        + b' xmlns:gml="http://www.opengis.net/gml">'
        + ENVELOPE
        + f"<{tag}>".encode()
        + etree.tostring(building)
        + f"</{tag}>".encode()
        + b"</wfs:FeatureCollection>"
    )
    assert detect(path).name == "citygml"
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _source_ids(read_lake) == {
        e.get(GML_ID)
        for e in building.iter(etree.Element)
        if etree.QName(e).localname in CITY_OBJECTS
    }
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT geometry IS NOT NULL FROM read_parquet('{files}') WHERE source_id = ?"
    assert duckdb.execute(query, [BUILDING]).fetchall() == [(True,)]


def test_a_city_model_held_as_a_member_has_its_objects_read(tmp_path, capsys, read_lake):
    """A CityModel in another's cityObjectMember (no CityObject, but written so): its objects
    are rows as the outer model's are (it was one row of no geometry, its objects lost)."""
    outer = LOD2.read_text(encoding="utf-8")
    inner = etree.tostring(etree.parse(str(GARAGE)).getroot()).decode()
    at = outer.index("<cityObjectMember>")
    path = tmp_path / "nested.gml"
    path.write_text(
        outer[:at] + f"<cityObjectMember>{inner}</cityObjectMember>" + outer[at:],
        encoding="utf-8",
    )
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _source_ids(read_lake) == _ids(LOD2, GARAGE)


@pytest.mark.parametrize("depth", [0, 2])
def test_each_member_is_handed_over_whole(tmp_path, depth):
    """model_members hands a member over once the parse is past its end (the next member's
    start, or the document's end): every member of the model, nested model and wrapper alike,
    is the whole element lxml parses in one go (without comments, as the reader parses), in
    document order."""
    outer = LOD2.read_text(encoding="utf-8")
    inner = etree.tostring(etree.parse(str(GARAGE)).getroot()).decode()
    at = outer.index("<cityObjectMember>")
    nested = outer[:at] + f"<cityObjectMember>{inner}</cityObjectMember>" + outer[at:]
    path = tmp_path / "members.gml"
    if depth:
        model = etree.tostring(etree.fromstring(nested.encode()))
        _wfs_answer(tmp_path, model, model).rename(path)
    else:
        path.write_text(nested, encoding="utf-8")
    parser = etree.XMLParser(remove_comments=True, remove_pis=True)
    whole = etree.parse(str(path), parser).getroot()
    models = [whole] if not depth else [m[0] for m in whole]
    expected = [
        etree.tostring(member)
        for model in models
        for member in model.iterchildren(etree.Element)
        if etree.QName(member).localname in MEMBERS
    ]
    assert len(expected) == (2 if depth else 1) * (outer.count("<cityObjectMember>") + 1)
    with path.open("rb") as f:
        handed = [etree.tostring(m) for _, m in model_members(f, huge_tree=False, depth=depth)]
    assert handed == expected
