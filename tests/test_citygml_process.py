"""A CityGML file read in a second process lands the same rows as one read in one process:
by ranges of members (citygml_ranges) and by one walk in one child.

The split is forced with a threshold of 1 byte, and small batches make several of them cross the
pipe. The files: Munich (111 buildings whose solids reference their surfaces by xlink), the
versioning example (Version members annotating objects of other members), BuildingUnits_Storeys
(geometry reused between storeys by xlink). A record's XML, which the second process does not
send, is compared with the element lxml finds by its gml:id in the file.
"""

from __future__ import annotations

import math
import os
import pickle
import signal
from collections.abc import Iterator
from fractions import Fraction
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import mallinfo
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import CORPUS, SAMPLES, data_files
from lxml import etree

from citypipe.connectors import citygml_process, citygml_ranges
from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_process import Located
from citypipe.connectors.citygml_records import Record
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import UnavailableError

FILES = [
    CORPUS / "citygml" / "munich_LOD2_4424_5482_solid_citygml1.gml",
    CORPUS / "citygml3" / "historicalSuccession_CityGML_3.0_LOD2_Versioning.gml",
    CORPUS / "citygml3" / "BuildingUnits_Storeys_xlink.gml",
]
RUN_COLUMNS = {"ingested_at", "run_id"}
"""Columns that name the run, not the data."""


def _tables(lake: Lake, source: str) -> dict[str, object]:
    return {
        kind: pq.read_table(data_files(lake.partition(kind, source))[0])
        for kind in ("features", "surfaces")
    }


@pytest.fixture(params=["ranges", "one child"])
def split_by(request, monkeypatch) -> str:
    """The split read by ranges of members where they stand alone (citygml_ranges), or always
    by one walk in one child (the ranges' fallback)."""
    if request.param == "one child":
        monkeypatch.setattr(citygml_ranges, "plan", lambda *a: None)
    else:  # whatever the cores here (two ranges, as two cores would make if they took them)
        monkeypatch.setattr(citygml_ranges, "parts", lambda: 2)
    return request.param


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_two_processes_land_what_one_does(path: Path, tmp_path: Path, split_by: str) -> None:
    lakes = {}
    for split in (0, 1):
        lakes[split] = Lake(tmp_path / str(split))
        ingest(path, "s", lakes[split], validate=False, render_docs=False,
               options={"split_bytes": split, "batch_size": 3})  # fmt: skip
    one, two = _tables(lakes[0], "s"), _tables(lakes[1], "s")
    for kind, table in one.items():
        assert table.num_rows > 0
        assert table.column_names == two[kind].column_names
        for name in set(table.column_names) - RUN_COLUMNS:
            assert table.column(name).equals(two[kind].column(name)), (kind, name)


def test_a_record_xml_is_read_again_from_the_file(monkeypatch) -> None:
    monkeypatch.setattr(citygml_ranges, "plan", lambda *a: None)  # the one child's path
    path = FILES[0]
    gml_id = "{http://www.opengis.net/gml}id"
    by_id = {e.get(gml_id): e for e in etree.parse(str(path)).iter() if e.get(gml_id)}
    batches = list(CityGMLConnector(path, split_bytes=1, batch_size=10).read())
    assert len(batches) > 2
    for batch in batches:
        assert isinstance(batch.records, Located)
        for i in (0, len(batch.records) - 1):
            xml = batch.records[i]
            assert etree.fromstring(xml).get(gml_id) == batch.source_ids[i]
            assert xml == etree.tostring(by_id[batch.source_ids[i]], encoding="unicode")


