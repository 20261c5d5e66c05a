"""Coordinate arrays taken to OGC:CRS84 by PROJ, each distinct position once.

The faces of a 3D model share their corners (three faces or more to a vertex, and the
semantic surfaces repeat the solids' faces: Den Haag's 119,000 corners are 11,000 positions),
and a datum shift costs PROJ far more than finding the repeats. Which transformation applies
is `crs.to_crs84`'s to say; this module only applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pyproj

# the distinct positions found in one hashed pass (pipelines/geo/positions.pyx), optional:
# where it did not build, pandas' factorize finds the same
try:
    from citypipe.geo import positions as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]

__all__ = ["Moved", "ToCrs84"]

_SHARED_MIN = 1_000
"""Coordinate arrays from this size on are transformed position by distinct position. A CityGML
tile of a few thousand positions shares most of them (Munich's 7,766: 819 distinct), and
Munich's datum shift (EPSG:31468+5783 -> CRS84) takes them in 0.34 ms found once each, 2.21
transformed each (1.9 ms of its 45 ms ingest). What the search costs: positions all distinct,
EPSG:25832 -> CRS84, 0.14 against 0.11 ms at 1,000, 0.40 against 0.34 at 3,000; PLATEAU's
4,239 (an axis swap) 0.07 against 0.03 (cg22, 2026-12-04)."""


class Moved(NamedTuple):
    """Positions taken to CRS84 (`ToCrs84.distinct`): each as read and where it went (k, 2),
    and the number of each row of the arrays they were found in among them."""

    read: np.ndarray
    moved: np.ndarray
    codes: np.ndarray


class ToCrs84:
    """Coordinates in a CRS -> lon, lat (z passes through): a function for `shapely.transform`,
    and the distinct positions moved (`distinct`) for a caller that reads each corner where
    its position went.

    One instance may be used from several threads: pyproj gives each thread a PROJ object of
    its own (`pyproj.Transformer`), made at its first use there."""

    __slots__ = ("_tr",)

    def __init__(self, tr: pyproj.Transformer) -> None:
        self._tr = tr

    def __eq__(self, other: object) -> bool:
        """The same transformation: the same pyproj object (`crs.to_crs84` keeps one a CRS)."""
        return isinstance(other, ToCrs84) and other._tr is self._tr

    def __hash__(self) -> int:
        return id(self._tr)

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        moved, codes = self.distinct(coords)[1:]
        out[:, 0], out[:, 1] = moved[codes, 0], moved[codes, 1]
        return out

    def distinct(
        self,
        *parts: np.ndarray,
        known: Moved | None = None,
        found: Callable[[], object] | None = None,
    ) -> Moved:
        """The distinct positions (x, y) of the coordinate arrays `parts`, one after another,
        and where they go in CRS84, each moved by PROJ once but those `known` (moved before:
        the corners of a batch's solids, of which its footprints' are), and the number of
        each row's among them (each row its own where they are too few to look for repeats
        and none are known): found as `pandas.factorize` finds them in x + iy
        (positions.pyx). `found` is called once they are found, as PROJ is about to move
        them."""
        given = [] if known is None else [known.read]
        codes, xy = _found([*given, *parts], known is not None)
        moved = np.empty_like(xy)
        if found is not None:
            found()
        if known is None:
            moved[:, 0], moved[:, 1] = self._tr.transform(xy[:, 0], xy[:, 1], errcheck=False)
            return Moved(xy, moved, codes)
        had = codes[: len(known.read)]
        moved[had] = known.moved
        new = np.ones(len(xy), dtype=bool)
        new[had] = False
        if new.any():
            x, y = xy[new, 0], xy[new, 1]
            moved[new, 0], moved[new, 1] = self._tr.transform(x, y, errcheck=False)
        return Moved(xy, moved, codes[len(had) :])


def _found(parts: list[np.ndarray], search: bool) -> tuple[np.ndarray, np.ndarray]:
    """The number of each row of `parts` among their distinct positions, and those positions
    (k, 2) (every row where they are too few to look for repeats, unless `search`)."""
    total = sum(map(len, parts))
    many = search or total >= _SHARED_MIN
    if many and compiled is not None and total < compiled.LIMIT:
        codes, first = compiled.distinct(parts)
        found = first[:, 0] + 1j * first[:, 1]  # the value pandas keeps of each
        return codes, found.view(np.float64).reshape(-1, 2)  # its real and imaginary parts
    coords = np.concatenate([p[:, :2] for p in parts])
    if not many:
        return np.arange(len(coords)), coords
    import pandas as pd  # here, not at load: 0.37 s that the compiled path never needs

    codes, found = pd.factorize(coords[:, 0] + 1j * coords[:, 1], use_na_sentinel=False)
    return codes, np.column_stack([found.real, found.imag])
