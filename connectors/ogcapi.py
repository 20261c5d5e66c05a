"""OGC API - Features (Parts 1 to 3, JSON-FG): a collection's items, harvested completely.

The address may be the landing page, /collections, a collection or its items; `Query.layer`
names the collection where the URL does not. Before the first page citypipe reads
/conformance and /collections: which classes the server declares decides what is asked of it.

- Paging follows each page's `next` link and ends on a page without one, or on an empty page:
  never by counting, since a server may return fewer features than the limit before the end
  (the short page that stops GDAL's paging, OSGeo/gdal#8653), and never by guessing offsets.
  A last page that is full and states no numberMatched is warned of: a `next` link dropped
  before the end looks the same.
- Complete or nothing: the features read must equal the first page's numberMatched, else the
  harvest fails naming both numbers (the server's count is wrong, or pages were lost); and
  at once where a page holds the first page's features again (a server that ignores the
  offset or cursor of its own `next` link would otherwise be read forever).
- Part 2: `Query.crs` is asked for in the spelling of the collection's list (refused when it
  is not listed); without one, a collection's storageCrs is asked for (its coordinates as
  stored, transformed by pyproj rather than by the server). The response's `Content-Crs`
  header wins over anything the body says, in that CRS's own axis order.
- Part 3: `Query.filter` (CQL2 text) goes to the server where it declares filtering and
  cql2-text, else citypipe filters the harvested records itself (`local_filter`).
- JSON-FG is asked for where a collection offers it (`place` in its CRS, `time`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urljoin, urlsplit

import orjson

from citypipe.connectors.answers import count, json_exception
from citypipe.connectors.base import LayerInfo, ServiceConnector, SourceBatch, SourceInfo
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.http import Reply
from citypipe.connectors.json_code_page import read_in
from citypipe.connectors.local_filter import PropertyFilter
from citypipe.connectors.ogcapi_service import (
    CRS84_URI,
    JSONFG,
    Address,
    check_item_type,
    conformance,
    crs_name,
    item_types,
    layer_info,
    media_f,
    offered_crs,
)
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["OGCAPIFeaturesConnector"]

_GEOJSON = "application/geo+json"
_ACCEPT = f"{_GEOJSON}, {JSONFG};q=0.9, application/json;q=0.8"
_ACCEPT_FG = f"{JSONFG}, {_GEOJSON};q=0.9, application/json;q=0.8"
_META = "application/json"
_Page = tuple[Reply, Mapping[str, Any]]
"""A page's reply and its JSON (the reply keeps the code page it was read in)."""
_ABSENT = (404, 410)
"""Statuses of a service document that is not there: no OGC API service at that address."""
_NO_SERVICE = "not an OGC API - Features service"
"""What a user who pasted a web page's URL needs to hear, before the 404 of a request they
never made."""


