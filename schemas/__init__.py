"""Shared schema v1, loaded from the YAML files beside this module.

Everything typed about a feature (the Arrow schema of the lake, the checks, the docs table)
is derived here from `feature-v1.yaml`, so the schema is written down exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

__all__ = [
    "Column", "FeatureSchema", "SchemaMismatch", "Table", "class_theme", "class_themes",
    "feature_schema", "feature_schema_bytes", "mappings", "themes",
]  # fmt: skip

HERE = Path(__file__).parent

BBOX_TYPE = pa.struct(
    [pa.field(k, pa.float32(), nullable=False) for k in ("xmin", "ymin", "xmax", "ymax")]
)
"""The covering in single precision, rounded outwards (as Overture's files): half the bytes of
doubles, and a box still holds its geometry; the geometry keeps full precision."""
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "wkb": pa.binary(),
    "bbox": BBOX_TYPE,
}


class SchemaMismatch(Exception):
    """The code fills other columns than the schema file names: a column renamed, added or
    removed on one side only. Raised before a row is written, never a column of nulls."""


def _load(name: str) -> Any:
    with open(HERE / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    checks: tuple[Any, ...] = ()
    crs: str | None = None
    dimensions: int | None = None
    covers: str | None = None
    dictionary: bool = False
    statistics: bool = True
    compression_level: int | None = None
    large_file_level: int | None = None
    small_file_codec: str | None = None

    @property
    def arrow(self) -> pa.Field:
        return pa.field(self.name, ARROW_TYPES[self.type], nullable=self.nullable)

    def check(self, name: str) -> Any:
        """The argument of check `name` on this column: True for a bare check, None if absent."""
        for c in self.checks:
            if c == name:
                return True
            if isinstance(c, dict) and name in c:
                return c[name]
        return None


def _leaves(c: Column) -> list[str]:
    """The Parquet column paths of `c`: the bbox covering's four, else its name."""
    return [f"{c.name}.{k}" for k in BBOX_TYPE.names] if c.type == "bbox" else [c.name]


def _columns(raw: list[dict[str, Any]]) -> tuple[Column, ...]:
    return tuple(Column(**{**c, "checks": tuple(c.get("checks", ()))}) for c in raw)


@dataclass(frozen=True)
class Table:
    """One table of the lake: its columns, and what Arrow and Parquet make of them."""

    name: str
    columns: tuple[Column, ...]

    @cached_property
    def arrow(self) -> pa.Schema:
        return pa.schema([c.arrow for c in self.columns])

    @cached_property
    def names(self) -> frozenset[str]:
        """The columns' names: what `conform` compares with, made once a process."""
        return frozenset(c.name for c in self.columns)

    @cached_property
    def geometry_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.type == "wkb")

    @cached_property
    def parquet_options(self) -> dict[str, Any]:
        """ParquetWriter options: dictionaries where values repeat, min/max where they help
        readers skip row groups (ids, times, the bbox covering), not on WKB or long JSON;
        floating-point columns byte-stream-split (their bytes regrouped by significance before
        zstd: neighbouring rows share the leading bytes once the rows are spatially ordered);
        a column's own zstd level where the schema gives one."""
        stats: list[str] = []
        for c in self.columns:
            if c.statistics and c.type != "wkb":
                stats += _leaves(c)
        return {
            "use_dictionary": [c.name for c in self.columns if c.dictionary],
            "write_statistics": stats,
            "use_byte_stream_split": [
                leaf for c in self.columns if c.type in ("bbox", "float64") for leaf in _leaves(c)
            ],
        }

    @cached_property
    def codecs(self) -> dict[str, str]:
        """Each Parquet column's codec: none for the dictionary-encoded columns, whose pages
        hold a few distinct values and runs of their indices (zstd made them no smaller and
        cost 10-15 us a column chunk: 0.1-0.2 ms of a small source's 0.6-1.3 ms of encoding),
        zstd for the others."""
        return {
            leaf: "none" if c.dictionary else "zstd" for c in self.columns for leaf in _leaves(c)
        }

    @cached_property
    def small_file_codecs(self) -> dict[str, str]:
        """`codecs` in a file under the large files' size: a zstd column's `small_file_codec`
        where the schema file gives one."""
        return {
            leaf: (self.codecs[leaf] == "zstd" and c.small_file_codec) or self.codecs[leaf]
            for c in self.columns
            for leaf in _leaves(c)
        }

    def compression_levels(self, default: int, large: bool) -> dict[str, int]:
        """The zstd level of every compressed Parquet column (`codecs`): in a file of `large`
        row groups the schema's `large_file_level` where the column has one (a higher level
        costs CPU that pays only there), else its `compression_level`, else `default`."""
        return {
            leaf: (large and c.large_file_level) or c.compression_level or default
            for c in self.columns
            for leaf in _leaves(c)
            if self.codecs[leaf] == "zstd"
        }

    def conform(self, names: Iterable[str]) -> None:
        """Raise `SchemaMismatch` unless `names` are exactly this table's columns."""
        given, wanted = set(names), self.names
        if given != wanted:
            raise SchemaMismatch(
                f"the {self.name} table: {sorted(given - wanted)} filled but not in the schema "
                f"file, {sorted(wanted - given)} in the schema file but not filled"
            )

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def markdown(self) -> str:
        """The docs table of the README."""
        rows = ["| column | type | null | description |", "|---|---|---|---|"]
        for c in self.columns:
            rows.append(
                f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.description} |"
            )
        return "\n".join(rows)


@dataclass(frozen=True)
class FeatureSchema(Table):
    """The features table, with the version, the source-level checks and the other tables."""

    version: int = 1
    table_checks: tuple[str, ...] = ()
    others: dict[str, Table] = field(default_factory=dict)

    def table(self, kind: str) -> Table:
        """A lake table by its name: features, rejects, sources, attempts, history, surfaces,
        observations."""
        return self if kind == self.name else self.others[kind]


@cache
def feature_schema_bytes() -> bytes:
    """The shared schema file as read, once per process: what `feature_schema` is loaded from
    and what an input's fingerprint hashes (the schema a process writes with)."""
    return (HERE / "feature-v1.yaml").read_bytes()


@cache
def feature_schema() -> FeatureSchema:
    raw = yaml.safe_load(feature_schema_bytes())
    return FeatureSchema(
        name="features",
        columns=_columns(raw["columns"]),
        version=raw["version"],
        table_checks=tuple(raw.get("table_checks", ())),
        others={
            k: Table(k, _columns(raw[k]))
            for k in ("rejects", "sources", "attempts", "history", "surfaces", "observations")
        },
    )


@cache
def themes() -> dict[str, str]:
    """Theme name -> what it holds."""
    return dict(_load("themes.yaml")["themes"])


@cache
def class_themes() -> dict[str, str]:
    """Lower-cased source class name -> theme."""
    return {k.lower(): v for k, v in _load("themes.yaml")["classes"].items()}


def class_theme(name: str | None) -> str:
    """The theme a source class name implies, `other` if none: the name is looked up without
    its namespace (`bldg:Building`, `{http://...}Building` and a WFS's `app:building` are the
    CityGML class Building) and case folded. CityJSON `+Extension` types keep their `+`."""
    local = (name or "").rpartition("}")[2].rpartition(":")[2]
    return class_themes().get(local.lower(), "other")


@cache
def mappings() -> dict[str, tuple[str, ...]]:
    """Schema column -> source attribute names that fill it, in order of preference."""
    return {k: tuple(v) for k, v in _load("mappings.yaml").items()}
