"""Every ingest of a source leaves its row in the lake's history, whatever became of it: landed,
unchanged, failed or found dead; the rows are plain Parquet files that DuckDB and pyarrow read
without citypipe, and the warehouse's `history` view beside `sources`."""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

from citypipe.core import lake_layout, warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake, new_run_id
from citypipe.geo.errors import DataError

JENA = "jena_parking.geojson"


def _features(path: Path) -> int:
    return len(json.loads(path.read_bytes())["features"])


def _history(lake: Lake) -> list[dict]:
    """The history as plain pyarrow reads the folder, oldest first."""
    rows = pq.read_table(lake.root / "history").to_pylist()
    return sorted(rows, key=lambda r: (r["started_at"], r["run_id"]))


def test_changed_unchanged_and_failing_ingests_leave_three_rows(lake: Lake, sample) -> None:
    path = sample(JENA)
    count = _features(SAMPLES / JENA)
    first = ingest(path, "jena", lake, skip_unchanged=True)
    again = ingest(path, "jena", lake, skip_unchanged=True)
    assert again.unchanged
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # cut short: not JSON any more
    with pytest.raises(DataError):
        ingest(path, "jena", lake, skip_unchanged=True)

    rows = _history(lake)
    assert [r["status"] for r in rows] == ["ok", "unchanged", "failed"]
    assert [r["source"] for r in rows] == ["jena"] * 3
    assert len({r["run_id"] for r in rows}) == 3
    assert rows[0]["run_id"] == first.run_id
    assert first.run_id in rows[1]["reason"] and "invalid JSON" in rows[2]["reason"]
    counts = [(r["records"], r["features"], r["rejects"]) for r in rows]
    assert counts[:2] == [(count, count, 0)] * 2
    assert rows[2]["features"] is None
    assert rows[0]["fingerprint"] == rows[1]["fingerprint"] != rows[2]["fingerprint"]
    assert all(r["started_at"] <= r["ended_at"] for r in rows)
    assert all(a["ended_at"] <= b["started_at"] for a, b in itertools.pairwise(rows))
    assert {r["path"] for r in rows} == {str(path)}

    # DuckDB on the plain files, no citypipe
    statuses = duckdb.sql(
        f"SELECT status, count(*) FROM read_parquet('{lake.root}/history/*/*.parquet') "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert statuses == [("failed", 1), ("ok", 1), ("unchanged", 1)]

    warehouse.refresh(lake)
    _, found = warehouse.query(lake, "SELECT features, last_attempt_status FROM sources")
    assert found == [(count, "failed")]
    _, found = warehouse.query(
        lake,
        "SELECT h.run_id, h.status, h.features, h.run_id = s.run_id FROM history h "
        "JOIN sources s USING (source) ORDER BY h.started_at",
    )
    assert found == [
        (rows[0]["run_id"], "ok", count, True),
        (rows[1]["run_id"], "unchanged", count, False),
        (rows[2]["run_id"], "failed", None, False),
    ]


def test_replaced_runs_stay_in_the_history(lake: Lake, sample) -> None:
    path = sample(JENA)
    ingest(path, "jena", lake)
    data = json.loads(path.read_bytes())
    data["features"] = data["features"][1:]
    path.write_text(json.dumps(data))
    ingest(path, "jena", lake)
    rows = _history(lake)
    count = _features(SAMPLES / JENA)
    assert [(r["status"], r["features"]) for r in rows] == [("ok", count), ("ok", count - 1)]
    # the landed runs' own folders: only the last one is kept, its row and the replaced one's stay
    lake_layout.removed()  # the replaced run's folder goes on a thread of its own
    assert len([p for p in (lake.root / ".runs" / "jena").iterdir() if p.name[0].isdigit()]) == 1
    # the fingerprint hashes the bytes (with the settings): a new file, a new fingerprint
    assert rows[0]["fingerprint"] != rows[1]["fingerprint"]
    assert len(rows[1]["fingerprint"]) == len(hashlib.sha256().hexdigest())


def test_a_landed_row_not_yet_linked_is_linked_by_the_next_run(lake: Lake, sample) -> None:
    """A process killed between the commit and linking its row: the row is in the landed run's
    folder, and the next run of the source links it first."""
    path = sample(JENA)
    first = ingest(path, "jena", lake)
    linked = lake.root / "history" / "jena" / f"{first.run_id}.parquet"
    os.unlink(linked)
    second = ingest(path, "jena", lake)
    assert [r["run_id"] for r in _history(lake)] == [first.run_id, second.run_id]


def test_without_hard_links_a_row_is_copied_into_the_table_once(
    lake: Lake, sample, monkeypatch
) -> None:
    """A file system without hard links (link refused): a landed run's row is copied into the
    table, and the next run, which looks for it again, leaves that copy as it is."""

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "hard links are not supported")

    monkeypatch.setattr(os, "link", refused)
    path = sample(JENA)
    first = ingest(path, "jena", lake)
    copied = lake.root / "history" / "jena" / f"{first.run_id}.parquet"
    before = copied.stat()
    second = ingest(path, "jena", lake)
    assert [r["run_id"] for r in _history(lake)] == [first.run_id, second.run_id]
    assert copied.stat().st_ino == before.st_ino and copied.stat().st_nlink == 1


