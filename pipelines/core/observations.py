"""The observations table: the measured values of a run's features, appended, each stored once.

    <lake>/observations/day=<YYYY-MM-DD>/<run_id>.parquet

A run stages its observations as its batches are harmonised (an observation of a rejected record
is dropped with it), and at its end keeps those that neither an earlier row of the run nor a file
in the lake already holds: the same (feature_id, attribute, dataset_id, observed_at) arriving
again, from a re-run or an overlapping harvest, is stored once, the first time. Only the files of
the days the run touches (the UTC day of `observed_at`) are read, by DuckDB within a memory limit
(it spills to the run's staging folder), so memory stays bounded whatever the history's length.
The new rows are written in time order, a file per day, into the run's staging folder and land
with it (`Lake`'s commit links them into the table): a failed run stores nothing.

Times: an observation's own time (NGSI-LD observedAt) is read as ISO 8601 (or epoch seconds);
a time without a UTC offset is taken as UTC, which NGSI-LD and the Smart Data Models prescribe
for every time they state. An observation without a time takes its feature's `observed_at`; one
with neither is not stored, and the run counts it in its warnings.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from citypipe import schemas
from citypipe.connectors.base import Observation
from citypipe.core.lake import OBSERVATIONS, fsync
from citypipe.core.values import timestamp
from citypipe.core.write import COMPRESSION

__all__ = ["KEY", "NO_TIME", "UNREADABLE_TIME", "ObservationStage"]

KEY = ("feature_id", "attribute", "dataset_id", "observed_at")
"""What makes two rows the same observation."""
NO_TIME = (
    "measured values without a time (neither their own nor their feature's observed_at) "
    "are not in observations"
)
UNREADABLE_TIME = "measured values whose time is not an ISO 8601 time are not in observations"
"""Warnings, counted per feature (the run's warnings are of features)."""
_MEMORY = "256MB"
"""DuckDB's memory for the end of a run's deduplication; past it, it spills to the staging."""
_VALUES = ("value", "value_text", "unit_code")
"""What two copies of one observation may differ in: the first copy's are kept."""
_RUN = ("source", "run_id")
"""The same for every row of a run."""
_BATCH_ROWS = 65_536
"""Rows DuckDB hands over at a time (its default, a million, would hold them all in memory)."""


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ObservationStage:
    """One run's observations, from its batches to its day files in its staging folder."""

    def __init__(self, staging: Path, lake_root: Path, source: str, run_id: str) -> None:
        self.staging = staging
        self.table = lake_root / OBSERVATIONS
        self.source = source
        self.run_id = run_id
        self.schema = schemas.feature_schema().table("observations")
        self._file = staging / "observations.staged.parquet"
        self._writer: pq.ParquetWriter | None = None
        self.staged = 0
        self.stored = 0

    def add(
        self, observations: Sequence[Observation], features: pa.RecordBatch, kept: Sequence[int]
    ) -> Counter[str]:
        """Stage a batch's observations; `features` are its harmonised rows, `kept` the record
        index of each. Returns the warnings: the features with values not stored, counted."""
        dropped: set[tuple[str, int]] = set()
        if not observations:
            return Counter()
        row_of = {record: row for row, record in enumerate(kept)}
        times = features.column("observed_at").to_pylist()
        parsed: dict[str, datetime | None] = {}  # the attributes of an entity share their time
        rows: list[int] = []
        ats: list[datetime] = []
        stored: list[Observation] = []
        for o in observations:
            row = row_of.get(o.record)
            if row is None:  # its record was rejected
                continue
            text = o.observed_at
            if text is None:
                at = times[row]
            elif text in parsed:
                at = parsed[text]
            else:
                at = parsed[text] = timestamp(text)
            if at is None:
                dropped.add((UNREADABLE_TIME if text is not None else NO_TIME, row))
                continue
            rows.append(row)
            ats.append(at)
            stored.append(o)
        if stored:
            _, attributes, values, texts, units, _, datasets = zip(*stored, strict=True)
            n = len(stored)
            columns = {
                "feature_id": features.column("feature_id").take(pa.array(rows, pa.int64())),
                "source": pa.repeat(pa.scalar(self.source), n),
                "attribute": attributes, "value": values, "value_text": texts,
                "unit_code": units, "observed_at": ats, "dataset_id": datasets,
                "run_id": pa.repeat(pa.scalar(self.run_id), n),
            }  # fmt: skip
            self.schema.conform(columns)
            arrays = [
                pa.array(columns[f.name], f.type)
                if isinstance(columns[f.name], tuple | list)
                else columns[f.name]
                for f in self.schema.arrow
            ]
            self._stage(pa.RecordBatch.from_arrays(arrays, schema=self.schema.arrow))
        return Counter(why for why, _ in dropped)

    def _stage(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._file, batch.schema, compression="lz4")
        self._writer.write_batch(batch)
        self.staged += batch.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> int:
        """Write the run's new observations into `<staging>/observations/day=<D>/<run>.parquet`,
        one file per day, and drop the staged rows; returns how many rows are new."""
        self.close()
        if not self.staged:
            return 0
        spill = self.staging / "observations.spill"
        con = duckdb.connect(
            config={"memory_limit": _MEMORY, "temp_directory": str(spill), "threads": 1}
        )
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")  # a day is a UTC day
            self._write_days(con.execute(self._new_rows(con)).fetch_record_batch(_BATCH_ROWS))
        finally:
            con.close()
        self._file.unlink()
        shutil.rmtree(spill, ignore_errors=True)
        return self.stored

    def _new_rows(self, con: duckdb.DuckDBPyConnection) -> str:
        """The query of the staged rows that are new: the first of each observation in the
        run, if no file of its day in the lake holds it; in time order, with their `_day`."""
        staged = f"read_parquet({_sql_string(str(self._file))}, file_row_number = true)"
        days = con.execute(f"SELECT DISTINCT CAST(observed_at AS DATE) FROM {staged}").fetchall()
        landed = sorted(
            str(p) for (day,) in days for p in (self.table / f"day={day}").glob("*.parquet")
        )
        seen = ""
        if landed:
            files = ", ".join(_sql_string(p) for p in landed)
            same = " AND ".join(f"e.{k} IS NOT DISTINCT FROM s.{k}" for k in KEY)
            seen = (
                f"WHERE NOT EXISTS (SELECT 1 FROM read_parquet([{files}]) e "
                f"WHERE e.source = {_sql_string(self.source)} AND {same})"
            )
        keys = ", ".join(KEY)
        kept = ", ".join(f"'{c}': {c}" for c in _VALUES)
        columns = ", ".join(
            f"first.{c}"
            if c in _VALUES
            else f"{_sql_string(getattr(self, c))} AS {c}"
            if c in _RUN
            else c
            for c in self.schema.arrow.names
        )
        return (  # the first copy of each observation: the one read first
            f"WITH firsts AS (SELECT {keys}, arg_min({{{kept}}}, file_row_number) AS first "
            f"FROM {staged} GROUP BY {keys}) "
            f"SELECT {columns}, CAST(observed_at AS DATE) AS _day FROM firsts s {seen} "
            "ORDER BY observed_at, feature_id, attribute, dataset_id"
        )

    def _write_days(self, rows: pa.RecordBatchReader) -> None:
        """Rows in time order into one file per day, each flushed to disk before the run's
        commit links it."""
        day = None
        out: Path | None = None
        writer: pq.ParquetWriter | None = None
        try:
            for batch in rows:
                days = batch.column("_day").to_numpy(zero_copy_only=False)
                cuts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1), len(days)]
                for start, end in itertools.pairwise(cuts):
                    if writer is None or days[start] != day:
                        if writer is not None and out is not None:
                            writer.close()
                            fsync(out)
                        day = days[start]
                        out = self.staging / OBSERVATIONS / f"day={day}" / f"{self.run_id}.parquet"
                        out.parent.mkdir(parents=True)
                        writer = pq.ParquetWriter(
                            out, self.schema.arrow, **COMPRESSION, **self.schema.parquet_options
                        )
                    part = batch.slice(start, end - start).drop_columns(["_day"])
                    writer.write_batch(part.cast(self.schema.arrow))
                    self.stored += end - start
        finally:
            if writer is not None:
                writer.close()
        if out is not None:
            fsync(out)
