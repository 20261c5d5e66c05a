"""Parquet attribute values as JSON values, and the rows of a batch as read, for rejects.

How a column's values become JSON (timestamps as ISO text, decimals as floats, binary as
base64, nested types item by item) is decided once per column type, so plain columns cost
nothing per value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from citypipe.connectors.parquet_geometry import binary

__all__ = ["Records", "values"]

_LISTS = (
    pa.ListType,
    pa.LargeListType,
    pa.FixedSizeListType,
    pa.ListViewType,
    pa.LargeListViewType,
)


def _nullsafe(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


def _jsonable(t: pa.DataType) -> Callable[[Any], Any] | None:
    """How to turn `to_pylist` values of type `t` into JSON values; None when they already are.

    Decided once per column type, so plain columns cost nothing per value.
    """
    if isinstance(t, pa.ExtensionType):
        return _jsonable(t.storage_type)
    if pa.types.is_dictionary(t):
        return _jsonable(t.value_type)
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return _nullsafe(lambda v: v.isoformat())
    if pa.types.is_duration(t):
        return _nullsafe(lambda v: v.total_seconds())
    if pa.types.is_decimal(t):
        return _nullsafe(float)
    if binary(t):
        return _nullsafe(lambda v: base64.b64encode(v).decode("ascii"))
    if pa.types.is_map(t):
        key, item = _jsonable(t.key_type) or str, _jsonable(t.item_type)
        return _nullsafe(lambda v: {key(k): item(x) if item else x for k, x in v})
    if pa.types.is_struct(t):
        found = {f.name: _jsonable(f.type) for f in t}
        fields = {n: f for n, f in found.items() if f is not None}
        if not fields:
            return None
        return _nullsafe(lambda v: {k: fields[k](x) if k in fields else x for k, x in v.items()})
    if isinstance(t, _LISTS):
        item = _jsonable(t.value_type)
        return _nullsafe(lambda v: [item(x) for x in v]) if item else None
    return None


def values(array: pa.Array) -> list[Any]:
    convert = _jsonable(array.type)
    values = array.to_pylist()
    return [convert(v) for v in values] if convert else values


class Records(Sequence[dict[str, Any]]):
    """The rows as read, for rejects: properties and the geometry as WKT (or the raw value
    when it could not be read), built only for the rows asked for."""

    def __init__(
        self, properties: list[dict[str, Any]], column: str, geoms: np.ndarray, raw: pa.Array
    ) -> None:
        self._properties, self._column, self._geoms, self._raw = properties, column, geoms, raw

    def __len__(self) -> int:
        return len(self._properties)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        g = self._geoms[i]
        if g is not None:
            value: Any = shapely.to_wkt(g, rounding_precision=-1)
        else:
            raw = self._raw[i].as_py()
            value = base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes) else raw
        return {**self._properties[i], self._column: value}
