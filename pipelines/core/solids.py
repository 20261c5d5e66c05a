"""Measures of 3D city objects held as flat faces: heights, volumes and closed shells.

Connectors hand over 3D geometry as polygons with Z (the faces of a solid, the semantic
surfaces); everything here is vectorised over all faces of a batch: in compiled passes
(pipelines/geo/edges.pyx, newell.pyx) where they built, else with numpy. Areas and
volumes are only meaningful in metres, so the caller passes geometries in a projected CRS.

Which way a face looks (area, tilt, azimuth) is pipelines/core/orientation.py's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import shapely
from shapely import GeometryType

from citypipe.connectors.base import FlatFaces
from citypipe.connectors.ragged import offsets
from citypipe.geo import wkb_ragged

# the edges hashed in one pass (pipelines/geo/edges.pyx), optional: where it did not build,
# numpy does the same arithmetic in some twenty calls
try:
    from citypipe.geo import edges as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]
# Newell's vectors, and volumes with heights in one pass (pipelines/geo/newell.pyx), optional
# in the same way
try:
    from citypipe.geo import newell
except ImportError:
    newell = None  # type: ignore[assignment]
# some faces taken out in one pass over the positions (pipelines/geo/taken.pyx), optional too
try:
    from citypipe.geo import taken
except ImportError:
    taken = None  # type: ignore[assignment]

__all__ = [
    "Faces",
    "heights",
    "kinds",
    "mix",
    "of_types",
    "polygons_of",
    "position_hashes",
    "volumes",
    "volumes_and_faces",
]


def kinds(geometries: np.ndarray, faces: Faces) -> np.ndarray:
    """The shapely type id of each geometry, a MultiPolygon for one held as its `faces`
    alone (None in `geometries`: `Solids.faces`)."""
    out = shapely.get_type_id(geometries)
    unbuilt = (out == -1) & faces.owned(len(out))
    out[unbuilt] = GeometryType.MULTIPOLYGON
    return out


def of_types(type_ids: np.ndarray, *types: int) -> np.ndarray:
    """Which of `type_ids` (`shapely.get_type_id`'s) is one of `types`: a comparison each,
    where `np.isin` costs some 12 us a call on a small batch's few geometries."""
    out = type_ids == types[0]
    for t in types[1:]:
        out |= type_ids == t
    return out


def polygons_of(geometry: Any) -> np.ndarray:
    """The polygons of a geometry (its faces), as an array; empty when it has none."""
    if geometry is None or shapely.is_empty(geometry):
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(geometry)
    return parts[shapely.get_type_id(parts) == 3]


class Ragged(NamedTuple):
    """Polygons as `shapely.from_ragged_array` builds them: their positions, the offsets of
    their rings and of each polygon's first ring."""

    xy: np.ndarray
    rings: np.ndarray
    first: np.ndarray


class Faces(FlatFaces):
    """The polygons of an array of geometries as flat arrays, read once for every measure.

    Every face and ring that shapely hands out is a copy GEOS makes: faces without holes (most
    faces of city models) are read without asking for their rings, polygons without asking
    for their parts; a connector that built them from such arrays hands them on
    (`Solids.faces`).
    """

    __slots__ = ()

    @classmethod
    def of(cls, geometries: np.ndarray) -> Faces:
        geometries = np.asarray(geometries, dtype=object)
        if len(geometries) and (shapely.get_type_id(geometries) == 3).all():
            parts, owner = geometries, np.arange(len(geometries))
        else:
            parts, owner = shapely.get_parts(geometries, return_index=True)
            polygons = shapely.get_type_id(parts) == 3
            parts, owner = parts[polygons], owner[polygons]
        if not shapely.get_num_interior_rings(parts).any():  # a ring a face
            coords, face = shapely.get_coordinates(parts, include_z=True, return_index=True)
            return cls(coords, face, np.arange(len(parts)), owner)
        rings, polygon = shapely.get_rings(parts, return_index=True)
        coords, ring = shapely.get_coordinates(rings, include_z=True, return_index=True)
        return cls(coords, ring, polygon, owner)

    def _none(self) -> Faces:
        """No face, in this one's arrays' types."""
        return Faces(self.coords[:0], *[np.zeros(0, np.int64)] * 3)

    def take(self, rows: np.ndarray, renumber: bool = True) -> Faces:
        """The faces of the geometries `rows` (ascending, distinct indices) alone, as
        `Faces.of` reads them from `geometries[rows]` (`renumber`), or owned by the same
        numbers as here."""
        if not len(rows) and len(self.owner):  # none: no pass over the faces
            return self._none()
        if len(rows) and rows[-1] == len(rows) - 1 and self.owner[-1:].max(initial=-1) < len(rows):
            # every geometry from the first to the last face's owner (owners ascending),
            # taken in order: these faces, owned by the same numbers (a batch's objects all
            # placeable, all with Z, none with ground surfaces), told without a pass
            return self
        owner = np.full(int(max(self.owner.max(initial=-1), rows.max(initial=-1))) + 1, -1)
        owner[rows] = np.arange(len(rows)) if renumber else rows
        owners = owner[self.owner]
        face = owners >= 0
        if face.all() and np.array_equal(owners, self.owner):
            return self  # every face, owned by the same numbers (a batch's objects all taken)
        if not face.any():  # none (a batch without ground surfaces): no pass over the positions
            return self._none()
        if taken is not None:
            faces = face.view(np.uint8)
            picked = taken.taken(self.coords, _indices(self.ring), _indices(self.polygon), faces)
            return Faces(*picked, owners[face])
        ring = face[self.polygon]
        coord = ring[self.ring]
        face_at, ring_at = np.cumsum(face) - 1, np.cumsum(ring) - 1
        return Faces(
            np.compress(coord, self.coords, axis=0),  # 3-4x a 2D array's boolean index
            ring_at[self.ring[coord]],
            face_at[self.polygon[ring]],
            owners[face],
        )

    def starts(self, count: int) -> np.ndarray:
        """The number of each of `count` objects' first face: an object's face k is face
        `starts[object] + k` (`shapely.get_parts` order, where its geometry is polygons)."""
        return offsets(np.bincount(self.owner, minlength=count))[:-1]

    def pick(self, faces: np.ndarray) -> Faces:
        """The faces numbered `faces` (ascending), each owned by its place there: as
        `Faces.of` reads them from those faces' polygons."""
        return self._replace(owner=np.arange(len(self.owner))).take(faces)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the start of each edge (the next row is its end), and its face."""
        at = np.flatnonzero(self.ring[1:] == self.ring[:-1])
        return at, self.polygon[self.ring[at]]

    def edge_hashes(
        self, key: np.ndarray, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A 64-bit hash of each edge of some length of the faces `keep` picks (all where
        None), the same both ways round, its face, the row of its start, and whether it runs
        from the lower position's hash to the higher (which way round); `key` holds the bits
        of each position that tell positions apart (uint64 columns)."""
        if compiled is not None:
            picked = np.ones(len(self.owner), bool) if keep is None else keep
            ring, polygon = _indices(self.ring), _indices(self.polygon)
            return compiled.edge_hashes(key, ring, polygon, picked.view(np.uint8))
        vertex = position_hashes(key)
        at, face = self.edges()
        start, end = vertex[at], vertex[at + 1]
        moves = start != end
        if keep is not None:
            moves &= keep[face]
        at, face, start, end = at[moves], face[moves], start[moves], end[moves]
        return mix(start + end), face, at, start < end

    def area_vectors(self, axes: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
        """Newell's vector of each face (`orientation.area_vectors`), or the components `axes` of it
        (the plane's alone for a footprint)."""
        if newell is not None:
            ring, polygon = _indices(self.ring), _indices(self.polygon)
            return newell.area_vectors(self.coords, ring, polygon, len(self.owner), axes)
        out = np.zeros((len(self.owner), len(axes)))
        # every pair of consecutive rows, those of two rings weighing 0: the same sums, as
        # adding 0.0 leaves a sum as it is, without gathering the edges' rows first
        apart = self.ring[1:] != self.ring[:-1]
        face = self.polygon[self.ring[:-1]]
        xyz = np.nan_to_num(self.coords)
        for k, axis in enumerate(axes):
            a, b = xyz[:, (axis + 1) % 3], xyz[:, (axis + 2) % 3]
            term = (a[:-1] - a[1:]) * (b[:-1] + b[1:])
            term[apart] = 0.0
            out[:, k] = np.bincount(face, weights=term, minlength=len(out))
        return out

    def first(self) -> np.ndarray:
        """Each face's first position (its exterior ring's), 0 for an empty face."""
        out = np.zeros((len(self.owner), 3))
        face = self.polygon[self.ring]
        starts = np.flatnonzero(np.diff(face, prepend=-1))
        out[face[starts]] = np.nan_to_num(self.coords[starts])
        return out

    def ragged(
        self, select: np.ndarray, coords: np.ndarray, count: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The faces `select` picks as a multipolygon for each of `count` geometries, at
        `coords` (`self.coords`' rows, the columns wanted), as the arrays they are built of:
        the positions, and the offsets of the rings, faces and geometries
        (`shapely.from_ragged_array`'s)."""
        ragged, sizes, per_face = wkb_ragged.face_rings(coords, self.ring, self.polygon, select)
        per_geometry = np.bincount(self.owner[select], minlength=count)
        return ragged, (offsets(sizes), offsets(per_face), offsets(per_geometry))

    def shapes_2d(self, select: np.ndarray) -> tuple[np.ndarray, np.ndarray, Ragged | None]:
        """The faces `select` picks in 2D, for each geometry: its face where it has one (the
        polygon `shapely.get_geometry` takes out of a multipolygon of one, without building
        that), else a multipolygon; how many faces each has; and the arrays the faces of the
        geometries of one face are built of (None where none has one): their validity is
        told from those (`validity.is_valid_built`)."""
        count = int(self.owner.max(initial=-1)) + 1
        sizes = np.bincount(self.owner[select], minlength=count)
        out = np.full(count, None, dtype=object)  # none for a geometry without faces
        # the faces picked once (a pass over every position), then split between the geometries
        # of one face and those of several; rows picked out of the whole positions, x and y cut
        # from those (picking rows of a column view copies all of it first)
        ragged, ring_sizes, per_face = wkb_ragged.face_rings(
            self.coords, self.ring, self.polygon, select
        )
        several = (sizes > 1)[self.owner[select]]  # of each face picked
        single = None
        for multi in (False, True):
            chosen = sizes > 1 if multi else sizes == 1
            picked = several == multi
            if not picked.any():  # no geometry of the kind
                continue
            of_ring = np.repeat(picked, per_face)
            rows = ragged
            if not picked.all():
                rows = np.compress(np.repeat(of_ring, ring_sizes), ragged, axis=0)
            kind = GeometryType.MULTIPOLYGON if multi else GeometryType.POLYGON
            rings, faces = offsets(ring_sizes[of_ring]), offsets(per_face[picked])
            nesting = (rings, faces, offsets(sizes[chosen]))[: 2 + multi]
            xy = np.ascontiguousarray(rows[:, :2])
            out[chosen] = shapely.from_ragged_array(kind, xy, nesting)
            if not multi:
                single = Ragged(xy, rings, faces)
        return out, sizes, single

    def polygons(self, faces: np.ndarray, coords: np.ndarray) -> np.ndarray | pa.Array:
        """The faces numbered `faces` at `coords` (`self.coords`' rows), as `shapely.get_parts`
        of the geometries gives them: their WKB (`wkb_ragged`), or shapely polygons where GEOS
        is to write it. Each face is made once, in order, and handed out in the order asked
        (CityGML's semantic surfaces come in another order than their solid's)."""
        chosen, order = np.unique(faces, return_inverse=True)
        select = np.zeros(len(self.owner), dtype=bool)
        select[chosen] = True
        ragged, sizes, per_face = wkb_ragged.face_rings(coords, self.ring, self.polygon, select)
        nesting = (offsets(sizes), offsets(per_face))
        made = wkb_ragged.polygons_z(ragged, nesting)
        if made is None:
            made = np.asarray(shapely.from_ragged_array(GeometryType.POLYGON, ragged, nesting))
        if np.array_equal(chosen, faces):
            return made
        return made[order] if isinstance(made, np.ndarray) else made.take(pa.array(order))


def heights(
    geometries: np.ndarray,
    faces: Faces | None = None,
    of_faces: np.ndarray | None = None,
    types: np.ndarray | None = None,
) -> np.ndarray:
    """Top minus bottom of each geometry's Z, NaN where it has none; the polygons' from their
    `faces` where the caller holds them (`Faces.of`), the other geometries' read from GEOS.
    `of_faces`: those of the faces, where the caller has them (`volumes_and_faces`');
    `types`: the geometries' `kinds`, where the caller has them."""
    out = np.full(len(geometries), np.nan)
    rest = np.arange(len(geometries))
    if faces is not None:
        polygonal = of_types(kinds(geometries, faces) if types is None else types, 3, 6)
        if of_faces is not None:
            out = of_faces
        else:
            _extents(out, faces.coords[:, 2], faces.owner[faces.polygon[faces.ring]])
        rest = np.flatnonzero(~polygonal)
    coords, owner = shapely.get_coordinates(geometries[rest], include_z=True, return_index=True)
    _extents(out, coords[:, 2], rest[owner])
    return out


def _extents(out: np.ndarray, z: np.ndarray, owner: np.ndarray) -> None:
    """Top minus bottom of `z` into `out` for each owner (ascending), where it has a Z."""
    if not len(owner):
        return
    # each geometry's coordinates are consecutive: one reduction per run (NaN Z passed over)
    starts = np.flatnonzero(np.diff(owner, prepend=-1))
    top, bottom = np.fmax.reduceat(z, starts), np.fmin.reduceat(z, starts)
    has = np.isfinite(top)
    out[owner[starts[has]]] = (top[has] - bottom[has]) + 0.0  # +0 where top and bottom are 0


def volumes(geometries: np.ndarray) -> np.ndarray:
    """Volume (m³) of each geometry whose faces close a shell, NaN for the others."""
    return volumes_and_faces(geometries)[0]


def volumes_and_faces(
    geometries: np.ndarray, faces: Faces | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """`volumes`, Newell's vector of each face (each polygon of the geometries, in order):
    semantic surfaces that are those faces are measured from them without reading them again,
    and the faces' heights (`heights`' `of_faces`) where the compiled pass told them (None:
    numpy's path, where `heights` reads them).

    Divergence theorem: V = Σ N_f · p_f / 6 over the faces f, with N_f the area vector and p_f
    a vertex of f. A shell is closed when every edge is shared by an even number of faces.
    `faces` are the geometries' where the caller has read them (`Faces.of`).
    """
    out = np.full(len(geometries), np.nan)
    faces = Faces.of(geometries) if faces is None else faces
    if len(faces.owner) == 0:
        return out, np.zeros((0, 3)), None
    extents = None
    if newell is not None:  # the shells' closing and the heights told in the same pass
        ring, polygon, owner = map(_indices, (faces.ring, faces.polygon, faces.owner))
        vectors, total, closed, extents = newell.volumes(
            faces.coords, ring, polygon, owner, len(out)
        )
    else:
        vectors = faces.area_vectors()
        term = vectors * faces.first()
        # the dot product added in the order numpy's einsum adds it (and newell.pyx does)
        contribution = ((term[:, 0] + term[:, 2]) + term[:, 1]) / 6
        total = np.bincount(faces.owner, weights=contribution, minlength=len(geometries))
        closed = _closed(faces, len(geometries))
    out[closed] = np.abs(total[closed])
    return out, vectors, extents


_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def position_hashes(key: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of `key` (the bits of a position, uint64 columns)."""
    out = mix(key[:, 0])
    for c in range(1, key.shape[1]):
        out = mix(out ^ key[:, c])
    return out


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: 64 bits in, 64 well-mixed bits out (uint64, wrapping)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX[0]
    z = (z ^ (z >> np.uint64(27))) * _MIX[1]
    return z ^ (z >> np.uint64(31))


def _closed(faces: Faces, count: int) -> np.ndarray:
    """Which objects' faces share every edge an even number of times (mm precision).

    Each edge, direction aside, gets a 64-bit hash of its two positions; the edges of an object
    that pair up cancel out in the XOR of its hashes, so a closed shell XORs to 0 and an open
    one (an edge left odd) to anything but 0, bar a chance of 2⁻⁶⁴: one pass, no sort.
    A position written twice in a row (CityJSON rings that repeat a vertex, a gml:Ring whose
    curves meet) is an edge of no length, shared with no face: it does not open the shell.
    numpy's path: newell.volumes tells it in its pass over the positions, where it built.
    """
    key = np.round(np.nan_to_num(faces.coords) * 1000).astype(np.int64).view(np.uint64)
    edge, face, _, _ = faces.edge_hashes(key)
    obj = faces.owner[face]
    has_faces = np.bincount(faces.owner, minlength=count) > 0
    if not len(edge):
        return has_faces
    starts = np.flatnonzero(np.diff(obj, prepend=-1))  # objects in order: parts come so
    odd = np.zeros(count, dtype=bool)
    odd[obj[starts]] = np.bitwise_xor.reduceat(edge, starts) != 0
    return has_faces & ~odd


def _indices(rows: np.ndarray) -> np.ndarray:
    """`rows` as int64, the compiled kernels' index type (not copied where they are)."""
    return np.asarray(rows, dtype=np.int64)
