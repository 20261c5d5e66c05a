"""The test broker's query language: NGSI-LD `q` (and NGSI v2's simple query), geo-queries.

`q` (ETSI GS CIM 009 4.9): terms `attr OP value` joined by `;` (and) or `|` (or, weaker);
OP one of == != > >= < <= ~= (a regular expression); a value is a number, a quoted string, true
or false, a DateTime (compared as an instant: `modifiedAt>=2026-12-04T03:00:00Z`), a range
`a..b` or a list `a,b` (== and != only). Parentheses are refused. NGSI v2's
`q` is the same with `:` for `==`. Geo-queries: `georel` near;maxDistance==m /
near;minDistance==m (metres, geodesic, to the nearest point), intersects, within, contains,
disjoint, equals, with `geometry` and `coordinates` (a JSON array).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import shapely
from pyproj import Geod
from shapely.ops import nearest_points

_TERM = re.compile(r"^([A-Za-z0-9_.@:\[\]-]+?)(==|!=|>=|<=|~=|>|<|:)(.*)$")
_GEOD = Geod(ellps="WGS84")


class QueryError(ValueError):
    """A query the broker cannot parse: a 400 BadRequestData."""


def attribute_value(entity: dict[str, Any], path: str) -> Any:
    """The value `path` (attr or attr.sub) names in a normalized NGSI-LD or v2 entity."""
    name, _, sub = path.partition(".")
    attr = entity.get(name)
    if sub and isinstance(attr, dict):
        attr = attr.get(sub) or (attr.get("metadata") or {}).get(sub)
    if isinstance(attr, dict):
        return attr.get("object", attr.get("value"))
    return attr


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith(("'", '"')) and text.endswith(text[0]) and len(text) >= 2:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _compare(op: str, have: Any, raw: str) -> bool:
    if have is None:
        return op == "!="
    if op == "~=":
        return re.search(_literal(raw), str(have)) is not None
    values = have if isinstance(have, list) else [have]
    if op in ("==", "!=", ":"):
        if ".." in raw:
            low, high = (_literal(v) for v in raw.split("..", 1))
            hit = any(_ordered(v, low, ">=") and _ordered(v, high, "<=") for v in values)
        else:
            wanted = [_literal(v) for v in raw.split(",")]
            hit = any(_equal(v, w) for v in values for w in wanted)
        return hit if op != "!=" else not hit
    return any(_ordered(v, _literal(raw), op) for v in values)


def _equal(have: Any, want: Any) -> bool:
    if isinstance(have, (int, float)) and isinstance(want, float) and not isinstance(have, bool):
        return float(have) == want
    return bool(have == want)


def _instant(value: Any) -> datetime | None:
    """A DateTime value (an entity's modifiedAt, a q literal) as an aware datetime, else None."""
    try:
        found = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _ordered(have: Any, want: Any, op: str) -> bool:
    try:
        if isinstance(want, float):
            have = float(have)
        elif _instant(have) and _instant(want):  # as instants: "...:00Z" < "...:00.5Z"
            have, want = _instant(have), _instant(want)
        else:
            have, want = str(have), str(want)
    except (TypeError, ValueError):
        return False
    return {">": have > want, ">=": have >= want, "<": have < want, "<=": have <= want}[op]


def q_filter(q: str) -> Callable[[dict[str, Any]], bool]:
    """The entities a `q` expression selects, as a predicate."""
    if "(" in q or ")" in q:
        raise QueryError(f"q: parentheses are not supported by this broker: {q}")
    alternatives = []
    for part in q.split("|"):
        terms = []
        for term in part.split(";"):
            m = _TERM.match(term.strip())
            if not m:
                raise QueryError(f"q: not a term: {term!r}")
            terms.append(m.groups())
        alternatives.append(terms)

    def selects(entity: dict[str, Any]) -> bool:
        return any(
            all(_compare(op, attribute_value(entity, path), raw) for path, op, raw in terms)
            for terms in alternatives
        )

    return selects


def _metres(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Geodesic distance between the nearest points of two CRS84 geometries."""
    if a.intersects(b):
        return 0.0
    p, r = nearest_points(a, b)
    return float(_GEOD.inv(p.x, p.y, r.x, r.y)[2])


def geo_filter(georel: str, geometry: str, coordinates: str) -> Callable[[shapely.Geometry], bool]:
    """The geometries a geo-query selects, as a predicate."""
    try:
        shape = shapely.geometry.shape({"type": geometry, "coordinates": json.loads(coordinates)})
    except (ValueError, TypeError, AttributeError) as e:
        raise QueryError(f"geometry={geometry} coordinates={coordinates}: {e}") from e
    relation, _, modifier = georel.partition(";")
    if relation == "near":
        m = re.fullmatch(r"(maxDistance|minDistance)==(\d+(?:\.\d+)?)", modifier)
        if not m:
            raise QueryError(f"georel {georel}: near needs maxDistance== or minDistance==")
        limit = float(m.group(2))
        if m.group(1) == "maxDistance":
            return lambda g: _metres(shape, g) <= limit
        return lambda g: _metres(shape, g) >= limit
    predicates = {
        "intersects": lambda g: g.intersects(shape),
        "within": lambda g: g.within(shape),
        "contains": lambda g: g.contains(shape),
        "disjoint": lambda g: g.disjoint(shape),
        "equals": lambda g: g.equals(shape),
        "overlaps": lambda g: g.overlaps(shape),
    }
    if relation not in predicates:
        raise QueryError(f"georel {georel!r} is not one this broker knows")
    return predicates[relation]
