"""The one GetFeature a WFS 1.1 harvest starts with: the whole layer asked for at once.

WFS 1.1 has no paging (STARTINDEX is a vendor extension), and a server CGI process per request
(MapServer) makes every page cost: as GDAL's 1.1 driver does, the layer is asked for in one
request, of at most the features the capabilities say the server gives (DefaultMaxFeatures /
CountDefault; none where they say none), with resultType=hits beside it. Unlike GDAL's
(OSGeo/gdal#13515), the harvest does not end there when the answer holds fewer than the count:
it pages on from where the answer stopped (wfs_harvest). The answer is GML (its features have
ids) and is parsed as it arrives, a batch at a time (wfs_gml.read_stream): a layer of any size
takes the memory of a batch. An answer that breaks off, or an exception report instead of
features, ends it at the features read so far; `broke` says why.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from citypipe.connectors.base import LayerInfo, SourceBatch
from citypipe.connectors.http import HttpClient, Stream
from citypipe.connectors.wfs_capabilities import Capabilities, service_url
from citypipe.connectors.wfs_gml import read_stream
from citypipe.connectors.wfs_pages import ACCEPT, address, count_hits
from citypipe.connectors.wfs_paging import REFUSED
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import CitypipeError

__all__ = ["BATCH", "Whole"]

BATCH = 1000
"""Features parsed from the answer per batch."""


class Whole:
    """The single request and the hit count beside it, both asked for on creation."""

    def __init__(
        self, client: HttpClient, request: GetFeature, box: Box | None, hits: int | None
    ) -> None:
        self.request = request = request.as_gml() if request.geojson else request
        self.returned = 0
        """Features read from the answer (in whole batches)."""
        self.broke: str | None = None
        self.requests = 1 if hits is not None else 2
        params = request.params(box=box)
        if request.caps.count_default is None:  # no cap stated: none asked for
            params.pop("MAXFEATURES", None)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="wfs-whole")
        url = address(request, params)
        self._answer: Future[Stream] = self._pool.submit(client.open, url, accept=ACCEPT)
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
        return cls(client, request, None, None)

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
            with self._answer.result() as stream:
                _, batches = read_stream(
                    stream,
                    crs=self.request.srs_name,
                    wfs_version=self.request.caps.version,
                    name=stream.url,
                    batch_size=BATCH,
                )
                for batch in batches:
                    self.returned += len(batch)
                    yield batch
        except CitypipeError as e:  # broke off, not XML, an exception report: paged on
            self.broke = str(e)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _drop(answer: Future[Stream], pool: ThreadPoolExecutor) -> None:
    """Close an answer never read (an `inspect` that does not go on to read it): it holds one
    of its host's slots until then."""
    pool.shutdown(wait=False)
    answer.add_done_callback(_close)


def _close(answer: Future[Stream]) -> None:
    if answer.exception() is None:
        answer.result().close()
