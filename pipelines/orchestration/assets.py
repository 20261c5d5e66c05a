"""The catalog as Dagster assets: per source a raw snapshot and its harmonised lake partition,
and one warehouse over all of them.

One factory turns every catalog entry into the same assets, so adding a source is a
catalog entry and nothing here. A service (`url:`) has no raw snapshot: its harvest is many
requests, not one file, and reading them twice would ask the server twice; the harmonised
asset is the harvest, complete or failed (the lake keeps the previous output).

The harmonised asset calls `citypipe.core.ingest.ingest`, the same function the CLI runs,
reports the validator's checks as Dagster asset checks, and has the ingest's `IngestReport` as
its value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Backoff,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
)

from citypipe import schemas
from citypipe.connectors import registry
from citypipe.core import datadocs, incremental, preview, progress, report_page, warehouse
from citypipe.core.catalog import Catalog, Source
from citypipe.core.checks import check_specs
from citypipe.core.ingest import ChecksFailed, IngestReport, ingest
from citypipe.core.lake import Lake
from citypipe.core.violation_share import SPEC as VIOLATION_SHARE
from citypipe.core.violation_share import result as violation_share
from citypipe.geo.errors import CitypipeError, UnavailableError
from citypipe.orchestration.partitions import partitions_def
from citypipe.orchestration.resources import LakeResource

__all__ = [
    "SOURCES_GROUP",
    "WAREHOUSE",
    "build_assets",
    "harmonised_key",
    "ingest_keys",
    "land_snapshot",
    "raw_key",
    "reported_as_failure",
    "snapshot_path",
    "source_assets",
    "source_keys",
    "warehouse_asset",
]

SOURCES_GROUP = "sources"
"""Every source's assets share one group: a theme is optional and one source can hold several
(a CityGML tile has buildings and roads), so groups by theme would misfile sources."""
WAREHOUSE = AssetKey("warehouse")
TOP_REASONS = 5
"""How many reject reasons the harmonised asset's metadata lists."""
MAP_SHAPES = 500
"""Geometries in the map on a materialisation: Dagster keeps its metadata in its event log, so
the map stays small (the report page draws more)."""


def raw_key(name: str) -> AssetKey:
    return AssetKey(["raw", name])


def harmonised_key(name: str) -> AssetKey:
    return AssetKey(["harmonised", name])


def source_keys(source: Source) -> list[AssetKey]:
    """The assets one source's ingest materialises (a service's: the harvest alone)."""
    if source.url is not None:
        return [harmonised_key(source.name)]
    return [raw_key(source.name), harmonised_key(source.name)]


def ingest_keys(sources: Iterable[Source]) -> list[AssetKey]:
    """What brings `sources` up to date: their raw and harmonised assets, the warehouse."""
    return [*(k for source in sources for k in source_keys(source)), WAREHOUSE]


def snapshot_path(lake: Lake, source: Source, file: Path | None = None) -> Path:
    """Where the raw asset lands the source file (or the tile `file` of a partitioned source):
    <lake>/raw/source=<name>/<file name>."""
    return lake.root / "raw" / f"source={source.name}" / Path(file or source.location).name


def _day(source: Source) -> str | None:
    """The day the running step of a source partitioned by day harvests (None: not one)."""
    return AssetExecutionContext.get().partition_key if source.partitions is not None else None


def _tile(source: Source) -> tuple[str | None, Path]:
    """The partition the running step of `source` is for and the file it reads (the source's
    own for a source without tiles)."""
    if not source.tiled:
        return None, Path(source.location)
    key = AssetExecutionContext.get().partition_key
    tiles = source.tile_files()
    if key not in tiles:
        raise Failure(description=f"{source.name}: no tile {key!r} any more in {source.location}")
    return key, tiles[key]


@contextmanager
def reported_as_failure(snapshot: Path | None = None, origin: Path | None = None) -> Iterator[None]:
    """Errors meant for users fail the asset with their message alone, not a traceback; the
    retry policy applies only to those that say trying again can help. A message about the
    `snapshot` names its `origin` instead: the same bytes, in the file the user knows."""
    try:
        yield
    except CitypipeError as e:
        message = str(e)
        if snapshot is not None and origin is not None:
            message = message.replace(str(snapshot), str(origin))
        raise Failure(description=message, allow_retries=e.retry) from None


