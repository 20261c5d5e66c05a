"""GML circular arcs as line strings, within a stated tolerance.

Simple Features (and so shapely, GeoParquet, DuckDB) has no arcs: a GML Arc, ArcString,
Circle, ArcByCenterPoint or CircleByCenterPoint becomes positions on it, spaced so that no
chord strays from the arc by more than `ARC_TOLERANCE` times its radius (1 cm on a circle of
1 km; an angular step of about 0.5 degree, GDAL's default is 4). Each arc's positions are
computed in one numpy call; the given positions are kept exactly, so rings still close.
Heights, where the positions have them, are interpolated along the arc.

The angles of the ...ByCenterPoint forms are read counter-clockwise from the first axis, in the
CRS's units where no uom says degrees or radians otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from citypipe.connectors.coordinates import describe_position, out_of_bounds

__all__ = ["ARCS", "ARC_TOLERANCE", "ArcError", "linearise"]

ARC_TOLERANCE = 1e-5
"""The largest distance between an arc and its chords, as a fraction of the radius."""
_STEP = 2 * math.acos(1 - ARC_TOLERANCE)
"""The angle a chord spans at most."""
ARCS = ("Arc", "ArcString", "Circle", "ArcByCenterPoint", "CircleByCenterPoint")
"""The curve segments read as arcs."""


class ArcError(ValueError):
    """An arc that cannot be read; the message says why."""


def linearise(kind: str, positions: np.ndarray, elem: Any = None) -> np.ndarray:
    """The (n, 3) positions (z NaN if 2D) along the arc segment `kind` whose given positions are
    `positions` (for the ...ByCenterPoint forms, the centre; `elem` holds radius and angles).
    Positions beyond `coordinates.LIMIT` are refused: an arc's are computed from their
    squares, which overflow."""
    bad = out_of_bounds(positions[:, :2])
    if bad.any():
        raise ArcError(f"an {kind} with {describe_position(positions[bad][0, :2])}")
    if kind in ("ArcByCenterPoint", "CircleByCenterPoint"):
        return _by_centre(kind, positions, elem)
    n = len(positions)
    if kind == "Circle":
        if n != 3:
            raise ArcError(f"a Circle with {n} positions, not 3")
        return _arc(positions[0], positions[1], positions[2], full=True)
    if n < 3 or n % 2 == 0 or (kind == "Arc" and n != 3):
        raise ArcError(f"an {kind} with {n} positions (3 for an Arc, 2k + 1 for an ArcString)")
    parts = [_arc(*positions[i : i + 3]) for i in range(0, n - 1, 2)]
    return np.concatenate([parts[0], *(p[1:] for p in parts[1:])])


def _arc(a: np.ndarray, b: np.ndarray, c: np.ndarray, full: bool = False) -> np.ndarray:
    """Positions from `a` through `b` to `c` on their circle (back to `a` if `full`); the three
    positions themselves when they lie on a line."""
    u, v = b[:2] - a[:2], c[:2] - a[:2]  # relative to `a`: no precision lost to large eastings
    d = 2 * (u[0] * v[1] - u[1] * v[0])
    scale = max(np.abs(u).max(), np.abs(v).max())
    if scale == 0 or abs(d) <= 1e-12 * scale * scale:
        if full:
            raise ArcError("a Circle through positions on one line")
        return np.stack([a, b, c])
    uu, vv = u @ u, v @ v
    centre = np.array([v[1] * uu - u[1] * vv, u[0] * vv - v[0] * uu]) / d
    radius = math.hypot(*centre)
    start, end = (math.atan2(*(p - centre)[::-1]) for p in (-centre, v))
    turn = 1.0 if d > 0 else -1.0  # a -> b -> c turns counter-clockwise
    sweep = 2 * math.pi if full else (turn * (end - start)) % (2 * math.pi)
    return _around(a[:2] + centre, radius, start, turn * sweep, a, a if full else c)


def _around(
    centre: np.ndarray, radius: float, start: float, sweep: float, first: Any, last: Any
) -> np.ndarray:
    """Positions on the circle from angle `start` over `sweep` (radians), the first and last
    exactly `first` and `last`, heights interpolated between theirs."""
    steps = max(2, math.ceil(abs(sweep) / _STEP))
    t = np.linspace(0.0, 1.0, steps + 1)
    angles = start + sweep * t
    out = np.empty((steps + 1, 3))
    out[:, 0] = centre[0] + radius * np.cos(angles)
    out[:, 1] = centre[1] + radius * np.sin(angles)
    out[:, 2] = first[2] + (last[2] - first[2]) * t
    out[0], out[-1] = first, last
    return out


_TO_RADIANS = {"rad": 1.0, "deg": math.pi / 180, "urn:ogc:def:uom:EPSG::9102": math.pi / 180}


def _by_centre(kind: str, centre: np.ndarray, elem: Any) -> np.ndarray:
    """ArcByCenterPoint (radius, startAngle, endAngle) or CircleByCenterPoint (radius)."""
    if len(centre) != 1:
        raise ArcError(f"an {kind} with {len(centre)} centre positions, not 1")
    found = {child.tag.rpartition("}")[2]: child for child in elem}
    radius = _measure(found, "radius", kind)
    if radius <= 0:
        raise ArcError(f"an {kind} with radius {radius}")
    start, end = 0.0, 2 * math.pi
    if kind == "ArcByCenterPoint":
        start, end = (
            _measure(found, key, kind) * _TO_RADIANS.get(found[key].get("uom", "deg"), 1.0)
            for key in ("startAngle", "endAngle")
        )
    c = centre[0]
    ends = [c + radius * np.array([math.cos(a), math.sin(a), 0.0]) for a in (start, end)]
    return _around(c[:2], radius, start, end - start, *ends)


def _measure(found: dict[str, Any], key: str, kind: str) -> float:
    elem = found.get(key)
    try:
        value = float(elem.text) if elem is not None and elem.text else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ArcError(f"an {kind} without a numeric {key}")
    return value
