"""Answers as live servers send them, not as the specifications say: a byte order mark before
JSON (IIS, ArcGIS), JSON in a declared Latin-1 charset or an undeclared one, gzip and deflate
(with and without a Content-Encoding), a lying
Content-Type, and errors sent with status 200 (an HTML page, an ows:ExceptionReport, an OGC
API exception or a ProblemDetails document). Harvested through the CLI as a user would."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pyarrow.parquet as pq
import pytest
from loopback import Answer, scripted_server
from oapif_service import FEATURES, ITEMS, page, serve_metadata

from citypipe.cli import main

BODY = page(FEATURES, None)
NAMES = sorted(f["properties"]["name"] for f in FEATURES)  # Forst, Römerstraße, Abtei
GEOJSON = "application/geo+json"


def ingest(body: bytes, headers: dict[str, str], lake: Any, capsys: Any) -> tuple[int, str]:
    """`citypipe ingest` of a collection whose one page is `body` with `headers`: the exit
    code and what it wrote on stderr."""
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, body, headers))
        code = main(["ingest", server.url + ITEMS, "--source", "v", "--lake", str(lake.root)])
    return code, capsys.readouterr().err


def landed_names(lake: Any) -> list[str]:
    table = pq.read_table(lake.partition("features", "v"), columns=["properties"])
    return sorted(json.loads(p)["name"] for p in table.column("properties").to_pylist())


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b"\xef\xbb\xbf" + BODY, {"Content-Type": GEOJSON}, id="utf-8 BOM"),
        pytest.param(
            BODY.decode().encode("utf-16"), {"Content-Type": GEOJSON}, id="utf-16 with its BOM"
        ),
        pytest.param(
            json.dumps(json.loads(BODY), ensure_ascii=False).encode("latin-1"),
            {"Content-Type": f"{GEOJSON}; charset=ISO-8859-1"},
            id="latin-1 declared",
        ),
        pytest.param(
            BODY,
            {"Content-Type": "application/json; charset=ISO-8859-1"},
            id="utf-8 declared latin-1",
        ),
        pytest.param(
            gzip.compress(BODY), {"Content-Type": GEOJSON, "Content-Encoding": "gzip"}, id="gzip"
        ),
        pytest.param(
            zlib.compress(BODY),
            {"Content-Type": GEOJSON, "Content-Encoding": "deflate"},
            id="deflate",
        ),
        pytest.param(
            gzip.compress(BODY), {"Content-Type": GEOJSON}, id="gzip without Content-Encoding"
        ),
        pytest.param(BODY, {"Content-Type": "text/plain"}, id="as text/plain"),
        pytest.param(BODY, {"Content-Type": "application/octet-stream"}, id="as octet-stream"),
    ],
)
def test_json_as_servers_send_it_is_read_whole(lake, capsys, body, headers) -> None:
    code, err = ingest(body, headers, lake, capsys)
    assert code == 0, err
    assert landed_names(lake) == NAMES


def test_json_in_a_code_page_it_does_not_name_is_read_with_a_warning(lake, capsys) -> None:
    """Latin-1 bytes, no charset: read in the code page detected, as a JSON file is, and said."""
    body = json.dumps(json.loads(BODY), ensure_ascii=False).encode("latin-1")
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, body, {"Content-Type": GEOJSON}))
        code = main(["ingest", server.url + ITEMS, "--source", "v", "--lake", str(lake.root)])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert landed_names(lake) == NAMES
    assert "not UTF-8, as JSON must be: its text is read as cp1252" in said.out


EXCEPTION = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ows:ExceptionReport version="2.0.0" '
    b'xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception exceptionCode='
    b'"NoApplicableCode"><ows:ExceptionText>java.lang.RuntimeException: Failed to get '
    b"property names</ows:ExceptionText></ows:Exception></ows:ExceptionReport>"
)
HTML = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{}</style></head>"
    b"<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
)
OGCAPI = b'{"code": "InvalidParameterValue", "description": "Unknown crs parameter"}'
PROBLEM = (
    b'{"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", '
    b'"title": "Internal Error", "detail": "database unreachable"}'
)


@pytest.mark.parametrize(
    ("body", "kind", "said"),
    [
        (EXCEPTION, "application/xml", "exception: NoApplicableCode: java.lang.RuntimeException"),
        (HTML, "text/html", "an HTML page, not data: 502 Bad Gateway 502 Bad Gateway nginx"),
        (OGCAPI, "application/json", "exception: InvalidParameterValue: Unknown crs parameter"),
        (
            PROBLEM,
            "application/json",
            "exception: InternalError: Internal Error: database unreachable",
        ),
    ],
)
def test_an_error_sent_with_status_200_is_refused_in_the_services_words(
    lake, capsys, body, kind, said
) -> None:
    first, _ = ingest(BODY, {"Content-Type": GEOJSON}, lake, capsys)
    code, err = ingest(body, {"Content-Type": kind}, lake, capsys)
    assert (first, code) == (0, 2)
    assert said in err and len(err.strip().splitlines()) == 1
    assert landed_names(lake) == NAMES  # the previous output stays


WIDE = 123456789012345678901234567890  # a 30-digit parcel id: beyond any 64-bit integer


def test_a_pages_integers_beyond_64_bits_land_exact_and_noted(lake, capsys) -> None:
    features = [
        {**f, "properties": {**f["properties"], "parcel": WIDE + i}} for i, f in enumerate(FEATURES)
    ]
    code, err = ingest(page(features, None), {"Content-Type": GEOJSON}, lake, capsys)
    assert code == 0, err
    table = pq.read_table(lake.partition("features", "v"), columns=["properties"])
    landed = [json.loads(p) for p in table.column("properties").to_pylist()]
    assert sorted(p["parcel"] for p in landed) == [str(WIDE + i) for i in range(len(FEATURES))]
    assert all(p["citypipe:integers_as_text"].startswith("parcel:") for p in landed)


def test_a_brokers_integers_beyond_64_bits_land_exact(lake) -> None:
    entity = {
        "id": "urn:ngsi-ld:Parcel:1",
        "type": "Parcel",
        "cadastre": {"type": "Property", "value": WIDE},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7, 51]}},
    }
    headers = {"Content-Type": "application/json", "NGSILD-Results-Count": "1"}
    with scripted_server() as server:
        server.answer("/ngsi-ld/v1/entities", Answer(200, json.dumps([entity]).encode(), headers))
        url = server.url + "/ngsi-ld/v1/entities?type=Parcel"
        code = main(["ingest", url, "--source", "b", "--lake", str(lake.root)])
    assert code == 0
    table = pq.read_table(lake.partition("features", "b"), columns=["properties"])
    (landed,) = [json.loads(p) for p in table.column("properties").to_pylist()]
    assert str(WIDE) in json.dumps(landed) and "citypipe:integers_as_text" in landed


@pytest.mark.parametrize("path", ["/karte/index.html", "/portal"])
def test_a_url_that_is_no_service_is_refused_in_one_line_saying_so(lake, capsys, path):
    """A web page pasted for a service: one line saying the URL is no OGC API service."""
    with scripted_server() as server:
        server.answer(
            path, Answer(200, b"<html><body>Karte</body></html>", {"Content-Type": "text/html"})
        )
        url = server.url + path
        code = main(["ingest", url, "--source", "v", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{url}: not an OGC API - Features service: " in err
    assert not lake.partition("features", "v").exists()
