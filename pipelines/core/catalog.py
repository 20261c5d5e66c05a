"""The catalog: which sources exist and how to read them, as validated configuration.

A city adds a source by adding an entry to data/catalog.yaml (or the file `CITYPIPE_CATALOG`
names); a mistake in it is reported with the entry and the field, before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from citypipe import schemas
from citypipe.core.lake import check_source_name
from citypipe.geo import crs
from citypipe.geo.errors import ConfigurationError

__all__ = ["Catalog", "Source", "default_catalog", "load_catalog"]


def default_catalog() -> Path:
    """`CITYPIPE_CATALOG` when set, else the repository's data/catalog.yaml."""
    env = os.environ.get("CITYPIPE_CATALOG")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"


class Source(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: Path = Field(description="File to read; relative paths are relative to the catalog file.")
    format: str | None = Field(None, description="Connector name; detected from content if unset.")
    theme: str | None = Field(
        None, description="Theme of every feature; else from the feature class."
    )
    crs: str | None = Field(
        None, description="CRS of sources that declare none (or declare it wrongly)."
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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_source_name(v)

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


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[Source, ...]

    def get(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigurationError(
            f"no source {name!r} in the catalog; sources: {', '.join(s.name for s in self.sources)}"
        )


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at `path` (default: `default_catalog()`), with paths made absolute."""
    path = Path(path or default_catalog())
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot read the catalog: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigurationError(f"{path}: not valid YAML: {e}") from e
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise ConfigurationError(f"{path}: expected a mapping `sources:` of name -> entry")
    sources = []
    for name, entry in entries.items():
        try:
            src = Source(name=name, **(entry or {}))
        except ValidationError as e:
            raise ConfigurationError(f"{path}: source {name!r}: {_one_line(e)}") from e
        except TypeError as e:
            raise ConfigurationError(f"{path}: source {name!r}: {e}") from e
        if not src.path.is_absolute():
            src = src.model_copy(update={"path": (path.parent / src.path).resolve()})
        sources.append(src)
    return Catalog(sources=tuple(sources))


def _one_line(e: ValidationError) -> str:
    """Pydantic's findings as one line: each field and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(map(str, err['loc']))}: {err.get('ctx', {}).get('error') or err['msg']}"
        for err in e.errors()
    )
