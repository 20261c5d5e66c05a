"""A run lands whole or not at all: whatever ends an attempt (a refusal, a failed check, an error
between the commit's steps, a full disk, SIGKILL), the source's features, rejects and surfaces
all belong to one run, the warehouse answers, the failed attempt's rejects can be queried, and
nothing is left in staging.

Two versions of the Den Haag CityJSON subset (12 objects, MANIFEST) tell the runs apart by their
data: version A is the file; version B lacks the standalone Building GUID_3D7D60B9... and has one
BuildingPart whose boundaries name a vertex the file does not have (rejected).
"""

from __future__ import annotations

import copy
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, SAMPLES

from citypipe.core import lake_layout, warehouse
from citypipe.core.ingest import ChecksFailed, NothingIngested, ingest
from citypipe.core.lake import KINDS, Lake
from citypipe.geo.errors import CitypipeError, DataError, UnavailableError

SUBSET = SAMPLES / "cityjson" / "denhaag_DH_01_subset_v1.1.city.json"
CRS = "EPSG:7415"  # the Den Haag model's CRS (MANIFEST); the subset declares none
ALONE = "GUID_3D7D60B9-8F3A-4D3B-A3E5-CD9B5565A5B2"  # a Building with its own Solid, no parts
BROKEN = "GUID_DBDABF53-7DD5-4C2F-BE7F-51F29A0CBA16_3"  # a BuildingPart of a three-part Building


def _versions(tmp_path: Path) -> tuple[Path, Path]:
    doc = json.loads(SUBSET.read_text())
    b = copy.deepcopy(doc)
    del b["CityObjects"][ALONE]
    solid = b["CityObjects"][BROKEN]["geometry"][0]["boundaries"]
    solid[0][0][0][0] = len(doc["vertices"]) + 7  # a vertex index past the end of `vertices`
    paths = tmp_path / "a.city.json", tmp_path / "b.city.json"
    for path, version in zip(paths, (doc, b), strict=True):
        path.write_text(json.dumps(version))
    return paths


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    return _versions(tmp_path)


def _table(lake: Lake, kind: str, source: str = "dh"):
    return pq.read_table(lake.partition(kind, source))


def assert_one_run(lake: Lake, source: str = "dh") -> str:
    """The source's three tables hold version A or version B, never parts of both; says which."""
    features = _table(lake, "features", source)
    rejects = _table(lake, "rejects", source)
    surfaces = _table(lake, "surfaces", source)
    ids = set(features.column("source_id").to_pylist())
    rejected = rejects.column("source_id").to_pylist()
    surfaced = {f.split("/", 1)[1] for f in surfaces.column("feature_id").to_pylist()}
    objects = set(json.loads(SUBSET.read_text())["CityObjects"])
    if ALONE in ids:
        version = "A"
        assert ids == objects and rejected == []
        assert ALONE in surfaced and BROKEN in surfaced
    else:
        version = "B"
        assert ids == objects - {ALONE, BROKEN} and rejected == [BROKEN]
        assert ALONE not in surfaced and BROKEN not in surfaced
    assert surfaced <= ids
    run = json.loads(
        pq.read_metadata(lake.partition("features", source) / "part-0.parquet").metadata[
            b"citypipe:run"
        ]
    )
    assert set(rejects.column("run_id").to_pylist()) <= {run["run_id"]}
    started = {t.isoformat() for t in features.column("ingested_at").to_pylist()}
    assert started == {run["last_ingest"]}
    return version


def assert_no_leftovers(lake: Lake, source: str = "dh") -> None:
    lake_layout.removed()  # the replaced runs' folders go on a thread of their own
    assert not any(lake.staging.iterdir())
    runs = lake.root / ".runs" / source
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == sorted(
        [os.readlink(runs / "current"), "current"]
    )


def _warehouse_count(lake: Lake, source: str = "dh") -> int:
    warehouse.refresh(lake)
    return warehouse.query(lake, f"SELECT count(*) FROM features WHERE source = '{source}'")[1][0][
        0
    ]


# -- failures that end an attempt ------------------------------------------------------------------


