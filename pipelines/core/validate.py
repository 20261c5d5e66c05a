"""Validation of harmonised features: the GX Core suite of the checks of schemas/feature-v1.yaml
(citypipe.core.checks), over the features of one ingest run.

The suite checks what harmonise guarantees (ids unique and present, themes from the vocabulary,
lon/lat in range, valid geometries: records failing them are rejected there, and only there)
and reports it: each batch's features are kept as a slim pandas frame of the columns the checks
need until they make a chunk of `chunk_rows`, which GX validates (row-level checks: a failure is
reported, with the rows failing it, and does not block); `finish` validates the last chunk and
the run's counts (table-level checks, which block). The chunks' results and the counts' become
one GX validation result of the run (citypipe.core.chunk_results), the one a single GX run over
every feature gives, which `write_docs` keeps as GX Data Docs (citypipe.core.datadocs).

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

import pandas as pd
import pyarrow as pa

from citypipe import schemas
from citypipe.core import datadocs
from citypipe.core.checks import META, BoundCheck, Check, CheckResult, bound_checks
from citypipe.core.chunk_results import MapTotals, RunUnique

__all__ = ["Validator"]

SAMPLES = 5
"""Failing values kept per check for `CheckResult.samples`."""
CHUNK_ROWS = 100_000
"""Features validated in one GX run. Validating a chunk holds its slim frame and GX's work on
it: measured on the fountains grid (bench/validation_memory.py), 100,000 features add about
25 MB at 596,400 features (one run over all of them: 130 MB), and each chunk costs GX's fixed
time of a run (about 0.5 s on a busy 2-core machine); smaller sources take one run, as before."""


@cache
def _gx() -> SimpleNamespace:
    """Great Expectations, imported once; analytics off before the import reads the setting."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
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
        ExpectationResult=ExpectationValidationResult,
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


