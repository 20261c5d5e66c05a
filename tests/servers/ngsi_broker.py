"""A small but real NGSI-LD and NGSI v2 context broker on 127.0.0.1, for the broker tests.

It follows ETSI GS CIM 009 where a harvester meets it, and the habits of real brokers where
the spec leaves room:
- GET /ngsi-ld/v1/entities: type, id, idPattern, q, georel + geometry + coordinates, attrs,
  limit (default 20) + offset, count=true -> NGSILD-Results-Count, options=keyValues (or
  format=simplified) / concise; Accept application/json (the @context in a Link header),
  application/ld+json (inline), application/geo+json (a FeatureCollection). A query naming none
  of type, id, idPattern, q, georel, attrs is refused, as the spec says.
- System attributes: every entity's createdAt / modifiedAt (NGSI v2: dateCreated /
  dateModified), shown with options=sysAttrs (v2: when `attrs` names them), queried in `q` as
  instants (`q=modifiedAt>=2026-12-04T03:00:00Z`, Orion-LD and Orion do); `upsert` changes or
  adds an entity as a PATCH / POST would, stamping modifiedAt with the broker's clock.
- NGSILD-Tenant: a tenant the broker does not hold -> 404 NonexistentTenant.
- Errors as ProblemDetails JSON (type, title, detail).
- A representation it does not know (`unknown_options`: keyValues, simplified, concise as
  options= or format= values) -> 400, as Stellio and Scorpio each refuse another spelling.
- The page-size ceiling: `limit` above `max_limit` -> 400 BadRequestData "must be an integer
  value <= 1000" as Orion-LD answers (FIWARE/context.Orion-LD#1607), or 403 TooManyResults as
  CIM 009 1.8 says (`limit_status=403`).
- The offset limit of Orion-LD#1407: from `max_offset` on, pages are empty while the count
  still says more.
- GET /ngsi-ld/v1/temporal/entities: timerel (before / after / between, timeAt, endTimeAt),
  lastN, attrs, limit + offset + count over entities; at most `max_instances` instances of an
  attribute per answer, beyond which it answers 206 Partial Content with
  `Content-Range: date-time <start>-<end>/<lastN or *>` (CIM 009 6.3.10): forwards without
  lastN, backwards with it, always cut between two instants (never inside one).
- GET /v2/entities: type, id, idPattern, q, attrs, limit (<= 1000, else 400 "Bad pagination
  limit"), offset, options=count -> Fiware-Total-Count, options=keyValues; Fiware-Service
  (an unknown one holds nothing, as Orion's) and Fiware-ServicePath (`/a/#` for a subtree).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import shapely
from loopback import serving

from servers import ngsi_data
from servers.ngsi_query import QueryError, geo_filter, q_filter
from servers.ngsi_temporal import temporal_page

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@dataclass(frozen=True)
class BrokerPolicy:
    max_limit: int = 1000
    limit_status: int = 400
    """400: Orion-LD's BadRequestData; 403: CIM 009's TooManyResults."""
    max_offset: int | None = None
    """Offsets from here on answer an empty page (Orion-LD#1407); None: no limit."""
    max_instances: int = 10
    """Temporal instances of one attribute per answer."""
    default_limit: int = 20
    counts: bool = True
    """False: no count header, as behind a proxy that drops it."""
    code_page: str | None = None
    """Pages written in this code page (non-ASCII text as it is), their Content-Type naming no
    charset: a broker on a Windows host fed from a cp1252 export; None: UTF-8 JSON."""
    unknown_options: frozenset[str] = frozenset()
    """Representations (options= or format= values) the broker does not know and answers 400
    for: Stellio and Scorpio differ on keyValues / simplified / concise, which CIM 009 renamed
    and added over its versions."""


class Refusal(Exception):
    """An error answer: status, ProblemDetails (or NGSI v2 error) body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status, self.body = status, body


def problem(status: int, kind: str, title: str, detail: str = "") -> Refusal:
    return Refusal(status, {"type": ERRORS + kind, "title": title, "detail": detail})


@dataclass
class NgsiBroker:
    url: str = ""
    policy: BrokerPolicy = field(default_factory=BrokerPolicy)
    ld: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    """Tenant (None: the default) -> its entities, normalized with their @context."""
    v2: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """(Fiware-Service, Fiware-ServicePath) -> NGSI v2 entities."""
    seen: list[str] = field(default_factory=list)
    """Every request's path and query, in order."""
    _shapes: dict[str, shapely.Geometry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def upsert(self, entity: dict[str, Any], tenant: str | None = None) -> None:
        """Change or add an NGSI-LD entity (by id), modified now by the broker's clock; its
        v2 form in the default service (`/`) likewise."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            for held, stamp, form in (
                (self.ld.setdefault(tenant, []), "At", entity),
                (self.v2.setdefault((tenant or "", "/"), []), "", ngsi_data.to_v2(entity)),
            ):
                old = next((e for e in held if e["id"] == entity["id"]), None)
                created = _system_time(old, stamp, "created") if old else now
                new = {**form, **_system(stamp, created, now)}
                if old is None:
                    held.append(new)
                else:
                    held[held.index(old)] = new
            self._shapes.pop(entity["id"], None)

    @property
    def ld_url(self) -> str:
        return f"{self.url}/ngsi-ld/v1/entities"

    def shape(self, entity: dict[str, Any]) -> shapely.Geometry:
        key = entity["id"]
        if key not in self._shapes:
            self._shapes[key] = shapely.geometry.shape(entity["location"]["value"])
        return self._shapes[key]

    def check_options(self, params: dict[str, str], v2: bool = False) -> None:
        """A representation the broker does not know refused, as NGSI-LD (ProblemDetails) or
        Orion (its own error body) refuses it."""
        unknown = sorted(_options(params) & self.policy.unknown_options)
        if unknown and v2:
            raise Refusal(
                400, {"error": "BadRequest", "description": "Invalid value for URI param /options/"}
            )
        if unknown:
            raise problem(400, "BadRequestData", "Unknown option", f"{unknown[0]} is not valid")

    def page_bounds(self, params: dict[str, str], max_limit: int | None = None) -> tuple[int, int]:
        """(limit, offset) of a request, refused above the ceiling."""
        try:
            limit = int(params.get("limit", self.policy.default_limit))
            offset = int(params.get("offset", 0))
        except ValueError as e:
            raise problem(400, "BadRequestData", "limit and offset are integers", str(e)) from e
        ceiling = max_limit or self.policy.max_limit
        if limit > ceiling and self.policy.limit_status == 403:
            raise problem(403, "TooManyResults", "Too many results", f"limit {limit} > {ceiling}")
        if limit > ceiling or limit < 0 or offset < 0:
            raise problem(
                400,
                "BadRequestData",
                "Invalid value for URI parameter /limit/",
                f"must be an integer value <= {ceiling}",
            )
        return limit, offset

    def window(self, selected: list[Any], limit: int, offset: int) -> list[Any]:
        if self.policy.max_offset is not None and offset >= self.policy.max_offset:
            return []
        return selected[offset : offset + limit]

    def select(
        self, entities: list[dict[str, Any]], params: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The entities a query's filters select, in the broker's (stable) order."""
        tests: list[Callable[[dict[str, Any]], bool]] = []
        if "type" in params:
            types = set(params["type"].split(","))
            tests.append(lambda e: e["type"] in types)
        if "id" in params:
            ids = set(params["id"].split(","))
            tests.append(lambda e: e["id"] in ids)
        if "idPattern" in params:
            pattern = re.compile(params["idPattern"])
            tests.append(lambda e: pattern.search(e["id"]) is not None)
        if "q" in params:
            tests.append(q_filter(params["q"]))
        if "georel" in params:
            near = geo_filter(
                params["georel"], params.get("geometry", ""), params.get("coordinates", "")
            )
            tests.append(lambda e: "location" in e and near(self.shape(e)))
        return [e for e in entities if all(t(e) for t in tests)]


def _system(at: str, created: str, modified: str) -> dict[str, Any]:
    """The system attributes: NGSI-LD `createdAt` / `modifiedAt` (at="At"), NGSI v2's builtin
    `dateCreated` / `dateModified` (at="")."""
    if at:
        return {"createdAt": created, "modifiedAt": modified}
    return {
        "dateCreated": {"type": "DateTime", "value": created, "metadata": {}},
        "dateModified": {"type": "DateTime", "value": modified, "metadata": {}},
    }


def _system_time(entity: dict[str, Any], at: str, which: str) -> str:
    value = entity[f"{which}At"] if at else entity[f"date{which.title()}"]["value"]
    return str(value)


SYSTEM = ("createdAt", "modifiedAt", "dateCreated", "dateModified")


def _without_system(entity: dict[str, Any], shown: set[str]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in SYSTEM or k in shown}


def _params(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _options(params: dict[str, str]) -> set[str]:
    return set(params.get("options", "").split(",")) | {params.get("format", "")}


def key_values(entity: dict[str, Any]) -> dict[str, Any]:
    """NGSI-LD keyValues (simplified): each attribute its value (a Relationship its object)."""
    out: dict[str, Any] = {}
    for name, attr in entity.items():
        if isinstance(attr, dict) and attr.get("type") in ("Property", "GeoProperty"):
            out[name] = attr.get("value")
        elif isinstance(attr, dict) and attr.get("type") == "Relationship":
            out[name] = attr.get("object")
        else:
            out[name] = attr
    return out


def concise(entity: dict[str, Any]) -> dict[str, Any]:
    """NGSI-LD concise: attribute types dropped, a bare value where nothing else is said."""
    out: dict[str, Any] = {}
    for name, attr in entity.items():
        if isinstance(attr, dict) and attr.get("type") in (
            "Property",
            "GeoProperty",
            "Relationship",
        ):
            rest = {k: v for k, v in attr.items() if k != "type"}
            bare = list(rest) == ["value"] and not isinstance(rest["value"], dict)
            out[name] = rest["value"] if bare else rest
        else:
            out[name] = attr
    return out


def _projected(entity: dict[str, Any], attrs: str | None) -> dict[str, Any]:
    if not attrs:
        return entity
    keep = {"id", "type", "@context", *attrs.split(",")}
    return {k: v for k, v in entity.items() if k in keep}


def render_ld(
    entities: list[dict[str, Any]], params: dict[str, str], accept: str
) -> tuple[bytes, dict[str, str]]:
    """A page of entities in the representation asked for, and its headers."""
    options = _options(params)
    shape = (
        key_values
        if {"keyValues", "simplified"} & options
        else concise
        if "concise" in options
        else dict
    )
    contexts = {json.dumps(e.get("@context")) for e in entities}
    media = _media(accept)
    inline = media == "application/ld+json" or len(contexts) > 1
    headers = {"Content-Type": "application/ld+json" if inline and media != _GEO else media}
    if not inline:
        first = entities[0] if entities else {}
        headers["Link"] = f"<{ngsi_data.domain_context(first)}>; {LINK_REL}"
    rendered = []
    shown = {"createdAt", "modifiedAt"} if "sysAttrs" in options else set()
    for entity in entities:
        body = shape(_projected(_without_system(entity, shown), params.get("attrs")))
        if not inline:
            body.pop("@context", None)
        rendered.append(body)
    if media == _GEO:
        rendered = [_feature(e, entity) for e, entity in zip(rendered, entities, strict=True)]
        return json.dumps({"type": "FeatureCollection", "features": rendered}).encode(), headers
    return json.dumps(rendered).encode(), headers


_GEO = "application/geo+json"


def _media(accept: str) -> str:
    """The first media type of `accept` the broker serves (application/json by default)."""
    for item in accept.split(","):
        media = item.split(";")[0].strip()
        if media in ("application/json", "application/ld+json", _GEO):
            return media
    return "application/json"


def _feature(rendered: dict[str, Any], entity: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in rendered.items() if k != "id"}
    geometry = entity["location"]["value"] if "location" in entity else None
    return {"id": entity["id"], "type": "Feature", "geometry": geometry, "properties": properties}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    broker: NgsiBroker


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        broker = self.server.broker
        parts = urlsplit(self.path)
        with broker._lock:
            broker.seen.append(self.path)
        params = _params(parts.query)
        routes = {
            "/ngsi-ld/v1/entities": self._ld,
            "/ngsi-ld/v1/temporal/entities": self._temporal,
            "/v2/entities": self._v2,
        }
        route = routes.get(parts.path.rstrip("/"))
        try:
            if route is None:
                raise problem(404, "ResourceNotFound", "No such resource", parts.path)
            status, body, headers = route(broker, params)
        except QueryError as e:
            self._send(*_refused(parts.path, problem(400, "BadRequestData", "Bad query", str(e))))
        except Refusal as e:
            self._send(*_refused(parts.path, e))
        except re.error as e:
            self._send(*_refused(parts.path, problem(400, "BadRequestData", "idPattern", str(e))))
        else:
            self._send(status, self._coded(body), headers)

    def _tenant(self, broker: NgsiBroker) -> list[dict[str, Any]]:
        tenant = self.headers.get("NGSILD-Tenant")
        if tenant not in broker.ld:
            raise problem(404, "NonexistentTenant", "Tenant not found", str(tenant))
        return broker.ld[tenant]

    def _ld(self, broker: NgsiBroker, params: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        entities = self._tenant(broker)
        if not {"type", "id", "idPattern", "q", "georel", "attrs"} & set(params):
            raise problem(400, "BadRequestData", "Too broad query", "name a type, q or geo-query")
        broker.check_options(params)
        limit, offset = broker.page_bounds(params)
        selected = broker.select(entities, params)
        body, headers = render_ld(
            broker.window(selected, limit, offset), params, self.headers.get("Accept", "")
        )
        if params.get("count") == "true" and broker.policy.counts:
            headers["NGSILD-Results-Count"] = str(len(selected))
        return 200, body, headers

    def _temporal(
        self, broker: NgsiBroker, params: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        entities = self._tenant(broker)
        if not {"type", "id", "idPattern", "q", "attrs"} & set(params):
            raise problem(400, "BadRequestData", "Too broad query", "name a type or ids")
        broker.check_options(params)
        limit, offset = broker.page_bounds(params)
        selected = broker.select(entities, params)
        page = broker.window(selected, limit, offset)
        status, rendered, headers = temporal_page(page, params, broker.policy.max_instances)
        headers["Content-Type"] = "application/json"
        if page:
            headers["Link"] = f"<{ngsi_data.domain_context(page[0])}>; {LINK_REL}"
        if params.get("count") == "true":
            headers["NGSILD-Results-Count"] = str(len(selected))
        return status, json.dumps(rendered).encode(), headers

    def _v2(self, broker: NgsiBroker, params: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        service = self.headers.get("Fiware-Service", "")
        path = self.headers.get("Fiware-ServicePath", "/#")
        entities = [
            e
            for (svc, sp), held in broker.v2.items()
            if svc == service and _under(sp, path)
            for e in held
        ]
        broker.check_options(params, v2=True)
        if params.get("limit") == "0":  # Orion: telefonicaid/fiware-orion#1492
            raise Refusal(
                400,
                {
                    "error": "BadRequest",
                    "description": "Bad pagination limit: /0/ [a value of ZERO is unacceptable]",
                },
            )
        try:
            limit, offset = broker.page_bounds(params, max_limit=1000)
        except Refusal as e:
            limit = params.get("limit", "")
            raise Refusal(
                400,
                {
                    "error": "BadRequest",
                    "description": f"Bad pagination limit: /{limit}/ [max: 1000]",
                },
            ) from e
        selected = broker.select(entities, params)
        options = _options(params)
        shown = set(params.get("attrs", "").split(","))
        page = [
            _projected(_without_system(e, shown), params.get("attrs"))
            for e in broker.window(selected, limit, offset)
        ]
        if "keyValues" in options:
            page = [
                {k: v["value"] if isinstance(v, dict) else v for k, v in e.items()} for e in page
            ]
        headers = {"Content-Type": "application/json"}
        if "count" in options and broker.policy.counts:
            headers["Fiware-Total-Count"] = str(len(selected))
        return 200, json.dumps(page).encode(), headers

    def _coded(self, body: bytes) -> bytes:
        """A page in the policy's code page (BrokerPolicy.code_page), else as it is."""
        code_page = self.server.broker.policy.code_page
        if code_page is None:
            return body
        return json.dumps(json.loads(body), ensure_ascii=False).encode(code_page)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _under(held: str, asked: str) -> bool:
    """Whether entities at service path `held` answer a query for `asked` (`/a/#`: a subtree)."""
    if asked.endswith("/#"):
        root = asked[:-2]
        return held == root or held.startswith(root.rstrip("/") + "/") or root == ""
    return held == asked


def _refused(path: str, refusal: Refusal) -> tuple[int, bytes, dict[str, str]]:
    kind = "application/json"
    return refusal.status, json.dumps(refusal.body).encode(), {"Content-Type": kind}


def loaded(
    copies: int = 1500,
    tenants: dict[str, tuple[str, int]] | None = None,
    policy: BrokerPolicy | None = None,
) -> NgsiBroker:
    """A broker holding `copies` copies of each sample type (in the default tenant and, for v2,
    in the default service at `/`), and for each tenant (name -> (type, copies)) those; for v2
    the same tenants as services at `/<type>`."""
    broker = NgsiBroker(policy=policy or BrokerPolicy())
    ld, v2 = _system("At", *[ngsi_data.LOADED_AT] * 2), _system("", *[ngsi_data.LOADED_AT] * 2)
    broker.ld[None] = [{**e, **ld} for t in ngsi_data.TYPES for e in ngsi_data.copies_of(t, copies)]
    broker.v2[("", "/")] = [
        {**e, **v2} for t in ngsi_data.TYPES for e in ngsi_data.v2_copies(t, copies)
    ]
    for name, (entity_type, count) in (tenants or {}).items():
        broker.ld[name] = [{**e, **ld} for e in ngsi_data.copies_of(entity_type, count)]
        broker.v2[(name, f"/{entity_type}")] = [
            {**e, **v2} for e in ngsi_data.v2_copies(entity_type, count)
        ]
    return broker


@contextmanager
def serve_broker(broker: NgsiBroker, port: int = 0) -> Iterator[NgsiBroker]:
    """`broker` answering on `port` (0: a free one) of 127.0.0.1 for the duration."""
    httpd = _Server(("127.0.0.1", port), _Handler)
    httpd.broker = broker
    with serving(httpd) as url:
        broker.url = url
        yield broker


def main() -> None:
    """`PYTHONPATH=tests python -m servers.ngsi_broker --port N`: the loaded broker until
    interrupted (the bench runs it in a process of its own)."""
    parser = argparse.ArgumentParser(prog="python -m servers.ngsi_broker")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with serve_broker(loaded(), args.port) as broker:
        print(broker.url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
