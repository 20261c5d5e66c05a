"""A WFS's GetCapabilities, read once: the version spoken, the feature types (titles, CRSs,
output formats, extents), whether it pages and how many features it gives at most.

The document is fetched through the shared HTTP client and parsed with the project's safe
parser settings (xml_safety); OWSLib then reads the feature types from it, as it does for a
saved capabilities document (service_documents; its `xml=` argument: OWSLib fetches nothing).
The version is negotiated as WFS 2.0 prescribes, ACCEPTVERSIONS=2.0.0,1.1.0 (the server
answers in the highest it speaks); a server that ignores it and answers 1.0.0 is asked for
VERSION=1.1.0 once, and harvested in 1.0.0 where it answers 1.0.0 again (a server that speaks
only 1.0.0). A VERSION in the URL is the user's choice and is asked for as it is.
Paging is what WFS 2.0 declares (ImplementsResultPaging); in 1.1 and 1.0 STARTINDEX is a
vendor extension (MapServer, GeoServer) that the harvest tries and checks. WFS 1.0 has no
count either (no resultType=hits, no numberOfFeatures): `counts` says so. Constraints are read from
the document directly: OWSLib keeps only their allowed values, not their DefaultValue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from lxml import etree

from citypipe.connectors import documents
from citypipe.connectors.answers import exception_text, refuse_html
from citypipe.connectors.base import LayerInfo
from citypipe.connectors.http import HttpClient, Reply
from citypipe.connectors.service_documents import capabilities_layers
from citypipe.connectors.xml_safety import PARSER, not_well_formed, refuse_dtd
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = [
    "VERSIONS",
    "Capabilities",
    "ServerFailure",
    "ServerRefusal",
    "check_exception",
    "fetch",
    "parse_xml",
    "service_url",
]

VERSIONS = ("2.0.0", "1.1.0")
"""The versions asked for in the negotiation (ACCEPTVERSIONS)."""
_SPOKEN = (*VERSIONS, "1.0.0")
"""The versions harvested: 1.0.0 where the server speaks nothing later."""
_HARVESTED = f"citypipe harvests WFS {', '.join(_SPOKEN)}"
_OWS = {"ows": "http://www.opengis.net/ows/1.1", "ows10": "http://www.opengis.net/ows"}
_PROTOCOL_KEYS = {
    "service",
    "request",
    "version",
    "acceptversions",
    "typename",
    "typenames",
    "outputformat",
    "resulttype",
    "count",
    "maxfeatures",
    "startindex",
    "srsname",
    "bbox",
    "filter",
}
"""Parameters of the protocol, which the harvest sets itself; others (MAP=, vendor keys,
tokens) are the endpoint's and are kept."""
_BAD_REQUEST = {
    "InvalidParameterValue",
    "MissingParameterValue",
    "OperationNotSupported",
    "OptionNotSupported",
    "VersionNegotiationFailed",
    "InvalidUpdateSequence",
}
"""exceptionCodes of a request the server will never answer as asked (OWS Common, WFS 2.0)."""


class ServerRefusal(ConfigurationError):
    """The WFS answered a request with an exception report that names the request's fault."""


class ServerFailure(DataError):
    """The WFS answered with an exception report of its own trouble (NoApplicableCode,
    OperationProcessingFailed): the request may work in another form (no paging, a smaller
    box)."""


@dataclass(frozen=True)
class Capabilities:
    """What a WFS says about itself, as far as a harvest needs it."""

    version: str
    get_feature: str
    """Where GetFeature is asked: the URL the capabilities came from (without the protocol's
    parameters), never the address the document names, which is often an internal host or
    plain http behind a proxy."""
    layers: tuple[LayerInfo, ...]
    paging: bool
    """WFS 2.0's ImplementsResultPaging; in 1.1 and 1.0, True: STARTINDEX is tried and
    checked."""
    count_default: int | None
    """The most features the server returns for one request: WFS 2.0's CountDefault, the
    DefaultMaxFeatures of a 1.1 server (MapServer's wfs_maxfeatures)."""
    filters: str
    """What the filter capabilities declare, for `citypipe inspect`."""
    title: str | None = None

    def layer(self, name: str | None) -> LayerInfo:
        """The layer named `name`, or the only one; ConfigurationError listing them else."""
        names = [layer.name for layer in self.layers]
        if name is None and len(self.layers) == 1:
            return self.layers[0]
        for layer in self.layers:
            if layer.name == name or (name and layer.name.split(":")[-1] == name):
                return layer
        listed = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
        what = f"has no feature type {name!r}" if name else "offers several feature types"
        raise ConfigurationError(f"{self.get_feature}: the WFS {what}; --layer one of: {listed}")

    @property
    def counts(self) -> bool:
        """Whether the server can state a count (resultType=hits, numberMatched /
        numberOfFeatures): not in WFS 1.0."""
        return self.version != "1.0.0"

    def details(self) -> dict[str, str]:
        paging = (
            "yes (ImplementsResultPaging)"
            if self.version.startswith("2") and self.paging
            else "STARTINDEX (vendor extension, checked while harvesting)"
            if self.paging
            else "no (bbox tiling)"
        )
        out = {"paging": paging, "filters": self.filters or "-"}
        if self.count_default is not None:
            out["count default"] = str(self.count_default)
        return out


