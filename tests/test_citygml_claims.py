"""The last range's chunks, claimed from the front by its child and from the back here.

Whoever claims which chunk, each is read once, the child's document is its range's where
nothing is claimed from the back, and a read in which this process claims chunks lands what
one process does (the NRW tile's buildings copied three times, as test_citygml_ranges makes
them; chunks of a few members).
"""

from __future__ import annotations

import os
import time
from itertools import pairwise
from multiprocessing import get_context

import pytest
from test_citygml_ranges import NRW, _assert_same, _land, _tiles

from citypipe.connectors import citygml_claims, citygml_header, citygml_ranges
from citypipe.connectors.citygml_claims import Claims, cut
from citypipe.connectors.citygml_ranges import plan
from citypipe.core.lake import Lake

pytestmark = pytest.mark.skipif(not NRW.exists(), reason="the corpus's NRW tile is not here")


def _front_all(claims: Claims, send) -> None:
    taken = []
    while (chunk := claims.front()) is not None:
        taken.append(chunk)
        time.sleep(0.001)
    send.send(taken)


def test_each_chunk_is_claimed_once_from_either_end() -> None:
    cuts = list(range(0, 4000, 10))
    claims = Claims(cuts)
    receive, send = get_context("fork").Pipe(duplex=False)
    child = get_context("fork").Process(target=_front_all, args=(claims, send))
    child.start()
    back = []
    while (chunk := claims.back()) is not None:
        back.append(chunk)
        time.sleep(0.001)
    front = receive.recv()
    child.join()
    assert front and back  # both ends took some
    assert sorted(front + back) == list(pairwise(cuts))
    assert front == sorted(front) and back == sorted(back, reverse=True)
    assert max(front)[1] == min(back)[0]  # the front's run meets the back's


def test_the_cuts_fall_at_member_start_tags(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(citygml_claims, "CHUNK_BYTES", 20_000)
    path = _tiles(tmp_path / "tiles.gml", 3)
    _, last = plan(path, 2, 0.25)
    cuts = cut(path, last.start, last.end)
    data = path.read_bytes()
    assert cuts[0] == last.start and cuts[-1] == last.end and len(cuts) > 10
    assert all(a < b for a, b in pairwise(cuts))
    assert all(data[at:].startswith(b"<core:cityObjectMember") for at in cuts[:-1])


def test_a_range_claimed_from_the_front_alone_reads_as_the_range(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(citygml_claims, "CHUNK_BYTES", 20_000)
    path = _tiles(tmp_path / "tiles.gml", 3)
    for r in plan(path, 3):
        claims = Claims(cut(path, r.start, r.end))
        with r.open() as whole, r.open(claims) as claimed:
            assert _all(claimed) == _all(whole)


def _all(document) -> bytes:
    return b"".join(iter(lambda: document.read(1 << 12), b""))


@pytest.mark.parametrize(("cores", "kept"), [(2, citygml_ranges.KEPT), (3, 1), (2, 0)])
def test_chunks_claimed_here_land_what_one_process_does(tmp_path, monkeypatch, cores, kept) -> None:
    """The range's child slowed down (each batch held until this process has claimed a chunk,
    then a sleep a batch, however loaded the machine): this process claims chunks from the
    back of the last range while it waits, walks them, and hands them on after the child's,
    the first `kept` of their batches as walked, the others spooled. Documents are parsed
    whole up to a size (citygml_header.WHOLE_BYTES: their first read that long claims as many
    chunks), here a small one, so that the child's range streams."""
    monkeypatch.setattr(citygml_ranges, "parts", lambda: cores)
    monkeypatch.setattr(citygml_ranges, "KEPT", kept)
    monkeypatch.setattr(citygml_claims, "CHUNK_BYTES", 20_000)
    monkeypatch.setattr(citygml_header, "WHOLE_BYTES", 1 << 16)
    here, take, claimed = os.getpid(), citygml_ranges.take, tmp_path / "claimed"

    def slow_child(*args):
        if os.getpid() != here:
            deadline = time.monotonic() + 20
            while not claimed.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
        return take(*args)

    def noted(self, r) -> None:
        stolen.append(r)
        claimed.touch()
        walk(self, r)

    monkeypatch.setattr(citygml_ranges, "take", slow_child)
    stolen = []
    walk = citygml_ranges._Stolen._walk
    monkeypatch.setattr(citygml_ranges._Stolen, "_walk", noted)
    path = _tiles(tmp_path / "tiles.gml", 3)
    one = _land(path, Lake(tmp_path / "one"), 0)
    _assert_same(one, _land(path, Lake(tmp_path / "ranges"), 1))
    assert stolen and all(r.end <= path.stat().st_size for r in stolen)
