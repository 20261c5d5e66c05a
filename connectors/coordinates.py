"""What a coordinate is: a number (never a string, boolean, null or object), finite, and within
`LIMIT` of the origin.

Readers turn coordinate lists into float arrays in bulk, and numpy's conversion takes "12" for
12, true for 1 and null for NaN: garbage that lands as a plausible point. The checks here run
as part of those conversions or beside them at C speed (struct's conversion, comparisons of
whole arrays), and the slow description of what is wrong only for the records that fail.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np
import orjson
import shapely

try:  # lists of floats and ints converted as they are walked (float_lists.pyx), where it built
    from citypipe.connectors.float_lists import floats_of
except ImportError:
    floats_of = None  # type: ignore[assignment]

__all__ = [
    "LIMIT",
    "bad_geometries",
    "describe_non_number",
    "describe_position",
    "numbers_only",
    "out_of_bounds",
    "to_floats",
]

LIMIT = 1e10
"""The largest coordinate magnitude citypipe accepts, in any unit of any CRS: ten million
kilometres, far beyond any position on or near the Earth in metres, feet or degrees (the largest
real ones are about 4e7, easting with a zone number in front), and far below where squares and
products of coordinates in geometry operations overflow."""
_LIMIT_TEXT = f"{LIMIT:.0e}".replace("e+", "e")
_NUMBERS = frozenset({int, float})
_JSON_KIND = {str: ", a string,", bool: ", a boolean,", type(None): ",", dict: ", an object,"}


def numbers_only(values: Iterable[Any]) -> bool:
    """Whether every value is an int or a float (bool is neither: its type is bool)."""
    return set(map(type, values)) <= _NUMBERS


def to_floats(
    nested: Iterable[Any], levels: int, count: int, width: int | None = None
) -> np.ndarray:
    """The `count` values `levels` lists down in `nested` (a list, iterated thrice at most) as a
    float array; ValueError unless every one is a number, or (`width` given) where a list of
    them does not hold `width` (a position of another dimension: the compiled walk counts
    each as it goes, where a pass of `len` over every position cost as much as the walk).

    struct converts in C and, unlike numpy, refuses strings, null, objects and lists as it
    goes, at the speed of numpy's conversion; a boolean passes (True is an int) and becomes
    0 or 1, so the types are looked at one by one only where the array holds a 0 or a 1.
    Lists of floats and ints (what a JSON parser makes) are converted by the compiled walk
    where it built, anything else this way."""
    if floats_of is not None and (out := floats_of(nested, levels, count, width or 0)) is not None:
        return out
    out = np.empty(count)
    try:
        if width is not None and set(map(len, _flat(nested, levels - 1))) - {width}:
            raise ValueError(f"positions of other than {width} values")
        struct.pack_into(f"{count}d", out.data, 0, *_flat(nested, levels))
    except (struct.error, TypeError, OverflowError) as e:
        raise ValueError("values that are not numbers") from e
    if ((out == 0) | (out == 1)).any() and not numbers_only(_flat(nested, levels)):
        raise ValueError("values that are not numbers")
    return out


def _flat(nested: Iterable[Any], levels: int) -> Iterable[Any]:
    for _ in range(levels):
        nested = chain.from_iterable(nested)
    return nested


def describe_non_number(coordinates: Any) -> str | None:
    """Why nested coordinate lists are not coordinates: the first value that is not a number,
    e.g. 'coordinates hold "12", a string, not a number'; None if every value is one."""
    stack = [coordinates]
    while stack:
        value = stack.pop()
        if type(value) is list:
            stack.extend(reversed(value))
        elif type(value) not in _NUMBERS:
            kind = _JSON_KIND.get(type(value), f", a {type(value).__name__},")
            text = orjson.dumps(value, default=str)[:40].decode("utf-8", "replace")
            return f"coordinates hold {text}{kind} not a number"
    return None


def out_of_bounds(xyz: np.ndarray) -> np.ndarray:
    """Which rows of a coordinate array hold a value that is NaN, infinite or beyond `LIMIT`
    (one reduction over the whole array where none does, the common case)."""
    with np.errstate(invalid="ignore"):
        fine = np.abs(xyz) <= LIMIT
    if fine.all():
        return np.zeros(len(xyz), bool)
    return ~fine.all(axis=1)


def describe_position(position: np.ndarray) -> str:
    """Why a position `out_of_bounds` found is not one, for a reject's reason."""
    values = ", ".join(map(repr, position.tolist()))
    if not np.isfinite(position).all():
        return f"a coordinate that is not finite ({values})"
    return f"a coordinate beyond ±{_LIMIT_TEXT}, where no CRS has the Earth ({values})"


def bad_geometries(geometries: np.ndarray) -> dict[int, str]:
    """Which shapely geometries (None allowed) hold a coordinate `out_of_bounds`, Z included
    where they have Z, with the first such position described.

    Coordinates are read once, with Z (NaN for 2D geometries); only the geometries with a NaN
    Z are asked whether they have Z, which spares GEOS the question for every 3D face."""
    xyz, owner = shapely.get_coordinates(geometries, include_z=True, return_index=True)
    if not len(xyz):  # none (a CityGML batch's footprints, mostly): no pass over nothing
        return {}
    bad = out_of_bounds(xyz[:, :2])
    z = xyz[:, 2:]
    bad_z = out_of_bounds(z)
    if bad_z.any():
        unknown = bad_z & np.isnan(z[:, 0])  # 2D geometries, or 3D ones with a NaN height
        has_z = np.ones(len(geometries), dtype=bool)
        suspects = np.unique(owner[unknown])
        has_z[suspects] = shapely.has_z(np.asarray(geometries, dtype=object)[suspects])
        bad |= bad_z & has_z[owner]
    if not bad.any():
        return {}
    found: dict[int, str] = {}
    for k in np.flatnonzero(bad).tolist():
        i = int(owner[k])
        if i not in found:
            has = not np.isnan(xyz[k, 2]) or bool(shapely.has_z(geometries[i]))
            found[i] = describe_position(xyz[k] if has else xyz[k, :2])
    return found
