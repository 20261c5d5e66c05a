"""A CityObject's attribute properties read into its record, one reader per kind of property.

Most attributes are plain data in `properties` (citygml_values); a few also fill the record's
own fields: its name, LoD, height (bldg:measuredHeight, 3.0 con:height) and CRS (the srsName of
its gml:boundedBy envelope). `reader_for` says which reader an attribute property takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from citypipe.connectors import citygml_addresses, citygml_annotations
from citypipe.connectors.citygml_records import Record
from citypipe.connectors.citygml_values import (
    CITYGML,
    add,
    generic_attribute,
    int64,
    leaf_value,
    put,
    text_of,
    typed,
    value_of,
)

__all__ = [
    "AttributeReader",
    "envelope",
    "is_generic",
    "name",
    "property_",
    "reader_for",
    "skip",
]

AttributeReader = Callable[..., None]
"""Called as reader(record, element, *arguments)."""


def property_(rec: Record, elem: Any, key: str) -> None:
    """Any other property: plain data under `key`."""
    put(rec.properties, key, elem)


def skip(rec: Record, elem: Any) -> None:
    """Terrain intersection curves: not part of the object's geometry, not carried."""


def name(rec: Record, elem: Any) -> None:
    """gml:name: the first is the record's name; all are in `properties`."""
    text = text_of(elem)
    rec.name = rec.name or text
    add(rec.properties, "name", text)


def envelope(rec: Record, elem: Any) -> None:
    """gml:boundedBy: its envelope's srsName is the record's CRS."""
    for box in elem:
        rec.crs = rec.crs or box.get("srsName")


def _lod(rec: Record, elem: Any) -> None:
    text = text_of(elem)
    number = int64(text) if text else None
    rec.lod = rec.lod if number is None else number
    add(rec.properties, "lod", text)


def _measured_height(rec: Record, elem: Any) -> None:
    value = leaf_value(elem)
    add(rec.properties, "measuredHeight", value)
    if isinstance(value, dict) and isinstance(value.get("value"), float):
        rec.height = value["value"]


def _height(rec: Record, elem: Any) -> None:
    """con:height (3.0): the first con:Height with a value is the height."""
    value = value_of(elem)
    add(rec.properties, "height", value)
    measure = value.get("value") if isinstance(value, dict) else None
    if rec.height is None and isinstance(measure, dict) and isinstance(measure.get("value"), float):
        rec.height = measure["value"]


def _generic(rec: Record, elem: Any, wrapped: bool) -> None:
    """gen:*Attribute (1.0/2.0) or core:genericAttribute around one (`wrapped`, 3.0)."""
    if wrapped and not len(elem):
        return
    add(rec.properties, *generic_attribute(elem[0] if wrapped else elem), empty=True)


def _named(rec: Record, elem: Any, kind: str) -> None:
    """gen:stringAttribute name="n"><gen:value> (1.0 / 2.0, `kind` its lower-cased name): the
    common form read directly (Munich's tile has 6,700), any other by `_generic`. One with an
    empty value is kept (`typed`): the source says it is there, empty."""
    name = elem.get("name")
    if name is None or len(elem) != 1:
        _generic(rec, elem, False)
    else:
        add(rec.properties, name, typed(kind, elem[0]), empty=True)


def _address(rec: Record, elem: Any) -> None:
    """The first address is `address`; when there are more, all are in `addresses`."""
    address = citygml_addresses.address(elem)
    if "address" not in rec.properties:
        rec.properties["address"] = address
    else:
        rec.properties.setdefault("addresses", [rec.properties["address"]]).append(address)


def _appearance(rec: Record, elem: Any) -> None:
    for appearance in elem:
        entries = citygml_annotations.appearance(appearance)
        rec.properties.setdefault("citygml:appearance", []).extend(entries)


_SPECIAL: dict[str, AttributeReader] = {
    "lod": _lod,
    "address": _address,
    "appearance": _appearance,
    "measuredHeight": _measured_height,
}


def is_generic(ns: str, local: str) -> bool:
    """Whether a property is a generic attribute (of the generics module, or 3.0's core one)."""
    return local == "genericAttribute" or ns.startswith(CITYGML + "generics/")


def reader_for(ns: str, local: str) -> tuple[AttributeReader, tuple[Any, ...]]:
    """The reader of a CityGML attribute property (namespace `ns`, local name `local`), and
    the arguments it takes after the record and the element."""
    if is_generic(ns, local):
        kind = local.lower()
        if local == "genericAttribute" or kind == "genericattributeset":
            return _generic, (local == "genericAttribute",)
        return _named, (kind,)
    if local == "height" and ns.startswith(f"{CITYGML}construction"):
        return _height, ()
    special = _SPECIAL.get(local)
    return (special, ()) if special is not None else (property_, (local,))
