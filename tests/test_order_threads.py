"""The ordered writer's threads: a spilled source's row groups encoded beside its sort, a sealed
writer's encoded while the run validates, its footer written and its file flushed there too;
errors raised at close (a sealed writer's at its wait), files shut once encoded."""

from __future__ import annotations

import threading

import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES
from ordered import footers_of, write_ordered

from citypipe import schemas
from citypipe.core import lake_layout
from citypipe.core import order as ordering
from citypipe.core import write as write_module
from citypipe.core.ingest import ingest
from citypipe.core.order import OrderedWriter
from citypipe.core.write import GeoParquetWriter


def _threads_writing(monkeypatch, fail: bool = False) -> list[str]:
    """The threads each row group of an ordered file is encoded on (the first failing if
    `fail`)."""
    threads: list[str] = []
    write = GeoParquetWriter.write

    def noted(self, batch) -> None:
        threads.append(threading.current_thread().name)
        if fail:
            raise OSError("no room left on the device")
        write(self, batch)

    monkeypatch.setattr(GeoParquetWriter, "write", noted)
    return threads


def test_a_spilled_source_is_encoded_beside_its_sort(fountains_grid, tmp_path, monkeypatch):
    """Sorted out of core, the row groups are encoded on a thread of their own while the next is
    sorted (the file is the same: above); sorted in memory (a small source), on the run's."""
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    threads = _threads_writing(monkeypatch)
    write_ordered(tmp_path / "memory.parquet", batches)
    assert threads == [threading.current_thread().name] * 4
    threads.clear()
    write_ordered(tmp_path / "spilled.parquet", batches, memory_budget=0, bucket_bytes=64 << 10)
    assert len(threads) == 4 and threading.current_thread().name not in threads


def test_a_spilled_sources_encoding_error_is_raised_and_its_spill_removed(
    fountains_grid, tmp_path, monkeypatch
):
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    _threads_writing(monkeypatch, fail=True)
    with pytest.raises(OSError, match="no room"):
        write_ordered(tmp_path / "f.parquet", batches, memory_budget=0)
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]  # no spill, no buckets


@pytest.fixture
def sealed_from_any(monkeypatch) -> None:
    """Any source sealed on the thread, however few its rows (`SEALED_FROM`)."""
    monkeypatch.setattr(ordering, "SEALED_FROM", 0)


def _sealed(path, batches, **options) -> OrderedWriter:
    """An ordered writer given `batches`, sealed (their encoding begun on its thread), open."""
    writer = OrderedWriter(path, schemas.feature_schema(), row_group_rows=500, **options)
    for batch in batches:
        writer.write(batch)
    writer.seal()
    return writer


def test_a_sealed_writer_encodes_on_its_thread_the_same_file(
    fountains_grid, tmp_path, monkeypatch, sealed_from_any
):
    """Sealed once every row is given (as a validated run does before its suite), the rows are
    sorted and encoded on a thread of their own, and the footer written and the file flushed
    there once closed: the same rows, order, row groups and footer as written at close on the
    run's thread."""
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    write_ordered(tmp_path / "closed.parquet", batches)
    threads = _threads_writing(monkeypatch)
    writer = _sealed(tmp_path / "sealed.parquet", batches)
    with writer:
        writer.metadata[b"run"] = b"{}"
    assert writer.wait() and writer.wait()  # flushed, and asked again at once
    assert len(threads) == 4 and threading.current_thread().name not in threads
    closed, sealed = (pq.ParquetFile(tmp_path / f"{n}.parquet") for n in ("closed", "sealed"))
    assert sealed.read().equals(closed.read())
    assert sealed.metadata.num_row_groups == closed.metadata.num_row_groups == 4
    assert footers_of(tmp_path / "sealed.parquet") == footers_of(tmp_path / "closed.parquet")
    assert sealed.metadata.metadata[b"run"] == b"{}"


def test_a_sealed_writers_error_is_raised_at_its_wait_and_no_footer_written(
    fountains_grid, tmp_path, monkeypatch, sealed_from_any
):
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    write = GeoParquetWriter.write

    def second_refused(self, batch) -> None:
        if self.rows:
            raise OSError("no room left on the device")
        write(self, batch)

    monkeypatch.setattr(GeoParquetWriter, "write", second_refused)
    writer = _sealed(tmp_path / "f.parquet", batches)
    with writer:
        pass
    with pytest.raises(OSError, match="no room"):
        writer.wait()
    assert not writer.wait()  # not flushed; the error raised once
    data = (tmp_path / "f.parquet").read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] != b"PAR1"


