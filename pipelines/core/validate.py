"""Validation of harmonised features: the GX Core suite of the checks of schemas/feature-v1.yaml
(citypipe.core.checks), run over every batch of an ingest run.

Row-level checks run per batch on a slim pandas frame of the columns they need; failing rows
go to rejects with a reason, and the check fails without blocking. `finish` validates the slim
frame of the whole run once more (so uniqueness holds across batches in the suite result too),
runs the table-level checks on the run's counts, and merges both into one GX validation result,
which `write_docs` keeps as GX Data Docs (citypipe.core.datadocs).

Great Expectations is imported on first use (it takes seconds), with analytics and progress
bars off, and runs in an ephemeral (in-memory) Data Context: nothing is written outside `docs`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from citypipe import schemas
from citypipe.core import datadocs
from citypipe.core.checks import META, BoundCheck, CheckResult, bound_checks
from citypipe.core.seen_ids import SeenIds

__all__ = ["Validator"]

SAMPLES = 5
"""Failing values kept per check for `CheckResult.samples`."""


@cache
def _gx() -> SimpleNamespace:
    """Great Expectations, imported once; analytics off before the import reads the setting."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return SimpleNamespace(
        gx=gx,
        expectations=gxe,
        SuiteResult=ExpectationSuiteValidationResult,
        RunIdentifier=RunIdentifier,
        DataContextConfig=DataContextConfig,
        InMemoryStoreBackendDefaults=InMemoryStoreBackendDefaults,
        ProgressBarsConfig=ProgressBarsConfig,
    )


def _context() -> Any:
    """An ephemeral Data Context: in-memory stores, no docs site (write_docs adds one), no
    analytics, no progress bars."""
    g = _gx()
    config = g.DataContextConfig(
        store_backend_defaults=g.InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=g.ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return g.gx.get_context(mode="ephemeral", project_config=config)


def _gx_error(result: Any) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, Mapping) and v.get("raised_exception"):
            return str(v.get("exception_message"))
    return None


