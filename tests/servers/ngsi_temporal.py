"""The test broker's temporal representation (CIM 009 5.7.3, 6.3.10): each attribute of an
entity as its instances in the asked time range, and the 206 pagination of instances.

timerel `before` (t < timeAt), `after` (t > timeAt), `between` (timeAt <= t < endTimeAt);
`lastN` keeps each attribute's N most recent. An attribute with more than `max_instances`
instances left cuts the answer: forwards (oldest first) after the latest instant every
attribute can give whole, backwards (with lastN) before the earliest such; the answer is then
206 with `Content-Range: date-time <first>-<last>/<lastN or *>`, the first and last instants
it holds, and no instant is ever split between two answers.
"""

from __future__ import annotations

from typing import Any

from servers import ngsi_data


def _in_range(t: str, params: dict[str, str]) -> bool:
    rel, at, end = params.get("timerel"), params.get("timeAt", ""), params.get("endTimeAt", "")
    if rel == "before":
        return t < at
    if rel == "after":
        return t > at
    if rel == "between":
        return at <= t < end
    return True


def _instances(
    entity: dict[str, Any], params: dict[str, str]
) -> dict[str, list[tuple[str, float]]]:
    attrs = set(params["attrs"].split(",")) if params.get("attrs") else None
    last_n = int(params["lastN"]) if params.get("lastN") else None
    out = {}
    for name, values in ngsi_data.history(entity["id"]).items():
        if attrs is not None and name not in attrs:
            continue
        kept = [(t, v) for t, v in values if _in_range(t, params)]
        out[name] = kept[-last_n:] if last_n else kept
    return out


def _cut(
    series: list[dict[str, list[tuple[str, float]]]], limit: int, backwards: bool
) -> str | None:
    """The instant after which (forwards; before which, backwards) the answer stops, or None
    when every attribute fits."""
    bounds = []
    for attrs in series:
        for values in attrs.values():
            instants = sorted({t for t, _ in values}, reverse=backwards)
            if len(instants) > limit:
                bounds.append(instants[limit - 1])
    if not bounds:
        return None
    return max(bounds) if backwards else min(bounds)


def temporal_page(
    entities: list[dict[str, Any]], params: dict[str, str], max_instances: int
) -> tuple[int, list[dict[str, Any]], dict[str, str]]:
    """(status, temporal entities, headers) for a page of entities."""
    series = [_instances(e, params) for e in entities]
    backwards = bool(params.get("lastN"))
    cut = _cut(series, max_instances, backwards)
    units = ngsi_data.pollutants()
    rendered, instants = [], []
    for entity, attrs in zip(entities, series, strict=True):
        out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
        if "location" in entity and not params.get("attrs"):
            out["location"] = [entity["location"]]
        for name, values in attrs.items():
            if cut is not None:
                values = [(t, v) for t, v in values if (t >= cut if backwards else t <= cut)]
            instants += [t for t, _ in values]
            out[name] = [
                {
                    "type": "Property",
                    "value": v,
                    "observedAt": t,
                    "unitCode": units[name],
                    "instanceId": f"urn:ngsi-ld:attribute:instance:{entity['id']}:{name}:{t}",
                }
                for t, v in values
            ]
        rendered.append(out)
    if cut is None or not instants:
        return 200, rendered, {}
    size = params.get("lastN") or "*"
    first, last = (max(instants), min(instants)) if backwards else (min(instants), max(instants))
    return 206, rendered, {"Content-Range": f"date-time {first}-{last}/{size}"}
