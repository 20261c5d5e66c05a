"""A WFS on 127.0.0.1 whose answers are computed from a real GetFeature response: Karlsruhe's
GeoServer layer of 693 disabled parking spaces (data/samples), served as GeoServer serves it
(capabilities of 2.0.0 or 1.1.0, resultType=hits, GeoJSON pages by STARTINDEX / COUNT, BBOX),
with the faults a test turns on: no paging, a cap on the features per answer, short pages,
STARTINDEX refused or ignored, a wrong numberMatched, GML only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from conftest import SAMPLES
from loopback import Answer, ScriptedServer

KARLSRUHE = json.loads(
    (SAMPLES / "karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson").read_bytes()
)
LAYER = "TBA:behinderten_parkplaetze"
PATH = "/geoserver/TBA/ows"
_NS = {
    "2.0.0": 'xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:ows="http://www.opengis.net/ows/1.1"',
    "1.1.0": 'xmlns:wfs="http://www.opengis.net/wfs" xmlns:ows="http://www.opengis.net/ows"',
}
_EXTENT = """<ows:WGS84BoundingBox><ows:LowerCorner>7.34 48.71</ows:LowerCorner>
<ows:UpperCorner>8.72 49.25</ows:UpperCorner></ows:WGS84BoundingBox>"""
"""Around the layer's points (7.3407 - 8.7188 E, 48.7192 - 49.2485 N)."""
_REPORT = (
    '<?xml version="1.0" encoding="UTF-8"?><ows:ExceptionReport version="2.0.0" '
    'xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception exceptionCode="{code}">'
    "<ows:ExceptionText>{text}</ows:ExceptionText></ows:Exception></ows:ExceptionReport>"
)


