"""A CityGML document read by ranges of its members, one process each, lands what one does.

The documents: the NRW tile's buildings (xlinks from each solid to its own member's surfaces)
copied three times with new gml:ids, one tile after another as a region's are; the same with
one xlink pointing into the copy before (a member that does not stand alone: the read falls
back, and the xlink resolves as one process resolves it). Small batches and three ranges make
batches start elsewhere than one process starts them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import CORPUS, data_files
from lxml import etree

from citypipe.connectors import citygml_claims, citygml_members, citygml_ranges
from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_ranges import Range, plan, self_contained
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import UnavailableError

NRW = CORPUS / "citygml" / "nrw_LoD2_32_326_5727_1_NW.gml"
pytestmark = pytest.mark.skipif(not NRW.exists(), reason="the corpus's NRW tile is not here")
RUN_COLUMNS = {"ingested_at", "run_id"}
_IDS = re.compile(r'(gml:id="|xlink:href="#?)([^"]+)"')
GML_ID = "{http://www.opengis.net/gml}id"


def _tiles(path: Path, copies: int, reach_back: bool = False) -> Path:
    """The NRW tile's members `copies` times, each copy's gml:ids (and links) suffixed with
    its number; `reach_back`: the last copy's last xlink names the copy before's surface."""
    text = NRW.read_text(encoding="utf-8")
    start = text.index("<core:cityObjectMember")
    end = text.rindex("</core:cityObjectMember>") + len("</core:cityObjectMember>")
    members = [
        _IDS.sub(lambda m, c=c: f'{m.group(1)}{m.group(2)}_{c}"', text[start:end])
        for c in range(copies)
    ]
    if reach_back:
        *_, href = re.finditer(r'xlink:href="#([^"]+)_\d+"', members[-1])
        link = f'xlink:href="#{href.group(1)}_{copies - 2}"'
        members[-1] = members[-1][: href.start()] + link + members[-1][href.end() :]
    path.write_text(text[:start] + "\n".join(members) + text[end:], encoding="utf-8")
    return path


def _land(path: Path, lake: Lake, split: int) -> dict[str, object]:
    ingest(path, "s", lake, validate=False, render_docs=False,
           options={"split_bytes": split, "batch_size": 50})  # fmt: skip
    return {
        kind: pq.read_table(data_files(lake.partition(kind, "s"))[0])
        for kind in ("features", "surfaces")
    }


def _assert_same(one: dict[str, object], other: dict[str, object]) -> None:
    for kind, table in one.items():
        assert table.num_rows > 0
        assert table.column_names == other[kind].column_names
        for name in set(table.column_names) - RUN_COLUMNS:
            assert table.column(name).equals(other[kind].column(name)), (kind, name)


def _ranged(path: Path, monkeypatch) -> bool:
    """Whether the read went by ranges (the last range's batches came from its process, and
    the one-child path was not taken)."""
    from citypipe.connectors import citygml

    with monkeypatch.context() as patched:  # the fallback reads nothing
        patched.setattr(citygml, "read_in_child", lambda *a: iter(()))
        batches = list(CityGMLConnector(path, split_bytes=1, batch_size=50).read())
    last = batches[-1].records if batches else None
    return isinstance(getattr(getattr(last, "_source", None), "__self__", None), Range)


@pytest.fixture(autouse=True)
def three_ranges(monkeypatch) -> None:
    monkeypatch.setattr(citygml_ranges, "parts", lambda: 3)


@pytest.mark.parametrize("cores", [2, 3])
def test_tiles_read_by_ranges_land_what_one_process_does(tmp_path, monkeypatch, cores) -> None:
    """One child per range, each range's batches starting elsewhere than one process's."""
    monkeypatch.setattr(citygml_ranges, "parts", lambda: cores)
    path = _tiles(tmp_path / "tiles.gml", 3)
    ranges = plan(path, cores)
    assert ranges is not None and len(ranges) == cores
    assert all(self_contained(r) for r in ranges)
    assert _ranged(path, monkeypatch)
    one = _land(path, Lake(tmp_path / "one"), 0)
    _assert_same(one, _land(path, Lake(tmp_path / "ranges"), 1))
    buildings = sum(1 for _ in etree.parse(str(path)).iter("{*}Building", "{*}BuildingPart"))
    assert one["features"].num_rows == buildings  # every building and part lands, once


def test_two_cores_walk_the_first_share_here_and_the_rest_in_one_child(
    tmp_path, monkeypatch
) -> None:
    """The first range, about `OWN_SHARE` of the bytes, is walked by this process: one child
    is started, for the rest."""
    monkeypatch.setattr(citygml_ranges, "parts", lambda: 2)
    path = _tiles(tmp_path / "tiles.gml", 3)
    first, rest = plan(path, 2, citygml_ranges.OWN_SHARE)
    size = path.stat().st_size
    assert first.end == rest.start and rest.end == size
    assert abs(first.end / size - citygml_ranges.OWN_SHARE) < 0.05  # members of a few kB
    started = []
    start_child = citygml_ranges.start_child
    monkeypatch.setattr(
        citygml_ranges, "start_child", lambda *a: started.append(a[1]) or start_child(*a)
    )
    assert _ranged(path, monkeypatch)
    assert started == [rest]


def test_this_process_hands_its_range_to_the_freeing_thread_once_walked(
    tmp_path, monkeypatch
) -> None:
    """The members still in this process's tree when its range is walked are cut out for the
    freeing thread then, not left in iterparse's reference cycle for the collector."""
    monkeypatch.setattr(citygml_ranges, "parts", lambda: 2)
    path = _tiles(tmp_path / "tiles.gml", 3)
    removed = []
    remove = citygml_ranges.gml_freeing.remove
    monkeypatch.setattr(
        citygml_ranges.gml_freeing, "remove", lambda *a: removed.append(a) or remove(*a)
    )
    assert _ranged(path, monkeypatch)
    model, count = removed[-1]  # this process's last cut: the children's are their own
    assert etree.QName(model).localname == "CityModel"
    assert count > 0 and len(model) == 0


