"""The lake on disk: where each source's outputs live, and how a run lands as one step.

    <lake>/features/<NAME>/part-0.parquet   GeoParquet 1.1, shared schema v1
    <lake>/rejects/<NAME>/part-0.parquet    records that could not be harmonised
    <lake>/surfaces/<NAME>/part-0.parquet   semantic surfaces of 3D objects (GeoParquet)
    <lake>/quarantine/<NAME>/<run>.parquet  rejects of attempts that did not land
    <lake>/attempts/<NAME>/<run>.json       what each attempt that did not land was and why
    <lake>/history/<NAME>/<run>.parquet     every ingest, landed or not, kept (history.py)
    <lake>/observations/day=<YYYY-MM-DD>/<run>.parquet  measured values, appended (observations.py)
    <lake>/features/<NAME>/<KEY>.parquet    one file per partition (tile) instead (partitions.py)
    <lake>/warehouse.duckdb                        views over the above
    <lake>/docs/                                   validation reports (GX Data Docs)

Each `part-0.parquet` is a relative symbolic link into the run that landed last,
`.runs/<NAME>/current/<kind>.parquet`, and `.runs/<NAME>/current` is itself a link to that run's
folder. A run writes its three files into `.staging/<NAME>@<run>/`, moves the folder to
`.runs/<NAME>/<run>/` and then replaces the `current` link in one rename: that rename is the
commit, so a reader sees the features, rejects and surfaces of one run, old or new, never a mix,
whatever happens to the run (an error, a full disk, SIGKILL). The observations and the history
row a run stages (`observations/day=<D>/<run>.parquet` and `history.parquet` in its folder, the
row linked as `history/<NAME>/<run>.parquet`) are hard-linked into their tables right after that
rename; what a run killed in between did not link, the next run of the source links before it
starts, so they stay in the lake when the run folder goes. Every reader that follows links
(pyarrow, geopandas, GDAL, DuckDB, a lake copied with `cp -r`) reads the lake as plain files.

A source's folder is named by the source alone, not `source=<NAME>`: a hive key in the path
gives the `source` column two types, string in `ds.dataset(folder, partitioning="hive")` and
a dictionary in `pq.read_table(folder)` and geopandas, and a file's column can only match one.
The files hold `source` as a string, and every reader takes the folder as one dataset. A lake
written with `source=` folders is renamed to this layout by its next run (the links inside
keep their depth, so they still resolve).

One run of a source at a time holds the source's lock (`.runs/<NAME>/.lock`, released by the
kernel when the process dies), so a staging folder whose source lock is free belongs to a dead
run: the next run of any source records that attempt as interrupted and removes the folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from citypipe import schemas
from citypipe.connectors.parquet_facts import HEIGHTS_KEY
from citypipe.core import partitions
from citypipe.core.attempt import Attempt
from citypipe.core.history import HISTORY, STAGED
from citypipe.core.lake_layout import (
    CURRENT,
    KINDS,
    PART,
    RUN,
    fsync,
    remove_later,
    write_atomically,
)
from citypipe.geo.errors import ConfigurationError, UnavailableError

__all__ = [
    "HEIGHTS_KEY", "KINDS", "LAST_ATTEMPT", "OBSERVATIONS", "PART", "RUN_KEY", "Lake",
    "default_lake", "fsync",
]  # fmt: skip

OBSERVATIONS = "observations"
"""The folder of the observations table, in the lake and in a run's folder."""
RUN_KEY = "citypipe:run"
LAST_ATTEMPT = ("last_attempt", "last_attempt_status", "last_attempt_reason", "last_attempt_run_id")
"""The columns of the sources table that the warehouse finds among a source's attempts; the run
record under `RUN_KEY` in the footer of a landed features file holds all the others."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(~[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
"""A source, or one partition of it (`partitions.unit`)."""
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""What a full disk, a quota or a file size limit say: the run fails, and says why, as a user's
problem (exit 2), not a bug."""
INTERRUPTED = (
    "the ingest ended before it finished (the process was killed or the machine stopped); "
    "nothing of it landed"
)


def _link(file: Path, target: Path) -> None:
    """A hard link, its folder made where it is missing (a source's first run)."""
    try:
        os.link(file, target)
    except FileNotFoundError:
        if not file.exists():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(file, target)


def default_lake() -> Path:
    """`CITYPIPE_LAKE` when set, else data/lake under the working directory."""
    return Path(os.environ.get("CITYPIPE_LAKE") or "data/lake")


def check_source_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"source name {name!r} must start with a letter or digit, hold only letters, "
            "digits, '_', '.' and '-', and be at most 128 characters long"
        )
    return name


def new_run_id(started: datetime) -> str:
    """Sorts by start time, unique without coordination: `20261203T091500.123Z-1a2b3c4d`."""
    return f"{started:%Y%m%dT%H%M%S}.{started.microsecond // 1000:03d}Z-{uuid.uuid4().hex[:8]}"


