"""A large file's fingerprint is hashed in a thread while the file is read: the same SHA-256 of
the bytes as one hashed before the read, in the landed file's footer and in the history of a
run that lands and of one that fails; `HASHED_BESIDE` is lowered so that the small sample takes
the thread's path."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from citypipe.connectors import registry
from citypipe.core import incremental
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import DataError

JENA = "jena_parking.geojson"
SETTINGS = {"format": None, "crs": None}


def _expected(path: Path) -> str:
    """The fingerprint from the file's bytes, hashed here."""
    return incremental.settings_digest(hashlib.sha256(path.read_bytes()).hexdigest(), SETTINGS)


def test_a_large_file_is_hashed_in_a_thread(sample, monkeypatch) -> None:
    path = sample(JENA)
    seen: list[str] = []
    digest = incremental.file_digest
    monkeypatch.setattr(
        incremental,
        "file_digest",
        lambda *a: seen.append(threading.current_thread().name) or digest(*a),
    )
    monkeypatch.setattr(incremental, "HASHED_BESIDE", path.stat().st_size)
    assert incremental.fingerprint(path, SETTINGS)() == _expected(path)
    monkeypatch.setattr(incremental, "HASHED_BESIDE", path.stat().st_size + 1)
    assert incremental.fingerprint(path, SETTINGS)() == _expected(path)
    assert seen[0] != threading.current_thread().name  # the large one: in another thread
    assert seen[1] == threading.current_thread().name  # the small one: at once, here


def test_an_unreadable_file_has_no_fingerprint(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "a folder"  # stat succeeds, reading it does not
    folder.mkdir()
    for size in (0, 1 << 40):  # in the thread, and at once
        monkeypatch.setattr(incremental, "HASHED_BESIDE", size)
        assert incremental.fingerprint(folder, SETTINGS)() is None
        assert incremental.fingerprint(tmp_path / "missing.geojson", SETTINGS)() is None


def _fingerprints(lake: Lake) -> list[str | None]:
    rows = pq.read_table(lake.root / "history").to_pylist()
    return [r["fingerprint"] for r in sorted(rows, key=lambda r: r["started_at"])]


def test_landed_and_failed_runs_keep_the_same_fingerprint(
    tmp_path: Path, sample, monkeypatch
) -> None:
    path = sample(JENA)
    good = path.read_bytes()
    found = {}
    for beside in (0, 1 << 40):  # in a thread, and before the read
        monkeypatch.setattr(incremental, "HASHED_BESIDE", beside)
        lake = Lake(tmp_path / f"lake-{beside}")
        path.write_bytes(good)
        assert ingest(path, "jena", lake).features == 103  # jena_parking.geojson's points
        part = lake.partition("features", "jena") / "part-0.parquet"
        landed = pq.read_metadata(part).metadata[incremental.FINGERPRINT_KEY.encode()].decode()
        path.write_bytes(good[:100])  # cut short: not JSON any more
        with pytest.raises(DataError):
            ingest(path, "jena", lake)
        found[beside] = (landed, *_fingerprints(lake))
    assert found[0] == found[1 << 40]
    landed, first, failed = found[0]
    assert first == landed and failed is not None and failed != landed
    assert len(failed) == len(hashlib.sha256().hexdigest())


def test_a_file_replaced_while_read_is_read_again_by_the_next_run(
    tmp_path: Path, sample, monkeypatch
) -> None:
    """The file is replaced (atomically) after the reader took its bytes and before the thread
    hashed it: no fingerprint is kept for the run, where the new file's one, beside the old
    file's features, had the next run skip the new file as unchanged."""
    path = sample(JENA)
    doc = json.loads(path.read_bytes())
    doc["features"] = doc["features"][:10]
    new = tmp_path / "new.geojson"
    new.write_text(json.dumps(doc))
    replaced = threading.Event()
    digest = incremental.file_digest
    monkeypatch.setattr(incremental, "HASHED_BESIDE", 0)
    monkeypatch.setattr(
        incremental, "file_digest", lambda *a: replaced.wait(10) and digest(*a)
    )  # a hash queued behind other ingests' in the pool
    open_location = registry.open_location

    def opened(*args, **kwargs):
        connector = open_location(*args, **kwargs)
        read = connector.read

        def read_then_replace():
            batches = list(read())  # the old file's bytes
            os.replace(new, path)
            replaced.set()
            yield from batches

        connector.read = read_then_replace
        return connector

    monkeypatch.setattr(registry, "open_location", opened)
    lake = Lake(tmp_path / "lake")
    assert ingest(path, "jena", lake).features == 103  # jena_parking.geojson's points
    assert _fingerprints(lake) == [None]
    monkeypatch.setattr(registry, "open_location", open_location)
    again = ingest(path, "jena", lake, skip_unchanged=True)
    assert not again.unchanged and again.features == 10  # the new file's


def test_a_failed_hash_leaves_no_fingerprint_and_hides_no_error(
    tmp_path: Path, sample, monkeypatch
) -> None:
    """Hashing that fails (here a MemoryError) leaves the attempt without a fingerprint, the
    next run reads the file again, and the read's own error is the one raised."""
    path = sample(JENA)
    path.write_bytes(path.read_bytes()[:100])  # cut short: not JSON any more

    def failing() -> str:
        raise MemoryError

    monkeypatch.setattr(incremental, "fingerprint", lambda *a: failing)
    lake = Lake(tmp_path / "lake")
    with pytest.raises(DataError):
        ingest(path, "jena", lake)
    assert _fingerprints(lake) == [None]
