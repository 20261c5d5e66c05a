"""`citypipe run`: the catalog's Dagster assets and checks, executed in this process.

The run goes through the same job as `dagster dev` (same assets, checks and order), recorded
in a persistent Dagster instance (`dagster_home`), so the UI shows the CLI's runs, their
materialisations and check results beside its own; no daemon is needed. Dagster's console log
is silenced because the CLI prints its own table, made from each source's `IngestReport` (the
harmonised asset's value); what went wrong is in each `SourceOutcome`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import AssetCheckEvaluation, AssetKey, DagsterInstance, Definitions

from citypipe.core import datadocs, warehouse
from citypipe.core.catalog import Catalog, Source, load_catalog
from citypipe.core.ingest import IngestReport
from citypipe.core.lake import Lake
from citypipe.core.partitions import unit
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import WAREHOUSE, harmonised_key, ingest_keys, source_keys
from citypipe.orchestration.automation import INGEST_ALL, source_job_name
from citypipe.orchestration.definitions import build_definitions, checked
from citypipe.orchestration.instance import open_instance
from citypipe.orchestration.parallel import TileResult, run_parallel, step_message
from citypipe.orchestration.partitions import to_run
from citypipe.orchestration.resources import LakeResource

__all__ = ["SourceOutcome", "dagster_home", "run"]

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Run config that keeps Dagster's console logger from printing the run's events."""
QUIET_STEPS = {"python_logs": {"python_log_level": "CRITICAL"}, "telemetry": {"enabled": False}}
"""Instance settings that keep the step processes of the parallel job from printing that they
started (they log it before the run config's loggers exist), and Dagster's telemetry log off;
the instance's own dagster.yaml, which the UI reads, is left as it is."""


