"""A batch's GML polygons built at once: coordinate text parsed in one pass, shapes by shapely.

A city model holds many thousands of polygons (solids are shells of polygons, reliefs are
triangles), so the reader only collects their coordinate text while a batch is read; here all
of it is parsed at once (in C by gml_walk where every number is a plain finite decimal, else
in one Arrow call, several times faster than numpy's text parsing) and the polygons built in
one shapely call from the arrays, after `rings.repair` has closed the rings that are open or closed
only within float noise and dropped the polygons (and interior rings) with fewer than three
distinct positions.
"""

from __future__ import annotations

from itertools import chain
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.connectors import rings
from citypipe.connectors.gml_compiled import compiled
from citypipe.connectors.ragged import offsets

__all__ = ["Built", "build", "coordinates", "multipolygons", "oriented", "parse", "xyz"]

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class Built(NamedTuple):
    """The polygons of a batch, by handle, and what became of them."""

    polygons: np.ndarray
    """shapely Polygons (with Z where the rings have it); None where a polygon cannot be built
    (its reason is in `reasons`) or was dropped by the repair (`repairs` column 3)."""
    reasons: dict[int, str]
    """Why the polygons that cannot be built cannot: {handle: reason}."""
    repairs: np.ndarray
    """What was repaired in each polygon (n, 4): `rings.repair` counts."""


def build(texts: list[str], dims: list[int], blank: list[int], ring_counts: list[int]) -> Built:
    """The polygons whose rings' coordinate `texts` (of srsDimension `dims`; `blank`: the rings
    without positions) were read, `ring_counts` rings each, repaired, as shapely Polygons."""
    n = len(ring_counts)
    if not n:
        return Built(np.empty(0, dtype=object), {}, np.zeros((0, 4), dtype=np.int64))
    values, numbers, finite, sizes = parse(texts, blank)
    ring_dims = np.asarray(dims, dtype=np.int64)
    positions = sizes // ring_dims
    counts = np.asarray(ring_counts, dtype=np.int64)
    fix = rings.repair(coordinates(values, sizes, ring_dims), positions, counts)
    owner = np.repeat(np.arange(n), counts)
    reasons: dict[int, str] = {}
    for mask, reason in (  # the first that applies is the polygon's reason
        (~numbers, "a ring with coordinates that are not numbers"),
        (~finite, "a ring with coordinates that are not finite (nan, inf, 1e309)"),
        (sizes % ring_dims != 0, "a ring whose coordinate count is not a multiple of srsDimension"),
    ):
        for ring in np.flatnonzero(mask).tolist():
            reasons.setdefault(int(owner[ring]), reason)
    good = fix.polygon_kept.copy()
    good[list(reasons)] = False
    flat = np.zeros(n, dtype=bool)  # a 2D ring makes a 2D polygon (NaN heights would not
    flat[owner[ring_dims < 3]] = True  # compare equal, and shapely would close rings again)
    kept_rings = np.bincount(owner[fix.ring_kept], minlength=n)
    polygons = np.full(n, None, dtype=object)
    for chosen, columns in ((good & ~flat, 3), (good & flat, 2)):
        if chosen.any():
            use = chosen[owner] & fix.ring_kept
            coords = fix.coords if use.all() else fix.coords[np.repeat(use, positions)]
            polygons[chosen] = _polygons(coords[:, :columns], positions[use], kept_rings[chosen])
    return Built(polygons, reasons, fix.counts)


def _polygons(coords: np.ndarray, positions: np.ndarray, rings: np.ndarray) -> np.ndarray:
    """Polygons of `rings` rings each, of `positions` of `coords` each, the rings left open
    closed: in one call from the arrays, where rings and then polygons each made in a call
    (shapely.linearrings, shapely.polygons) cost 3.5x as much (Melbourne's 256: 0.36 ms)."""
    shapes = np.ascontiguousarray(coords)  # a view of a 4D text's values, or of x, y alone
    ends = (offsets(positions), offsets(rings))
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, shapes, ends)


