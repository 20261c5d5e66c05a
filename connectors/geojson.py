"""GeoJSON: RFC 7946, the 2008 draft's `crs` member, OGC API - Features responses and JSON-FG.

Coordinates are read easting/longitude first whatever the `crs` member says, as GeoJSON
writers (GeoServer, GDAL) write them: `urn:ogc:def:crs:EPSG::4326` files hold lon, lat.
A file without a `crs` member declares nothing, and RFC 7946 defines its coordinates as
OGC:CRS84 (the batches' `default_crs`): records whose coordinates cannot be longitude and
latitude are rejected. JSON-FG's `place` (in `coordRefSys`, axis order of that CRS; OGC:CRS84
without one) is used where `geometry` is null, its solids (Prism, Polyhedron and their Multi
forms) read by `jsonfg_solids`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import orjson

from citypipe.connectors import geojson_shapes, jsonfg_solids
from citypipe.connectors.answers import count
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.documents import BLANK
from citypipe.connectors.json_code_page import read_in
from citypipe.connectors.json_numbers import WideInteger, noted_batch
from citypipe.connectors.jsonstream import (
    BATCH_BYTES,
    JSONDocument,
    Unparsed,
    open_json,
)
from citypipe.geo.crs import compound_urn
from citypipe.geo.errors import DataError

try:  # the features' members gathered by a compiled loop (geojson_members.pyx), where it built
    from citypipe.connectors.geojson_members import members
except ImportError:
    members = None  # type: ignore[assignment]

__all__ = ["GeoJSONConnector"]

_TYPE = re.compile(rb'"type"\s*:\s*"(FeatureCollection|Feature)"')
_BARE = re.compile(rb'^\{\s*"type"\s*:\s*"(' + geojson_shapes.GEOMETRY_TYPE_NAMES + rb')"')
"""A document that is one geometry object (RFC 7946 allows it; GDAL reads it as one feature),
its type first as GeoJSON writers put it."""
_DOCUMENT_TYPES = frozenset({"FeatureCollection", "Feature", *geojson_shapes.GEOMETRY_TYPES})
"""What a GeoJSON document's top level may be."""
_JSONFG_CONF = re.compile(r"json-fg(?:-1)?/([\d.]+)/conf/|\[ogc-json-fg-1-([\d.]+):")
"""JSON-FG conformance classes, as URIs (`.../spec/json-fg-1/1.0/conf/core`) or safe CURIEs."""
_CURIE = re.compile(r"\[(\w+):(\w+)\]")
_SOLIDS_CRS = "OGC:CRS84h"
"""JSON-FG's CRS for 3D coordinates where none is declared (its 2D one is OGC:CRS84)."""
_JSON_NAMES = {
    "list": "JSON array",
    "str": "string",
    "int": "number",
    "float": "number",
    "bool": "boolean",
}


def _crs(member: Any) -> str | None:
    """The CRS a 2008-style `crs` member (named, EPSG-typed or linked) names."""
    if isinstance(member, str):
        return member
    if isinstance(member, Mapping):
        props = member.get("properties") or {}
        if "name" in props:
            return str(props["name"])
        if "code" in props:
            return f"EPSG:{props['code']}"
        if "href" in props:  # a `link` CRS: its address, which is never fetched
            return str(props["href"])
    return None


def _coord_ref_sys(value: Any) -> str | None:
    """The CRS a JSON-FG `coordRefSys` names: a URI, a safe CURIE (`[EPSG:7415]`), a
    `Reference` object (its epoch is not used), or an ad hoc compound CRS, an array of those,
    which becomes an OGC compound URN. What cannot be read is returned as written, for the
    pipeline to report as an unknown CRS."""
    if isinstance(value, Mapping):
        value = value.get("href")
    if isinstance(value, str):
        curie = _CURIE.fullmatch(value.strip())
        return f"{curie[1]}:{curie[2]}" if curie else value
    if isinstance(value, list) and value:
        return compound_urn([_coord_ref_sys(v) or "" for v in value]) or str(value)
    return None


def _page_count(header: Mapping[str, Any]) -> int | None:
    """The feature count the document declares for itself.

    numberMatched counts every page of a query; a document with a `next` link is one page,
    so only numberReturned can be compared with what it holds.
    """
    paged = any(
        isinstance(k, Mapping) and k.get("rel") == "next" for k in header.get("links") or []
    )
    for key in (
        ("numberReturned",) if paged else ("numberReturned", "numberMatched", "totalFeatures")
    ):
        if (declared := count(header.get(key))) is not None:
            return declared
    return None