def _wrong_crs(path: Path, lake: Lake, tmp_path: Path) -> None:
    """Esslingen's 250 parking places in UTM metres (EPSG:25832), read as degrees."""
    ingest(SAMPLES / "esslingen_parking_epsg25832.geojson", "dh", lake, crs="EPSG:4326")


def _nothing_ingestible(path: Path, lake: Lake, tmp_path: Path) -> None:
    """Jena's 103 parking places, every one moved to longitude 500."""
    doc = json.loads((SAMPLES / "jena_parking.geojson").read_text())
    for f in doc["features"]:
        f["geometry"] = {"type": "Point", "coordinates": [500.0, 50.9]}
    bad = tmp_path / "nowhere.geojson"
    bad.write_text(json.dumps(doc))
    ingest(bad, "dh", lake)


def _unreadable(path: Path, lake: Lake, tmp_path: Path) -> None:
    bad = tmp_path / "cut.city.json"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ingest(bad, "dh", lake, crs=CRS, validate=False)


def _failing_blocking_check(path: Path, lake: Lake, tmp_path: Path) -> None:
    """A GeoJSON saying it holds more features than it does fails matches_declared_count."""
    doc = json.loads((SAMPLES / "jena_parking.geojson").read_text())
    doc["numberMatched"] = len(doc["features"]) + 5
    bad = tmp_path / "short.geojson"
    bad.write_text(json.dumps(doc))
    ingest(bad, "dh", lake)


FAILURES = {
    "nothing ingestible": (_nothing_ingestible, NothingIngested),
    "wrong crs": (_wrong_crs, NothingIngested),
    "unreadable": (_unreadable, DataError),
    "blocking check": (_failing_blocking_check, ChecksFailed),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_attempt_keeps_the_landed_run_and_its_own_rejects(
    failure: str, versions: tuple[Path, Path], lake: Lake, tmp_path: Path
) -> None:
    a, _ = versions
    landed = ingest(a, "dh", lake, crs=CRS, validate=False)
    before = {kind: (lake.partition(kind, "dh") / "part-0.parquet").read_bytes() for kind in KINDS}
    attempt, error = FAILURES[failure]
    with pytest.raises(error) as raised:
        attempt(a, lake, tmp_path)
    after = {kind: (lake.partition(kind, "dh") / "part-0.parquet").read_bytes() for kind in KINDS}
    assert after == before  # byte for byte
    assert assert_one_run(lake) == "A"
    assert _warehouse_count(lake) == 12
    assert_no_leftovers(lake)
    _, rows = warehouse.query(
        lake,
        "SELECT run_id, last_attempt_status, last_attempt_reason, last_attempt_run_id "
        "FROM sources WHERE source = 'dh'",
    )
    ((run_id, status, reason, tried),) = rows
    assert run_id == landed.run_id and status == "failed" and tried != run_id
    assert reason == str(raised.value)
    _, rows = warehouse.query(
        lake,
        "SELECT status, records, rejects FROM attempts WHERE run_id = ?".replace("?", f"'{tried}'"),
    )
    ((status, records, rejected),) = rows
    quarantined = warehouse.query(
        lake, f"SELECT count(*) FROM quarantine WHERE run_id = '{tried}'"
    )[1][0][0]
    assert status == "failed" and quarantined == rejected
    expected = {"wrong crs": 250, "nothing ingestible": 103}.get(failure)
    if expected:  # every record of the file rejected, and kept (counts from the files)
        assert records == rejected == expected


def test_a_source_whose_first_attempt_fails_is_listed_with_its_reason(lake: Lake, tmp_path: Path):
    bad = tmp_path / "garbage.json"
    bad.write_bytes(b"\x00\x01 not json")
    with pytest.raises(DataError):
        ingest(bad, "new", lake)
    assert not lake.files("features")
    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake, "SELECT source, features, last_attempt_status, last_attempt_reason FROM sources"
    )
    ((source, features, status, reason),) = rows
    assert (source, features, status) == ("new", None, "failed") and str(bad) in reason
    _, rows = warehouse.query(lake, "SELECT path, status FROM attempts")
    assert rows == [(str(bad), "failed")]


