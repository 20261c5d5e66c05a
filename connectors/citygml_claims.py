"""The last range of a CityGML document cut into chunks its child and this process share.

A fixed share of the bytes balances the two processes of a split read only for the machine,
the load and the document it was measured on: on the 422 MB file the child's walk (and the
marshal of each batch for the pipe) was the slower side, and this process waited for its
batches near the end (0.6-0.8 s). So the last range is cut at member start tags into chunks
of about `CHUNK_BYTES`, which two processes claim from either end: its child from the front,
as its parse reads on (one document, as before: its batches are the same where nothing is
claimed from the back), and this process from the back whenever it would otherwise wait for
the child's next batch. What this process walks of the range comes after the child's part,
so the batches keep the document's order. The claims are a few integers in shared memory,
made before the fork, under one lock.
"""

from __future__ import annotations

import mmap
from multiprocessing import get_context
from pathlib import Path

from citypipe.connectors.citygml_members import member_start

__all__ = ["CHUNK_BYTES", "Claims", "cut"]

CHUNK_BYTES = 8 << 20
"""The chunks' bytes: about a quarter of a batch of the NRW tile's objects, so that a claim
from the back adds little to the tail after the child has ended (a chunk's walk about 0.1 s),
and few enough (40 in 317 MB) that claiming them costs nothing to speak of."""

_FRONT, _BACK, _SPOOLED = range(3)


def cut(path: Path, start: int, end: int) -> list[int]:
    """Bytes `start` to `end` of `path` cut at the member start tags near every
    `CHUNK_BYTES`: the cuts, `start` and `end` included."""
    cuts = [start]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        while (at := member_start(data, cuts[-1] + CHUNK_BYTES)) is not None and at < end:
            cuts.append(at)
    return [*cuts, end]


class Claims:
    """Chunks (between consecutive `cuts`) claimed from the front by one process and from the
    back by another, each once; and the batches the front's process has handed over."""

    def __init__(self, cuts: list[int]) -> None:
        self.cuts = cuts
        self._shared = get_context("fork").Array("q", [0, len(cuts) - 1, 0])
        """The next chunk from the front, the chunk after the next from the back, the batches
        handed over."""

    def front(self) -> tuple[int, int] | None:
        """The next chunk from the front (its bytes' start and end), None once all are taken."""
        with self._shared.get_lock():
            i = self._shared[_FRONT]
            if i >= self._shared[_BACK]:
                return None
            self._shared[_FRONT] = i + 1
        return self.cuts[i], self.cuts[i + 1]

    def back(self) -> tuple[int, int] | None:
        """The next chunk from the back, None once all are taken."""
        with self._shared.get_lock():
            i = self._shared[_BACK] - 1
            if i < self._shared[_FRONT]:
                return None
            self._shared[_BACK] = i
        return self.cuts[i], self.cuts[i + 1]

    def handed_over(self) -> None:
        """Count a batch the front's process has handed over (its message sent)."""
        with self._shared.get_lock():
            self._shared[_SPOOLED] += 1

    @property
    def batches(self) -> int:
        """The batches handed over so far."""
        return int(self._shared[_SPOOLED])
