"""A service's answer read as servers really send it, not as the specifications say they do.

JSON is UTF-8 without a byte order mark (RFC 8259), yet IIS and ArcGIS put a BOM before it,
servers in Latin-1 locales send it in the charset their Content-Type names, and some in their
code page without naming it (read as a JSON file in one is: the code page detected, a
warning). And an error is often not an error status: GeoServer and MapServer send an
ows:ExceptionReport with 200, a gateway its HTML page, an OGC API server `{"code",
"description"}` (RFC 7807's `title` / `detail` for a ProblemDetails one). A user must read the
service's own words in the one line a refusal is, not "unexpected character at line 1 column 1".
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import orjson
from lxml import etree

from citypipe.connectors import json_code_page, json_numbers
from citypipe.connectors.documents import BLANK
from citypipe.connectors.xml_safety import PARSER
from citypipe.geo.errors import DataError

if TYPE_CHECKING:  # http reads its JSON answers with this module
    from citypipe.connectors.http import Reply

__all__ = [
    "HTML_TYPES",
    "count",
    "exception_text",
    "gist",
    "json_body",
    "json_exception",
    "refuse_html",
    "report_text",
    "service_words",
]

_ERROR_BYTES = 1 << 16
"""The largest JSON answer looked at as an error document where XML was asked for."""
_SHOWN = 300
"""Characters of a service's own words a message quotes."""
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
HTML_TYPES = ("text/html", "application/xhtml+xml")
"""Media types of a web page, which a service sends for an error."""