# -- errors between the commit's steps -------------------------------------------------------


class Fault:
    """Raises ENOSPC at the n-th call of the file-system operations a commit makes (in the
    ingesting thread: the replaced runs' removal, on a thread of its own, is not counted)."""

    OPS = ("replace", "symlink", "mkdir", "rmdir", "unlink", "open")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
        self.n, self.calls, self.thread = n, 0, threading.get_ident()
        for name in self.OPS:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _wrap(self, op):
        def faulty(*args, **kwargs):
            if threading.get_ident() != self.thread:
                return op(*args, **kwargs)
            self.calls += 1
            if self.calls == self.n:
                raise OSError(28, "No space left on device (injected)")
            return op(*args, **kwargs)

        return faulty


def test_an_error_at_any_step_of_the_commit_leaves_one_run(versions, lake):
    """The run lands exactly when ingest returns; an error at any file-system step leaves the
    landed run, and the next run clears what the failed one left."""
    a, b = versions
    for n in range(1, 200):
        ingest(a, "dh", lake, crs=CRS, validate=False)
        with pytest.MonkeyPatch.context() as mp:
            fault = Fault(mp, n)
            try:
                ingest(b, "dh", lake, crs=CRS, validate=False)
                failed = False
            except (OSError, CitypipeError):
                failed = True
        assert assert_one_run(lake) == ("A" if failed else "B")
        ingest(a, "dh", lake, crs=CRS, validate=False)
        assert_no_leftovers(lake)
        if fault.calls < n:  # the fault was never reached: every step has had its turn
            break
    else:
        pytest.fail("the run never finished without reaching the fault")
    assert n > 5  # the staging folder, the run's files, their rename, the switch: each faulted
    assert _warehouse_count(lake) == 12


def test_each_file_of_a_run_is_on_disk_before_the_run_enters_the_lake(versions, lake, monkeypatch):
    """When a run's folder moves from staging into `.runs` (before `current` switches to it),
    every file in it has been flushed: features, rejects, surfaces (each the run's own or the
    lake's empty file) and the history row; a crash after the rename finds them whole."""
    flushed: set[tuple[int, int]] = set()
    checked: list[str] = []
    fsync, replace = os.fsync, os.replace

    def recorded(fd: int) -> None:
        fsync(fd)
        st = os.fstat(fd)
        flushed.add((st.st_dev, st.st_ino))

    def moved(src, dst, *args, **kwargs):
        if Path(src).parent == lake.staging:
            for entry in os.scandir(src):
                st = entry.stat()
                assert (st.st_dev, st.st_ino) in flushed, entry.name
                checked.append(entry.name)
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", recorded)
    monkeypatch.setattr(os, "replace", moved)
    for version in versions:  # A: no rejects, so the empty file; B: a rejects file of its own
        ingest(version, "dh", lake, crs=CRS, validate=False)
    expected = {f"{kind}.parquet" for kind in (*KINDS, "history")}
    assert set(checked[:4]) == set(checked[4:]) == expected


def test_without_hard_links_a_run_keeps_its_own_rejects(versions, lake, monkeypatch):
    """A file system that refuses hard links: a kind the run did not write is a copy of the
    lake's empty file, and a file the run wrote (B's rejects) is never replaced by one."""

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "hard links are not supported")

    monkeypatch.setattr(os, "link", refused)
    for version, expected in zip(versions, "AB", strict=True):
        ingest(version, "dh", lake, crs=CRS, validate=False)
        assert assert_one_run(lake) == expected


# -- another run of the same source, and staging left by dead runs --------------------------------


def test_a_second_run_of_a_source_waits_its_turn(versions, lake):
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    held = lake._lock("dh")
    try:
        with pytest.raises(UnavailableError, match="being ingested by another process"):
            ingest(a, "dh", lake, crs=CRS, validate=False)
    finally:
        os.close(held)
    assert assert_one_run(lake) == "A"
    assert_no_leftovers(lake)


