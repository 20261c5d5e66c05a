"""A large CityGML document read by ranges of its members, one forked process per core.

The file is cut at cityObjectMember start tags into as many byte ranges as there are cores;
each range is parsed by a child of its own as a document of its own (the CityModel's start
tag, with its namespace declarations, then the range's members, then the CityModel's end tag)
by the connector's walk, which hands each batch's records and rings' coordinate texts over
(citygml_process.take). This process builds their polygons, harmonises and writes them, range
after range: the document's order. A child ahead of the range being written keeps its batches
in a spool file (unlinked, on disk, not in memory), so every core is busy all the time and
memory stays bounded (the children at one batch tree each, this process at one batch).

Batches then start at each range's first member, not where one process would start them. The
output is the same only where nothing a member holds reaches out of it, which a byte scan of
each range checks before anything is handed over (`self_contained`): every xlink:href of a
member names a gml:id of that member, and there are no appearances, versions, feature members
(their own members' boundaries), comments or CDATA (where a member's start tag could be text).
A document that fails it is read as before (citygml_process: one walk in one child), and so
is one with fewer than two members, and every document on a machine of one core. On two
cores this process walks the first range itself (`OWN_SHARE` of the bytes) and one child the
rest: that child alone would walk the whole document, twice this process's work. Whatever
share misses, the last range's chunks make up: this process claims them from its back while it
would wait for the child's batches (citygml_claims). A reject's XML is read again from its
range's (or chunk's) document.
"""

from __future__ import annotations

import mmap
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, pairwise
from pathlib import Path
from typing import Any, Self

from citypipe.connectors import citygml_members, documents, gml_freeing, gml_polygons
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.citygml_claims import Claims, cut
from citypipe.connectors.citygml_members import member_start
from citypipe.connectors.citygml_process import (
    Located,
    cores,
    merging_freed_blocks,
    pack,
    read_back,
    received,
    serve,
    start_child,
    stop,
    take,
)
from citypipe.connectors.citygml_records import batches

__all__ = ["Range", "parts", "plan", "read_in_ranges", "self_contained"]

_START_TAG = re.compile(rb"""\s*<([^\s>/]+)(?:\s+[^\s=>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*>""")

OWN_SHARE = 0.30
"""The first range's share of the bytes where this process walks it (two cores), so that both
processes are about as busy: the child's walk and scan of its range against this process's
walk of its own and its building, harmonising and writing of every batch, with its threads
(the fingerprint, the writers: 0.7-0.8 s on the 422 MB file against the child's freeing
thread's 0.3-0.4); the chunks this process claims of the last range make up the rest, but a
byte walked in its own range costs no packing and unpacking, and one claimed does. With the
claims, on the 422 MB file (fresh processes alternated, 6 rounds each, load 2.3-2.4): 0.25
5.39-5.82 s, 0.30 5.16-5.63, 0.35 (3 rounds) 5.60-5.64. Without them, with the scan compiled
(bench/split_cpu.py, three rounds, load 7-18), a share of 0.30 left this process's main thread
4.65-4.76 s of CPU (user and system) and the child's 4.26-4.37, 0.27 left them 4.61-4.63 and
4.46-4.56. With the child's fast bins off (freed_memory.merge_from_now: its walk the
cheaper), two rounds each alternated (load 7-10): 0.27 left them 4.94 / 4.80 and 4.64 / 4.48,
0.25 4.70 / 4.21 and 4.71 / 4.43; 0.22 4.45 / 4.57 and 4.92 / 4.97 (load 5-6). With this
process's fast bins off too (`read_in_ranges`), three rounds alternated (2026-12-06, load 1.7-1.8):
0.25 4.67-5.50 s, 0.30 4.49-4.62, 0.35 4.59-4.74."""
KEPT = 4
"""Batches of the chunks this process claims that it keeps, at most, their polygons built, the
rest spooled: each kept is not packed nor read back (about 15 ms of CPU a chunk's batch of the
422 MB file, some 550 records) and is built while this process would wait for a child, not in
the run's tail after the last child's batch (28 ms); it holds about 5.6 MB."""
HELD = 4
"""Batches this process walks of its own range, at most, before it waits for the children's
checks (a child scans its range first: about 0.3 s of the 422 MB file's 70 %, where this
process walks a batch in about 0.36 s)."""


