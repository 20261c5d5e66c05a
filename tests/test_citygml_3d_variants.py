"""CityGML (and CityJSON) variants a new user meets: bundled samples with one thing changed.

Each variant is made from a sample by editing its text (never the corpus); what a test expects
is read from the variant with lxml or from the MANIFEST, never from citypipe's output. Exit 0
reads every object right; exit 2 is one line naming the file and why; nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from conftest import SAMPLES
from lxml import etree

from citypipe import cli

LOD2 = SAMPLES / "citygml" / "sig3d_v2_Building_LOD2-EPSG25832.gml"
ENVELOPE = '<gml:Envelope srsDimension="3"'


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = LOD2.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.gml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _ingest(capsys, path: Path, tmp_path: Path) -> tuple[int, str]:
    code = cli.main(["ingest", str(path), "--source", "v", "--lake", str(tmp_path / "lake")])
    return code, capsys.readouterr().err


def _corner_numbers(path: Path) -> set[int]:
    """How many numbers each corner of the CityModel's envelope holds."""
    envelope = next(etree.parse(str(path)).iter("{http://www.opengis.net/gml}Envelope"))
    return {len(corner.text.split()) for corner in envelope}


def _mean_corner(tmp_path: Path) -> tuple[float, float]:
    """The mean south-west corner of the features' boxes, read by plain DuckDB."""
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT avg(bbox.xmin), avg(bbox.ymin) FROM read_parquet('{files}')"
    return duckdb.sql(query).fetchone()


def test_an_envelope_whose_dimension_its_corners_contradict_refuses_the_source(tmp_path, capsys):
    """srsDimension 2 over 3D positions read them in pairs: the TIN's triangles once landed
    in the Gulf of Guinea. Which count the positions have is unknown: refused, one line."""
    path = _variant(tmp_path, ENVELOPE, '<gml:Envelope srsDimension="2"')
    assert _corner_numbers(path) == {3}
    code, err = _ingest(capsys, path, tmp_path)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"citypipe: error: {path}: ")
    assert "srsDimension '2'" in line and "3 numbers" in line


def test_an_envelope_without_srs_dimension_reads_its_3d_positions(tmp_path, capsys):
    """Undeclared, the dimension is 3, as its corners and positions are."""
    path = _variant(tmp_path, ENVELOPE, "<gml:Envelope")
    assert _corner_numbers(path) == {3}
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    lon, lat = _mean_corner(tmp_path)
    assert abs(lon - 8.437) < 0.01 and abs(lat - 49.097) < 0.01


@pytest.mark.parametrize(
    "srs_name",
    [
        "EPSG:25832",
        "urn:ogc:def:crs:EPSG::25832",
        "http://www.opengis.net/def/crs/EPSG/0/25832",
        "urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::7837",
        "http://www.opengis.net/gml/srs/epsg.xml#25832",
    ],
)
def test_every_spelling_of_utm_32_lands_the_building_in_eggenstein(srs_name, tmp_path, capsys):
    """The sample's address: Hermann-von-Helmholtz-Platz 1, Eggenstein-Leopoldshafen (KIT
    Campus North), near 8.437 E, 49.097 N."""
    path = _variant(
        tmp_path,
        'srsName="urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783"',
        f'srsName="{srs_name}"',
    )
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    lon, lat = _mean_corner(tmp_path)
    assert abs(lon - 8.437) < 0.01 and abs(lat - 49.097) < 0.01


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf_16_without_a_bom_is_read_by_its_declaration(codec, tmp_path, capsys):
    """XML 1.0 (appendix F) finds UTF-16 without a BOM by its declaration's first bytes, as
    libxml2 does; the sniffers were shown them as they are and refused the file as JSON."""
    name = "Gebäude Straße Ørsted"
    text = LOD2.read_text(encoding="utf-8")
    text = text.replace('encoding="utf-8"', f'encoding="{codec.upper()}"', 1)
    path = tmp_path / "wide.gml"
    path.write_bytes(text.replace("Example Building LOD2 ", name, 1).encode(codec))
    assert path.read_bytes()[:4] in (b"<\x00?\x00", b"\x00<\x00?")
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    names = {n for (n,) in duckdb.sql(f"SELECT name FROM read_parquet('{files}')").fetchall()}
    assert name in names


def test_a_city_json_in_latin_1_is_read_in_its_code_page_with_a_warning(tmp_path, capsys):
    """JSON is UTF-8 (RFC 8259), but a Latin-1 "Gebäude" throughout is read in its code page
    with a warning, as a GeoJSON file or a service's answer is (connectors/json_code_page.py):
    it was refused, where GeoJSON was read."""
    sample = SAMPLES / "cityjson" / "rotterdam_one_v1.1.city.json"
    model = json.loads(sample.read_text(encoding="utf-8"))
    key = next(iter(model["CityObjects"]))
    model["CityObjects"][key].setdefault("attributes", {})["naam"] = "Gebäude"
    path = tmp_path / "latin1.city.json"
    path.write_bytes(json.dumps(model, ensure_ascii=False).encode("latin-1"))
    code = cli.main(["ingest", str(path), "--source", "v", "--lake", str(tmp_path / "lake")])
    said = capsys.readouterr()
    assert (code, said.err) == (0, "")
    assert "not UTF-8, as JSON must be: its text is read as" in said.out
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT properties FROM read_parquet('{files}') WHERE source_id = ?"
    [(properties,)] = duckdb.execute(query, [key]).fetchall()
    assert json.loads(properties)["naam"] == "Gebäude"


