"""Answers gzipped without a Content-Encoding (a bucket serving pre-compressed GeoJSON without
that header, a gateway compressing twice), from the real servers behind the fault proxy: a
body labelled as JSON or XML that starts as gzip is inflated, whether read whole (an OGC API
page) or as it streams (a WFS 1.1 answer); one that does not inflate is refused in one line.
Expected values come from the sample files."""

from __future__ import annotations

import pytest
from servers.facts import FONTS
from servers.faults import answer, gzipped
from test_ogcapi_pygeoapi import assert_equal_to_sample, harvest
from test_wfs_mapserver import assert_same, harvested

from citypipe.connectors.base import Query
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError


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


def test_a_body_that_starts_as_gzip_but_does_not_inflate_is_refused(
    pygeoapi_server, fault_proxy, lake
) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(answer(b"\x1f\x8b\x08\x00broken", "application/geo+json"), match="/items")
    with pytest.raises(DataError, match="starts as gzip but does not inflate"):
        harvest(f"{proxy.url}/collections/{FONTS.name}", lake, FONTS)
