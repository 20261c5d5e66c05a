"""What every GetFeature of one harvest asks: the feature type, the output format, the CRS, the
filter, and the box, in the KVP names of the version spoken.

GeoJSON is asked for where the server offers it (it is read without building an XML tree,
and is longitude / easting first whatever its `crs` member says: the GeoJSON reader's rule),
else GML (3.2 from a WFS 2.0, 3.1.1 from a 1.1, 2 from a 1.0), and GML too where the GeoJSON
features come without ids (MapServer's OGR output): ids keep a feature's identity from run to
run and tell the features on two tiles' edges apart. A box is sent in the request's CRS, as
pyproj transforms it from OGC:CRS84, in that CRS's own axis order and labelled with its URN,
the one spelling whose axis order no server reads otherwise (MapServer reads a short
`EPSG:4326` in a WFS 1.1 request latitude first, GDAL longitude first). WFS 1.0 has neither
SRSNAME nor a CRS in its BBOX: the answer is in the feature type's one SRS, and the box is sent
in it, x/y (longitude first for EPSG:4326, as WFS 1.0 writes it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyproj

from citypipe.connectors.base import LayerInfo, Query
from citypipe.connectors.wfs_capabilities import Capabilities
from citypipe.geo import crs as crslib
from citypipe.geo.errors import ConfigurationError

__all__ = ["GetFeature", "output_format"]

Box = tuple[float, float, float, float]

_GEOJSON = (
    "application/geo+json",
    "application/json; subtype=geojson",
    "application/json;subtype=geojson",
    "application/json",
    "geojson",
    "json",
)
"""GeoJSON output formats, the most specific first (ArcGIS says GEOJSON, MapServer's OGR
output names what its mapfile names, GeoServer application/json)."""
_GML = {
    "2.0": ("application/gml+xml; version=3.2", "text/xml; subtype=gml/3.2", "gml32"),
    "1.1": ("text/xml; subtype=gml/3.1.1", "gml3", "application/gml+xml; version=3.1"),
    "1.0": ("gml2",),
}


def output_format(
    formats: tuple[str, ...], version: str, geojson: bool = True
) -> tuple[str | None, bool]:
    """The output format to ask for, and whether it is GeoJSON (`geojson` False: GML only);
    None: the version's default (GML 3.2 for 2.0.0, GML 3.1.1 for 1.1.0, GML 2 for 1.0.0)."""
    lowered = {" ".join(f.lower().split()): f for f in formats}
    for wanted in _GEOJSON if geojson else ():
        if wanted in lowered:
            return lowered[wanted], True
    for wanted in _GML[version[:3]]:
        if wanted in lowered:
            return lowered[wanted], False
    return None, False


