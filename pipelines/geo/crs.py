"""Every CRS question, answered by pyproj: what a declaration means, and how to reach OGC:CRS84.

Sources spell CRSs in many ways (EPSG:n, URNs, OGC URIs, compound URNs); pyproj reads them
all. AdV URNs (urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH) are first translated to EPSG codes
through schemas/crs_aliases.yaml. What cannot be read is reported as it was written, never
guessed: a CRS defined inside a document (#local-CRS-1) included.

A declaration comes from an input (a file, `--crs`, the catalog), so only definitions that make
PROJ open no file are handed to it: an authority code, a URN or OGC URI, an alias, WKT or
PROJJSON. A PROJ string (`+nadgrids=<path>`, `+init=<path>`, a pipeline) names files PROJ opens,
as do a WKT / PROJJSON's grid files, PROJ-based methods and embedded PROJ strings (EXTENSION,
"PROJ CRS string:" remarks): all refused with the reason. So is a CRS that places nothing on
the Earth's longitude/latitude: geocentric, vertical only, engineering, another body's.
PROJ's network stays off unless PROJ_NETWORK=ON: grids are only those installed.

Axis order of a GML srsName, one rule (`axis_order`), as GML readers apply it:
- the OGC URN and URI forms (urn:ogc:def:crs:EPSG::4326, urn:x-ogc:def:crs:EPSG:4326,
  urn:opengis:def:crs:EPSG::4326, GML 3.1's urn:EPSG:geographicCRS:4326,
  http(s)://www.opengis.net/def/crs/EPSG/0/4326, compound urn:ogc:def:crs,crs:...) follow the
  authority: latitude first for EPSG:4326, 4979, 6697, 6706, as pyproj's axis information says;
- AdV URNs follow the AdV registry, which writes projected systems easting first (even
  DHDN Gauss-Krueger, northing first in EPSG) and geographic ones latitude first;
- GML 2's http://www.opengis.net/gml/srs/epsg.xml#n is x/y (easting / longitude first) by
  definition;
- the short EPSG:n is as the document's convention says: easting / longitude first in CityGML
  (as GDAL reads it) and in WFS 1.0 / GML 2 responses (WFS 1.0.0 writes x/y); the CRS's own
  order in WFS 1.1 / 2.0 responses, which follow the authority whatever the spelling
  (MapServer labels latitude-first EPSG:4326 with the short form in WFS 1.1.0).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pyproj
import yaml
from pyproj.crs import CompoundCRS
from pyproj.exceptions import CRSError, ProjError

from citypipe import schemas
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.transform import ToCrs84
from citypipe.geo.types import AxisOrder

__all__ = [
    "CRS84", "axis_order", "compound_urn", "crs_3d", "is_lonlat", "label", "resolve", "to_crs84",
]  # fmt: skip

pyproj.network.set_network_enabled(os.environ.get("PROJ_NETWORK", "").upper() == "ON")

CRS84 = pyproj.CRS.from_user_input("OGC:CRS84")
CRS84H = pyproj.CRS.from_user_input("OGC:CRS84h")
_ADV = re.compile(r"urn:adv:crs:(.+)", re.IGNORECASE)
_EPSG_LINK = re.compile(
    r"https?://(?:www\.)?(?:spatialreference\.org/ref/epsg/|epsg\.io/|opengis\.net/gml/srs/epsg\.xml#)"
    r"(\d+)\b",
    re.IGNORECASE,
)
"""Links that name their EPSG code (GeoJSON 2008 `link` CRSs, GML 2's srsName): read, never
fetched."""
_GML2_SRS = re.compile(r"https?://www\.opengis\.net/gml/srs/epsg\.xml#", re.IGNORECASE)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_URN = r"urn:(?:(?:x-)?ogc:def:crs[:,]|opengis:(?:def:)?crs:)"
"""OGC's CRS URNs (OGC 07-092; GML 3.1's urn:x-ogc, the urn:opengis forms GDAL also reads)."""
_AUTHORITY_FORMS = re.compile(
    rf"({_URN}|https?://www\.opengis\.net/def/crs(/|-compound\?))", re.IGNORECASE
)
_EPSG_URN = re.compile(r"urn:(?:x-)?EPSG:\w*CRS:(\d+)", re.IGNORECASE)
"""GML 3.1 examples' urn:EPSG:geographicCRS:4326 (and projectedCRS ...): the EPSG code as an
OGC URN names it, in the authority's axis order."""
_WMS_CRS = re.compile(r"CRS:(84|83|27)", re.IGNORECASE)
"""WMS 1.3's identifiers of OGC's lon/lat CRSs (WMS 1.3 Annex B), which WFS capabilities and
GeoJSON `crs` members copy; PROJ knows them as OGC:CRS84, OGC:CRS83, OGC:CRS27."""
_COMPOUND_URI = re.compile(r"https?://www\.opengis\.net/def/crs-compound\?(.+)", re.IGNORECASE)
"""OGC's compound CRS URI (OGC API - Features Part 2, `?1=<CRS URI>&2=<CRS URI>`)."""
_OGC_CRS_URI = re.compile(
    r"https?://www\.opengis\.net/def/crs/(\w+)/[^/]*/([\w.-]+)", re.IGNORECASE
)
_NAMED = re.compile(
    r"[A-Za-z][\w-]*:[\w.-]+(\+[\w.-]+)*"  # EPSG:25832, OGC:CRS84, EPSG:25832+5783
    rf"|{_URN}[\w:.,-]+"
    r"|https?://www\.opengis\.net/def/crs/[\w.-]+/[\w.-]+/[\w.-]+",
    re.IGNORECASE,
)
"""Forms that name a CRS of PROJ's database, which PROJ reads without opening any other file."""
_WKT = re.compile(
    r"(GEOGCS|GEOCCS|PROJCS|VERT_CS|COMPD_CS|LOCAL_CS|GEODCRS|GEODETICCRS|GEOGCRS|GEOGRAPHICCRS"
    r"|PROJCRS|PROJECTEDCRS|VERTCRS|VERTICALCRS|COMPOUNDCRS|ENGCRS|ENGINEERINGCRS|BOUNDCRS"
    r"|DERIVEDPROJCRS|PARAMETRICCRS|TIMECRS)[ \t\n\r\f\v]*\[",
    re.IGNORECASE,
)
"""WKT, as PROJ recognises it: a first keyword, then `[` after C whitespace only."""
_PROJ_SYNTAX = re.compile(r"^\+|(^|\s)\+?(proj|init|title)=", re.IGNORECASE)
"""What makes pyproj or PROJ read text as a PROJ string (PROJ looks for ` +init=` anywhere,
even in text that starts as WKT but is not, or before an ` @ epoch`)."""
_EMBEDDED_PROJ = re.compile(r"\bEXTENSION\s*[\[(]|PROJ CRS string", re.IGNORECASE)
"""A PROJ string inside WKT or PROJJSON (GDAL's EXTENSION["PROJ4", ...], PROJ's own remark)."""
_PROJ_WORD = re.compile(r"\+?\w+=[^\s\"'\],]*")
_FILE_KEY = re.compile(r"\+?(init|\w*grids|file|proj=pipeline)\b")
"""PROJ string words that name files: +init=, +nadgrids=, +geoidgrids=, +grids=, +file=."""
_LONGEST = 65_536
"""Characters of the longest definition read: a compound, bound CRS's WKT takes a few thousand."""


