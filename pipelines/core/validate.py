"""Validation of harmonised features: the checks of schemas/feature-v1.yaml (citypipe.core.checks)
as a GX Core suite, over the features of one ingest run.

The suite checks what harmonise guarantees (ids unique and present, themes from the vocabulary,
lon/lat in range, valid geometries: records failing them are rejected there, and only there)
and reports it: each batch's features are kept as a slim pandas frame of the columns the checks
need until they make a chunk of `chunk_rows`, whose expectations are evaluated
(citypipe.core.expectations: vectorised, as GX's execution evaluates them, at a fraction of its
fixed cost; row-level checks: a failure is reported, with the rows failing it, and does not
block); `finish` evaluates the last chunk and the run's counts (table-level checks, which
block). The chunks' results and the counts' become one GX validation result of the run
(citypipe.core.chunk_results), the one a single GX run over every feature gives, which
`write_docs` keeps for the GX Data Docs (citypipe.core.datadocs).

Great Expectations is imported on first use (citypipe.core.gxenv), at `finish`: the result and
the suite are GX objects; the suite is built once per process.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from citypipe import schemas
from citypipe.core import datadocs, gxenv
from citypipe.core.checks import META, Check, CheckResult, bound_checks
from citypipe.core.chunk_results import MapTotals, RunUnique
from citypipe.core.expectations import evaluate

__all__ = ["Validator", "prepare"]

SAMPLES = 5
"""Failing values kept per check for `CheckResult.samples`."""
CHUNK_ROWS = 100_000
"""Features validated at once. A chunk holds its slim frame: measured on the fountains grid
(bench/validation_memory.py), 100,000 features add about 25 MB at 596,400 features (one chunk
of all of them: 130 MB); smaller sources are one chunk."""
DATASOURCE = "citypipe"
"""The GX datasource named in the results' batch ids and batch definitions."""

Key = tuple[str, str]
"""A row-level expectation: its check, and the column it is on."""


def _suite_name() -> str:
    schema = schemas.feature_schema()
    return f"{schema.name}-v{schema.version}"


def prepare() -> None:
    """Great Expectations imported and the suite built, once a process (3-4 s the first time,
    most of it GX's import): an ingest leaves this time out of its seconds, so that a source's
    seconds are its own, not those of whichever source of a run happened to validate first."""
    _gx_expectations()


@cache
def _gx_expectations() -> tuple[Any, ...]:
    """The suite's GX expectations, in the order of the checks, built once per process; the
    whole suite is added to the process's Data Context, as the Data Docs show it."""
    g = gxenv.gx()
    expectations = tuple(
        getattr(g.expectations, cls)(**kwargs, meta={META: b.spec.name}, notes=b.spec.description)
        for b in bound_checks()
        for cls, kwargs in b.expectations()
    )
    suite = g.gx.ExpectationSuite(name=_suite_name(), expectations=list(expectations))
    gxenv.context().suites.add(suite)
    return expectations


def _batch_markers(frame: pd.DataFrame) -> dict[str, str]:
    """GX's markers of a pandas batch: when it was loaded, and a fingerprint (an MD5, as GX's)
    of the rows checked, taken over their feature ids, which name them: GX's hash of every
    column of the frame through pandas cost a tenth of a small source's validation."""
    ids = "\0".join(map(str, frame["feature_id"].tolist())).encode()
    return {
        "ge_load_time": datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ"),
        "pandas_data_fingerprint": hashlib.md5(ids, usedforsecurity=False).hexdigest(),
    }


