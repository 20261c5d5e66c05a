"""Some records of a SourceBatch, every aligned sequence cut alike: for the records a harvest
drops (a feature read twice, on two tiles or pages; one a local filter leaves out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import numpy as np

from citypipe.connectors.base import Solids, SourceBatch
from citypipe.geo.surfaces import SurfaceColumns
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
            changes[f.name] = _solids(value, rows)
        else:
            changes[f.name] = _rows(value, rows)
    return replace(batch, **changes)


def _solids(solids: Solids, rows: np.ndarray) -> Solids:
    """The 3D part of the records `rows`: surfaces held as columns stay columns, each surface
    with its face (the pipeline then measures and places them with the solid's faces, as in
    the whole batch); the faces' arrays are not cut, the pipeline reads them again (from the
    geometries, built from them where they were held only so)."""
    geometry_3d, surfaces = _rows(solids.built().geometry_3d, rows), solids.surfaces
    if isinstance(surfaces, SurfaceColumns):
        taken = surfaces.take(rows)
        return Solids(geometry_3d, taken, taken.record_faces())
    return Solids(geometry_3d, None if surfaces is None else _rows(surfaces, rows))


def _rows(values: Any, rows: np.ndarray) -> Any:
    if isinstance(values, (np.ndarray, Points)):
        return values[rows]
    return [values[i] for i in rows]
