"""A WFS whose gateway or servlet container answers with its HTML error page, status 200 and a
`<!DOCTYPE html>` (nginx, Tomcat), in front of the real MapServer: refused with the page's own
words in one line, never taken for an XML entity attack, and the lake keeps what it had."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from servers.facts import FONTS
from servers.faults import answer

from citypipe.cli import main

PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Proxy Error</title><style>h1{}</style></head><body>"
    b"<h1>502 Proxy Error</h1><p>The upstream server did not answer in time.</p></body></html>"
)


@pytest.mark.parametrize(
    ("version", "match", "nth", "page_size"),
    [
        ("2.0.0", "GetCapabilities", 1, None),
        ("2.0.0", "GetFeature", 1, None),  # the first page
        ("2.0.0", "STARTINDEX=1000", 1, "500"),  # a later page (500 from 500 asked ahead)
        ("1.1.0", "REQUEST=GetFeature", 1, None),  # 1.1's whole layer in one answer
    ],
)
def test_an_html_error_page_sent_with_200_is_refused_in_its_words(
    mapserver_wfs, fault_proxy, lake, capsys, version, match, nth, page_size
) -> None:
    proxy = fault_proxy(mapserver_wfs.url)
    url = f"{proxy.url}?SERVICE=WFS&VERSION={version}&TYPENAMES={FONTS.name}"
    args = ["ingest", url, "--source", "fonts", "--lake", str(lake.root)]
    args += ["--page-size", page_size] if page_size else []
    assert main(args) == 0
    capsys.readouterr()
    proxy.inject(answer(PAGE, "text/html"), match=match, nth=nth, times=0)
    code, err = main(args), capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "an HTML page, not data: Proxy Error 502 Proxy Error The upstream server" in err
    assert "DTD" not in err
    assert pq.read_table(lake.partition("features", "fonts")).num_rows == FONTS.count


ARCGIS = (
    b'{"error": {"code": 500, "message": "Unable to complete operation.", '
    b'"details": ["Invalid query parameters."]}}'
)


@pytest.mark.parametrize(
    ("body", "kind", "said"),
    [
        (
            ARCGIS,
            "application/json",
            (
                "the service answered with an exception: 500: Unable to complete operation.: "
                "Invalid query parameters."
            ),
        ),
        (b"Bad gateway\n", "text/plain", "the answer is text, not data: Bad gateway"),
    ],
    ids=["arcgis json error", "plain text"],
)
@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])  # 1.1: the layer's one streamed answer
def test_a_json_error_or_plain_text_where_xml_was_asked_is_refused_in_its_words(
    mapserver_wfs, fault_proxy, lake, capsys, body, kind, said, version
) -> None:
    """Not "not well-formed XML, line 1": the answer's own words, in one line."""
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(answer(body, kind), match="REQUEST=GetFeature", times=0)
    url = f"{proxy.url}?SERVICE=WFS&VERSION={version}&TYPENAMES={FONTS.name}"
    code = main(["ingest", url, "--source", "fonts", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert said in err
    assert not lake.partition("features", "fonts").exists()