def test_sql_cannot_read_staging(versions, lake):
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    staged = lake.staging / "x@20261203T000000.000Z-00000000"
    staged.mkdir(parents=True)
    (staged / "features.parquet").write_bytes(
        (lake.partition("features", "dh") / "part-0.parquet").read_bytes()
    )
    warehouse.refresh(lake)
    from citypipe.geo.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="disabled by configuration"):
        warehouse.query(lake, f"SELECT count(*) FROM read_parquet('{lake.staging.resolve()}/*/*')")
    assert warehouse.query(lake, "SELECT count(*) FROM features")[1] == [(12,)]


# -- processes killed at any moment ---------------------------------------------------------------

INGEST = """
import sys
from pathlib import Path
from citypipe.core import lake_layout, warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
lake = Lake(Path(sys.argv[2]))
ingest(sys.argv[1], "big", lake, validate=False)
warehouse.refresh(lake)
print("done", flush=True)
"""


def _big(tmp_path: Path, name: str, copies: int, bad_every: int) -> tuple[Path, int, int]:
    """The Barcelona fountains repeated `copies` times with new ids, every `bad_every`-th
    feature placed at longitude 500 (rejected): the path, features and rejects it must give."""
    doc = json.loads((SAMPLES / "barcelona_drinking_fountains.geojson").read_text())
    features, n = [], 0
    for c in range(copies):
        for f in doc["features"]:
            f = {**f, "id": f"{c}-{n}"}
            if n % bad_every == 0:
                f["geometry"] = {"type": "Point", "coordinates": [500.0, 41.4]}
            features.append(f)
            n += 1
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    rejects = len(range(0, n, bad_every))
    return path, n - rejects, rejects


def _counts(lake: Lake) -> tuple[int, int]:
    return tuple(
        pq.read_metadata(lake.partition(k, "big") / "part-0.parquet").num_rows
        for k in ("features", "rejects")
    )


def test_a_run_killed_at_any_moment_leaves_one_run(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    small, *expect_small = _big(tmp_path, "small.json", 1, 50)
    large, *expect_large = _big(tmp_path, "large.json", 12, 7)  # about 9 MB, 24k features
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", INGEST]
    subprocess.run([*run, str(small), str(lake.root)], check=True, env=env, cwd=tmp_path)
    started = time.perf_counter()
    subprocess.run([*run, str(large), str(lake.root)], check=True, env=env, cwd=tmp_path)
    whole = time.perf_counter() - started
    subprocess.run([*run, str(small), str(lake.root)], check=True, env=env, cwd=tmp_path)
    outcomes: set[tuple[bool, bool]] = set()
    # from the imports to past the warehouse refresh; then, where every run had ended by its
    # kill (the timed run slowed by a loaded machine), earlier and earlier
    fractions = [0.35 + 0.11 * i for i in range(7)] + [0.3, 0.25, 0.2, 0.15, 0.1]
    for i, fraction in enumerate(fractions):
        if i >= 7 and (False, False) in outcomes:
            break
        proc = subprocess.Popen(
            [*run, str(large), str(lake.root)], env=env, cwd=tmp_path, stdout=subprocess.PIPE
        )
        time.sleep(whole * fraction)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        counts = _counts(lake)
        assert counts in (tuple(expect_small), tuple(expect_large))
        outcomes.add((counts == tuple(expect_large), b"done" in out))
        con_counts = warehouse.query(lake, "SELECT count(*) FROM features")[1][0][0]
        assert con_counts == counts[0]  # the warehouse answers, whatever the kill interrupted
        if counts == tuple(expect_large):  # landed: back to the small version for the next kill
            subprocess.run([*run, str(small), str(lake.root)], check=True, env=env, cwd=tmp_path)
    # the next run of any source clears what dead runs left, and says they were interrupted
    subprocess.run([*run, str(small), str(lake.root)], check=True, env=env, cwd=tmp_path)
    assert not any(lake.staging.iterdir())
    assert outcomes & {(False, False)}, "no kill fell inside a run"
    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake, "SELECT DISTINCT path FROM attempts WHERE status = 'interrupted'"
    )
    assert rows in ([], [(str(large),)])


