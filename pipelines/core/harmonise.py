"""Source table -> shared schema v1: one `SourceBatch` in, features and rejects out.

Everything a connector hands over is turned into the typed columns of schemas/feature-v1.yaml:
coordinates to OGC:CRS84 (2D, valid: pipelines/core/geometry.py), stable feature ids (ids.py),
a theme from the vocabulary, the mapped attributes (name, observed_at, height_m: values.py) and
every attribute as JSON, in rows built against the schema (rows.py). A record that cannot be
harmonised becomes a reject with the reason and the record as it was read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyproj

from citypipe import schemas
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.json_properties import holding, keys_of
from citypipe.core import positions, rows
from citypipe.core.geometry import Placed, Placer
from citypipe.core.ids import FeatureIds
from citypipe.core.measure import floats
from citypipe.core.properties import json_texts, max_value_bytes, rounded
from citypipe.core.values import AttributeMap, number, text, timestamp
from citypipe.geo import wkb
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.types import AxisOrder

__all__ = ["FOOTPRINT_AREA", "REPAIR_NOTE", "VOLUME", "HarmonisedBatch", "Harmoniser"]

REPAIR_NOTE = "citypipe:geometry_repaired"
FOOTPRINT_AREA = "citypipe:footprint_area_m2"
VOLUME = "citypipe:volume_m3"


def _extras(geo: Placed, notes: list[str | None]) -> list[dict[str, Any] | None]:
    """What citypipe adds to a record's properties: a repair note, a 3D object's measures;
    each record's dict made once (rounded as Python floats, not a dict copied per measure)."""
    if geo.measures is None:
        return [{REPAIR_NOTE: w} if w else None for w in notes]
    out: list[dict[str, Any] | None] = []
    areas, volumes = rounded(geo.measures.footprint_area, 3), rounded(geo.measures.volume, 3)
    for note, area, volume in zip(notes, areas, volumes, strict=True):
        extra: dict[str, Any] = {REPAIR_NOTE: note} if note else {}
        if area is not None:
            extra[FOOTPRINT_AREA] = area
        if volume is not None:
            extra[VOLUME] = volume
        out.append(extra or None)
    return out


@dataclass
class HarmonisedBatch:
    features: pa.RecordBatch
    rejects: list[dict[str, Any]]
    """The run's rejects: the records harmonise cannot guarantee (validation rejects none)."""
    surfaces: pa.RecordBatch | None = None
    """Rows of the surfaces table, for the features that have semantic surfaces."""
    warnings: Counter[str] = field(default_factory=Counter)
    """Problems of kept features worth a user's look (counted per message), e.g. positions
    that contradict the record's own latitude / longitude."""
    kept: Sequence[int] = ()
    """The index in the source batch of each feature's record (the observations' `record`)."""
    property_names: frozenset[str] = frozenset()
    """Every key of the source batch's records' properties."""


@dataclass
class _Kept:
    """The records of a batch that become features, and their values."""

    keep: Sequence[int]
    all_kept: bool

    def __call__(self, values: Sequence[Any]) -> list[Any]:
        return list(values) if self.all_kept else [values[i] for i in self.keep]

    def arrow(self, values: pa.Array) -> pa.Array:
        return values if self.all_kept else values.take(pa.array(self.keep, pa.int64()))