@cache
def _aliases() -> dict[str, Any]:
    with open(schemas.HERE / "crs_aliases.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _adv_epsg(declared: str, names: str) -> str:
    """`EPSG:h` or `EPSG:h+v` for the AdV names after `urn:adv:crs:`."""
    table = _aliases()["adv"]
    horizontal, *rest = names.split("*")
    heights = [n for n in rest if n not in table["quasigeoid"]]
    for name, known in [
        (horizontal, table["horizontal"]),
        *((h, table["height"]) for h in heights),
    ]:
        if name not in known:
            raise ConfigurationError(
                f"unknown CRS {declared!r}: AdV name {name!r} is not in schemas/crs_aliases.yaml"
            )
    if len(heights) > 1:
        raise ConfigurationError(f"unknown CRS {declared!r}: more than one height system")
    codes = [table["horizontal"][horizontal], *(table["height"][h] for h in heights)]
    return "EPSG:" + "+".join(map(str, codes))


def _shown(declared: str) -> str:
    """A declaration as a message quotes it: on one line, and short (a WKT fills pages)."""
    text = " ".join(declared.split())
    return repr(text if len(text) <= 120 else text[:117] + "...")


@lru_cache(maxsize=256)
def resolve(declared: str) -> pyproj.CRS:
    """The CRS a declaration names; ConfigurationError naming it and the reason when it is not
    one citypipe reads (see above), pyproj does not know it, or it cannot reach
    longitude/latitude."""
    text = _ogc_urn(declared)
    if text.startswith("#"):
        raise ConfigurationError(
            f"unknown CRS {_shown(declared)}: a CRS defined inside the document (an engineering "
            "CRS), which cannot be placed on the earth without its anchor"
        )
    if compound := _COMPOUND_URI.fullmatch(text):
        text = _compound_urn(declared, compound.group(1))
    adv, link = _ADV.fullmatch(text), _EPSG_LINK.match(text)
    if link:
        text = f"EPSG:{link.group(1)}"
    elif _URL.match(text) and not _AUTHORITY_FORMS.match(text):
        raise ConfigurationError(
            f"unknown CRS {_shown(declared)}: a link to a definition, which citypipe never fetches"
        )
    why = _unsafe(text)
    if why:
        raise _refused(declared, why)
    try:
        crs = pyproj.CRS.from_user_input(_adv_epsg(declared, adv.group(1)) if adv else text)
        # a definition is looked at again as PROJ read it (its database names no input's files)
        defined = text.startswith("{") or _WKT.match(text)
        why = (_file_reference(crs.to_json_dict()) if defined else None) or _unplaceable(crs)
    except CRSError as e:
        raise ConfigurationError(f"unknown CRS {_shown(declared)}") from e
    if why:
        raise _refused(declared, why)
    return crs


def _ogc_urn(declared: str) -> str:
    """`declared` stripped, an urn:EPSG:<kind>CRS:<code> as the OGC URN of that code, WMS's
    CRS:84 (CRS:83, CRS:27) as OGC:CRS84."""
    text = declared.strip()
    if wms := _WMS_CRS.fullmatch(text):
        return f"OGC:CRS{wms.group(1)}"
    epsg = _EPSG_URN.fullmatch(text)
    return f"urn:ogc:def:crs:EPSG::{epsg.group(1)}" if epsg else text


def _compound_urn(declared: str, query: str) -> str:
    """The OGC URN of a compound CRS URI's parts, in their order (`1=`, `2=`)."""
    parts = [v for _, v in sorted((int(k), v) for k, v in parse_qsl(query) if k.isdigit())]
    urn = compound_urn(parts) if len(parts) >= 2 else None
    if urn is None:
        raise ConfigurationError(
            f"unknown CRS {_shown(declared)}: a compound CRS URI whose parts are not two or more "
            "OGC CRS URIs (http://www.opengis.net/def/crs/EPSG/0/n)"
        )
    return urn


def compound_urn(parts: Iterable[str]) -> str | None:
    """The OGC URN of the compound CRS of `parts` (each `EPSG:7837` or its OGC URI), in their
    order; None where one is neither."""
    given = list(parts)
    names = [name for p in given if (name := _urn_part(p))]
    return "urn:ogc:def:crs," + ",".join(names) if given and len(names) == len(given) else None


def _urn_part(crs: str) -> str | None:
    """`crs:EPSG::7837` for `EPSG:7837` or its OGC URI: a component of a compound URN."""
    uri = _OGC_CRS_URI.fullmatch(crs.strip())
    authority, _, code = (uri[1], "", uri[2]) if uri else crs.strip().partition(":")
    return f"crs:{authority}::{code}" if authority and code else None


def _refused(declared: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"CRS {_shown(declared)} refused: {why}")


_PROJ_OPENS = "which can make PROJ open the files it names (give EPSG:n, WKT or PROJJSON)"


def _unsafe(text: str) -> str | None:
    """Why PROJ must not read `text` at all: what it is, if not a form that opens no file."""
    if len(text) > _LONGEST:
        return f"a definition of {len(text)} characters, more than any CRS needs ({_LONGEST})"
    if _PROJ_SYNTAX.search(text):
        return f"a PROJ string ({_proj_words(text)}), {_PROJ_OPENS}"
    if text.startswith("{"):  # pyproj reads any JSON object with `proj` or `init` as PROJ text
        try:
            tree = json.loads(text)
        except ValueError:
            return "neither PROJJSON nor any other CRS definition"
        if not isinstance(tree, dict):
            return "JSON that is not PROJJSON"
        if "proj" in tree or "init" in tree:
            words = _proj_words(" ".join(f"+{k}={v}" for k, v in tree.items()))
            return f"a PROJ string as JSON ({words}), {_PROJ_OPENS}"
        return _file_reference(tree)
    if _WKT.match(text):
        found = _EMBEDDED_PROJ.search(text)
        if found:
            return f"a PROJ string in its WKT ({_proj_words(text[found.start() :])}), {_PROJ_OPENS}"
        return None
    if _NAMED.fullmatch(text) or _ADV.fullmatch(text):
        return None
    if _PROJ_WORD.search(text):
        return f"a PROJ string ({_proj_words(text)}), {_PROJ_OPENS}"
    return "not an authority code (EPSG:25832), URN, OGC URI, WKT or PROJJSON"


def _proj_words(text: str) -> str:
    """The `+key=value` words of a PROJ string that name files, else its first three."""
    words = _PROJ_WORD.findall(text)
    files = [w for w in words if _FILE_KEY.match(w)]
    return " ".join(files or words[:3])


def _file_reference(tree: Any) -> str | None:
    """What in a PROJJSON tree makes PROJ open a file: a parameter naming one (a grid), a
    PROJ-based method (its PROJ string names any), a PROJ string kept in the remarks."""
    for node in _nodes(tree):
        method = node.get("method")
        name = method.get("name") if isinstance(method, dict) else None
        if isinstance(name, str) and name.upper().startswith("PROJ "):
            return f"a PROJ-based method ({name!r}), {_PROJ_OPENS}"
        remarks = node.get("remarks")
        if isinstance(remarks, str) and _EMBEDDED_PROJ.search(remarks):
            return f"a PROJ string in its remarks ({_proj_words(remarks)}), {_PROJ_OPENS}"
        if isinstance(node.get("value"), str):  # only a parameter naming a file has text
            return f"the file {node['value']!r} ({node.get('name')}), {_PROJ_OPENS}"
    return None


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object of a JSON tree, depth first."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _unplaceable(crs: pyproj.CRS) -> str | None:
    """Why coordinates in `crs` have no longitude/latitude: what kind of CRS it is, or PROJ's
    reason (another celestial body); None for a geographic or projected CRS (compound or not)."""
    h = _horizontal(crs)
    h = h.source_crs if h.is_bound and h.source_crs else h
    if h.is_vertical:
        return (
            f"a vertical CRS ({h.name!r}): heights only, no horizontal position; a compound CRS "
            "names both (e.g. EPSG:25832+5783)"
        )
    if h.is_geocentric:
        return (
            f"a geocentric CRS ({h.name!r}): X, Y, Z from the Earth's centre, not positions on it"
        )
    if h.is_engineering:
        return f"an engineering CRS ({h.name!r}): a local one, not placed on the Earth"
    if not (h.is_geographic or h.is_projected):
        return f"a {h.type_name} ({h.name!r}), not a geographic or projected CRS"
    if _is_lonlat(crs.srs, "xy"):
        return None
    try:
        _transformer(crs.srs, "xy")
    except ProjError as e:
        body = re.search(r"celestial body \((.+?) vs Earth\)", str(e))
        if body:
            return f"a CRS of another celestial body ({body.group(1)}: {h.name!r})"
        return f"PROJ finds no way from it to longitude/latitude ({' '.join(str(e).split())})"
    return None


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


def spelled_in(wanted: str, offered: Iterable[str]) -> str | None:
    """The entry of `offered` (a service's CRS list) that names the same CRS as `wanted`, in
    whatever spelling pyproj reads; entries citypipe cannot read are passed over."""
    target = label(resolve(wanted))
    for spelling in offered:
        try:
            if label(resolve(spelling)) == target:
                return spelling
        except ConfigurationError:  # a CRS pyproj does not know (CUZK's ESRI codes)
            continue
    return None


def axis_order(declared: str, short: AxisOrder = "xy") -> AxisOrder:
    """The order of the coordinates a GML geometry with srsName `declared` holds (see above);
    `short` is the document's convention for the short EPSG:n form and any other spelling that
    does not name an order."""
    text = _ogc_urn(declared)
    if _ADV.fullmatch(text):
        try:
            return "xy" if _horizontal(resolve(text)).is_projected else "authority"
        except ConfigurationError:
            return "xy"  # unknown: its records are rejected for the CRS, not for the order
    if _AUTHORITY_FORMS.match(text):
        return "authority"
    return "xy" if _GML2_SRS.match(text) else short


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


def to_crs84(crs: pyproj.CRS, axis_order: AxisOrder) -> ToCrs84:
    """Coordinates in `crs`, read in `axis_order`, to OGC:CRS84 (`ToCrs84`)."""
    return ToCrs84(_transformer(crs.srs, axis_order))


def crs_3d(sources: Iterable[pyproj.CRS]) -> bytes | None:
    """The PROJJSON of `geometry_3d` for a source read in the CRSs `sources`: longitude and
    latitude (OGC:CRS84) with the heights as the source gives them, which harmonise never
    transforms. OGC:CRS84 compounded with the source's vertical CRS where it names one
    (EPSG:7415 = RD New + NAP height: OGC:CRS84 + NAP height); OGC:CRS84h where it is
    geographic 3D on WGS 84 (ellipsoidal heights). None where it names no height reference, or
    not one for the whole source."""
    found = {_crs_3d(c.srs) for c in sources}
    return found.pop() if len(found) == 1 else None


@lru_cache(maxsize=64)
def _crs_3d(srs: str) -> bytes | None:
    crs = pyproj.CRS.from_user_input(srs)
    if crs.is_compound and len(crs.sub_crs_list) == 2 and crs.sub_crs_list[1].is_vertical:
        vertical = crs.sub_crs_list[1]
        compound = CompoundCRS(f"{CRS84.name} + {vertical.name}", [CRS84, vertical])
        return orjson.dumps(compound.to_json_dict())
    if crs.is_geographic and len(crs.axis_info) == 3 and _is_lonlat(srs, "xy"):
        return orjson.dumps(CRS84H.to_json_dict())
    return None
