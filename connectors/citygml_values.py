"""CityGML attribute values as plain data: measures, code lists, repeated and generic attributes.

A CityObject's non-geometric properties become its record's `properties`: an element without
children is its text (a measure {value, uom}, an xlink its href), one with children a dict of
them; a repeated element collects its values in a list; integer attributes and the generic
attributes (gen:intAttribute, gen:doubleAttribute ...) are typed as CityGML says.
"""

from __future__ import annotations

import math
from typing import Any

from citypipe.connectors.gml import GML_NAMESPACES, local_name
from citypipe.connectors.gml_xlinks import XLINK_HREF

__all__ = [
    "CITYGML",
    "add",
    "generic_attribute",
    "int64",
    "key_of",
    "leaf_value",
    "listed",
    "namespace",
    "put",
    "text_of",
    "to_number",
    "typed",
    "value_of",
]

CITYGML = "http://www.opengis.net/citygml/"
"""The start of the namespace of every CityGML module."""
_INTEGERS = frozenset(
    {"storeysAboveGround", "storeysBelowGround", "yearOfConstruction", "yearOfDemolition"}
)


def namespace(tag: str) -> str:
    """An element's namespace (lxml writes tags as {namespace}local)."""
    return tag[1:].partition("}")[0]


def text_of(elem: Any) -> str | None:
    """An element's text, stripped; None when there is none."""
    text = elem.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _finite(text: str) -> float | None:
    """A finite number, else None (nan, inf and 1e309 are not measures)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def int64(text: str) -> int | None:
    """An integer that fits a 64-bit column, else None."""
    try:
        value = int(text)
    except ValueError:  # not an integer, or over Python's 4300 digits
        return None
    return value if -(2**63) <= value < 2**63 else None


def to_number(text: str | None) -> Any:
    """A measure's value: a float, a list of floats (MeasureOrNullList), else the text."""
    if text is None:
        return None
    value = _finite(text)
    if value is not None:
        return value
    values = [_finite(v) for v in text.split()]
    return values if values and None not in values else text


def add(d: dict[str, Any], key: str, value: Any, *, empty: bool = False) -> None:
    """Set `key`; a key given again collects its values in a list, in document order. A value
    of None is not set, unless `empty` (a generic attribute the source declares without one)."""
    if value is None and not empty:
        return
    if key not in d:
        d[key] = value
    elif type(d[key]) is _Values:
        d[key].append(value)
    else:
        d[key] = _Values([d[key], value])


def listed(d: dict[str, Any], key: str) -> list[Any]:
    """The list under `key`, made where there is none; a single value already there (the
    xlink:href a boundedBy gives beside its inline surfaces) becomes its first item."""
    values = d.setdefault(key, [])
    if not isinstance(values, list):
        values = d[key] = [values]
    return values


class _Values(list):
    """The values of a repeated element (told apart from a value that is itself a list)."""


_KEYS: dict[tuple[str, str | None], str] = {}


def key_of(elem: Any) -> str:
    """A property's name: its local name in CityGML and GML, `prefix:name` in ADEs and others."""
    tag = elem.tag
    key = _KEYS.get((tag, elem.prefix))
    if key is None:
        ns, local = namespace(tag), local_name(tag)
        foreign = not ns.startswith(CITYGML) and ns not in GML_NAMESPACES and elem.prefix
        key = _KEYS[(tag, elem.prefix)] = f"{elem.prefix}:{local}" if foreign else local
    return key


def _is_geometry(elem: Any) -> bool:
    """GML objects (geometries, envelopes) inside attributes: not carried in properties."""
    return namespace(elem.tag) in GML_NAMESPACES and local_name(elem.tag)[:1].isupper()


def leaf_value(elem: Any) -> Any:
    """An element without children: its xlink:href, a measure {value, uom}, or its text."""
    href = elem.get(XLINK_HREF)
    if href is not None:
        return href
    text = text_of(elem)
    uom = elem.get("uom")
    if uom is not None:
        return {"value": to_number(text), "uom": uom}
    extra = {
        local_name(k): v for k, v in elem.attrib.items() if local_name(k) not in ("codeSpace", "id")
    }
    return {"value": text, **extra} if extra and text is not None else text


def value_of(elem: Any) -> Any:
    """Any non-geometric element as plain data: a leaf value or a dict of its children.

    A property that wraps one object (con:height/con:Height, uro:buildingDetails/
    uro:BuildingDetails) is the object's content.
    """
    if not len(elem):
        return leaf_value(elem)
    if len(elem) == 1 and local_name(elem[0].tag)[:1].isupper():
        return None if _is_geometry(elem[0]) else value_of(elem[0])
    out: dict[str, Any] = {}
    for child in elem:
        if not _is_geometry(child):
            put(out, key_of(child), child)
    return out


def put(d: dict[str, Any], key: str, elem: Any) -> None:
    """Add an element's value under `key`, its code list (codeSpace) under `key:codeSpace`."""
    plain = not elem.keys() and not len(elem)  # most: text alone, no attribute, no child
    value = text_of(elem) if plain else value_of(elem)
    if key in _INTEGERS and isinstance(value, str):
        number = int64(value)
        value = value if number is None else number
    add(d, key, value)
    if plain:
        return
    code_space = elem.get("codeSpace")
    if code_space is not None:
        add(d, f"{key}:codeSpace", code_space)


_NUMERIC: dict[str, Any] = {"intattribute": int64, "doubleattribute": _finite}


def typed(kind: str, value: Any) -> Any:
    """A generic attribute's value as its type says: int, float, {value, uom}, else text. An
    empty gen:value of a string is "" (as citygml4j and 3DCityDB keep it), of another kind None."""
    text = text_of(value) if value is not None else None
    if text is None:
        return "" if kind == "stringattribute" and value is not None else None
    if kind == "stringattribute":
        return text
    convert = _NUMERIC.get(kind)
    if convert is not None:
        number = convert(text)
        return text if number is None else number
    if kind == "measureattribute":
        return {"value": to_number(text), "uom": value.get("uom")}
    return text


def generic_attribute(elem: Any) -> tuple[str, Any]:
    """gen:stringAttribute name="n"><gen:value> (1.0/2.0) or gen:StringAttribute><gen:name>
    <gen:value> (3.0) -> (name, typed value); a set -> (name, {member name: value}). One
    without a name is named by its kind (stringAttribute): its value is the source's too."""
    kind = local_name(elem.tag).lower()
    name = elem.get("name")
    if name is not None and len(elem) == 1 and kind != "genericattributeset":
        return name, typed(kind, elem[0])  # 1.0/2.0: the one child is gen:value
    values, members = [], []
    for child in elem:
        local = local_name(child.tag)
        if local == "name":
            name = text_of(child)
        elif local == "value":
            values.append(child)
        elif local != "codeSpace":
            members.append(child)
    name = name or local_name(elem.tag)  # one without a name is kept under its kind's
    if kind == "genericattributeset":
        inner = members + [v[0] for v in values if len(v)]  # 1.0/2.0 members, 3.0 values
        return name, dict(generic_attribute(m) for m in inner)
    return name, typed(kind, values[0] if values else None)
