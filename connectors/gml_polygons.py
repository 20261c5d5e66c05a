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

from collections.abc import Callable
from functools import cached_property
from itertools import chain
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.connectors import rings
from citypipe.connectors.base import FlatFaces
from citypipe.connectors.gml_compiled import compiled
from citypipe.connectors.ragged import offsets

__all__ = [
    "Arrays", "Built", "build", "coordinates", "faces", "flattened", "multipolygons", "oriented",
    "parse", "xyz",
]  # fmt: skip

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class Arrays(NamedTuple):
    """Polygons as the arrays they are built of: positions (x, y, z), the offsets of the
    rings in them and of each polygon's first ring (`shapely.from_ragged_array`'s)."""

    coords: np.ndarray
    rings: np.ndarray
    first: np.ndarray


class Built:
    """The polygons of a batch, by handle, and what became of them; the shapely polygons made
    when first asked for (a batch whose geometries and surfaces are handed on as their faces'
    arrays asks for none: NRW's 2,401 0.64 ms, Melbourne's 249 0.08)."""

    def __init__(
        self,
        reasons: dict[int, str],
        repairs: np.ndarray,
        kept: np.ndarray,
        arrays: Arrays | None,
        make: Callable[[], np.ndarray],
    ) -> None:
        self.reasons = reasons
        """Why the polygons that cannot be built cannot: {handle: reason}."""
        self.repairs = repairs
        """What was repaired in each polygon (n, 4): `rings.repair` counts."""
        self.kept = kept
        """Which polygons are built: not those in `reasons`, nor those the repair dropped."""
        self.arrays = arrays
        """The arrays the polygons are built of, where each is exactly as GEOS holds it: every
        polygon built, with Z, no ring left open (None otherwise)."""
        self._make: Callable[[], np.ndarray] | None = make

    @cached_property
    def polygons(self) -> np.ndarray:
        """shapely Polygons (with Z where the rings have it); None where a polygon cannot be
        built (its reason is in `reasons`) or was dropped by the repair (`repairs` column 3)."""
        assert self._make is not None
        made, self._make = self._make(), None  # what it holds let go
        return made


def build(texts: list[str], dims: list[int], blank: list[int], ring_counts: list[int]) -> Built:
    """The polygons whose rings' coordinate `texts` (of srsDimension `dims`; `blank`: the rings
    without positions) were read, `ring_counts` rings each, repaired, as shapely Polygons."""
    n = len(ring_counts)
    if not n:
        none = np.empty(0, dtype=object)
        return Built({}, np.zeros((0, 4), dtype=np.int64), none.astype(bool), None, lambda: none)
    values, numbers, finite, sizes = parse(texts, blank)
    ring_dims = np.asarray(dims, dtype=np.int64)
    positions = sizes // ring_dims
    counts = np.asarray(ring_counts, dtype=np.int64)
    fix = _repaired(coordinates(values, sizes, ring_dims), positions, counts)
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

    def of(chosen: np.ndarray) -> Arrays:
        """The arrays of the polygons `chosen` (built ones)."""
        use = chosen[owner] & fix.ring_kept
        coords = fix.coords if use.all() else fix.coords[np.repeat(use, positions)]
        return Arrays(coords, offsets(positions[use]), offsets(kept_rings[chosen]))

    def polygons() -> np.ndarray:
        out = np.full(n, None, dtype=object)
        for chosen, columns in ((good & ~flat, 3), (good & flat, 2)):
            if chosen.any():
                out[chosen] = _polygons(of(chosen), columns)
        return out

    arrays = None
    if good.any() and not reasons and not flat.any() and not fix.counts[:, 1].any():
        arrays = of(good)._replace(first=offsets(kept_rings))  # every polygon, by handle
    return Built(reasons, fix.counts, good, arrays, polygons)


def _repaired(coords: np.ndarray, positions: np.ndarray, counts: np.ndarray) -> rings.Repair:
    """`rings.repair` of the rings, in one compiled pass where gml_walk built (gml_rings.pxi):
    its numpy passes cost Melbourne's batch 0.19 ms inside an ingest, a 15 kB file's 0.12."""
    if compiled is None:
        return rings.repair(coords, positions, counts)
    return rings.Repair(*compiled.repair_rings(coords, positions, counts))


