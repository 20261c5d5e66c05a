"""Every feature of a WFS layer, checked against the count the server declares.

Pages are asked for with STARTINDEX + COUNT (MAXFEATURES in 1.1) and the next one starts after
the features the last one held: a short page is not the end (OSGeo/gdal#8653), an empty one
is. Where paging is not implemented, refused (an exception report) or ignored (a page that
brings no feature not already read: a 1.1 server without the vendor extension answers the
first page again), the layer's extent is tiled: each box is split in four until the server
counts at most a page of features in it, and features on the edges of two boxes are read
once, by id. The harvest ends complete (as many distinct features read as resultType=hits
declared) or with a DataError that says what was read; it raises before the pipeline commits,
so a failed harvest writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np

from citypipe.connectors import documents
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.batch_rows import take
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.http import HttpClient, Reply
from citypipe.connectors.wfs_capabilities import ServerFailure, ServerRefusal, parse_xml
from citypipe.connectors.wfs_gml import read_feature_collection
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import DataError

__all__ = ["Harvest", "count_hits", "gml_page"]

MAX_TILES = 4096
"""Boxes counted at most: a layer that needs more is refused rather than hammered."""
_SMALLEST = 1e-7
"""Degrees: a box this narrow with more than a page of features in it is not split further."""
_ACCEPT = (400, 403)
"""Statuses whose body, an exception report, says why (WFS 2.0 answers 400)."""


def _url(request: GetFeature, params: Mapping[str, str]) -> str:
    base = request.caps.get_feature
    return f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(params)}"


def _get(client: HttpClient, request: GetFeature, params: Mapping[str, str]) -> Reply:
    return client.get(_url(request, params), accept=_ACCEPT)


def count_hits(client: HttpClient, request: GetFeature, box: Box | None = None) -> int | None:
    """The number of features the server counts for the request (resultType=hits), None when
    it does not say (numberMatched="unknown")."""
    reply = _get(client, request, request.params(hits=True, box=box))
    root = parse_xml(reply)
    declared = root.get("numberMatched", root.get("numberOfFeatures", ""))
    return int(declared) if declared.isdigit() else None


def gml_page(reply: Reply, request: GetFeature) -> list[SourceBatch]:
    """The batches of a GML GetFeature response, read by the GML reader of WFS files: in the
    convention of the version asked (a short EPSG:4326 in 1.1 / 2.0 is latitude first), in
    the CRS asked for where the response names none."""
    return list(
        read_feature_collection(
            reply.content, crs=request.srs_name, wfs_version=request.caps.version, name=reply.url
        )
    )


@dataclass
class _Page:
    url: str
    batches: list[SourceBatch]
    returned: int

    @property
    def anonymous(self) -> bool:
        """No feature has an id."""
        return all(sid is None for batch in self.batches for sid in batch.source_ids)


def _page(client: HttpClient, request: GetFeature, params: Mapping[str, str]) -> _Page:
    """One GetFeature answer, read: GeoJSON by the GeoJSON reader, GML by the GML reader."""
    reply = _get(client, request, params)
    head = reply.content[:4096].lstrip(documents.BLANK)
    root = documents.xml_root(head) if head.startswith(b"<") else None
    if root is not None and root[1].decode(errors="replace") in documents.EXCEPTION_REPORTS:
        parse_xml(reply)  # raises the report
    if root is not None or not request.geojson:
        batches = gml_page(reply, request)
        return _Page(reply.url, batches, sum(map(len, batches)))
    page = reply.json()
    if not isinstance(page, dict) or not isinstance(page.get("features"), list):
        raise DataError(f"{reply.url}: the answer is not a GeoJSON FeatureCollection")
    batches = [_declared(b, request.srs_name) for b in page_batches(page, page["features"])]
    return _Page(reply.url, batches, len(page["features"]))


def _declared(batch: SourceBatch, srs_name: str | None) -> SourceBatch:
    """A GeoJSON page without a `crs` member is in the CRS asked for (easting first)."""
    return replace(batch, crs=srs_name) if batch.crs is None and srs_name else batch


class _PagingFailed(Exception):
    """Paging is refused or ignored: the harvest goes on by tiles."""


class Harvest:
    """One layer's features, each once, as batches; `hits` the count to reach (None: unknown)."""

    def __init__(
        self,
        client: HttpClient,
        request: GetFeature,
        hits: int | None,
        box: Box | None,
        test: Callable[[Mapping[str, Any]], bool] | None,
    ) -> None:
        """`box`: the user's, in CRS84; `test`: the user's filter, applied here unless the
        request carries it to the server."""
        self.client, self.request, self.hits, self.box = client, request, hits, box
        self.test = test
        self.keep = None if request.filter_xml else test
        self.seen: set[str] = set()
        self.read = 0
        """Distinct features read (a feature without an id counts each time)."""
        self.requests = 0
        self.repeated = 0
        """Features read again (on two pages, or on two tiles' edges)."""
        self.tiling = False
        self.ended = ""

    def batches(self) -> Iterator[SourceBatch]:
        request = self.request
        if request.caps.paging or (self.hits is not None and self.hits <= request.page_size):
            try:
                yield from self._paged()
            except _PagingFailed as e:
                self.ended = str(e)
                yield from self._tiled()
            else:
                if self.repeated and self.hits is not None and self.read < self.hits:
                    # pages overlapped (an order that changes between requests): tiles fill in
                    yield from self._tiled()
        else:
            yield from self._tiled()
        self._check()

    def _paged(self) -> Iterator[SourceBatch]:
        start = 0
        paging = self.request.caps.paging
        while self.hits is None or self.read < self.hits or start == 0:  # 0 counted: checked
            params = self.request.params(start=start if paging else None, box=self.box)
            try:
                page = self._fetch(params)
            except (ServerRefusal, ServerFailure) as e:
                raise _PagingFailed(f"paging refused at feature {start}: {e}") from e
            if start == 0 and self.request.geojson and page.returned and page.anonymous:
                self.request = self.request.as_gml()  # GeoJSON without ids (MapServer's OGR)
                page = self._fetch(self.request.params(start=0 if paging else None, box=self.box))
            if page.returned == 0:
                self.ended = f"an empty page at feature {start}"
                return
            before = self.read
            yield from self._fresh(page.batches)
            if self.read == before:
                raise _PagingFailed(f"the page at feature {start} held no feature not read before")
            start += page.returned
            if not paging:
                self.ended = "one request (the server does not page)"
                return
        self.ended = f"the declared count reached in {self.requests} requests"

    def _tiled(self) -> Iterator[SourceBatch]:
        request = self.request
        if request.filter_xml:  # a BBOX and a FILTER do not go together: filtered here now
            self.request = request = replace(request, filter_xml=None)
            self.keep = self.test
            self.hits = count_hits(self.client, request, self.box)
        extent = self.box or request.layer.bbox
        if extent is None or self.hits is None:
            why = "it declares no extent" if extent is None else "it counts no hits"
            raise DataError(
                f"{request.caps.get_feature}: {request.layer.name} cannot be read whole: paging "
                f"is not available ({self.ended or 'not implemented'}) and {why} to tile by"
            )
        self.tiling, boxes, counted = True, [extent], 0
        while boxes:
            box = boxes.pop()
            counted += 1
            if counted > MAX_TILES:
                raise DataError(f"{request.caps.get_feature}: more than {MAX_TILES} tiles needed")
            n = count_hits(self.client, request, box)
            if n == 0:
                continue
            if n is None or n > request.page_size:
                boxes.extend(_quarters(box, request.caps.get_feature, n))
                continue
            page = self._fetch(request.params(box=box))
            yield from self._fresh(page.batches)
            if page.returned < n:  # fewer than it counts: the server's own cap (gdal#13515)
                if page.returned == 0:
                    raise DataError(f"{page.url}: no feature of the {n} the server counts")
                self.request = request = replace(request, page_size=page.returned)
                boxes.extend(_quarters(box, request.caps.get_feature, n))
        self.ended = f"{counted} tiles counted"

    def _fetch(self, params: Mapping[str, str]) -> _Page:
        self.requests += 1
        return _page(self.client, self.request, params)

    def _fresh(self, batches: list[SourceBatch]) -> Iterator[SourceBatch]:
        """The features of a page not read before; those the local filter keeps."""
        for batch in batches:
            new = np.ones(len(batch), dtype=bool)
            for i, sid in enumerate(batch.source_ids):
                if sid is None and self.tiling:
                    raise DataError(
                        f"{self.request.caps.get_feature}: {self.request.layer.name} has features "
                        "without ids, which tiles cannot tell apart on their edges"
                    )
                if sid in self.seen:
                    new[i] = False
                elif sid is not None:
                    self.seen.add(sid)
            self.repeated += len(new) - int(new.sum())
            batch = take(batch, new)
            self.read += len(batch)
            if self.keep is not None:
                batch = take(batch, np.array([self.keep(p) for p in batch.properties], bool))
            if len(batch):
                yield batch

    def _check(self) -> None:
        """Complete, or a DataError with what was read and how the harvest ended."""
        if self.hits is None or self.read == self.hits:
            return
        where = f"{self.request.caps.get_feature}: {self.request.layer.name}"
        if self.read > self.hits:
            raise DataError(
                f"{where}: the server serves more features ({self.read} distinct) than its "
                f"count declares ({self.hits}, resultType=hits): its count is wrong"
            )
        wrong = " its count is wrong, or" if self.ended.startswith("an empty page") else ""
        raise DataError(
            f"{where}: the server declares {self.hits} features (resultType=hits) but "
            f"{self.read} were read in {self.requests} requests, up to {self.ended}:{wrong} "
            "the harvest is incomplete; nothing is written"
        )


def _quarters(box: Box, where: str, n: int | None) -> list[Box]:
    xmin, ymin, xmax, ymax = box
    if xmax - xmin < _SMALLEST and ymax - ymin < _SMALLEST:
        raise DataError(f"{where}: {n} features in a box of {_SMALLEST} degrees, more than a page")
    xmid, ymid = (xmin + xmax) / 2, (ymin + ymax) / 2
    return [
        (xmin, ymin, xmid, ymid),
        (xmid, ymin, xmax, ymid),
        (xmin, ymid, xmid, ymax),
        (xmid, ymid, xmax, ymax),
    ]
