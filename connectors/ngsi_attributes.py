"""NGSI attributes in every representation, read into one shape: the value the keyValues form
gives, and what the normalized form adds (kind, unit, time, dataset, sub-attributes).

NGSI-LD normalized attributes are objects typed Property, GeoProperty, Relationship,
LanguageProperty, ListProperty, VocabProperty, JsonProperty or ListRelationship; the concise form
drops the type where the member says it (`value`, `object`, `languageMap` ...) and writes a bare
value where nothing else is stated; keyValues gives bare values only (a GeoJSON geometry is then
a GeoProperty, an entity URN a Relationship: what the form lost, read back as the NGSI-LD API
would have written it). An attribute with several datasetIds is an array of instances.
NGSI v2 attributes are `{type, value, metadata}`, locations typed geo:json or geo:point (and
geo:line, geo:polygon, geo:box: "lat, lon" texts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from citypipe.connectors.geojson_shapes import GEOMETRY_TYPES as GEOMETRIES

__all__ = ["LD_KINDS", "Attribute", "is_v2_attribute", "ld_attribute", "v2_attribute"]

_VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "ListRelationship": "objectList",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}
LD_KINDS = frozenset(_VALUE_MEMBER)
_CONCISE = {member: kind for kind, member in _VALUE_MEMBER.items() if kind != "GeoProperty"}
"""A concise attribute's kind by the member it has (`value`: a Property)."""
_META = frozenset(
    {*_VALUE_MEMBER.values(), "type", "observedAt", "unitCode", "datasetId", "createdAt",
     "modifiedAt", "deletedAt", "instanceId", "lang", "previousValue", "previousObject"}
)  # fmt: skip
"""Members of an attribute that are not sub-attributes."""
MAX_DEPTH = 16
"""Sub-attributes nested deeper than this are kept as the value they hold, not read further."""
_ENTITY_URN = re.compile(r"urn:ngsi-ld:", re.IGNORECASE)
_V2_SHAPE = frozenset({"type", "value", "metadata"})
_V2_GEO = {"geo:point": 0, "geo:line": 1, "geo:polygon": 2, "geo:box": 3}
_new = tuple.__new__
"""Makes the most common attribute, a `{type: Property, value}`, without the Python frame of a
NamedTuple's own constructor (a broker harvest reads a hundred thousand of them)."""
_LAT_LON = re.compile(r"\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*")


class Attribute(NamedTuple):
    """One instance of an attribute, in every representation's terms."""

    kind: str
    """Property, GeoProperty, Relationship ... (LD_KINDS)."""
    value: Any
    """What the keyValues form gives: the value, the target id(s), the language map ..."""
    unit_code: str | None = None
    observed_at: str | None = None
    dataset_id: str | None = None
    sub: tuple[tuple[str, Attribute], ...] = ()
    """Sub-attributes (NGSI-LD) or metadata (NGSI v2), by short name."""


def _plain(value: Any) -> Any:
    """A JSON-LD value object (`{"@type": "DateTime", "@value": ...}`) as its value."""
    if type(value) is dict and "@value" in value:
        return value["@value"]
    return value


def _text(value: Any) -> str | None:
    """A unit code, time or dataset id as text; None where it is none (or not a scalar)."""
    if value is None or type(value) is str:
        return value
    value = _plain(value)
    return str(value) if isinstance(value, str | int | float) else None


def _is_geometry(value: Any) -> bool:
    return type(value) is dict and value.get("type") in GEOMETRIES


def _is_reference(value: Any) -> bool:
    """A keyValues value that can only be a Relationship: an entity URN, or a list of them."""
    targets = value if type(value) is list and value else [value]
    return all(type(v) is str and _ENTITY_URN.match(v) is not None for v in targets)


def _is_ld_instance(value: Any) -> bool:
    if type(value) is not dict:
        return False
    kind = value.get("type")
    return kind in LD_KINDS or (kind is None and not _CONCISE.keys().isdisjoint(value))


def ld_attribute(
    raw: Any, name: Callable[[str], str], vocab: Callable[[str], str]
) -> list[Attribute]:
    """An NGSI-LD attribute, normalized, concise or keyValues: its instances. `name` gives the
    short name of a sub-attribute, `vocab` of a VocabProperty's term."""
    if type(raw) is dict:
        if len(raw) == 2 and raw.get("type") == "Property" and "value" in raw:
            value = raw["value"]
            if type(value) is dict and "@value" in value:
                value = value["@value"]
            return [_new(Attribute, ("Property", value, None, None, None, ()))]
        return [_ld_instance(raw, name, vocab, 0)]
    if type(raw) is list and raw and all(map(_is_ld_instance, raw)):
        return [_ld_instance(r, name, vocab, 0) for r in raw]
    return [_ld_instance(raw, name, vocab, 0)]


