"""Every CRS question, answered by pyproj: what a declaration means, and how to reach OGC:CRS84.

Sources spell CRSs in many ways (EPSG:n, URNs, OGC URIs, compound URNs); pyproj reads them
all. AdV URNs (urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH) are first translated to EPSG codes
through schemas/crs_aliases.yaml. What cannot be read is reported as it was written, never
guessed: a CRS defined inside a document (#local-CRS-1) included.

Axis order of a GML srsName, one rule (`axis_order`), as GML readers apply it:
- the OGC URN and URI forms (urn:ogc:def:crs:EPSG::4326, http(s)://www.opengis.net/def/crs/
  EPSG/0/4326, compound urn:ogc:def:crs,crs:...) follow the authority: latitude first for
  EPSG:4326, 4979, 6697, 6706, as pyproj's axis information says;
- AdV URNs follow the AdV registry, which writes projected systems easting first (even
  DHDN Gauss-Krueger, northing first in EPSG) and geographic ones latitude first;
- anything else, the short EPSG:n above all, is easting / longitude first, as GDAL reads it.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import yaml
from pyproj.exceptions import CRSError

import schemas
from connectors.base import AxisOrder
from connectors.errors import ConfigurationError

__all__ = ["CRS84", "axis_order", "is_lonlat", "label", "resolve", "to_crs84"]

CRS84 = pyproj.CRS.from_user_input("OGC:CRS84")
_SHARED_MIN = 10_000
"""Coordinate arrays from this size on are transformed position by distinct position."""

_ADV = re.compile(r"urn:adv:crs:(.+)", re.IGNORECASE)
_EPSG_LINK = re.compile(
    r"https?://(?:www\.)?(?:spatialreference\.org/ref/epsg/|epsg\.io/)(\d+)\b", re.IGNORECASE
)
"""Links that name their EPSG code (GeoJSON 2008 `link` CRSs): read, never fetched."""
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_AUTHORITY_FORMS = re.compile(
    r"(urn:ogc:def:crs[:,]|https?://www\.opengis\.net/def/crs/)", re.IGNORECASE
)


@cache
def _aliases() -> dict[str, Any]:
    with open(schemas.HERE / "crs_aliases.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _adv_epsg(declared: str, names: str) -> str:
    """`EPSG:h` or `EPSG:h+v` for the AdV names after `urn:adv:crs:`."""
    table = _aliases()["adv"]
    horizontal, *rest = names.split("*")
    heights = [n for n in rest if n not in table["quasigeoid"]]
    for name, known in [(horizontal, table["horizontal"]), *((h, table["height"]) for h in heights)]:
        if name not in known:
            raise ConfigurationError(
                f"unknown CRS {declared!r}: AdV name {name!r} is not in schemas/crs_aliases.yaml"
            )
    if len(heights) > 1:
        raise ConfigurationError(f"unknown CRS {declared!r}: more than one height system")
    codes = [table["horizontal"][horizontal], *(table["height"][h] for h in heights)]
    return "EPSG:" + "+".join(map(str, codes))


@lru_cache(maxsize=256)
def resolve(declared: str) -> pyproj.CRS:
    """The CRS a declaration names; ConfigurationError naming it when pyproj does not know it."""
    text = declared.strip()
    if text.startswith("#"):
        raise ConfigurationError(
            f"unknown CRS {declared!r}: a CRS defined inside the document (an engineering CRS), "
            "which cannot be placed on the earth without its anchor"
        )
    adv, link = _ADV.fullmatch(text), _EPSG_LINK.match(text)
    if link:
        text = f"EPSG:{link.group(1)}"
    elif _URL.match(text) and not _AUTHORITY_FORMS.match(text):
        raise ConfigurationError(
            f"unknown CRS {declared!r}: a link to a definition, which citypipe never fetches"
        )
    try:
        return pyproj.CRS.from_user_input(_adv_epsg(declared, adv.group(1)) if adv else text)
    except CRSError as e:
        raise ConfigurationError(f"unknown CRS {declared!r}") from e


def label(crs: pyproj.CRS) -> str:
    """Short name for a CRS, such as EPSG:25832, EPSG:25832+7837 or OGC:CRS84."""
    return _label(crs.srs)


@lru_cache(maxsize=256)
def _label(srs: str) -> str:
    """Remembered by the CRS's definition text: finding the authority of a compound CRS takes
    pyproj milliseconds, and a CRS object's own hash costs a WKT export every time."""
    crs = pyproj.CRS.from_user_input(srs)
    auth = crs.to_authority(min_confidence=90)
    if auth:
        return f"{auth[0]}:{auth[1]}"
    parts = [p.to_authority(min_confidence=90) for p in crs.sub_crs_list]
    if parts and all(p and p[0] == parts[0][0] for p in parts):
        return f"{parts[0][0]}:" + "+".join(p[1] for p in parts)
    return crs.name


def axis_order(declared: str) -> AxisOrder:
    """The order of the coordinates a GML geometry with srsName `declared` holds (see above)."""
    text = declared.strip()
    if _ADV.fullmatch(text):
        try:
            return "xy" if _horizontal(resolve(text)).is_projected else "authority"
        except ConfigurationError:
            return "xy"  # unknown: its records are rejected for the CRS, not for the order
    return "authority" if _AUTHORITY_FORMS.match(text) else "xy"


def _horizontal(crs: pyproj.CRS) -> pyproj.CRS:
    return crs.sub_crs_list[0] if crs.is_compound else crs


def is_lonlat(crs: pyproj.CRS, axis_order: AxisOrder) -> bool:
    """True when coordinates in `crs` read in `axis_order` are already OGC:CRS84 lon, lat."""
    return _is_lonlat(crs.srs, axis_order)


@lru_cache(maxsize=256)
def _is_lonlat(srs: str, axis_order: AxisOrder) -> bool:
    h = _horizontal(pyproj.CRS.from_user_input(srs))
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
def _transformer(srs: str, axis_order: AxisOrder) -> pyproj.Transformer:
    crs = _horizontal(pyproj.CRS.from_user_input(srs))
    return pyproj.Transformer.from_crs(crs, CRS84, always_xy=axis_order == "xy")


def to_crs84(crs: pyproj.CRS, axis_order: AxisOrder):  # -> Callable[[np.ndarray], np.ndarray]
    """A function for `shapely.transform`: coordinates in `crs` -> lon, lat (z passes through).

    Each distinct position is transformed once: the faces of a 3D model share their corners
    (three faces or more to a vertex, and the semantic surfaces repeat the solids' faces), and
    a datum shift costs PROJ far more than finding the repeats."""
    tr = _transformer(crs.srs, axis_order)

    def apply(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        if len(coords) < _SHARED_MIN:
            out[:, 0], out[:, 1] = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
            return out
        codes, positions = pd.factorize(coords[:, 0] + 1j * coords[:, 1], use_na_sentinel=False)
        x, y = tr.transform(positions.real, positions.imag, errcheck=False)
        out[:, 0], out[:, 1] = x[codes], y[codes]
        return out

    return apply