class GeoJSONConnector(FileConnector):
    name = "geojson"
    title = "GeoJSON"
    known_options = frozenset({"encoding"})

    @classmethod
    def sniff(cls, head: bytes) -> float:
        text = head.lstrip(BLANK)
        if not text.startswith(b"{"):
            return 0.0
        if _TYPE.search(text):
            return 0.9
        if _BARE.match(text):
            return 0.6
        return 0.5 if re.search(rb'"features"\s*:\s*\[', text) else 0.0

    batch_bytes: ClassVar[int] = BATCH_BYTES
    """Documents up to this size are parsed whole, larger ones streamed in batches of about it:
    the same documents are accepted and give the same records either way."""
    _doc: JSONDocument | None = None

    def _open(self) -> JSONDocument:
        """The scanned document, scanned once for inspect() and read() together."""
        if self._doc is None:
            doc = open_json(
                self.path,
                "features",
                self.batch_bytes,
                self.open_input,
                encoding=self.options.get("encoding"),
            )
            h = doc.header
            why = None
            if not isinstance(h, Mapping) or h.get("type") not in _DOCUMENT_TYPES:
                why = "JSON without a GeoJSON FeatureCollection, Feature or geometry"
            elif h["type"] == "FeatureCollection" and not doc.has_array:
                why = "a FeatureCollection without a features array"
            if why:
                doc.close()
                raise DataError(f"{self.path}: {why}")
            self._doc = doc
        return self._doc

    def _describe(self, header: Mapping[str, Any], count: int | None) -> SourceInfo:
        conforms = " ".join(map(str, header.get("conformsTo") or []))
        fg = _JSONFG_CONF.search(conforms)
        if fg or "coordRefSys" in header:
            fmt, version = "JSON-FG", (fg.group(1) or fg.group(2)) if fg else None
        elif "links" in header:
            fmt, version = "OGC API - Features", None
        else:
            fmt, version = "GeoJSON", None
        crs = _crs(header.get("crs"))
        name = header.get("featureType") or header.get("name")
        return SourceInfo(
            format=fmt,
            version=version,
            crs=crs,
            layers=(str(name),) if name else (),
            count=count,
            declared_count=_page_count(header),
        )

    def inspect(self) -> SourceInfo:
        doc = self._open()
        return self._describe(doc.header, doc.count if doc.has_array else 1)

    def read(self) -> Iterator[SourceBatch]:
        doc = self._open()
        try:
            header = doc.header
            if (
                header.get("type") in geojson_shapes.GEOMETRY_TYPES
            ):  # one geometry: one feature, its crs kept
                header = {"type": "Feature", "geometry": header, "crs": header.get("crs")}
            for features in doc.batches() if doc.has_array else iter([[header]]):
                for batch in page_batches(header, features):
                    yield read_in(batch, doc.codec)
        finally:
            doc.close()
            self._doc = None


def page_batches(header: Mapping[str, Any], features: list[Any]) -> Iterator[SourceBatch]:
    """The batches of `features` of a document (or of a service's page) with members `header`.

    One batch for `geometry`, and, found in the one pass over all features and read apart from
    the rest, one per CRS for the JSON-FG features that only have a `place` (the closest-to-scope
    `coordRefSys`: the place's own, the feature's, the collection's) and for the features with
    a 2008 `crs` member of their own, whose CRS the feature's or geometry's member declares
    (GeoJSON 2008, 3: an object without one acquires its parent's). Each batch notes its
    integers beyond 64 bits where `features` holds some (`Widened`)."""
    for batch in _page_batches(header, features):
        yield noted_batch(batch, features)


