"""The solids taken to CRS84 on a thread of their own (pipelines/core/crs84.py `begin`): what
fails there fails the run as it would in the run's own thread."""

from __future__ import annotations

import threading

import pytest

from citypipe.core.ingest import ingest
from citypipe.geo import wkb_ragged


def test_an_error_on_the_thread_fails_the_run_and_keeps_the_output(
    sample, lake, read_lake, monkeypatch
):
    """The solids' WKB fails to be written (memory runs out) on the thread: the ingest raises
    that error, and the source's previous output stays as it was."""
    path = sample("cityjson/rotterdam_one_v1.1.city.json")
    ingest(path, "rotterdam", lake, validate=False)
    before = read_lake("rotterdam")
    where: list[str] = []

    def fails(*args: object) -> None:
        where.append(threading.current_thread().name)
        raise MemoryError("no memory for the solids' WKB")

    monkeypatch.setattr(wkb_ragged, "solids_z", fails)
    with pytest.raises(MemoryError, match="no memory for the solids' WKB"):
        ingest(path, "rotterdam", lake, validate=False)
    assert where and where[0] != threading.current_thread().name  # raised on the thread
    assert read_lake("rotterdam").equals(before)
