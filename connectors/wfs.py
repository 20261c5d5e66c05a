"""OGC Web Feature Service 2.0 / 1.1: a feature type harvested whole, its count checked.

`inspect` reads the capabilities (wfs_capabilities) and, with a layer chosen (`--layer`, a
TYPENAME(S) in the URL, or the service's only one), starts its harvest: the first page gives
the count where it states one, else resultType=hits is asked (wfs_paging), as OGC API's first
page does. `read` goes on from there, paging or tiling the extent (wfs_harvest), in GeoJSON
where the server's GeoJSON has its gml:ids, else GML (wfs_request). A filter of simple
comparisons goes to the server as FES / OGC Filter XML, any other is applied to the features
read (local_filter), as is every filter when a box is asked for too (KVP has no room for both).

Axis order is the one rule of the readers: a GeoJSON answer is easting / longitude first
whatever its `crs` member says; inside a GML answer of WFS 1.1 / 2.0 the CRS's own order
applies, whatever the spelling of its srsName.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from citypipe.connectors import wfs_capabilities, wfs_filter
from citypipe.connectors.base import LayerInfo, ServiceConnector, SourceBatch, SourceInfo
from citypipe.connectors.local_filter import PropertyFilter
from citypipe.connectors.wfs_capabilities import Capabilities
from citypipe.connectors.wfs_harvest import Harvest
from citypipe.connectors.wfs_request import GetFeature
from citypipe.connectors.wfs_whole import Whole

__all__ = ["WFSConnector"]

_WFS_PATH = re.compile(r"(^|/)(wfs|wfsserver|ows|mapserv|geoserver)(\.\w+)?(/|$)", re.IGNORECASE)
"""Path segments WFS endpoints commonly have: GeoServer's /wfs and /ows, ArcGIS Server's
/WFSServer, MapServer's mapserv(.cgi / .fcgi)."""


class WFSConnector(ServiceConnector):
    name = "wfs"
    title = "OGC WFS"

    @classmethod
    def accepts(cls, url: SplitResult) -> float:
        params = {k.lower(): v.lower() for k, v in parse_qsl(url.query)}
        if params.get("service") == "wfs":
            return 0.95
        if "service" in params:  # another OGC service (WMS ...)
            return 0.0
        return 0.5 if _WFS_PATH.search(url.path) else 0.0

    @cached_property
    def capabilities(self) -> Capabilities:
        return wfs_capabilities.fetch(self.client, self.url)

    @property
    def layer_name(self) -> str | None:
        """The layer asked for: `--layer`, else a TYPENAMES / TYPENAME in the URL."""
        if self.query.layer:
            return self.query.layer
        params = {k.lower(): v for k, v in parse_qsl(urlsplit(self.url).query)}
        return params.get("typenames") or params.get("typename")

    @cached_property
    def _plan(self) -> tuple[GetFeature, Any]:
        """The harvest's request for the chosen layer, and the parsed filter (or None)."""
        caps, query = self.capabilities, self.query
        wanted = PropertyFilter(query.filter) if query.filter else None
        pushed = None
        if wanted is not None and query.bbox is None:
            pushed = wfs_filter.to_fes(wanted.tree, caps.version)
        return GetFeature.plan(caps, caps.layer(self.layer_name), query, pushed), wanted

    @cached_property
    def _early(self) -> Whole | None:
        """A WFS 1.1 layer's one answer and its count, asked for beside the capabilities where
        the URL names VERSION=1.1.0 and the layer, and the query nothing else (wfs_whole)."""
        named = {k.lower(): v for k, v in parse_qsl(urlsplit(self.url).query)}.get("version")
        query, layer = self.query, self.layer_name
        if named != "1.1.0" or layer is None or query.crs or query.bbox or query.filter:
            return None
        return None if query.page_size else Whole.early(self.client, self.url, layer)

    @cached_property
    def harvest(self) -> Harvest:
        """The harvest of the chosen layer: `inspect` starts it (its count), `read` reads it."""
        early = self._early
        request, wanted = self._plan
        test = wanted.matches if wanted is not None else None
        return Harvest(self.client, request, None, self.query.bbox, test, early)

    @property
    def hits(self) -> int | None:
        """The layer's count as the server states it: the first page's numberMatched, else
        resultType=hits; None where it states none."""
        return self.harvest.start()

    def inspect(self) -> SourceInfo:
        _ = self._early  # before the capabilities, beside them
        caps = self.capabilities
        details = {"service": caps.title or "-", **caps.details()}
        chosen: LayerInfo | None = None
        srs_name = None
        if self.layer_name or len(caps.layers) == 1:
            request, node = self._plan
            chosen, srs_name = request.layer, request.srs_name
            details["output format"] = request.output or "the version's default GML"
            details["filter"] = _filter_note(request, node)
        return SourceInfo(
            format=self.title,
            version=caps.version,
            crs=srs_name,
            layers=tuple(layer.name for layer in caps.layers),
            layer_info=caps.layers,
            declared_count=self.hits if chosen else None,
            details=details,
        )

    def read(self) -> Iterator[SourceBatch]:
        yield from self.harvest.batches()


def _filter_note(request: GetFeature, node: Any) -> str:
    if node is None:
        return "-"
    return "sent to the server" if request.filter_xml else "applied to the features read"
