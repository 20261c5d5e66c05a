"""The one Dagster entry point (workspace.yaml names this module): the catalog's assets and
checks, the jobs, schedules and sensor that run them, and the resources they use.

A mistake in the catalog stops the code location from loading, with the catalog's own message
naming the entry and the field, rather than loading a graph with a source missing.
"""

from __future__ import annotations

from dagster import Definitions

from citypipe.core.catalog import Catalog
from citypipe.orchestration.assets import build_assets
from citypipe.orchestration.automation import files_changed_sensor, ingest_all_job, schedules
from citypipe.orchestration.resources import CatalogResource, LakeResource, UnstoredValues

__all__ = ["build_definitions", "defs"]


def build_definitions(
    catalog: Catalog | None = None, lake: LakeResource | None = None
) -> Definitions:
    """The definitions of `catalog` (default: the `CITYPIPE_CATALOG` one) writing to `lake`
    (default: `CITYPIPE_LAKE`, else data/lake)."""
    catalog = catalog if catalog is not None else CatalogResource().catalog()
    ingest_all = ingest_all_job()
    return Definitions(
        assets=build_assets(catalog),
        jobs=[ingest_all],
        schedules=schedules(catalog),
        sensors=[files_changed_sensor(catalog, ingest_all)],
        resources={
            "lake": lake or LakeResource.from_env(),
            "io_manager": UnstoredValues(),
        },
    )


defs = build_definitions()