def _page_batches(header: Mapping[str, Any], features: list[Any]) -> Iterator[SourceBatch]:
    crs = _crs(header.get("crs"))
    coord_ref_sys = _coord_ref_sys(header.get("coordRefSys"))
    collection_class = header.get("featureType") or header.get("name")
    batch, on_place, own_crs = _batch(features, "geometry", crs, "xy", collection_class)
    if not on_place and not own_crs:
        yield batch
        return
    taken = {*on_place, *own_crs}
    rest = [f for i, f in enumerate(features) if i not in taken]
    yield _batch(rest, "geometry", crs, "xy", collection_class)[0]
    declaring: dict[str | None, list[Any]] = {}
    for i in own_crs:
        f = features[i]
        g = f["geometry"]
        own = _crs(g["crs"]) if type(g) is dict and "crs" in g else _crs(f.get("crs"))
        declaring.setdefault(own or crs, []).append(f)
    for own, declared in declaring.items():
        yield _batch(declared, "geometry", own, "xy", collection_class)[0]
    by_crs: dict[str | None, list[Any]] = {}
    for i in on_place:
        f = features[i]
        place = f["place"] if type(f["place"]) is dict else {}
        own = _coord_ref_sys(place.get("coordRefSys")) or _coord_ref_sys(f.get("coordRefSys"))
        default = _SOLIDS_CRS if place.get("type") in jsonfg_solids.SOLIDS else None
        by_crs.setdefault(own or coord_ref_sys or default, []).append(f)
    for place_crs, placed in by_crs.items():
        yield _batch(placed, "place", place_crs, "authority", collection_class)[0]


def _id(value: Any) -> str:
    """A feature's id as text: a string or number as written, anything else (true, an object,
    which RFC 7946 does not allow) as its JSON, not as Python writes it ("True", "{'a': 1}");
    an integer beyond 64 bits as its digits."""
    if type(value) in (str, int, float, WideInteger):
        return str(value)
    return orjson.dumps(value).decode()


def _members(
    features: list[Any], geometry_key: str, collection_class: Any, id_text: Callable[[Any], str]
) -> tuple[
    list[str | None], list[dict[str, Any]], list[str | None], list[Any], list[Any],
    list[int], list[int], list[int], list[int],
]:  # fmt: skip
    """Each feature's id, properties, class, time and geometry, and which features are not
    Features, have only a JSON-FG `place`, declare their own CRS, or have properties that are
    neither an object nor null (what they hold would be lost): geojson_members.members where
    it built, in one pass."""
    ids: list[str | None] = []
    props: list[dict[str, Any]] = []
    classes: list[str | None] = []
    observed: list[Any] = []
    geoms: list[Any] = []
    not_features: list[int] = []
    on_place: list[int] = []
    own_crs: list[int] = []
    bad_properties: list[int] = []
    for f in features:
        if type(f) is not dict or f.get("type") != "Feature":
            not_features.append(len(ids))
            f = {}
        # a string id as it is, without a call per feature (most sources' ids are strings)
        ids.append(i if (i := f.get("id")) is None or type(i) is str else id_text(i))
        props.append(p if type(p := f.get("properties")) is dict else {})
        if p is not None and type(p) is not dict:
            bad_properties.append(len(ids) - 1)
        classes.append(None if (c := f.get("featureType") or collection_class) is None else str(c))
        observed.append(
            t.get("instant") or t.get("date") if type(t := f.get("time")) is dict else None
        )
        geoms.append(g := f.get(geometry_key))
        if g is None and f.get("place") is not None:
            on_place.append(len(ids) - 1)
        elif "crs" in f or (type(g) is dict and "crs" in g):
            own_crs.append(len(ids) - 1)
    return ids, props, classes, observed, geoms, not_features, on_place, own_crs, bad_properties


def _batch(
    features: list[Any], geometry_key: str, crs: str | None, axis: Any, collection_class: Any
) -> tuple[SourceBatch, list[int], list[int]]:
    """The batch, which features have no `geometry` but a JSON-FG `place`, and which declare
    their own CRS (a 2008 `crs` member on the feature or its geometry)."""
    gather = members if members is not None else _members
    ids, props, classes, observed, geoms, not_features, on_place, own_crs, bad_properties = gather(
        features, geometry_key, collection_class, _id
    )
    solids: dict[int, Any] = {}
    if geometry_key == "place":
        geoms, solids = jsonfg_solids.split(geoms)
    shapes, errors = geojson_shapes.to_geometries(geoms)
    for i in bad_properties:
        kind = type(features[i]["properties"]).__name__
        errors[i] = errors[i] or f"properties are a {_JSON_NAMES.get(kind, kind)}, not an object"
    for i in not_features:
        f = features[i]
        errors[i] = f.reason if isinstance(f, Unparsed) else "not a GeoJSON Feature object"
    solids3d, heights = None, None
    if solids:
        shapes, solids3d, heights = jsonfg_solids.merge(shapes, solids, errors)
    batch = geojson_shapes.geojson_batch(
        ids, shapes, props, features, classes, observed, errors,
        crs=crs, axis_order=axis, height_m=heights, solids=solids3d,
    )  # fmt: skip
    return batch, on_place, own_crs
