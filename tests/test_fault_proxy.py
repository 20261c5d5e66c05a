"""The fault proxy in front of the real test servers spoils answers as scripted, and only
those (tests/servers/faults.py)."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from servers.faults import FaultProxy, reset, short, slow, status, truncate
from servers.mapserver import OUTPUT_FORMATS
from servers.reading import PARSER, get_json, kvp, members, wfs

from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.geo.errors import UnavailableError


def test_the_proxy_passes_pages_through_with_its_own_links(pygeoapi_server, fault_proxy) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    _, direct = get_json(f"{pygeoapi_server.url}/collections/fonts/items", limit=3)
    _, proxied = get_json(f"{proxy.url}/collections/fonts/items", limit=3)
    assert proxied["features"] == direct["features"]
    hrefs = [link["href"] for link in proxied["links"]]
    assert all(h.startswith(proxy.origin) for h in hrefs if "127.0.0.1" in h)
    assert [s.fault for s in proxy.seen] == [None]


def test_503_then_the_page(pygeoapi_server, fault_proxy) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(status(503), match="/items", times=2)
    url = f"{proxy.url}/collections/fonts/items?f=json&limit=2"
    assert [requests.get(url, timeout=30).status_code for _ in range(3)] == [503, 503, 200]


def test_429_with_retry_after_on_the_second_page_only(mapserver_wfs, fault_proxy) -> None:
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(status(429, retry_after="2"), match="STARTINDEX=10", nth=1)
    first = requests.get(
        proxy.url,
        params=kvp("2.0.0", TYPENAMES="fonts", COUNT="10"),
        timeout=30,
    )
    assert first.status_code == 200 and len(members(first)) == 10
    # MapServer's `next` link, rewritten to the proxy
    next_url = etree.fromstring(first.content, PARSER).get("next")
    assert next_url.startswith(proxy.origin) and "STARTINDEX=10" in next_url
    limited = requests.get(next_url, timeout=30)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert len(members(requests.get(next_url, timeout=30))) == 10


def test_a_connection_reset_mid_page(pygeoapi_server, fault_proxy) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(reset(after=2000))
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset by peer"):
        requests.get(f"{proxy.url}/collections/fonts/items?f=json&limit=100", timeout=30)


def test_a_truncated_body(mapserver_wfs, fault_proxy) -> None:
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(truncate(after=3000))
    params = kvp("2.0.0", TYPENAMES="fonts", COUNT="50")
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(proxy.url, params=params, timeout=30)
    assert len(members(requests.get(proxy.url, params=params, timeout=30))) == 50


def test_an_answer_slower_than_the_timeout(pygeoapi_server, fault_proxy) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(slow(2.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{proxy.url}/collections/fonts/items?f=json&limit=2", timeout=(5, 0.5))


def test_a_short_geojson_page(pygeoapi_server, fault_proxy) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(short(3))
    _, doc = get_json(f"{proxy.url}/collections/fonts/items", limit=10)
    assert (len(doc["features"]), doc["numberReturned"], doc["numberMatched"]) == (3, 3, 1988)


@pytest.mark.parametrize(
    ("version", "paging", "returned"),
    # MapServer's 1.1.0 pages carry no numberOfFeatures (its hits do): nothing to rewrite
    [("1.1.0", "MAXFEATURES", None), ("2.0.0", "COUNT", "4")],
)
def test_a_short_gml_page(mapserver_wfs, fault_proxy, version: str, paging: str, returned):
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(short(4), match="STARTINDEX=20")
    type_key = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
    pages = [
        wfs(proxy.url, version, **{type_key: "fonts", paging: "10", "STARTINDEX": str(start)})
        for start in (10, 20, 30)
    ]
    assert [len(members(page)) for page in pages] == [10, 4, 10]
    root = etree.fromstring(pages[1].content, PARSER)
    assert root.get("numberReturned", root.get("numberOfFeatures")) == returned
    assert [s.fault for s in proxy.seen] == [None, "short", None]


def test_a_short_geojson_page_from_mapserver(mapserver_wfs, fault_proxy) -> None:
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(short(2))
    format_ = OUTPUT_FORMATS["geojson"]
    reply = wfs(proxy.url, "2.0.0", TYPENAMES="parkplaetze", COUNT="10", OUTPUTFORMAT=format_)
    assert [f["properties"]["fid"] for f in reply.json()["features"]] == [1, 2]


@given(
    nth=st.integers(1, 6),
    times=st.integers(0, 4),
    targets=st.lists(st.sampled_from(["/items?offset=0", "/items?offset=10", "/x"]), max_size=12),
)
def test_a_rule_fires_on_the_nth_match_and_times_in_a_row(nth, times, targets) -> None:
    proxy = FaultProxy(url="", upstream="http://127.0.0.1:1")
    proxy.inject(status(503), match="/items", nth=nth, times=times)
    fired = [proxy.choose("GET", target) is not None for target in targets]
    matches = [i for i, target in enumerate(targets) if "/items" in target]
    last = len(matches) if times == 0 else nth - 1 + times
    assert [i for i, hit in enumerate(fired) if hit] == matches[nth - 1 : last]
    assert [s.number for s in proxy.seen] == list(range(1, len(targets) + 1))


def test_every_rule_counts_its_matches_when_an_earlier_one_fires() -> None:
    proxy = FaultProxy(url="", upstream="http://127.0.0.1:1")
    proxy.inject(status(503), match="/items", nth=1, times=2)
    proxy.inject(short(1), match="/items", nth=3)
    fired = [proxy.choose("GET", "/items") for _ in range(4)]
    assert [f and f.kind for f in fired] == ["status", "status", "short", None]


def test_the_shared_client_gets_the_whole_page_past_each_passing_fault(
    mapserver_wfs, fault_proxy
) -> None:
    """The project's HTTP client against the real MapServer behind the proxy: a 503, a 429, a
    truncated body and a reset, one after the other, then the page, whole."""
    proxy = fault_proxy(mapserver_wfs.url)
    for nth, fault in enumerate(
        [status(503), status(429, retry_after="0"), truncate(after=2000), reset(after=2000)], 1
    ):
        proxy.inject(fault, nth=nth)
    with HttpClient(HttpPolicy(backoff=0.01, retries=4)) as client:
        reply = client.get(proxy.url, params=kvp("2.0.0", TYPENAMES="fonts", COUNT="50"))
    assert len(members(reply)) == 50
    assert [s.fault for s in proxy.seen] == ["status", "status", "truncate", "reset", None]


def test_the_shared_client_gives_up_on_a_server_slower_than_its_timeout(
    pygeoapi_server, fault_proxy
) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(slow(1.5), times=0)
    with (
        HttpClient(HttpPolicy(backoff=0.01, retries=1, read_timeout=0.3)) as client,
        pytest.raises(UnavailableError, match="no answer after 2 tries"),
    ):
        client.get(f"{proxy.url}/collections/fonts/items?f=json&limit=2")
