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
from citypipe.connectors import cityjson_values

LOD2 = SAMPLES / "citygml" / "sig3d_v2_Building_LOD2-EPSG25832.gml"
V3 = SAMPLES / "citygml" / "Building_CityGML3.0_LOD2_with_several_attributes.gml"
GEN2 = 'xmlns:gen="http://www.opengis.net/citygml/generics/2.0" xmlns:bldg='
GML_ID = "{http://www.opengis.net/gml}id"
GML32_ID = "{http://www.opengis.net/gml/3.2}id"


def _ingest(capsys, path: Path, tmp_path: Path, *more: str) -> tuple[int, str]:
    lake = str(tmp_path / "lake")
    code = cli.main(["ingest", str(path), "--source", "v", "--lake", lake, *more])
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


MULTI_LOD = SAMPLES / "cityjson" / "3dbag_multi_lod_v2.0.city.json"


STATUS = 'earlier copy: "]]] {' + "\\"
"""The earlier object's status: brackets and quotes in a string are not the document's."""


def _with_pairs(model: dict, pairs: list[tuple[str, dict]]) -> str:
    """The document's JSON text with CityObjects written as `pairs` (a key may repeat)."""
    objects = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs)
    rest = {k: v for k, v in model.items() if k != "CityObjects"}
    return json.dumps(rest)[:-1] + f', "CityObjects": {{{objects}}}}}'


@pytest.mark.parametrize("lift", [True, False], ids=["lifted", "not-lifted"])
@pytest.mark.parametrize("geometry", [True, False], ids=["with-geometry", "attributes-only"])
def test_a_city_object_id_given_twice_rejects_the_earlier_naming_it(
    tmp_path, capsys, monkeypatch, geometry, lift
):
    """JSON parsers keep the last of two members of one name (orjson, cjio's json.load), so
    the first object was lost unsaid: it goes to rejects naming its id, the last is read;
    an earlier one without geometry too, with the compiled lift or without it."""
    if not lift:
        monkeypatch.setattr(cityjson_values, "lifting", None)
    model = json.loads(MULTI_LOD.read_text(encoding="utf-8"))
    pairs = list(model["CityObjects"].items())
    key, first = pairs[0]
    earlier = json.loads(json.dumps(first))
    earlier["attributes"]["status"] = STATUS
    if not geometry:
        del earlier["geometry"]
    path = tmp_path / "twice.city.json"
    path.write_text(_with_pairs(model, [(key, earlier), *pairs]), encoding="utf-8")
    code, err = _ingest(capsys, path, tmp_path, "--crs", "EPSG:7415")  # 3DBAG's: RD New + NAP
    assert (code, err) == (0, "")
    rejects = str(tmp_path / "lake" / "rejects" / "*" / "*.parquet")
    [(sid, reason, record)] = duckdb.sql(
        f"SELECT source_id, reason, record FROM read_parquet('{rejects}')"
    ).fetchall()
    assert sid == key and repr(key) in reason and "given again" in reason
    assert json.loads(record)[key]["attributes"]["status"] == STATUS
    assert _properties(tmp_path, key)["status"] == first["attributes"]["status"]
    files = str(tmp_path / "lake" / "features" / "*" / "*.parquet")
    [(count,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall()
    assert count == len(model["CityObjects"])


def test_a_city_json_seq_in_latin_1_is_read_in_its_code_page_with_a_warning(tmp_path, capsys):
    """A stream's lines in one code page are read as a document's text is (json_code_page),
    said once; each line was rejected as "not valid JSON (truncated?)"."""
    lines = (SAMPLES / "cityjson" / "3dbag_b2.city.jsonl").read_text(encoding="utf-8").split("\n")
    feature = json.loads(lines[1])
    key = next(iter(feature["CityObjects"]))
    feature["CityObjects"][key].setdefault("attributes", {})["naam"] = "Gebäude"
    lines[1] = json.dumps(feature, ensure_ascii=False)
    path = tmp_path / "latin1.city.jsonl"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    lake = str(tmp_path / "lake")
    code = cli.main(["ingest", str(path), "--source", "v", "--lake", lake])
    said = capsys.readouterr()
    assert (code, said.err) == (0, "")
    assert "not UTF-8, as JSON must be: its text is read as" in said.out
    assert _properties(tmp_path, key)["naam"] == "Gebäude"
    rejects = tmp_path / "lake" / "rejects"
    assert not list(rejects.glob("*/*.parquet")) or duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{rejects}/*/*.parquet')"
    ).fetchone() == (0,)