def test_members_longer_than_a_share_make_fewer_ranges_not_empty_ones(tmp_path) -> None:
    """Cut into more shares than the tiles have members of a share's size (a share of a few kB
    against members of up to tens): each cut falls at a member of its own, no range is empty,
    and every range stands alone (an empty one would send the whole read back to one child)."""
    path = _tiles(tmp_path / "tiles.gml", 3)
    members = sum(1 for _ in etree.parse(str(path)).iter("{*}cityObjectMember"))
    ranges = plan(path, 4 * members)
    assert ranges is not None and 1 < len(ranges) < 4 * members
    assert all(r.start < r.end for r in ranges)
    assert all(a.end == b.start for a, b in pairwise(ranges))
    assert all(self_contained(r) for r in ranges)


@pytest.mark.parametrize("window", [997, 20_000, 1 << 20])
def test_the_scan_tells_the_same_window_by_window(tmp_path, monkeypatch, window) -> None:
    """Windows shorter than a member, than a few, longer than the file: the same verdicts, and
    a link out of the last member is found wherever the windows end."""
    monkeypatch.setattr(citygml_members, "SCAN_BYTES", window)
    for copies, linked in ((3, False), (3, True), (2, True)):
        path = _tiles(tmp_path / f"{copies}{linked}.gml", copies, reach_back=linked)
        ranges = plan(path, copies)
        assert [self_contained(r) for r in ranges] == [True] * (copies - 1) + [not linked]


@pytest.mark.parametrize("cores", [2, 3])
def test_a_range_whose_member_links_into_another_falls_back(tmp_path, monkeypatch, cores) -> None:
    monkeypatch.setattr(citygml_ranges, "parts", lambda: cores)
    path = _tiles(tmp_path / "linked.gml", 3, reach_back=True)
    ranges = plan(path, 3)
    assert ranges is not None
    assert [self_contained(r) for r in ranges] == [True, True, False]
    assert not _ranged(path, monkeypatch)
    one = _land(path, Lake(tmp_path / "one"), 0)
    _assert_same(one, _land(path, Lake(tmp_path / "split"), 1))


