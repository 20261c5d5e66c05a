"""Answers gzipped without a Content-Encoding (a bucket serving pre-compressed GeoJSON without
that header, a gateway compressing twice), from the real servers behind the fault proxy: a
body labelled as JSON or XML that starts as gzip is inflated, whether read whole (an OGC API
page) or as it streams (a WFS 1.1 answer); a gzip stream broken mid-answer, labelled or not, is
asked again as a dropped connection is, and one labelled gzip that is none is refused at once.
Expected values come from the sample files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from servers.facts import FONTS
from servers.faults import answer, broken_gzip, gzipped
from test_ogcapi_pygeoapi import assert_equal_to_sample, harvest
from test_wfs_mapserver import assert_same, harvested

from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.connectors.http_gzip import body
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError, UnavailableError

QUICK = HttpPolicy(backoff=0.01, retries=2)


def test_ogcapi_pages_gzipped_without_content_encoding_are_read(
    pygeoapi_server, fault_proxy, lake
) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(gzipped(), match="/items", times=0)
    harvest(f"{proxy.url}/collections/{FONTS.name}", lake, FONTS, page_size=500)
    assert_equal_to_sample(lake, FONTS)
    assert len(proxy.faulted()) == -(-FONTS.count // 500)  # every page came gzipped


def test_a_streamed_wfs_answer_gzipped_without_content_encoding_is_read(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """WFS 1.1 without a page size: the layer in one GetFeature, parsed as it arrives."""
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(gzipped(), match="REQUEST=GetFeature", times=0)
    url = f"{proxy.url}?SERVICE=WFS&VERSION=1.1.0"
    ingest(url, "fonts", lake, options={"query": Query(layer=FONTS.name)}, validate=False)
    assert_same(harvested(lake, "fonts"), FONTS)
    assert proxy.faulted()


@pytest.mark.parametrize("labelled", [True, False], ids=["content-encoding", "unlabelled"])
@pytest.mark.parametrize("corrupt", [False, True], ids=["cut", "corrupt"])
def test_a_gzip_stream_broken_mid_answer_is_asked_again_as_a_dropped_connection(
    pygeoapi_server, fault_proxy, lake, labelled, corrupt
) -> None:
    """A gzip body cut or corrupted mid-stream (the connection orderly) is a passing fault:
    the page is asked again within the retry budget and the harvest equals the sample."""
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(broken_gzip(2000, labelled, corrupt), match="/items", nth=2)
    harvest(f"{proxy.url}/collections/{FONTS.name}", lake, FONTS, HttpClient(QUICK), page_size=500)
    assert_equal_to_sample(lake, FONTS)
    items = [s for s in proxy.seen if "/items" in s.target]
    assert [s.fault for s in items[:3]] == [None, "broken_gzip", None]
    assert items[1].target == items[2].target  # the same page, asked again


def test_a_gzip_stream_broken_on_every_try_is_unavailable_in_one_line(
    pygeoapi_server, fault_proxy, lake
) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(broken_gzip(100), match="/items", times=0)
    tries = QUICK.retries + 1
    with pytest.raises(UnavailableError, match=f"no answer after {tries} tries: a gzip body"):
        harvest(f"{proxy.url}/collections/{FONTS.name}", lake, FONTS, HttpClient(QUICK))
    assert len(proxy.faulted()) == tries
    assert not lake.partition("features", FONTS.name).exists()


def test_a_body_labelled_gzip_that_is_none_is_refused_at_once(
    pygeoapi_server, fault_proxy, lake
) -> None:
    """A plain body with Content-Encoding: gzip is the server's lasting fault: not retried."""
    proxy = fault_proxy(pygeoapi_server.url)
    fault = answer(b'{"type": "FeatureCollection"}', "application/geo+json")
    proxy.inject(replace(fault, headers=(*fault.headers, ("Content-Encoding", "gzip"))))
    with pytest.raises(DataError, match="not the gzip its server says"):
        harvest(f"{proxy.url}/collections/{FONTS.name}", lake, FONTS, HttpClient(QUICK))
    assert len(proxy.faulted()) == 1


def test_a_tls_error_mid_gzip_body_is_requests_ssl_error_as_iter_content_makes_it() -> None:
    """urllib3's SSLError out of the raw body would otherwise be a traceback, not a fault of
    the connection asked again."""
    import gzip
    import io

    import requests
    import urllib3

    class BrokenTLS(io.RawIOBase):
        def stream(self, size: int, decode_content: bool) -> Iterator[bytes]:
            yield gzip.compress(b'{"type": "FeatureCollection"}')[:10]
            raise urllib3.exceptions.SSLError("decryption failed or bad record mac")

    response = requests.Response()
    response.raw, response.status_code = BrokenTLS(), 200
    response.headers["Content-Encoding"] = "gzip"
    with pytest.raises(requests.exceptions.SSLError, match="bad record mac"):
        list(body(response, "application/json"))
