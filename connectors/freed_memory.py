"""glibc's fast bins off while a CityGML read frees its trees: each small block merged as it is
freed.

Fast bins hold small freed blocks unmerged until a request of a kB or more merges them all at
once (malloc_consolidate), some 3x as long as merging them one by one, and in the next batch's
first sizeable request: NRW's hollowed members 4.6-5.2 -> 6.4-6.5 ms freed merged, the next
kB request 4.7-8.0 -> 0.2; a reading child's walk 6 % of its samples, the 422 MB file's parent
2 %. Stretches of such freeing nest (a split read's parent hollows its own ranges' trees) and
may overlap across threads: the fast bins come back when the last stretch ends.

An ingesting process also keeps the heap its ingests free for the next one (`keep_freed_heap`).
Where the C library is not glibc nothing is set.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["glibc", "keep_freed_heap", "merge_from_now", "merged_as_freed"]

_M_MXFAST = 1
"""glibc's mallopt parameter: the largest request served from a fast bin (0: none)."""
_FAST_BINS = 64 * ctypes.sizeof(ctypes.c_size_t) // 4
"""glibc's own bound (DEFAULT_MXFAST: 128 bytes on 64 bits), set again as the last stretch ends."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
"""glibc's mallopt parameters: the free heap top kept, the smallest request mapped on its own."""
_MAPPED_FROM = 32 << 20
"""glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64 bits: the highest its own dynamic threshold goes."""
_KEPT_TOP = 2 * _MAPPED_FROM
"""The trim threshold glibc's dynamic one goes with it: kept memory bounded as glibc bounds it."""
_lock = threading.Lock()
_stretches = 0
"""Stretches under way in this process (a forked child inherits its parent's count and bins)."""


@cache
def glibc() -> Any:
    """The C library where it is glibc's (it has mallopt); else None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_heap(top: int = _KEPT_TOP) -> None:
    """Have glibc keep, from now on, the heap this process frees: a free heap top up to `top`
    (by default the bound its own dynamic threshold reaches at most), blocks under 32 MiB from
    the heap. It starts its thresholds at 128 kB and raises them only as it frees a mapped
    block: until then, or where an ingest ends before, each freed heap top and large block goes
    back to the system and the next ingest faults its pages in again (Delft's warm ingests
    1,200-1,800 page faults each in some processes, about 200 in others; 2-3 ms of its 58).
    glibc's dynamic thresholds are off for good once set."""
    libc = glibc()
    if libc is not None:
        libc.mallopt(_M_TRIM_THRESHOLD, top)
        libc.mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM)


def merge_from_now() -> None:
    """This process's small blocks merged as they are freed from now on (a reading child's
    whole life: its walk freed merged 2.57 -> 2.29-2.34 s of CPU on 150 MB of NRW's objects)."""
    _begin()


@contextmanager
def merged_as_freed() -> Iterator[None]:
    """Small blocks freed within merged as they are freed; the fast bins back after the last
    stretch under way, an error's way out too."""
    _begin()
    try:
        yield
    finally:
        _end()


def _begin() -> None:
    global _stretches
    libc = glibc()
    with _lock:
        _stretches += 1
        if _stretches == 1 and libc is not None:
            libc.mallopt(_M_MXFAST, 0)


def _end() -> None:
    global _stretches
    libc = glibc()
    with _lock:
        _stretches -= 1
        if _stretches == 0 and libc is not None:
            libc.mallopt(_M_MXFAST, _FAST_BINS)
