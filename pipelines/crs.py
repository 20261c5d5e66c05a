"""Every CRS question, answered by pyproj: what a declaration means, and how to reach OGC:CRS84.

Sources spell CRSs in many ways (EPSG:n, URNs, OGC URIs, compound URNs); pyproj reads them
all. What it cannot read is reported as it was written, never guessed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyproj
from pyproj.exceptions import CRSError

from connectors.base import AxisOrder
from connectors.errors import ConfigurationError

__all__ = ["CRS84", "resolve", "label", "is_lonlat", "to_crs84"]

CRS84 = pyproj.CRS.from_user_input("OGC:CRS84")


@lru_cache(maxsize=256)
def resolve(declared: str) -> pyproj.CRS:
    """The CRS a declaration names; ConfigurationError naming it when pyproj does not know it."""
    try:
        return pyproj.CRS.from_user_input(declared.strip())
    except CRSError as e:
        raise ConfigurationError(f"unknown CRS {declared!r}") from e


def label(crs: pyproj.CRS) -> str:
    """Short name for a CRS, such as EPSG:25832 or OGC:CRS84."""
    auth = crs.to_authority(min_confidence=90)
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def _horizontal(crs: pyproj.CRS) -> pyproj.CRS:
    return crs.sub_crs_list[0] if crs.is_compound else crs


def is_lonlat(crs: pyproj.CRS, axis_order: AxisOrder) -> bool:
    """True when coordinates in `crs` read in `axis_order` are already OGC:CRS84 lon, lat."""
    h = _horizontal(crs)
    if not h.is_geographic or not h.datum or not CRS84.datum:
        return False
    same_datum = h.datum.name in ("World Geodetic System 1984", CRS84.datum.name) or (
        h.datum == CRS84.datum
    )
    if not same_datum:
        return False
    if axis_order == "xy":
        return True
    return [a.direction for a in h.axis_info[:2]] == ["east", "north"]


@lru_cache(maxsize=256)
def _transformer(crs: pyproj.CRS, axis_order: AxisOrder) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_horizontal(crs), CRS84, always_xy=axis_order == "xy")


def to_crs84(crs: pyproj.CRS, axis_order: AxisOrder):  # -> Callable[[np.ndarray], np.ndarray]
    """A function for `shapely.transform`: coordinates in `crs` -> lon, lat (z passes through)."""
    tr = _transformer(crs, axis_order)

    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
        out = coords.copy()
        out[:, 0], out[:, 1] = x, y
        return out

    return apply
