"""Partitions of a partitioned source in one Dagster run, in parallel processes.

Dagster runs a partitioned asset's partitions as one run each; this job fans the source's tiles
(or days) out as mapped steps of one run instead (`DynamicOut`), which Dagster's multiprocess
executor runs `max_concurrent` at a time. Each step lands its tile's snapshot and ingests it, as
the raw and harmonised assets do (a day's step harvests its day), and records the assets'
materialisations for its partition, so the UI's partition view shows the partitions this job
landed beside those the UI backfilled.

A step process is forked from a forkserver that imported citypipe once (`preload_modules`):
without it every step would import the whole stack again, seconds of CPU per tile.
The processes rebuild the job from the source's catalog entry as JSON
(`build_reconstructable_job`), so the job runs the catalog it was started with.

Not `from __future__ import annotations`: Dagster reads the ops' annotations (the config class)
as types.
"""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetMaterialization,
    Config,
    DagsterInstance,
    DynamicOut,
    DynamicOutput,
    Failure,
    JobDefinition,
    OpExecutionContext,
    build_reconstructable_job,
    execute_job,
    job,
    multiprocess_executor,
    op,
)
from pydantic import Field

from citypipe.core import partitions as keys_of
from citypipe.core.catalog import Source
from citypipe.core.ingest import ChecksFailed, ingest
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import (
    harmonised_key,
    land_snapshot,
    raw_key,
    reported_as_failure,
    snapshot_path,
)
from citypipe.orchestration.resources import LakeResource

if TYPE_CHECKING:  # dagster does not export the type of a step's failure data
    from dagster._core.execution.plan.objects import StepFailureData

__all__ = ["TileResult", "job_name", "parallel_job", "run_parallel", "step_message"]

_MODULE = __name__
PRELOAD = "citypipe.orchestration.preload"


def job_name(source: Source) -> str:
    return "ingest_partitions_" + re.sub(r"\W", "_", source.name)


def _ops(source: Source) -> tuple[str, str]:
    """The names of the job's two ops, the source's own: Dagster refuses one op name in two
    jobs, as two partitioned sources' would be."""
    slug = re.sub(r"\W", "_", source.name)
    return f"partition_keys_{slug}", f"ingest_partition_{slug}"


def _mapping_keys(keys: list[str]) -> dict[str, str]:
    """Dagster's mapping key (letters, digits, `_`) of each partition key, kept unique."""
    found: dict[str, str] = {}
    for i, key in enumerate(keys):
        mapped = re.sub(r"\W", "_", key)
        found[key] = mapped if mapped not in found.values() else f"{mapped}_{i}"
    return found


class TilesConfig(Config):
    partitions: list[str] = Field(default_factory=list)
    """The partition keys (or ranges `FIRST..LAST`) to ingest; empty: all of them."""


def parallel_job(source: Source, lake: LakeResource) -> JobDefinition:
    """The job that ingests `source`'s partitions into `lake`, a step per partition."""
    tiles = source.tile_files() if source.tiled else {}
    keys_op, step_op = _ops(source)

    @op(name=keys_op, out=DynamicOut(str))
    def partition_keys(config: TilesConfig) -> Iterator[DynamicOutput[str]]:
        keys = source.partition_keys()
        try:
            chosen = keys_of.chosen(source.name, config.partitions, keys) or keys
        except ConfigurationError as e:
            raise Failure(description=str(e)) from None
        for key, mapped in _mapping_keys(chosen).items():
            yield DynamicOutput(key, mapping_key=mapped)

    @op(name=step_op)
    def ingest_partition(context: OpExecutionContext, lake: LakeResource, key: str) -> None:
        root = lake.lake()
        origin = tiles.get(key)
        snapshot = None if origin is None else snapshot_path(root, source, origin)
        with reported_as_failure(snapshot, origin):
            if origin is not None and snapshot is not None:  # a tile (a day has no snapshot)
                size, sha256 = land_snapshot(origin, snapshot)
                context.log_event(
                    AssetMaterialization(
                        raw_key(source.name),
                        partition=key,
                        metadata={"path": str(snapshot), "bytes": size, "sha256": sha256},
                    )
                )
            try:
                report = ingest(
                    snapshot or source.location,
                    source.name,
                    root,
                    **source.ingest_arguments(origin, None if origin else key),
                    skip_unchanged=not lake.force,
                    render_docs=False,
                    partition=key,
                )
            except ChecksFailed as e:
                raise Failure(description=str(e)) from None
        context.log_event(
            AssetMaterialization(
                harmonised_key(source.name),
                partition=key,
                metadata={
                    "dagster/row_count": report.features,
                    "features": report.features,
                    "rejects": report.rejects,
                    "format": report.format,
                    "checks_passed": report.checks_passed,
                    "checks_total": len(report.checks),
                    "seconds": report.seconds,
                    "unchanged": report.unchanged,
                    "path": str(root.landed_file("features", report.source)),
                },
            )
        )

    @job(
        name=job_name(source),
        description=f"Ingest every partition of {source.name}, in parallel processes.",
        executor_def=multiprocess_executor,
        resource_defs={"lake": lake},
        config={"execution": {"config": _execution(None)}},  # the UI's Launchpad starts from it
    )
    def tiles_job() -> None:
        partition_keys().map(ingest_partition)

    return tiles_job


