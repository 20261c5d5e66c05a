"""When the assets run: the `ingest_all` job, a schedule per source that asks for one (and
per source partitioned by day, of yesterday's partition), a sensor that re-ingests the sources
whose files changed, and freshness checks (with the sensor that evaluates them) for the sources
whose catalog entry says how old their data may grow.

The sensor's cursor is JSON, source name (`<NAME>~<KEY>` for a tile of a partitioned source)
-> [mtime_ns, size] of its file (null while the file is missing). A source with no entry in
the cursor counts as changed, so the first tick (and the first tick after a source is added to
the catalog) ingests it: nothing tells the sensor whether the lake already holds the current
file, and an ingest is idempotent.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetChecksDefinition,
    AssetSelection,
    DagsterInvalidDefinitionError,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    SupersessionWarning,
    build_last_update_freshness_checks,
    build_schedule_from_partitioned_job,
    build_sensor_for_freshness_checks,
    define_asset_job,
    sensor,
)

from citypipe.core.catalog import Catalog, Source
from citypipe.core.partitions import split, unit
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import harmonised_key, ingest_keys, source_keys
from citypipe.orchestration.parallel import job_name
from citypipe.orchestration.partitions import partitions_def

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

__all__ = [
    "INGEST_ALL",
    "files_changed_sensor",
    "freshness_checks",
    "freshness_sensors",
    "ingest_all_job",
    "partition_jobs",
    "schedules",
    "source_job",
    "source_job_name",
]

INGEST_ALL = "ingest_all"
FileState = list[int] | None
"""[mtime_ns, size] of a source file, None while it is missing; a list so it survives JSON."""


def ingest_all_job(catalog: Catalog) -> UnresolvedAssetJobDefinition:
    """Every source without partitions, then the warehouse. A partitioned source's assets are
    in a job of their own (`partition_jobs`): a Dagster job has one partitions definition, and
    two sources' (tiles and days, or two sets of tiles) would stop the code location loading."""
    partitioned = [k for s in catalog.sources if s.partitioned for k in source_keys(s)]
    return define_asset_job(
        INGEST_ALL,
        selection=AssetSelection.all() - AssetSelection.assets(*partitioned),
        description="Ingest every catalog source without partitions, then refresh the warehouse.",
    )


def source_job_name(source: Source) -> str:
    return "ingest_" + re.sub(r"[^A-Za-z0-9_]", "_", source.name)


def source_job(source: Source) -> UnresolvedAssetJobDefinition:
    """One source's ingest and the warehouse refresh after it (of one partition a run, a
    partitioned source)."""
    return define_asset_job(
        source_job_name(source),
        selection=AssetSelection.assets(*ingest_keys([source])),
        description=f"Ingest {source.name}, then refresh the warehouse.",
        partitions_def=partitions_def(source),
    )


def partition_jobs(catalog: Catalog) -> dict[str, UnresolvedAssetJobDefinition]:
    """Source name -> its job, for each partitioned source (each job once: Dagster refuses two
    definitions of one name)."""
    return {s.name: source_job(s) for s in catalog.sources if s.partitioned}


def _schedule(
    source: Source, job: UnresolvedAssetJobDefinition | None = None
) -> ScheduleDefinition:
    """A source's schedule: of its job, of its parallel job where it has tiles (every tile in
    one run), or of its last partition where it has days: yesterday's, each day at 00:00 UTC;
    `job`: the source's job where the definitions have it already."""
    name = job_name(source) if source.tiled else source_job_name(source)
    try:
        if source.partitions is not None:
            return build_schedule_from_partitioned_job(  # type: ignore[return-value]
                job or source_job(source), name=f"{name}_daily"
            )
        if source.tiled:
            return ScheduleDefinition(
                name=f"{name}_schedule", cron_schedule=source.schedule, job_name=name
            )
        return ScheduleDefinition(
            name=f"{name}_schedule", cron_schedule=source.schedule, job=source_job(source)
        )
    except DagsterInvalidDefinitionError as e:
        raise ConfigurationError(
            f"source {source.name!r}: schedule {source.schedule!r} is not a cron expression"
        ) from e