@dataclass
class Harmoniser:
    """Harmonises the batches of one ingest run; remembers ids across batches to keep them
    unique."""

    source: str
    source_format: str
    ingested_at: datetime
    run_id: str = ""
    theme: str | None = None
    crs: str | None = None
    axis_order: AxisOrder | None = None
    """Overrides the connector's reading of the coordinates' axis order (`--axis-order`)."""
    fields: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    """The file (or address) read, named when the source is refused."""
    max_value_bytes: int = field(default_factory=max_value_bytes)
    """Text values longer than this (UTF-8 bytes) are cut, with a note (pipelines.properties)."""

    def __post_init__(self) -> None:
        if self.theme is not None and self.theme not in schemas.themes():
            raise ConfigurationError(
                f"unknown theme {self.theme!r}; themes: {', '.join(schemas.themes())}"
            )
        self.placer = Placer(self.source, self.source_format, self.crs, self.axis_order, self.path)
        self.attributes = AttributeMap(self.fields)
        self.ids = FeatureIds(self.source)
        self.rows = rows.FeatureRows()

    @property
    def crss(self) -> dict[str, pyproj.CRS]:
        """The CRSs the source's coordinates were read in (`Placer.crss`)."""
        return self.placer.crss

    def reject(self, source_id: str | None, reason: str, record: Any) -> dict[str, Any]:
        """A row of the rejects table."""
        return rows.reject(self.source, source_id, reason, record, self.ingested_at, self.run_id)

    # -- steps ---------------------------------------------------------------------------

    def _properties(
        self,
        batch: SourceBatch,
        keys: frozenset[str],
        geo: Placed,
        notes: list[str | None],
        reasons: list[str | None],
    ) -> tuple[pa.Array, Counter[str]]:
        """The properties JSON of every record, with citypipe's notes, and the warnings."""
        extras = _extras(geo, notes)
        warnings: Counter[str] = Counter()
        warnings.update(batch.warnings or {})
        found = positions.conflicts(self.attributes, geo.geometry, batch.properties, keys, reasons)
        for i, why, stated in found:
            extras[i] = {**(extras[i] or {}), positions.POSITION_NOTE: f"{why} ({stated})"}
            warnings[why] += 1
        properties, unwritable = json_texts(batch.properties, self.max_value_bytes, extras)
        for i, why in unwritable.items():
            reasons[i] = reasons[i] or why
        return properties, warnings

    def _source_ids(self, batch: SourceBatch) -> list[str | None]:
        """The records' ids in the source: the connector's, else the attribute the catalog
        names as the one that identifies records."""
        source_ids = list(batch.source_ids)
        if "source_id" in self.fields:
            key = [self.fields["source_id"]]
            first = self.attributes.first_filled
            source_ids = [
                sid if sid is not None else text(first(p, key))
                for sid, p in zip(source_ids, batch.properties, strict=False)
            ]
        return source_ids

    def _column(
        self,
        given: Sequence[Any] | None,
        keys: frozenset[str],
        kept: _Kept,
        props: Sequence[Mapping[str, Any]],
        name: str,
        convert: Callable[[Any], Any],
    ) -> list[Any] | None:
        """Column `name`'s values: what the connector knows (`given`), else the mapped
        attribute; None when the batch has nothing for it."""
        mapped = self.attributes.keys(name, keys) if name in self.attributes.names else []
        if given is None and not mapped:
            return None
        values = kept(given) if given is not None else [None] * len(kept.keep)
        if mapped:
            first, held = self.attributes.first_filled, holding(props, mapped)
            values = [  # a record's properties looked at only where the connector has no value
                v if v is not None else first(held[i], mapped)
                for v, i in zip(values, kept.keep, strict=False)
            ]
        return [None if v is None else convert(v) for v in values]

    def _themes(self, classes: list[str | None]) -> list[str | None] | pa.Array:
        themes_of = {c: self.theme or schemas.class_theme(c) for c in set(classes)}
        if len(themes_of) == 1:
            return pa.repeat(pa.scalar(next(iter(themes_of.values()))), len(classes))
        return [themes_of[c] for c in classes]

    def _filled(
        self,
        batch: SourceBatch,
        keys: frozenset[str],
        geo: Placed,
        kept: _Kept,
        feature_ids: pa.Array,
        source_ids: list[str | None],
    ) -> dict[str, Any]:
        """The columns of `rows.FILLED` for the kept records, but for the properties."""
        m = len(kept.keep)
        props = batch.properties  # the kept records' taken only for a mapped attribute
        classes = kept(batch.feature_classes) if batch.feature_classes else [None] * m
        parents = self._column(batch.parent_source_id, keys, kept, props, "parent_source_id", str)
        height = self._column(batch.height_m, keys, kept, props, "height_m", number)
        if geo.measures is not None:  # 3D objects without a stated height: from their geometry
            measured = floats(geo.measures.height)
            height = [
                h if h is not None else measured[i]
                for h, i in zip(height or [None] * m, kept.keep, strict=False)
            ]
        idx = slice(None) if kept.all_kept else np.asarray(kept.keep, dtype=np.int64)
        return {
            "feature_id": kept.arrow(feature_ids),
            "source_id": kept(source_ids),
            "theme": self._themes(classes),
            "feature_class": classes if classes.count(None) < m else None,
            "parent_id": None if parents is None else self.ids.of(parents),
            "name": self._column(batch.name, keys, kept, props, "name", text),
            "height_m": height,
            "lod": self._column(batch.lod, keys, kept, props, "lod", text),
            "observed_at": self._column(
                batch.observed_at, keys, kept, props, "observed_at", timestamp
            ),
            "geometry": wkb.to_wkb_2d(geo.geometry[idx]),
            "geometry_3d": geo.wkb_3d(idx),
            "bbox": rows.bbox(geo.bounds[idx]),
        }

    # -- the batch -----------------------------------------------------------------------

    def harmonise(self, batch: SourceBatch) -> HarmonisedBatch:
        n = len(batch)
        reasons: list[str | None] = list(batch.errors) if batch.errors is not None else [None] * n
        notes: list[str | None] = list(batch.repairs) if batch.repairs is not None else [None] * n
        geo = self.placer.place(batch, reasons, notes)
        keys = keys_of(batch.properties)
        properties, warnings = self._properties(batch, keys, geo, notes, reasons)
        source_ids = self._source_ids(batch)
        feature_ids, dups = self.ids(source_ids)
        failed = [r or d for r, d in zip(reasons, dups, strict=False)] if any(dups) else reasons
        rejects = [
            self.reject(source_ids[i], why, batch.records[i]) for i, why in enumerate(failed) if why
        ]
        kept = (
            _Kept([i for i, why in enumerate(failed) if not why], False)
            if rejects
            else _Kept(range(n), True)
        )
        filled = self._filled(batch, keys, geo, kept, feature_ids, source_ids)
        filled["properties"] = kept.arrow(properties)
        constant = {  # the same for every row of the batch
            "source": self.source,
            "source_crs": geo.source_crs,
            "source_format": self.source_format,
            "ingested_at": self.ingested_at,
        }
        features = self.rows.batch(len(kept.keep), filled, constant)
        surfaces = rows.surfaces(self.source, geo.measures, kept.keep, feature_ids)
        return HarmonisedBatch(features, rejects, surfaces, warnings, kept.keep, keys)
