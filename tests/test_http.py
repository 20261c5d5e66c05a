"""The shared HTTP client against a real server on 127.0.0.1: retries, Retry-After, the
per-host limit, timeouts, body limits and errors of the project's family."""

from __future__ import annotations

import itertools
import socket
import threading
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loopback import Answer, scripted_server

from citypipe.connectors.http import HttpClient, HttpPolicy, retry_after
from citypipe.geo.errors import ConfigurationError, DataError, UnavailableError

FAST = HttpPolicy(backoff=0.05, retries=3, read_timeout=5)


def gaps(server) -> list[float]:
    times = [r.at for r in server.requests]
    return [b - a for a, b in itertools.pairwise(times)]


def test_503_is_tried_again_with_growing_waits_until_the_page_comes() -> None:
    with scripted_server() as server:
        server.answer("/items", Answer(503), Answer(503), Answer(200, b'{"ok": true}'))
        reply = HttpClient(FAST).get(server.url + "/items")
    assert reply.json() == {"ok": True}
    assert len(server.requests) == 3
    first, second = gaps(server)
    assert first >= 0.025 and second >= 0.05  # backoff 0.05 s doubled, jitter at most halves


def test_429_waits_as_long_as_retry_after_says() -> None:
    policy = HttpPolicy(backoff=0.01, retries=2)
    with scripted_server() as server:
        server.answer("/p", Answer(429, headers={"Retry-After": "1"}), Answer(200, b"page"))
        reply = HttpClient(policy).get(server.url + "/p")
    assert reply.content == b"page"
    assert gaps(server)[0] >= 0.95  # the backoff alone would have waited 0.01 s


def test_a_retry_after_longer_than_citypipe_waits_is_unavailable_at_once() -> None:
    with scripted_server() as server:
        server.answer("/p", Answer(503, headers={"Retry-After": "3600"}))
        with pytest.raises(UnavailableError, match="3600 s"):
            HttpClient(FAST).get(server.url + "/p")
    assert len(server.requests) == 1


def test_a_server_that_stays_down_is_unavailable_after_every_retry() -> None:
    with scripted_server() as server:
        server.answer("/p", Answer(502, b"<html>Bad   Gateway</html>"))
        with pytest.raises(
            UnavailableError, match=r"HTTP 502 after 4 tries: .*HTML page.*: Bad Gateway$"
        ):
            HttpClient(FAST).get(server.url + "/p")
    assert len(server.requests) == FAST.retries + 1


def test_a_refusal_that_waiting_cannot_change_is_a_configuration_error_at_once() -> None:
    with scripted_server() as server:
        server.answer("/p", Answer(400, b"InvalidParameterValue: typeName"))
        with pytest.raises(ConfigurationError, match="HTTP 400: InvalidParameterValue"):
            HttpClient(FAST).get(server.url + "/p")
        with pytest.raises(ConfigurationError, match="HTTP 404"):
            HttpClient(FAST).get(server.url + "/nowhere")
    assert len(server.requests) == 2


def test_an_error_page_is_quoted_by_its_text_not_its_markup() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>404 Not Found</title><script>var x = 1;</script>"
        b"</head><body><h1>Not Found</h1><p>The requested URL was not found.</p></body></html>"
    )
    with scripted_server() as server:
        server.answer("/p", Answer(404, page, {"Content-Type": "text/html"}))
        with pytest.raises(ConfigurationError) as refused:
            HttpClient(FAST).get(server.url + "/p")
    said = str(refused.value)
    assert said.endswith(
        "HTTP 404: the answer is an HTML page, not data: 404 Not Found Not Found "
        "The requested URL was not found."
    )


def test_requests_name_citypipe_and_carry_parameters_and_headers() -> None:
    with scripted_server() as server:
        server.answer("/p", Answer(200, b"x"))
        with HttpClient(FAST, headers={"Accept": "application/geo+json"}) as client:
            client.get(server.url + "/p", params={"limit": 10, "f": "json"})
    request = server.requests[0]
    assert request.headers["User-Agent"].startswith("citypipe/")
    assert request.headers["Accept"] == "application/geo+json"
    assert request.query == "limit=10&f=json"