def parts() -> int:
    """Ranges to cut a document into: one per core this process may use (0: one core)."""
    n = cores()
    return n if n > 1 else 0


@dataclass(frozen=True)
class Range:
    """Bytes `start` to `end` of the document at `path`, read as a document of their own."""

    path: Path
    head: int
    """Where the CityModel's start tag ends (the members start after it)."""
    root: bytes
    """The CityModel's qualified name, to close a range that ends before the document."""
    start: int
    end: int
    size: int

    def open(self, claims: Claims | None = None) -> _Pieces:
        """The range as a document: the document's head unless it starts there, the range
        (with `claims`, the chunks of it claimed from the front as the parse reads on), the
        CityModel's end tag unless the document's own ends it."""
        head = [] if self.start == 0 else [(0, self.head)]
        body = iter(claims.front, None) if claims else iter([(self.start, self.end)])
        return _Pieces(self.path, chain(head, body), self.root, self.size)


class _Pieces:
    """A file read as a run of its byte ranges, taken as the parse asks for more, then the
    root's end tag unless the last range ends the file (what lxml's parse reads)."""

    def __init__(self, path: Path, pieces: Iterator[tuple[int, int]], root: bytes, size: int):
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close() / the with block
        self._pieces = pieces
        self._end = 0
        """Where the range being read ends."""
        self._tail: bytes | None = None
        self._root, self._size = root, size

    def read(self, n: int = -1) -> bytes:
        while self._tail is None:
            left = self._end - self._f.tell()
            if left > 0:
                return self._f.read(left if n < 0 else min(n, left))
            piece = next(self._pieces, None)
            if piece is None:
                self._tail = b"" if self._end == self._size else b"</%s>" % self._root
            else:
                self._f.seek(piece[0])
                self._end = piece[1]
        tail, self._tail = self._tail, b""
        return tail

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan(path: Path, count: int, first: float = 0.0) -> list[Range] | None:
    """`path` cut into at most `count` ranges at member start tags near equal shares of its
    bytes, or `first` of them for the first and equal shares of the rest; None where it cannot
    be cut (a root tag not found, fewer than two members)."""
    size = path.stat().st_size
    first = first or 1 / count
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        head = _head(data[: 1 << 16])
        if head is None:
            return None
        head_end, root = head
        cuts = [0]
        for k in range(1, count):
            share = first + (1 - first) * (k - 1) / (count - 1)
            at = member_start(data, max(int(size * share), head_end, cuts[-1] + 1))
            if at is None:
                break
            if at > cuts[-1]:  # a member longer than a share holds the next cut too
                cuts.append(at)
    if len(cuts) < 2 or cuts[1] <= head_end:
        return None
    return [Range(path, head_end, root, a, b, size) for a, b in pairwise([*cuts, size])]


def _head(head: bytes) -> tuple[int, bytes] | None:
    """Where the root's start tag ends, and the root's qualified name."""
    found = documents.xml_root(head)
    if found is None:
        return None
    at = len(head) - len(found[2])
    tag = _START_TAG.match(head, at)
    return (tag.end(), tag.group(1)) if tag else None


def self_contained(r: Range) -> bool:
    """Whether the members of `r` stand alone (the module's docstring; citygml_members). The
    first range's batches are one process's but for its last, which holds a prefix of one
    process's: only annotations pending for objects of later ranges (versions) differ there,
    so its links are not looked at."""
    return citygml_members.stand_alone(r.path, max(r.start, r.head), r.end, links=r.start > 0)


