"""A batch's GML Points and LineStrings built at once, as its polygons are (gml_polygons).

Most WFS layers are points or simple lines: one geometry element per feature, its positions in
one pos / posList / coordinates element. Reading each into its own numpy array and shapely
object costs more than the rest of the feature; here their texts are collected while the batch
is read, parsed in one Arrow call and built in one shapely call per kind and dimension. A text
that is not a point's or a line's positions gives the record the reason GeometryReader would.
"""

from __future__ import annotations

import numpy as np
import shapely

from citypipe.connectors.gml_polygons import coordinates, parse

__all__ = ["SimpleGeometries"]


class SimpleGeometries:
    """The Points and LineStrings of one batch: `add` while reading, `build` at its end."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._dims: list[int] = []
        self._records: list[int] = []
        self._points: list[bool] = []
        self._blank: list[int] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, record: int, point: bool, text: str, dim: int) -> None:
        """The positions `text` (of srsDimension `dim`) of record `record`'s Point (`point`)
        or LineString."""
        if not text or text.isspace():
            self._blank.append(len(self._texts))
        self._texts.append(text)
        self._dims.append(dim)
        self._records.append(record)
        self._points.append(point)

    def build(self, out: np.ndarray) -> dict[int, str]:
        """Each geometry into `out` at its record; the reasons of those that cannot be built,
        by record."""
        if not self._texts:
            return {}
        values, numbers, finite, sizes = parse(self._texts, self._blank)
        dims = np.asarray(self._dims, dtype=np.int64)
        points = np.asarray(self._points, dtype=bool)
        records = np.asarray(self._records, dtype=np.int64)
        positions = sizes // dims
        reasons = _reasons(points, sizes, dims, numbers, finite, positions)
        good = np.ones(len(sizes), dtype=bool)
        good[list(reasons)] = False
        xyz = coordinates(values, sizes, dims)
        owner = np.repeat(np.arange(len(sizes)), positions)
        for kind in (True, False):
            for dim in np.unique(dims).tolist():
                chosen = good & (points == kind) & (dims == dim)
                if not chosen.any():
                    continue
                columns = 3 if dim >= 3 else 2
                rows = xyz[chosen[owner], :columns]
                if kind:
                    out[records[chosen]] = shapely.points(rows)
                else:
                    indices = np.repeat(np.arange(int(chosen.sum())), positions[chosen])
                    out[records[chosen]] = shapely.linestrings(rows, indices=indices)
        return {int(records[i]): why for i, why in reasons.items()}


def _reasons(
    points: np.ndarray,
    sizes: np.ndarray,
    dims: np.ndarray,
    numbers: np.ndarray,
    finite: np.ndarray,
    positions: np.ndarray,
) -> dict[int, str]:
    """Why the geometries that cannot be built cannot (the first reason that applies), by
    index: GeometryReader.coordinates' checks, in its order."""
    wrong_count = np.where(points, positions != 1, positions < 2)
    bad = (sizes == 0) | ~numbers | (sizes % dims != 0) | ~finite | wrong_count
    out: dict[int, str] = {}
    for i in np.flatnonzero(bad).tolist():
        name = "Point" if points[i] else "LineString"
        size, dim, n = int(sizes[i]), int(dims[i]), int(positions[i])
        if size == 0:
            out[i] = f"{name} without positions"
        elif not numbers[i]:
            out[i] = f"{name} has coordinates that are not numbers"
        elif size % dim:
            out[i] = f"{name} has {size} coordinate values, not a multiple of srsDimension {dim}"
        elif not finite[i]:
            out[i] = f"{name} has coordinates that are not finite (nan, inf, 1e309)"
        else:
            out[i] = f"{name} with {n} position{'' if n == 1 else 's'}"
    return out
