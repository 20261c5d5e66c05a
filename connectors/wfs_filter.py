"""A CQL2 text filter as a WFS understands it: FES 2.0 (WFS 2.0) or OGC Filter 1.1 (WFS 1.1).

pygeofilter parses the CQL2 text; the comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`, LIKE,
BETWEEN, IS NULL) of a property with a literal, joined by AND / OR / NOT, become OWSLib's FES
objects and their XML. Anything else (functions, spatial or temporal predicates, arithmetic)
is not sent: `to_fes` answers None and the features are filtered after reading (`matches`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import singledispatch
from typing import Any

from lark.exceptions import LarkError
from lxml import etree
from owslib import fes, fes2
from pygeofilter import ast
from pygeofilter.backends.native.evaluate import NativeEvaluator
from pygeofilter.parsers.cql2_text import parse as parse_cql2

from citypipe.geo.errors import ConfigurationError

__all__ = ["matches", "parse", "to_fes"]

_COMPARISONS = {
    ast.Equal: "PropertyIsEqualTo",
    ast.NotEqual: "PropertyIsNotEqualTo",
    ast.LessThan: "PropertyIsLessThan",
    ast.LessEqual: "PropertyIsLessThanOrEqualTo",
    ast.GreaterThan: "PropertyIsGreaterThan",
    ast.GreaterEqual: "PropertyIsGreaterThanOrEqualTo",
}
_LITERALS = (str, int, float, bool)


class _NotSimple(Exception):
    """The expression holds more than comparisons of properties with literals."""


def parse(text: str) -> ast.Node:
    """The CQL2 text's syntax tree; ConfigurationError naming what pygeofilter could not read."""
    try:
        return parse_cql2(text)
    except (LarkError, ValueError) as e:
        first = " ".join(str(e).split())[:160]
        raise ConfigurationError(f"--filter {text!r} is not CQL2 text: {first}") from e


def to_fes(node: ast.Node, version: str) -> str | None:
    """The filter as the KVP FILTER value of a WFS `version` (2.0.0: FES 2.0, else Filter 1.1),
    or None when it is not made of simple comparisons only."""
    lib: Any = fes2 if version.startswith("2") else fes
    try:
        operation = _operation(node, lib)
    except _NotSimple:
        return None
    if lib is fes2:
        return etree.tostring(fes2.Filter(operation).toXML(), encoding="unicode")
    return fes.FilterRequest().setConstraint(operation, tostring=True).decode()


def matches(node: ast.Node) -> Callable[[Mapping[str, Any]], bool]:
    """A test of one feature's properties, for the filters that are not sent to the server."""
    test = NativeEvaluator(use_getattr=False).evaluate(node)

    def check(properties: Mapping[str, Any]) -> bool:
        try:
            return bool(test(properties))
        except (KeyError, TypeError):  # the property is missing, or of another type
            return False

    return check


@singledispatch
def _operation(node: Any, lib: Any) -> Any:
    raise _NotSimple(type(node).__name__)


@_operation.register
def _(node: ast.Comparison, lib: Any) -> Any:
    name = _COMPARISONS.get(type(node))
    if name is None:
        raise _NotSimple(type(node).__name__)
    return getattr(lib, name)(_property(node.lhs), _literal(node.rhs))


@_operation.register
def _(node: ast.And, lib: Any) -> Any:
    return lib.And([_operation(node.lhs, lib), _operation(node.rhs, lib)])


@_operation.register
def _(node: ast.Or, lib: Any) -> Any:
    return lib.Or([_operation(node.lhs, lib), _operation(node.rhs, lib)])


@_operation.register
def _(node: ast.Not, lib: Any) -> Any:
    return lib.Not([_operation(node.sub_node, lib)])


@_operation.register
def _(node: ast.Like, lib: Any) -> Any:
    if node.not_ or node.nocase:
        raise _NotSimple("NOT LIKE / case-insensitive LIKE")
    return lib.PropertyIsLike(
        _property(node.lhs),
        node.pattern,
        escapeChar=node.escapechar,
        singleChar=node.singlechar,
        wildCard=node.wildcard,
    )


@_operation.register
def _(node: ast.Between, lib: Any) -> Any:
    if node.not_:
        raise _NotSimple("NOT BETWEEN")
    return lib.PropertyIsBetween(_property(node.lhs), _literal(node.low), _literal(node.high))


@_operation.register
def _(node: ast.IsNull, lib: Any) -> Any:
    if node.not_:
        raise _NotSimple("IS NOT NULL")
    return lib.PropertyIsNull(_property(node.lhs))


def _property(node: Any) -> str:
    if not isinstance(node, ast.Attribute):
        raise _NotSimple("not a property")
    return str(node.name)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, _LITERALS):
        raise _NotSimple("not a literal")
    return str(value)
