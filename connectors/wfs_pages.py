"""One GetFeature answer of a harvest, read: a page of features with the counts it states, a
hit count, or the probe that says whether the server's GeoJSON may be read.

A page is read where it is fetched (in the harvest's worker threads, so that reading one page
overlaps fetching the next): GeoJSON by the GeoJSON reader, GML by the GML reader of WFS files,
an exception report raised as the error it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

from citypipe.connectors import documents
from citypipe.connectors.answers import count, refuse_html
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.http import HttpClient, Reply
from citypipe.connectors.wfs_capabilities import parse_xml
from citypipe.connectors.wfs_gml import read_page
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import DataError

__all__ = ["ACCEPT", "Page", "address", "count_hits", "fetch_page", "first_geojson_id"]

ACCEPT = (400, 403)
"""Statuses whose body, an exception report, says why (WFS 2.0 answers 400)."""


@dataclass(frozen=True)
class Page:
    """One GetFeature answer, read."""

    url: str
    batches: list[SourceBatch]
    returned: int
    matched: int | None
    """The features the query matches, where the page states it (WFS 2.0's numberMatched,
    GeoJSON's numberMatched); None where it does not ("unknown", WFS 1.1)."""

    @property
    def anonymous(self) -> bool:
        """No feature has an id."""
        return all(sid is None for batch in self.batches for sid in batch.source_ids)

    @property
    def first_id(self) -> str | None:
        return next((sid for batch in self.batches for sid in batch.source_ids), None)


def address(request: GetFeature, params: Mapping[str, str]) -> str:
    """The GetFeature URL with `params`."""
    base = request.caps.get_feature
    return f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(params)}"


def _get(client: HttpClient, request: GetFeature, params: Mapping[str, str]) -> Reply:
    return client.get(address(request, params), accept=ACCEPT)


def count_hits(client: HttpClient, request: GetFeature, box: Box | None = None) -> int | None:
    """The number of features the server counts for the request (resultType=hits), None when
    it does not say (numberMatched="unknown") or cannot (WFS 1.0: not asked)."""
    if not request.caps.counts:
        return None
    root = parse_xml(_get(client, request, request.params(hits=True, box=box)))
    return count(root.get("numberMatched", root.get("numberOfFeatures")))


def fetch_page(client: HttpClient, request: GetFeature, params: Mapping[str, str]) -> Page:
    """One GetFeature answer, read: GeoJSON by the GeoJSON reader, GML by the GML reader (in
    the convention of the version asked, in the CRS asked for where the answer names none)."""
    reply = _get(client, request, params)
    refuse_html(reply)
    head = reply.content[:4096].lstrip(documents.BLANK)
    root = documents.xml_root(head) if head.startswith(b"<") else None
    if root is not None and root[1].decode(errors="replace") in documents.EXCEPTION_REPORTS:
        parse_xml(reply)  # raises the report
    if root is not None or not request.geojson:
        counts, batches = read_page(
            reply.content, crs=request.srs_name, wfs_version=request.caps.version, name=reply.url
        )
        return Page(reply.url, batches, sum(map(len, batches)), counts.matched)
    page = reply.json()
    if not isinstance(page, dict) or not isinstance(page.get("features"), list):
        raise DataError(f"{reply.url}: the answer is not a GeoJSON FeatureCollection")
    batches = [_declared(b, request.srs_name) for b in page_batches(page, page["features"])]
    return Page(reply.url, batches, len(page["features"]), count(page.get("numberMatched")))


def _declared(batch: SourceBatch, srs_name: str | None) -> SourceBatch:
    """A GeoJSON page without a `crs` member is in the CRS asked for (easting first)."""
    return replace(batch, crs=srs_name) if batch.crs is None and srs_name else batch


def first_geojson_id(client: HttpClient, request: GetFeature, box: Box | None) -> str | None:
    """The id of the layer's first feature asked for in GeoJSON (a page of one): the probe
    that says whether the server's GeoJSON may stand in for its GML, where it equals the id
    of the first feature of the GML page from the same start. MapServer's OGR output has no
    ids; a server whose GeoJSON ids differed from its gml:ids would give a feature two ids in
    one harvest."""
    probe = replace(request, page_size=1)
    return fetch_page(client, probe, probe.params(start=0, box=box)).first_id
