"""The surfaces' file written on a thread beside the run (write.BesideWriter): the same file as
written in line, every batch in the order given, at most one batch waiting, the thread's error
raised in the run (which then lands nothing), a failed run's or write's file shut without a
footer, and no thread where no row comes."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

from citypipe import schemas
from citypipe.core import write
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.core.write import BesideWriter, GeoParquetWriter, RowsWriter

SAMPLE = SAMPLES / "cityjson" / "rotterdam_one_v1.1.city.json"
"""A CityJSON document whose buildings name semantic surfaces (`semantics`)."""


class _Slow:
    """A writer that takes its time over each batch and notes what it was given, and when."""

    def __init__(self, path: Path, fail_at: int | None = None) -> None:
        self.path = path  # a file, which the thread flushes once it is closed
        path.touch()
        self.metadata: dict[str, bytes] = {}
        self.log: list[tuple[str, Any]] = []
        self.fail_at = fail_at

    def write(self, batch: pa.RecordBatch) -> None:
        time.sleep(0.02)
        if len(self.log) == self.fail_at:
            raise OSError("no room left on the device")
        self.log.append(("write", batch.column(0)[0].as_py()))

    def close(self) -> None:
        self.log.append(("close", threading.current_thread().name))

    def shut(self) -> None:
        self.log.append(("shut", threading.current_thread().name))


@pytest.fixture(autouse=True)
def _every_batch_beside(monkeypatch) -> None:
    """The thread from the first row on, as a large source has it (see the last test)."""
    monkeypatch.setattr(BesideWriter, "from_rows", 1)


def _batch(i: int) -> pa.RecordBatch:
    return pa.record_batch({"n": [i]})


def test_the_surfaces_file_is_the_one_written_in_line(
    tmp_path: Path, lake: Lake, read_lake: Callable[[str, str], pa.Table]
) -> None:
    sample = SAMPLE
    assert b'"semantics"' in sample.read_bytes()
    ingest(sample, "s", lake, validate=False, render_docs=False)
    landed = read_lake("s", "surfaces")
    assert landed.num_rows  # the sample names semantic surfaces
    table = schemas.feature_schema().table("surfaces")
    again = tmp_path / "in_line.parquet"
    writer = GeoParquetWriter(again, table)
    for batch in landed.to_batches(max_chunksize=max(1, landed.num_rows // 3)):
        writer.write(batch)
    writer.close()
    beside = tmp_path / "beside.parquet"
    threaded = BesideWriter(GeoParquetWriter(beside, table))
    for batch in landed.to_batches(max_chunksize=max(1, landed.num_rows // 3)):
        threaded.write(batch)
    threaded.close()
    threaded.wait()
    assert pq.read_table(beside).equals(pq.read_table(again))
    assert pq.read_metadata(beside).metadata[b"geo"] == pq.read_metadata(again).metadata[b"geo"]


def test_batches_in_order_one_waiting_and_the_close_on_the_thread(tmp_path: Path) -> None:
    slow = _Slow(tmp_path / "slow")
    beside = BesideWriter(cast(GeoParquetWriter, slow))
    for i in range(4):
        beside.write(_batch(i))
        # write waits for the batch before: at most the one just given is not yet written
        assert len(slow.log) >= i
    beside.close()
    beside.wait()
    assert slow.log[:4] == [("write", i) for i in range(4)]
    kind, thread = slow.log[4]
    assert kind == "close" and thread != threading.current_thread().name
    assert beside.flushed


class _Gated(_Slow):
    """A writer whose writes wait for the test to open its gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()

    def write(self, batch: pa.RecordBatch) -> None:
        if not self.gate.wait(timeout=10):
            raise TimeoutError("the gate was never opened")
        self.log.append(("write", batch.column(0)[0].as_py()))


def test_close_does_not_wait_for_the_last_write(tmp_path: Path) -> None:
    """The run's thread goes on (to its features) while the last batch is written; the footer
    and the flush follow it on the thread."""
    gated = _Gated(tmp_path / "gated")
    beside = BesideWriter(cast(GeoParquetWriter, gated))
    beside.write(_batch(0))
    beside.close()
    assert gated.log == []  # the write is still waiting at its gate
    gated.gate.set()
    beside.wait()
    assert gated.log[0] == ("write", 0)
    kind, thread = gated.log[1]
    assert kind == "close" and thread != threading.current_thread().name
    assert beside.flushed


def test_the_threads_error_is_raised_in_the_run(tmp_path: Path) -> None:
    beside = BesideWriter(cast(GeoParquetWriter, _Slow(tmp_path / "slow", fail_at=1)))
    with pytest.raises(OSError, match="no room"):
        for i in range(3):
            beside.write(_batch(i))
        beside.close()
        beside.wait()
    beside.wait()  # the thread is gone: waiting again has nothing to wait for


def test_a_failing_surfaces_file_lands_nothing(lake: Lake, monkeypatch) -> None:
    sample = SAMPLE

    def full(self: GeoParquetWriter, batch: pa.RecordBatch) -> None:
        raise OSError("the disk is full")

    monkeypatch.setattr(write.GeoParquetWriter, "write", full)
    with pytest.raises(Exception, match="full"):
        ingest(sample, "s", lake, validate=False, render_docs=False)
    assert not (lake.runs_folder("s") / "current").exists()
    assert not list(lake.staging.iterdir())


