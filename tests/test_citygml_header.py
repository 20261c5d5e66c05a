"""The CityGML reader's parses leave no reference cycle behind: lxml's push parser and the
document it parses keep each other (iterparse's cycle), so a tree the reader let go of waited
for the cycle collector; the parsers are made to let go of their documents, so a tree is freed
as soon as nothing holds it, whether its parse ended, stopped part way or failed."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from conftest import SAMPLES
from lxml import etree

from citypipe.connectors.citygml_header import model_members, read_header

SAMPLE = SAMPLES / "citygml" / "BuildingUnits_Storeys_xlink.gml"


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cycle collector off, what was unreachable before collected."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
def test_the_members_parse_leaves_no_cycle(no_collector, count):
    assert _members(SAMPLE, count) >= 1
    assert gc.collect() == 0


def test_a_document_cut_short_leaves_no_cycle(no_collector, tmp_path):
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
