"""What an OGC API - Features service says of itself: where its parts are, the conformance
classes it declares, and each collection as a `LayerInfo`.

Part 1 fixes the paths below the landing page (`/conformance`, `/collections`,
`/collections/{id}/items`), so any of these addresses leads to the others without guessing.
A conformance class is recognised by its specification and class names whatever the version
in its URI (JSON-FG has had several). CRS lists are compared by what pyproj reads in them, so
`EPSG:25832` finds `http://www.opengis.net/def/crs/EPSG/0/25832`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from citypipe.connectors import answers
from citypipe.connectors.base import LayerInfo
from citypipe.geo import crs as crslib
from citypipe.geo.errors import ConfigurationError, NotFeatureData

__all__ = [
    "CRS84_URI",
    "JSONFG",
    "Address",
    "check_item_type",
    "conformance",
    "crs_name",
    "item_types",
    "layer_info",
    "media_f",
    "offered_crs",
]

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
JSONFG = "application/vnd.ogc.fg+json"

CLASSES: dict[str, tuple[str, str]] = {
    "core": ("ogcapi-features-1", "core"),
    "geojson": ("ogcapi-features-1", "geojson"),
    "crs": ("ogcapi-features-2", "crs"),
    "filter": ("ogcapi-features-3", "filter"),
    "features-filter": ("ogcapi-features-3", "features-filter"),
    "cql2-text": ("cql2", "cql2-text"),
    "jsonfg": ("json-fg-1", "core"),
}
"""The classes citypipe acts on: short name -> (specification, class) in the URI
`http://www.opengis.net/spec/{specification}/{version}/conf/{class}`."""


_SUFFIXES = frozenset({"json", "geojson", "html", "jsonfg"})
"""Format suffixes of a resource's path (QGIS Server writes `.json`, `.geojson`, `.html`)."""


@dataclass(frozen=True)
class Address:
    """A user's URL read as the standard lays a service out."""

    root: str
    """The landing page, without a trailing slash."""
    collection: str | None
    items: bool
    """Whether the URL names the collection's items."""
    params: Mapping[str, str]
    """The user's query parameters, passed on to the items."""

    @classmethod
    def of(cls, url: str) -> Address:
        """`url` read as the standard lays a service out; a format suffix on its last segment
        (`items.geojson`, `parks.json`, `collections.html`: QGIS Server's links, copied from
        its HTML pages) names the resource without it, the format being asked for anyway."""
        parts = urlsplit(url)
        segments = parts.path.rstrip("/").split("/")
        stem, dot, suffix = segments[-1].rpartition(".")
        named = len(segments) > 2 and segments[-2] == "collections"
        if dot and suffix.lower() in _SUFFIXES and (stem in ("items", "collections") or named):
            segments[-1] = stem
        items = segments[-1] == "items"
        if items:
            segments.pop()
        collection = None
        if len(segments) >= 2 and segments[-2] == "collections" and segments[-1]:
            collection = unquote(segments.pop())  # GeoServer's `topp%3Astates` is `topp:states`
        if segments[-1] == "collections":
            segments.pop()
        root = parts._replace(path="/".join(segments), query="", fragment="").geturl()
        return cls(root, collection, items, dict(parse_qsl(parts.query, keep_blank_values=True)))

    def items_url(self, collection: str, params: Mapping[str, str]) -> str:
        return f"{self.root}/collections/{quote(collection, safe=':@')}/items?{urlencode(params)}"


def conformance(doc: Any) -> dict[str, str]:
    """The recognised classes a /conformance document declares: short name -> its URI."""
    declared = doc.get("conformsTo") if isinstance(doc, Mapping) else None
    if not isinstance(declared, list):
        raise ConfigurationError("the /conformance answer has no `conformsTo` list")
    found: dict[str, str] = {}
    for uri in map(str, declared):
        spec = _class_of(uri)
        for name, wanted in CLASSES.items():
            if spec == wanted:
                found.setdefault(name, uri)
    return found


def _class_of(uri: str) -> tuple[str, str] | None:
    """(specification, class) of a conformance URI, whatever its version segment:
    `.../spec/{specification}/{version}/conf/{class}`."""
    segments = urlsplit(uri).path.rstrip("/").split("/")
    if len(segments) >= 5 and segments[-5] == "spec" and segments[-2] == "conf":
        return segments[-4], segments[-1]
    return None


