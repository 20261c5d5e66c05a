"""A source whose file and settings did not change since its run landed is not ingested again
(`skip_unchanged`, what `citypipe run` and the Dagster assets do): the lake keeps that run, and
the report gives its counts and checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES

from citypipe.core.ingest import ChecksFailed, ingest
from citypipe.core.lake import Lake

JENA = "jena_parking.geojson"  # 103 points


def _landed_run(lake: Lake, source: str) -> str:
    part = lake.partition("features", source) / "part-0.parquet"
    return json.loads(pq.read_metadata(part).metadata[b"citypipe:run"])["run_id"]


def test_an_unchanged_file_is_not_read_again(lake: Lake, sample) -> None:
    path = sample(JENA)
    first = ingest(path, "jena", lake, theme="parking", skip_unchanged=True)
    again = ingest(path, "jena", lake, theme="parking", skip_unchanged=True)
    assert not first.unchanged and again.unchanged
    assert again.run_id == first.run_id == _landed_run(lake, "jena")
    assert again.features == len(json.loads((SAMPLES / JENA).read_bytes())["features"]) == 103
    assert [(c.name, c.passed, c.failed) for c in again.checks] == [
        (c.name, c.passed, c.failed) for c in first.checks
    ]
    assert again.seconds < 1
    # touched, not changed: still the same bytes
    os.utime(path, (0, 0))
    assert ingest(path, "jena", lake, theme="parking", skip_unchanged=True).unchanged


def test_new_bytes_new_settings_or_no_skipping_ingest_again(lake: Lake, sample) -> None:
    path = sample(JENA)
    runs = [ingest(path, "jena", lake, theme="parking", skip_unchanged=True).run_id]
    # other settings
    report = ingest(path, "jena", lake, theme="mobility", skip_unchanged=True)
    assert not report.unchanged
    runs.append(report.run_id)
    # one feature fewer in the file
    data = json.loads(path.read_bytes())
    data["features"] = data["features"][1:]
    path.write_text(json.dumps(data))
    report = ingest(path, "jena", lake, theme="mobility", skip_unchanged=True)
    assert not report.unchanged and report.features == 102
    runs.append(report.run_id)
    # asked to ingest, not to skip
    report = ingest(path, "jena", lake, theme="mobility")
    assert not report.unchanged
    runs.append(report.run_id)
    assert len(set(runs)) == 4 and _landed_run(lake, "jena") == runs[-1]


def test_a_run_that_did_not_land_is_not_taken_for_the_input(lake: Lake, tmp_path: Path) -> None:
    """A file that fails its blocking count check lands nothing; fixed back, the same bytes as
    the landed run are unchanged, the failed attempt's are not."""
    source = json.loads((SAMPLES / JENA).read_bytes())
    path = tmp_path / "jena.geojson"
    path.write_text(json.dumps(source))
    landed = ingest(path, "jena", lake, skip_unchanged=True)
    source["totalFeatures"] = 999
    path.write_text(json.dumps(source))
    with pytest.raises(ChecksFailed, match="matches_declared_count"):
        ingest(path, "jena", lake, skip_unchanged=True)
    assert _landed_run(lake, "jena") == landed.run_id
    source.pop("totalFeatures")
    path.write_text(json.dumps(source))
    assert ingest(path, "jena", lake, skip_unchanged=True).unchanged


def test_a_raw_snapshot_is_hashed_once_and_read_again_only_when_it_changed(tmp_path: Path):
    """The raw asset hashes the file while it copies it; the ingest's fingerprint takes that
    digest while the snapshot's size and modification time are those it was recorded with,
    and reads the bytes again once either moved."""
    import hashlib

    from citypipe.core.incremental import file_digest
    from citypipe.orchestration.assets import land_snapshot

    src = SAMPLES / "jena_parking.geojson"
    dest = tmp_path / "raw" / src.name
    size, sha256 = land_snapshot(src, dest)
    assert sha256 == hashlib.sha256(src.read_bytes()).hexdigest() == file_digest(dest)
    record = dest.with_name(f".{dest.name}.sha256")
    kept = record.read_text().split()
    record.write_text(" ".join(["0" * 64, *kept[1:]]))  # a digest only the record holds
    assert file_digest(dest) == "0" * 64  # taken from the record: the file is not read
    st = dest.stat()
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # the same bytes, touched
    assert file_digest(dest) == sha256
    dest.write_bytes(dest.read_bytes().replace(b"Jena", b"JENA"))  # new bytes, same size
    assert dest.stat().st_size == size and file_digest(dest) != sha256


@pytest.mark.parametrize("size", [0, 1, 4096, 1 << 18, (1 << 18) + 1, 3 << 18])
@pytest.mark.parametrize("whole", [0, 1 << 20])
def test_a_file_is_hashed_alike_read_whole_or_by_blocks(tmp_path: Path, monkeypatch, size, whole):
    """The SHA-256 of a file's bytes whether it is read at once (up to READ_WHOLE) or through
    hashlib's buffer of 256 kB: empty, one byte, across a buffer's end."""
    import hashlib

    from citypipe.core import incremental

    monkeypatch.setattr(incremental, "READ_WHOLE", whole)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert incremental.file_digest(path) == hashlib.sha256(data).hexdigest()
