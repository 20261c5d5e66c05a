"""A CQL2 text filter as a WFS understands it: FES 2.0 (WFS 2.0), OGC Filter 1.1 (WFS 1.1) or
Filter 1.0 (WFS 1.0: 1.1's elements, LIKE's escape character named `escape`).

pygeofilter parses the CQL2 text; the comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`, LIKE,
BETWEEN, IS NULL) of a property with a literal, joined by AND / OR / NOT, become OWSLib's FES
objects and their XML. Anything else (functions, spatial or temporal predicates, arithmetic)
is not sent: `to_fes` answers None and the features are filtered after reading
(citypipe.connectors.local_filter).

pygeofilter and OWSLib's FES are imported when a filter is given: finding a file's format
imports every connector, and should not pay for them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_fes"]

_COMPARISONS = {
    "Equal": "PropertyIsEqualTo",
    "NotEqual": "PropertyIsNotEqualTo",
    "LessThan": "PropertyIsLessThan",
    "LessEqual": "PropertyIsLessThanOrEqualTo",
    "GreaterThan": "PropertyIsGreaterThan",
    "GreaterEqual": "PropertyIsGreaterThanOrEqualTo",
}
"""pygeofilter's comparison nodes (by class name) and the FES operators they are."""
_LOGIC = {"And": "And", "Or": "Or"}
_LITERALS = (str, int, float, bool)


class _NotSimple(Exception):
    """The expression holds more than comparisons of properties with literals."""


def to_fes(node: Any, version: str) -> str | None:
    """The filter as the KVP FILTER value of a WFS `version` (2.0.0: FES 2.0, 1.0.0: Filter
    1.0, else Filter 1.1), or None when it is not made of simple comparisons only."""
    from lxml import etree
    from owslib import fes, fes2

    lib: Any = fes2 if version.startswith("2") else fes
    try:
        operation = _operation(node, lib)
    except _NotSimple:
        return None
    if lib is fes2:
        return etree.tostring(fes2.Filter(operation).toXML(), encoding="unicode")
    root = fes.FilterRequest().setConstraint(operation)
    if version == "1.0.0":
        for like in root.iter("{http://www.opengis.net/ogc}PropertyIsLike"):
            like.set("escape", like.attrib.pop("escapeChar"))
    return etree.tostring(root, encoding="unicode")


def _operation(node: Any, lib: Any) -> Any:
    """The FES operation of a node: logic of operations, or a comparison."""
    kind = type(node).__name__
    if kind in _LOGIC:
        return getattr(lib, _LOGIC[kind])([_operation(node.lhs, lib), _operation(node.rhs, lib)])
    if kind == "Not":
        return lib.Not([_operation(node.sub_node, lib)])
    if kind in _COMPARISONS:
        return getattr(lib, _COMPARISONS[kind])(_property(node.lhs), _literal(node.rhs))
    return _predicate(node, kind, lib)


def _predicate(node: Any, kind: str, lib: Any) -> Any:
    """LIKE, BETWEEN and IS NULL, where FES has them (not their negated or caseless forms)."""
    if getattr(node, "not_", False) or getattr(node, "nocase", False):
        raise _NotSimple(f"a negated or case-insensitive {kind}")
    if kind == "Like":
        return lib.PropertyIsLike(
            _property(node.lhs),
            node.pattern,
            escapeChar=node.escapechar,
            singleChar=node.singlechar,
            wildCard=node.wildcard,
        )
    if kind == "Between":
        return lib.PropertyIsBetween(_property(node.lhs), _literal(node.low), _literal(node.high))
    if kind == "IsNull":
        return lib.PropertyIsNull(_property(node.lhs))
    raise _NotSimple(kind)


def _property(node: Any) -> str:
    if type(node).__name__ != "Attribute":
        raise _NotSimple("not a property")
    return str(node.name)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, _LITERALS):
        raise _NotSimple("not a literal")
    return str(value)
