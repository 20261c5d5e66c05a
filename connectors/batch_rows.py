"""Some records of a SourceBatch, every aligned sequence cut alike: for the records a harvest
drops (a feature read twice, on two tiles or pages; one a local filter leaves out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import numpy as np

from citypipe.connectors.base import Solids, SourceBatch
from citypipe.geo.types import Points

__all__ = ["take"]


def take(batch: SourceBatch, keep: np.ndarray) -> SourceBatch:
    """The records of `batch` where the boolean mask `keep` holds, in their order."""
    if keep.all():
        return batch
    rows = np.flatnonzero(keep)
    changes: dict[str, Any] = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        if value is None or isinstance(value, str | Mapping):  # crs, axis order, warnings:
            continue  # of the whole batch
        if f.name == "observations":  # not one per record: those of the records kept, renumbered
            kept = {old: new for new, old in enumerate(rows.tolist())}
            changes[f.name] = [o._replace(record=kept[o.record]) for o in value if o.record in kept]
            continue
        if isinstance(value, Solids):
            surfaces = value.surfaces
            changes[f.name] = Solids(
                _rows(value.geometry_3d, rows), None if surfaces is None else _rows(surfaces, rows)
            )
        else:
            changes[f.name] = _rows(value, rows)
    return replace(batch, **changes)


def _rows(values: Any, rows: np.ndarray) -> Any:
    if isinstance(values, (np.ndarray, Points)):
        return values[rows]
    return [values[i] for i in rows]