class OGCAPIFeaturesConnector(ServiceConnector):
    name = "ogcapi"
    title = "OGC API - Features"
    page_size = 1000
    """Features asked for per page where neither the URL nor the query names a `limit`."""
    incremental = "`datetime=<watermark>/..` on a collection with a temporal extent"

    @classmethod
    def accepts(cls, url: SplitResult) -> float:
        query = {k.lower() for k, _ in parse_qsl(url.query)}
        if "service" in query or "request" in query:
            return 0.0  # an OWS (WFS, WMS ...) key-value request
        address = Address.of(url.geturl())
        if address.collection:
            return 0.9 if address.items else 0.7
        return 0.5 if url.path.rstrip("/").endswith("/collections") else 0.2

    _first: _Page | None = None
    """The first page, fetched by `inspect` and read first by `read`."""
    _headers: Mapping[str, str] = {"Accept": _ACCEPT}
    """The request headers of every page (the format chosen for the first)."""

    @cached_property
    def address(self) -> Address:
        return Address.of(self.url)

    @property
    def collection(self) -> str | None:
        """The collection read: the URL's, else `Query.layer`."""
        named, asked = self.address.collection, self.query.layer
        if named and asked and named != asked:
            raise ConfigurationError(
                f"{self.url}: the URL names collection {named!r}, the query {asked!r}"
            )
        return named or asked

    @cached_property
    def filter(self) -> PropertyFilter | None:
        return PropertyFilter(self.query.filter) if self.query.filter else None

    def _json(self, url: str) -> Any:
        """A service document; where it is not there (404, 410), no OGC API service is."""
        reply = self.client.get(url, headers={"Accept": _META}, accept=_ABSENT)
        if reply.status in _ABSENT:
            raise ConfigurationError(f"{self.url}: {_NO_SERVICE}: {url} answers {reply.status}")
        return reply.json()

    @cached_property
    def _documents(self) -> tuple[Any, Any]:
        """/conformance and /collections, asked for together (both are read before the first
        page; in series they were a third of a one-page harvest's requests)."""
        root = self.address.root
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="ogcapi") as pool:
                collections = pool.submit(self._json, f"{root}/collections")
                return self._json(f"{root}/conformance"), collections.result()
        except DataError as e:  # a web page: no JSON where the standard has it
            raise DataError(f"{self.url}: {_NO_SERVICE}: {e}") from e

    @cached_property
    def conformance(self) -> dict[str, str]:
        return conformance(self._documents[0])

    @cached_property
    def _collections_doc(self) -> Mapping[str, Any]:
        doc = self._documents[1]
        if not isinstance(doc, Mapping) or not isinstance(doc.get("collections"), list):
            raise DataError(
                f"{self.address.root}/collections: the answer has no `collections` list"
            )
        return doc

    @cached_property
    def collections(self) -> dict[str, Mapping[str, Any]]:
        """The /collections entries by id, in the server's order."""
        entries = self._collections_doc["collections"]
        return {str(c.get("id") or c.get("name")): c for c in entries if isinstance(c, Mapping)}

    @cached_property
    def layers(self) -> tuple[LayerInfo, ...]:
        shared = [str(c) for c in self._collections_doc.get("crs") or []]
        return tuple(layer_info(c, shared) for c in self.collections.values())

    def _layer(self) -> tuple[LayerInfo, Mapping[str, Any]]:
        """The collection read, described; refused naming the offered ones when it is not
        known or not named where the service has several."""
        name = self.collection
        names = list(self.collections)
        if name is None and len(names) == 1:
            name = names[0]
        if name is None or name not in self.collections:
            what = f"has no collection {name!r}" if name else "has several collections"
            raise ConfigurationError(
                f"{self.url}: the service {what}; name one with --layer ({', '.join(names)})"
            )
        layer = next(layer for layer in self.layers if layer.name == name)
        check_item_type(self.collections[name], self.url)
        return layer, self.collections[name]

    def _plan(self) -> tuple[str, dict[str, str]]:
        """The first items URL and the request headers."""
        layer, collection = self._layer()
        query, classes = self.query, self.conformance
        params = dict(self.address.params)
        params.setdefault("limit", str(query.page_size or self.page_size))
        if query.page_size:
            params["limit"] = str(query.page_size)
        wanted = query.crs or self._storage_crs(layer, collection)
        if wanted:
            if "crs" not in classes and crs_name(wanted) != "OGC:CRS84":
                raise ConfigurationError(
                    f"{self.url}: the server does not declare OGC API Part 2 (CRS), so it "
                    f"answers in OGC:CRS84 only, not {wanted}"
                )
            if "crs" in classes:
                params["crs"] = offered_crs(wanted, layer)
        if query.bbox:
            params["bbox"] = ",".join(repr(float(v)) for v in query.bbox)
            if "crs" in classes:
                params["bbox-crs"] = CRS84_URI
        if query.datetime or query.since:
            params["datetime"] = self._datetime(layer, collection)
        if self.filter and self._filters_remotely():
            params["filter"] = self.filter.text
            params["filter-lang"] = "cql2-text"
        fg = any(f.split(";")[0].strip() == JSONFG for f in layer.formats)
        chosen = media_f(collection, JSONFG if fg else _GEOJSON)
        if chosen and "f" not in self.address.params:
            params["f"] = chosen  # as the collection's own link asks for the format
        return self.address.items_url(layer.name, params), {"Accept": _ACCEPT_FG if fg else _ACCEPT}

    def _datetime(self, layer: LayerInfo, collection: Mapping[str, Any]) -> str:
        """The query's `datetime` (`--datetime`, a day partition's window), or for an
        incremental harvest its instant on. Only a collection with a temporal extent has a time
        the server filters by: elsewhere servers ignore `datetime` (pygeoapi without a
        time_field does) and answer every feature for every window, so it is refused; a
        `datetime` in the URL's own query is the user's, passed on as written."""
        query = self.query
        if query.since is not None and query.datetime:
            raise ConfigurationError(
                f"{self.url}: an incremental harvest asks for `datetime` itself; drop the "
                f"datetime ({query.datetime}) or the incremental harvest"
            )
        extent = collection.get("extent")
        if not (isinstance(extent, Mapping) and extent.get("temporal")):
            what = "harvested incrementally" if query.since else f"asked for {query.datetime}"
            raise ConfigurationError(
                f"{self.url}: collection {layer.name!r} declares no temporal extent, so "
                "`datetime` selects nothing by time (a server ignores it and answers every "
                f"feature): it cannot be {what}; a datetime= in the URL is sent as written"
            )
        return str(query.datetime) if query.since is None else f"{query.since}/.."

    def _storage_crs(self, layer: LayerInfo, collection: Mapping[str, Any]) -> str | None:
        """The storageCrs, asked for where the user names no CRS (in the query or the URL),
        the server lists it and pyproj reads it (else the server's default, OGC:CRS84)."""
        storage = collection.get("storageCrs")
        if "crs" in self.address.params or "crs" not in self.conformance:
            return None
        if not isinstance(storage, str) or storage not in layer.crs:
            return None
        try:
            crs_name(storage)
        except ConfigurationError:
            return None
        return storage

    def _filters_remotely(self) -> bool:
        classes = self.conformance
        return ("filter" in classes or "features-filter" in classes) and "cql2-text" in classes

    def _get(self, url: str, headers: Mapping[str, str]) -> _Page:
        reply = self.client.get(url, headers=headers)
        page = reply.json()
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            said = json_exception(page)
            raise DataError(
                f"{url}: the service answered with an exception: {said}"
                if said
                else f"{url}: the answer is not a GeoJSON FeatureCollection"
            )
        return reply, page

    def _first_page(self) -> _Page:
        if self._first is None:
            if self.filter and not self._filters_remotely():
                self.filter.check_local()  # refused before the harvest, not after it
            url, self._headers = self._plan()
            self._first = self._get(url, self._headers)
        return self._first

    def inspect(self) -> SourceInfo:
        classes = self.conformance
        details = {
            "conformance": ", ".join(classes) or "none recognised",
            "paging": "next links",
            "item type": self._item_types(),
        }
        first = self._first_page() if self.collection or len(self.collections) == 1 else None
        declared = None
        if first is not None:
            declared = count(first[1].get("numberMatched"))
            if self.filter and not self._filters_remotely():
                details["filter"] = f"applied by citypipe (numberMatched {declared} before it)"
                declared = None
        return SourceInfo(
            format=self.title,
            crs=self._response_crs(first[0]) if first else None,
            layers=tuple(layer.name for layer in self.layers),
            layer_info=self.layers,
            declared_count=declared,
            details=details,
        )

    def _item_types(self) -> str:
        """The `itemType` of the collection read, else of each the service offers."""
        named = self.collection
        chosen = {named: self.collections[named]} if named in self.collections else self.collections
        return item_types(chosen)

    def _response_crs(self, reply: Reply) -> str | None:
        """The CRS of a page's `geometry`: its Content-Crs, else the one asked for."""
        asked = dict(parse_qsl(reply.url.partition("?")[2])).get("crs")
        return _content_crs(reply) or asked

    def read(self) -> Iterator[SourceBatch]:
        """The pages by their `next` links, each asked for as soon as the page before it is
        parsed, so that the server answers it while citypipe reads that page."""
        reply, page = self._first_page()
        self._first = None
        matched = count(page.get("numberMatched"))
        seen, read, pages, first = {reply.url}, 0, 1, (len(page["features"]), _identity(page))
        remote = self._filters_remotely()
        limit = count(dict(parse_qsl(urlsplit(reply.url).query)).get("limit"))
        with ThreadPoolExecutor(1, thread_name_prefix="ogcapi-page") as pool:
            while held := len(page["features"]):
                read += held
                url = _next_url(reply, page, seen)
                # a page of another length is no repeat: it is not hashed
                if pages > 1 and held == first[0] and _identity(page) == first[1]:
                    raise DataError(
                        f"{reply.url}: the server answered with the first page's features again "
                        "(it ignores the position in its own `next` link); nothing was written"
                    )
                ahead = pool.submit(self._get, url, self._headers) if url else None
                cap = first[0] if pages > 1 else None  # the server's own page size
                warning = None if url or matched is not None else _cut(reply.url, held, limit, cap)
                for batch in self._batches(reply, page):
                    if warning:
                        batch = batch.warned(warning)
                    yield self.filter.select(batch) if self.filter and not remote else batch
                if ahead is None:
                    break
                reply, page = ahead.result()
                pages += 1
        if matched is not None and read != matched:
            raise DataError(
                f"{self.url}: incomplete harvest: the server declared numberMatched {matched}, "
                f"its {pages} page{'s' if pages > 1 else ''} held {read} features (the last at "
                f"{reply.url}); either "
                "pages were lost or the server's numberMatched is wrong; nothing was written"
            )

    def _batches(self, reply: Reply, page: Mapping[str, Any]) -> Iterator[SourceBatch]:
        """The page's batches. Its CRS (Content-Crs, else the one asked for) applies to
        GeoJSON's `geometry`, in that CRS's axis order, whatever a body `crs` member says; in
        JSON-FG to `place` wherever no closer `coordRefSys` names another (its `geometry` is
        always OGC:CRS84)."""
        crs = self._response_crs(reply)
        if crs and reply.media_type == JSONFG:
            page = {**page, "coordRefSys": crs}
        for batch in page_batches(page, page["features"]):
            if crs and batch.axis_order == "xy" and reply.media_type != JSONFG:
                batch = replace(batch, crs=crs, axis_order="authority")
            yield read_in(batch, reply.json_read()[1])