def test_a_cross_member_xlink_resolves(tmp_path: Path) -> None:
    """One process resolves an xlink into the member before in the same batch: so does the
    split read (by falling back), and nothing is rejected for a dangling xlink."""
    path = _tiles(tmp_path / "linked.gml", 3, reach_back=True)
    report = ingest(path, "s", Lake(tmp_path / "split"), validate=False, render_docs=False,
                    options={"split_bytes": 1, "batch_size": 10_000})  # fmt: skip
    buildings = sum(1 for _ in etree.parse(str(path)).iter("{*}Building", "{*}BuildingPart"))
    assert (report.features, report.rejects) == (buildings, 0)


def test_a_record_xml_is_read_again_from_its_range(tmp_path: Path) -> None:
    path = _tiles(tmp_path / "tiles.gml", 3)
    by_id = {e.get(GML_ID): e for e in etree.parse(str(path)).iter() if e.get(GML_ID)}
    batches = list(CityGMLConnector(path, split_bytes=1, batch_size=50).read())
    for batch in (batches[0], batches[-1]):  # the first range's and the last's
        for i in (0, len(batch.records) - 1):
            xml = batch.records[i]
            assert xml == etree.tostring(by_id[batch.source_ids[i]], encoding="unicode")


def _killed(r, *args):
    """A range's process that dies (as the OOM killer ends one) after its check."""
    yield ("checked", True)
    if r.start:
        os.kill(os.getpid(), signal.SIGKILL)
    yield from ()


def test_a_range_process_that_dies_fails_the_read_in_one_line(tmp_path, monkeypatch) -> None:
    """Its death is raised as soon as this process waits for it: no chunk of the last range
    is claimed here once it has ended (chunks of a few members)."""
    monkeypatch.setattr(citygml_ranges, "_spooled", _killed)
    monkeypatch.setattr(citygml_claims, "CHUNK_BYTES", 20_000)
    claimed = []  # each claim as long as a small chunk's walk
    monkeypatch.setattr(
        citygml_ranges._Stolen, "_walk", lambda self, r: claimed.append(r) or time.sleep(0.02)
    )
    path = _tiles(tmp_path / "tiles.gml", 3)
    with pytest.raises(UnavailableError, match=r"tiles.gml: the process reading its bytes") as e:
        list(CityGMLConnector(path, split_bytes=1).read())
    assert "\n" not in str(e.value) and "killed by signal 9" in str(e.value)
    assert len(claimed) <= 5  # of 113: those claimed before the child had died


_READER = """
import sys, time
from pathlib import Path
from citypipe.connectors import citygml_ranges
from citypipe.connectors.citygml import CityGMLConnector

spooled = citygml_ranges._spooled
def slow(r, *args):  # the later ranges still busy when the reader is killed
    if not r.start:
        yield from spooled(r, *args)
        return
    yield ("checked", True)
    time.sleep(600)
citygml_ranges._spooled, citygml_ranges.parts = slow, lambda: 3
for i, _ in enumerate(CityGMLConnector(Path(sys.argv[1]), split_bytes=1, batch_size=20).read()):
    if i == 0:
        print("reading", flush=True)
        sys.stdin.readline()  # killed while it waits here
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux's /proc lists children")
def test_the_range_processes_die_with_a_killed_reader(tmp_path: Path) -> None:
    """A run killed (SIGKILL: no cleanup) leaves no process reading or spooling behind."""
    path = _tiles(tmp_path / "tiles.gml", 3)
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdout.readline() == "reading\n"
    children = Path(f"/proc/{reader.pid}/task/{reader.pid}/children").read_text().split()
    assert len(children) == 3
    reader.kill()
    reader.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: str) -> bool:
    """Whether the process runs (a zombie waiting for its reaper has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize(("cores", "ranges"), [(1, 0), (2, 2), (3, 3), (8, 8)])
def test_ranges_from_two_cores(monkeypatch, cores, ranges) -> None:
    """One range per core (on two, this process walks the first)."""
    monkeypatch.undo()  # the real count, not the fixture's
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(cores)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert citygml_ranges.parts() == ranges