def _key(config: Any) -> tuple[str, str]:
    """What tells the row-level expectations apart: their check, and the column they are on."""
    return config.meta[META], config.kwargs["column"]


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
    """Validates the harmonised features of one ingest run of `source`: it checks and reports,
    it rejects nothing (harmonise rejects what it cannot guarantee, citypipe.core.harmonise).

    Features are validated a chunk of `chunk_rows` at a time and the chunks' results merged
    (citypipe.core.chunk_results), so memory holds one chunk's slim frame whatever the size of
    the source; a source of fewer features is validated in one GX run at `finish`."""

    def __init__(self, source: str, chunk_rows: int = CHUNK_ROWS) -> None:
        self.source = source
        self.started = datetime.now(UTC)
        self.chunk_rows = chunk_rows
        self._bound = bound_checks()
        self._row = [b for b in self._bound if not b.check.table]
        self._table = [b for b in self._bound if b.check.table]
        self._frames: list[pd.DataFrame] = []
        self._pending = 0
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
        # GX runs the row-level checks on each chunk; uniqueness is answered for the whole run
        self._row_suite = self._suite([b for b in self._row if not b.check.run_wide])
        self._table_suite = self._suite(self._table)
        self._unique = {
            b.spec.name: (b.column or "", RunUnique()) for b in self._row if b.check.run_wide
        }
        self._checks = {b.spec.name: b.check for b in self._row}
        # the whole suite, as the Data Docs show it
        self._context.suites.add(self._suite(self._bound))
        self._row_expectations = self._suite(self._row).expectations
        # the run so far: per row-level expectation its totals, per check its failures
        self._chunk: Any = None  # the first chunk's suite result: its batch and meta
        self._rows = 0
        self._totals: dict[tuple[str, str], MapTotals] = {}
        self._failed: dict[str, int] = {b.spec.name: 0 for b in self._row}
        self._samples: dict[str, list[str]] = {b.spec.name: [] for b in self._row}

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

    def add(self, batch: pa.RecordBatch) -> None:
        """Keep the slim frame of a batch of features; validate the frames kept once they
        reach `chunk_rows` features."""
        if batch.num_rows:
            self._frames.append(self._frame(batch))
            self._pending += batch.num_rows
            if self._pending >= self.chunk_rows:
                self._validate_chunk()

    def _validate_chunk(self) -> None:
        """Validate the frames kept as one chunk and add its results to the run's."""
        if self._frames:
            frame = pd.concat(self._frames, ignore_index=True)
        else:
            frame = self._frame(pa.RecordBatch.from_pylist([], schema=self._arrow))
        self._frames, self._pending = [], 0
        chunk = self._validate(self._rows_batches, frame, self._row_suite, "SUMMARY")
        self._chunk = self._chunk or chunk
        for r in chunk.results:
            totals = self._totals.setdefault(_key(r.expectation_config), MapTotals())
            totals.add(r.result, self._rows)
        # which rows fail, only asked of GX when a row-level check fails (a harmonise bug)
        failing = {} if chunk.success else self._failing_rows(frame)
        for name, (column, unique) in self._unique.items():
            failing[name] = {i: [column] for i in unique.add(frame[column])}
        for name, rows in failing.items():
            self._failed[name] += len(rows)
            for i in sorted(rows)[: SAMPLES - len(self._samples[name])]:
                self._samples[name].append(self._sample(self._checks[name], frame.iloc[i], rows[i]))
        self._rows += len(frame)

    @staticmethod
    def _sample(check: Check, row: pd.Series, columns: list[str]) -> str:
        """ "<id>: <why>" of a row failing `check` on `columns`."""
        fid = row["feature_id"]
        why = "; ".join(check.why(column, row) for column in columns)
        return f"{'<no feature_id>' if pd.isna(fid) else fid}: {why}"

    def _failing_rows(self, frame: pd.DataFrame) -> dict[str, dict[int, list[str]]]:
        """Check -> row of `frame` failing it -> the slim columns it fails on."""
        result = self._validate(self._rows_batches, frame, self._row_suite, "COMPLETE")
        failing: dict[str, dict[int, list[str]]] = {}
        for r in result.results:
            rows = failing.setdefault(r.expectation_config.meta[META], {})
            for i in r.result.get("unexpected_index_list") or ():
                rows.setdefault(int(i), []).append(r.expectation_config.kwargs["column"])
        return failing

    def _row_results(self) -> list[Any]:
        """The run's result of each row-level expectation, in the order of the suite."""
        g = _gx()
        out = []
        for e in self._row_expectations:
            config = e.configuration
            config.kwargs["batch_id"] = self._chunk.batch_id
            name = config.meta[META]
            if name in self._unique:
                success, result = self._unique[name][1].result()
            else:
                totals = self._totals[_key(config)]
                success, result = totals.unexpected == 0, totals.result()
            out.append(
                g.ExpectationResult(success=success, expectation_config=config, result=result)
            )
        return out

    def finish(
        self, *, records: int, features: int, rejects: int, declared_count: int | None
    ) -> list[CheckResult]:
        """One CheckResult per CheckSpec, over the whole run: the row-level checks on every
        feature of the run (uniqueness across chunks), the table-level ones on the run's
        counts."""
        if self._frames or self._chunk is None:
            self._validate_chunk()
        counts = pd.DataFrame(
            {
                "records": pd.array([features + rejects], dtype="Int64"),
                "declared_count": pd.array([declared_count], dtype="Int64"),
            }
        )
        table = self._validate(self._run_batches, counts, self._table_suite, "SUMMARY")
        self._result = self._suite_result(self._chunk, [*self._row_results(), *table.results])
        self._result.meta["citypipe"] = {
            "records": records,
            "features": features,
            "rejects": rejects,
            "declared_count": declared_count,
        }
        passed: dict[str, bool] = {b.spec.name: True for b in self._bound}
        for r in self._result.results:
            name = r.expectation_config.meta[META]
            passed[name] = passed[name] and bool(r.success)
        out = []
        for b in self._bound:
            name = b.spec.name
            if b.check.table:  # the run fails it, as a whole
                fails, samples = (0, []) if passed[name] else (1, [b.check.why("", counts.iloc[0])])
            else:
                fails, samples = self._failed[name], list(self._samples[name])
            out.append(CheckResult(name, passed[name], b.spec.description, fails, samples))
        return out

    def _suite_result(self, rows: Any, results: list[Any]) -> Any:
        """One GX validation result of the run, from the results of the row and table suites."""
        g = _gx()
        ok = sum(r.success for r in results)
        return g.SuiteResult(
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
                "run_id": g.RunIdentifier(run_name=self.source, run_time=self.started),
                "validation_time": self.started,
                "batch_kwargs": {"data_asset_name": self.source},
            },
            batch_id=rows.batch_id,
        )

    def write_docs(self, docs: Path) -> None:
        """GX Data Docs HTML for this run's validation results under `docs` (e.g. <lake>/docs/)."""
        if self._result is None:
            raise RuntimeError("Validator.write_docs needs the results of Validator.finish")
        datadocs.write(self._context, self._result, self.source, docs)
