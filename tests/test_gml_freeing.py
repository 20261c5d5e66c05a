"""A CityModel's first members removed, their freeing left to a thread (gml_freeing): the
tree keeps the members after them, as `del model[:n]` would; members that Python still reaches
(a proxy inside one) or that hold an xml:id are deleted as lxml does, and that proxy stays
whole. What walked members hold is freed the same way (`hollow`), the members left empty.
Munich's 111 buildings (its file read whole by lxml gives the expected ids)."""

from __future__ import annotations

import ctypes.util
import gc
import sys

import mallinfo
import numpy as np
import pytest
import shapely
from conftest import CORPUS
from lxml import etree

from citypipe.connectors import gml_freeing
from citypipe.connectors.gml_compiled import compiled

FILE = CORPUS / "citygml" / "munich_LOD2_4424_5482_solid_citygml1.gml"
GML_ID = "{http://www.opengis.net/gml}id"


def _ids(model) -> list[str | None]:
    return [member[0].get(GML_ID) if len(member) else None for member in model]


def _model():
    return etree.parse(str(FILE)).getroot()


def test_the_members_after_the_removed_ones_stay() -> None:
    expected = _ids(_model())
    assert len(expected) > 100
    model = _model()
    first = len(model) - 111  # the model's own children (name, boundedBy) before its members
    assert compiled is not None and compiled.detach(model, first + 10) is not None
    gml_freeing.remove(model, 40)  # freed by the thread
    gml_freeing.remove(model, 1)
    assert _ids(model) == expected[first + 10 + 41 :]
    gml_freeing.remove(model, len(model))  # all of them
    assert len(model) == 0
    model.append(etree.Element("x"))  # the tree still takes children
    assert [c.tag for c in model] == ["x"]


def test_members_python_reaches_or_with_an_xml_id_are_deleted_by_lxml() -> None:
    model = _model()
    first = len(model) - 111
    expected = _ids(model)[first:]
    kept = model[first + 2][0]  # a building of the third member, still held
    surface = kept.find(".//{*}Polygon")
    assert compiled is not None and compiled.detach(model, first + 3) is None
    gml_freeing.remove(model, first + 3)
    assert _ids(model) == expected[3:]
    assert kept.get(GML_ID) == expected[2] and surface.getparent() is not None
    model[0].set("{http://www.w3.org/XML/1998/namespace}id", "kept")
    reparsed = etree.fromstring(etree.tostring(model))  # the xml:id now in the ID table
    assert compiled.detach(reparsed, 1) is None
    assert compiled.detach(reparsed, 2) is None
    assert compiled.detach(reparsed, 0) is None  # nothing to remove


def test_the_document_outlives_the_members_waiting_to_be_freed() -> None:
    """Freeing reads the document's string dictionary: the detached members hold the tree
    (the reader may drop it, the last batch read, while the thread still frees)."""
    model = _model()
    expected = _ids(model)
    held = sys.getrefcount(model)
    assert compiled is not None
    detached = compiled.detach(model, len(model) - 1)
    assert detached is not None and sys.getrefcount(model) == held + 1
    del model
    gc.collect()
    detached.free()  # the document is still there: no use after free
    del detached
    assert _ids(_model()) == expected  # the parser's dictionary serves the next document


def test_a_library_without_xml_free_node_gives_no_address() -> None:
    """An lxml built without exporting xmlFreeNode (here libm, or a file that is no library)
    leaves the freeing off (detach answers None) rather than failing the module's import; lxml's
    own module exports it. The None of `detach` then is not reached here: the address is taken
    once, when the compiled module is imported."""
    assert compiled is not None
    assert compiled._free_node_address(etree.__file__) != 0
    assert compiled._free_node_address(ctypes.util.find_library("m")) == 0
    assert compiled._free_node_address(str(FILE)) == 0


def test_hollowed_members_stay_empty_with_their_attributes() -> None:
    """What walked members hold is freed apart; the members stay (records locate by them),
    empty, their attributes kept, and those before `start` whole."""
    model = _model()
    first = len(model) - 111
    expected = _ids(model)
    members = list(model)  # proxies, as a batch's records hold them
    attributes = [dict(m.attrib) for m in members]
    assert compiled is not None
    detached = compiled.hollow(model, first + 100)
    assert detached is not None
    assert _ids(model) == expected[: first + 100] + [None] * 11
    assert [len(m) for m in members[first + 100 :]] == [0] * 11
    assert [m.text for m in members[first + 100 :]] == [None] * 11
    assert [dict(m.attrib) for m in members] == attributes
    del model
    gc.collect()
    detached.free()  # the document is still there: no use after free
    assert etree.tostring(members[-1], with_tail=False).endswith(b"/>")
    assert compiled.hollow(members[0].getparent(), len(members)) is None  # nothing to free


def test_members_python_reaches_inside_are_not_hollowed() -> None:
    model = _model()
    expected = _ids(model)
    kept = model[-1][0].find(".//{*}Polygon")  # a surface of the last member, still held
    assert compiled is not None and compiled.hollow(model, 0) is None
    gml_freeing.hollow(model, 0)
    assert _ids(model) == expected and kept.getparent() is not None


def test_a_read_hollows_its_tree_and_reads_the_same(monkeypatch) -> None:
    """Munich read with its members hollowed once walked, and left whole: the same batches
    (ids, geometry, properties, a record's XML read again from the file)."""
    from citypipe.connectors import citygml, registry

    def read() -> list:
        connector = registry.open_location(FILE, None)
        return [
            (b.source_ids, shapely.to_wkb(np.asarray(b.solids.built().geometry_3d)).tolist(),
             b.properties, b.records[0], b.records[len(b) - 1])
            for b in connector.read()
        ]  # fmt: skip

    hollow, emptied = gml_freeing.hollow, []

    def hollowed(model, start: int) -> None:
        hollow(model, start)
        emptied.append(len(model[-1]))  # the last member: empty once hollowed

    monkeypatch.setattr(citygml.gml_freeing, "hollow", lambda model, start: None)
    whole = read()
    monkeypatch.setattr(citygml.gml_freeing, "hollow", hollowed)
    assert read() == whole and emptied == [0]


@pytest.mark.skipif(mallinfo.libc() is None, reason="glibc 2.33 or later")
def test_a_hollowing_frees_with_fast_bins_off_and_leaves_them_on() -> None:
    """Munich's members hollowed: nothing of theirs waits in glibc's fast bins unmerged, and
    small blocks freed afterwards go to them again (glibc's default)."""
    libc = mallinfo.libc()
    assert libc is not None
    model = _model()
    binned = mallinfo.in_fast_bins(libc)  # other threads' arenas may hold some: not ours
    gml_freeing.hollow(model, len(model) - 111)
    assert mallinfo.in_fast_bins(libc) <= binned  # every node freed merged, none left binned
    assert mallinfo.fast_binned(libc) > 0
