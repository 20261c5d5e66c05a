"""Values of 3D city objects a new user meets at the edges: empty generic attributes,
duplicated CityObject ids.

Each variant is made from a bundled sample by editing its text or JSON (never the corpus);
what a test expects is read from the variant, never from citypipe's output. Exit 0 keeps every
value the source holds; what cannot be read goes to rejects with its reason.
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
V3 = SAMPLES / "citygml" / "Building_CityGML3.0_LOD2_with_several_attributes.gml"
GEN2 = 'xmlns:gen="http://www.opengis.net/citygml/generics/2.0" xmlns:bldg='
GML_ID = "{http://www.opengis.net/gml}id"
GML32_ID = "{http://www.opengis.net/gml/3.2}id"


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch):
    """No progress line on stderr where a loaded machine makes an ingest take 10 s: stderr
    holds what the user is told is wrong, and nothing else."""
    monkeypatch.setenv("CITYPIPE_PROGRESS_SECONDS", "0")


def _ingest(capsys, path: Path, tmp_path: Path) -> tuple[int, str]:
    code = cli.main(["ingest", str(path), "--source", "v", "--lake", str(tmp_path / "lake")])
    return code, capsys.readouterr().err


def _properties(tmp_path: Path, source_id: str) -> dict:
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    query = f"SELECT properties FROM read_parquet('{files}') WHERE source_id = ?"
    [(properties,)] = duckdb.execute(query, [source_id]).fetchall()
    return json.loads(properties)


def test_citygml_2_generic_attributes_with_empty_values_are_kept(tmp_path, capsys):
    """An empty gen:value of a string is "" (as 3DCityDB and citygml4j keep it); of a number,
    or no gen:value at all, null: the attribute is there either way (all were dropped)."""
    attributes = (
        '<gen:stringAttribute name="Bemerkung"><gen:value></gen:value></gen:stringAttribute>'
        '<gen:stringAttribute name="Kennung"><gen:value>  </gen:value></gen:stringAttribute>'
        '<gen:intAttribute name="Geschosse"><gen:value/></gen:intAttribute>'
        '<gen:doubleAttribute name="Traufhoehe"/><bldg:yearOfConstruction>'
    )
    text = LOD2.read_text(encoding="utf-8").replace("xmlns:bldg=", GEN2, 1)
    path = tmp_path / "empty.gml"
    path.write_text(text.replace("<bldg:yearOfConstruction>", attributes, 1), encoding="utf-8")
    building = next(etree.parse(str(path)).iter("{*}Building")).get(GML_ID)
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    properties = _properties(tmp_path, building)
    assert properties["Bemerkung"] == "" and properties["Kennung"] == ""
    assert properties["Geschosse"] is None and properties["Traufhoehe"] is None


def test_citygml_3_generic_attribute_with_an_empty_value_is_kept(tmp_path, capsys):
    text = V3.read_text(encoding="utf-8")
    old = "<gen:value>2014-07-28</gen:value>"
    assert old in text
    path = tmp_path / "empty3.gml"
    path.write_text(text.replace(old, "<gen:value/>", 1), encoding="utf-8")
    building = next(etree.parse(str(path)).iter("{*}Building")).get(GML32_ID)
    code, err = _ingest(capsys, path, tmp_path)
    assert (code, err) == (0, "")
    assert _properties(tmp_path, building)["StandLK"] == ""
