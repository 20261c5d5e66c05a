"""What glibc's fast bins hold, for the tests of freed_memory and its users."""

from __future__ import annotations

import ctypes

from citypipe.connectors.freed_memory import glibc


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost",
    )]  # fmt: skip


def libc() -> ctypes.CDLL | None:
    """glibc, typed for these probes, where it has mallinfo2 (2.33 or later); else None."""
    c = glibc()
    if c is None or not hasattr(c, "mallinfo2"):
        return None
    c.malloc.restype, c.free.argtypes, c.mallinfo2.restype = (
        ctypes.c_void_p,
        [ctypes.c_void_p],
        _MallInfo2,
    )
    return c


def in_fast_bins(c: ctypes.CDLL) -> int:
    """Bytes of freed blocks glibc holds in the fast bins of all its arenas (`fsmblks`)."""
    return int(c.mallinfo2().fsmblks)


def fast_binned(c: ctypes.CDLL) -> int:
    """The bytes glibc keeps in its fast bins of 200 blocks of 40 bytes freed between live
    ones (its tcache takes the first 7 of a size)."""
    blocks = [c.malloc(40) for _ in range(400)]
    before = in_fast_bins(c)
    for block in blocks[::2]:
        c.free(block)
    binned = in_fast_bins(c) - before
    for block in blocks[1::2]:
        c.free(block)
    return binned