def layer_info(collection: Mapping[str, Any], shared_crs: Iterable[str]) -> LayerInfo:
    """A /collections entry as a LayerInfo: storageCrs first in its CRS list (`#/crs` stands
    for the list the /collections document shares), formats from its `items` links."""
    crs: list[str] = []
    for c in collection.get("crs") or [CRS84_URI]:
        crs.extend(shared_crs if c == "#/crs" else [str(c)])
    storage = collection.get("storageCrs")
    if isinstance(storage, str):
        crs = [storage, *(c for c in crs if c != storage)]
    formats = [
        str(link["type"])
        for link in collection.get("links") or []
        if isinstance(link, Mapping) and link.get("rel") == "items" and link.get("type")
    ]
    return LayerInfo(
        name=str(collection.get("id") or collection.get("name")),
        title=str(collection["title"]) if collection.get("title") else None,
        crs=tuple(dict.fromkeys(crs)),
        formats=tuple(dict.fromkeys(formats)),
        bbox=_bbox(collection.get("extent")),
        count=answers.count(collection.get("numberMatched", collection.get("itemCount"))),
    )


_ITEM_TYPES = frozenset({"feature", "record"})
"""Collection `itemType`s whose /items are GeoJSON features: OGC API - Features' default, and
OGC API - Records' records (a catalogue's entries, on the same /items, as pygeoapi serves them)."""


def check_item_type(collection: Mapping[str, Any], url: str) -> None:
    """Refuses a collection whose `itemType` (OGC API - Common) is not feature or record:
    coverages, tiles, ... whose items, if any, are no features."""
    declared = collection.get("itemType")
    if declared is None or (isinstance(declared, str) and declared.lower() in _ITEM_TYPES):
        return
    raise NotFeatureData(
        f"{url}: collection {collection.get('id')!r} has itemType {declared!r}, not features "
        "(citypipe reads the items of a collection of itemType feature or record)"
    )


def item_types(collections: Mapping[str, Mapping[str, Any]]) -> str:
    """What each collection holds, as `citypipe inspect` shows it: its `itemType` (a "record"
    catalogue, a coverage that is refused) or the default, feature; the name too where there
    are several."""
    said = {
        name: str(c["itemType"]) if c.get("itemType") is not None else "feature (the default)"
        for name, c in collections.items()
    }
    if len(said) == 1:
        return next(iter(said.values()))
    return ", ".join(f"{name}: {kind}" for name, kind in said.items()) or "-"


def _bbox(extent: Any) -> tuple[float, float, float, float] | None:
    """The overall CRS84 box of an `extent` (its first box; a 2019 draft wrote it flat)."""
    spatial = extent.get("spatial") if isinstance(extent, Mapping) else None
    if not isinstance(spatial, Mapping) or spatial.get("crs", CRS84_URI) != CRS84_URI:
        return None
    box = spatial.get("bbox")
    box = box[0] if isinstance(box, list) and box and isinstance(box[0], list) else box
    if not isinstance(box, list) or len(box) not in (4, 6):
        return None
    if not all(isinstance(v, (int, float)) for v in box):
        return None
    half = len(box) // 2
    return (box[0], box[1], box[half], box[half + 1])


def crs_name(declared: str) -> str:
    """A CRS's short name (EPSG:25832, OGC:CRS84) whatever its spelling."""
    return crslib.label(crslib.resolve(declared))


def offered_crs(asked: str, layer: LayerInfo) -> str:
    """The URI in the layer's CRS list that names the CRS `asked` (any spelling pyproj reads);
    ConfigurationError listing the offered ones when none does."""
    uri = crslib.spelled_in(asked, layer.crs)
    if uri is not None:
        return uri
    raise ConfigurationError(
        f"collection {layer.name!r} does not offer CRS {asked} (it offers {', '.join(layer.crs)})"
    )


def media_f(collection: Mapping[str, Any], media_type: str) -> str | None:
    """The `f` parameter of the collection's items link of `media_type`, where it has one."""
    for link in collection.get("links") or []:
        if (
            isinstance(link, Mapping)
            and link.get("rel") == "items"
            and str(link.get("type", "")).split(";")[0].strip() == media_type
        ):
            return dict(parse_qsl(urlsplit(str(link.get("href", ""))).query)).get("f")
    return None
