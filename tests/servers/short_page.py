"""A page of features cut to its first few, as a server's short page would be: GeoJSON
(`features`, `numberReturned`) and WFS GML (members, numberReturned / numberOfFeatures)."""

from __future__ import annotations

import json

from lxml import etree

MEMBERS = {
    "{http://www.opengis.net/wfs/2.0}member",
    "{http://www.opengis.net/gml}featureMember",
    "{http://www.opengis.net/gml/3.2}featureMember",
}
"""The elements holding one feature each in WFS 2.0, 1.1 (GML 3.1.1) and GML 3.2 collections."""
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def shorten(body: bytes, keep: int) -> bytes:
    """`body` with only its first `keep` features; a body that is neither is returned as is."""
    if body.lstrip()[:1] == b"{":
        doc = json.loads(body)
        doc["features"] = doc.get("features", [])[:keep]
        if "numberReturned" in doc:
            doc["numberReturned"] = len(doc["features"])
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if body.lstrip()[:1] != b"<":
        return body
    root = etree.fromstring(body, PARSER)
    members = [e for e in root if e.tag in MEMBERS]
    for member in members[keep:]:
        root.remove(member)
    for attribute in ("numberReturned", "numberOfFeatures"):
        if attribute in root.attrib:
            root.set(attribute, str(min(keep, len(members))))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
