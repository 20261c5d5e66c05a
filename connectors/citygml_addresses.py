"""CityGML addresses (core:Address around an xAL 2.0 or 3.0 address) as flat dicts.

xAL nests an address's parts deeply and differently in its two versions; a record carries
{street, number, postcode, city, country, ..., position} whatever the version.
"""

from __future__ import annotations

from typing import Any

from citypipe.connectors.citygml_values import add, namespace, text_of, to_number
from citypipe.connectors.gml import GML_NAMESPACES, local_name

__all__ = ["address"]

_XAL = {
    "CountryName": "country", "CountryNameCode": "country_code",
    "AdministrativeAreaName": "region", "SubAdministrativeAreaName": "subregion",
    "LocalityName": "city", "DependentLocalityName": "district",
    "ThoroughfareName": "street", "ThoroughfareNumber": "number",
    "PostalCodeNumber": "postcode", "PremiseName": "premise", "PremiseNumber": "premise_number",
    "BuildingName": "building",
}  # fmt: skip
"""xAL 2.0 leaf elements -> address keys."""
_XAL3 = {
    "Country": "country", "AdministrativeArea": "region", "SubAdministrativeArea": "subregion",
    "Locality": "city", "SubLocality": "district", "Thoroughfare": "street",
    "PostCode": "postcode", "Premises": "premise", "SubPremises": "subpremise",
}  # fmt: skip
"""xAL 3.0 elements whose NameElement / Number / Identifier children hold an address part."""
_XAL3_NAME_TYPES = {None, "Name", "NameAndType", "NameAndNumber"}


def _xal_key(leaf: Any) -> str:
    """The address key of an xAL 2.0 or 3.0 element holding text."""
    local = local_name(leaf.tag)
    if local in _XAL:
        return _XAL[local]
    base = _XAL3.get(local_name(leaf.getparent().tag))
    if base is None:
        return local
    if local == "Number":
        return "number" if base == "street" else f"{base}_number"
    name_type = leaf.get(f"{{{namespace(leaf.tag)}}}NameType")
    return base if name_type in _XAL3_NAME_TYPES else f"{base}_{name_type}"


def address(elem: Any) -> dict[str, Any]:
    """A core:Address as {street, number, postcode, city, country, ..., position}."""
    out: dict[str, Any] = {}
    for xal in elem.iter("{*}xalAddress"):
        for leaf in xal.iter():
            text = text_of(leaf) if not len(leaf) else None
            if text is not None:
                add(out, _xal_key(leaf), text)
    for point in elem.iter("{*}multiPoint"):
        positions = [
            to_number(text_of(p))
            for p in point.iter(f"{{{GML_NAMESPACES[0]}}}pos", f"{{{GML_NAMESPACES[1]}}}pos")
        ]
        srs = next((g.get("srsName") for g in point.iter() if g.get("srsName")), None)
        add(out, "position", positions[0] if len(positions) == 1 else positions)
        add(out, "position_srsName", srs)
    return out