def land_snapshot(src: Path, dest: Path) -> tuple[int, str]:
    """Copy `src` to `dest` byte for byte (temp file, fsync, rename), so a reader sees the old
    snapshot or the new one, never part of one. Returns the size and the SHA-256."""
    try:
        reader = open(src, "rb")  # noqa: SIM115 - opened apart to tell a read error from a write one
    except OSError as e:
        raise UnavailableError(f"{src}: cannot be read: {e.strerror or e}") from e
    digest, size = hashlib.sha256(), 0
    with reader:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with open(fd, "wb") as out:
                while chunk := reader.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:  # the rename itself survives a crash only once the directory is synced
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    incremental.record_file_digest(dest, digest.hexdigest())  # the ingest's fingerprint uses it
    return size, digest.hexdigest()


def _check_results(
    report: IngestReport, key: AssetKey, source: Source | None = None
) -> list[AssetCheckResult]:
    """The validator's checks, and with the `source` (a run that landed) the share of its
    features violating their Smart Data Model, which does not block."""
    checks = list(report.checks)
    if source is not None:
        checks.append(violation_share(report.violations, source.max_violation_share))
    return [
        AssetCheckResult(
            asset_key=key,
            check_name=c.name,
            passed=c.passed,
            description=c.description or None,
            metadata={"failed": c.failed, "samples": MetadataValue.json(c.samples)},
        )
        for c in checks
    ]


def _column_schema() -> TableSchema:
    """The features table's columns, from the schema file, for Dagster's column view."""
    return TableSchema(
        columns=[
            TableColumn(
                c.name,
                str(c.arrow.type),
                description=c.description,
                constraints=TableColumnConstraints(nullable=c.nullable),
            )
            for c in schemas.feature_schema().columns
        ]
    )


def _landed(root: Lake, report: IngestReport) -> dict[str, Any]:
    """Where the source's features are and the box they cover (from the files' statistics)."""
    landed = root.landed_file("features", report.source)
    files = [landed] if landed.exists() else []
    found: dict[str, Any] = {"output_crs": "OGC:CRS84"}
    if files:
        found["path"] = MetadataValue.path(str(files[0].resolve()))
        geo = json.loads((pq.read_schema(files[0]).metadata or {}).get(b"geo", b"{}"))
        extent = geo.get("columns", {}).get("geometry", {}).get("bbox")
        if extent and len(extent) == 4:  # GeoParquet's bbox of the column: lon/lat min, max
            names = ("xmin", "ymin", "xmax", "ymax")
            found["bbox"] = MetadataValue.json(dict(zip(names, extent, strict=True)))
    page = report_page.page_path(root.docs, report.source)
    if page.exists():
        found["validation_report"] = MetadataValue.url(page.resolve().as_uri())
    if files:  # the shapes the ingest drew on its report page, or (unchanged) the file's
        shapes = report.shapes
        shapes = preview.read_geometries(files[0]) if shapes is None else shapes
        drawing = preview.map_svg(preview.sample(shapes, MAP_SHAPES))
        if drawing:
            image = base64.b64encode(drawing.encode()).decode()
            found["map_preview"] = MetadataValue.md(f"![map](data:image/svg+xml;base64,{image})")
    return found


def _raw_asset(source: Source) -> AssetsDefinition:
    @asset(
        key=raw_key(source.name),
        group_name=SOURCES_GROUP,
        description=f"Byte-exact snapshot of {source.location}",
        partitions_def=partitions_def(source),
    )
    def raw(lake: LakeResource) -> MaterializeResult:
        _, origin = _tile(source)
        dest = snapshot_path(lake.lake(), source, origin)
        with reported_as_failure(dest, origin):
            size, sha256 = land_snapshot(origin, dest)
            connector = registry.open_location(dest, source.format, **source.ingest_options())
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(dest)),
                "bytes": size,
                "sha256": sha256,
                "format": connector.name,
            },
            # unchanged bytes keep the version, so Dagster does not mark the harmonised asset stale
            data_version=DataVersion(sha256),
        )

    return raw


HARVEST_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL)
"""A harvest that failed for a reason that may pass (`UnavailableError`: the service stayed down
through the HTTP client's own retries of each request) runs again 30 s later, then 60 s later;
any other failure is final (`_reported_as_failure`)."""


def host_pool(url: str) -> str:
    """The Dagster concurrency pool of a service's harvests: one per host, so a deployment can
    limit the harvests in flight to a host across runs and processes
    (`dagster instance concurrency set host:HOST N`); within a process the HTTP client's limit
    holds (`HttpPolicy.per_host`)."""
    return f"host:{urlsplit(url).netloc}"


