"""A large CityGML document read in two processes: the walk in a forked child, the rest here.

The path of a document whose members do not all stand alone (one whose members do is read by
ranges: citygml_ranges, which sends its batches as this module packs them). The connector's
walk (libxml2's parse and the Python that turns members into records) runs in a forked child,
which hands each complete batch over a pipe as its records and its rings' coordinate texts;
this process builds the polygons (the coordinates parsed, rings repaired, shapely geometry
made), then harmonises and writes the batch while the child walks the next.
That splits the CPU time about in half (a child that also built the geometry did 70 % of it,
and paid for handing shapely geometry over as WKB). The batches are the ones one process makes
(the same walk makes them, in order), so xlinks, appearances and the CRS resolve alike.
Memory stays bounded: a pipe holds a few kB, so the child is at most one batch ahead (it
blocks sending the next).

A record's XML (asked for by rejects only) is not sent: the child sends where the object is
(its CityModel child's position, tag, gml:id or n-th of its tag), and this process reads that
member again from the file when a reject asks for it.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import pickle
import signal
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import partial, wraps
from itertools import repeat
from multiprocessing import current_process, get_context
from operator import attrgetter
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from citypipe.connectors import freed_memory, gml_polygons
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.citygml_header import model_members
from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.citygml_records import Record, batches, element_xml
from citypipe.connectors.json_properties import JSONProperties
from citypipe.geo.errors import DataError, UnavailableError

__all__ = [
    "SPLIT_BYTES", "Located", "can_split", "cores", "merging_freed_blocks", "pack", "read_back",
    "read_in_child", "received", "serve", "start_child", "stop", "take", "unpack",
]  # fmt: skip

SPLIT_BYTES = 64_000_000
"""Files from this size are read in a second process: the overlap needs several batches (the
NRW tile's objects fill one of 2,000 records in about 30 MB); a smaller file only pays the fork
and the pipe."""


def can_split() -> bool:
    """Whether a second process may help: this process may use more than one core, is not
    daemonic (a worker some pools start may not start one), and the last minute's load is
    under twice the cores. Beside other work two processes still read faster (the 422 MB file
    on two cores at a load of 4-8: 9.5-11.6 s against 13.1-13.5 s in one), so a load of the
    cores less one (the guard before, which the bench's own runs reached) is no reason to keep
    to one; the rounds of a load of 5-10 were level or slower (15.2-19.4 s against 14.3-17.9),
    at 11-17 % more CPU (docs/benchmark.md)."""
    if current_process().daemon:
        return False
    n = cores()
    return n > 1 and os.getloadavg()[0] < 2 * n


def cores() -> int:
    """The cores this process may run on."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return n or 1


_P = ParamSpec("_P")
_T = TypeVar("_T")
_Raw = tuple[list[Record], tuple[list[str], list[int], list[int], list[int]], JSONProperties | None]
"""A batch as the child hands it over: its records, its rings (GeometryReader.rings) and, where
it crossed as bytes (`unpack`), its records' properties as their JSON texts (None: in the
records)."""

_FRAME = 1 << 16
"""The buffers on the pipe's ends."""
_LENGTH = struct.Struct("<Q")
_MARSHALLED, _PICKLED, _MESSAGE = b"m", b"p", b"M"
"""The first byte of a message: a batch packed by marshal or by pickle, any other message."""
_FIELDS = tuple(name for name in Record.__slots__ if name not in ("parent", "properties"))
_PLAIN = attrgetter(*_FIELDS)
_SETTERS = tuple(getattr(Record, name).__set__ for name in (*_FIELDS, "parent"))
_SET_PROPERTIES = getattr(Record, "properties").__set__  # noqa: B009 - a slot descriptor
_PR_SET_PDEATHSIG = 1
_KEPT_BYTES = 1 << 30
"""Freed memory a child keeps for its next batch rather than hand back to the system (glibc's
trim threshold; its peak is the same, it is only not returned in between): each batch's tree
freed, the next faulted the same pages in again, zeroed (the 422 MB file: 0.8-1.1 s of system
time in the child, 0.3 with this; docs/benchmark.md)."""

Position = tuple[int, str, "str | int"]
"""Where a record's element is: (its CityModel member's position among the CityModel's
children, its tag, its gml:id or its n-th place among the member's elements of that tag)."""


def read_in_child(
    path: Path,
    read: Callable[[Callable[[ObjectReader], Iterator[_Raw]]], Iterator[_Raw]],
    released: Callable[[], int],
    gml_id: str,
) -> Iterator[SourceBatch]:
    """The batches of `read` (the connector's walk, given what to make of each batch), its walk
    made by a forked child and its polygons built here; `released` counts the CityModel's
    children the walk has detached so far (the positions start there)."""
    receive, child = start_child(_child, read, released)
    elements = partial(Located, partial(open, path, "rb"), gml_id=gml_id)
    try:
        for records, rings, properties in received(
            receive, child, f"{path}: the process reading it"
        ):
            yield from batches(records, gml_polygons.build(*rings), elements, properties)
    finally:
        stop(receive, child)


def start_child(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    """A forked child running `target(send, *args)`, and the end of its pipe this process
    reads from."""
    receive, send = get_context("fork").Pipe(duplex=False)
    child = get_context("fork").Process(target=target, args=(send, *args), daemon=True)
    child.start()
    send.close()  # the child's end only: the pipe ends when the child does
    return receive, child


def received(receive: Any, child: Any, who: str) -> Iterator[Any]:
    """The payloads of the batch messages a child sends, until it says it is done; its error
    raised here; a child that ended without a word (killed) makes a one-line error."""
    stream, buffer = _stream(receive, "rb"), bytearray()
    while True:
        message = _receive(stream, buffer)
        if message is None:  # none, or one cut short
            child.join()
            code = child.exitcode or 0
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise UnavailableError(
                f"{who} ended before it was done ({how}); the previous output is kept: run it again"
            ) from None
        kind, payload = message
        if kind == "end":
            return
        if kind == "error":
            raise payload
        yield payload


def stop(receive: Any, child: Any) -> None:
    """Close the pipe and end the child, whether it finished or not."""
    receive.close()
    if child.is_alive():
        child.terminate()
    child.join()


def _child(send: Any, read: Callable[..., Iterator[_Raw]], released: Callable[[], int]) -> None:
    serve(send, (("batch", raw) for raw in read(partial(take, released))))


def serve(send: Any, messages: Iterator[tuple[str, Any]]) -> None:
    """In a child: send each of `messages`, then the end or the error that stopped them; the
    child dies with its parent (a killed run leaves no reader behind)."""
    try:  # where libc lacks it (not Linux) the pipe alone ends a child
        _die_with_parent(ctypes.CDLL(None, use_errno=True))
    except (OSError, AttributeError):
        pass
    freed_memory.keep_freed_heap(_KEPT_BYTES)
    freed_memory.merge_from_now()
    stream = _stream(send, "wb")
    try:
        try:
            for message in messages:
                _send(stream, message)
            end: tuple[str, Any] = ("end", None)
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            end = ("error", _picklable(e))
        _send(stream, end)
    except (BrokenPipeError, OSError):
        pass  # the parent stopped reading: nothing left to hand over
    finally:
        send.close()
        os._exit(0)  # no atexit handlers or finalizers of the parent's objects in the child


def _stream(end: Any, mode: str) -> Any:
    """A buffered file on a pipe's end (a Connection's). Its messages are a length and the
    message (a batch `pack`ed, or a pickle), which this process reads into one buffer it
    keeps: a Connection's receive grows a BytesIO by copies for each batch's few MB and faults
    in fresh, zeroed pages for it (16 % of this process's page faults on the 422 MB file)."""
    return os.fdopen(end.fileno(), mode, buffering=_FRAME, closefd=False)


def _send(stream: Any, message: tuple[str, Any]) -> None:
    kind, payload = message
    data = pack(payload) if kind == "batch" else _MESSAGE + pickle.dumps(message, protocol=5)
    stream.write(_LENGTH.pack(len(data)))  # made whole, then written: the child goes on at once
    stream.write(data)
    stream.flush()


def _receive(stream: Any, buffer: bytearray) -> tuple[str, Any] | None:
    """The next message, read into `buffer` (grown to the largest so far); None where the
    stream ends before it does."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    with _room(buffer, size) as view:
        if stream.readinto(view) < size:
            return None
        if view[:1] == _MESSAGE:
            message: tuple[str, Any] = pickle.loads(view[1:])
            return message
        return "batch", unpack(view)


def read_back(fd: int, offset: int, length: int, buffer: bytearray) -> _Raw:
    """The batch packed at `offset` of the file `fd` (a spool), read into `buffer` (grown to
    the largest so far), as the pipe's batches are: os.pread made a fresh bytes of each
    batch's few MB, and unpack a copy of it without its first byte, each faulting in fresh
    pages."""
    with _room(buffer, length) as view:
        if os.preadv(fd, [view], offset) < length:
            raise EOFError(f"a spooled batch cut short at {offset}")
        return unpack(view)


def _room(buffer: bytearray, size: int) -> memoryview:
    """The first `size` bytes of `buffer`, grown to hold them."""
    if len(buffer) < size:
        buffer.extend(bytes(size - len(buffer)))
    return memoryview(buffer)[:size]


def pack(raw: _Raw) -> bytes:
    """A batch as the bytes that cross the pipe (or wait in a spool): its records' slots (a
    part's parent as its place in the batch), their properties as the JSON texts the lake
    writes (JSONProperties: a text is loaded here in a sixtieth of a dict's time, and written
    as it is; the dicts where orjson would not write them) and its rings by marshal, which
    makes them in a quarter of a pickle's time (the NRW tile's batches of 2,000 records: 10
    against 35 ms, on the reading child's critical path, and read back in 20 against 24); by
    pickle where a record holds what marshal would not give back as it was (arrays of curves
    or points, objects of other types, a parent outside the batch)."""
    records, rings, _ = raw
    parents = [-1 if (p := rec.parent) is None else p.index for rec in records]
    plain = not any(rec.lines or rec.points for rec in records) and all(
        i < 0 or records[i] is rec.parent for i, rec in zip(parents, records, strict=True)
    )
    if plain:
        properties = [rec.properties for rec in records]
        rows = [_PLAIN(r) for r in records]
        texts = JSONProperties.of(properties)
        ways = (  # the mapped attributes' values left out where marshal would not write them
            [(texts.texts, texts.keys, texts.columns), (texts.texts, texts.keys, {})]
            if texts
            else [(properties, None, None)]
        )
        for written in ways:
            try:
                return _MARSHALLED + marshal.dumps((rows, parents, rings, *written), 4)
            except ValueError:  # a value of a type marshal does not write
                pass
    return _PICKLED + pickle.dumps(raw, protocol=5)


def unpack(data: Any) -> _Raw:
    """The batch `pack` made `data` of."""
    if data[:1] == _PICKLED:
        raw: _Raw = pickle.loads(data[1:])
        return raw
    rows, parents, rings, properties, keys, mapped = marshal.loads(data[1:])
    records = list(map(Record.__new__, repeat(Record, len(rows))))
    # each slot set by a C-level loop over its column, not a Python loop over the records (the
    # 422 MB file's batches of 2,000: 27.6 -> 24.8 ms an unpack)
    columns = [*zip(*rows, strict=True), [None if p < 0 else records[p] for p in parents]]
    for setter, column in zip(_SETTERS, columns, strict=True):
        deque(map(setter, records, column), maxlen=0)
    if keys is None:  # dicts: the records hold them
        deque(map(_SET_PROPERTIES, records, properties), maxlen=0)
        return records, rings, None
    return records, rings, JSONProperties(properties, keys, mapped)  # the records' slot unset


def _die_with_parent(libc: ctypes.CDLL) -> None:
    """Have Linux kill this process when its parent dies (elsewhere the pipe ends it at its
    next batch)."""
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def merging_freed_blocks(read: Callable[_P, Iterator[_T]]) -> Callable[_P, Iterator[_T]]:
    """`read` (a generator function) with this process's small blocks merged as they are freed
    while its generator runs (freed_memory, as its reading child's): here too fast bins held
    what each batch frees (its own range's trees, the unpacked records, the harmonised rows)
    until a larger request merged them all at once. The trim and mmap thresholds are the
    ingest's (freed_memory.keep_freed_heap)."""

    @wraps(read)
    def merging(*args: _P.args, **kwargs: _P.kwargs) -> Iterator[_T]:
        with freed_memory.merged_as_freed():
            yield from read(*args, **kwargs)

    return merging


def _picklable(e: Exception) -> Exception:
    """`e`, or a DataError saying the same where `e` would not cross the pipe intact."""
    try:
        pickle.loads(pickle.dumps(e, protocol=5))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return DataError(f"{type(e).__name__}: {e}")
    return e


def take(released: Callable[[], int], reader: ObjectReader) -> Iterator[_Raw]:
    """A complete batch as it crosses the pipe: its records, located by position (their
    elements stay in the child), and its rings' coordinate texts."""
    taken = reader.take()
    if taken is None:
        return
    records, geometry = taken
    if records:
        model = records[0].locator[0].getparent()
        at = {child: released() + i for i, child in enumerate(model)}  # index() is a walk
        for rec in records:
            member, tag, key = rec.locator
            rec.locator = (at[member], tag, key)
    yield records, geometry.rings(), None


# -- a record's XML, read again ---------------------------------------------------------------


class Located(Sequence[str]):
    """The records' XML, read again from the file when a reject asks for it."""

    def __init__(self, source: Callable[[], Any], positions: list[Position], gml_id: str) -> None:
        self._source = source
        self._positions = positions
        self._gml_id = gml_id

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i: Any) -> Any:
        position, tag, key = self._positions[i]
        return element_xml(_member(self._source, position), tag, key, self._gml_id)


def _member(source: Callable[[], Any], position: int) -> Any:
    """The CityModel's child at `position` in the document `source` opens, parsed as the
    reader parses it."""
    with source() as f:
        released = 0  # children before the one looked at, detached: memory stays bounded
        for model, member in model_members(f, huge_tree=True):
            index = model.index(member)
            if released + index == position:
                return member
            del model[: index + 1]
            released += index + 1
    raise LookupError(f"no CityModel member at {position}")