def test_an_error_in_the_second_process_is_raised_here(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gml"
    text = FILES[0].read_bytes()
    broken.write_bytes(text[: len(text) // 2])  # cut inside a member: not well-formed
    with pytest.raises(Exception, match="broken.gml"):
        list(CityGMLConnector(broken, split_bytes=1).read())


@pytest.mark.parametrize(
    ("cpus", "load", "split"),
    [({0}, 0.2, False), ({0, 1}, 0.2, True), ({0, 1}, 1.5, True), ({0, 1}, 25.0, False)],
)
def test_a_second_process_where_a_second_core_is(monkeypatch, cpus, load, split) -> None:
    """Two cores split a large file while the load is under twice the cores: one process
    busy beside this one is no reason to keep to one."""
    from citypipe.connectors import citygml

    monkeypatch.setattr(citygml, "SPLIT_BYTES", 1)
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    monkeypatch.setattr("os.sched_getaffinity", lambda _: cpus, raising=False)
    batches = list(CityGMLConnector(FILES[2]).read())
    assert all(isinstance(b.records, Located) == split for b in batches)


def test_no_second_process_from_a_daemonic_one(monkeypatch) -> None:
    """A daemonic process (as some pools start) may not start children: it reads the file
    itself, where it would otherwise split it."""
    from citypipe.connectors import citygml

    monkeypatch.setattr(citygml, "SPLIT_BYTES", 1)
    monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1}, raising=False)
    receive, send = get_context("fork").Pipe(duplex=False)
    worker = get_context("fork").Process(target=_split_in, args=(send,), daemon=True)
    worker.start()
    assert receive.recv() == (False, len(_objects(FILES[2])))
    worker.join()
    assert _split_in(None) == (True, len(_objects(FILES[2])))


def _split_in(send) -> tuple[bool, int]:
    """Whether the read went through a second process, and the records it made."""
    batches = list(CityGMLConnector(FILES[2]).read())
    found = (all(isinstance(b.records, Located) for b in batches), sum(map(len, batches)))
    if send is not None:
        send.send(found)
    return found


def _objects(path: Path) -> list[str]:
    """The file's CityObjects that are rows (3.0 Building, Storey, BuildingUnit, BuildingRoom),
    by lxml."""
    rows = {"Building", "Storey", "BuildingUnit", "BuildingRoom"}
    return [e.tag for e in etree.parse(str(path)).iter() if etree.QName(e).localname in rows]


class _TwoArguments(Exception):
    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")  # unpickling calls __init__ with one argument


def test_an_error_that_cannot_cross_the_pipe_arrives_as_its_message() -> None:
    from citypipe.connectors.citygml_process import _picklable
    from citypipe.geo.errors import DataError

    sent = _picklable(_TwoArguments("bad ring", "b1"))
    assert isinstance(sent, DataError) and str(sent) == "_TwoArguments: bad ring at b1"
    kept = DataError("x.gml: not well-formed")
    assert _picklable(kept) is kept


@pytest.mark.parametrize(("option", "split"), [("0", False), ("1", True)])
def test_split_bytes_given_as_text(option: str, split: bool) -> None:
    """A command line gives options as text: "0" reads in one process, as 0 does."""
    batches = list(CityGMLConnector(FILES[2], split_bytes=option).read())
    assert batches
    assert all(isinstance(b.records, Located) == split for b in batches)


def _killed(send, read, released) -> None:
    """The walking child dying after its first batch (as the OOM killer ends one)."""
    citygml_process.serve(send, _then_killed(read, released))


def _then_killed(read, released):
    for raw in read(lambda reader: citygml_process.take(released, reader)):
        yield ("batch", raw)
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_child_that_dies_fails_the_read_in_one_line(monkeypatch) -> None:
    """Not a hang, nor a partial read taken for the whole: one line saying what happened."""
    monkeypatch.setattr(citygml_ranges, "plan", lambda *a: None)  # the one child's path
    monkeypatch.setattr(citygml_process, "_child", _killed)
    path = FILES[0]
    with pytest.raises(UnavailableError, match=rf"{path.name}: the process reading it") as e:
        list(CityGMLConnector(path, split_bytes=1, batch_size=10).read())
    assert "\n" not in str(e.value) and "killed by signal 9" in str(e.value)


def _cut_short(send) -> None:
    """A child killed halfway through writing a batch's message (its length, then its pickle)."""
    message = pickle.dumps(("batch", ["x" * 1000] * 200), protocol=5)
    os.write(
        send.fileno(), citygml_process._LENGTH.pack(len(message)) + message[: len(message) // 2]
    )
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_child_killed_mid_message_fails_the_read_in_one_line() -> None:
    receive, child = citygml_process.start_child(_cut_short)
    try:
        with pytest.raises(UnavailableError, match="the reader ended before it was done") as e:
            list(citygml_process.received(receive, child, "the reader"))
    finally:
        citygml_process.stop(receive, child)
    assert "\n" not in str(e.value) and "killed by signal 9" in str(e.value)


def test_the_bench_tells_each_sides_cpu(monkeypatch, capsys):
    """bench/split_cpu.py: the harmonising process's main thread and the reading child's, each
    with the CPU time it spent, when the child was last seen (before the ingest ended), and the
    tail after it: no longer than the ingest, with the CPU this process's threads spent in it."""
    import importlib.util
    import sys

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("split_cpu", ROOT / "bench" / "split_cpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    nrw = CORPUS / "citygml" / "nrw_LoD2_32_326_5727_1_NW.gml"  # a child of a second or so
    monkeypatch.setattr(sys, "argv", ["split_cpu.py", str(nrw)])
    bench.main()
    lines = capsys.readouterr().out.splitlines()
    wall = float(lines[0].split()[1])
    child = [line for line in lines if line.startswith("child") and "last seen" in line]
    assert len(child) == 1 and 0 < float(child[0].split()[4]) <= wall
    (tail,) = [line.split() for line in lines if line.startswith("after the last child")]
    assert 0 <= float(tail[4]) <= wall and float(tail[10]) >= 0 and float(tail[-1]) >= 0
    threads = [line for line in lines if line.startswith(("parent ", "child "))]
    mains = [line.split() for line in threads if " main" in line or "MainThread" in line]
    assert {m[0] for m in mains} == {"parent", "child"}
    assert all(float(m[-3]) + float(m[-1]) > 0 for m in mains), mains


def _same(a, b) -> bool:
    """Equal, and of the same types all the way down (arrays by their values)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _lists(value):
    """`value` with its repeated elements' values (a list of citygml_values' own type, which
    prints as a list) as lists."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return list(map(_lists, value)) if isinstance(value, list) else value


def _assert_unpacked(raw, back) -> None:
    """`back` holds what `raw` holds; its properties, where they crossed as JSON text, each the
    text orjson writes of the record's, read back as a dict equal to it, of the same types
    (a repeated element's values a list)."""
    records, rings, _ = raw
    assert _same(back[1], rings)
    assert len(back[0]) == len(records)
    texts = back[2]
    if texts is not None:
        assert texts.keys == frozenset().union(*(rec.properties for rec in records))
        for key, column in texts.columns.items():  # none where marshal refused one
            assert _same(column, [_lists(rec.properties.get(key, ...)) for rec in records])
    for i, (rec, got) in enumerate(zip(records, back[0], strict=True)):
        for name in Record.__slots__:
            if name == "properties" and texts is not None:
                assert texts.texts[i] == orjson.dumps(rec.properties)
                assert _same(_lists(rec.properties), texts[i])
            elif name != "parent":
                assert _same(getattr(rec, name), getattr(got, name)), name
        parent = None if rec.parent is None else back[0][rec.parent.index]
        assert got.parent is parent


@pytest.mark.parametrize(
    "path", sorted([*CORPUS.glob("citygml*/*.gml"), *(SAMPLES / "citygml").glob("*.gml")]),
    ids=lambda p: p.name,
)  # fmt: skip
def test_a_packed_batch_unpacks_as_it_was_read(path: Path) -> None:
    """Every batch of the corpus' CityGML files crosses the pipe as it was read: each record's
    slots equal and of the same types, a part's parent the very record of its batch."""
    connector = CityGMLConnector(path, batch_size=7)
    try:
        taken = list(connector._read(partial(citygml_process.take, lambda: 0)))
    except Exception:  # noqa: BLE001 - a file the reader refuses has no batches to send
        pytest.skip("refused by the reader")
    for raw in taken:
        _assert_unpacked(raw, citygml_process.unpack(citygml_process.pack(raw)))


def test_a_batch_marshal_would_not_keep_is_pickled() -> None:
    """Curves' arrays (marshal would hand back bytes) and values of other types cross as they
    were, by pickle."""
    connector = CityGMLConnector(FILES[0], batch_size=5)
    records, rings, _ = next(connector._read(partial(citygml_process.take, lambda: 0)))
    assert citygml_process.pack((records, rings, None))[:1] == b"m"
    records[1].lines = [np.array([[1.0, 2.0, 3.0], [4.0, 5.0, float("nan")]])]
    records[2].properties["odd"] = Fraction(1, 3)
    packed = citygml_process.pack((records, rings, None))
    assert packed[:1] == b"p"
    _assert_unpacked((records, rings, None), citygml_process.unpack(packed))


def test_properties_orjson_would_not_write_cross_as_dicts() -> None:
    """A batch whose properties hold a value JSON has no type for (marshal writes it) crosses
    as dicts, which harmonise writes as before (str() of the value)."""
    connector = CityGMLConnector(FILES[0], batch_size=5)
    records, rings, _ = next(connector._read(partial(citygml_process.take, lambda: 0)))
    assert citygml_process.unpack(citygml_process.pack((records, rings, None)))[2] is not None
    records[2].properties["odd"] = 1j
    back = citygml_process.unpack(citygml_process.pack((records, rings, None)))
    assert back[2] is None
    _assert_unpacked((records, rings, None), back)


@pytest.mark.skipif(mallinfo.libc() is None, reason="glibc 2.33 or later")
def test_a_split_read_merges_freed_blocks_here_and_restores_glibc_after() -> None:
    """While it reads a file split, this process keeps no small freed block in a fast bin, as
    its child; the fast bins are back after, an error's way out too."""
    libc = mallinfo.libc()
    assert libc is not None and mallinfo.fast_binned(libc) > 0

    @citygml_process.merging_freed_blocks
    def read() -> Iterator[int]:
        yield mallinfo.fast_binned(libc)
        raise ValueError("stop")

    batches = read()
    assert mallinfo.fast_binned(libc) > 0  # not before its generator runs
    assert next(batches) == 0
    with pytest.raises(ValueError, match="stop"):
        next(batches)
    assert mallinfo.fast_binned(libc) > 0
