"""The checks of schemas/feature-v1.yaml: what each check name means as GX expectations.

Every `checks:` entry of a column and every `table_checks:` entry of the YAML becomes one
`CheckSpec` (an asset check in Dagster), and through the `CHECKS` table below one or more GX
expectations on a slim frame of the columns they need (feature_id, theme, bbox xmin/xmax/ymin/
ymax, geometry validity, ...). Row-level checks report the rows failing them without blocking;
table-level checks run once per source run on a one-row frame of the run's counts, and block.
Kept apart from GX itself (citypipe.core.validate) so the specs are read without importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from citypipe import schemas
from citypipe.geo import validity

__all__ = [
    "CHECKS",
    "META",
    "BoundCheck",
    "Check",
    "CheckResult",
    "CheckSpec",
    "bound_checks",
    "check_specs",
]

META = "citypipe_check"
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
"""(slim column the expectation is on, slim row) -> why the row fails, for the samples."""


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
                 earlier row of the run fails, the first row with it passes
    table        a source-level check: it blocks
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
    """`<column>_valid`: shapely.is_valid of the WKB (`validity.is_valid`: GEOS asked only of
    what a compiled pass cannot vouch for), True for null; `<column>_valid_reason`: why not
    (shapely.is_valid_reason), for the samples."""
    wkb = batch.column(column).to_numpy(zero_copy_only=False)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    present = pd.notna(wkb)
    unreadable = present & shapely.is_missing(geoms)
    valid = ~present | (validity.is_valid(geoms) & ~unreadable)
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
class BoundCheck:
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
            "citypipe.core.checks.CHECKS"
        )
    return CHECKS[name]


@cache
def bound_checks() -> tuple[BoundCheck, ...]:
    schema = schemas.feature_schema()
    out: list[BoundCheck] = []
    for col in schema.columns:
        for entry in col.checks:
            name, arg = _parse(entry)
            check = _lookup(name, f"column {col.name}")
            if check.table:
                raise ValueError(f"{name} is a table check; list it under table_checks")
            desc = check.description.format(column=col.name, arg=arg)
            spec = CheckSpec(f"{col.name}_{check.suffix}", desc, blocking=check.table)
            out.append(BoundCheck(spec, check, col.name, arg))
    for entry in schema.table_checks:
        name, arg = _parse(entry)
        check = _lookup(name, "table_checks")
        if not check.table:
            raise ValueError(f"{name} is a column check; list it under a column's checks")
        spec = CheckSpec(name, check.description.format(column="", arg=arg), blocking=True)
        out.append(BoundCheck(spec, check, None, arg))
    return tuple(out)


def check_specs() -> list[CheckSpec]:
    """One spec per (column, check) and per table check of schemas/feature-v1.yaml, in order."""
    return [CheckSpec(b.spec.name, b.spec.description, b.spec.blocking) for b in bound_checks()]