def test_a_refresh_killed_at_any_statement_leaves_a_warehouse_that_answers(
    tmp_path, versions, monkeypatch
):
    a, _ = versions
    lake = Lake(tmp_path / "lake")
    ingest(a, "dh", lake, crs=CRS, validate=False)
    warehouse.refresh(lake)
    calls, connect = [0, 0], warehouse._open

    class Killing:
        """The warehouse's connection, killing its process at statement calls[1]."""

        def __init__(self, con):
            self.con = con

        def __getattr__(self, name):
            return getattr(self.con, name)

        def execute(self, *args):
            calls[0] += 1
            if calls[0] == calls[1]:
                os.kill(os.getpid(), signal.SIGKILL)
            return self.con.execute(*args)

    monkeypatch.setattr(warehouse, "_open", lambda *a, **k: Killing(connect(*a, **k)))
    for n in range(1, 100):
        calls[:] = [0, n]
        child = os.fork()  # imports done once; the child dies at its n-th statement
        if child == 0:
            try:
                warehouse.refresh(lake)
            finally:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        with monkeypatch.context() as m:
            m.setattr(warehouse, "_open", connect)
            answer = "SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM buildings)"
            assert warehouse.query(lake, answer)[1] == [(12, 12)]
        if os.WIFEXITED(status):
            break
    else:
        pytest.fail("the refresh never finished")
    assert n > 5  # it was killed at every statement before the last
    assert not list(lake.root.glob(".warehouse.*"))  # the half-built ones are gone


