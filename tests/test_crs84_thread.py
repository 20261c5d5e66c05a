"""The solids taken to CRS84 on a thread of their own (pipelines/core/crs84.py `begin`): what
fails there fails the run as it would in the run's own thread, and a process's first batch
in a CRS is placed in the run's thread while the worker makes its PROJ object."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from citypipe.core import crs84
from citypipe.core.ingest import ingest
from citypipe.geo import wkb_ragged


@pytest.mark.parametrize("worker_ready", [False, True])
def test_an_error_placing_the_solids_fails_the_run_and_keeps_the_output(
    sample, lake, read_lake, monkeypatch, worker_ready: bool
):
    """The solids' WKB fails to be written (memory runs out): the ingest raises that error,
    and the source's previous output stays as it was; on the worker thread once it has made
    its PROJ object for the CRS (after a first ingest in it), in the run's thread before."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample("cityjson/rotterdam_one_v1.1.city.json")
    ingest(path, "rotterdam", lake, validate=False)
    before = read_lake("rotterdam")
    if worker_ready:
        worker._pool.submit(int).result()  # what was asked of it before is done
    else:
        fresh = crs84._Worker()  # a process's first batch in the CRS
        monkeypatch.setattr(crs84, "_worker", lambda: fresh)
    where: list[str] = []

    def fails(*args: object) -> None:
        where.append(threading.current_thread().name)
        raise MemoryError("no memory for the solids' WKB")

    monkeypatch.setattr(wkb_ragged, "solids_z", fails)
    with pytest.raises(MemoryError, match="no memory for the solids' WKB"):
        ingest(path, "rotterdam", lake, validate=False)
    assert (where[0] != threading.current_thread().name) == worker_ready
    assert read_lake("rotterdam").equals(before)


def test_a_forked_child_places_its_solids(sample, lake, read_lake, monkeypatch):
    """The worker has made its PROJ object in the parent (an ingest there); a child forked
    then, which has none of its parent's threads, still ingests the same file, and its solids
    are the parent's (the worker's pool is made again in the child)."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample("cityjson/rotterdam_one_v1.1.city.json")
    ingest(path, "rotterdam", lake, validate=False)
    worker._pool.submit(int).result()  # the transformation is the worker's now
    before = read_lake("rotterdam")
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child waiting for a thread it has not is ended
        code = 1
        try:
            ingest(path, "rotterdam", lake, validate=False)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    after = read_lake("rotterdam")
    assert after.column("geometry").equals(before.column("geometry"))
