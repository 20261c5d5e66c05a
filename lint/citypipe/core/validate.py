"""Validation of harmonised features: the GX Core suite generated from schemas/feature-v1.yaml.

Every `checks:` entry of a column and every `table_checks:` entry of the YAML becomes one
`CheckSpec`, and through the `CHECKS` table below one or more GX expectations:

    row-level checks   run per batch on a slim pandas frame of the columns they need
                       (feature_id, theme, bbox xmin/xmax/ymin/ymax, geometry validity, ...);
                       failing rows go to rejects with a reason, and the check fails without
                       blocking (`blocking=False`).
    table-level checks run once per source run on a one-row frame of the run's counts; a
                       failure fails the asset check (`blocking=True`).

`finish` validates the slim frame of the whole run once more (so uniqueness holds across
batches in the suite result too) and merges row and table results into one GX validation
result, which `write_docs` stores as GX JSON under `<docs>/results/` and renders as GX Data Docs
HTML (`<docs>/index.html`, one page per source run; the last DOCS_HISTORY runs of a source
are kept).

Great Expectations is imported on first use (it takes seconds), with analytics and progress
bars off, and runs in an ephemeral (in-memory) Data Context: nothing is written outside `docs`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from citypipe import schemas
from citypipe.core.seen_ids import SeenIds

__all__ = ["CHECKS", "CheckResult", "CheckSpec", "Validator", "check_specs"]


SAMPLES = 5
"""Failing values kept per check for `CheckResult.samples`."""
DOCS_HISTORY = 10
"""Validation results (Data Docs pages) kept per source under <docs>; older runs are pruned."""
_META = "citypipe_check"
"""Key of an expectation's `meta` that names the CheckSpec it belongs to."""


@dataclass
class CheckSpec:
    name: str
    description: str
    blocking: bool


@dataclass
class CheckResult:
    name: str
    passed: bool
    description: str = ""
    failed: int = 0
    samples: list[str] = field(default_factory=list)


# -- the check table: YAML check name -> slim columns, GX expectations, reason ---------------

Frame = Callable[[pa.RecordBatch, str], dict[str, Any]]
"""(batch, column) -> the slim columns a check needs, by name."""
Expect = Callable[[str, Any], list[tuple[str, dict[str, Any]]]]
"""(column, argument of the check) -> GX expectations as (class name, kwargs)."""
Why = Callable[[str, Mapping[str, Any]], str]
"""(slim column the expectation is on, slim row) -> why the row fails, for rejects."""


@dataclass(frozen=True)
class Check:
    """How one kind of check of the YAML is run.

    suffix       the CheckSpec is named `<column>_<suffix>` (table checks: the check's name)
    description  for the CheckSpec and the Data Docs; `{column}` and `{arg}` are filled in
    frame        the slim columns a row-level check needs from a batch; table checks run on the
                 one-row frame of the run's counts that `Validator.finish` builds instead:
                 `records` (features + rejects) and `declared_count` (null when undeclared)
    expect       the GX expectations, on slim columns
    why          the reason a row (or the run) fails, naming the value
    run_wide     the value must not repeat anywhere in the run: a row repeating a value of an
                 earlier row (this batch or an earlier one) fails, the first one stays
    table        a source-level check: it blocks, no rows are rejected
    """

    suffix: str
    description: str
    frame: Frame | None
    expect: Expect
    why: Why
    run_wide: bool = False
    table: bool = False


def _as_is(batch: pa.RecordBatch, column: str) -> dict[str, Any]:
    return {column: batch.column(column).to_pandas()}


def _bbox(*parts: str) -> Frame:
    """Struct fields of a bbox covering as float columns `<column>_<part>`, NaN where null."""

    def frame(batch: pa.RecordBatch, column: str) -> dict[str, Any]:
        box = batch.column(column)
        names = [f.name for f in box.type]
        flat = box.flatten()  # takes the struct's own nulls into account
        return {
            f"{column}_{p}": flat[names.index(p)].to_numpy(zero_copy_only=False).astype("float64")
            for p in parts
        }

    return frame