@dataclass(frozen=True)
class GetFeature:
    """The parts every request of a harvest shares."""

    caps: Capabilities
    layer: LayerInfo
    srs_name: str | None
    output: str | None
    geojson: bool
    filter_xml: str | None
    page_size: int
    whole: bool = False
    """WFS 1.1 without a page size asked for: the layer is asked for in one request first
    (wfs_whole), paged from where it stops."""

    @classmethod
    def plan(cls, caps: Capabilities, layer: LayerInfo, query: Query, filter_xml: str | None):
        """The harvest's requests for `query` on `layer`."""
        output, geojson = output_format(layer.formats, caps.version)
        size = query.page_size or caps.count_default or 1000
        if caps.count_default:
            size = min(size, caps.count_default)
        whole = not caps.version.startswith("2") and not query.page_size
        srs_name = _srs_name(layer, query.crs, wfs10=caps.version == "1.0.0")
        return cls(caps, layer, srs_name, output, geojson, filter_xml, size, whole)

    def as_gml(self) -> GetFeature:
        """The same requests, answered in GML (whose features have ids)."""
        output, _ = output_format(self.layer.formats, self.caps.version, geojson=False)
        return replace(self, output=output, geojson=False)

    @property
    def version2(self) -> bool:
        return self.caps.version.startswith("2")

    @property
    def wfs10(self) -> bool:
        """WFS 1.0: no SRSNAME (the answer is in the feature type's SRS), a BBOX without its
        CRS, x/y."""
        return self.caps.version == "1.0.0"

    def params(
        self, *, hits: bool = False, start: int | None = None, box: Box | None = None
    ) -> dict[str, str]:
        """The KVP parameters of one GetFeature (`hits`: resultType=hits); `box` in CRS84."""
        v2 = self.version2
        out = {
            "SERVICE": "WFS",
            "VERSION": self.caps.version,
            "REQUEST": "GetFeature",
            "TYPENAMES" if v2 else "TYPENAME": self.layer.name,
        }
        if hits:  # a count, whatever the CRS: MapServer 8.0 counts 0 in a CRS not its own
            out["RESULTTYPE"] = "hits"
        else:
            if self.srs_name and not self.wfs10:  # 1.0: the feature type's one <SRS>, unasked
                out["SRSNAME"] = self.srs_name
            out["COUNT" if v2 else "MAXFEATURES"] = str(self.page_size)
            if self.output:
                out["OUTPUTFORMAT"] = self.output
            if start is not None:
                out["STARTINDEX"] = str(start)
        if box is not None:
            out["BBOX"] = self.bbox(box)
        elif self.filter_xml:
            out["FILTER"] = self.filter_xml
        return out

    def bbox(self, box: Box) -> str:
        """A CRS84 box as a BBOX value: in the request's CRS, its axis order, its URN; in WFS
        1.0, which names no CRS in a BBOX, in the feature type's SRS, x/y (longitude first)."""
        target = crslib.resolve(self.srs_name) if self.srs_name else crslib.CRS84
        return _bbox_value(box, target, named=not self.wfs10)


def _bbox_value(box: Box, target: pyproj.CRS, named: bool) -> str:
    """`box` in `target`: in its own axis order and with its URN where `named`, else x/y."""
    xmin, ymin, xmax, ymax = box
    if not crslib.is_lonlat(target, "xy"):  # WGS 84 longitude / latitude needs no transform
        to = pyproj.Transformer.from_crs(crslib.CRS84, target, always_xy=True)
        xmin, ymin, xmax, ymax = to.transform_bounds(xmin, ymin, xmax, ymax, densify_pts=21)
    if not named:
        return ",".join(f"{v:.10g}" for v in (xmin, ymin, xmax, ymax))
    north_first = target.axis_info[0].direction in ("north", "south")
    values = (ymin, xmin, ymax, xmax) if north_first else (xmin, ymin, xmax, ymax)
    return ",".join(f"{v:.10g}" for v in values) + "," + _urn(target)


def _urn(crs: pyproj.CRS) -> str:
    authority = crs.to_authority(min_confidence=90)
    if authority is None:
        raise ConfigurationError(f"{crs.name}: no authority code to name it in a BBOX")
    name, code = authority
    return (
        "urn:ogc:def:crs:OGC:1.3:CRS84"
        if (name, code) == ("OGC", "CRS84")
        else (f"urn:ogc:def:crs:{name}::{code}")
    )


def _srs_name(layer: LayerInfo, wanted: str | None, wfs10: bool) -> str | None:
    """The server's spelling of the CRS asked for (`--crs`, one the layer lists), else its
    default CRS. WFS 1.0 cannot ask for a CRS (MapServer ignores SRSNAME there): any `--crs`
    pyproj reads is answered in the feature type's one SRS, which the answer's srsName
    declares and harmonise transforms to the lake's OGC:CRS84 as it would the CRS asked for."""
    if wanted is None:
        return layer.crs[0] if layer.crs else None
    offered = crslib.spelled_in(wanted, layer.crs)
    if offered is not None:
        return offered
    if wfs10 and layer.crs:
        return layer.crs[0]
    offered_list = ", ".join(layer.crs) or "none"
    raise ConfigurationError(
        f"--crs {wanted}: feature type {layer.name} is not offered in it (offered: {offered_list})"
    )