def test_a_row_staged_as_an_earlier_citypipe_staged_it_is_linked(lake: Lake, sample) -> None:
    """A run landed by a citypipe that staged its row in a folder as the table's
    (`history/<NAME>/<run>.parquet` in the run's folder), killed before it linked it."""
    path = sample(JENA)
    first = ingest(path, "jena", lake)
    run = lake.root / ".runs" / "jena" / first.run_id
    earlier = run / "history" / "jena" / f"{first.run_id}.parquet"
    earlier.parent.mkdir(parents=True)
    os.replace(run / "history.parquet", earlier)
    os.unlink(lake.root / "history" / "jena" / f"{first.run_id}.parquet")
    second = ingest(path, "jena", lake)
    assert [r["run_id"] for r in _history(lake)] == [first.run_id, second.run_id]


def test_a_dead_run_is_in_the_history_as_interrupted(lake: Lake, sample) -> None:
    path = sample(JENA)
    ingest(path, "jena", lake)
    dead = new_run_id(datetime.now(UTC))
    (lake.staging / f"jena@{dead}").mkdir(parents=True)  # what a killed run leaves
    ingest(path, "jena", lake)
    rows = {r["run_id"]: r for r in _history(lake)}
    assert len(rows) == 3
    assert rows[dead]["status"] == "interrupted" and rows[dead]["ended_at"] is None
    assert "killed" in rows[dead]["reason"]


def _named(fd: int) -> str:
    """The name of the file a descriptor is open on."""
    return Path(os.readlink(f"/proc/self/fd/{fd}")).name


def test_a_landed_row_is_flushed_beside_the_runs_files(lake: Lake, sample, monkeypatch) -> None:
    """The row's flush and the features' are in flight at once: each waits here until the other
    has begun (one after another, the first would wait for ever: 5 s, then fail)."""
    begun = {name: threading.Event() for name in ("history.parquet", "features.parquet")}
    fsync = os.fsync

    def together(fd: int) -> None:
        name = _named(fd)
        if name in begun:
            begun[name].set()
            other = next(n for n in begun if n != name)
            assert begun[other].wait(5), f"{name} flushed alone"
        fsync(fd)

    monkeypatch.setattr(os, "fsync", together)
    ingest(sample(JENA), "jena", lake, validate=False)
    assert [r["status"] for r in _history(lake)] == ["ok"]


@pytest.mark.parametrize("failing", ["history.parquet", "features.parquet"])
def test_a_failed_flush_fails_the_run_once_every_flush_is_done(
    lake: Lake, sample, monkeypatch, failing: str
) -> None:
    """Either flush failing (the disk's error) fails the run, the landed run kept; the row's
    descriptor stays open on the row until its own flush on the other thread has returned."""
    path = sample(JENA)
    ingest(path, "jena", lake, validate=False)
    landed = pq.read_table(lake.root / "features" / "jena")
    fsync = os.fsync
    held: list[str] = []

    def failed(fd: int) -> None:
        name = _named(fd)
        if name == "history.parquet":
            time.sleep(0.2)  # the features' flush fails meanwhile
            held.append(_named(fd))
        if name == failing:
            raise OSError(errno.EIO, "the disk failed")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", failed)
    with pytest.raises(OSError, match="the disk failed"):
        ingest(path, "jena", lake, validate=False)
    monkeypatch.setattr(os, "fsync", fsync)
    assert held == ["history.parquet"]
    assert pq.read_table(lake.root / "features" / "jena").equals(landed)
    assert [r["status"] for r in _history(lake)] == ["ok", "failed"]
