"""One ingest of one source: connector -> harmonise -> validate -> write, committed atomically.

The CLI and the Dagster assets both call `ingest`; neither adds steps of its own.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from citypipe import schemas
from citypipe.connectors import registry
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.freed_memory import keep_freed_heap
from citypipe.core import (
    crs84,
    incremental,
    incremental_harvest,
    partitions,
    preview,
    progress,
    report_page,
)
from citypipe.core.attempt import Attempt
from citypipe.core.checks import CheckResult, check_specs
from citypipe.core.harmonise import HarmonisedBatch, Harmoniser
from citypipe.core.history import Ingest
from citypipe.core.lake import HEIGHTS_KEY, LAST_ATTEMPT, RUN_KEY, Lake, new_run_id
from citypipe.core.observations import ObservationStage
from citypipe.core.order import OrderedWriter
from citypipe.core.validate import Validator, prepare
from citypipe.core.violation_share import ViolationCount
from citypipe.core.write import BesideWriter, GeoParquetWriter, RowsWriter
from citypipe.geo import crs as crslib
from citypipe.geo.errors import ConfigurationError, DataError
from citypipe.geo.types import AxisOrder

__all__ = ["ChecksFailed", "IngestReport", "NothingIngested", "ingest"]


class NothingIngested(DataError):
    """Every record was rejected: nothing lands, the rejects are kept in quarantine."""


class ChecksFailed(DataError):
    """A source-level (blocking) check failed: nothing is committed, the previous output stays."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


SUMMARY = (
    "source", "path", "format", "declared_crs", "licence", "records", "features", "rejects",
    "declared_count", "checks_passed", "checks_failed", "seconds", "last_ingest", "run_id",
)  # fmt: skip
"""The sources table's columns a landed run's record holds (`IngestReport.summary_row`)."""


@dataclass
class IngestReport:
    source: str
    run_id: str
    path: str
    format: str
    declared_crs: str | None
    records: int
    features: int
    rejects: int
    declared_count: int | None
    checks: list[CheckResult]
    seconds: float
    ingested_at: datetime
    licence: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    observations: int = 0
    """Observations the run stored (new ones: those the lake held already are not)."""
    violations: ViolationCount = field(default_factory=ViolationCount)
    """Features with Smart Data Models violations (`violation_share.result` checks the share)."""
    unchanged: bool = False
    """The input and settings were those of the landed run: nothing was read or written, and
    the counts and checks are that run's."""
    since: str | None = None
    """An incremental harvest: the instant it asked from (`records` are what changed since)."""
    carried: int = 0
    """An incremental harvest: features kept from the landed run, not harvested again
    (`features` counts them with the harvested ones)."""
    shapes: np.ndarray | None = field(default=None, repr=False, compare=False)
    """An even sample of the landed features' geometries (lon/lat, at most preview.MAX_SHAPES),
    drawn on the report page; None where none was drawn (an unchanged run)."""

    @property
    def checks_passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def checks_failed(self) -> int:
        return sum(not c.passed for c in self.checks)

    def summary_row(self) -> dict[str, Any]:
        """The row of the warehouse's `sources` view, kept in the footer of the features file."""
        values = (
            self.source, self.path, self.format, self.declared_crs, self.licence, self.records,
            self.features, self.rejects, self.declared_count, self.checks_passed,
            self.checks_failed, self.seconds, self.ingested_at, self.run_id,
        )  # fmt: skip
        return dict(zip(SUMMARY, values, strict=True))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for a whole run.

    A parsed batch is a large tree of new objects without reference cycles: the collector would
    walk it again and again while it is built (more than doubling the parse time) and free
    nothing; reference counting frees every batch as soon as it is written. Paused for the whole
    run, not per step: a source parsed whole when it is opened would otherwise be walked once
    more, for nothing, as soon as the collector resumes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow's buffers from the C library's allocator for a whole run, not from Arrow's default
    (mimalloc), which hands a batch's freed pages back to the system and has the next batch
    fault them in again, zeroed: the 422 MB CityGML file's harmonising process spent 0.9-2.2 s
    of system time so. Buffers keep the pool they came from, so the one before is set again
    after the run whatever it left allocated."""
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


def _keep_fingerprint(attempt: Attempt, hashed: Callable[[], str | None]) -> None:
    """The file's fingerprint in the attempt's history; None (the next run reads the file
    again) where hashing failed, so that its error (a MemoryError ...) never hides the read's."""
    try:
        attempt.fingerprint = hashed()
    except Exception:  # noqa: BLE001 - the run's own error, if any, is the one to raise
        attempt.fingerprint = None


