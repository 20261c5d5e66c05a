"""An OGC API - Features service on a scripted loopback server, built from real responses:
ldproxy's vineyards collection document (its CRS list, storageCrs EPSG:25832, extent) and
three of its vineyards, served in pages linked by `next`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from conftest import SAMPLES
from loopback import Answer, ScriptedServer

from citypipe.connectors.http import HttpClient, HttpPolicy

VINEYARDS = json.loads((SAMPLES / "vineyards_ldproxy_items_crs84.json").read_bytes())
FEATURES: list[dict[str, Any]] = VINEYARDS["features"]  # 3 vineyards, numberMatched 1587
COLLECTION = json.loads((SAMPLES / "vineyards_ldproxy_collection.json").read_bytes())
ROOT = "/vineyards"
ITEMS = f"{ROOT}/collections/vineyards/items"
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
PART2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"
CQL2_TEXT = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text"
JSONFG = "http://www.opengis.net/spec/json-fg-1/0.2/conf/core"


def page(
    features: list[Any], next_href: str | None, matched: int | None = 3, **members: Any
) -> bytes:
    links = [  # the HTML page's link first: it is never followed
        {"href": "x?f=html", "rel": "next", "type": "text/html"},
        {"href": next_href, "rel": "next", "type": "application/geo+json"},
    ]
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": features,
        "links": links if next_href else [],
        "numberReturned": len(features),
    }
    if matched is not None:
        body["numberMatched"] = matched
    return json.dumps({**body, **members}).encode()


def serve_metadata(
    server: ScriptedServer,
    classes: tuple[str, ...] = (CORE, GEOJSON),
    collections: list[dict[str, Any]] | None = None,
) -> None:
    """The landing page's /conformance and /collections (the vineyards collection alone by
    default), as an ldproxy serves them."""
    server.answer(f"{ROOT}/conformance", Answer(200, json.dumps({"conformsTo": classes}).encode()))
    listing = {"links": [], "collections": collections or [COLLECTION]}
    server.answer(f"{ROOT}/collections", Answer(200, json.dumps(listing).encode()))


def serve_two_pages(
    server: ScriptedServer,
    *,
    headers: dict[str, str] | None = None,
    features: list[Any] = FEATURES,
    classes: tuple[str, ...] = (CORE, GEOJSON),
    **members: Any,
) -> str:
    """Page 1 holds two vineyards and links to page 2 (relative), which holds the third;
    page 2 answers 503 once first. `members` are added to both pages' bodies."""
    serve_metadata(server, classes)
    geojson = {"Content-Type": "application/geo+json", **(headers or {})}
    first, last = (
        page(features[:2], "items?offset=2", **members),
        page(features[2:], None, **members),
    )
    server.answer(ITEMS, Answer(200, first, geojson))
    server.answer(ITEMS + "?offset=2", Answer(503), Answer(200, last, geojson))
    return server.url + ITEMS


def quick_client() -> HttpClient:
    """The shared client with retries a few milliseconds apart (the scripted 503s)."""
    return HttpClient(HttpPolicy(backoff=0.01))


def items_requests(server: ScriptedServer) -> list[dict[str, str]]:
    """The query parameters of every items request, in order."""
    return [dict(parse_qsl(r.query)) for r in server.requests if r.path == ITEMS]