def test_a_lake_written_before_links_is_taken_over(versions, lake):
    """part-0.parquet files of an earlier citypipe are replaced by links in one rename each."""
    a, b = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    for kind in KINDS:  # the earlier layout: plain files in the partitions
        part = lake.partition(kind, "dh") / "part-0.parquet"
        data = part.read_bytes()
        part.unlink()
        part.write_bytes(data)
        (lake.staging / f"0a1b2c3d4e5f.{kind}.parquet").write_bytes(data)  # a killed run's
    ingest(b, "dh", lake, crs=CRS, validate=False)
    assert assert_one_run(lake) == "B"
    assert_no_leftovers(lake)
    assert all((lake.partition(k, "dh") / "part-0.parquet").is_symlink() for k in KINDS)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB file system of its own (tmpfs), where the machine lets the tests mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode:
        pytest.skip(f"cannot mount a small file system here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # DuckDB may still hold it


def test_a_full_disk_keeps_the_landed_run_and_says_so(versions, small_disk, capsys):
    """Den Haag's 1.0 tile (3 MB, 2498 objects) does not fit beside the subset on 1 MiB."""
    from citypipe.cli import main

    lake = Lake(small_disk / "lake")
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    before = (lake.partition("features", "dh") / "part-0.parquet").read_bytes()
    big = (
        SAMPLES.parent.parent.parent / "shared" / "data" / "cityjson" / "denhaag_01_v1.0.city.json"
    )
    if not big.exists():
        pytest.skip("the public corpus is not here")
    code = main(["ingest", str(big), "--source", "dh", "--crs", CRS, "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2 and "no room left" in err and "Traceback" not in err
    assert (lake.partition("features", "dh") / "part-0.parquet").read_bytes() == before
    assert assert_one_run(lake) == "A"
    assert_no_leftovers(lake)
    _, rows = warehouse.query(lake, "SELECT last_attempt_status, last_attempt_reason FROM sources")
    assert rows[0][0] == "failed" and "no room left" in rows[0][1]


def test_a_read_only_lake_answers_sql_and_refuses_ingest_in_one_line(versions, small_disk, capsys):
    from citypipe.cli import main

    lake = Lake(small_disk / "lake")
    a, b = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    warehouse.refresh(lake)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert main(["sql", "SELECT count(*) FROM features", "--lake", str(lake.root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "12"
    code = main(["ingest", str(b), "--source", "dh", "--crs", CRS, "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2 and "the lake cannot be written" in err and "Read-only" in err
    assert assert_one_run(lake) == "A"


def test_what_a_dead_run_left_is_recorded_and_removed_by_the_next_run_of_any_source(versions, lake):
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    dead = lake.staging / "other@20261203T101500.250Z-0badc0de"  # killed as it began
    dead.mkdir()
    (dead / "attempt.json").write_bytes(b"")
    (dead / "features.parquet").write_bytes(b"PAR1 and no footer")
    ingest(a, "dh", lake, crs=CRS, validate=False)
    assert not any(lake.staging.iterdir())
    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake, "SELECT source, status, path, started_at FROM attempts WHERE status <> 'ok'"
    )
    ((source, status, path, started),) = rows
    assert (source, status, path) == ("other", "interrupted", None)
    assert started.isoformat() == "2026-12-03T10:15:00+00:00"


def test_a_run_landing_while_the_interpreter_exits_removes_the_run_it_replaced(versions, lake):
    """A run at exit (an atexit hook), when threads take no more work: it lands, and the run
    it replaced is removed at once rather than by a thread."""
    a, _ = versions
    first = ingest(a, "dh", lake, crs=CRS, validate=False)
    script = (
        "import atexit, sys; from pathlib import Path; from citypipe.core.ingest import ingest; "
        "from citypipe.core.lake import Lake; "
        "atexit.register(lambda: print(ingest(sys.argv[1], 'dh', Lake(Path(sys.argv[2])), "
        "crs=sys.argv[3], validate=False).run_id))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(a), str(lake.root), CRS],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    landed = done.stdout.strip()
    assert landed != first.run_id
    assert os.readlink(lake.runs_folder("dh") / "current") == landed
    assert_no_leftovers(lake)


def test_a_forked_child_removes_the_runs_it_replaced(versions, lake):
    """A child forked after its parent's runs (which started the removing thread) lands its own
    run and removes the one it replaced: it has no thread of its parent's, so it makes one."""
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    ingest(a, "dh", lake, crs=CRS, validate=False)
    assert _lands_in_a_child(a, lake) == 0


def _lands_in_a_child(path: Path, lake: Lake) -> int:
    """The exit code of a forked child that ingests `path`: 0 once its run has landed and
    the runs it replaced are gone."""
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)  # a removal that never comes ends the child
        code = 1
        try:
            ingest(path, "dh", lake, crs=CRS, validate=False)
            assert_no_leftovers(lake)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _blocked_removals() -> threading.Event:
    """The removing thread held until the event is set (runs queue their removals behind)."""
    go = threading.Event()
    lake_layout._REMOVING.submit(go.wait, 60)
    return go


def test_runs_faster_than_their_removals_remove_each_replaced_run_once(versions, lake, monkeypatch):
    """Runs that land while the thread is still removing (every run lists the folders still
    there) have each replaced run's folder removed once, not once per run that saw it."""
    a, _ = versions
    removals: list[str] = []
    rmtree = lake_layout.shutil.rmtree
    monkeypatch.setattr(
        lake_layout.shutil, "rmtree", lambda p, **kw: (removals.append(p), rmtree(p, **kw))
    )
    ingest(a, "dh", lake, crs=CRS, validate=False)
    go = _blocked_removals()
    runs = [ingest(a, "dh", lake, crs=CRS, validate=False).run_id for _ in range(4)]
    go.set()
    assert_no_leftovers(lake)
    assert len(removals) == len(set(removals)) == 4
    assert {os.path.basename(p) for p in removals} >= set(runs[:-1])


def test_a_child_forked_while_removals_wait_removes_them_itself(versions, lake):
    """A child forked while its parent's thread has not yet removed a replaced run (queued,
    waiting) removes it: what its parent queued is not the child's to wait for."""
    a, _ = versions
    ingest(a, "dh", lake, crs=CRS, validate=False)
    go = _blocked_removals()
    ingest(a, "dh", lake, crs=CRS, validate=False)  # its replaced run waits in the parent
    landed = _lands_in_a_child(a, lake)
    go.set()
    assert landed == 0
    assert_no_leftovers(lake)