def _unchanged(lake: Lake, source: str, fingerprint: str) -> IngestReport | None:
    """The landed run's report, where it was made from the same input and settings."""
    found = incremental.landed(lake, source)
    if found is None or found.fingerprint != fingerprint:
        return None
    run = found.run
    return IngestReport(
        **{k: run[k] for k in ("source", "run_id", "path", "format", "declared_crs", "licence")},
        **{k: run[k] for k in ("records", "features", "rejects", "declared_count", "seconds")},
        checks=found.checks,
        ingested_at=datetime.fromisoformat(run["last_ingest"]),
        unchanged=True,
    )


def _record_unchanged(
    lake: Lake, same: IngestReport, path: str, fingerprint: str, started: datetime
) -> None:
    """The history row of an ingest that found its input unchanged: its own run id, the
    landed run's counts."""
    row = Ingest(
        source=same.source,
        run_id=new_run_id(started),
        path=path,
        fingerprint=fingerprint,
        started_at=started,
        ended_at=datetime.now(UTC),
        status="unchanged",
        reason=f"the input and settings are those of the landed run {same.run_id}",
        records=same.records,
        features=same.features,
        rejects=same.rejects,
    )
    try:
        row.write(lake.root)
    except OSError as e:
        raise ConfigurationError(f"{lake.root}: the lake cannot be written: {e}") from e


@cache
def _blocking() -> frozenset[str]:
    """The checks that stop a run, once a process: the schema file's, read once."""
    return frozenset(spec.name for spec in check_specs() if spec.blocking)


def _write_docs(lake: Lake, report: IngestReport, validator: Validator, render: bool) -> None:
    """The run's validation result, GX page and report page, written once the attempt has
    ended: they show the lake, and failing to write them fails nothing that landed (the
    report says so in its warnings)."""
    try:
        validator.write_docs(lake.docs, render=render)
        report_page.write(report, lake.docs, _blocking())
    except Exception as e:  # noqa: BLE001 - any failure of the pages, GX's rendering included
        report.warnings[f"the validation report could not be written: {e}"] = report.features


def _raise_on_blocking_failures(report: IngestReport) -> None:
    """A failed source-level check stops the run before anything is committed."""
    blocking = _blocking()
    failed = [c for c in report.checks if not c.passed and c.name in blocking]
    if failed:
        why = "; ".join(
            f"{c.name} failed ({', '.join(c.samples) or c.description})" for c in failed
        )
        raise ChecksFailed(f"{report.path}: {why}; the previous output is kept", report)