def dagster_home(lake: Lake) -> Path:
    """The Dagster instance's folder: `DAGSTER_HOME`, else `dagster/` beside the lake
    (data/dagster for data/lake), which `make ui` hands to `dagster dev` too."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else lake.root.absolute().parent / "dagster"


@dataclass(frozen=True)
class SourceOutcome:
    """What one source's ingest did: a row of the CLI's summary table."""

    source: str
    ok: bool
    error: str | None = None
    format: str | None = None
    features: int | None = None
    rejects: int | None = None
    checks_passed: int = 0
    checks_total: int = 0
    seconds: float | None = None
    unchanged: bool = False

    @property
    def checks(self) -> str:
        """ "passed/total", as the summary table shows it."""
        return f"{self.checks_passed}/{self.checks_total}"


def _outcome(
    source: Source,
    report: IngestReport | None,
    checks: list[AssetCheckEvaluation],
    failures: Mapping[AssetKey, str],
    partition: str | None = None,
) -> SourceOutcome:
    name = unit(source.name, partition)
    key = harmonised_key(source.name)
    blocked = [c.check_name for c in checks if c.asset_key == key and c.blocking and not c.passed]
    error = next((failures[k] for k in source_keys(source) if k in failures), None)
    if blocked and error is None:
        # clearer than Dagster's "N blocking asset checks failed with ERROR severity"
        error = f"blocking checks failed: {', '.join(blocked)}"
    if report is None:
        return SourceOutcome(name, ok=False, error=error or "not materialised")
    return SourceOutcome(
        name,
        ok=error is None,
        error=error,
        format=report.format,
        features=report.features,
        rejects=report.rejects,
        checks_passed=report.checks_passed,
        checks_total=len(report.checks),
        seconds=report.seconds,
        unchanged=report.unchanged,
    )


def _tile_outcome(source: Source, tile: TileResult) -> SourceOutcome:
    name = unit(source.name, tile.partition)
    if tile.metadata is None:
        return SourceOutcome(name, ok=False, error=tile.error)
    found: dict[str, Any] = tile.metadata
    return SourceOutcome(
        name,
        ok=True,
        format=found["format"],
        features=found["features"],
        rejects=found["rejects"],
        checks_passed=found["checks_passed"],
        checks_total=found["checks_total"],
        seconds=found["seconds"],
        unchanged=found["unchanged"],
    )


def run(
    lake: Lake,
    catalog: Catalog | None = None,
    sources: list[str] | None = None,
    *,
    force: bool = False,
    partitions: list[str] | None = None,
    workers: int | None = None,
) -> list[SourceOutcome]:
    """Ingest `sources` (default: all) of `catalog` (default: `load_catalog()`) into `lake`;
    a source whose file and settings did not change since it landed is skipped unless `force`.
    A partitioned source's partitions (`partitions`: only these, of the one source named) run
    in parallel, `workers` processes at a time (default: the cores; `parallel.py`); one
    partition alone runs in this process.

    A source that fails does not stop the others, nor does a catalog entry with a mistake (it
    fails with its message). The warehouse and the validation reports are
    refreshed at the end even when Dagster skipped the warehouse because a source failed, so
    they show whatever did land.
    """
    catalog = checked(catalog if catalog is not None else load_catalog())
    names = catalog.names if sources is None else list(sources)
    refused = dict(catalog.refused)  # each fails alone with its mistake, as a failing source
    outcomes = {name: [SourceOutcome(name, ok=False, error=refused[name])] for name in refused}
    # an unknown name fails here, listing all
    chosen = [catalog.get(name) for name in names if name not in refused]
    if partitions and (len(chosen) != 1 or not chosen[0].partitioned):
        raise ConfigurationError(
            "--partition needs one --source, a partitioned one (tiles:, partitions: daily)"
        )
    keys = {s.name: to_run(s, partitions, lake) for s in chosen if s.partitioned}
    resource = LakeResource(root=lake.location, force=force)
    defs = build_definitions(catalog, resource)
    outcomes.update(
        {s: [SourceOutcome(s, ok=True, unchanged=True)] for s, k in keys.items() if not k}
    )
    single = keys[chosen[0].name][0] if partitions and len(keys[chosen[0].name]) == 1 else None
    whole = [s for s in chosen if not s.partitioned or single is not None]
    tiled = [s for s in chosen if s.partitioned and single is None and keys[s.name]]
    with open_instance(dagster_home(lake), QUIET_STEPS) as instance:
        materialized: set[AssetKey] = set()
        if whole:
            materialized, found = _run_whole(defs, instance, whole, single, warehouse=not tiled)
            outcomes.update(found)
        for source in tiled:
            results = run_parallel(
                source,
                resource,
                instance,
                partitions=keys[source.name],
                workers=workers,
                quiet=QUIET,
            )
            outcomes[source.name] = [_tile_outcome(source, r) for r in results]
    if WAREHOUSE not in materialized:
        datadocs.render(lake.docs)
        warehouse.refresh(lake)
    return [o for name in names for o in outcomes[name]]


def _run_whole(
    defs: Definitions,
    instance: DagsterInstance,
    chosen: list[Source],
    partition: str | None,
    *,
    warehouse: bool,
) -> tuple[set[AssetKey], dict[str, list[SourceOutcome]]]:
    """`chosen`'s assets (of one `partition`, where given) in one run in this process, and the
    warehouse after them when `warehouse`: what materialised and each source's outcome."""
    keys = [k for k in ingest_keys(chosen) if warehouse or k != WAREHOUSE]
    job = INGEST_ALL if partition is None else source_job_name(chosen[0])
    result = defs.resolve_job_def(job).execute_in_process(
        run_config=QUIET,
        instance=instance,
        raise_on_error=False,
        asset_selection=keys,
        partition_key=partition,
    )
    step_keys = {defs.resolve_assets_def(k).op.name: k for k in keys}
    failures = {
        step_keys[e.step_key]: step_message(e.step_failure_data)
        for e in result.get_step_failure_events()
        if e.step_key in step_keys
    }
    materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    # the harmonised asset's value is the ingest's report (not stored: resources.UnstoredValues)
    reports: dict[str, IngestReport] = {
        s.name: result.asset_value(harmonised_key(s.name))
        for s in chosen
        if harmonised_key(s.name) in materialized
    }
    checks = list(result.get_asset_check_evaluations())
    return materialized, {
        s.name: [_outcome(s, reports.get(s.name), checks, failures, partition)] for s in chosen
    }
