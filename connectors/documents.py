"""Recognises documents that describe data but hold none, so an error can say what a file is.

Users point citypipe at what a service returned; a capabilities document or a JSON Schema is a
common mistake, and "unknown format" would not help them.
"""

from __future__ import annotations

import re

import orjson

from citypipe.connectors.json_scan import WHITESPACE

__all__ = [
    "BLANK", "EXCEPTION_REPORTS", "describe", "top_level_keys", "whole_object", "xml_root",
]  # fmt: skip

_XML_ROOT = re.compile(rb"<(?:([\w.-]+):)?([\w.-]+)[\s>/]")
_XML_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.DOTALL)
_XML_ROOTS = {
    "WFS_Capabilities": "a WFS GetCapabilities document (ingest a GetFeature response instead)",
    "WMS_Capabilities": "a WMS GetCapabilities document",
    "Capabilities": "an OGC capabilities document",
    "schema": "an XML Schema (for example a WFS DescribeFeatureType response)",
    "ExceptionReport": "an OGC exception report (the service answered with an error)",
    "ServiceExceptionReport": (
        "an OGC service exception report (the service answered with an error)"
    ),
}

BLANK = b"\xef\xbb\xbf \t\r\n"
"""What may come before a document's content: a UTF-8 byte-order mark and whitespace."""
EXCEPTION_REPORTS = frozenset({"ExceptionReport", "ServiceExceptionReport"})
"""Root elements of an OGC service's error answer (OWS 1.1 / 2.0, and WMS / WFS 1.0's)."""

# Top-level JSON members that identify a document, in order of precedence.
_JSON_KEYS = [
    ("$schema", "a JSON Schema"),
    ("conformsTo", "an OGC API conformance declaration"),
    ("collections", "an OGC API collections document (ingest a collection's /items instead)"),
    ("extent", "an OGC API collection description (ingest its /items instead)"),
    ("geo", "GeoParquet metadata"),
]


def top_level_keys(head: bytes) -> set[str]:
    """The members of the JSON object `head` starts (its first level, where it is cut)."""
    # an object cut by the head is not parsed in vain: every file's head is sniffed, and a
    # parse that fails has read it all
    cut = head.lstrip(WHITESPACE)[:1] == b"{" and not whole_object(head)
    if not cut:
        try:
            doc = orjson.loads(head)
        except orjson.JSONDecodeError:
            pass
        else:
            return set(doc) if isinstance(doc, dict) else set()
    # Too long for the head: take the keys at the first indentation level seen (none on one
    # line: not searched for).
    keys = re.findall(rb'\n {0,4}"([^"]+)"\s*:', head) if b"\n" in head else []
    return {m.decode(errors="replace") for m in keys}


def whole_object(text: bytes) -> bool:
    """Whether `text` can be a whole JSON object: it ends with "}" (blanks aside); an object
    cut short, or any other value, does not."""
    return text.rstrip(WHITESPACE).endswith(b"}")


def xml_root(head: bytes) -> tuple[bytes | None, bytes, bytes] | None:
    """(prefix, local name) of the root element of an XML document starting with `head`, and
    the text from the root on; None when it does not look like XML."""
    text = head.lstrip(BLANK)
    while (m := _XML_PROLOG.match(text)) and m.group(0):
        text = text[m.end() :]
    root = _XML_ROOT.match(text.lstrip())
    return (root.group(1), root.group(2), text) if root else None


def describe(head: bytes) -> str | None:
    """What the document starting with `head` is, when it is a known kind without features."""
    text = head.lstrip(BLANK)
    if text.startswith(b"<"):
        root = xml_root(text)
        return _XML_ROOTS.get(root[1].decode(errors="replace")) if root else None
    if text.startswith(b"{"):
        keys = top_level_keys(text)
        if keys == {"@context"}:
            return "a JSON-LD @context"
        for key, what in _JSON_KEYS:
            if key in keys:
                return what
        if keys and "type" in keys and "properties" in keys and "required" in keys:
            return "a JSON Schema"
    return None
