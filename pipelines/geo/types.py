"""The geo types every layer shares: axis order, the lon/lat CRS, 2D points as one array."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["CRS84", "AxisOrder", "Points"]

AxisOrder = Literal["xy", "authority"]
"""How coordinates are ordered: "xy" is easting/longitude first whatever the CRS says (GeoJSON,
WKT, GDAL's traditional GIS order); "authority" follows the CRS definition (EPSG:4326 is lat,
lon)."""

CRS84 = "OGC:CRS84"
"""Longitude, latitude on WGS 84: what GeoJSON, JSON-FG and GeoParquet mean when they declare
no CRS, and the `default_crs` of their batches."""


@dataclass(frozen=True)
class Points:
    """2D points as an (n, 2) array, a row per record, NaN where a record has none.

    The commonest city geometry, handed over without a shapely object per point: making,
    checking, encoding and freeing those cost a third of a small point source's ingest.
    """

    xy: np.ndarray

    def __len__(self) -> int:
        return len(self.xy)

    def __getitem__(self, index: Any) -> Points:
        return Points(self.xy[index])

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.xy).any(axis=1)