def reconstruct(source_json: str, root: str, force: bool) -> JobDefinition:
    """The job as a step process rebuilds it (`build_reconstructable_job`)."""
    return parallel_job(
        Source.model_validate_json(source_json), LakeResource(root=root, force=force)
    )


@dataclass(frozen=True)
class TileResult:
    """What one partition's step did: its harmonised materialisation's metadata, or why not."""

    partition: str
    metadata: dict[str, Any] | None = None
    error: str | None = None


def _execution(workers: int | None) -> dict[str, Any]:
    """The multiprocess executor's config: `workers` processes at a time (None: the cores),
    forked from a server that imported citypipe once."""
    found: dict[str, Any] = {"start_method": {"forkserver": {"preload_modules": [PRELOAD]}}}
    return found if workers is None else {**found, "max_concurrent": workers}


def _run_config(
    source: Source, partitions: list[str], workers: int, quiet: dict[str, Any]
) -> dict[str, Any]:
    """The run's config: which partitions, how many at a time, and `quiet`'s loggers."""
    return {
        **quiet,
        "ops": {_ops(source)[0]: {"config": {"partitions": partitions}}},
        "execution": {"config": _execution(workers)},
    }


def run_parallel(
    source: Source,
    lake: LakeResource,
    instance: DagsterInstance,
    *,
    partitions: list[str] | None = None,
    workers: int | None = None,
    quiet: dict[str, Any] | None = None,
) -> list[TileResult]:
    """Ingest `partitions` (default: all) of `source`, `workers` (default: the cores) at a time,
    as one run recorded in `instance` (a persistent one: the steps are other processes)."""
    chosen = partitions or source.partition_keys()
    recon = build_reconstructable_job(
        _MODULE,
        "reconstruct",
        # dagster annotates the arguments as a 1-tuple; any tuple of JSON values is taken
        reconstructable_args=(source.model_dump_json(), lake.root, lake.force),  # type: ignore[arg-type]
    )
    config = _run_config(
        source, list(partitions or []), workers or os.cpu_count() or 1, quiet or {}
    )
    with execute_job(recon, instance=instance, run_config=config, raise_on_error=False) as result:
        failed = {e.step_key: e.step_failure_data for e in result.get_step_failure_events()}
        landed = {
            e.materialization.partition: e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key == harmonised_key(source.name)
        }
    out = []
    keys_op, step_op = _ops(source)
    for key, mapped in _mapping_keys(chosen).items():
        step = f"{step_op}[{mapped}]"
        if key in landed:
            metadata = {k: getattr(v, "value", v) for k, v in landed[key].items()}
            out.append(TileResult(key, metadata=metadata))
        elif step in failed:
            out.append(TileResult(key, error=step_message(failed[step])))
        elif keys_op in failed:
            out.append(TileResult(key, error=step_message(failed[keys_op])))
        else:
            out.append(TileResult(key, error="not materialised"))
    return out


def step_message(failure: "StepFailureData") -> str:
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
