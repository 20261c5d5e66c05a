"""OGC API - Features: a collection's items, page after page, as GeoJSON or JSON-FG.

The harvest follows each page's `next` link and ends where a page has none: never by counting,
since a server may return fewer features than the limit before the end (the short page that
stops GDAL's paging, OSGeo/gdal#8653). Query parameters in the URL (bbox, datetime, filter,
crs, limit) are the user's and are passed on as written; `limit` defaults to `page_size`.
A response in another CRS (Part 2, its `Content-Crs` header) holds coordinates in that CRS's
own axis order; without one, GeoJSON's OGC:CRS84, longitude first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit

from citypipe.connectors.base import ServiceConnector, SourceBatch, SourceInfo
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.http import Reply
from citypipe.geo.errors import DataError

__all__ = ["OGCAPIFeaturesConnector"]

_GEOJSON = "application/geo+json"
_ACCEPT = f"{_GEOJSON}, application/vnd.ogc.fg+json;q=0.9, application/json;q=0.8"


class OGCAPIFeaturesConnector(ServiceConnector):
    name = "ogcapi"
    title = "OGC API - Features"
    page_size = 1000
    """Features asked for per page where the URL names no `limit` (servers cap it anyway)."""

    @classmethod
    def accepts(cls, url: SplitResult) -> float:
        found = _collection(url.path)
        return (0.9 if found[1] else 0.6) if found else 0.0

    _first: tuple[Reply, Mapping[str, Any]] | None = None
    """The first page, fetched by `inspect` and read first by `read`."""

    @property
    def collection(self) -> str | None:
        found = _collection(urlsplit(self.url).path)
        return found[0] if found else None

    def _items_url(self) -> str:
        """The items URL with the user's parameters and a `limit`."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not (found := _collection(path)) or not found[1]:
            path += "/items"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("limit", str(self.query.page_size or self.page_size))
        return parts._replace(path=path, query=urlencode(query)).geturl()

    def _get(self, url: str) -> tuple[Reply, Mapping[str, Any]]:
        reply = self.client.get(url, headers={"Accept": _ACCEPT})
        page = reply.json()
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise DataError(f"{url}: the answer is not a GeoJSON FeatureCollection")
        return reply, page

    def inspect(self) -> SourceInfo:
        self._first = reply, page = self._first or self._get(self._items_url())
        matched = page.get("numberMatched")
        return SourceInfo(
            format=self.title,
            crs=_content_crs(reply),
            layers=(self.collection,) if self.collection else (),
            declared_count=matched if isinstance(matched, int) else None,
        )

    def read(self) -> Iterator[SourceBatch]:
        reply, page = self._first or self._get(self._items_url())
        self._first = None
        seen = {reply.url}
        while True:
            yield from _batches(reply, page)
            following = _next_link(page)
            if following is None:
                return
            url = urljoin(reply.url, following)
            if url in seen:
                raise DataError(f"{url}: the `next` link leads back to a page already read")
            seen.add(url)
            reply, page = self._get(url)


def _batches(reply: Reply, page: Mapping[str, Any]) -> Iterator[SourceBatch]:
    """The page's batches; a Part 2 `Content-Crs` applies to `geometry` (JSON-FG's `place`
    names its own CRS)."""
    crs = _content_crs(reply)
    for batch in page_batches(page, page["features"]):
        if crs and batch.axis_order == "xy" and batch.crs is None:
            batch = replace(batch, crs=crs, axis_order="authority")
        yield batch


def _collection(path: str) -> tuple[str, bool] | None:
    """The collection a URL path names, and whether it names the collection's items: the
    standard's `{landing page}/collections/{collectionId}[/items]`."""
    segments = path.rstrip("/").split("/")
    items = segments[-1] == "items"
    if items:
        segments.pop()
    if len(segments) >= 2 and segments[-2] == "collections" and segments[-1]:
        return segments[-1], items
    return None


def _content_crs(reply: Reply) -> str | None:
    """The CRS a Part 2 response declares in its `Content-Crs` header, `<uri>`."""
    value = reply.headers.get("Content-Crs", "").strip().strip("<>").strip()
    return value or None


def _next_link(page: Mapping[str, Any]) -> str | None:
    """The `next` link's address in JSON (a page offers one per format; untyped counts as JSON)."""
    for link in page.get("links") or []:
        if (
            isinstance(link, Mapping)
            and link.get("rel") == "next"
            and link.get("href")
            and "json" in str(link.get("type", "json"))
        ):
            return str(link["href"])
    return None