@_no_cycle_collection()
@_system_memory_pool()
def ingest(
    location: Path | str,
    source: str,
    lake: Lake,
    *,
    format: str | None = None,
    crs: str | None = None,
    axis_order: AxisOrder | None = None,
    theme: str | None = None,
    fields: Mapping[str, str] | None = None,
    licence: str | None = None,
    options: Mapping[str, Any] | None = None,
    origin: str | None = None,
    validate: bool = True,
    skip_unchanged: bool = False,
    render_docs: bool = True,
    changes_only: bool = False,
    reporter: progress.Reporter = progress.SILENT,
    partition: str | None = None,
) -> IngestReport:
    """Read `location` (a file or a service's URL) as source `source` and replace that source's
    output in `lake` in one step.

    When anything fails (nothing ingestible, an unreadable file, a failed blocking check, an
    error), nothing of the run lands: the previous output stays, the run's rejects are kept in
    quarantine and the attempt is recorded with its reason (see `pipelines.lake`).

    `origin` is where the data came from when `location` is a local snapshot of it. `validate`
    off skips the validation suite (the benchmark times it separately). `skip_unchanged`: a file
    whose bytes and settings are those of the landed run is not read again (`incremental`).
    `render_docs` off keeps the validation result without rendering its Data Docs page, for a run
    of many sources that renders them once at its end (`datadocs.render`). `changes_only`: a
    service is asked only for what changed since the landed harvest, merged with its features
    (`incremental_harvest`). `reporter` shows the run's progress (records, bytes read or pages
    received) while it reads. Every ingest, whatever becomes of it, leaves its row in the lake's
    history (`history`), with its file's fingerprint.
    `partition` names the tile `location` is of a partitioned source: it lands, and is
    fingerprinted and reported, as the unit `<source>~<partition>` (`partitions`), its features
    still of `source`.
    """
    keep_freed_heap()
    began = datetime.now(UTC)
    started = time.perf_counter()
    unit = partitions.unit(source, partition)
    settings = {
        "format": format, "crs": crs, "axis_order": axis_order, "theme": theme,
        "fields": fields, "licence": licence, "options": options, "validate": validate,
    }  # fmt: skip
    path = str(location)
    hashed = incremental.fingerprint(location, settings)  # hashed beside the read
    fingerprint = hashed() if skip_unchanged else None
    if (
        skip_unchanged
        and fingerprint is not None
        and (same := _unchanged(lake, unit, fingerprint)) is not None
    ):
        _record_unchanged(lake, same, origin or path, fingerprint, began)
        same.seconds = round(time.perf_counter() - started, 3)
        return same
    delta = incremental_harvest.Delta(lake, source, path, settings, options, changes_only)
    schema = schemas.feature_schema()
    schema.table("sources").conform(SUMMARY + LAST_ATTEMPT)
    records = features = 0
    reasons: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    violations = ViolationCount()
    after = ExitStack()  # what waits for the attempt to end and free the source's lock
    with after, lake.attempt(unit, origin or path) as attempt, ExitStack() as closing:
        closing.callback(_keep_fingerprint, attempt, hashed)  # failed runs too
        connector = registry.open_location(location, format, **delta.options)
        delta.check(connector)
        connector.on_ahead = partial(crs84.ahead, crs=crs, axis_order=axis_order)  # moved early
        info = connector.inspect()
        task = progress.source_task(f"ingest {source}", connector)
        closing.enter_context(reporter.track(task))
        harmoniser = Harmoniser(
            source=source,
            source_format=info.label,
            ingested_at=attempt.ingested_at,
            run_id=attempt.run_id,
            theme=theme,
            crs=crs,
            axis_order=axis_order,
            fields=dict(fields or {}),
            path=path,
        )
        harmoniser.placer.ahead(connector.ahead())  # moved to CRS84 beside the read
        validator = Validator(unit) if validate else None
        # every file is closed whatever happens, the rejects first (they are kept in quarantine
        # when the run fails, and a full disk may refuse the others); features are written
        # (in spatial order) and surfaces finished only when the run ends without an error,
        # the surfaces' file on its thread, which the run waits for before it commits; the
        # features' thread (sealed) finishes their file beside the commit, which waits for it
        surfaces_writer = BesideWriter(
            GeoParquetWriter(attempt.file("surfaces"), schema.table("surfaces"), empty_file=False)
        )
        closing.callback(surfaces_writer.wait)
        writer = closing.enter_context(OrderedWriter(attempt.file("features"), schema))
        attempt.flushing.update(features=writer.wait, surfaces=surfaces_writer.wait)
        closing.enter_context(surfaces_writer)
        rejects_writer = RowsWriter(attempt.file("rejects"), schema.table("rejects").arrow)
        closing.callback(rejects_writer.close)
        observations = ObservationStage(attempt.folder, lake.root, source, attempt.run_id)
        closing.callback(observations.close)
        batch: SourceBatch | None = None
        out: HarmonisedBatch | None = None
        for batch in connector.read():
            records += len(batch)
            attempt.records = records
            task.add("records", len(batch))
            out = harmoniser.harmonise(batch)  # the run's rejects: harmonise's, and only those
            if validator:
                validator.add(out.features)
            writer.write(out.features)
            delta.add(out.features)
            violations.add(batch.properties, out.features, out.kept, out.property_names)
            if out.surfaces is not None:
                surfaces_writer.write(out.surfaces)
            features += out.features.num_rows
            rejects_writer.write(out.rejects)
            attempt.rejects = rejects_writer.rows
            reasons.update(r["reason"] for r in out.rejects)
            warnings.update(out.warnings)
            warnings.update(observations.add(batch.observations, out.features, out.kept))
        carried = delta.merge(
            {"features": (writer, schema), "surfaces": (surfaces_writer, schema.table("surfaces"))},
            attempt.ingested_at,
        )
        writer.seal()  # every row given: large features encoded while the file is hashed, checked
        fingerprint = hashed()  # without the GIL: the features' thread takes it to begin
        # the last batch freed while its rows are encoded (Delft's tree of objects: 0.7 ms),
        # and now, so the collector has nothing to walk when it resumes
        batch = out = None
        task.finished("writing and validating" if validator else "writing")
        if validator:  # GX is first needed here, once a process (an unreadable source never
            # imports it): its start-up is not this source's time
            preparing = time.perf_counter()
            prepare()
            started += time.perf_counter() - preparing
        checks = (
            validator.finish(
                records=records,
                features=features,
                rejects=rejects_writer.rows,
                declared_count=info.declared_count,
            )
            if validator
            else []
        )
        report = IngestReport(
            source=unit,
            run_id=attempt.run_id,
            path=origin or path,
            format=info.label,
            declared_crs=info.crs,
            records=records,
            features=features + carried,
            rejects=rejects_writer.rows,
            declared_count=info.declared_count,
            checks=checks,
            seconds=round(time.perf_counter() - started, 3),
            ingested_at=attempt.ingested_at,
            licence=licence or info.licence,
            reasons=reasons,
            warnings=warnings,
            observations=observations.finish(),
            violations=violations,
            since=delta.since,
            carried=carried,
        )
        attempt.features = report.features
        writer.metadata[RUN_KEY] = orjson.dumps(report.summary_row())
        writer.metadata[incremental.CHECKS_KEY] = incremental.checks_json(checks)
        if fingerprint is not None:
            writer.metadata[incremental.FINGERPRINT_KEY] = fingerprint.encode()
        writer.metadata.update(delta.footer(connector))
        heights = crslib.crs_3d(harmoniser.crss.values())
        if heights is not None:
            writer.metadata[HEIGHTS_KEY] = surfaces_writer.metadata[HEIGHTS_KEY] = heights
        closing.close()  # the run's files are whole (a full disk says so) before the docs grow
        if validator:  # the shapes of what lands, or of what a failed check refuses
            writer.wait()  # the features whole (their thread done) before they are read
            report.shapes = preview.read_geometries(attempt.file("features"))
            after.callback(_write_docs, lake, report, validator, render_docs)
        _raise_on_blocking_failures(report)
        if records and not features:
            reason, n = reasons.most_common(1)[0]
            raise NothingIngested(
                f"{path}: no record could be ingested ({report.rejects} rejected; {n} "
                f"because {reason}); the previous output is kept"
            )
    return report
