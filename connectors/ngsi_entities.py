"""NGSI-LD and NGSI v2 entities, in any representation, -> one SourceBatch: what entity files
and broker harvests share (`entity_batch`, called per file batch or per broker page).

The representation is told by content, entity by entity and attribute by attribute
(ngsi_attributes): NGSI-LD normalized, concise and keyValues, the GeoJSON form (a Feature whose
properties hold the entity, @context among them), NGSI v2 normalized and keyValues. All give the
same row: the entity id as source id, the type as feature class, the GeoProperty `location` (else
the first GeoProperty) as geometry in OGC:CRS84, and as properties what the keyValues form says
(sub-attributes as `attribute.sub`), relationships as their target id(s) with their names listed
under `citypipe:relationships`, a multi-attribute's instances other than the one keyValues
shows (the one without a datasetId) under `citypipe:datasets`. What the keyValues form cannot
say goes to the observations: every Property with a number or an observedAt, with its
unitCode, observedAt (else the entity's own observedAt / dateObserved, as written) and datasetId.

NGSI-LD names are resolved through the entity's @context (else the one given out of band, a
broker's Link header) with the core context last, and compacted back to short names
(jsonld_context). NGSI v2 is not JSON-LD: its names are taken as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, NamedTuple

import orjson

from citypipe.connectors.base import Observation, SourceBatch
from citypipe.connectors.geojson_shapes import GEOMETRY_TYPES, geojson_batch, to_geometries
from citypipe.connectors.jsonld_context import Contexts, for_source
from citypipe.connectors.jsonstream import Unparsed
from citypipe.connectors.ngsi_attributes import (
    LD_KINDS,
    Attribute,
    is_v2_attribute,
    ld_attribute,
    v2_attribute,
)
from citypipe.connectors.smart_data_models import structural_faults, violations

__all__ = ["DATASETS", "RELATIONSHIPS", "VIOLATIONS", "entity_batch", "is_v2"]

RELATIONSHIPS = "citypipe:relationships"
"""Properties key: the names of the entity's Relationships (their targets are the values)."""
DATASETS = "citypipe:datasets"
"""Properties key: a multi-attribute's other instances (NGSI-LD datasetIds), by attribute then
datasetId (`@none` for one without, as JSON-LD indexes it): the attribute's own key shows the
default instance, as the keyValues form does, and nothing of the others is lost."""
VIOLATIONS = "citypipe:schema_violations"
"""Properties key: the entity's violations of its type's Smart Data Model (smart_data_models)."""
_ENTITY_TIME = ("observedAt", "dateObserved")
"""Attributes that say when the whole entity was observed."""
_NOT_ATTRIBUTES = frozenset({"id", "type", "@id", "@type", "@context"})
_RELATIONSHIP_KINDS = frozenset({"Relationship", "ListRelationship"})
_new = tuple.__new__
"""Makes an Observation without the Python frame of a NamedTuple's own constructor: a broker
harvest makes one per measured value (156,000 for the benchmark's 10,500 entities)."""


class _Entity(NamedTuple):
    id: str | None
    type: str | None
    attributes: list[tuple[str, list[Attribute]]]
    warnings: Sequence[str] = ()


def is_v2(entity: Mapping[str, Any]) -> bool:
    """An NGSI v2 entity: no @context, attributes `{type, value[, metadata]}` typed otherwise
    than NGSI-LD's."""
    if "@context" in entity:
        return False
    values = [v for k, v in entity.items() if k not in _NOT_ATTRIBUTES]
    return any(map(is_v2_attribute, values)) and not any(
        type(v) is dict and v.get("type") in LD_KINDS and not is_v2_attribute(v) for v in values
    )


def _from_feature(feature: Mapping[str, Any]) -> dict[str, Any]:
    """An entity of the NGSI-LD GeoJSON form: its properties, with the feature's id, and its
    geometry as `location` where the properties have none."""
    props = feature.get("properties")
    entity = {**(props if type(props) is dict else {}), "id": feature.get("id")}
    if "location" not in entity and feature.get("geometry") is not None:
        entity["location"] = feature["geometry"]
    return entity


