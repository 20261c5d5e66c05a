"""Every feature of a WFS layer, checked against the count the server declares.

A WFS 1.1 layer is asked for in one request first where no page size is asked for
(wfs_whole); where its answer holds fewer features than the count (a server's cap, stated or
not), breaks off or is refused, the harvest pages on from where it stopped. Pages are asked
for with STARTINDEX + COUNT (MAXFEATURES in 1.1), several in flight (wfs_paging), and the next
one starts after the features the last one held: a short page is not the end
(OSGeo/gdal#8653), an empty one is. Where paging is not implemented, refused (an exception
report) or ignored (a page that brings no feature not already read: a 1.1 server without the
vendor extension answers the first page again), the layer's extent is tiled: each box is split
in four until the server counts at most a page of features in it, and features on the edges of
two boxes are read once, by id; a server that counts nothing (WFS 1.0, hits refused or
"unknown") has each box read and split in four where its answer is full (as many features as
the fullest answer before).
The harvest ends complete (as many distinct features read as
the server counts: numberMatched, else resultType=hits) or with a DataError that says what was
read; it raises before the pipeline commits, so a failed harvest writes nothing. A server that
states no count and refuses hits is read to an empty page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from citypipe.connectors.base import SourceBatch
from citypipe.connectors.batch_rows import take
from citypipe.connectors.http import HttpClient
from citypipe.connectors.wfs_pages import Page, count_hits, fetch_page
from citypipe.connectors.wfs_paging import REFUSED, Pager, PagingFailed
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.connectors.wfs_whole import Whole
from citypipe.geo.errors import DataError

__all__ = ["Harvest"]

MAX_TILES = 4096
"""Boxes counted at most: a layer that needs more is refused rather than hammered."""
_SMALLEST = 1e-7
"""Degrees: a box this narrow with more than a page of features in it is not split further."""


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
        early: Whole | None = None,
    ) -> None:
        """`box`: the user's, in CRS84; `test`: the user's filter, applied here unless the
        request carries it to the server; `early`: a WFS 1.1 answer asked for already."""
        self.client, self.request, self.hits, self.box = client, request, hits, box
        self.counted_by = "resultType=hits"
        self.test = test
        self.keep = None if request.filter_xml else test
        self.seen: set[str] = set()
        self.read = 0
        """Distinct features read (a feature without an id counts each time)."""
        self.repeated = 0
        """Features read again (on two pages, or on two tiles' edges)."""
        self.tiling = False
        self.ended = ""
        self._own = 0
        """Requests made here (hit counts, tiles), beside the pager's."""
        self._started = False
        self._pager: Pager | None = None
        self._first: Page | None = None
        self._whole: Whole | None = None
        self._early = early

    def start(self) -> int | None:
        """The count the harvest is to reach, as far as the server states it: where the server
        pages, the first page is read for it (`inspect` declares it; `batches` goes on)."""
        if self._started:
            return self.hits
        self._started = True
        early, self._early = self._early, None
        adopted = early.adopt(self.request) if early is not None else None
        if early is not None and adopted is None:
            early.close()
        if self.request.whole:  # the answer and the count asked for together
            whole = adopted or Whole(self.client, self.request, self.box, self.hits)
            self._whole = whole
            self.request = whole.request
            if self.hits is None:
                self.hits = whole.count()
            return self.hits
        if not self.request.caps.paging:
            if self.hits is None:
                self.hits = self._count()  # one request, or tiles: the count decides
            return self.hits
        self._pager = pager = Pager(self.client, self.request, self.box, self.hits)
        try:
            self._first = pager.first()
        except PagingFailed as e:  # tiles instead
            self.ended = str(e)
            pager.close()
        except BaseException:
            pager.close()
            raise
        self._sync()
        return self.hits

    def _sync(self) -> None:
        """The pager's count, and its request (in the format its probe chose), as the
        harvest's."""
        pager = self._pager
        if pager is not None and not self.tiling:
            self.request = pager.request
            if self.hits is None and pager.hits is not None:
                self.hits, self.counted_by = pager.hits, pager.counted_by

    @property
    def requests(self) -> int:
        own = self._own + (self._whole.requests if self._whole is not None else 0)
        return own + (self._pager.requests if self._pager is not None else 0)

    def batches(self) -> Iterator[SourceBatch]:
        self.start()
        request = self.request
        if self._whole is not None:
            yield from self._at_once(self._whole)
        elif self._pager is not None and self._first is not None:
            yield from self._paging(self._pager, self._first, 0)
        elif not request.caps.paging and self.hits is not None and self.hits <= request.page_size:
            self.request = request.as_gml() if request.geojson else request  # ids
            page = self._fetch(self.request.params(box=self.box))
            yield from self._fresh(page.batches)
            self.ended = "one request (the server does not page)"
        else:
            yield from self._tiled()
        self._check()

    def _at_once(self, whole: Whole) -> Iterator[SourceBatch]:
        """The one request's features; pages from where it stopped where they fall short."""
        yield from self._fresh(whole.batches())
        start = whole.returned
        if whole.broke is None and self.hits is not None and self.read >= self.hits:
            self.ended = f"the declared count reached in {self.requests} requests"
            return
        if whole.broke is None and start:  # cut short: the server's cap is what it gave
            self.request = replace(self.request, page_size=start)
        self.request = replace(self.request, whole=False)
        self._pager = pager = Pager(self.client, self.request, self.box, self.hits)
        try:
            page = pager.take(start)
        except PagingFailed as e:
            pager.close()
            self.ended = str(e)
            yield from self._tiled()
            return
        yield from self._paging(pager, page, start)

    def _paging(self, pager: Pager, page: Page, start: int) -> Iterator[SourceBatch]:
        """The pages from `start`, else tiles where paging fails or pages overlapped."""
        try:
            yield from self._paged(pager, page, start)
        except PagingFailed as e:
            self.ended = str(e)
            yield from self._tiled()
        else:
            if self.repeated and self.hits is not None and self.read < self.hits:
                # pages overlapped (an order that changes between requests): tiles fill in
                yield from self._tiled()

    def _count(self) -> int | None:
        """resultType=hits; None where the server refuses it or does not say."""
        self._own += 1
        try:
            return count_hits(self.client, self.request, self.box)
        except REFUSED:
            return None

    def _paged(self, pager: Pager, page: Page, start: int) -> Iterator[SourceBatch]:
        """The pages from `page` (at `start`) to the count, or to an empty page."""
        try:
            while True:
                if page.returned == 0:
                    self.ended = f"an empty page at feature {start}"
                    return
                before = self.read
                yield from self._fresh(page.batches)
                if self.read == before:
                    raise PagingFailed(
                        f"the page at feature {start} held no feature not read before"
                    )
                full = page.returned >= pager.request.page_size
                start += page.returned
                pager.settle(wait=not full)
                self._sync()
                if self.hits is not None and self.read >= self.hits:
                    self.ended = f"the declared count reached in {self.requests} requests"
                    return
                remaining = None if self.hits is None else self.hits - self.read
                pager.plan(start, full, remaining)
                page = pager.take(start)
                self._sync()
        finally:
            pager.close()
            self._sync()

    def _tiled(self) -> Iterator[SourceBatch]:
        request = self.request
        if request.filter_xml:  # a BBOX and a FILTER do not go together: filtered here now
            self.request = request = replace(request, filter_xml=None)
            self.keep = self.test
            self.hits = None
        if self.hits is None and request.caps.counts:
            self.hits, self.counted_by = self._count(), "resultType=hits"
        extent = self.box or request.layer.bbox
        if extent is None:
            raise DataError(
                f"{request.caps.get_feature}: {request.layer.name} cannot be read whole: paging "
                f"is not available ({self.ended or 'not implemented'}) and it declares no "
                "extent to tile by"
            )
        # without a count (WFS 1.0, hits refused) the whole extent's answer was read already
        counts = self.hits is not None
        boxes = [extent] if counts else _quarters(extent, request.caps.get_feature, None)
        self.tiling, counted = True, 0
        while boxes:
            box = boxes.pop()
            counted += 1
            if counted > MAX_TILES:
                raise DataError(f"{request.caps.get_feature}: more than {MAX_TILES} tiles needed")
            if not counts:
                yield from self._uncounted(box, boxes)
                continue
            self._own += 1
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

    def _uncounted(self, box: Box, boxes: list[Box]) -> Iterator[SourceBatch]:
        """A box of a server that counts nothing (WFS 1.0, hits refused), read: whole where
        its answer holds fewer features than a page (the most any answer held, which the
        server's cap is not below), else split in four."""
        page = self._fetch(self.request.params(box=box))
        yield from self._fresh(page.batches)
        if page.returned >= self.request.page_size:
            boxes.extend(_quarters(box, self.request.caps.get_feature, page.returned))

    def _fetch(self, params: Mapping[str, str]) -> Page:
        self._own += 1
        return fetch_page(self.client, self.request, params)

    def _fresh(self, batches: Iterable[SourceBatch]) -> Iterator[SourceBatch]:
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