def service_url(url: str) -> str:
    """`url` without the protocol's own parameters (kept: the endpoint's, such as MAP=)."""
    parts = urlsplit(url)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _PROTOCOL_KEYS
    ]
    return parts._replace(query=urlencode(kept), fragment="").geturl()


def parse_xml(reply: Reply) -> Any:
    """The root element of an XML answer, parsed safely; an ExceptionReport raised, an HTML
    page refused in its words."""
    refuse_html(reply)
    try:
        root = etree.fromstring(reply.content, etree.XMLParser(**PARSER))
    except etree.XMLSyntaxError as e:
        raise not_well_formed(reply.url, e, reply.content[:4096]) from e
    refuse_dtd(reply.url, root)
    check_exception(root, reply.url)
    return root


def check_exception(root: Any, url: str) -> None:
    """Raise the error an OGC exception report stands for, with the server's own text: a
    request the server refuses is the configuration's fault, anything else the data's."""
    if etree.QName(root).localname not in documents.EXCEPTION_REPORTS:
        return
    codes = {e.get("exceptionCode") or e.get("code") for e in root.iter() if len(e.attrib)}
    error = ServerRefusal if codes & _BAD_REQUEST else ServerFailure
    raise error(f"{url}: the WFS answered with an exception: {exception_text(root)}")


def fetch(client: HttpClient, url: str) -> Capabilities:
    """The capabilities of the WFS at `url`, in the highest version both sides speak."""
    base = service_url(url)
    named = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}.get("version")
    if named is not None and named not in _SPOKEN:
        raise ConfigurationError(f"{url}: VERSION={named}; {_HARVESTED}")
    asked = {"SERVICE": "WFS", "REQUEST": "GetCapabilities"}
    asked |= {"VERSION": named} if named else {"ACCEPTVERSIONS": ",".join(VERSIONS)}
    root = _get(client, base, asked)
    if root.get("version") not in VERSIONS and not named:
        root = _get(
            client, base, {"SERVICE": "WFS", "REQUEST": "GetCapabilities", "VERSION": "1.1.0"}
        )
    version = root.get("version")
    if version not in _SPOKEN:
        raise ConfigurationError(f"{base}: the WFS speaks version {version}; {_HARVESTED}")
    _, title, layers = capabilities_layers(etree.tostring(root))
    constraints = _constraints(root)
    count = constraints.get("CountDefault") or constraints.get("DefaultMaxFeatures", "")
    return Capabilities(
        version=version,
        get_feature=base,
        layers=layers,
        paging=constraints.get("ImplementsResultPaging", "").upper() == "TRUE"
        if version.startswith("2")
        else True,  # STARTINDEX tried and checked
        count_default=int(count) if count.isdigit() else None,
        filters=_filters(root),
        title=title,
    )


def _get(client: HttpClient, base: str, params: Mapping[str, str]) -> Any:
    url = f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(params)}"
    root = parse_xml(client.get(url, accept=(400, 403)))
    if etree.QName(root).localname != "WFS_Capabilities":
        raise DataError(f"{url}: not a WFS capabilities document ({etree.QName(root).localname})")
    return root


def _constraints(root: Any) -> dict[str, str]:
    """The service's constraints (ows:OperationsMetadata/ows:Constraint): name -> value."""
    out = {}
    for ns in _OWS.values():
        for c in root.iterfind(f"{{{ns}}}OperationsMetadata/{{{ns}}}Constraint"):
            value = c.findtext(f"{{{ns}}}DefaultValue") or c.findtext(f".//{{{ns}}}Value") or ""
            out[c.get("name", "")] = value.strip()
    return out


def _filters(root: Any) -> str:
    """A line on the filter capabilities: FES 2.0 conformance constraints that hold, or the
    comparison operators of Filter 1.1 / 1.0."""
    held = [
        c.get("name", "").removeprefix("Implements")
        for c in root.iter("{http://www.opengis.net/fes/2.0}Constraint")
        if (c.findtext("{*}DefaultValue") or "").strip().upper() == "TRUE"
    ]
    if held:
        return ", ".join(held)
    operators = [  # Filter 1.1's ComparisonOperators, Filter 1.0's Comparison_Operators
        e.get("name") or etree.QName(e).localname
        for path in ("ComparisonOperators", "Comparison_Operators")
        for e in root.iterfind(f".//{{http://www.opengis.net/ogc}}{path}/*")
    ]
    return ", ".join(o for o in operators if o)
