"""A record's XML (what a reject keeps) is its element as the file writes it, blanks and all,
though the walk parses without the blanks between elements: it is made from the document
parsed again (citygml_records.Document), member by member. Expected: lxml's serialisation of
the element with the record's gml:id in the file parsed whole with its blanks. Checked for
every record (any can be rejected), in any batch size and any order of asking (the document
is parsed again from the start when asked for a member before the last), in a nested
CityModel and in a WFS answer's members, a gzipped file too."""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import pytest
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from citypipe.connectors import registry

GARAGE = SAMPLES / "citygml" / "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml"
GML_ID = "{http://www.opengis.net/gml}id"
_PARSER = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False)


def _expected(path: Path) -> dict[str | None, list[str]]:
    """The elements with a gml:id, and the Buildings without (under None), serialised from the
    file parsed whole, blanks kept."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        tree = etree.parse(f, _PARSER)
    found: dict[str | None, list[str]] = {}
    for e in tree.iter(etree.Element):
        if e.get(GML_ID) or etree.QName(e).localname == "Building":
            found.setdefault(e.get(GML_ID), []).append(etree.tostring(e, encoding="unicode"))
    return found


def _asked(path: Path, batch_size: int, order: random.Random | None) -> list[tuple[str, str]]:
    """Every record's (source id, XML), each batch's asked for in document order or shuffled."""
    connector = registry.open_location(path, "citygml", split_bytes=0, batch_size=batch_size)
    asked = []
    for batch in connector.read():
        rows = list(range(len(batch)))
        if order is not None:
            order.shuffle(rows)
        asked += [(batch.source_ids[i], batch.records[i]) for i in rows]
    return asked


def _nested_and_wrapped(tmp_path: Path) -> Path:
    """The sample's members, and two copies of them in a CityModel held as a member (their ids
    prefixed N and M, their Buildings without: each found as the first of its member), twice
    in a WFS answer (the second's ids prefixed W)."""
    text = GARAGE.read_text(encoding="utf-8")
    body = text[text.index("<CityModel") :]
    first, last = body.index("<cityObjectMember>"), body.rindex("</CityModel>")
    members = re.sub(r'(<bldg:Building) gml:id="[^"]*"', r"\1", body[first:last])
    members = "".join(members.replace('gml:id="', f'gml:id="{p}') for p in "NM")
    nested = f"<cityObjectMember>\n  <!-- a comment --><CityModel>{members}</CityModel>"
    model = body[:last] + nested + "</cityObjectMember>\n" + body[last:]
    second = model.replace('gml:id="', 'gml:id="W')
    path = tmp_path / "answer.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection xmlns:wfs='
        '"http://www.opengis.net/wfs/2.0" numberMatched="2" numberReturned="2">\n'
        f"<wfs:member>{model}</wfs:member>\n  <wfs:member>{second}</wfs:member>"
        "</wfs:FeatureCollection>",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("batch_size", [1, 2, 2000])
def test_every_record_s_xml_is_its_element_as_written(batch_size: int) -> None:
    expected = _expected(GARAGE)
    asked = _asked(GARAGE, batch_size, None)
    assert len(asked) == 4
    assert all("\n" in xml for _, xml in asked)  # the blanks between elements are kept
    assert asked == [(sid, *expected[sid]) for sid, _ in asked]


@settings(max_examples=15, deadline=None)
@given(batch_size=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_nested_and_wrapped_records_in_any_batch_and_order(
    tmp_path_factory: pytest.TempPathFactory, batch_size: int, seed: int
) -> None:
    path = _nested_and_wrapped(tmp_path_factory.mktemp("answer"))
    expected = _expected(path)
    asked = _asked(path, batch_size, random.Random(seed))
    ids = [sid for sid, _ in asked if sid is not None]
    assert len(asked) == 24 and len(ids) == len({*ids}) == 20  # 4 records, 8 nested, twice
    assert {sid[:2] for sid in ids} == {"GM", "NG", "MG", "WG", "WN", "WM"}
    assert [(sid, xml) for sid, xml in asked if sid] == [(sid, *expected[sid]) for sid in ids]
    assert sorted(xml for sid, xml in asked if sid is None) == sorted(expected[None])


def test_a_gzipped_file_is_read_again_through_its_archive(tmp_path: Path) -> None:
    path = tmp_path / "garage.gml.gz"
    path.write_bytes(gzip.compress(GARAGE.read_bytes()))
    expected = _expected(path)
    asked = _asked(path, 1, random.Random(1))
    assert len(asked) == 4
    assert asked == [(sid, *expected[sid]) for sid, _ in asked]