def _harmonised_asset(source: Source) -> AssetsDefinition:
    key = harmonised_key(source.name)
    service = source.url is not None

    @asset(
        key=key,
        deps=[] if service else [raw_key(source.name)],
        retry_policy=HARVEST_RETRY if service else None,
        pool=host_pool(source.url) if source.url else None,
        group_name=SOURCES_GROUP,
        kinds={"parquet"},
        description=source.description or f"{source.name} in the shared schema",
        check_specs=[
            AssetCheckSpec(
                spec.name, asset=key, description=spec.description, blocking=spec.blocking
            )
            for spec in (*check_specs(), VIOLATION_SHARE)
        ],
        partitions_def=partitions_def(source),
    )
    def harmonised(
        lake: LakeResource,
    ) -> Iterator[AssetCheckResult | MaterializeResult[IngestReport]]:
        root = lake.lake()
        day = _day(source)
        partition, origin = (day, source.location) if service else _tile(source)
        read = source.location if service else snapshot_path(root, source, Path(origin))
        with reported_as_failure(Path(read), Path(origin)):
            try:
                report = ingest(
                    read,
                    source.name,
                    root,
                    **source.ingest_arguments(None if service else Path(origin), day),
                    skip_unchanged=not lake.force,
                    changes_only=source.incremental and not lake.force,
                    render_docs=False,  # the warehouse asset renders the run's pages at once
                    # in the run's log (a `context` parameter cannot be typed here: the
                    # annotations are strings, which Dagster does not accept for it)
                    reporter=progress.Reporter(
                        log=AssetExecutionContext.get().log.info, bar=False, summary=True
                    ),
                    partition=partition,
                )
            except ChecksFailed as e:
                # show which checks failed, then fail the step: nothing was committed
                yield from _check_results(e.report, key)
                raise
        yield MaterializeResult(
            metadata={
                "dagster/row_count": report.features,
                "features": report.features,
                "rejects": report.rejects,
                "records": report.records,
                "format": report.format,
                "declared_crs": report.declared_crs,
                "seconds": report.seconds,
                "unchanged": report.unchanged,
                "top_reject_reasons": MetadataValue.json(
                    dict(report.reasons.most_common(TOP_REASONS))
                ),
                "warnings": MetadataValue.json(dict(report.warnings.most_common(TOP_REASONS))),
                "dagster/column_schema": _column_schema(),
                **_landed(root, report),
            },
            check_results=_check_results(report, key, source),
            value=report,  # what `citypipe run` reads back (not stored: resources.UnstoredValues)
        )

    return harmonised


def source_assets(source: Source) -> list[AssetsDefinition]:
    """The raw and harmonised assets of one catalog entry (a service's: harmonised only)."""
    if source.url is not None:
        return [_harmonised_asset(source)]
    return [_raw_asset(source), _harmonised_asset(source)]


def warehouse_asset(upstream: list[AssetKey]) -> AssetsDefinition:
    """The DuckDB views over the lake, refreshed after the harmonised assets in `upstream`, and
    the validation reports (Data Docs) of their runs, rendered once for all of them."""

    @asset(
        key=WAREHOUSE,
        deps=upstream,
        group_name="warehouse",
        kinds={"duckdb"},
        description="DuckDB views over the lake's features, rejects and sources",
    )
    def warehouse_views(lake: LakeResource) -> MaterializeResult:
        root = lake.lake()
        with reported_as_failure():
            datadocs.render(root.docs)
            warehouse.refresh(root)
            _, rows = warehouse.query(
                root,
                "SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM rejects), "
                "(SELECT count(*) FROM sources)",
            )
        features, rejects, sources = rows[0]
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(root.warehouse)),
                "features": features,
                "rejects": rejects,
                "sources": sources,
            }
        )

    return warehouse_views


def refused_asset(name: str, why: str) -> AssetsDefinition:
    """A catalog entry with a mistake: in the UI beside the others, described by its mistake,
    failing with it when materialised (the warehouse does not wait for it)."""

    @asset(
        key=harmonised_key(name),
        group_name="refused",
        description=f"Refused by the catalog: {why}",
    )
    def refused() -> None:
        raise Failure(description=why, allow_retries=False)

    return refused


def build_assets(catalog: Catalog) -> list[AssetsDefinition]:
    """Every source's assets, the refused entries', then the warehouse that depends on every
    source's."""
    assets = [a for source in catalog.sources for a in source_assets(source)]
    refused = [refused_asset(name, why) for name, why in catalog.refused]
    return [
        *assets,
        *refused,
        warehouse_asset([harmonised_key(s.name) for s in catalog.sources]),
    ]
