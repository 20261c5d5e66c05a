"""The pages of a WFS harvest by STARTINDEX, as many in flight as the HTTP client allows to one
host, with the count they are checked against.

Each page is asked for on the assumption that the one before it is full; one that is not (a
server's own cap) moves the next start, and the pages asked beyond it are dropped. Pages are
read where they are fetched (wfs_pages), so reading one overlaps fetching the next.

The count is a page's numberMatched where the server states it (GeoServer on every page,
MapServer 8.0 on the last); else resultType=hits, asked beside the second page (beside the
first in WFS 1.1, whose pages state no total); where hits is refused too, pages are read to an
empty one. The first page is GML, whose features have ids and whose root states the counts;
where the layer offers GeoJSON and has more than a page, a page of one feature is asked for in
it beside the second, and the pages after are GeoJSON where that feature's id is the first GML
feature's
(MapServer's OGR output has no ids; a server whose GeoJSON ids differ from its gml:ids would
give a feature two).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from citypipe.connectors.http import HttpClient
from citypipe.connectors.wfs_capabilities import ServerFailure, ServerRefusal
from citypipe.connectors.wfs_pages import Page, count_hits, fetch_page, first_geojson_id
from citypipe.connectors.wfs_request import Box, GetFeature
from citypipe.geo.errors import CitypipeError

__all__ = ["REFUSED", "Pager", "PagingFailed"]

REFUSED = (ServerRefusal, ServerFailure)
"""Exception reports that say a request cannot be answered in this form."""


class PagingFailed(Exception):
    """Paging is refused or ignored: the harvest goes on by tiles."""


class Pager:
    """The pages of one harvest, asked ahead; `hits` the count once it is known."""

    def __init__(
        self, client: HttpClient, request: GetFeature, box: Box | None, hits: int | None
    ) -> None:
        self.client, self.request, self.box = client, request, box
        self.hits = hits
        self.counted_by = "resultType=hits"
        self.requests = 0
        self._pool = ThreadPoolExecutor(client.policy.per_host, thread_name_prefix="wfs-page")
        self._ahead: dict[int, Future[Page]] = {}
        self._counting: Future[int | None] | None = None
        self._probe: Future[str | None] | None = None
        self._geojson = request
        self._first_id: str | None = None

    def first(self) -> Page:
        """The first page, and the count: its numberMatched, else resultType=hits (waited for:
        `inspect` declares it). The next page is asked for already where this one is full.

        The GeoJSON probe is asked for only where the first page is full (a layer of one page
        is read whole by then: measured on MapServer, a probe beside it made a one-page harvest
        1.5 times slower on a busy machine), before the second page, which is GML (the format
        is chosen when the pages after it are asked for)."""
        self._geojson = original = self.request
        self.request = original.as_gml() if original.geojson else original
        self._ahead[0] = self._submit(0)
        counts = self.request.caps.counts
        if self.hits is None and counts and not self.request.version2:
            self._counting = self._ask(count_hits, self.request, self.box)
        page = self.take(0)
        self._first_id = page.first_id
        full = page.returned >= self.request.page_size
        if self.hits is None and counts and self._counting is None and page.returned:
            self._counting = self._ask(count_hits, self.request, self.box)
        if original.geojson and full:
            self._probe = self._ask(first_geojson_id, original, self.box)
        if full:
            self.plan(page.returned, full=True, remaining=None, ahead=1)
        self.settle(wait=True)
        return page

    def decide(self) -> None:
        """The format of the pages asked for from now on, once the probe has answered:
        GeoJSON where its feature has the first GML feature's id."""
        if self._probe is None:
            return
        if _agrees(self._probe, self._first_id):
            self.request = replace(self._geojson, page_size=self.request.page_size)
        self._probe = None

    def take(self, start: int) -> Page:
        """The page at `start` (asked for now if it was not), its stated count taken."""
        future = self._ahead.pop(start, None) or self._submit(start)
        try:
            page = future.result()
        except REFUSED as e:
            raise PagingFailed(f"paging refused at feature {start}: {e}") from e
        if page.matched is not None and self.hits is None:
            self.hits, self.counted_by = page.matched, "numberMatched"
        return page

    def settle(self, wait: bool) -> None:
        """Take the hit count where it is in (waited for where `wait`: a short page, no count
        known); a server that refuses it is read to an empty page."""
        if self._counting is None or not (wait or self._counting.done()):
            return
        try:
            counted = self._counting.result()
        except REFUSED:
            counted = None
        self._counting = None
        if self.hits is None:
            self.hits, self.counted_by = counted, "resultType=hits"

    def plan(self, start: int, full: bool, remaining: int | None, ahead: int = 0) -> None:
        """Ask for the pages from `start`: as many as `remaining` features fill where it is
        known, as many as may be in flight after a `full` page where it is not, else the next
        one only (`ahead` caps them). Pages asked for from starts a short page moved are
        dropped."""
        if not ahead:
            self.decide()
        size, window = self.request.page_size, ahead or self.client.policy.per_host
        for stale in [s for s in self._ahead if s < start or (s - start) % size]:
            self._ahead.pop(stale).cancel()
        n = -(-remaining // size) if remaining is not None else (window if full else 1)
        for k in range(max(1, min(n, window))):
            if start + k * size not in self._ahead:
                self._ahead[start + k * size] = self._submit(start + k * size)

    def close(self) -> None:
        """Drop the pages asked for and not yet under way; wait for those that are."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _ask(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        self.requests += 1
        return self._pool.submit(call, self.client, *args)

    def _submit(self, start: int) -> Future[Page]:
        return self._ask(fetch_page, self.request, self.request.params(start=start, box=self.box))


def _agrees(probe: Future[str | None], first_id: str | None) -> bool:
    """Whether the GeoJSON probe's feature has the first GML feature's id."""
    try:
        return first_id is not None and probe.result() == first_id
    except CitypipeError:  # GeoJSON that cannot be read: GML it stays
        return False
