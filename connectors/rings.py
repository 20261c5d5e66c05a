"""Ring repair for the polygons of 3D city models: rings closed, polygons without area dropped.

Real CityGML and CityJSON hold rings whose last position misses the first by float noise
(coordinates converted and rounded on the way), rings left open, and polygons collapsed to a
line or a point. GDAL, citygml4j and 3DCityDB close such rings instead of refusing the object,
and so does citypipe; it drops only the polygons (and interior rings) with fewer than three
distinct positions, and says what it did (`describe`). All of it runs over the positions of a
whole batch in a few numpy passes, never in Python per position, and changes nothing in a
ring that needs no repair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NOISE", "Repair", "describe", "repair", "totals"]

NOISE = 1e-10
"""A last position this close to the first, relative to the coordinates' magnitude, is the
first written with float noise (micrometres from a conversion): it becomes the first. The
bound is about 0.6 mm at UTM northings and 5e-9 degrees (0.6 mm) at latitude 50, below the
vertices real models place that close together. Further away, the ring is open and is closed
by a segment back to the first position, as GDAL, citygml4j and 3DCityDB close it."""

_PHRASES = (
    "closed {} ring{} whose first and last positions differed by float noise",
    "closed {} open ring{}",
    "dropped {} interior ring{} with fewer than 3 distinct positions",
    "dropped {} polygon{} with fewer than 3 distinct positions",
)
"""What the columns of `Repair.counts` say, in a note."""


@dataclass(frozen=True)
class Repair:
    """What `repair` did to a batch of polygons."""

    coords: np.ndarray
    """The positions, the last of each ring closed within noise now its first (the array given
    where no ring needed that)."""
    ring_kept: np.ndarray
    """Per ring: it has three distinct positions and its polygon is kept."""
    polygon_kept: np.ndarray
    """Per polygon: its exterior ring has three distinct positions."""
    counts: np.ndarray
    """Per polygon (n, 4): rings closed within noise, open rings closed, interior rings
    dropped, and 1 if the polygon itself is dropped (the columns of `_PHRASES`)."""

    @property
    def dropped(self) -> bool:
        """Whether any ring or polygon is gone (positions must then be compacted)."""
        return not self.ring_kept.all()


def repair(
    coords: np.ndarray,
    sizes: np.ndarray,
    rings_per_polygon: np.ndarray,
    implicit_closure: bool = False,
) -> Repair:
    """Close the rings of polygons whose positions are `coords` (x, y, z; z NaN for 2D rings).

    `sizes` gives each ring's number of positions, rings in polygon order, the exterior first;
    `rings_per_polygon` each polygon's number of rings. A last position within `NOISE` of the
    first becomes it; a ring left open is counted (shapely closes it when it builds the ring),
    except where the format closes rings by definition (`implicit_closure`, CityJSON).
    """
    n_rings, n_polygons = len(sizes), len(rings_per_polygon)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    some = sizes > 0
    first, last = starts[some], ends[some] - 1
    plain = _comparable(coords)
    start = plain[first]
    with np.errstate(over="ignore"):  # ends ±1e308 apart: an infinite gap, an open ring
        gap = _largest(np.abs(plain[last] - start))
    tolerance = NOISE * np.maximum(1.0, _largest(np.abs(start)))
    near = (gap > 0) & (gap <= tolerance)
    snapped = np.zeros(n_rings, dtype=bool)
    snapped[some] = near
    if near.any():
        coords = coords.copy()
        coords[last[near]] = coords[first[near]]
        plain = _comparable(coords)
    opened = np.zeros(n_rings, dtype=bool)
    if not implicit_closure:
        opened[some] = gap > tolerance

    area = _three_distinct(plain, sizes, starts)
    polygon_of = np.repeat(np.arange(n_polygons), rings_per_polygon)
    exterior = np.zeros(n_rings, dtype=bool)
    exterior[(np.cumsum(rings_per_polygon) - rings_per_polygon)[rings_per_polygon > 0]] = True
    polygon_kept = np.zeros(n_polygons, dtype=bool)
    polygon_kept[polygon_of[exterior]] = area[exterior]
    in_kept = polygon_kept[polygon_of]
    ring_kept = area & in_kept
    counts = np.zeros((n_polygons, 4), dtype=np.int64)
    for column, mask in enumerate((snapped & ring_kept, opened & ring_kept, ~area & in_kept)):
        counts[:, column] = np.bincount(polygon_of[mask], minlength=n_polygons)
    counts[:, 3] = ~polygon_kept
    return Repair(coords, ring_kept, polygon_kept, counts)


def _comparable(coords: np.ndarray) -> np.ndarray:
    """`coords` with NaN heights (2D rings) as 0, so that equal positions compare equal."""
    z = coords[:, 2]
    return np.nan_to_num(coords) if np.isnan(z).any() else coords


def _largest(values: np.ndarray) -> np.ndarray:
    """Row-wise maximum of (n, 3) values (numpy's axis=1 reductions are slow on 3 columns)."""
    return np.maximum(np.maximum(values[:, 0], values[:, 1]), values[:, 2])


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: whether positions a and b are the same."""
    return (a[:, 0] == b[:, 0]) & (a[:, 1] == b[:, 1]) & (a[:, 2] == b[:, 2])


def _three_distinct(coords: np.ndarray, sizes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per ring: whether it has at least three distinct positions.

    Almost every ring's first three positions differ, which settles it; only the others are
    looked at whole: a position unlike both the first and the first position unlike that one.
    """
    out = np.zeros(len(sizes), dtype=bool)
    some = np.flatnonzero(sizes >= 3)
    a, b, c = coords[starts[some]], coords[starts[some] + 1], coords[starts[some] + 2]
    out[some] = ~(_same(a, b) | _same(b, c) | _same(a, c))
    rest = some[~out[some]]
    if not len(rest):
        return out
    ring_of = np.repeat(np.arange(len(rest)), sizes[rest])
    first = np.cumsum(sizes[rest]) - sizes[rest]
    at = np.arange(len(ring_of)) - first[ring_of] + starts[rest][ring_of]
    sub = coords[at]
    other = np.flatnonzero(~_same(sub, sub[first[ring_of]]))
    if len(other):
        # per ring, the first position unlike its first (meaningful where the ring has one)
        second = other[np.minimum(np.searchsorted(other, first), len(other) - 1)]
        unlike = other[~_same(sub[other], sub[second[ring_of[other]]])]
        out[rest] = np.bincount(ring_of[unlike], minlength=len(rest)) > 0
    return out


def totals(counts: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """`counts` rows summed per owner (n, 4): what was repaired in each of n objects."""
    out = np.zeros((n, counts.shape[1]), dtype=np.int64)
    np.add.at(out, owner, counts)
    return out


def describe(counts: np.ndarray) -> str | None:
    """The note for one object's repair counts, e.g. "closed 3 open rings"; None if none."""
    said = [
        phrase.format(k, "" if k == 1 else "s")
        for phrase, k in zip(_PHRASES, counts.tolist(), strict=False)
        if k
    ]
    return "; ".join(said) or None