def _polygons(arrays: Arrays, columns: int) -> np.ndarray:
    """Polygons of the `arrays`' first `columns` ordinates, the rings left open closed: in one
    call from the arrays, where rings and then polygons each made in a call
    (shapely.linearrings, shapely.polygons) cost 3.5x as much (Melbourne's 256: 0.36 ms)."""
    shapes = np.ascontiguousarray(arrays.coords[:, :columns])  # of a 4D text's values, or x, y
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, shapes, arrays[1:])


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


def flattened(handles: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The length of each list of `handles` and the handles one after another (int64): in one
    compiled pass where gml_walk built (gml_handles.pxi)."""
    if compiled is not None:
        return compiled.flattened(handles)
    counts = np.fromiter(map(len, handles), dtype=np.int64, count=len(handles))
    flat = np.fromiter(chain.from_iterable(handles), dtype=np.int64, count=int(counts.sum()))
    return counts, flat


def multipolygons(polygons: np.ndarray, handles: list[list[int]]) -> np.ndarray:
    """One MultiPolygon Z per list of handles (None for an empty list), in one shapely call."""
    counts, flat = flattened(handles)
    out = np.full(len(handles), None, dtype=object)
    if not len(flat):
        return out
    parts = oriented(polygons, flat)
    shapely.multipolygons(parts, indices=np.repeat(np.arange(len(handles)), counts), out=out)
    return out


def faces(arrays: Arrays, handles: list[list[int]]) -> FlatFaces:
    """The faces of `multipolygons(polygons, handles)` as flat arrays, exactly as
    `solids.Faces.of` reads them out of GEOS: each polygon's positions taken from the
    `arrays` it was built of (as they are where every polygon is used once, in order), its
    rings' run reversed where its handle is turned over (~i, as `shapely.reverse` turns each
    ring); gathered in one compiled pass where gml_walk built (gml_gather.pxi)."""
    counts, flat = flattened(handles)
    owner = np.repeat(np.arange(len(handles)), counts)
    first, ends = arrays.first, arrays.rings
    if len(flat) == len(first) - 1 and (flat == np.arange(len(flat))).all():
        coords, per_face, sizes = np.ascontiguousarray(arrays.coords), np.diff(first), np.diff(ends)
    elif compiled is not None:
        return FlatFaces(*compiled.gather_faces(arrays.coords, flat, first, ends), owner)
    else:
        turned = flat < 0
        polygon = np.where(turned, ~flat, flat)
        per_face = first[polygon + 1] - first[polygon]
        ring = _runs(first[polygon], per_face)  # the rings, face by face
        starts, stops = ends[ring], ends[ring + 1]
        sizes = stops - starts
        if turned.any():
            turned = np.repeat(turned, per_face)
            step = np.repeat(np.where(turned, -1, 1), sizes)
            rows = _runs(np.where(turned, stops - 1, starts), sizes, step)
        else:
            rows = _runs(starts, sizes)
        coords = arrays.coords[rows]
    return FlatFaces(
        coords,
        np.repeat(np.arange(len(sizes)), sizes),
        np.repeat(np.arange(len(per_face)), per_face),
        owner,
    )


def _runs(starts: np.ndarray, sizes: np.ndarray, step: np.ndarray | int = 1) -> np.ndarray:
    """Runs of `sizes` numbers from each of `starts`, by `step` (a run's, or one for all)."""
    within = np.arange(int(sizes.sum())) - np.repeat(offsets(sizes)[:-1], sizes)
    return np.repeat(starts, sizes) + step * within


def oriented(polygons: np.ndarray, handles: np.ndarray) -> np.ndarray:
    """The polygons for `handles`, turned over where the handle says so (~i)."""
    turned = handles < 0
    parts = polygons[np.where(turned, ~handles, handles)]
    if turned.any():
        parts[turned] = shapely.reverse(parts[turned])
    return parts