def _read(raw: dict[str, Any], contexts: Contexts, context: Any) -> _Entity:
    if raw.get("type") == "Feature" and "properties" in raw:
        raw = _from_feature(raw)
    types = raw.get("type", raw.get("@type"))
    first = types[0] if type(types) is list and types else types
    entity_id = raw.get("id", raw.get("@id"))
    items = raw.items()
    own = raw.get("@context", context)
    entity_id = None if entity_id is None else str(entity_id)
    if own is None and is_v2(raw):
        attributes = [(k, [v2_attribute(v)]) for k, v in items if k not in _NOT_ATTRIBUTES]
        return _Entity(entity_id, None if first is None else str(first), attributes)
    terms = contexts.terms(own)
    names, name, vocab = terms.names, terms.name, terms.type_name
    attributes = [
        (names.get(k) or name(k), ld_attribute(v, name, vocab))
        for k, v in items
        if k not in _NOT_ATTRIBUTES
    ]
    kind = None if first is None else terms.type_name(str(first))
    return _Entity(entity_id, kind, attributes, terms.warnings)


def _default(instances: list[Attribute]) -> Attribute:
    """The instance the keyValues form shows: the one without a datasetId, else the first."""
    if len(instances) == 1:
        return instances[0]
    return next((a for a in instances if a.dataset_id is None), instances[0])


def _geometry(attributes: list[tuple[str, list[Attribute]]]) -> tuple[str | None, Any]:
    """The attribute that places the entity: `location`, else the first GeoProperty, else a
    `location` typed Property (NGSI v2 StructuredValue, a keyValues text) whose value is a
    GeoJSON geometry: the name says what it is, as clients that mistype it mean it."""
    first: tuple[str | None, Any] = (None, None)
    mistyped: tuple[str | None, Any] = (None, None)
    for name, instances in attributes:
        shown = instances[0] if len(instances) == 1 else _default(instances)
        if shown.kind == "GeoProperty":
            if name == "location":
                return name, _parsed(shown.value)
            if first[0] is None:
                first = (name, _parsed(shown.value))
        elif name == "location" and shown.kind == "Property":
            value = _parsed(shown.value)
            if type(value) is dict and value.get("type") in GEOMETRY_TYPES:
                mistyped = (name, value)
    return first if first[0] is not None else mistyped


def _parsed(value: Any) -> Any:
    """A GeoProperty's GeoJSON as the broker gave it: an object, or (from a client that stored
    it serialised, which some brokers accept and give back as they got it) a JSON text."""
    if type(value) is str and value.lstrip().startswith("{"):
        with suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
    return value


def _contents(
    record: int, attributes: list[tuple[str, list[Attribute]]], skip: str | None, when: str | None
) -> tuple[dict[str, Any], list[Observation]]:
    """What the keyValues form shows of the attributes but `skip` (the placing one), a
    multi-attribute's other instances (`DATASETS`, the placing one's too), and the
    observations of all their instances: one pass, the Properties' numbers taken on the way."""
    props: dict[str, Any] = {}
    relationships = []
    datasets: dict[str, dict[str, Any]] = {}
    found: list[Observation] = []
    for name, instances in attributes:
        if len(instances) == 1:
            shown = instances[0]
        else:
            shown = _default(instances)
            datasets[name] = {
                a.dataset_id or "@none": _shown(a) for a in instances if a is not shown
            }
        if name != skip:
            props[name] = shown.value
            if shown.kind in _RELATIONSHIP_KINDS:
                relationships.append(name)
            for sub, attribute in shown.sub:
                props[f"{name}.{sub}"] = attribute.value
        for a in instances:
            _observe(found, record, name, a, when)
    if relationships:
        props[RELATIONSHIPS] = relationships
    if datasets:
        props[DATASETS] = datasets
    return props, found


def _shown(a: Attribute) -> Any:
    """An instance's value as its properties hold it: a GeoProperty's GeoJSON as an object
    (`_parsed`), whichever way the broker gave it."""
    return _parsed(a.value) if a.kind == "GeoProperty" else a.value