def test_no_more_than_the_per_host_limit_is_in_flight_across_threads() -> None:
    policy = HttpPolicy(per_host=2)
    with scripted_server() as server:
        server.answer("/slow", Answer(200, b"x", delay=0.2))
        client = HttpClient(policy)
        threads = [
            threading.Thread(target=client.get, args=(server.url + "/slow",)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(server.requests) == 6
    assert server.most_in_flight == 2


def test_a_server_that_does_not_answer_in_time_is_unavailable() -> None:
    policy = HttpPolicy(backoff=0.01, retries=1, read_timeout=0.2)
    with scripted_server() as server:
        server.answer("/p", Answer(200, b"late", delay=1.0))
        with pytest.raises(UnavailableError, match="no answer after 2 tries"):
            HttpClient(policy).get(server.url + "/p")


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the client connects
    policy = HttpPolicy(backoff=0.01, retries=1)
    with pytest.raises(UnavailableError, match="no answer after 2 tries"):
        HttpClient(policy).get(f"http://127.0.0.1:{port}/p")


def test_a_body_over_the_limit_is_refused() -> None:
    with scripted_server() as server:
        server.answer("/big", Answer(200, b"x" * 1000))
        with pytest.raises(DataError, match="over the limit"):
            HttpClient(HttpPolicy(max_bytes=100)).get(server.url + "/big")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "127.0.0.1/x"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        HttpClient(FAST).get(url)


@given(st.integers(min_value=0, max_value=10**6))
def test_retry_after_in_seconds(seconds: int) -> None:
    assert retry_after(str(seconds), now=0.0) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert retry_after(formatdate(now + 120, usegmt=True), now) == pytest.approx(120)
    assert retry_after(formatdate(now - 120, usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None


def test_a_body_that_is_not_the_encoding_its_header_names_is_a_data_error() -> None:
    """A server that labels a plain body gzip: refused in the project's family, read whole or
    as a stream (a WFS answer parsed as it arrives)."""
    with scripted_server() as server:
        server.answer("/p", Answer(200, b"<a>plain</a>" * 50, {"Content-Encoding": "gzip"}))
        with pytest.raises(DataError, match="not the gzip its server says"):
            HttpClient(FAST).get(server.url + "/p")
        with pytest.raises(DataError, match="not the gzip its server says"):
            HttpClient(FAST).open(server.url + "/p").read(100)
    assert len(server.requests) == 2  # not asked again


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_bearer_token_follows_a_redirect_within_its_origin_only(code: int) -> None:
    """A broker's token (`token_env`) must not reach another origin a redirect names; here
    another port of 127.0.0.1, which is another origin as much as another host is."""
    bearer = {"Authorization": "Bearer from-the-environment"}
    with scripted_server() as broker, scripted_server() as elsewhere:
        elsewhere.answer("/p", Answer(200, b"{}"))
        broker.answer("/p", Answer(200, b"{}"))
        broker.answer("/away", Answer(code, headers={"Location": elsewhere.url + "/p"}))
        broker.answer("/moved", Answer(code, headers={"Location": "/p"}))
        with HttpClient(FAST) as client:
            client.get(broker.url + "/away", headers=bearer)
            client.get(broker.url + "/moved", headers=bearer)
    assert "Authorization" not in elsewhere.requests[0].headers
    assert broker.requests[-1].path == "/p"
    assert broker.requests[-1].headers["Authorization"] == bearer["Authorization"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (  # NGSI-LD ProblemDetails (Orion-LD's refusal of a limit above its ceiling)
            (
                b'{"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": '
                b'"Invalid value for URI parameter /limit/", "detail": "must be <= 1000"}'
            ),
            "HTTP 400: BadRequestData: Invalid value for URI parameter /limit/: must be <= 1000",
        ),
        (  # NGSI v2 (Orion)
            b'{"error": "BadRequest", "description": "Bad pagination limit: /2000/ [max: 1000]"}',
            "HTTP 400: BadRequest: Bad pagination limit: /2000/ [max: 1000]",
        ),
        (  # OGC API - Features exception (pygeoapi)
            b'{"code": "InvalidParameterValue", "description": "Invalid bbox"}',
            "HTTP 400: InvalidParameterValue: Invalid bbox",
        ),
    ],
)
def test_a_json_error_document_is_quoted_by_its_words(body: bytes, said: str) -> None:
    with scripted_server() as server:
        server.answer("/p", Answer(400, body, {"Content-Type": "application/json"}))
        with pytest.raises(ConfigurationError) as refused:
            HttpClient(FAST).get(server.url + "/p")
    assert str(refused.value).endswith(said)
