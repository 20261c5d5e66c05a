"""freed_memory: stretches of freeing with glibc's fast bins off nest and overlap across
threads; the bins come back as the last one ends, an error's way out too."""

from __future__ import annotations

import threading

import mallinfo
import pytest

from citypipe.connectors import freed_memory

pytestmark = pytest.mark.skipif(mallinfo.libc() is None, reason="glibc 2.33 or later")


def test_nested_stretches_keep_the_bins_off_until_the_outer_one_ends() -> None:
    libc = mallinfo.libc()
    assert libc is not None and mallinfo.fast_binned(libc) > 0
    with freed_memory.merged_as_freed():
        with freed_memory.merged_as_freed():  # a split read's parent hollowing its own tree
            assert mallinfo.fast_binned(libc) == 0
        assert mallinfo.fast_binned(libc) == 0
    assert mallinfo.fast_binned(libc) > 0


def test_an_error_ends_its_stretch() -> None:
    libc = mallinfo.libc()
    assert libc is not None
    with pytest.raises(ValueError, match="stop"), freed_memory.merged_as_freed():
        raise ValueError("stop")
    assert mallinfo.fast_binned(libc) > 0


def test_a_stretch_on_another_thread_keeps_the_bins_off_past_this_ones_end() -> None:
    libc = mallinfo.libc()
    assert libc is not None
    begun, ended = threading.Event(), threading.Event()

    def other() -> None:
        with freed_memory.merged_as_freed():
            begun.set()
            ended.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert begun.wait(10)
        with freed_memory.merged_as_freed():
            pass
        assert mallinfo.fast_binned(libc) == 0  # the other thread's stretch goes on
    finally:
        ended.set()
        thread.join()
    assert mallinfo.fast_binned(libc) > 0