def json_body(url: str, content: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """The JSON an answer holds, its integers exact (`json_numbers`: a page's `features` or
    a broker's list of entities holding one beyond 64 bits is `Widened`, which the batches
    note), and the code page it was read in where it names none and is not UTF-8 (None
    else); DataError saying what it holds instead, in its own words."""
    try:
        value, wide, codec = _loads(content, content_type)
    except (orjson.JSONDecodeError, UnicodeDecodeError, LookupError) as e:
        said = service_words(content)
        raise DataError(f"{url}: {said or f'the answer is not JSON: {e}'}") from e
    if wide and isinstance(value, dict) and type(value.get("features")) is list:
        value["features"] = json_numbers.Widened(value["features"])
    return value, codec


def _loads(content: bytes, content_type: str | None) -> tuple[Any, bool, str | None]:
    """The body parsed (`json_numbers.loads`): after its byte order mark, in its declared
    charset where it is not UTF-8 (a server declaring Latin-1 over UTF-8 bytes is believed
    only when they are not UTF-8); naming neither, as a JSON file is read (`json_code_page`:
    UTF-8, else the code page it is text in throughout)."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return *json_numbers.loads(content.decode(encoding)), None
    charset = _charset(content_type)
    if charset is None:
        return json_code_page.loads(content)
    text: bytes | str = content
    if charset not in _UTF8:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode(charset)
    return *json_numbers.loads(text), None


def _charset(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").lower() or None
    return None


def service_words(content: bytes) -> str | None:
    """What a body that is not the data asked for says, in the service's words: an OGC
    exception report, an HTML page; None where it is neither."""
    head = _head(content)
    if not head.startswith(b"<"):
        return None
    if _is_html(head):
        return _html_words(head)
    said = report_text(head)
    return f"the service answered with an exception: {said}" if said else None


def report_text(head: bytes) -> str | None:
    """The text of the OGC exception report `head` starts (a report is short: its first bytes
    hold it), None where it starts none."""
    try:
        root = etree.fromstring(head, etree.XMLParser(**PARSER, recover=True))
    except etree.XMLSyntaxError:
        return None
    if root is None or not etree.QName(root).localname.endswith("ExceptionReport"):
        return None
    return exception_text(root)


def gist(content: bytes, limit: int = 200) -> str:
    """An error body on one line for a message: the service's words where it has them (an HTML
    page's text, an exception report, an OGC API exception or ProblemDetails), else its
    start."""
    said = service_words(content)
    if said is None:
        said = _json_words(content)
    if said:
        return said
    return " ".join(content[: limit * 2].decode("utf-8", "replace").split())[:limit]


def refuse_html(reply: Reply) -> None:
    """DataError quoting an HTML page sent where data was asked for (a gateway's or servlet
    container's error page, often with 200), before an XML reader takes its DOCTYPE for an
    entity attack or its markup for a malformed document; and saying so of an empty answer,
    plain text or a small JSON error document (ArcGIS's `{"error": ...}`), which it would call
    malformed."""
    head = _head(reply.content)
    if reply.media_type in HTML_TYPES or _is_html(head):
        raise DataError(f"{reply.url}: {_html_words(head)}")
    if not head:
        raise DataError(f"{reply.url}: the answer is empty")
    if head[:1].isalnum():  # plain text: "Internal Server Error", a proxy's "Bad gateway"
        raise DataError(f"{reply.url}: the answer is text, not data: {gist(reply.content)}")
    if len(reply.content) <= _ERROR_BYTES and (said := _json_words(reply.content)):
        raise DataError(f"{reply.url}: the service answered with an exception: {said}")


def _json_words(content: bytes) -> str | None:
    """The words of the JSON error document `content` is (`json_exception`), None where it is
    none."""
    if _head(content)[:1] == b"{":
        with suppress(orjson.JSONDecodeError):
            return json_exception(orjson.loads(content))
    return None


def _head(content: bytes) -> bytes:
    return content[: 1 << 16].lstrip(BLANK)


def _is_html(head: bytes) -> bool:
    start = head[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _html_words(head: bytes) -> str:
    """An HTML page's text, scripts and styles left out, for a message."""
    page = etree.fromstring(head, etree.HTMLParser(no_network=True)) if head.strip() else None
    if page is None:
        return "the answer is an HTML page, not data"
    for noise in page.iter("script", "style"):
        noise.getparent().remove(noise)
    return f"the answer is an HTML page, not data: {_shown(' '.join(page.itertext()))}"


def exception_text(root: Any) -> str:
    """The words of an OGC exception report (ows:ExceptionReport, ServiceExceptionReport):
    each exception's code and text."""
    said = []
    for exc in root.iter("{*}Exception", "{*}ServiceException"):
        code = exc.get("exceptionCode") or exc.get("code")
        texts = [t.strip() for t in exc.itertext() if t.strip()]
        said.append(f"{code}: {' '.join(texts)}" if code else " ".join(texts))
    return _shown("; ".join(said)) or "no text"


def json_exception(doc: Any) -> str | None:
    """The words of a JSON error document: OGC API's exception (`code`, `description`), NGSI
    v2's (`error`, `description`) or an RFC 7807 problem (NGSI-LD's ProblemDetails: the last
    segment of its `type` URI, which is the error's name, `title`, `detail`); None for
    anything else; ArcGIS's `{"error": {"code", "message", "details"}}` too."""
    if not isinstance(doc, Mapping):
        return None
    kind = str(doc.get("type", ""))
    code = doc.get("code", doc.get("error"))  # NGSI v2 (Orion): `error`, `description`
    if isinstance(code, Mapping):  # ArcGIS: {"error": {"code", "message", "details"}}
        details = code.get("details")
        words = [code.get("code"), code.get("message")]
        words += details if isinstance(details, list) else [details]
    elif isinstance(code, str):
        words = [code, doc.get("description")]
    elif isinstance(doc.get("title"), str) and (isinstance(doc.get("status"), int) or ":" in kind):
        words = [kind.rstrip("/").rsplit("/", 1)[-1] if ":" in kind else None]
        words += [doc["title"], doc.get("detail")]
    else:
        return None
    return _shown(": ".join(str(w) for w in words if w))


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def count(value: Any) -> int | None:
    """A count (numberMatched, numberReturned, totalFeatures) as servers write it: a JSON
    integer, or one in a string ("42", as some ArcGIS and GeoServer versions send it); None for
    anything else ("unknown", a float, a negative number, true)."""
    if isinstance(value, str) and value.strip().isdecimal():  # int() reads every such digit
        return int(value)
    return value if type(value) is int and value >= 0 else None
