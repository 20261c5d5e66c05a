"""A batch's semantic surfaces held as columns: each surface's record, type and face.

A connector that builds its 3D geometries from flat arrays (CityJSON) knows each semantic
surface as one face of its record's geometry. Made into a shapely polygon and a (type,
polygon) pair each (16,209 on Den Haag's file), they would only be read back out of GEOS by
the footprints, the measures and CRS84, which take the same faces from the solids' arrays.
So the pipeline reads these columns, and the pairs are made only where a record's list is
asked for (`Solids.surfaces[i]`): the same lists, built on the first ask.

CityGML's connector makes them into columns once a batch (cut per CRS with `take`), and a
connector that hands lists has them made into columns once (`SurfaceColumns.of`), so that the
pipeline has one path: a surface that is no face of its record's geometry (CityGML's semantic
surfaces often are not) has the face -1 and keeps its polygon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any, overload

import numpy as np

__all__ = ["SurfaceColumns"]


class _Lazy(Sequence[Any]):
    """A sequence whose items are made by `make` on first use."""

    def __init__(self, count: int, make: Callable[[], list[Any]] | None = None) -> None:
        self._count, self._make = count, make
        self._items: list[Any] | None = None

    def _made(self) -> list[Any]:
        assert self._make is not None
        return self._make()

    def _all(self) -> list[Any]:
        if self._items is None:
            self._items = self._made()
        return self._items

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._all()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())


_COMPARED = 16
"""Up to this many types told apart by comparing the whole array with each (a batch has a few:
ground, roof, wall ...); more, each surface's looked up."""


class _Kinds:
    """The distinct semantic types of a batch's surfaces and each surface's number among them,
    found on first ask, once for the columns and those cut from them (`take`, `dropped`): the
    footprints ask for the grounds, the measures for the roofs (Den Haag's file: 16,209
    surfaces of three types, each a str of its own)."""

    __slots__ = ("_found", "_types")

    def __init__(self, types: np.ndarray) -> None:
        self._types = types
        self._found: tuple[list[str], np.ndarray] | None = None

    def found(self) -> tuple[list[str], np.ndarray]:
        """The names, in order of first appearance, and each surface's number among them."""
        if self._found is None:
            names = list(dict.fromkeys(self._types.tolist()))
            if len(names) <= _COMPARED:
                codes = np.zeros(len(self._types), np.int64)
                for k, name in enumerate(names[1:], 1):
                    codes[self._types == name] = k
            else:
                number = {name: k for k, name in enumerate(names)}
                codes = np.fromiter(map(number.__getitem__, self._types.tolist()), np.int64)
            self._found = names, codes
        return self._found


class SurfaceColumns(_Lazy):
    """Each record's semantic surfaces (a list of `pair(type, polygon)`, or None), as the
    columns they are read from: a sequence aligned with the records whose lists are made on
    first use, and the columns the pipeline reads instead."""

    def __init__(
        self,
        listed: np.ndarray,
        owner: np.ndarray,
        types: np.ndarray,
        face: np.ndarray,
        polygons: Callable[[], np.ndarray],
        pair: Callable[[tuple[str, Any]], Any],
    ) -> None:
        """`listed`: which records have a list (maybe empty); `owner`: the record of each
        surface, ascending; `types`: its semantic type (an object array of str); `face`: which
        polygon of its record's 3D geometry it is (in `shapely.get_parts` order); `polygons`:
        makes every surface's polygon, in order; `pair`: makes a surface of (type, polygon)."""
        super().__init__(len(listed))  # no bound method kept: no cycle for the GC to find
        self.listed, self.owner, self.types, self.face = listed, owner, types, face
        self._polygons, self._pair = polygons, pair
        self._kinds = _Kinds(types)
        self._rows: np.ndarray | None = None  # these surfaces' rows of the kinds' (all)

    @classmethod
    def of(
        cls,
        lists: Sequence[Sequence[tuple[str, Any]] | None],
        faces: Sequence[np.ndarray | None] | None,
        pair: Callable[[tuple[str, Any]], Any],
    ) -> SurfaceColumns:
        """The columns of each record's list of (type, polygon) surfaces (or None), `faces`
        saying which face of its record's geometry each is (`Solids.surface_faces`: None for
        a record or the batch where they are not faces, and its surfaces get the face -1)."""
        listed = np.fromiter((s is not None for s in lists), np.bool_, len(lists))
        counts = np.fromiter((len(s) if s else 0 for s in lists), np.int64, len(lists))
        flat = list(chain.from_iterable(s for s in lists if s))
        types, shapes = np.empty(len(flat), dtype=object), np.empty(len(flat), dtype=object)
        if flat:
            types[:], shapes[:] = zip(*flat, strict=True)
        face = np.full(len(flat), -1, dtype=np.int64)
        if faces is not None and flat:
            face = np.concatenate(
                [
                    f if f is not None and len(f) == k else np.full(k, -1)
                    for f, k in zip(faces, counts.tolist(), strict=True)
                    if k
                ]
            ).astype(np.int64, copy=False)
        owner = np.repeat(np.arange(len(lists)), counts)
        return cls(listed, owner, types, face, lambda: shapes, pair)

    def named(self, word: str) -> np.ndarray:
        """Which surfaces' types name `word` ("Ground", "Roof")."""
        names, codes = self._kinds.found()
        which = np.array([word in name for name in names], dtype=bool)
        return which[codes if self._rows is None else codes[self._rows]]

    def polygons(self) -> np.ndarray:
        """Every surface's polygon, in order: made on each call where they are made from the
        faces' arrays (the columns keep none), else as the connector made them."""
        return self._polygons()

    def _made(self) -> list[Any]:
        out: list[Any] = [[] if k else None for k in self.listed.tolist()]
        pairs = map(self._pair, zip(self.types.tolist(), self.polygons(), strict=True))
        for i, surface in zip(self.owner.tolist(), pairs, strict=True):
            out[i].append(surface)
        return out

    def record_faces(self) -> Sequence[np.ndarray | None]:
        """Which face of its record's geometry each of a record's surfaces is (None where
        the record has no list): `Solids.surface_faces`."""

        def make() -> list[np.ndarray | None]:
            ends = np.cumsum(np.bincount(self.owner, minlength=len(self)))
            split = np.split(self.face, ends[:-1])
            return [f if k else None for f, k in zip(split, self.listed.tolist(), strict=True)]

        return _Lazy(len(self), make)

    def take(self, rows: np.ndarray) -> SurfaceColumns:
        """The surfaces of the records `rows` (ascending), numbered by their place in it."""
        place = np.full(len(self), -1)
        place[rows] = np.arange(len(rows))
        kept = place[self.owner] >= 0
        return self._subset(self.listed[rows], place[self.owner[kept]], kept)

    def dropped(self, rows: Sequence[int]) -> SurfaceColumns:
        """These columns without the surfaces of the records `rows` (which have none now)."""
        listed = self.listed.copy()
        listed[list(rows)] = False
        kept = listed[self.owner]
        return self._subset(listed, self.owner[kept], kept)

    def _subset(self, listed: np.ndarray, owner: np.ndarray, kept: np.ndarray) -> SurfaceColumns:
        polygons = self._polygons
        out = SurfaceColumns(
            listed,
            owner,
            self.types[kept],
            self.face[kept],
            lambda: polygons()[kept],
            self._pair,
        )
        rows = np.flatnonzero(kept)
        out._kinds, out._rows = self._kinds, rows if self._rows is None else self._rows[rows]
        return out