def _started(run_id: str) -> datetime:
    return datetime.strptime(run_id[:19], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Lake:
    root: Path

    def __post_init__(self) -> None:
        """`root` as a Path where a Python user gave text: `Lake("data/lake")`."""
        object.__setattr__(self, "root", Path(self.root))

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    @property
    def readable(self) -> list[str]:
        """The folders analysts' SQL may read, each ending in "/": the tables, and the runs
        their links point into (DuckDB checks the target of a link); never the staging area."""
        folders = [*KINDS, OBSERVATIONS, "quarantine", "attempts", HISTORY, ".runs"]
        return [f"{(self.root / f).resolve()}/" for f in folders]

    def files_base(self, relative: bool) -> str:
        """Where a reader finds the lake's files, ending in "/": the folder's absolute path, or
        "" for paths relative to it (the warehouse's own views, which a copied lake keeps)."""
        return "" if relative else f"{self.root.resolve()}/"

    def duckdb_access(self) -> str | None:
        """The statement that lets DuckDB read the lake's files where the local disk does not:
        none for a folder."""
        return None

    def partition(self, kind: str, source: str) -> Path:
        return self.root / kind / source

    @property
    def location(self) -> str:
        """What `--lake` and `CITYPIPE_LAKE` name to open this lake again."""
        return str(self.root)

    def landed_name(self, kind: str, unit: str) -> str:
        """Where in the lake a reader opens a unit's `kind`: `<kind>/<NAME>/part-0.parquet` for a
        source, `<kind>/<NAME>/<KEY>.parquet` for one partition of it."""
        source, key = partitions.split(unit)
        return f"{kind}/{source}/{PART if key is None else f'{key}.parquet'}"

    def landed_file(self, kind: str, unit: str) -> Path:
        return self.root / self.landed_name(kind, unit)

    def files(self, kind: str) -> list[Path]:
        """The files of a table folder (kinds, quarantine) that a reader would open."""
        return sorted(p for p in (self.root / kind).glob("*/*.parquet") if p.exists())

    def holds(self, folder: str, suffix: str = "parquet") -> bool:
        """Whether a table folder (kinds, quarantine, attempts, observations) has a file a
        reader would open (`<folder>/*/*.<suffix>`)."""
        return any(p.exists() for p in (self.root / folder).glob(f"*/*.{suffix}"))

    def footer(self, kind: str, unit: str) -> dict[bytes, bytes] | None:
        """The key-value metadata of the landed `kind` file of `unit` (a source or one partition
        of it); None where none landed or it cannot be read."""
        try:
            return pq.read_metadata(self.landed_file(kind, unit)).metadata or {}
        except (OSError, ValueError):
            return None

    def runs_folder(self, source: str) -> Path:
        return self.root / ".runs" / source

    def empty_file(self, kind: str) -> Path:
        """A lake table's file without rows, made once: a run with nothing of a kind links it
        (every run has all three files, so every link resolves; a dangling one would fail the
        readers of the whole folder), which costs one entry, not one more file to write,
        flush and later delete."""
        empty = self.root / ".runs" / ".empty" / f"{kind}.parquet"
        if not empty.exists():
            from citypipe.core.write import empty_file  # write imports nothing of the lake

            write_atomically(empty, empty_file(schemas.feature_schema().table(kind)))
        return empty

    def _lock(self, source: str) -> int | None:
        """The source's lock as an open descriptor, or None if another live process holds it."""
        lock = self.runs_folder(source) / ".lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the source's first run: its folder made once, not per run
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    @contextmanager
    def attempt(self, source: str, path: str | None = None) -> Iterator[Attempt]:
        """One run of `source`: lands when the block ends without an exception, else is recorded
        as failed with its rejects quarantined; the source's previous output stays either way.
        `source` may name one partition of a source (`partitions.unit`): it lands alone."""
        check_source_name(partitions.split(source)[0])
        if not _UNIT.match(source):
            raise ConfigurationError(
                f"{source!r}: a partition key holds only letters, digits, _ . -"
            )
        try:
            lock = self._lock(source)
        except OSError as e:
            raise ConfigurationError(f"{self.root}: the lake cannot be written: {e}") from e
        if lock is None:
            raise UnavailableError(
                f"source {source!r} is being ingested by another process; try again when it is done"
            )
        try:
            self._rename_hive_folders()
            current = self._sweep(source)
            started = datetime.now(UTC)
            attempt = Attempt(self, source, new_run_id(started), started, path, replaces=current)
            attempt.begin(lock)
            try:
                yield attempt
                self._land(attempt)
            except OSError as e:
                if e.errno not in _NO_ROOM:
                    attempt.abort(e)
                    raise
                full = UnavailableError(
                    f"{self.root}: no room left for the run ({e}); the previous output is kept"
                )
                attempt.abort(full)
                raise full from e
            except BaseException as e:
                attempt.abort(e)
                raise
        finally:
            os.close(lock)

    def _land(self, attempt: Attempt) -> None:
        """Put a finished run in place of the source's previous one (on disk: one rename)."""
        attempt.commit()

    def _rename_hive_folders(self) -> None:
        """`<kind>/source=<NAME>` folders of a lake written before renamed `<kind>/<NAME>`, each
        in one rename (a name taken already is left as it is). Only a lake without a history
        table holds them: the citypipe that writes one renames them first (each run's first
        step), so a lake with one is not listed again (one stat a run, where the five
        folders' listings took 0.1 ms of its CPU and 25 system calls)."""
        if os.path.isdir(self.root / HISTORY):
            return
        for kind in (*KINDS, "quarantine", "attempts"):
            with suppress(OSError):  # scandir: five globs cost 0.1 ms a run; housekeeping only
                for old in os.scandir(self.root / kind):
                    if not old.name.startswith("source="):
                        continue
                    new = os.path.join(os.path.dirname(old.path), old.name[len("source=") :])
                    with suppress(OSError):
                        if not os.path.exists(new):
                            os.rename(old.path, new)

    # -- what dead runs leave behind ----------------------------------------------------------

    def _sweep(self, own: str) -> str | None:
        """Remove what runs that died left (staging of any source whose lock is free, run
        folders of `own` that never became current), recording each dead attempt; returns the
        run of `own` that is current (the one a run that lands replaces). Housekeeping: what
        cannot be removed now is left for a later run, never a reason to fail this one."""
        with suppress(FileNotFoundError):
            for entry in os.scandir(self.staging):
                source, _, run = entry.name.rpartition("@")
                with suppress(OSError):
                    if not (_UNIT.match(source) and RUN.match(run)):
                        if entry.is_file():  # left by a citypipe from before run folders
                            os.unlink(entry.path)
                    elif source == own:
                        self._bury(source, run)
                    elif (lock := self._lock(source)) is not None:
                        try:
                            self._bury(source, run)
                        finally:
                            os.close(lock)
        runs = self.runs_folder(own)
        current = os.readlink(runs / CURRENT) if (runs / CURRENT).is_symlink() else None
        if current is not None:  # a run killed after its switch, before its observations linked
            with suppress(OSError):
                self.publish(runs / current)
        remove_later(e.path for e in os.scandir(runs) if RUN.match(e.name) and e.name != current)
        return current

    def publish(self, run: Path, landed_now: bool = False) -> None:
        """Link a landed run's observation files and history row into their tables (each at
        most once: a file already there is the same run's). A run without observations has no
        folder of them; a run landed by an earlier citypipe staged its row in a folder as the
        table's, `history/<NAME>/<run>.parquet`. The row is linked last: where it is in the
        table, the run is published (each run's sweep asks of the landed one). `landed_now`:
        the run this process has just switched to (`Attempt.commit`), nothing of it linked yet
        and its row staged: none of that is asked of the disk."""
        linked = self.root / HISTORY / run.parent.name / f"{run.name}.parquet"
        if not landed_now and linked.exists():
            return
        for table in (OBSERVATIONS,) if landed_now else (OBSERVATIONS, HISTORY):
            with suppress(FileNotFoundError):
                for folder in os.scandir(run / table):
                    for file in os.scandir(folder.path):
                        self._link_into(Path(file.path), self.root / table / folder.name)
        if landed_now or (run / STAGED).exists():
            self._link_into(run / STAGED, linked.parent, linked.name)

    @staticmethod
    def _link_into(file: Path, folder: Path, name: str | None = None) -> None:
        """`file` linked into `folder` (as `name`) once: a link is whole when it is made, so it
        is made where readers find it (one system call, where a check, the folder's, a
        temporary name and its rename took five); on a file system without hard links, a copy
        under a temporary name until it is on disk."""
        target = folder / (name or file.name)
        try:
            _link(file, target)
        except FileExistsError:  # linked already: the same run's
            return
        except FileNotFoundError:
            raise
        except OSError:  # a file system without hard links
            if target.exists():
                return
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(file, tmp)
            fsync(tmp)
            os.replace(tmp, target)

    def _bury(self, source: str, run: str) -> None:
        """Record a dead run as interrupted (with the path it had begun to read, when the
        source's lock file still says) and remove its staging. The caller holds the lock."""
        try:
            said = orjson.loads((self.runs_folder(source) / ".lock").read_bytes())
        except (OSError, orjson.JSONDecodeError):  # killed before it said
            said = None
        ours = isinstance(said, dict) and said.get("run_id") == run
        path = said.get("path") if ours else None
        Attempt(self, source, run, _started(run), path, None, None).record(
            "interrupted", INTERRUPTED, ended_at=None
        )
