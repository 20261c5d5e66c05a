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
(freed_memory), each block merged with its free neighbours as it is freed: with them on, the
nodes wait unmerged in the fast bins until the next request of a kB or more merges them all
at once (malloc_consolidate), some 3x as long.
"""

from __future__ import annotations

import os
import threading
from queue import Queue
from typing import Any

from citypipe.connectors import freed_memory
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
        with freed_memory.merged_as_freed():
            detached.free()


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
