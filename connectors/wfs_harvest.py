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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from citypipe.connectors.base import SourceBatch
from citypipe.connectors.batch_rows import take
from citypipe.connectors.http import HttpClient
from citypipe.connectors.wfs_capabilities import ServerFailure, ServerRefusal
from citypipe.connectors.wfs_pages import Page, count_hits, fetch_page, first_geojson_id
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import ConfigurationError, DataError, UnavailableError

__all__ = ["Harvest"]

MAX_TILES = 4096
"""Boxes counted at most: a layer that needs more is refused rather than hammered."""
_SMALLEST = 1e-7
"""Degrees: a box this narrow with more than a page of features in it is not split further."""
_REFUSED = (ServerRefusal, ServerFailure)


class _PagingFailed(Exception):
    """Paging is refused or ignored: the harvest goes on by tiles."""


class Harvest:
    """One layer's features, each once, as batches; `hits` the count to reach where known
    (None: taken from the pages, or asked for)."""

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
        self.counted_by = "resultType=hits"
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
        self._hits: Future[int | None] | None = None
        self._probe: Future[str | None] | None = None
        self._first_id: str | None = None

    def batches(self) -> Iterator[SourceBatch]:
        request = self.request
        if not request.caps.paging and self.hits is None:
            self.hits = self._count()  # one request, or tiles: the count decides
        if request.caps.paging or (self.hits is not None and self.hits <= request.page_size):
            try:
                yield from self._paged(ThreadPoolExecutor(self.client.policy.per_host))
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

    def _count(self) -> int | None:
        """resultType=hits; None where the server refuses it or does not say."""
        self.requests += 1
        try:
            return count_hits(self.client, self.request, self.box)
        except _REFUSED:
            return None

    def _paged(self, pool: ThreadPoolExecutor) -> Iterator[SourceBatch]:
        """Pages by STARTINDEX, as many in flight as the client allows to one host, each
        asked for on the assumption that the one before it is full (one that is not, a
        server's cap, moves the next start and the pages asked beyond it are dropped).

        The count is the first page's numberMatched where it states one; else (WFS 1.1, whose
        pages state none, or "unknown") resultType=hits, asked beside the next page; where
        that is refused too, pages are read to an empty one. The first page is GML (ids and
        counts); where the server offers GeoJSON, one feature of it is asked for beside, and
        the pages after are GeoJSON where its id is the first GML feature's."""
        paging, original = self.request.caps.paging, self.request
        if original.geojson:
            self.request = original.as_gml()
        ahead = {0: self._submit(pool, 0 if paging else None)}
        if original.geojson and paging:
            self._probe = self._ask(pool, first_geojson_id, original, self.box)
        if self.hits is None and not self.request.version2:
            self._hits = self._ask(pool, count_hits, self.request, self.box)
        start = 0
        try:
            while True:
                page = self._take(pool, ahead, start)
                if start == 0:
                    self._first_id = page.first_id
                    if self.hits is None and self._hits is None and page.returned:
                        self._hits = self._ask(pool, count_hits, self.request, self.box)
                if page.returned == 0:
                    self.ended = f"an empty page at feature {start}"
                    return
                before = self.read
                yield from self._fresh(page.batches)
                if self.read == before:
                    raise _PagingFailed(
                        f"the page at feature {start} held no feature not read before"
                    )
                if not paging:
                    self.ended = "one request (the server does not page)"
                    return
                full = page.returned >= self.request.page_size
                self._settle(original, wait=not full, first=start == 0)
                start += page.returned
                if self.hits is not None and self.read >= self.hits:
                    self.ended = f"the declared count reached in {self.requests} requests"
                    return
                self._plan(pool, ahead, start, full)
        finally:
            pool.shutdown(cancel_futures=True)

    def _ask(self, pool: ThreadPoolExecutor, *call: Any) -> Future[Any]:
        self.requests += 1
        return pool.submit(call[0], self.client, *call[1:])

    def _submit(self, pool: ThreadPoolExecutor, start: int | None) -> Future[Page]:
        params = self.request.params(start=start, box=self.box)
        return self._ask(pool, fetch_page, self.request, params)

    def _take(self, pool: ThreadPoolExecutor, ahead: dict[int, Future[Page]], start: int) -> Page:
        """The page at `start` (asked for now if it was not), its stated count taken."""
        future = ahead.pop(start, None) or self._submit(pool, start)
        try:
            page = future.result()
        except _REFUSED as e:
            raise _PagingFailed(f"paging refused at feature {start}: {e}") from e
        if page.matched is not None and self.hits is None:
            self.hits, self.counted_by = page.matched, "numberMatched"
        return page

    def _settle(self, geojson: GetFeature, wait: bool, first: bool) -> None:
        """Take the answers of the hit count (waited for where `wait`: a short page with no
        count known) and of the GeoJSON probe (asked beside the first page, and waited for
        after it, so that every page after the first is asked in one format)."""
        if self._hits is not None and (wait or self._hits.done()):
            try:
                counted = self._hits.result()
            except _REFUSED:  # a server that refuses hits is read to an empty page
                counted = None
            self._hits = None
            if self.hits is None:
                self.hits = counted
        if self._probe is not None and (first or self._probe.done()):
            try:
                agrees = self._first_id is not None and self._probe.result() == self._first_id
            except (DataError, ConfigurationError, UnavailableError):
                agrees = False  # the GeoJSON is unusable: GML it stays
            self._probe = None
            if agrees:
                self.request = replace(geojson, page_size=self.request.page_size)

    def _plan(
        self, pool: ThreadPoolExecutor, ahead: dict[int, Future[Page]], start: int, full: bool
    ) -> None:
        """Ask for the pages from `start`: up to the count where it is known, as many as may
        be in flight after a full page while it is not, else the next one only. Pages asked
        for from starts a short page moved are dropped."""
        size, window = self.request.page_size, self.client.policy.per_host
        for stale in [s for s in ahead if s < start or (s - start) % size]:
            ahead.pop(stale).cancel()
        if self.hits is not None:
            n = -(-(self.hits - self.read) // size)
        else:
            n = window if full else 1
        for k in range(max(1, min(n, window))):
            if start + k * size not in ahead:
                ahead[start + k * size] = self._submit(pool, start + k * size)

    def _tiled(self) -> Iterator[SourceBatch]:
        request = self.request
        if request.filter_xml:  # a BBOX and a FILTER do not go together: filtered here now
            self.request = request = replace(request, filter_xml=None)
            self.keep = self.test
            self.hits = None
        if self.hits is None:
            self.hits, self.counted_by = self._count(), "resultType=hits"
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
            self.requests += 1
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

    def _fetch(self, params: Mapping[str, str]) -> Page:
        self.requests += 1
        return fetch_page(self.client, self.request, params)

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
                f"count declares ({self.hits}, {self.counted_by}): its count is wrong"
            )
        wrong = " its count is wrong, or" if self.ended.startswith("an empty page") else ""
        raise DataError(
            f"{where}: the server declares {self.hits} features ({self.counted_by}) but "
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