def test_a_city_json_neither_utf_8_nor_in_one_code_page_is_refused_in_one_line(tmp_path, capsys):
    """UTF-8 with a stray Latin-1 byte is no code page throughout: refused as not UTF-8, in
    one line, not as a document truncated at byte 0."""
    sample = SAMPLES / "cityjson" / "rotterdam_one_v1.1.city.json"
    model = json.loads(sample.read_text(encoding="utf-8"))
    model["metadata"]["title"] = "Straße"
    data = json.dumps(model, ensure_ascii=False).encode("utf-8")
    path = tmp_path / "mixed.city.json"
    path.write_bytes(data.replace("Straße".encode(), "Straße".encode() + b" \xe4", 1))
    code, err = _ingest(capsys, path, tmp_path)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"citypipe: error: {path}: ") and "not UTF-8" in line
    assert "truncated" not in line


def test_surfaces_referencing_each_other_reject_their_object_as_cyclic(tmp_path, capsys):
    """Two CompositeSurfaces that are each other's only member hold no polygon: the building
    goes to rejects naming both ids and the cycle (they are defined, in this very object)."""
    block = (
        "<bldg:lod3MultiSurface><gml:MultiSurface>"
        '<gml:surfaceMember><gml:CompositeSurface gml:id="A">'
        '<gml:surfaceMember xlink:href="#B"/></gml:CompositeSurface></gml:surfaceMember>'
        '<gml:surfaceMember><gml:CompositeSurface gml:id="B">'
        '<gml:surfaceMember xlink:href="#A"/></gml:CompositeSurface></gml:surfaceMember>'
        "</gml:MultiSurface></bldg:lod3MultiSurface><bldg:lod2Solid>"
    )
    path = _variant(tmp_path, "<bldg:lod2Solid>", block)
    building = next(etree.parse(str(path)).iter("{*}Building"))
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    rejects = str(tmp_path / "lake" / "rejects" / "*" / "*.parquet")
    [(sid, reason)] = duckdb.sql(
        f"SELECT source_id, reason FROM read_parquet('{rejects}')"
    ).fetchall()
    assert sid == building.get("{http://www.opengis.net/gml}id")
    assert "'A', 'B'" in reason and "cyclic" in reason


def test_geometry_of_gml_3_2_in_a_citygml_2_document_is_rejected_naming_it(tmp_path, capsys):
    """CityGML 2.0 is GML 3.1 (http://www.opengis.net/gml); a writer that binds the gml
    prefix to GML 3.2 makes every geometry another GML's: each object with one is a reject
    whose reason names that namespace, not an 'unsupported geometry Solid'."""
    gml31 = 'xmlns:gml="http://www.opengis.net/gml"'
    path = _variant(tmp_path, gml31, 'xmlns:gml="http://www.opengis.net/gml/3.2"')
    code, err = _ingest(capsys, path, tmp_path)
    assert code in (0, 2)
    rejects = str(tmp_path / "lake" / "rejects" / "*" / "*.parquet")
    if code == 0:
        reasons = [
            r for (r,) in duckdb.sql(f"SELECT reason FROM read_parquet('{rejects}')").fetchall()
        ]
        assert reasons and all("http://www.opengis.net/gml/3.2" in r for r in reasons)
    else:
        assert "http://www.opengis.net/gml/3.2" in err


def test_a_generic_attribute_without_a_name_is_kept_under_its_kind(tmp_path, capsys):
    """Every source attribute is kept: one without its name attribute was dropped at the
    top level and keyed "null" in a set."""
    gen = 'xmlns:gen="http://www.opengis.net/citygml/generics/2.0" xmlns:bldg='
    attributes = (
        "<gen:stringAttribute><gen:value>noname</gen:value></gen:stringAttribute>"
        '<gen:genericAttributeSet name="set"><gen:intAttribute><gen:value>1</gen:value>'
        "</gen:intAttribute></gen:genericAttributeSet><bldg:yearOfConstruction>"
    )
    text = LOD2.read_text(encoding="utf-8").replace("xmlns:bldg=", gen, 1)
    path = tmp_path / "generics.gml"
    path.write_text(text.replace("<bldg:yearOfConstruction>", attributes, 1), encoding="utf-8")
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT properties FROM read_parquet('{files}') WHERE name LIKE 'Example Building%'"
    [(properties,)] = duckdb.sql(query).fetchall()
    assert json.loads(properties)["stringAttribute"] == "noname"
    assert json.loads(properties)["set"] == {"intAttribute": 1}