class Validator:
    """Validates the harmonised batches of one ingest run of `source`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.started = datetime.now(UTC)
        self._bound = bound_checks()
        self._row = [b for b in self._bound if not b.check.table]
        self._table = [b for b in self._bound if b.check.table]
        self._seen = {b.column: SeenIds() for b in self._row if b.check.run_wide and b.column}
        self._failed = {b.spec.name: 0 for b in self._row}
        self._samples: dict[str, list[str]] = {b.spec.name: [] for b in self._row}
        self._frames: list[pd.DataFrame] = []
        self._result: Any = None

        schema = schemas.feature_schema()
        self._arrow = schema.arrow
        self.suite_name = f"{schema.name}-v{schema.version}"
        self._context = _context()
        pandas = self._context.data_sources.add_pandas("citypipe")
        # the harmonised rows of the source (slim), and the one-row frame of the run's counts
        rows = pandas.add_dataframe_asset(source)
        self._rows_batches = rows.add_batch_definition_whole_dataframe("features")
        run = pandas.add_dataframe_asset(f"{source}.run")
        self._run_batches = run.add_batch_definition_whole_dataframe("counts")
        self._row_suite = self._suite(self._row)
        self._table_suite = self._suite(self._table)
        # the whole suite, as the Data Docs show it
        self._context.suites.add(self._suite(self._bound))

    def _suite(self, bound: list[BoundCheck] | tuple[BoundCheck, ...]) -> Any:
        g = _gx()
        expectations = [
            getattr(g.expectations, cls)(
                **kwargs, meta={META: b.spec.name}, notes=b.spec.description
            )
            for b in bound
            for cls, kwargs in b.expectations()
        ]
        return g.gx.ExpectationSuite(name=self.suite_name, expectations=expectations)

    def _frame(self, batch: pa.RecordBatch) -> pd.DataFrame:
        """The slim frame GX validates: only the columns the row-level checks need."""
        columns: dict[str, Any] = {"feature_id": batch.column("feature_id").to_pandas()}
        for b in self._row:
            assert b.check.frame is not None, b.spec.name
            for name, values in b.check.frame(batch, b.column or "").items():
                columns.setdefault(name, values)
        return pd.DataFrame(columns)

    def _validate(self, batches: Any, frame: pd.DataFrame, suite: Any, result_format: Any) -> Any:
        result = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format=result_format
        )
        for r in result.results:
            error = _gx_error(r)
            if error:
                raise RuntimeError(
                    f"GX could not evaluate {r.expectation_config.type} for check "
                    f"{r.expectation_config.meta.get(META)}: {error}"
                )
        return result

    def _note(self, name: str, feature_id: Any, why: str) -> None:
        self._failed[name] += 1
        if len(self._samples[name]) < SAMPLES:
            fid = "<no feature_id>" if pd.isna(feature_id) else str(feature_id)
            self._samples[name].append(f"{fid}: {why}")

    def _repeated(self, frame: pd.DataFrame, column: str) -> dict[int, list[str]]:
        """Rows repeating a value an earlier row of the run has. GX flags every copy within the
        batch and none of an earlier batch; here the first row with a value stays, every later
        one fails, in this batch or a later one."""
        values = frame[column]
        present = np.flatnonzero(values.notna().to_numpy())
        repeats = self._seen[column].add(values.iloc[present].astype(str).tolist())
        return {int(present[k]): [column] for k in repeats}

    def check_batch(self, batch: pa.RecordBatch) -> dict[int, str]:
        """Row index in `batch` -> reason, for rows failing a row-level check; the caller moves
        them to rejects."""
        if batch.num_rows == 0:
            return {}
        frame = self._frame(batch)
        result = self._validate(self._rows_batches, frame, self._row_suite, "COMPLETE")
        # check -> failing row -> the slim columns it fails on
        failing: dict[str, dict[int, list[str]]] = {b.spec.name: {} for b in self._row}
        for r in result.results:
            if r.success:
                continue
            rows = failing[r.expectation_config.meta[META]]
            for i in r.result.get("unexpected_index_list") or ():
                rows.setdefault(int(i), []).append(r.expectation_config.kwargs["column"])
        reasons: dict[int, list[str]] = {}
        for b in self._row:
            rows = failing[b.spec.name]
            if b.check.run_wide:
                rows = self._repeated(frame, b.column or "")
            for i, fields in sorted(rows.items()):
                row = frame.iloc[i]
                why = "; ".join(b.check.why(f, row) for f in fields)
                reasons.setdefault(i, []).append(f"check {b.spec.name} failed: {why}")
                self._note(b.spec.name, row["feature_id"], why)
        self._frames.append(frame)
        return {i: "; ".join(rs) for i, rs in sorted(reasons.items())}

    def finish(
        self, *, records: int, features: int, rejects: int, declared_count: int | None
    ) -> list[CheckResult]:
        """One CheckResult per CheckSpec, over the whole run (row-level results aggregated over
        batches)."""
        g = _gx()
        if self._frames:
            frame = pd.concat(self._frames, ignore_index=True)
        else:
            frame = self._frame(pa.RecordBatch.from_pylist([], schema=self._arrow))
        rows = self._validate(self._rows_batches, frame, self._row_suite, "SUMMARY")
        counts = pd.DataFrame(
            {
                "records": pd.array([features + rejects], dtype="Int64"),
                "declared_count": pd.array([declared_count], dtype="Int64"),
            }
        )
        table = self._validate(self._run_batches, counts, self._table_suite, "SUMMARY")
        results = [*rows.results, *table.results]
        ok = sum(r.success for r in results)
        run_id = g.RunIdentifier(run_name=self.source, run_time=self.started)
        self._result = g.SuiteResult(
            success=ok == len(results),
            results=results,
            suite_name=self.suite_name,
            statistics={
                "evaluated_expectations": len(results),
                "successful_expectations": ok,
                "unsuccessful_expectations": len(results) - ok,
                "success_percent": 100.0 * ok / len(results) if results else None,
            },
            meta={
                **rows.meta,
                "run_id": run_id,
                "validation_time": self.started,
                "batch_kwargs": {"data_asset_name": self.source},
                "citypipe": {
                    "records": records,
                    "features": features,
                    "rejects": rejects,
                    "declared_count": declared_count,
                },
            },
            batch_id=rows.batch_id,
        )
        passed: dict[str, bool] = {b.spec.name: True for b in self._bound}
        for r in results:
            name = r.expectation_config.meta[META]
            passed[name] = passed[name] and bool(r.success)
        out = []
        for b in self._bound:
            name = b.spec.name
            if b.check.table:  # the run fails it, as a whole
                fails, samples = (0, []) if passed[name] else (1, [b.check.why("", counts.iloc[0])])
            else:  # the rows rejected for it, over all batches
                fails, samples = self._failed[name], list(self._samples[name])
            out.append(CheckResult(name, passed[name], b.spec.description, fails, samples))
        return out

    def write_docs(self, docs: Path) -> None:
        """GX Data Docs HTML for this run's validation results under `docs` (e.g. <lake>/docs/)."""
        if self._result is None:
            raise RuntimeError("Validator.write_docs needs the results of Validator.finish")
        datadocs.write(self._context, self._result, self.source, docs)
