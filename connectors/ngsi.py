"""NGSI-LD and NGSI v2 entity files: one entity, an array of them (what a broker's
/entities answers) or the NGSI-LD GeoJSON form (a Feature or a FeatureCollection), in any
representation (ngsi_entities).

Chosen by content above GeoJSON, whose sniff also claims the GeoJSON form: NGSI-LD by its
attribute types, @context or entity URNs, NGSI v2 by its `metadata` and attribute types (or,
in keyValues form, by a text id and type and a GeoJSON `location`, without @context). The
JSON Schemas and @context documents that come with Smart Data Models are refused with one line
saying what they are. Arrays are streamed (jsonstream), so a broker dump of any size reads in
bounded memory. The source's `contexts:` option says which @contexts beyond the shipped ones
may be used (jsonld_context.ContextPolicy).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import ClassVar

import orjson

from citypipe.connectors import documents
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.geojson_shapes import GEOMETRY_TYPE_NAMES, GEOMETRY_TYPES
from citypipe.connectors.json_code_page import read_in
from citypipe.connectors.json_numbers import noted_batch
from citypipe.connectors.jsonld_context import for_source
from citypipe.connectors.jsonstream import BATCH_BYTES, JSONDocument, open_json
from citypipe.connectors.ngsi_entities import entity_batch, is_v2
from citypipe.geo.errors import DataError, NotFeatureData

__all__ = ["NGSILDConnector", "NGSIv2Connector"]

_LD = re.compile(
    rb'"type"\s*:\s*"(?:Property|GeoProperty|Relationship|LanguageProperty|ListProperty|'
    rb'VocabProperty|JsonProperty|ListRelationship)"'
    rb'|"@context"\s*:\s*\[?\s*"[^"]*(?:ngsi-ld|smart-?data-?models)'
    rb'|"id"\s*:\s*"urn:ngsi-ld:'
)
_V2 = re.compile(
    rb'"type"\s*:\s*"(?:geo:json|geo:point|geo:line|geo:polygon|geo:box|StructuredValue|Number|'
    rb'Text|DateTime)"'
)
"""NGSI v2 attribute types, for a head too long to parse (a shorter one is parsed: `is_v2`)."""
_KV_PLACE = re.compile(rb'"location"\s*:\s*\{\s*"type"\s*:\s*"(?:' + GEOMETRY_TYPE_NAMES + rb')"')
"""A keyValues `location`, for an array too long to parse whose text names no GeoJSON Feature."""
_ENTITY = re.compile(rb'"id"\s*:')


def _looks_v2(text: bytes) -> bool:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _V2.search(text) is not None or (
            text.startswith(b"[") and b'"Feature' not in text and _KV_PLACE.search(text) is not None
        )
    first = doc[0] if type(doc) is list and doc else doc
    return type(first) is dict and "id" in first and (is_v2(first) or _key_values(first))


def _key_values(entity: dict) -> bool:
    """An NGSI v2 entity in keyValues form (Orion's `options=keyValues`): a text id and type,
    no @context, and a GeoJSON geometry as its `location`."""
    place = entity.get("location")
    return (
        isinstance(entity["id"], str)
        and isinstance(entity.get("type"), str)
        and entity["type"] not in ("Feature", "FeatureCollection")
        and "@context" not in entity
        and type(place) is dict
        and place.get("type") in GEOMETRY_TYPES
        and ("coordinates" in place or "geometries" in place)
    )


@lru_cache(maxsize=2)
def _kind(head: bytes) -> str | None:
    """What the content starting with `head` looks like: "ld", "v2" or None (asked by both
    NGSI connectors of the same head, which is parsed once)."""
    text = head.lstrip(documents.BLANK)
    if not text.startswith((b"{", b"[")) or not _ENTITY.search(text):
        return None
    if _LD.search(text):
        kind = "ld"
    elif _looks_v2(text):
        kind = "v2"
    else:
        return None
    what = documents.describe(text)
    if what:
        raise NotFeatureData(f"{what} (of NGSI entities), not the entities themselves")
    return kind


def _type(entity: object) -> str | None:
    """An entity's type as written (the GeoJSON form's in its properties; a multi-typed
    entity's first)."""
    if type(entity) is dict and entity.get("type") == "Feature":
        entity = entity.get("properties")
    kind = entity.get("type") if type(entity) is dict else None
    kind = kind[0] if type(kind) is list and kind else kind
    return kind if isinstance(kind, str) else None


class NGSILDConnector(FileConnector):
    name = "ngsi-ld"
    title = "NGSI-LD"
    known_options = frozenset({"encoding", "contexts"})
    kind: ClassVar[str] = "ld"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        return 0.95 if _kind(head) == cls.kind else 0.0

    batch_bytes: ClassVar[int] = BATCH_BYTES
    _doc: JSONDocument | None = None

    def _open(self) -> JSONDocument:
        if self._doc is None:
            with open(self.path, "rb") as f:
                array = f.read(4096).lstrip(documents.BLANK).startswith(b"[")
            self._doc = open_json(
                self.path,
                None if array else "features",
                self.batch_bytes,
                self.open_input,
                encoding=self.options.get("encoding"),
            )
            header = self._doc.header
            if not self._doc.has_array and not isinstance(header, Mapping):
                self._doc.close()
                self._doc = None
                raise DataError(f"{self.path}: JSON without an NGSI entity or an array of them")
        return self._doc

    def inspect(self) -> SourceInfo:
        """The representation, the entity types of the first batch (as written) and the count."""
        doc = self._open()
        entities = next(iter(doc.batches()), []) if doc.has_array else [doc.header]
        first = entities[0] if entities else None
        v2 = self.kind == "v2" or (isinstance(first, Mapping) and is_v2(first))
        return SourceInfo(
            format="NGSI v2" if v2 else "NGSI-LD",
            layers=tuple(sorted(set(filter(None, map(_type, entities))))),
            count=doc.count if doc.has_array else 1,
        )

    def read(self) -> Iterator[SourceBatch]:
        doc = self._open()
        contexts = for_source(self.options.get("contexts"))
        header = doc.header
        context = header.get("@context") if isinstance(header, Mapping) else None
        try:
            for entities in doc.batches() if doc.has_array else iter([[header]]):
                batch = entity_batch(entities, context=context, contexts=contexts)
                yield read_in(noted_batch(batch, entities), doc.codec)
        finally:
            doc.close()
            self._doc = None


class NGSIv2Connector(NGSILDConnector):
    """The same reader, chosen for NGSI v2 content (and named for it in a catalog)."""

    name = "ngsi-v2"
    title = "NGSI v2"
    kind = "v2"
