"""The catalog: which sources exist and how to read them, as validated configuration.

A city adds a source by adding an entry to data/catalog.yaml (or the file `CITYPIPE_CATALOG`
names); a mistake in an entry is reported with the entry and the field before anything runs,
and that entry alone is left out (`Catalog.refused`): the others still run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from citypipe import schemas
from citypipe.connectors.base import Query
from citypipe.connectors.registry import is_url
from citypipe.core import partitions
from citypipe.core.lake import check_source_name
from citypipe.core.violation_share import DEFAULT_MAX_SHARE
from citypipe.geo import crs
from citypipe.geo.errors import ConfigurationError

__all__ = [
    "SERVICE_KEYS",
    "Catalog",
    "Source",
    "TimePartitions",
    "default_catalog",
    "load_catalog",
    "query_of",
]


def default_catalog() -> Path:
    """`CITYPIPE_CATALOG` when set, else the repository's data/catalog.yaml."""
    env = os.environ.get("CITYPIPE_CATALOG")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TimePartitions(BaseModel):
    """`partitions:` of a service entry: a time window per partition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily: date = Field(
        description="The first day (`2026-11-01`, UTC) of a partition per day, up to yesterday."
    )


class Source(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: Path | None = Field(
        None,
        description="File to read; relative paths are relative to the catalog file. A glob "
        "(`tiles/*.gml`) reads each file it matches as a partition of the source.",
    )
    tiles: tuple[Path, ...] | None = Field(
        None,
        description="Instead of path: the files (or globs) of a tiled source, each a partition.",
    )
    url: str | None = Field(None, description="A service's URL to harvest, instead of a path.")
    partitions: TimePartitions | None = Field(
        None,
        description="A service of observations: `{daily: 2026-11-01}`, a partition per UTC day "
        "from that one, each harvesting its day alone (`datetime`).",
    )
    layer: str | None = Field(None, description="A service's collection or feature type.")
    bbox: tuple[float, float, float, float] | None = Field(
        None, description="A service: only features in this OGC:CRS84 box."
    )
    filter: str | None = Field(None, description="A service: a CQL2 text filter on properties.")
    datetime: str | None = Field(None, description="A service: an RFC 3339 instant or interval.")
    page_size: PositiveInt | None = Field(None, description="A service: features per request.")
    incremental: bool = Field(
        False,
        description="A service: harvest only what changed since the last landed harvest, merged "
        "with its features (`citypipe run --force`: a full harvest).",
    )
    format: str | None = Field(None, description="Connector name; detected from content if unset.")
    theme: str | None = Field(
        None, description="Theme of every feature; else from the feature class."
    )
    crs: str | None = Field(
        None,
        description="A file: the CRS of coordinates that declare none (or declare it wrongly); "
        "a service: the CRS to ask for.",
    )
    axis_order: Literal["xy", "authority"] | None = Field(
        None,
        description="Axis order of the coordinates, where the format's rule is wrong for this "
        "source.",
    )
    licence: str | None = None
    description: str | None = None
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Schema column -> source attribute (name, observed_at, height_m).",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Connector options.")
    schedule: str | None = Field(
        None, description="Cron schedule for the Dagster job of this source."
    )
    freshness: timedelta | None = Field(
        None,
        description="How old the source's data may grow before its freshness check fails: a "
        "number and a unit, s, m, h, d or w (`6h`, `1d`).",
    )
    max_violation_share: float = Field(
        DEFAULT_MAX_SHARE,
        ge=0,
        le=1,
        description="The share of features that may violate their Smart Data Model (NGSI) "
        "before the schema_violation_share check fails.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_source_name(v)

    @field_validator("freshness", mode="before")
    @classmethod
    def _freshness(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        found = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", v)
        if found is None:
            raise ValueError(f"{v!r}: expected a number and a unit, s, m, h, d or w (`1d`)")
        return timedelta(seconds=int(found[1]) * _SECONDS[found[2]])

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not is_url(v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @model_validator(mode="after")
    def _path_or_url(self) -> Self:
        if sum(x is not None for x in (self.path, self.url, self.tiles)) != 1:
            raise ValueError("give one of path: (a file), tiles: (files) and url: (a service)")
        query = [k for k in SERVICE_KEYS if getattr(self, k) is not None]
        query += ["incremental"] if self.incremental else []
        query += ["partitions"] if self.partitions else []
        if self.url is None and query:
            raise ValueError(f"{', '.join(query)} apply to a url: source, not a file")
        clash = [k for k in ("datetime", "incremental", "schedule") if getattr(self, k)]
        if self.partitions and clash:
            raise ValueError(
                f"partitions: daily sets each day's window and a schedule of yesterday's (00:00 "
                f"UTC); drop {clash[0]}:"
            )
        if self.tiles == ():
            raise ValueError("tiles: lists no file")
        return self

    @property
    def partitioned(self) -> bool:
        """Whether the source has partitions: each file (tiles:, a glob path:) or each day
        (partitions: daily) a partition of its own."""
        return self.partitions is not None or self.tiled

    @property
    def tiled(self) -> bool:
        return self.tiles is not None or (self.path is not None and partitions.is_glob(self.path))

    def partition_keys(self) -> list[str]:
        """A partitioned source's keys, as the files (or the days) are now."""
        if self.partitions is not None:
            return partitions.days(self.partitions.daily)
        return list(self.tile_files())

    def tile_files(self) -> dict[str, Path]:
        """A tiled source's partition key -> file, as the files are now."""
        if not self.tiled:
            raise ConfigurationError(f"source {self.name!r} has no tiles")
        return partitions.tile_files(list(self.tiles or [self.path]))  # type: ignore[list-item]

    @property
    def location(self) -> Path | str:
        """What is read: the file or the URL (a partitioned source: the glob or first tile)."""
        location = self.url if self.url is not None else self.path
        if location is None and self.tiles:
            location = self.tiles[0]
        assert location is not None  # _path_or_url
        return location

    def ingest_options(self, day: str | None = None) -> dict[str, Any]:
        """The connector options: the entry's, and a url: source's query (of `day` alone, a
        partition of a source partitioned by day)."""
        query = self.query(day)
        return {**self.options, "query": query} if query else dict(self.options)

    def ingest_arguments(
        self, location: Path | None = None, day: str | None = None
    ) -> dict[str, Any]:
        """`citypipe.core.ingest.ingest`'s keyword arguments for this entry (a service's CRS is
        asked of it), the same for the Dagster asset and the benchmark's plain ingest; `location`:
        the tile read, of a tiled source; `day`: the partition harvested, of a daily one."""
        return {
            "format": self.format,
            "crs": None if self.url is not None else self.crs,
            "axis_order": self.axis_order,
            "theme": self.theme,
            "fields": self.fields,
            "licence": self.licence,
            "options": self.ingest_options(day),
            "origin": str(location or self.location),
        }

    def query(self, day: str | None = None) -> Query | None:
        """What a url: source asks its service for (None for a file), of `day` alone where given
        (its partition's window, `partitions.day_window`)."""
        if self.url is None:
            return None
        query = query_of(self)
        return query if day is None else replace(query, datetime=partitions.day_window(day))

    @field_validator("theme")
    @classmethod
    def _theme(cls, v: str | None) -> str | None:
        if v is not None and v not in schemas.themes():
            raise ValueError(f"unknown theme {v!r}; themes: {', '.join(schemas.themes())}")
        return v

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                crs.resolve(v)
            except ConfigurationError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - set(schemas.mappings())
        if unknown:
            raise ValueError(
                f"fields can map {', '.join(schemas.mappings())}; not {', '.join(sorted(unknown))}"
            )
        return v


