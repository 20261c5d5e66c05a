"""The CityGML reader's parses: a small document's members parsed whole are those a large
one's streamed parse hands over, its header read from that parse, which its read then walks,
and no parse leaves a reference cycle behind: lxml's push
parser and the document it parses keep each other (iterparse's cycle), so a tree the reader
let go of waited for the cycle collector; the parsers are made to let go of their documents,
so a tree is freed as soon as nothing holds it, whether its parse ended, stopped part way or
failed."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from conftest import SAMPLES
from lxml import etree

from citypipe.connectors import citygml, citygml_header
from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_header import model_members, read_header

SAMPLE = SAMPLES / "citygml" / "BuildingUnits_Storeys_xlink.gml"


@pytest.fixture(params=["whole", "mapped", "streamed"])
def parse(request, monkeypatch) -> str:
    """Each test run with the sample parsed whole (read, or from the file mapped, as a document
    of 512 kB or more is), and streamed (as a large document is)."""
    if request.param == "mapped":
        monkeypatch.setattr(citygml_header, "MAPPED_FROM", 0)
    if request.param == "streamed":
        monkeypatch.setattr(citygml_header, "WHOLE_BYTES", 0)
    return str(request.param)


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cycle collector off, what was unreachable before collected."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("name", ["BuildingUnits_Storeys_xlink.gml", "denhaag_1BwBP_citygml1.gml"])
@pytest.mark.parametrize("blanks", [True, False])
def test_a_document_parsed_whole_hands_over_the_members_streamed(monkeypatch, name, blanks):
    """The members parsed whole, read or from the file mapped, are the CityModel's children of
    a member's name, each as the streamed parse hands it over (the same XML, comments and
    blanks dropped alike); the file is read to its end either way."""
    path = SAMPLES / "citygml" / name

    def handed() -> list[tuple[str, bytes]]:
        with path.open("rb") as f:
            members = model_members(f, huge_tree=False, blanks=blanks)
            found = [(model.tag, etree.tostring(m)) for model, m in members]
            assert f.tell() == path.stat().st_size
            return found

    whole = handed()
    monkeypatch.setattr(citygml_header, "MAPPED_FROM", 0)
    mapped = handed()
    monkeypatch.setattr(citygml_header, "WHOLE_BYTES", 0)
    root = etree.parse(str(path)).getroot()
    assert len(whole) == sum(1 for c in root if etree.QName(c).localname.endswith("Member"))
    assert whole == mapped == handed()


@pytest.mark.parametrize(
    "path", sorted((SAMPLES / "citygml").glob("*.gml")), ids=lambda path: path.name
)
def test_a_small_document_is_parsed_once_for_its_header_and_its_members(monkeypatch, path):
    """A document the read parses whole in this process is parsed once: the header is read
    from that tree, and the read walks it (neither the header's parse of the first kB nor
    the members' parse runs); the header and the batches (ids, properties, the records'
    XML) are those of the header's own parse and a streamed parse of the members."""

    def read() -> tuple[citygml_header.Header, list[tuple[object, ...]]]:
        connector = CityGMLConnector(path, split_bytes=0)
        batches = [(b.source_ids, b.properties, list(b.records)) for b in connector.read()]
        return connector.header, batches

    def unasked(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(citygml, "read_header", unasked)
        patched.setattr(citygml, "model_members", unasked)
        once = read()
    monkeypatch.setattr(citygml_header, "WHOLE_BYTES", 0)  # the header's parse, then streamed
    assert once == read()
    assert once[0] == read_header(path)


def test_a_file_that_cannot_be_mapped_is_read(monkeypatch):
    """A file system that maps no files (mmap refuses): the document is read instead."""

    def refused(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(citygml_header, "MAPPED_FROM", 0)
    monkeypatch.setattr(citygml_header.mmap, "mmap", refused)
    root = etree.parse(str(SAMPLE)).getroot()
    assert _members(SAMPLE) == sum(1 for c in root if etree.QName(c).localname.endswith("Member"))


def _members(path: Path, count: int | None = None) -> int:
    """The members model_members hands over (the first `count` only: then it is closed)."""
    with path.open("rb") as f:
        members = model_members(f, huge_tree=False, blanks=False)
        handed = list(islice(members, count))
        members.close()
    return len(handed)


def test_the_header_read_leaves_no_cycle(no_collector):
    read_header(SAMPLE)
    assert gc.collect() == 0


@pytest.mark.parametrize("count", [None, 1])
def test_the_members_parse_leaves_no_cycle(parse, no_collector, count):
    assert _members(SAMPLE, count) >= 1
    assert gc.collect() == 0


def test_a_document_cut_short_leaves_no_cycle(parse, no_collector, tmp_path):
    text = SAMPLE.read_bytes()
    cut = tmp_path / "cut.gml"
    cut.write_bytes(text[: len(text) * 2 // 3])
    try:
        _members(cut)
    except etree.XMLSyntaxError:
        pass  # not kept: its traceback holds the parse's frames
    else:
        pytest.fail("a document cut short was parsed")
    assert gc.collect() == 0


def test_a_property_is_named_by_the_prefix_its_document_binds(tmp_path):
    """Property kinds are remembered for the process, but a property of a namespace neither
    CityGML's nor GML's is named `prefix:name` with the prefix each document binds."""
    text = (SAMPLES / "citygml" / "sig3d_v2_Building_LOD1-EPSG25832.gml").read_text("utf-8")
    opening = '<bldg:Building gml:id="GML_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68">'
    assert opening in text
    for prefix in ("a", "b"):  # one process, one namespace
        path = tmp_path / f"{prefix}.gml"
        extra = f'<{prefix}:usage xmlns:{prefix}="http://example.org/ade">shop</{prefix}:usage>'
        path.write_text(text.replace(opening, opening + extra), "utf-8")
        (batch,) = CityGMLConnector(path, split_bytes=0).read()
        assert batch.properties[0][f"{prefix}:usage"] == "shop"
