"""The one GetFeature a WFS 1.1 harvest starts with: the whole layer asked for at once.

WFS 1.1 has no paging (STARTINDEX is a vendor extension), and a server CGI process per request
(MapServer) makes every page cost: as GDAL's 1.1 driver does, the layer is asked for in one
request, of at most the features the capabilities say the server gives (DefaultMaxFeatures /
CountDefault; none where they say none), with resultType=hits beside it. Unlike GDAL's
(OSGeo/gdal#13515), the harvest does not end there when the answer holds fewer than the count:
it pages on from where the answer stopped (wfs_harvest). The answer is GML (its features have
ids) and is parsed as it arrives, a batch at a time (wfs_gml.read_stream): a layer of any size
takes the memory of a batch. Its first batches are parsed as soon as it comes, while the count
(which `inspect` declares, so waits for) and the capabilities are still with the server: on a
CGI server sharing the client's cores the parse then overlaps their processes rather than
following them. An answer that breaks off, or an exception report instead of features, ends it
at the features read so far; `broke` says why.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

from citypipe.connectors.answers import HTML_TYPES, refuse_html
from citypipe.connectors.base import LayerInfo, SourceBatch
from citypipe.connectors.http import HttpClient
from citypipe.connectors.wfs_capabilities import Capabilities, service_url
from citypipe.connectors.wfs_gml import stream_head
from citypipe.connectors.wfs_pages import ACCEPT, address, count_hits
from citypipe.connectors.wfs_paging import REFUSED
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import CitypipeError

__all__ = ["BATCH", "Whole"]

BATCH = 1000
"""Features parsed from the answer per batch."""
AHEAD = 2
"""Batches parsed as soon as the answer comes, before they are asked for."""


class Whole:
    """The single request and the hit count beside it, both asked for on creation."""

    def __init__(
        self,
        client: HttpClient,
        request: GetFeature,
        box: Box | None,
        hits: int | None,
        early: bool = False,
    ) -> None:
        """`early`: asked for before the capabilities, which will name the CRS of coordinates
        the answer leaves undeclared (`adopt`)."""
        self.request = request = request.as_gml() if request.geojson else request
        self.returned = 0
        """Features read from the answer (in whole batches)."""
        self.broke: str | None = None
        self.requests = 2 if hits is None and request.caps.counts else 1
        params = request.params(box=box)
        if request.caps.count_default is None:  # no cap stated: none asked for
            params.pop("MAXFEATURES", None)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="wfs-whole")
        url = address(request, params)
        self._answer: Future[_Answer] = self._pool.submit(_Answer, client, url, request, early)
        self._hits: Future[int | None] | None = None
        if hits is None:
            self._hits = self._pool.submit(count_hits, client, request, box)
        weakref.finalize(self, _drop, self._answer, self._pool)

    @classmethod
    def early(cls, client: HttpClient, url: str, layer: str) -> Whole:
        """The answer and the count asked for beside the capabilities, where the URL names
        VERSION=1.1.0 and nothing asked needs the capabilities (a CRS, a box, a filter, a page
        size): the layer's default CRS and GML, and the server's own cap (GDAL's 1.1 driver asks
        capabilities, DescribeFeatureType, hits and GetFeature one after the other)."""
        caps = Capabilities("1.1.0", service_url(url), (), True, None, "")
        request = GetFeature(caps, LayerInfo(layer), None, None, False, None, BATCH, True)
        return cls(client, request, None, None, early=True)

    def adopt(self, request: GetFeature) -> Whole | None:
        """This early answer, read as the capabilities' plan `request` reads, where it asked
        the same: the feature type as the capabilities name it, in one WFS 1.1 request; else
        None."""
        if request.layer.name != self.request.layer.name or request.version2 or not request.whole:
            return None
        self.request = request.as_gml() if request.geojson else request
        return self

    def close(self) -> None:
        """Drop an answer that will not be read."""
        _drop(self._answer, self._pool)

    def count(self) -> int | None:
        """The hit count, waited for; None where the server refuses it or does not say."""
        if self._hits is None:
            return None
        try:
            return self._hits.result()
        except REFUSED:
            return None

    def batches(self) -> Iterator[SourceBatch]:
        """The answer's features, a batch at a time, to its end or to where it broke off."""
        try:
            answer = self._answer.result()
            with answer.stream:
                for batch in answer.batches(self.request.srs_name):
                    self.returned += len(batch)
                    yield batch
        except CitypipeError as e:  # broke off, not XML, an exception report: paged on
            self.broke = str(e)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Answer:
    """The answer's stream, with its first AHEAD batches parsed as it comes (in the pool's
    thread) where the CRS of undeclared coordinates is settled: the answer's envelope names
    one, or the request is not an early one."""

    def __init__(self, client: HttpClient, url: str, request: GetFeature, early: bool) -> None:
        self.stream = client.open(url, accept=ACCEPT)
        self.parsed: list[SourceBatch] = []
        self._rest: Iterator[SourceBatch] | None = None
        self._error: CitypipeError | None = None
        try:
            if self.stream.media_type in HTML_TYPES:
                refuse_html(self.stream.reply())  # an error page: short
            version = request.caps.version
            response, self._members = stream_head(
                self.stream, wfs_version=version, name=self.stream.url
            )
            if response.crs or not early:
                self._rest = self._members(request.srs_name, BATCH)
                self.parsed.extend(islice(self._rest, AHEAD))
        except CitypipeError as e:  # raised after the batches read before it
            self._error = e
        except BaseException:
            self.stream.close()
            raise

    def batches(self, crs: str | None) -> Iterator[SourceBatch]:
        """The batches parsed ahead, then the rest; `crs` as the capabilities settled it."""
        parsed, self.parsed = self.parsed, []
        yield from parsed
        if self._error is not None:
            raise self._error
        yield from self._rest if self._rest is not None else self._members(crs, BATCH)


def _drop(answer: Future[_Answer], pool: ThreadPoolExecutor) -> None:
    """Close an answer never read (an `inspect` that does not go on to read it): it holds one
    of its host's slots until then."""
    pool.shutdown(wait=False)
    answer.add_done_callback(_close)


def _close(answer: Future[_Answer]) -> None:
    if answer.exception() is None:
        answer.result().stream.close()
