"""The numbers of a CityJSON file: vertices, their transform, and the NaN that JSON does not have.

Vertices are shared by the objects of a file (or of a CityJSONSeq line), so a bad vertex is no
reason to refuse the file: it is described here, and only the objects that use it are rejected.
A vertex is bad when a value is not a number (numpy would read "1" and true as numbers), when
it is not [x, y, z], or when dequantised it is not finite or beyond `coordinates.LIMIT`. The
transform is the file's: one that cannot dequantise (a scale of 0, values that are not finite
numbers) refuses the file. A file orjson refuses only for NaN, Infinity or numbers beyond a
double is read by Python's parser, and its objects that hold such numbers are rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from citypipe.connectors import coordinates

# The object walk and the numbers' lift compiled (cityjson_walk.pyx, cityjson_lift.pyx), each
# optional: where one did not build, orjson and Python read its part. The lift's placeholders
# are read by the walk, so without the walk no lift.
try:
    from citypipe.connectors import cityjson_walk as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]
try:
    from citypipe.connectors import cityjson_lift as lifting
except ImportError:
    lifting = None  # type: ignore[assignment]
if compiled is None:
    lifting = None

__all__ = ["Vertices", "loads", "loads_document", "non_finite", "transform_problem", "vertices"]


@dataclass
class Vertices:
    """An (n, 3) float array (NaN rows for unreadable vertices), and what is wrong with the
    bad ones, by row."""

    xyz: np.ndarray
    problems: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.xyz)


def transform_problem(transform: Any) -> str | None:
    """Why a `transform` cannot dequantise vertices; None when it can (or there is none)."""
    if transform is None:
        return None
    if not isinstance(transform, dict):
        return "transform is not an object"
    for key in ("scale", "translate"):
        value = transform.get(key)
        if not (type(value) is list and len(value) == 3 and coordinates.numbers_only(value)):
            return (
                f"transform.{key} {orjson.dumps(value, default=str).decode()[:80]} is not 3 numbers"
            )
        if not all(map(math.isfinite, value)):
            return f"transform.{key} {value} holds a number that is not finite"
    if 0 in transform["scale"]:
        return f"transform.scale {transform['scale']} holds 0, which puts every vertex in one place"
    return None


def vertices(raw: Any, transform: Any = None) -> Vertices:
    """`raw` vertices (parsed, or lifted by `loads_document`) as floats, dequantised with
    `transform` (checked by `transform_problem`)."""
    problems: dict[int, str]
    if type(raw) is np.ndarray:
        xyz, problems = raw, {}
    elif isinstance(raw, list):
        xyz, problems = _positions(raw)
    else:
        raise TypeError("vertices are not an array")
    if transform is not None:
        xyz = _dequantised(xyz, np.asarray(transform["scale"]), np.asarray(transform["translate"]))
    for i in np.flatnonzero(coordinates.out_of_bounds(xyz)).tolist():
        problems.setdefault(i, f"vertex {i} has {coordinates.describe_position(xyz[i])}")
    return Vertices(xyz, problems)


_COLUMNS_FROM = 1000
"""Vertices from which the transform is applied a column at a time (fewer: 4 us more)."""


def _dequantised(xyz: np.ndarray, scale: np.ndarray, translate: np.ndarray) -> np.ndarray:
    """`xyz * scale + translate`, a column at a time where there are many vertices and all are
    numbers (numpy's broadcast steps through each row of three: 0.28 -> 0.08 ms for Den
    Haag's 22,997 vertices), the same values; what overflows is a problem `vertices` notes."""
    with np.errstate(over="ignore", invalid="ignore"):
        if (
            len(xyz) < _COLUMNS_FROM
            or xyz.dtype != np.float64
            or not {scale.dtype.kind, translate.dtype.kind} <= {"f", "i"}
        ):
            return xyz * scale + translate
        out = np.empty_like(xyz)
        for k in range(3):
            np.multiply(xyz[:, k], scale[k], out=out[:, k])
            out[:, k] += translate[k]
    return out


def loads(data: bytes) -> tuple[Any, bool]:
    """The JSON value of `data`, and whether only Python's parser read it (orjson refused it for
    NaN, Infinity or a number beyond a double, which then are floats in the value);
    orjson's JSONDecodeError where neither can."""
    try:
        return orjson.loads(data), False
    except orjson.JSONDecodeError as e:
        try:
            return json.loads(data), True
        except (ValueError, RecursionError):
            raise e from None


def _positions(raw: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
    """Parsed vertices as an (n, 3) float array, NaN rows for those that are not [x, y, z]
    numbers, and what is wrong with them, by row."""
    if not raw:
        return np.zeros((0, 3)), {}
    problems: dict[int, str] = {}
    try:
        xyz = None if compiled is None else compiled.positions(raw)
        if xyz is None:
            if set(map(len, raw)) != {3}:
                raise TypeError
            xyz = coordinates.to_floats(raw, 1, 3 * len(raw)).reshape(-1, 3)
    except (TypeError, ValueError):  # the vertices that are not [x, y, z] numbers, one by one
        xyz = np.full((len(raw), 3), np.nan)
        for i, v in enumerate(raw):
            if type(v) is not list or len(v) != 3 or list in map(type, v):
                problems[i] = f"vertex {i} is not [x, y, z]"
            elif why := coordinates.describe_non_number(v):
                problems[i] = f"vertex {i}: {why}"
            else:
                xyz[i] = v
    return xyz, problems


READ = (
    b"type",
    b"version",
    b"metadata",
    b"CityObjects",
    b"vertices",
    b"transform",
    b"geometry-templates",
)
"""The members of a document the reader reads (cityjson.py, cityjson_objects.read_templates);
the others (`appearance`, whose materials and texture coordinates can be a third of the
document, `extensions`, an extension's own) are only checked as JSON by the lift, not parsed
(null in the document `loads_document` gives)."""


EARLY = (b"metadata", b"transform")
"""The members `loads_document` hands its `early` caller with the vertices, before the parse."""


def loads_document(
    data: bytes, early: Callable[[np.ndarray, Any, Any, Any], None] | None = None
) -> tuple[Any, bool, Any]:
    """`loads` of a whole document, and what cityjson_lift read from its bytes before orjson
    parsed the rest: its vertices, there as an (n, 3) float array, its geometries'
    boundaries (the `Boundaries` their placeholders index; None where none are lifted), and
    the members the reader never reads left out (`READ`). `early` is given the vertices
    lifted, the document's `metadata` and `transform` (parsed alone, None where it has
    none) and its `Boundaries` before orjson parses the rest (a CityJSON document's 2.6 ms
    of Delft's): its positions can be taken to CRS84 beside that parse."""
    lifted = None if lifting is None else lifting.lift(data, READ, EARLY)
    if lifted is not None:
        slim, xyz, boundaries, spans = lifted
        if early is not None and xyz is not None:
            try:
                metadata, transform = (
                    orjson.loads(data[slice(*spans[k])]) if k in spans else None for k in EARLY
                )
            except orjson.JSONDecodeError:
                pass  # said of the document as it is
            else:
                early(xyz, metadata, transform, boundaries)
        try:
            document = orjson.loads(slim)
        except orjson.JSONDecodeError:
            pass  # what is wrong is said of the document as it is
        else:
            if xyz is not None:
                document["vertices"] = xyz
            return document, False, boundaries
    return *loads(data), None


def non_finite(value: Any) -> str | None:
    """Where a parsed value holds a float that is not finite (what orjson would write as null),
    e.g. 'attributes.height is NaN'; None if nowhere."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, path = stack.pop()
        if type(v) is float and not math.isfinite(v):
            return f"{path or 'a value'} is {v}, a number JSON does not have"
        if isinstance(v, dict):
            stack.extend((x, f"{path}.{k}" if path else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{path}[{i}]") for i, x in enumerate(v))
    return None