def test_a_run_failing_after_the_seal_shuts_the_file_once_encoded(
    fountains_grid, tmp_path, monkeypatch, sealed_from_any
):
    """The run's error is the one raised; the thread's row groups are written, then the file
    is shut without its footer (the run's staging folder is removed with it)."""
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    threads = _threads_writing(monkeypatch)
    writer = _sealed(tmp_path / "f.parquet", batches)
    with pytest.raises(RuntimeError, match="the suite failed"), writer:
        raise RuntimeError("the suite failed")
    assert len(threads) == 4
    data = (tmp_path / "f.parquet").read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] != b"PAR1"


def test_an_interrupted_wait_returns_once_its_thread_is_done_with_the_file(
    fountains_grid, tmp_path, monkeypatch, sealed_from_any
):
    """A wait for a sealed writer's thread interrupted (Ctrl-C) while the thread still writes:
    the interruption is raised only once the thread is done with the file (the run's staging
    folder is removed after it)."""
    _, file, _, _ = fountains_grid
    batches = pq.read_table(file).slice(0, 2000).to_batches(max_chunksize=700)
    gate, written = threading.Event(), []
    write = GeoParquetWriter.write

    def gated(self, batch) -> None:
        assert gate.wait(timeout=10)
        write(self, batch)
        written.append(batch.num_rows)

    submit = ordering._ENCODING.submit

    def interrupted_once(function, *args):
        future = submit(function, *args)
        if function.__name__ == "_close_flushed":  # the wait for the footer, not the rows'
            result = future.result

            def first_interrupted(timeout=None):
                future.result = result
                gate.set()  # the thread goes on writing while the run is interrupted
                raise KeyboardInterrupt

            future.result = first_interrupted
        return future

    monkeypatch.setattr(GeoParquetWriter, "write", gated)
    monkeypatch.setattr(ordering._ENCODING, "submit", interrupted_once)
    writer = _sealed(tmp_path / "f.parquet", batches)
    writer.close()
    with pytest.raises(KeyboardInterrupt):
        writer.wait()
    assert len(written) == 4 and writer.flushed


def test_a_run_encodes_large_features_beside_its_hash_and_suite(lake, monkeypatch):
    """An ingest seals its features once every row is given: those of `SEALED_FROM` bytes or
    more are encoded on the writer's thread while the run hashes its input and validates,
    smaller ones at close on the run's thread; the same features land either way."""
    sample = SAMPLES / "barcelona_drinking_fountains.geojson"
    threads = _threads_writing(monkeypatch)
    landed = {}
    for sealed_from in (1 << 40, 0):
        monkeypatch.setattr(ordering, "SEALED_FROM", sealed_from)
        for validate in (False, True):
            threads.clear()
            ingest(sample, "s", lake, validate=validate, render_docs=False)
            assert threads
            on_this_thread = set(threads) == {threading.current_thread().name}
            assert on_this_thread == (sealed_from > 0)
            features = pq.read_table(lake.partition("features", "s") / "part-0.parquet")
            landed[sealed_from, validate] = features.drop_columns(["ingested_at"])
    first, *others = landed.values()
    assert all(first.equals(other) for other in others)


def test_a_run_waits_for_its_sealed_features_at_the_commit(lake, monkeypatch, sealed_from_any):
    """A sealed run's features file is finished on their thread (footer, flush) and waited for
    at the commit, which does not flush it again; the thread's error fails the run, whose
    previous output is kept."""
    sample = SAMPLES / "barcelona_drinking_fountains.geojson"
    flushes: list[tuple[str, str]] = []
    for module in (write_module, lake_layout):
        fsync = module.fsync

        def noted(path, fsync=fsync) -> None:
            flushes.append((path.name, threading.current_thread().name))
            fsync(path)

        monkeypatch.setattr(module, "fsync", noted)
    ingest(sample, "s", lake, validate=False, render_docs=False)
    by = [thread for name, thread in flushes if name == "features.parquet"]
    assert len(by) == 1 and by[0].startswith("citypipe-encode")
    landed = lake.partition("features", "s") / "part-0.parquet"
    before = pq.read_table(landed)
    close = GeoParquetWriter.close

    def refused(self) -> None:
        if threading.current_thread().name.startswith("citypipe-encode"):
            raise OSError("no room left on the device")
        close(self)

    monkeypatch.setattr(GeoParquetWriter, "close", refused)
    with pytest.raises(OSError, match="no room"):
        ingest(sample, "s", lake, validate=False, render_docs=False)
    assert pq.read_table(landed).equals(before)
