"""The one Dagster entry point (workspace.yaml names this module): the catalog's assets and
checks, the jobs, schedules and sensor that run them, and the resources they use.

A mistake in one catalog entry does not stop the code location: the entry's asset is there,
in the group `refused`, described by the catalog's own message naming the entry and the field,
and fails with it when materialised, while the other sources run as always. A catalog that
cannot be read at all (not YAML, no `sources:`) fails the load with its one-line message (as
dagster-dbt fails on a broken manifest): `dagster definitions validate` exits non-zero, so a
CI that validates the code location is not green on a catalog nothing can run.

Runs execute their steps in one process (the in-process executor): measured on the sample
catalog's 41 steps, Dagster's default of a process per step took 172 s of CPU and 344 s to
materialise everything where `citypipe run` took 16 s of CPU; in one process the UI's
"Materialize all" takes as long as `citypipe run` (0.99x, bench/ui_launch.py), each source's
steps still isolated from the others' failures. A partitioned source also has a job that runs
its partitions in parallel processes (`parallel.py`).
"""

from __future__ import annotations

from dagster import Definitions, definitions, in_process_executor

from citypipe.core.catalog import Catalog
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import build_assets
from citypipe.orchestration.automation import (
    files_changed_sensor,
    freshness_checks,
    freshness_sensors,
    ingest_all_job,
    partition_jobs,
    schedule_mistakes,
    schedules,
)
from citypipe.orchestration.parallel import parallel_job
from citypipe.orchestration.resources import CatalogResource, LakeResource, UnstoredValues

__all__ = ["build_definitions", "checked", "defs"]


def checked(catalog: Catalog) -> Catalog:
    """`catalog` with the entries Dagster cannot take (a schedule that is not a cron expression)
    refused too, as the catalog refuses entries with a mistake of their own."""
    return catalog.refuse(schedule_mistakes(catalog))


def build_definitions(
    catalog: Catalog | None = None, lake: LakeResource | None = None
) -> Definitions:
    """The definitions of `catalog` (default: the `CITYPIPE_CATALOG` one) writing to `lake`
    (default: `CITYPIPE_LAKE`, else data/lake)."""
    catalog = checked(catalog if catalog is not None else CatalogResource().catalog())
    lake = lake or LakeResource.from_env()
    ingest_all = ingest_all_job(catalog)
    fresh = freshness_checks(catalog)
    parted = partition_jobs(catalog)
    tiled = [parallel_job(s, lake) for s in catalog.sources if s.partitioned]
    tiled_jobs = {name: j for name, j in parted.items() if catalog.get(name).tiled}
    return Definitions(
        assets=build_assets(catalog),
        asset_checks=fresh,
        jobs=[ingest_all, *parted.values(), *tiled],
        schedules=schedules(catalog, parted),
        sensors=[files_changed_sensor(catalog, ingest_all, tiled_jobs), *freshness_sensors(fresh)],
        executor=in_process_executor,
        resources={
            "lake": lake,
            "io_manager": UnstoredValues(),
        },
    )


@definitions
def defs() -> Definitions:
    """The definitions of the `CITYPIPE_CATALOG` catalog, built when Dagster loads the code
    location (not when `citypipe run` imports this module, which builds its own); a catalog that
    cannot be read at all fails the load with its one line, not chained to the parser's error
    (Dagster shows every cause of a failed load)."""
    try:
        return build_definitions()
    except ConfigurationError as e:
        raise ConfigurationError(str(e)) from None