def test_a_failed_run_only_shuts_the_file_once_the_thread_is_done(tmp_path: Path) -> None:
    slow = _Slow(tmp_path / "slow")
    beside = BesideWriter(cast(GeoParquetWriter, slow))
    with pytest.raises(RuntimeError, match="the run failed"), beside:
        for i in range(2):
            beside.write(_batch(i))
        raise RuntimeError("the run failed")
    beside.wait()
    # the batch the thread was writing is done, then no footer, no flush: only shut
    assert slow.log == [("write", 0), ("write", 1), ("shut", threading.current_thread().name)]
    assert not beside.flushed


def test_a_run_failing_midway_writes_no_surfaces_footer(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[tuple[str, str]] = []
    write_, close = GeoParquetWriter.write, GeoParquetWriter.close

    def written(self: GeoParquetWriter, batch: pa.RecordBatch) -> None:
        done.append(("write", Path(self.path).name))
        write_(self, batch)

    def closed(self: GeoParquetWriter) -> None:
        done.append(("close", Path(self.path).name))
        close(self)

    def refused(self: RowsWriter, rows: list[dict[str, Any]]) -> None:
        raise OSError("the rejects' disk is full")

    monkeypatch.setattr(GeoParquetWriter, "write", written)
    monkeypatch.setattr(GeoParquetWriter, "close", closed)
    monkeypatch.setattr(write, "fsync", lambda path: done.append(("fsync", Path(path).name)))
    monkeypatch.setattr(RowsWriter, "write", refused)  # after the batch's surfaces
    with pytest.raises(OSError, match="rejects' disk"):
        ingest(SAMPLE, "s", lake, validate=False, render_docs=False)
    assert ("write", "surfaces.parquet") in done  # the run failed with surfaces written
    assert [d for d in done if d[0] != "write"] == []
    assert not list(lake.staging.iterdir())


def _open_by_us(path: Path) -> bool:
    """Whether this process holds `path` open (Linux: its descriptors in /proc)."""
    fds = Path("/proc/self/fd")
    return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())


def test_a_failed_write_then_close_shuts_the_file_without_a_footer(
    tmp_path: Path, lake: Lake, read_lake: Callable[[str, str], pa.Table]
) -> None:
    ingest(SAMPLE, "s", lake, validate=False, render_docs=False)
    landed = read_lake("s", "surfaces")
    table = schemas.feature_schema().table("surfaces")
    path = tmp_path / "beside.parquet"
    beside = BesideWriter(GeoParquetWriter(path, table))
    beside.write(landed)
    beside.write(landed.drop_columns(["geometry_3d"]))  # fails on the thread
    beside.close()  # the footer handed to the thread behind it: the error comes with the wait
    with pytest.raises(KeyError, match="geometry_3d"):
        beside.wait()
    beside.wait()
    if Path("/proc/self/fd").is_dir():
        assert not _open_by_us(path)
    del beside
    gc.collect()  # a writer left open would write its footer now
    assert path.read_bytes()[:4] == b"PAR1" and path.read_bytes()[-4:] != b"PAR1"


def test_no_row_no_thread_no_file(tmp_path: Path) -> None:
    before = threading.active_count()
    table = schemas.feature_schema().table("surfaces")
    beside = BesideWriter(GeoParquetWriter(tmp_path / "s.parquet", table, empty_file=False))
    beside.write(pa.RecordBatch.from_pylist([], schema=table.arrow))
    beside.close()
    assert threading.active_count() == before
    beside.wait()
    assert not (tmp_path / "s.parquet").exists()


def test_each_file_flushed_once_the_surfaces_on_their_thread(lake: Lake, monkeypatch) -> None:
    from citypipe.core import lake_layout

    flushed: list[tuple[str, str]] = []
    fsync = lake_layout.fsync

    def counted(path: Path) -> None:
        flushed.append((Path(path).name, threading.current_thread().name))
        fsync(path)

    monkeypatch.setattr(write, "fsync", counted)
    monkeypatch.setattr(lake_layout, "fsync", counted)
    ingest(SAMPLE, "s", lake, validate=False, render_docs=False)
    names = [name for name, _ in flushed]
    assert sorted(names) == ["features.parquet", "surfaces.parquet"]
    on = dict(flushed)
    assert on["features.parquet"] == threading.main_thread().name
    assert on["surfaces.parquet"] != threading.main_thread().name


def test_a_small_source_writes_its_surfaces_on_the_runs_thread(tmp_path: Path, monkeypatch) -> None:
    """Batches under `from_rows` before any thread: written in line, no thread started, the
    file closed in line and left for the commit to flush."""
    monkeypatch.setattr(BesideWriter, "from_rows", 2)
    slow = _Slow(tmp_path / "f")
    with BesideWriter(cast(GeoParquetWriter, slow)) as beside:
        beside.write(_batch(0))
        assert beside._pool is None and slow.log == [("write", 0)]
    beside.wait()
    assert slow.log[-1] == ("close", threading.current_thread().name) and not beside.flushed