def _number(value: Any) -> float | None:
    """Numbers (booleans as 0 / 1) as floats; None for anything else."""
    if isinstance(value, bool | int | float) and not (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    """A value as text: JSON where it is not a string (None nested beyond JSON writers)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return None


def _observe(
    found: list[Observation], record: int, name: str, a: Attribute, when: str | None
) -> None:
    """Appends the attribute instance `a` and its sub-properties to `found`, where they are
    Properties with a number or an observedAt; `when` is the time of what holds them."""
    if a.kind == "Property":
        value = a.value
        kind = type(value)
        if kind is int or kind is float and math.isfinite(value):  # most: no isinstance
            number: float | None = float(value)
        else:
            number = None if kind is str else _number(value)
        if number is not None or a.observed_at:
            text = None if number is not None else _text(value)
            at = a.observed_at or when
            found.append(
                _new(Observation, (record, name, number, text, a.unit_code, at, a.dataset_id))
            )
    for sub_name, sub in a.sub:
        _observe(found, record, f"{name}.{sub_name}", sub, a.observed_at or when)


def _time(attributes: list[tuple[str, list[Attribute]]]) -> str | None:
    """When the entity was observed, as written: its observedAt or dateObserved."""
    found = dict(attributes)
    for key in _ENTITY_TIME:
        if key in found:
            value = _default(found[key]).value
            return value if isinstance(value, str) else _text(value)
    return None


def _checked(
    entity: _Entity, shown: dict[str, Any], location: str | None, geometry: Any
) -> tuple[str | None, dict[str, Any]]:
    """Why the entity is no NGSI entity (no id, no type), else None and its properties with its
    Smart Data Model violations, checked in its keyValues form."""
    key_values = {"id": entity.id, "type": entity.type}
    faults = structural_faults(key_values)
    if faults:
        return f"not an NGSI entity: {'; '.join(faults)}", shown
    key_values.update(
        {k: v for k, v in shown.items() if "." not in k and not k.startswith("citypipe:")}
    )
    if location is not None:
        key_values[location] = geometry
    found = violations(key_values)
    return None, {**shown, VIOLATIONS: found} if found else shown


def entity_batch(
    entities: Sequence[Any], *, context: Any = None, contexts: Contexts | None = None
) -> SourceBatch:
    """The batch of `entities` (dicts in any NGSI-LD or NGSI v2 representation, GeoJSON
    Features of the NGSI-LD GeoJSON form; `Unparsed` records are rejected with their reason).

    `context` is the @context given out of band (a broker's Link header: a URL or a list), for
    entities that carry none; `contexts` the contexts the source may use (by default those
    citypipe ships), whose processed forms it keeps: pass the same one for every page of a
    harvest."""
    contexts = contexts or for_source(None)
    ids: list[str | None] = []
    classes: list[str | None] = []
    props: list[dict[str, Any]] = []
    geometries: list[Any] = []
    times: list[str | None] = []
    errors: list[str | None] = []
    observations: list[Observation] = []
    warnings: Counter[str] = Counter()
    for i, raw in enumerate(entities):
        error = None
        if type(raw) is not dict:
            error = raw.reason if isinstance(raw, Unparsed) else "not an NGSI entity (an object)"
            entity = _Entity(None, None, [])
        else:
            entity = _read(raw, contexts, context)
        name, geometry = _geometry(entity.attributes)
        when = _time(entity.attributes)
        shown, found = _contents(i, entity.attributes, name, when)
        if error is None:
            error, shown = _checked(entity, shown, name, geometry)
        ids.append(entity.id)
        classes.append(entity.type)
        props.append(shown)
        geometries.append(geometry)
        times.append(when.split("/")[0] if when else None)
        errors.append(error)
        if entity.warnings:  # mostly none: Counter.update costs a microsecond even then
            warnings.update(entity.warnings)
        if error is None:
            observations += found
    shapes, geometry_errors = to_geometries(geometries)
    errors = [e or g for e, g in zip(errors, geometry_errors, strict=True)]
    return geojson_batch(
        ids, shapes, props, entities, classes, times, errors,
        observations=observations, warnings=warnings,
    )  # fmt: skip