@merging_freed_blocks
def read_in_ranges(
    path: Path,
    read: Callable[..., Iterator[Any]],
    released: Callable[[], int],
    gml_id: str,
    fallback: Callable[[], Iterator[SourceBatch]],
) -> Iterator[SourceBatch]:
    """The batches of `read` (the connector's walk, given what to make of each batch and the
    document to read), one child per range but for the first on two cores, which this process
    walks, and the chunks of the last range this process claims (citygml_claims); `fallback`'s
    where the members do not stand alone. `released` counts the CityModel's children the walk
    has detached (the positions start there). Small blocks are merged here as they are
    freed meanwhile (citygml_process.merging_freed_blocks)."""
    count = parts()
    here = count == 2
    ranges = plan(path, count, OWN_SHARE if here else 0.0) if count else None
    if ranges is None:
        yield from fallback()
        return
    children: list[_Child] = []
    mine: Iterator[Any] | None = None  # this process's walk of the first range
    stolen = _Stolen(read, released, gml_id)
    try:
        for r in ranges[1:] if here else ranges:
            children.append(_Child.start(r, read, released, chunked=r is ranges[-1]))
        if here and self_contained(ranges[0]):
            mine = _walked_here(read, released, ranges[0])
        held: list[Any] = []  # walked while the children check their ranges
        while mine is not None and len(held) < HELD and not all(c.receive.poll() for c in children):
            if (raw := next(mine, None)) is None:
                break
            held.append(raw)
        alone = mine is not None or not here
        if alone and all(next(c.messages, False) for c in children):
            yield from _built(chain(held, mine or ()), ranges[0], gml_id)
            for c in children:
                handed = _read_back(c.spool, stolen.waiting(c, children[-1]))
                yield from _built(handed, c.range, gml_id)
            for r, kept, spooled in reversed(stolen.chunks):  # claimed from the back: last first
                yield from kept
                yield from _built(_read_back(stolen.spool, spooled), r, gml_id)
            return
    finally:
        if mine is not None:  # a generator: its file closed, its tree freed
            mine.close()  # type: ignore[attr-defined]
        for c in children:
            c.stop()
        stolen.spool.close()
    del held  # what this process walked of its range goes before the fallback's read
    yield from fallback()


def _built(raws: Iterable[Any], r: Range, gml_id: str) -> Iterator[SourceBatch]:
    """The batches of range `r` walked as `raws` (records and rings), their polygons built."""
    elements = partial(Located, r.open, gml_id=gml_id)
    for records, rings, properties in raws:
        yield from batches(records, gml_polygons.build(*rings), elements, properties)


def _read_back(spool: Any, spooled: Iterable[tuple[int, int]]) -> Iterator[Any]:
    """The batches packed in the file `spool` at `spooled` (offsets, lengths), in one buffer."""
    buffer = bytearray()
    for offset, length in spooled:
        yield read_back(spool.fileno(), offset, length, buffer)


@dataclass
class _Child:
    """A range's process: the chunks it claims, the file it spools its batches to, its pipe's
    end and messages."""

    range: Range
    claims: Claims
    spool: Any
    receive: Any
    process: Any
    messages: Iterator[Any]

    @classmethod
    def start(
        cls, r: Range, read: Callable[..., Iterator[Any]], released: Any, chunked: bool
    ) -> _Child:
        """The child of range `r`, cut into chunks where it is the last (`chunked`): the one
        this process claims from the back; another reads its range as one chunk."""
        claims = Claims(cut(r.path, r.start, r.end) if chunked else [r.start, r.end])
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        receive, child = start_child(_child, r, claims, spool.fileno(), read, released)
        who = f"{r.path}: the process reading its bytes {r.start}-{r.end}"
        return cls(r, claims, spool, receive, child, received(receive, child, who))

    def stop(self) -> None:
        stop(self.receive, self.process)
        self.spool.close()


