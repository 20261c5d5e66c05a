"""Reading the test servers' answers and the samples they serve, for tests: the expected
values come from the sample files, never from a server."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import requests
import shapely
from lxml import etree
from pyproj import Transformer
from shapely.geometry import shape

from servers.facts import PARKPLAETZE, SAMPLES, Layer

PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
NS = {
    "wfs2": "http://www.opengis.net/wfs/2.0",
    "gml32": "http://www.opengis.net/gml/3.2",
    "gml": "http://www.opengis.net/gml",
    "ms": "http://mapserver.gis.umn.edu/mapserver",
    "xsd": "http://www.w3.org/2001/XMLSchema",
}


@cache
def sample(layer: Layer) -> list[dict[str, Any]]:
    doc = json.loads((SAMPLES / layer.sample).read_text(encoding="utf-8"))
    return list(doc["features"])


def with_geometry(layer: Layer) -> list[dict[str, Any]]:
    return [f for f in sample(layer) if f["geometry"] and f["geometry"]["coordinates"]]


def in_crs84(layer: Layer, geometry: dict[str, Any]) -> shapely.Geometry:
    """A sample feature's geometry, longitude first (the Esslingen file is in EPSG:25832)."""
    if layer is not PARKPLAETZE:
        return shape(geometry)
    to_lonlat = Transformer.from_crs(25832, "OGC:CRS84", always_xy=True)
    return shapely.transform(
        shape(geometry), lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))
    )


def get_json(url: str, **params: Any) -> tuple[requests.Response, Any]:
    reply = requests.get(url, params={"f": "json", **params}, timeout=30)
    assert reply.status_code == 200, reply.text[:500]
    return reply, reply.json()


def kvp(version: str, request: str = "GetFeature", **params: str) -> dict[str, str]:
    return {"SERVICE": "WFS", "VERSION": version, "REQUEST": request, **params}


def wfs(url: str, version: str, **params: str) -> requests.Response:
    reply = requests.get(url, params=kvp(version, **params), timeout=30)
    assert reply.status_code == 200
    assert b"ExceptionReport" not in reply.content[:500], reply.text[:800]
    return reply


def members(reply: requests.Response) -> list[etree._Element]:
    root = etree.fromstring(reply.content, PARSER)
    return root.xpath("wfs2:member/* | gml:featureMember/*", namespaces=NS)
