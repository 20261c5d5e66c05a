"""freed_memory: stretches of freeing with glibc's fast bins off nest and overlap across
threads; the bins come back as the last one ends, an error's way out too. A kept heap keeps what
is freed up to its bound."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

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


def test_a_kept_heap_keeps_freed_blocks_up_to_its_bound_and_maps_larger_ones() -> None:
    """Blocks of 4 MiB (glibc maps one of them on its own at first) come from the heap and
    stay in it as they are freed; freeing 96 MiB of them hands back what passes the 64 MiB
    kept; one of 48 MiB is mapped on its own. In a fresh process: the setting is for good."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(mallinfo.__file__).parent)!r})
import mallinfo
from citypipe.connectors import freed_memory
libc = mallinfo.libc()
freed_memory.keep_freed_heap()
MiB = 1 << 20
mapped, before = libc.mallinfo2().hblks, libc.mallinfo2().arena
blocks = [libc.malloc(4 * MiB) for _ in range(8)]
assert libc.mallinfo2().hblks == mapped, "4 MiB blocks mapped"
for block in blocks:
    libc.free(block)
assert libc.mallinfo2().arena >= before + 28 * MiB, "32 MiB freed handed back"
blocks = [libc.malloc(4 * MiB) for _ in range(24)]
for block in blocks:
    libc.free(block)
assert libc.mallinfo2().arena < before + 72 * MiB, "96 MiB freed all kept"
big = libc.malloc(48 * MiB)
assert libc.mallinfo2().hblks == mapped + 1, "48 MiB block from the heap"
libc.free(big)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