@dataclass
class FakeWFS(ScriptedServer):
    version: str = "2.0.0"
    paging: bool = True
    count_default: int | None = None
    silent_cap: bool = False
    """The count_default cap enforced without being stated in the capabilities."""
    cut_at: int | None = None
    """A GML answer to a request without STARTINDEX cut off after this many bytes."""
    capabilities_delay: float = 0.0
    """Seconds before the capabilities are answered."""
    formats: tuple[str, ...] = ("application/gml+xml; version=3.2", "application/json")
    short_at: set[int] = field(default_factory=set)
    refuse_startindex: bool = False
    ignore_startindex: bool = False
    matched_offset: int = 0
    extent: bool = True
    anonymous: bool = False
    """GeoJSON features without ids (MapServer's OGR output)."""
    unstable: bool = False
    """Pages cut from an order that changes between requests (no sort key)."""
    refuse_hits: bool = False
    """resultType=hits answered with an exception report."""
    unavailable_at: set[int] = field(default_factory=set)
    """STARTINDEX values answered 503, always."""
    features: list[Any] = field(default_factory=lambda: KARLSRUHE["features"])

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def endpoint(self) -> str:
        return self.url + PATH

    def _next(self, path: str, query: str) -> Answer:
        if path != PATH:
            return Answer(404, b"no such path")
        params = {k.upper(): v for k, v in parse_qsl(query)}
        if params.get("REQUEST") == "GetCapabilities":
            headers = {"Content-Type": "application/xml"}
            return Answer(200, self.capabilities(), headers, delay=self.capabilities_delay)
        chosen = self._in_box(params.get("BBOX"))
        if params.get("RESULTTYPE") == "hits":
            if self.refuse_hits:
                text = "resultType=hits is not supported"
                return Answer(400, _REPORT.format(code="OperationNotSupported", text=text).encode())
            return self._hits(len(chosen) + self.matched_offset)
        start = params.get("STARTINDEX")
        if start is not None and self.refuse_startindex:
            text = "Cannot do natural order without a primary key, please add it or specify"
            return Answer(400, _REPORT.format(code="NoApplicableCode", text=text).encode())
        if start is not None and int(start) in self.unavailable_at:
            return Answer(503, b"Service Unavailable")
        first = 0 if start is None or self.ignore_startindex else int(start)
        count = int(params.get("COUNT") or params.get("MAXFEATURES") or len(chosen))
        count = min(count, self.count_default or count)
        if first in self.short_at:
            count //= 2
        if self.unstable and start is not None:
            turn = 37 * len(self.requests) % max(len(chosen), 1)
            chosen = chosen[turn:] + chosen[:turn]
        page = chosen[first : first + count]
        if "json" not in params.get("OUTPUTFORMAT", "gml"):  # GML: the default of WFS
            matched = len(chosen) + self.matched_offset
            gml = self._gml(page, matched)
            if start is None and self.cut_at is not None:
                gml = gml[: self.cut_at]
            return Answer(200, gml, {"Content-Type": "text/xml"})
        if self.anonymous:
            page = [{k: v for k, v in f.items() if k != "id"} for f in page]
        body = {
            "type": "FeatureCollection",
            "features": page,
            "totalFeatures": len(chosen) + self.matched_offset,
            "numberMatched": len(chosen) + self.matched_offset,
            "numberReturned": len(page),
            "crs": KARLSRUHE["crs"],
        }
        return Answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _in_box(self, bbox: str | None) -> list[Any]:
        if not bbox:
            return self.features
        *values, crs = bbox.split(",")
        a, b, c, d = map(float, values)
        assert crs == "urn:ogc:def:crs:EPSG::4326", crs  # the layer's CRS, latitude first
        points = [(f, f["geometry"]["coordinates"]) for f in self.features]
        return [f for f, (lon, lat) in points if b <= lon <= d and a <= lat <= c]

    def _hits(self, n: int) -> Answer:
        counted = (
            f'numberMatched="{n}" numberReturned="0"'
            if self.version == "2.0.0"
            else (f'numberOfFeatures="{n}"')
        )
        body = f"<wfs:FeatureCollection {_NS[self.version]} {counted}/>"
        return Answer(200, body.encode(), {"Content-Type": "application/xml"})

    def _gml(self, page: list[Any], matched: int) -> bytes:
        """GML 3.2 (2.0.0) or 3.1.1 (1.1.0, srsName in MapServer's short form), latitude first
        as both versions write EPSG:4326."""
        v2 = self.version == "2.0.0"
        gml = "http://www.opengis.net/gml/3.2" if v2 else "http://www.opengis.net/gml"
        srs = "urn:ogc:def:crs:EPSG::4326" if v2 else "EPSG:4326"
        member = "wfs:member" if v2 else "gml:featureMember"
        counted = (
            f'numberMatched="{matched}" numberReturned="{len(page)}"'
            if v2
            else (f'numberOfFeatures="{len(page)}"')
        )
        members = "".join(
            f'<{member}><TBA:behinderten_parkplaetze gml:id="{f["id"]}"><TBA:geom>'
            f'<gml:Point srsName="{srs}"><gml:pos>{f["geometry"]["coordinates"][1]} '
            f"{f['geometry']['coordinates'][0]}</gml:pos></gml:Point></TBA:geom>"
            f"<TBA:stadtteil>{escape(f['properties']['stadtteil'] or '')}</TBA:stadtteil>"
            f"</TBA:behinderten_parkplaetze></{member}>"
            for f in page
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><wfs:FeatureCollection {_NS[self.version]} '
            f'xmlns:gml="{gml}" xmlns:TBA="https://mobil.trk.de/geoserver/TBA" {counted}>'
            f"{members}</wfs:FeatureCollection>"
        ).encode()

    def capabilities(self) -> bytes:
        v2 = self.version == "2.0.0"
        ows = "ows"
        constraints = ""
        if v2:
            paging = "TRUE" if self.paging else "FALSE"
            constraints = _constraint("ImplementsResultPaging", paging)
        if self.count_default and not self.silent_cap:  # as GeoServer / MapServer state it
            constraints += (
                _constraint("CountDefault", str(self.count_default))
                if v2
                else f'<ows:Constraint name="DefaultMaxFeatures"><ows:Value>'
                f"{self.count_default}</ows:Value></ows:Constraint>"
            )
        values = "".join(f"<{ows}:Value>{f}</{ows}:Value>" for f in self.formats)
        allowed = f"<{ows}:AllowedValues>{values}</{ows}:AllowedValues>" if v2 else values
        crs = "DefaultCRS" if v2 else "DefaultSRS"
        other = "OtherCRS" if v2 else "OtherSRS"
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<wfs:WFS_Capabilities version="{self.version}" {_NS[self.version]}
  xmlns:xlink="http://www.w3.org/1999/xlink">
<ows:ServiceIdentification><ows:Title>TBA Karlsruhe</ows:Title>
<ows:ServiceType>WFS</ows:ServiceType></ows:ServiceIdentification>
<ows:OperationsMetadata>
<ows:Operation name="GetFeature"><ows:DCP><ows:HTTP>
<ows:Get xlink:href="{self.endpoint}?"/></ows:HTTP></ows:DCP>
<ows:Parameter name="outputFormat">{allowed}</ows:Parameter></ows:Operation>
{constraints}
</ows:OperationsMetadata>
<wfs:FeatureTypeList><wfs:FeatureType>
<wfs:Name>{LAYER}</wfs:Name><wfs:Title>Behindertenparkplätze</wfs:Title>
<wfs:{crs}>urn:ogc:def:crs:EPSG::4326</wfs:{crs}><wfs:{other}>urn:ogc:def:crs:EPSG::25832</wfs:{other}>
{_EXTENT if self.extent else ""}
</wfs:FeatureType></wfs:FeatureTypeList></wfs:WFS_Capabilities>""".encode()


def _constraint(name: str, value: str) -> str:
    return (
        f'<ows:Constraint name="{name}"><ows:NoValues/>'
        f"<ows:DefaultValue>{value}</ows:DefaultValue></ows:Constraint>"
    )