def _next_url(reply: Reply, page: Mapping[str, Any], seen: set[str]) -> str | None:
    """The page's `next` link as an absolute URL, added to `seen`, at the address the page came
    from where it names another host for the same items; DataError where it leads back to a
    page already read."""
    following = _next_link(page, reply.media_type)
    if following is None:
        return None
    url = urljoin(reply.url, following)
    here, there = urlsplit(reply.url), urlsplit(url)
    if there.netloc != here.netloc and Address.of(url).items:
        # a server behind a proxy names its internal address (pygeoapi's server.url left at
        # localhost:5000): its next page is where this one came from, with the link's query
        url = here._replace(query=there.query, fragment="").geturl()
    if url in seen:
        raise DataError(f"{url}: the `next` link leads back to a page already read")
    seen.add(url)
    return url


def _cut(url: str, held: int, limit: int | None, cap: int | None) -> str | None:
    """A warning where the last page of a harvest without numberMatched is full (as many
    features as the `limit` asked, or as the first of several pages: the server's own cap)
    yet has no `next` link: a server that drops `next` before the end cannot be told from a
    collection that ends on a full page, and there is no count to tell them apart."""
    if not any(full is not None and held >= full for full in (limit, cap)):
        return None
    return (
        f"the last page ({url}) held a full page of {held} features but no `next` link, "
        "and the server states no numberMatched: features after it may be missing"
    )


def _identity(page: Mapping[str, Any]) -> list[Any]:
    """What tells a page's features from another page's: their ids, or where one has none (a
    server that writes no ids) a digest of the features themselves."""
    features = page["features"]
    ids = [f.get("id") if isinstance(f, Mapping) else None for f in features]
    return ids if None not in ids else [hashlib.blake2b(orjson.dumps(features)).hexdigest()]


def _content_crs(reply: Reply) -> str | None:
    """The CRS a Part 2 response declares in its `Content-Crs` header, `<uri>`."""
    value = reply.headers.get("Content-Crs", "").strip().strip("<>").strip()
    return value or None


def _next_link(page: Mapping[str, Any], media_type: str) -> str | None:
    """The `next` link's address in the page's own format, else in any JSON (a page offers
    one per format; an untyped link counts as JSON)."""
    links = [
        link
        for link in page.get("links") or []
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href")
    ]
    types = [str(link.get("type", "json")).split(";")[0].strip() for link in links]
    for want in (lambda t: t == media_type, lambda t: "json" in t):
        for link, kind in zip(links, types, strict=True):
            if want(kind):
                return str(link["href"])
    return None