class Validator:
    """Validates the harmonised features of one ingest run of `source`: it checks and reports,
    it rejects nothing (harmonise rejects what it cannot guarantee, citypipe.core.harmonise).

    Features are validated a chunk of `chunk_rows` at a time and the chunks' results merged
    (citypipe.core.chunk_results), so memory holds one chunk's slim frame whatever the size of
    the source; a source of fewer features is validated in one chunk at `finish`."""

    def __init__(self, source: str, chunk_rows: int = CHUNK_ROWS) -> None:
        self.source = source
        self.started = datetime.now(UTC)
        self.chunk_rows = chunk_rows
        self.suite_name = _suite_name()
        self._arrow = schemas.feature_schema().arrow
        self._bound = bound_checks()
        self._row = [b for b in self._bound if not b.check.table]
        self._table = [b for b in self._bound if b.check.table]
        # evaluated per chunk; uniqueness is answered for the whole run
        self._mapped = [
            (b, cls, kwargs)
            for b in self._row
            if not b.check.run_wide
            for cls, kwargs in b.expectations()
        ]
        self._unique = {
            b.spec.name: (b.column or "", RunUnique()) for b in self._row if b.check.run_wide
        }
        self._checks = {b.spec.name: b.check for b in self._row}
        self._frames: list[pd.DataFrame] = []
        self._pending = 0
        self._result: Any = None
        # the run so far: per row-level expectation its totals, per check its failures
        self._markers: dict[str, str] | None = None  # the first chunk's GX batch markers
        self._rows = 0
        self._totals: dict[Key, MapTotals] = {}
        self._failed: dict[str, int] = {b.spec.name: 0 for b in self._row}
        self._samples: dict[str, list[str]] = {b.spec.name: [] for b in self._row}

    def _frame(self, batch: pa.RecordBatch) -> pd.DataFrame:
        """The slim frame the checks look at: only the columns the row-level checks need."""
        columns: dict[str, Any] = {"feature_id": batch.column("feature_id").to_pandas()}
        for b in self._row:
            assert b.check.frame is not None, b.spec.name
            for name, values in b.check.frame(batch, b.column or "").items():
                columns.setdefault(name, values)
        return pd.DataFrame(columns)

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
        self._markers = self._markers or _batch_markers(frame)
        # check -> row of `frame` failing it -> the slim columns it fails on
        failing: dict[str, dict[int, list[str]]] = {}
        for b, cls, kwargs in self._mapped:
            outcome = evaluate(cls, kwargs, frame)
            column = kwargs["column"]
            self._totals.setdefault((b.spec.name, column), MapTotals()).add(
                outcome.summary(), self._rows
            )
            rows = failing.setdefault(b.spec.name, {})
            for i in outcome.unexpected.tolist():
                rows.setdefault(i, []).append(column)
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

    def _results(self, counts: pd.DataFrame) -> list[Any]:
        """The run's GX result of each expectation, in the order of the suite: the row-level
        ones from the chunks' totals, the table-level ones on the run's `counts`."""
        g = gxenv.gx()
        batch_id = f"{DATASOURCE}-{self.source}"
        out = []
        for e in _gx_expectations():
            config = e.configuration
            name = config.meta[META]
            if name in self._unique:
                success, result = self._unique[name][1].result()
            elif "column" in config.kwargs:
                totals = self._totals[(name, config.kwargs["column"])]
                success, result = totals.unexpected == 0, totals.result()
            else:  # a table-level expectation, on the one-row frame of the run's counts
                b = next(b for b in self._table if b.spec.name == name)
                [(cls, kwargs)] = b.expectations()
                totals = MapTotals()
                totals.add(evaluate(cls, kwargs, counts).summary(), 0)
                success, result = totals.unexpected == 0, totals.result()
                batch_id = f"{DATASOURCE}-{self.source}.run"
            config.kwargs["batch_id"] = batch_id
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
        if self._frames or self._markers is None:
            self._validate_chunk()
        counts = pd.DataFrame(
            {
                "records": pd.array([features + rejects], dtype="Int64"),
                "declared_count": pd.array([declared_count], dtype="Int64"),
            }
        )
        self._result = self._suite_result(self._results(counts))
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

    def _suite_result(self, results: list[Any]) -> Any:
        """One GX validation result of the run, with the meta GX gives a pandas batch."""
        g = gxenv.gx()
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
                "great_expectations_version": g.gx.__version__,
                "batch_spec": {"batch_data": "PandasDataFrame"},
                "batch_markers": dict(self._markers or {}),
                "active_batch_definition": {
                    "datasource_name": DATASOURCE,
                    "data_connector_name": "fluent",
                    "data_asset_name": self.source,
                    "batch_identifiers": {"dataframe": "<DATAFRAME>"},
                },
                "run_id": g.RunIdentifier(run_name=self.source, run_time=self.started),
                "validation_time": self.started,
                "batch_kwargs": {"data_asset_name": self.source},
            },
            batch_id=f"{DATASOURCE}-{self.source}",
        )

    def write_docs(self, docs: Path, *, render: bool = True) -> None:
        """Keep this run's validation result in the GX Data Docs under `docs` (e.g.
        <lake>/docs/); `render` off leaves its HTML page to `datadocs.render` (once at the end
        of a run of many sources)."""
        if self._result is None:
            raise RuntimeError("Validator.write_docs needs the results of Validator.finish")
        _gx_expectations()  # the suite is in the context, for its page
        datadocs.store(self._result, self.source, docs)
        if render:
            datadocs.render(docs)