class _Stolen:
    """The chunks of the last range this process claims from the back while it would wait for
    a child's next batch: walked, and their batches kept, the first `KEPT` of them, their
    polygons built at once (where this process would wait, not in the run's tail), then
    spooled (on disk, as a child's are: memory stays bounded) until that range's child's are
    handed on."""

    def __init__(self, read: Callable[..., Iterator[Any]], released: Any, gml_id: str) -> None:
        self._read, self._released, self._gml_id = read, released, gml_id
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by read_in_ranges
        self._offset = 0
        self._kept = 0
        self.chunks: list[tuple[Range, list[SourceBatch], list[tuple[int, int]]]] = []
        """Each chunk claimed, in the order claimed: its batches kept, then where the rest of
        them are spooled."""

    def waiting(self, child: _Child, last: _Child) -> Iterator[tuple[int, int]]:
        """Where `child` spooled each batch, as it says; while it has said all it has handed
        over, a chunk of the last range (`last`'s) claimed from the back and walked here (not
        once either has ended: an error, or a death, is raised at once, as before)."""
        taken = 0
        while True:
            while (
                child.claims.batches == taken
                and child.process.is_alive()
                and last.process.is_alive()
                and (chunk := last.claims.back()) is not None
            ):
                self._walk(replace(last.range, start=chunk[0], end=chunk[1]))
            if (spooled := next(child.messages, None)) is None:
                return
            taken += 1
            yield spooled

    def _walk(self, r: Range) -> None:
        kept: list[SourceBatch] = []
        spooled = []
        for raw in _walked_here(self._read, self._released, r):
            if self._kept < KEPT:
                kept += _built([raw], r, self._gml_id)
                self._kept += 1
                continue
            length = _spool(self.spool.fileno(), self._offset, raw)
            spooled.append((self._offset, length))
            self._offset += length
        self.chunks.append((r, kept, spooled))


def _walked_here(
    read: Callable[..., Iterator[Any]], released: Callable[[], int], r: Range
) -> Iterator[Any]:
    """This process's walk of its range `r`, whose last members are freed as soon as it ends,
    by the freeing thread (gml_freeing): else iterparse's reference cycle (document, parser,
    tag matcher) keeps them until the cycle collector runs, which is when the ingest ends (it
    is paused for the run), the two batches' trees freed then under the GIL (the 422 MB file:
    0.26-0.47 s after the child had ended, at load 4-6)."""
    models: list[Any] = []  # the CityModel whose members the walk reads

    def taking(reader: Any) -> Iterator[Any]:
        if not models and reader.records:
            models.append(reader.records[0].locator[0].getparent())
        return take(released, reader)

    yield from read(taking, r.open())
    for model in models:
        gml_freeing.remove(model, len(model))


def _child(
    send: Any,
    r: Range,
    claims: Claims,
    spool: int,
    read: Callable[..., Iterator[Any]],
    released: Any,
) -> None:
    serve(send, _spooled(r, claims, spool, read, released))


def _spooled(
    r: Range,
    claims: Claims,
    spool: int,
    read: Callable[..., Iterator[Any]],
    released: Callable[[], int],
) -> Iterator[tuple[str, Any]]:
    """In the child: whether the range stands alone, then where in `spool` each batch of the
    chunks it claims is."""
    alone = self_contained(r)
    yield ("checked", alone)
    if not alone:
        return
    offset = 0
    for raw in read(partial(take, released), r.open(claims)):
        length = _spool(spool, offset, raw)
        yield ("spooled", (offset, length))
        claims.handed_over()  # once its message is sent
        offset += length


def _spool(spool: int, offset: int, raw: Any) -> int:
    """`raw` packed and written at `offset` of the file `spool`; its length."""
    blob = memoryview(pack(raw))
    written = 0
    while written < len(blob):
        written += os.pwrite(spool, blob[written:], offset + written)
    return len(blob)
