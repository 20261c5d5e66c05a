"""The CityGML parses let go of their documents: a parsed tree is freed when nothing holds an
element of it, not left to the cycle collector (which an ingest pauses, and which runs by the
count of objects made: trees of several ingests were held at once)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES

from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_header import model_members, read_header
from citypipe.geo.errors import DataError

SAMPLE = SAMPLES / "citygml" / "denhaag_1BwBP_citygml1.gml"


def _documents() -> int:
    """lxml documents alive, whether held or garbage the collector has not freed yet."""
    return sum(type(o).__name__ == "_Document" for o in gc.get_objects())


def _no_document_left(read: Callable[[], object]) -> None:
    gc.collect()
    gc.disable()
    try:
        before = _documents()
        read()
        assert _documents() == before
    finally:
        gc.enable()


def _members(path: Path) -> Iterator[object]:
    with open(path, "rb") as f:
        for _, member in model_members(f, huge_tree=False):
            yield member.tag


def test_the_members_document_is_freed_after_the_read():
    _no_document_left(lambda: list(_members(SAMPLE)))


def test_a_read_stopped_early_frees_its_document():
    def first() -> None:
        members = _members(SAMPLE)
        next(members)
        members.close()

    _no_document_left(first)


def test_the_header_read_frees_its_document():
    _no_document_left(lambda: read_header(SAMPLE))


def test_a_whole_read_by_the_connector_frees_its_documents():
    def whole() -> None:
        connector = CityGMLConnector(SAMPLE, split_bytes=0)
        connector.inspect()
        assert sum(len(b) for b in connector.read())

    _no_document_left(whole)


def test_a_document_cut_short_frees_its_document(tmp_path):
    cut = tmp_path / "cut.gml"
    cut.write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size * 2 // 3])

    def read() -> None:
        with pytest.raises(DataError, match="not well-formed"):
            list(CityGMLConnector(cut, split_bytes=0).read())

    _no_document_left(read)