def schedules(
    catalog: Catalog, jobs: Mapping[str, UnresolvedAssetJobDefinition]
) -> list[ScheduleDefinition]:
    """A schedule, with its job, for each source that has `schedule:` in the catalog or is
    partitioned by day; `jobs`: the partitioned sources' (`partition_jobs`)."""
    return [
        _schedule(s, jobs.get(s.name))
        for s in catalog.sources
        if s.schedule or s.partitions is not None
    ]


def schedule_mistakes(catalog: Catalog) -> dict[str, str]:
    """Source name -> why, for each source whose `schedule:` Dagster refuses."""
    mistakes = {}
    for source in catalog.sources:
        try:
            _schedule(source) if source.schedule else None
        except ConfigurationError as e:
            mistakes[source.name] = str(e)
    return mistakes


def _state(path: Path) -> FileState:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_mtime_ns, st.st_size]


def files_changed_sensor(
    catalog: Catalog,
    job: UnresolvedAssetJobDefinition,
    tiled: Mapping[str, UnresolvedAssetJobDefinition],
) -> SensorDefinition:
    """`source_files_changed`: one run of `job`'s assets for the sources whose files changed,
    and one per changed tile of a partitioned source, for its partition, of its job in `tiled`
    (services have no file: their schedule harvests them). The cursor names a tile
    `<NAME>~<KEY>`."""
    paths = {
        unit(s.name, key): path
        for s in catalog.sources
        if s.url is None
        for key, path in (s.tile_files().items() if s.tiled else [(None, s.path)])
        if path is not None
    }

    @sensor(
        name="source_files_changed",
        jobs=[job, *tiled.values()],
        minimum_interval_seconds=60,
        description="Re-ingest the catalog sources whose files changed (mtime or size).",
    )
    def source_files_changed(context: SensorEvaluationContext) -> SensorResult:
        before: dict[str, FileState] = json.loads(context.cursor) if context.cursor else {}
        now = {name: _state(path) for name, path in paths.items()}
        cursor = json.dumps(now, sort_keys=True)
        for name, state in sorted(now.items()):
            if state is None and (name not in before or before[name] is not None):
                context.log.warning(f"source {name!r}: {paths[name]} is missing")
        changed = [split(n) for n, s in sorted(now.items()) if s is not None and before.get(n) != s]
        if not changed:
            return SensorResult(skip_reason=SkipReason("no source file changed"), cursor=cursor)
        whole = [catalog.get(name) for name, key in changed if key is None]
        requests = (
            [RunRequest(asset_selection=ingest_keys(whole), job_name=job.name)] if whole else []
        )
        requests += [
            RunRequest(
                asset_selection=ingest_keys([catalog.get(name)]),
                partition_key=key,
                job_name=tiled[name].name,
            )
            for name, key in changed
            if key is not None
        ]
        return SensorResult(run_requests=requests, cursor=cursor)

    return source_files_changed


def freshness_checks(catalog: Catalog) -> list[AssetChecksDefinition]:
    """A freshness check on each harmonised asset whose source has `freshness:`: it fails (as
    a warning: old data is still data) once the last materialisation is older than that.

    Checks, not Dagster 1.12's freshness policies that supersede them: those are a preview,
    off unless the instance's dagster.yaml enables them, and cannot be evaluated in a test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return [
            check
            for s in catalog.sources
            if s.freshness is not None
            for check in build_last_update_freshness_checks(
                assets=[harmonised_key(s.name)], lower_bound_delta=s.freshness
            )
        ]


def freshness_sensors(checks: list[AssetChecksDefinition]) -> list[SensorDefinition]:
    """The sensor that evaluates `checks` while the Dagster daemon runs (on from the start)."""
    if not checks:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return [
            build_sensor_for_freshness_checks(
                freshness_checks=checks, default_status=DefaultSensorStatus.RUNNING
            )
        ]
