"""A document's read elements freed beside its parse, by a thread of the process reading it.

Freeing a batch's members (libxml2's xmlFreeNode, node by node) took 35-100 ms a batch of the
422 MB CityGML file under the GIL, on the reading process's critical path. `remove` cuts them
out of the tree (gml_walk.detach, gml_free.pxi) and leaves their freeing to a thread, which
runs without the GIL on a core the parse does not use; where they cannot be freed apart (a
node of theirs with a Python proxy, an xml:id, no compiled walk) it deletes them as lxml does.
At most `PENDING` batches wait to be freed, so memory stays bounded by the thread's pace.
`hollow` frees what the last batch's members hold once walked, leaving their elements (its
records locate by them): that tree was freed with the batch, after its harmonising and
writing, its nodes long out of the cache. It frees them with glibc's fast bins off
(`_merged`), each block merged with its free neighbours as it is freed: with them on, the
nodes wait unmerged in the fast bins until the next request of a kB or more merges them all
at once (malloc_consolidate), some 3x as long.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from queue import Queue
from typing import Any

from citypipe.connectors.gml_compiled import compiled

__all__ = ["hollow", "remove"]

PENDING = 2
"""Batches of members cut out and not yet freed, at most (the next one waits)."""

_queues: dict[int, Queue[Any]] = {}
"""The freeing thread's queue of each process (a forked child starts its own)."""


def remove(parent: Any, count: int) -> None:
    """Remove the first `count` children of the element `parent` (`del parent[:count]`)."""
    detached = None if compiled is None else compiled.detach(parent, count)
    if detached is None:
        del parent[:count]
    else:
        _queue().put(detached)


def hollow(model: Any, start: int) -> None:
    """Empty the children of the element `model` from the `start`-th on (members walked, whose
    elements records still hold), their contents freed at once (gml_free.pxi's `hollow`):
    while they are still in the cache, and without a thread's hand-off. Where they cannot be
    freed apart, or without the compiled walk, they stay, freed with the document."""
    detached = None if compiled is None else compiled.hollow(model, start)
    if detached is not None:
        with _merged():
            detached.free()


_M_MXFAST = 1  # glibc's mallopt parameter: the largest request served from a fast bin
_MXFAST = 64 * ctypes.sizeof(ctypes.c_size_t) // 4
"""glibc's default (DEFAULT_MXFAST): fast bins on again after a hollowing. A reading child
(citygml_process.serve) turns them off for good; its hollowing, as its last batch completes,
leaves them on for that batch's packing alone."""


@contextmanager
def _merged() -> Iterator[None]:
    """Blocks freed within merged as they are freed (glibc's fast bins off), where the libc
    is glibc's. Melbourne's tree is no larger freed so (0.3 ms, and 0.1 later merged); NRW's
    hollowing 4.6-5.2 -> 6.4-6.5 ms, and the next kB request (the next batch's reader)
    4.7-8.0 -> 0.2."""
    libc = _libc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MXFAST, 0)  # glibc merges what the fast bins hold first
    try:
        yield
    finally:
        libc.mallopt(_M_MXFAST, _MXFAST)


@cache
def _libc() -> Any:
    """The C library, where it has glibc's mallopt; else None."""
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None
    except OSError:
        return None


def _queue() -> Queue[Any]:
    pid = os.getpid()
    queue = _queues.get(pid)
    if queue is None:
        queue = _queues[pid] = Queue(maxsize=PENDING)
        threading.Thread(target=_free, args=(queue,), name="freeing", daemon=True).start()
    return queue


def _free(queue: Queue[Any]) -> None:
    while True:
        queue.get().free()