SERVICE_KEYS = ("layer", "bbox", "filter", "datetime", "page_size")
"""The keys of a url: entry that a path: entry refuses (crs has a meaning for both)."""


def query_of(values: Any) -> Query:
    """The service Query of an object with its fields as attributes (a catalog entry, the
    command line's arguments); what it lacks is None (`since`, the pipeline's to set)."""
    return Query(**{f.name: getattr(values, f.name, None) for f in fields(Query)})


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[Source, ...]
    refused: tuple[tuple[str, str], ...] = ()
    """Entries with a mistake, as (name, what is wrong in one line): left out, so that one
    entry's typo does not stop a city's other sources; each run reports them as failed."""

    @property
    def names(self) -> list[str]:
        """Every entry's name, refused ones too."""
        return [s.name for s in self.sources] + [name for name, _ in self.refused]

    def get(self, name: str) -> Source:
        """The source `name`; its mistake, where the catalog refused it."""
        for s in self.sources:
            if s.name == name:
                return s
        for refused, why in self.refused:
            if refused == name:
                raise ConfigurationError(why)
        raise ConfigurationError(
            f"no source {name!r} in the catalog; sources: {', '.join(self.names)}"
        )

    def refuse(self, mistakes: Mapping[str, str]) -> Catalog:
        """This catalog with the entries named in `mistakes` (name -> why) refused."""
        if not mistakes:
            return self
        return Catalog(
            sources=tuple(s for s in self.sources if s.name not in mistakes),
            refused=(*self.refused, *mistakes.items()),
        )


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's message in one line, the place as line and column: its text spans several
    (the context, the line quoted with a caret under the place), and a refusal is one line."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return " ".join(str(error).split())
    what = "; ".join(filter(None, [getattr(error, "context", None), error.problem]))  # type: ignore[attr-defined]
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}"


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at `path` (default: `default_catalog()`), with paths made absolute."""
    path = Path(path or default_catalog())
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot read the catalog: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigurationError(f"{path}: not UTF-8 text: byte {e.start} ({e.reason})") from e
    except yaml.YAMLError as e:
        raise ConfigurationError(f"{path}: not valid YAML: {_yaml_problem(e)}") from e
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise ConfigurationError(f"{path}: expected a mapping `sources:` of name -> entry")
    sources = []
    refused: list[tuple[str, str]] = []
    for name, entry in entries.items():
        if not isinstance(entry, dict | None):
            what = f"expected a mapping of settings (path:, theme: ...), not {entry!r}"
            refused.append((str(name), f"{path}: source {name!r}: {what}"))
            continue
        try:
            src = Source(name=name, **(entry or {}))
        except ValidationError as e:
            refused.append((str(name), f"{path}: source {name!r}: {_one_line(e)}"))
            continue
        except TypeError as e:
            refused.append((str(name), f"{path}: source {name!r}: {e}"))
            continue
        if src.path is not None and not src.path.is_absolute():
            src = src.model_copy(update={"path": (path.parent / src.path).resolve()})
        if src.tiles is not None:
            tiles = tuple(t if t.is_absolute() else (path.parent / t).resolve() for t in src.tiles)
            src = src.model_copy(update={"tiles": tiles})
        sources.append(src)
    return Catalog(sources=tuple(sources), refused=tuple(refused))


def _one_line(e: ValidationError) -> str:
    """Pydantic's findings as one line: each field and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(map(str, err['loc']))}: {err.get('ctx', {}).get('error') or err['msg']}"
        for err in e.errors()
    )