def _validity(batch: pa.RecordBatch, column: str) -> dict[str, Any]:
    """`<column>_valid`: shapely.is_valid of the WKB, True for null; `<column>_valid_reason`:
    why not (shapely.is_valid_reason), for the rejects."""
    wkb = batch.column(column).to_numpy(zero_copy_only=False)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    present = pd.notna(wkb)
    unreadable = present & shapely.is_missing(geoms)
    valid = ~present | (shapely.is_valid(geoms) & ~unreadable)
    reason = np.full(len(wkb), None, dtype=object)
    bad = np.flatnonzero(~valid)
    if len(bad):
        reason[bad] = shapely.is_valid_reason(geoms[bad])
        reason[np.flatnonzero(unreadable)] = "unreadable WKB"
    return {f"{column}_valid": valid.astype(bool), f"{column}_valid_reason": reason}


def _e(expectation: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """A GX expectation by class name (great_expectations.expectations) and its kwargs."""
    return expectation, kwargs


def _between(column: str, lo: float, hi: float) -> tuple[str, dict[str, Any]]:
    return _e("ExpectColumnValuesToBeBetween", column=column, min_value=lo, max_value=hi)


VOCABULARIES: dict[str, Callable[[], Mapping[str, Any]]] = {"themes.yaml": schemas.themes}
"""`in_vocabulary: FILE` -> the vocabulary (its keys are the allowed values)."""


def _vocabulary(file: str) -> list[str]:
    if file not in VOCABULARIES:
        raise ValueError(f"no vocabulary {file!r}; known: {', '.join(VOCABULARIES)}")
    return sorted(VOCABULARIES[file]())


# One entry per check of the YAML. `{column}` in a description is the column the check is on.
CHECKS: dict[str, Check] = {
    "not_null": Check(
        "not_null", "{column} is never null", _as_is,
        lambda c, a: [_e("ExpectColumnValuesToNotBeNull", column=c)],
        lambda f, row: f"{f} is null"),
    "unique": Check(
        "unique", "{column} is unique across the whole source run", _as_is,
        lambda c, a: [_e("ExpectColumnValuesToBeUnique", column=c)],
        lambda f, row: f"{f} {row[f]!r} is not unique: an earlier row of this run has it",
        run_wide=True),
    "in_vocabulary": Check(
        "in_vocabulary", "{column} is in the vocabulary (schemas/{arg})", _as_is,
        lambda c, a: [_e("ExpectColumnValuesToBeInSet", column=c, value_set=_vocabulary(a))],
        lambda f, row: f"{f} {row[f]!r} is not in the vocabulary"),
    "lon_range": Check(
        "lon_range", "{column} longitudes (xmin, xmax) are within [-180, 180]",
        _bbox("xmin", "xmax"),
        lambda c, a: [_between(f"{c}_xmin", -180, 180), _between(f"{c}_xmax", -180, 180)],
        lambda f, row: f"{f} {float(row[f])} is not a longitude within [-180, 180]"),
    "lat_range": Check(
        "lat_range", "{column} latitudes (ymin, ymax) are within [-90, 90]",
        _bbox("ymin", "ymax"),
        lambda c, a: [_between(f"{c}_ymin", -90, 90), _between(f"{c}_ymax", -90, 90)],
        lambda f, row: f"{f} {float(row[f])} is not a latitude within [-90, 90]"),
    "valid_geometry": Check(
        "valid", "{column} is a valid geometry (shapely.is_valid; null counts as valid)",
        _validity,
        lambda c, a: [_e("ExpectColumnValuesToBeInSet", column=f"{c}_valid", value_set=[True])],
        lambda f, row: f"{f.removesuffix('_valid')} is not valid: {row[f + '_reason']}"),
    "matches_declared_count": Check(
        "", "features + rejects equal the count the source declares (numberMatched / "
        "totalFeatures), where it declares one", None,
        lambda c, a: [_e("ExpectColumnPairValuesToBeEqual", column_A="records",
                         column_B="declared_count", ignore_row_if="either_value_is_missing")],
        lambda f, row: f"{row['records']} features + rejects, the source declares "
                       f"{row['declared_count']}",
        table=True),
}  # fmt: skip


# -- specs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
    """A CheckSpec with what it is made of: the YAML check on its column."""

    spec: CheckSpec
    check: Check
    column: str | None
    arg: Any

    def expectations(self) -> list[tuple[str, dict[str, Any]]]:
        return self.check.expect(self.column or "", self.arg)


def _parse(entry: Any) -> tuple[str, Any]:
    if isinstance(entry, str):
        return entry, True
    if isinstance(entry, Mapping) and len(entry) == 1:
        ((name, arg),) = entry.items()
        return name, arg
    raise ValueError(f"cannot read check {entry!r} in schemas/feature-v1.yaml")


def _lookup(name: str, where: str) -> Check:
    if name not in CHECKS:
        raise ValueError(
            f"check {name!r} of {where} in schemas/feature-v1.yaml has no entry in "
            "citypipe.core.validate.CHECKS"
        )
    return CHECKS[name]


@cache
def _bound() -> tuple[_Bound, ...]:
    schema = schemas.feature_schema()
    out: list[_Bound] = []
    for col in schema.columns:
        for entry in col.checks:
            name, arg = _parse(entry)
            check = _lookup(name, f"column {col.name}")
            if check.table:
                raise ValueError(f"{name} is a table check; list it under table_checks")
            desc = check.description.format(column=col.name, arg=arg)
            spec = CheckSpec(f"{col.name}_{check.suffix}", desc, blocking=check.table)
            out.append(_Bound(spec, check, col.name, arg))
    for entry in schema.table_checks:
        name, arg = _parse(entry)
        check = _lookup(name, "table_checks")
        if not check.table:
            raise ValueError(f"{name} is a column check; list it under a column's checks")
        spec = CheckSpec(name, check.description.format(column="", arg=arg), blocking=True)
        out.append(_Bound(spec, check, None, arg))
    return tuple(out)


def check_specs() -> list[CheckSpec]:
    """One spec per (column, check) and per table check of schemas/feature-v1.yaml, in order."""
    return [CheckSpec(b.spec.name, b.spec.description, b.spec.blocking) for b in _bound()]


# -- GX --------------------------------------------------------------------------------------


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
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return SimpleNamespace(
        gx=gx,
        expectations=gxe,
        SuiteResult=ExpectationSuiteValidationResult,
        RunIdentifier=RunIdentifier,
        DataContextConfig=DataContextConfig,
        InMemoryStoreBackendDefaults=InMemoryStoreBackendDefaults,
        ProgressBarsConfig=ProgressBarsConfig,
        SuiteIdentifier=ExpectationSuiteIdentifier,
        ResultIdentifier=ValidationResultIdentifier,
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


@contextlib.contextmanager
def _locked(docs: Path) -> Iterator[None]:
    """An exclusive lock on <docs>, so concurrent runs do not rebuild the index over each other."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(docs / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- the validator ---------------------------------------------------------------------------


class Validator:
    """Validates the harmonised batches of one ingest run of `source`."""

    SITE = "citypipe"
    RESULTS_STORE = "citypipe_docs_results"

    def __init__(self, source: str) -> None:
        self.source = source
        self.started = datetime.now(UTC)
        self._bound = _bound()
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

    def _suite(self, bound: list[_Bound] | tuple[_Bound, ...]) -> Any:
        g = _gx()
        expectations = [
            getattr(g.expectations, cls)(
                **kwargs, meta={_META: b.spec.name}, notes=b.spec.description
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
                    f"{r.expectation_config.meta.get(_META)}: {error}"
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
            rows = failing[r.expectation_config.meta[_META]]
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
            name = r.expectation_config.meta[_META]
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
        g = _gx()
        docs = Path(docs).resolve()
        docs.mkdir(parents=True, exist_ok=True)
        ctx = self._context
        ctx.add_store(
            self.RESULTS_STORE,
            {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs / "results"),
                },
            },
        )
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {
                "validations": {
                    "source_store_name": self.RESULTS_STORE,
                    # GX's default filter hides runs named like "profiling"; show every source
                    "run_name_filter": {"matches_regex": "^"},
                },
                "profiling": "None",
            },
        }
        if self.SITE in ctx.list_data_docs_sites():
            ctx.update_data_docs_site(self.SITE, site)
        else:
            ctx.add_data_docs_site(self.SITE, site)
        store = ctx.stores[self.RESULTS_STORE]
        suite_key = g.SuiteIdentifier(name=self.suite_name)
        key = g.ResultIdentifier(
            expectation_suite_identifier=suite_key,
            run_id=self._result.meta["run_id"],
            batch_identifier=self._result.batch_id or self.source,
        )
        with _locked(docs):
            store.set(key, self._result)
            runs = sorted(
                (k for k in store.list_keys() if k.run_id.run_name == self.source),
                key=lambda k: k.run_id.run_time,
            )
            for old in runs[:-DOCS_HISTORY]:
                store.remove_key(old)  # its page goes with it when the index is rebuilt
            ctx.build_data_docs(site_names=[self.SITE], resource_identifiers=[key, suite_key])