def _ld_instance(
    raw: Any, name: Callable[[str], str], vocab: Callable[[str], str], depth: int
) -> Attribute:
    if type(raw) is not dict or not _is_ld_instance(raw) or depth > MAX_DEPTH:
        if _is_geometry(raw):
            return Attribute("GeoProperty", raw)
        return Attribute("Relationship" if _is_reference(raw) else "Property", _plain(raw))
    kind = raw.get("type") or next(k for m, k in _CONCISE.items() if m in raw)
    member = _VALUE_MEMBER[kind]
    value = raw.get(member)
    if kind == "Property":
        value = _plain(value)
        if "type" not in raw and _is_geometry(value):  # concise: the value says it
            kind = "GeoProperty"
    elif kind == "VocabProperty":
        terms = value if type(value) is list else [value]
        value = [vocab(v) if isinstance(v, str) else v for v in terms]
        value = value if type(raw.get("vocab")) is list else value[0]
    elif kind == "ListRelationship" and type(value) is list:
        value = [o.get("object") if type(o) is dict else o for o in value]
    sub: tuple[tuple[str, Attribute], ...] = ()
    if not _META.issuperset(raw):  # mostly it is
        sub = tuple(
            (name(k), _ld_instance(raw[k], name, vocab, depth + 1))
            for k in raw
            if k not in _META and not k.startswith("@")
        )
    if len(raw) == 2 and "type" in raw and member in raw:  # nothing more to read
        return Attribute(kind, value, None, None, None, sub)
    get = raw.get
    return Attribute(
        kind, value, _text(get("unitCode")), _text(get("observedAt")), _text(get("datasetId")), sub
    )


def is_v2_attribute(raw: Any) -> bool:
    """An NGSI v2 normalized attribute: `{type, value[, metadata]}`, typed otherwise than
    NGSI-LD's Properties (a v2 Relationship has a `value`, an NGSI-LD one an `object`)."""
    return (
        type(raw) is dict
        and "value" in raw
        and raw.keys() <= _V2_SHAPE
        and (raw.get("type") not in LD_KINDS - {"Relationship"} or "metadata" in raw)
    )


def v2_attribute(raw: Any, metadata: bool = True) -> Attribute:
    """An NGSI v2 attribute, normalized or keyValues (`metadata`: with its metadata, which
    have none of their own)."""
    if not is_v2_attribute(raw):
        if _is_geometry(raw):
            return Attribute("GeoProperty", raw)
        return Attribute("Relationship" if _is_reference(raw) else "Property", raw)
    kind, value = raw.get("type"), raw["value"]
    meta = raw.get("metadata") if metadata and type(raw.get("metadata")) is dict else {}
    sub = tuple((k, v2_attribute(v, False)) for k, v in meta.items() if k != "unitCode")
    unit = _v2_meta(meta, "unitCode")
    observed = _v2_meta(meta, "observedAt") or _v2_meta(meta, "TimeInstant")
    if kind == "geo:json":
        return Attribute("GeoProperty", value, unit, observed, None, sub)
    if kind in _V2_GEO:
        return Attribute("GeoProperty", _v2_geometry(kind, value), unit, observed, None, sub)
    return Attribute(
        "Relationship" if kind == "Relationship" else "Property", value, unit, observed, None, sub
    )


def _v2_meta(meta: Mapping[str, Any], key: str) -> str | None:
    found = meta.get(key)
    return _text(found.get("value") if type(found) is dict else found)


def _v2_geometry(kind: str, value: Any) -> dict[str, Any] | Any:
    """geo:point / geo:line / geo:polygon / geo:box ("lat, lon" texts) as GeoJSON; what is not
    such text as it is (the geometry then fails with the reason)."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        return value
    matches = [_LAT_LON.fullmatch(t) if isinstance(t, str) else None for t in texts]
    if not all(matches):
        return value
    lon_lat = [[float(m[2]), float(m[1])] for m in matches if m]
    shape = _V2_GEO[kind]
    if shape == 0 and len(lon_lat) == 1:
        return {"type": "Point", "coordinates": lon_lat[0]}
    if shape == 1:
        return {"type": "LineString", "coordinates": lon_lat}
    if shape == 2:
        return {"type": "Polygon", "coordinates": [lon_lat]}
    if shape == 3 and len(lon_lat) == 2:
        (x0, y0), (x1, y1) = lon_lat
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"type": "Polygon", "coordinates": [ring]}
    return value
