"""One run of one source: its staging folder, its commit into the lake in one rename, or its
rejects kept in quarantine with the reason it failed (the lake's layout: lake.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from citypipe.core import partitions
from citypipe.core.history import STAGED, Ingest
from citypipe.core.lake_layout import (
    CURRENT,
    KINDS,
    PART,
    fsync_together,
    readable_parquet,
    remove_later,
    write_atomically,
)

if TYPE_CHECKING:
    from citypipe.core.lake import Lake

__all__ = ["Attempt"]


@dataclass
class Attempt:
    """One run of one source, from its staging folder to the lake or to quarantine."""

    lake: Lake
    source: str
    run_id: str
    started_at: datetime
    path: str | None = None
    records: int | None = 0
    """Records read so far, None where not known (a run found dead)."""
    rejects: int | None = 0
    features: int | None = None
    """Features written, once the run has written them all."""
    fingerprint: str | None = None
    """The input's fingerprint (incremental.py), None for a service."""
    flushing: dict[str, Callable[[], bool]] = field(default_factory=dict)
    """Each kind's wait for the thread that finishes its file: whether that thread flushed it
    (raising its error). Called at the commit, after the history row is encoded (a file's
    footer and flush beside it), and before a failed run's folder is removed."""
    replaces: str | None = None
    """The source's current run when this one began (`Lake._sweep`): the one it replaces
    if it lands, whose folder is then removed (the sweep has queued every other)."""
    _staging: Path = field(init=False)

    def __post_init__(self) -> None:
        self._staging = self.lake.staging / f"{self.source}@{self.run_id}"

    @property
    def ingested_at(self) -> datetime:
        """The run's start as the lake's rows carry it, to the second."""
        return self.started_at.replace(microsecond=0)

    @property
    def folder(self) -> Path:
        """The run's staging folder: what is in it when the run commits lands with it."""
        return self._staging

    def file(self, kind: str) -> Path:
        """Where the run writes `kind` (features, rejects, surfaces); a kind left unwritten is
        committed as an empty file."""
        return self._staging / f"{kind}.parquet"

    def begin(self, lock: int) -> None:
        """Make the staging folder, and say in the source's lock file what this run reads, for
        the run that finds it dead."""
        self._staging.mkdir(parents=True)
        said = orjson.dumps({"run_id": self.run_id, "path": self.path})
        # written over the previous run's words, then cut to length: mostly the same length,
        # so no block is freed and taken again (truncating to 0 first cost 0.1-0.2 ms); a run
        # killed in between leaves text that is not JSON, read as a run that had not said
        os.pwrite(lock, said, 0)
        os.ftruncate(lock, len(said))

    def commit(self) -> None:
        """Move the run to `.runs/<source>/<run>`, then switch `current` to it in one rename:
        the run's history row (which lands with it) and every kind's file on disk first."""
        row = self.history_row("ok", None, datetime.now(UTC))
        row.stage(self._staging / STAGED, flush_others=self._flush_files)
        runs = self.lake.runs_folder(self.source)
        os.replace(self._staging, runs / self.run_id)
        for kind in KINDS:
            self._link(kind)
        tmp = runs / f".{CURRENT}.{self.run_id}"
        os.symlink(self.run_id, tmp)
        os.replace(tmp, runs / CURRENT)  # the commit
        with suppress(OSError):  # landed; what is not linked now, the next run of it links
            self.lake.publish(runs / self.run_id, landed_now=True)
        if self.replaces is not None:  # what is left, the next run of the source removes
            remove_later([str(runs / self.replaces)])

    def _flush_files(self) -> None:
        """Every kind's file on disk (the switch must never point at data only in memory),
        flushed together (a file its writer's thread flushed is not flushed again), a kind
        left unwritten linked to the lake's empty file. Nothing is asked of the disk that the
        writers know: a flushed file is there, and a link made where the run wrote no file
        says whether it did."""
        unflushed = []
        for kind in KINDS:
            if kind in self.flushing and self.flushing[kind]():
                continue
            file = self.file(kind)
            try:
                if self._empty_copied(kind, file):
                    unflushed.append(file)
            except FileExistsError:  # the run wrote it
                unflushed.append(file)
        fsync_together(unflushed)

    def _empty_copied(self, kind: str, file: Path) -> bool:
        """`file` made the lake's empty `kind` file: a link to it, or a copy where the file
        system has no hard links (True: the copy is yet to be flushed); FileExistsError where
        the run wrote `file`, which stays as it is."""
        empty = self.lake.empty_file(kind)
        try:
            os.link(empty, file)
        except FileExistsError:
            raise
        except OSError:  # no hard links: a copy, made only where no file is (mode "x")
            with open(empty, "rb") as source, open(file, "xb") as copy:
                shutil.copyfileobj(source, copy)
            return True
        return False

    def _link(self, kind: str) -> None:
        """The unit's file as a link through `current` (made once per unit; a file of a lake
        written before links is replaced in one rename). A source's first run as tiles removes
        the link of it landed whole, and its first run whole the links of its tiles: the
        folder is read as one dataset, and would else hold both."""
        part = self.lake.landed_file(kind, self.source)
        target = f"../../.runs/{self.source}/{CURRENT}/{kind}.parquet"
        with suppress(OSError):
            if os.readlink(part) == target:
                return
        if part.parent.is_dir():
            source = partitions.split(self.source)[0]
            tiles = f"../../.runs/{source}{partitions.SEPARATOR}"
            for entry in os.scandir(part.parent):
                with suppress(OSError):
                    other = os.readlink(entry.path)
                    if (part.name == PART) == other.startswith(tiles) and entry.name != part.name:
                        os.unlink(entry.path)
        part.parent.mkdir(parents=True, exist_ok=True)
        tmp = part.with_name(f".{PART}.{self.run_id}")
        os.symlink(target, tmp)
        os.replace(tmp, part)

    def abort(self, error: BaseException) -> None:
        """Keep what the failed run rejected and why it failed; remove the rest. Never raises:
        the error that ended the run is what the caller must see."""
        status = "failed" if isinstance(error, Exception) else "interrupted"
        for wait in self.flushing.values():  # the writers' threads done with the folder
            with suppress(Exception):
                wait()
        try:
            self.record(status, str(error) or type(error).__name__, datetime.now(UTC))
        except OSError as e:
            error.add_note(f"the failed attempt could not be recorded in {self.lake.root}: {e}")
        shutil.rmtree(self._staging, ignore_errors=True)

    def history_row(self, status: str, reason: str | None, ended_at: datetime | None) -> Ingest:
        """The run's history row."""
        return Ingest(
            source=self.source,
            run_id=self.run_id,
            path=self.path,
            fingerprint=self.fingerprint,
            started_at=self.started_at,
            ended_at=ended_at,
            status=status,
            reason=reason,
            records=self.records,
            features=self.features if status == "ok" else None,
            rejects=self.rejects,
        )

    def record(self, status: str, reason: str, ended_at: datetime | None) -> None:
        """Move the run's finished rejects file to quarantine, free its staging (a full disk
        needs the room), and write the attempt record and the history row (`ended_at` None:
        a run found dead)."""
        moved = self.lake.runs_folder(self.source) / self.run_id  # a commit that failed half way
        for rejects in (self.file("rejects"), moved / "rejects.parquet"):
            if rejects.exists() and readable_parquet(rejects):
                kept = self.lake.partition("quarantine", self.source) / f"{self.run_id}.parquet"
                kept.parent.mkdir(parents=True, exist_ok=True)
                os.replace(rejects, kept)
        shutil.rmtree(self._staging, ignore_errors=True)
        row: dict[str, Any] = {
            "source": self.source,
            "run_id": self.run_id,
            "path": self.path,
            "started_at": self.ingested_at.isoformat(),
            "status": status,
            "reason": reason,
            "records": self.records,
            "rejects": self.rejects,
        }
        write_atomically(
            self.lake.partition("attempts", self.source) / f"{self.run_id}.json", orjson.dumps(row)
        )
        self.history_row(status, reason, ended_at).write(self.lake.root)
