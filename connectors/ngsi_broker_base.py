"""What the NGSI-LD and NGSI v2 broker connectors share: the address, the request's parameters
from the URL and the `Query`, credentials from the environment, the pager.

The URL is the entities endpoint with the broker's own query (`?type=X&q=...`), requested as the
user wrote it: a URL whose path ends with the API's resource (`.../ngsi-ld/v1/entities`, under
any prefix a gateway adds) is told by its path; a broker at a path of its own is named with
`--format` (a catalog entry's `format:`). `Query.layer`
is the entity type, `Query.page_size` the `limit`, `Query.bbox` a geo-query where the API has
one. Options (a catalog entry's `options:`): `tenant` (NGSILD-Tenant / Fiware-Service),
`service_path` (Fiware-ServicePath), `token_env` (the environment variable holding a bearer
token: credentials never sit in the catalog), `contexts` (the @contexts beyond the
shipped ones it may use: jsonld_context.ContextPolicy).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from functools import cached_property
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

from citypipe.connectors.base import LayerInfo, ServiceConnector, SourceBatch, SourceInfo
from citypipe.connectors.http import Reply
from citypipe.connectors.json_code_page import read_in
from citypipe.connectors.json_numbers import noted_batch
from citypipe.connectors.jsonld_context import Contexts, for_source
from citypipe.connectors.ngsi_entities import entity_batch
from citypipe.connectors.ngsi_paging import Dialect, Pager, Representation, respellings
from citypipe.geo.errors import ConfigurationError

__all__ = ["BrokerConnector", "link_context"]

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
T = TypeVar("T")


class BrokerConnector(ServiceConnector):
    """A query of a context broker's entities, harvested completely by `Pager`."""

    resource: ClassVar[tuple[str, ...]]
    """The path segments the API gives the resource, which a URL's path ends with:
    ("ngsi-ld", "v1", "entities")."""
    dialect: ClassVar[Dialect]
    version: ClassVar[str]
    option_headers: ClassVar[tuple[tuple[str, str], ...]] = ()
    """Options sent as request headers: (option, header), e.g. (tenant, NGSILD-Tenant); with
    `token_env` and `contexts`, the options the broker's connector takes."""
    page_size = 1000
    """Entities asked for per page (the common ceiling) where neither URL nor query names one."""
    modified: ClassVar[str] = ""
    """The entities' modification time as the query language names it (modifiedAt,
    dateModified): what an incremental harvest asks by; "" where it cannot."""

    @classmethod
    def accepts(cls, url: Any) -> float:
        segments = tuple(s for s in url.path.split("/") if s)
        return 0.95 if segments[-len(cls.resource) :] == cls.resource else 0.0

    @cached_property
    def endpoint_url(self) -> str:
        parts = urlsplit(self.url)
        return parts._replace(query="", fragment="").geturl().rstrip("/")

    @cached_property
    def params(self) -> dict[str, str]:
        """The broker query: the URL's parameters with the `Query`'s."""
        params = dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))
        query = self.query
        if query.layer:
            named = params.get("type")
            if named and named != query.layer:
                raise ConfigurationError(
                    f"{self.url}: the URL names type {named!r}, the query {query.layer!r}"
                )
            params["type"] = query.layer
        for given, what in ((query.filter, "--filter"), (query.datetime, "--datetime")):
            if given is not None and not self._takes(what):
                raise ConfigurationError(
                    f"{self.url}: {what} does not apply to {self.title}; write the broker's own "
                    "query in the URL (?q=...)"
                )
        if query.crs is not None and query.crs.upper() not in ("OGC:CRS84", "EPSG:4326"):
            raise ConfigurationError(f"{self.url}: {self.title} answers in WGS 84 only")
        if query.bbox is not None:
            params.update(self.bbox_params(query.bbox))
        if query.page_size:
            params["limit"] = str(query.page_size)
        if query.since is not None:
            params["q"] = self._since(params.get("q"), query.since)
        return params

    def _since(self, q: str | None, since: str) -> str:
        """The broker query with only the entities modified at or after `since` (an
        incremental harvest), by the API's own modification time."""
        if not self.modified:
            raise ConfigurationError(f"{self.url}: {self.title} cannot be harvested incrementally")
        term = f"{self.modified}>={since}"
        return term if not q else f"({q});{term}" if "|" in q else f"{q};{term}"

    def _takes(self, flag: str) -> bool:
        """Whether this connector reads a Query field beyond layer, bbox and page size."""
        return False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.known_options = frozenset({"token_env", "contexts", *dict(cls.option_headers)})

    def bbox_params(self, bbox: tuple[float, float, float, float]) -> dict[str, str]:
        raise ConfigurationError(f"{self.url}: {self.title} has no geo-query for --bbox")

    def headers(self) -> dict[str, str]:
        """The request headers: Accept, the tenant's, the bearer token from the environment."""
        headers = {"Accept": "application/json"}
        for option, header in self.option_headers:
            if self.options.get(option):
                headers[header] = str(self.options[option])
        token_env = self.options.get("token_env")
        if token_env:
            token = os.environ.get(str(token_env))
            if not token:
                raise ConfigurationError(f"{self.url}: the environment has no {token_env}")
            headers["Authorization"] = f"Bearer {token}"
        return headers

    @cached_property
    def representation(self) -> Representation:
        """The URL's representation option as the broker takes it, for all the pagers."""
        return Representation(respellings(self.params, self.dialect.spellings))

    def pager(self) -> Pager:
        params = dict(self.params)
        size = int(params.pop("limit", self.page_size))
        params.pop("offset", None)
        return Pager(
            self.client,
            self.endpoint_url,
            params,
            self.headers(),
            self.dialect,
            size,
            representation=self.representation,
        )

    def inspect(self) -> SourceInfo:
        pager = self.pager()
        count = pager.declared(pager.params)
        kind = self.params.get("type")
        details = {
            "paging": "limit + offset with the count, split by idPattern"
            if count is not None
            else "limit + offset up to the first empty page (the broker sends no count)"
        }
        if self.representation.note:
            details["representation"] = self.representation.note
        return SourceInfo(
            format=self.title,
            version=self.version,
            crs="OGC:CRS84",
            layers=(kind,) if kind else (),
            layer_info=(LayerInfo(kind, crs=("OGC:CRS84",), count=count),) if kind else (),
            declared_count=count,
            details=details,
        )

    def read(self) -> Iterator[SourceBatch]:
        """The pages as batches; the next page is fetched while this one is read (the broker's
        time and the reader's overlap). Where the broker refused the URL's representation,
        each batch says what was asked instead, where it sends no count, that the harvest's
        completeness is unchecked, and where its JSON is in a code page it does not name, which
        one it is read in (as a file's and an OGC API page's: warnings the run reports once)."""
        pager = self.pager()
        for reply, page in ahead(pager.pages()):
            batch = read_in(self.batch(reply, page), reply.json_read()[1])
            for note in (self.representation.note, pager.uncounted):
                if note:
                    batch = batch.warned(note)
            yield batch

    @cached_property
    def contexts(self) -> Contexts:
        """The @contexts the harvest may use (the `contexts` option), loaded once for all
        pages."""
        return for_source(self.options.get("contexts"), self.client)

    def batch(self, reply: Reply, page: list[Any]) -> SourceBatch:
        """A page of entities as a SourceBatch, with the @context of its Link header."""
        batch = entity_batch(page, context=link_context(reply), contexts=self.contexts)
        return noted_batch(batch, page)


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`items`, produced by a thread of their own up to `depth` ahead of the consumer; its
    exception raised where the consumer reaches it; the producer stops when the consumer
    does."""
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        """Hand an entry over unless the consumer has stopped."""
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, None))
        except Exception as e:  # noqa: BLE001 - any error is handed to the consumer, raised there
            offer((False, e))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def link_context(reply: Reply) -> str | None:
    """The @context a reply's Link header names (rel = the JSON-LD context), if any."""
    from requests.utils import parse_header_links  # here, not at load: detection loads this

    for link in parse_header_links(reply.headers.get("Link", "")):
        if link.get("rel") == CONTEXT_REL and link.get("url"):
            return str(link["url"])
    return None