def parse(
    texts: list[str], blank: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every text's numbers in one array (bad ones 0), how many each text has, and per text
    whether all of them were numbers and all finite (`blank`: the texts without any).

    Parsed in C (gml_walk) where every number is a finite decimal, the common case; by Arrow
    otherwise, which tells each text's defects."""
    parsed = None if compiled is None else compiled.parse_numbers(texts, blank)
    if parsed is not None:
        values, sizes = parsed
        every = np.ones(len(sizes), dtype=bool)
        return values, every, every, sizes
    tokens, sizes = _tokens(texts, blank)
    return (*_floats(tokens, sizes), sizes)


def _tokens(texts: list[str], blank: list[int]) -> tuple[pa.Array, np.ndarray]:
    """Every ring's coordinate tokens in one array, and how many each ring has."""
    tokens = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(pa.array(texts)))
    flat_tokens, sizes = tokens.flatten(), np.diff(tokens.offsets.to_numpy())
    if blank:  # a blank text has no numbers: its tokens (one empty, or what Unicode calls
        # blank and ASCII does not, such as a no-break space) are dropped
        dropped = np.zeros(len(sizes), dtype=bool)
        dropped[np.asarray(blank, dtype=np.int64)] = True
        keep = ~np.repeat(dropped, sizes)
        flat_tokens, sizes[dropped] = flat_tokens.filter(pa.array(keep)), 0
    return flat_tokens, sizes


def _floats(tokens: pa.Array, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers, and per ring whether all of its tokens were numbers and all finite (not
    nan, inf or beyond the float range). Bad values are 0, so the ring repair can run on them."""
    every = np.ones(len(sizes), dtype=bool)
    try:
        values, numbers = pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False), every
    except pa.ArrowInvalid:
        numeric = pc.match_substring_regex(tokens, _NUMBER)
        values = pc.cast(pc.if_else(numeric, tokens, "0"), pa.float64()).to_numpy()
        numbers = ~_any_per_ring(~numeric.to_numpy(zero_copy_only=False), sizes)
    bad = ~np.isfinite(values)
    if not bad.any():
        return values, numbers, every
    return np.where(bad, 0.0, values), numbers, ~_any_per_ring(bad, sizes)


def _any_per_ring(mask: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per ring, whether `mask` holds for any of its values."""
    ring = np.repeat(np.arange(len(sizes)), sizes)
    return np.bincount(ring[mask], minlength=len(sizes)).astype(bool)


def coordinates(values: np.ndarray, sizes: np.ndarray, dims: np.ndarray) -> np.ndarray:
    """(n, 3) positions of all rings: in one reshape when all have the same srsDimension (z
    NaN for 2D), ring by ring otherwise."""
    dim = int(dims[0])
    if (dims == dim).all() and not (sizes % dim).any():
        return xyz(values.reshape(-1, dim))
    starts = np.cumsum(sizes) - sizes
    return np.concatenate(
        [
            xyz(values[s : s + n - n % d].reshape(-1, d))
            for s, n, d in zip(starts.tolist(), sizes.tolist(), dims.tolist(), strict=False)
        ]
    )


def xyz(positions: np.ndarray) -> np.ndarray:
    """Positions as x, y, z: the first three ordinates, z NaN for 2D."""
    if positions.shape[1] >= 3:
        return positions[:, :3]
    return np.column_stack([positions, np.full(len(positions), np.nan)])


def multipolygons(polygons: np.ndarray, handles: list[list[int]]) -> np.ndarray:
    """One MultiPolygon Z per list of handles (None for an empty list), in one shapely call."""
    counts = np.fromiter(map(len, handles), dtype=np.int64, count=len(handles))
    out = np.full(len(handles), None, dtype=object)
    if not counts.sum():
        return out
    flat = np.fromiter(chain.from_iterable(handles), dtype=np.int64, count=int(counts.sum()))
    parts = oriented(polygons, flat)
    shapely.multipolygons(parts, indices=np.repeat(np.arange(len(handles)), counts), out=out)
    return out


def oriented(polygons: np.ndarray, handles: np.ndarray) -> np.ndarray:
    """The polygons for `handles`, turned over where the handle says so (~i)."""
    turned = handles < 0
    parts = polygons[np.where(turned, ~handles, handles)]
    if turned.any():
        parts[turned] = shapely.reverse(parts[turned])
    return parts
