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
from typing import TYPE_CHECKING

from dagster import AssetCheckEvaluation, AssetKey, DagsterInstance

from citypipe.core import datadocs, warehouse
from citypipe.core.catalog import Catalog, Source, load_catalog
from citypipe.core.ingest import IngestReport
from citypipe.core.lake import Lake
from citypipe.orchestration.assets import WAREHOUSE, harmonised_key, ingest_keys, source_keys
from citypipe.orchestration.automation import INGEST_ALL
from citypipe.orchestration.definitions import build_definitions
from citypipe.orchestration.resources import LakeResource

if TYPE_CHECKING:  # dagster does not export the type of a step's failure data
    from dagster._core.execution.plan.objects import StepFailureData

__all__ = ["SourceOutcome", "dagster_home", "run"]

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Run config that keeps Dagster's console logger from printing the run's events."""


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


def _message(failure: StepFailureData) -> str:
    """The message a user should read: a Failure's description, else the user code's exception
    (Dagster wraps it in a DagsterExecutionStepExecutionError), else Dagster's own error."""
    if failure.user_failure_data and failure.user_failure_data.description:
        return failure.user_failure_data.description
    error = failure.error
    if error is None:
        return "failed"
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause:
        error = error.cause
    return error.message.strip()


def _outcome(
    source: Source,
    report: IngestReport | None,
    checks: list[AssetCheckEvaluation],
    failures: Mapping[AssetKey, str],
) -> SourceOutcome:
    name = source.name
    key = harmonised_key(name)
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


def run(
    lake: Lake,
    catalog: Catalog | None = None,
    sources: list[str] | None = None,
    *,
    force: bool = False,
) -> list[SourceOutcome]:
    """Ingest `sources` (default: all) of `catalog` (default: `load_catalog()`) into `lake`;
    a source whose file and settings did not change since it landed is skipped unless `force`.

    A source that fails does not stop the others. The warehouse and the validation reports are
    refreshed at the end even when Dagster skipped the warehouse because a source failed, so
    they show whatever did land.
    """
    catalog = catalog if catalog is not None else load_catalog()
    names = [s.name for s in catalog.sources] if sources is None else list(sources)
    chosen = [catalog.get(name) for name in names]  # an unknown name fails here, listing all
    defs = build_definitions(catalog, LakeResource(root=lake.location, force=force))
    home = dagster_home(lake)
    home.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.from_config(str(home)) as instance:
        result = defs.resolve_job_def(INGEST_ALL).execute_in_process(
            run_config=QUIET,
            instance=instance,
            raise_on_error=False,
            asset_selection=ingest_keys(chosen),
        )
    step_keys = {defs.resolve_assets_def(k).op.name: k for k in ingest_keys(chosen)}
    failures = {
        step_keys[e.step_key]: _message(e.step_failure_data)
        for e in result.get_step_failure_events()
        if e.step_key in step_keys
    }
    materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    if WAREHOUSE not in materialized:
        datadocs.render(lake.docs)
        warehouse.refresh(lake)
    # the harmonised asset's value is the ingest's report (not stored: resources.UnstoredValues)
    reports: dict[str, IngestReport] = {
        name: result.asset_value(harmonised_key(name))
        for name in names
        if harmonised_key(name) in materialized
    }
    checks = list(result.get_asset_check_evaluations())
    return [_outcome(s, reports.get(s.name), checks, failures) for s in chosen]
