"""The lake's names for its parts, and the file operations that make its writes atomic:
shared by the lake (lake.py) and the one run of a source that writes into it (attempt.py)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, wait
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from citypipe.core.threads import Threads

__all__ = [
    "CURRENT", "KINDS", "PART", "RUN", "fsync", "fsync_beside", "fsync_together",
    "readable_parquet", "remove_later", "removed", "write_atomically",
]  # fmt: skip

KINDS = ("features", "rejects", "surfaces")
PART = "part-0.parquet"
CURRENT = "current"
RUN = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$")
"""A run's id (lake.new_run_id), which names its folder."""


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_FLUSHING = Threads(len(KINDS), "citypipe-flush")
"""The threads a run's files are flushed on beside each other (`fsync_together`)."""


def fsync_beside(fd: int) -> Future[None]:
    """`fd` flushed to disk on a thread of `_FLUSHING`, while the caller flushes others: the
    run's history row beside its files (`history.Ingest.stage`)."""
    return _FLUSHING.submit(os.fsync, fd)


def fsync_together(paths: Sequence[Path]) -> None:
    """Every file of `paths` on disk, flushed at once (all but the last on `_FLUSHING`'s
    threads), each waited for before the first error is raised. One after another, each
    fsync waits for its own flush of the disk's cache; at once, the disk takes them
    together."""
    flushes = [_FLUSHING.submit(fsync, p) for p in paths[:-1]]
    try:
        if paths:
            fsync(paths[-1])
    finally:
        wait(flushes)
    for flushed in flushes:
        flushed.result()


_REMOVING = Threads(1, "citypipe-remove")
_QUEUED: set[str] = set()
"""The folders the thread is yet to remove, each queued once (none in a forked child)."""
os.register_at_fork(after_in_child=_QUEUED.clear)


def remove_later(folders: Iterable[str]) -> None:
    """Remove the folders of runs no reader is sent to any more on a thread of their own, in
    order, after the run that replaced them has returned: freeing a replaced run's blocks waits
    for the disk (0.4-1.8 ms a run on this machine's ext4, which discards the freed blocks at
    once), and nothing depends on it. What a process killed first leaves, the next run of the
    source removes (`Lake._sweep`); the interpreter waits for the thread at its exit.
    A folder already queued is not queued again: every run lists the folders still there
    (its sweep, its commit), and runs that come faster than the thread removes (it takes the
    GIL back after each file) queued each one over and over (up to 32 times)."""
    for folder in folders:
        if folder in _QUEUED:
            continue
        _QUEUED.add(folder)
        _REMOVING.submit(_remove, folder)  # at once where the interpreter is exiting


def _remove(folder: str) -> None:
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        _QUEUED.discard(folder)


def removed() -> None:
    """Wait until every removal asked for so far is done."""
    _REMOVING.submit(lambda: None).result()


def write_atomically(path: Path, data: bytes | pa.Buffer) -> None:
    """A file holding `data` in one rename, on disk before it is in place: a lake's empty files
    are linked into the runs that land (which must find them whole after a crash), an attempt's
    record is read by the warehouse, a history row by every reader of the lake's history."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def readable_parquet(path: Path) -> bool:
    """Whether a staged file was finished (its footer written), so its rows can be kept."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True
