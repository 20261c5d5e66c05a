"""The test broker's data: the corpus's NGSI-LD entities multiplied, their NGSI v2 form, and a
history of measured values for the temporal API.

Each sample entity (data/samples/ngsi-ld/<Type>/example-normalized.jsonld) is copied `copies`
times: copy k has the id `<sample id>:<k as 5 digits>` and every coordinate shifted by
`offset(k)` degrees, so ids are distinct and geometries spread over a grid (50 columns, 0.002
degrees apart). AirQualityObserved's pollutants (those with a unitCode) get one value an hour
for `HOURS` hours from `HISTORY_START` (value = the sample's value + k % 10 + the hour), with
the sample's unitCode: copies x pollutants x HOURS values in all.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "ngsi-ld"
TYPES = tuple(sorted(p.parent.name for p in SAMPLES.glob("*/example-normalized.jsonld")))
"""The sample types: AirQualityObserved, Building, ... TrafficFlowObserved (seven)."""
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
HISTORY_TYPE = "AirQualityObserved"
HISTORY_START = datetime(2016, 3, 15, tzinfo=UTC)
HOURS = 14
LOADED_AT = "2026-01-01T00:00:00.000Z"
"""When the broker's entities were created and last modified (`createdAt` / `modifiedAt`,
NGSI v2 `dateCreated` / `dateModified`): before any harvest; `NgsiBroker.upsert` stamps its
own instant."""
STEP = 0.002
"""Degrees between neighbouring copies."""


@cache
def sample(entity_type: str) -> dict[str, Any]:
    """The corpus's normalized NGSI-LD entity of a type, as the file has it."""
    path = SAMPLES / entity_type / "example-normalized.jsonld"
    return dict(json.loads(path.read_text(encoding="utf-8")))


@cache
def sample_v2() -> dict[str, Any]:
    """The corpus's NGSI v2 normalized AirQualityObserved."""
    path = SAMPLES / "AirQualityObserved" / "example-normalized-ngsiv2.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def offset(k: int) -> tuple[float, float]:
    """The shift of copy k in degrees (longitude, latitude)."""
    return (k % 50) * STEP, (k // 50) * STEP


def copy_id(entity_id: str, k: int) -> str:
    return f"{entity_id}:{k:05d}"


def _shift(coordinates: Any, dx: float, dy: float) -> Any:
    if coordinates and isinstance(coordinates[0], (int, float)):
        return [coordinates[0] + dx, coordinates[1] + dy, *coordinates[2:]]
    return [_shift(c, dx, dy) for c in coordinates]


def _moved(geometry: dict[str, Any], k: int) -> dict[str, Any]:
    dx, dy = offset(k)
    return {**geometry, "coordinates": _shift(geometry["coordinates"], dx, dy)}


def copies_of(entity_type: str, copies: int) -> Iterator[dict[str, Any]]:
    """`copies` copies of the type's sample (normalized, with its @context)."""
    original = sample(entity_type)
    for k in range(copies):
        entity = copy.deepcopy(original)
        entity["id"] = copy_id(original["id"], k)
        entity["location"]["value"] = _moved(original["location"]["value"], k)
        yield entity


def domain_context(entity: dict[str, Any]) -> str:
    """The entity's own (Smart Data Models) context URL, the one a Link header names."""
    contexts = entity.get("@context") or [CORE_CONTEXT]
    contexts = [contexts] if isinstance(contexts, str) else contexts
    return next((c for c in contexts if c != CORE_CONTEXT), CORE_CONTEXT)


def pollutants() -> dict[str, str]:
    """The history's attributes: the sample's Properties with a unitCode -> that unit."""
    return {
        name: attr["unitCode"]
        for name, attr in sample(HISTORY_TYPE).items()
        if isinstance(attr, dict) and attr.get("type") == "Property" and "unitCode" in attr
    }


def instant(hour: int) -> str:
    return (HISTORY_START + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_value(attribute: str, k: int, hour: int) -> float:
    return float(sample(HISTORY_TYPE)[attribute]["value"] + k % 10 + hour)


def history(entity_id: str) -> dict[str, list[tuple[str, float]]]:
    """An entity's measured values, oldest first: attribute -> [(observedAt, value)]. Empty for
    entities without history."""
    prefix = sample(HISTORY_TYPE)["id"] + ":"
    if not entity_id.startswith(prefix):
        return {}
    k = int(entity_id[len(prefix) :])
    return {
        name: [(instant(h), history_value(name, k, h)) for h in range(HOURS)]
        for name in pollutants()
    }


_V2_TYPES = {bool: "Boolean", int: "Number", float: "Number", str: "Text"}


def to_v2(entity: dict[str, Any]) -> dict[str, Any]:
    """An NGSI-LD normalized entity in NGSI v2 normalized form (type / value / metadata),
    the way an NGSI-LD-to-v2 bridge writes it."""
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for name, attr in entity.items():
        if name in ("id", "type", "@context") or not isinstance(attr, dict):
            continue
        kind = attr.get("type")
        if kind == "GeoProperty":
            out[name] = {"type": "geo:json", "value": attr["value"], "metadata": {}}
        elif kind == "Relationship":
            out[name] = {"type": "Relationship", "value": attr["object"], "metadata": {}}
        else:
            value = attr.get("value")
            meta = {k: {"value": v} for k, v in attr.items() if k in ("unitCode", "observedAt")}
            out[name] = {
                "type": _V2_TYPES.get(type(value), "StructuredValue"),
                "value": value,
                "metadata": meta,
            }
    return out


def v2_copies(entity_type: str, copies: int) -> Iterator[dict[str, Any]]:
    """NGSI v2 copies: AirQualityObserved from the corpus's v2 file, the others converted."""
    if entity_type != "AirQualityObserved":
        yield from map(to_v2, copies_of(entity_type, copies))
        return
    original = sample_v2()
    for k in range(copies):
        entity = copy.deepcopy(original)
        entity["id"] = copy_id(original["id"], k)
        entity["location"]["value"] = _moved(original["location"]["value"], k)
        yield entity
