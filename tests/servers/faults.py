"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a test server.

Every request is forwarded to the upstream server; a scripted rule (by the request's number
among those its pattern matches, or every match) spoils the answer the way services fail in
the field: the connection reset mid-page, 503, 429 with Retry-After, a body shorter than its
Content-Length, an answer slower than the client waits, a page with fewer features than asked
(GeoJSON and GML rewritten, numberReturned with them), an error page sent with 200, a
parameter the server ignores (the request forwarded rewritten). The upstream's own address in a body
(pygeoapi's links, MapServer's `next`) is rewritten to the proxy's, so a client following
links stays behind the proxy.
"""

from __future__ import annotations

import gzip
import http.client
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from loopback import serving

from servers.short_page import shorten


@dataclass(frozen=True)
class Fault:
    """One way to spoil an answer. Build them with the functions below."""

    kind: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    keep: int = 0
    """reset / truncate: bytes of the body sent first; short: features kept."""
    body: bytes = b""
    """answer: the body sent instead of the upstream's."""
    target: tuple[str, str] = ("", "")
    """retarget: (regular expression, replacement) applied to the request's path and query."""


def reset(after: int = 1024) -> Fault:
    """The connection reset (RST) after the headers and `after` bytes of the body."""
    return Fault("reset", keep=after)


def status(code: int, retry_after: str | None = None) -> Fault:
    """An error answer instead of the page (503, 429 with Retry-After, ...)."""
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Fault("status", status=code, headers=headers)


def truncate(after: int = 1024) -> Fault:
    """The whole body's Content-Length, `after` bytes of it, then the connection closed."""
    return Fault("truncate", keep=after)


def slow(seconds: float) -> Fault:
    """Nothing for `seconds` (longer than the client's read timeout), then the answer."""
    return Fault("slow", delay=seconds)


def answer(body: bytes, content_type: str, code: int = 200) -> Fault:
    """`body` instead of the page, with status `code`: the error page, ows:ExceptionReport or
    OGC API exception a server sends with 200."""
    return Fault("answer", status=code, headers=(("Content-Type", content_type),), body=body)


def retarget(pattern: str, replacement: str) -> Fault:
    """The request forwarded with `pattern` in its path and query replaced (re.sub): the
    server that ignores a parameter (STARTINDEX=500 answered as STARTINDEX=0)."""
    return Fault("retarget", target=(pattern, replacement))


def gzipped() -> Fault:
    """The page gzipped, its Content-Type kept and no Content-Encoding: a bucket serving
    pre-compressed GeoJSON without that header, a gateway compressing twice."""
    return Fault("gzipped")


def broken_gzip(after: int, labelled: bool = True, corrupt: bool = False) -> Fault:
    """The page gzipped (with Content-Encoding: gzip where `labelled`) and its stream broken
    after `after` compressed bytes: cut there (Content-Length saying so: the connection is
    orderly, the stream is not), or with the bytes after it inverted (`corrupt`), as a proxy's
    or a compressor's fault mid-answer leaves it."""
    headers = (("Content-Encoding", "gzip"),) if labelled else ()
    return Fault("broken_gzip", headers=headers, keep=after, body=b"corrupt" if corrupt else b"")


def short(keep: int) -> Fault:
    """The page with only its first `keep` features (GeoJSON or GML, numberReturned fixed)."""
    return Fault("short", keep=keep)


@dataclass
class Rule:
    fault: Fault
    pattern: re.Pattern[str]
    first: int
    times: int
    seen: int = 0

    def fires(self, target: str) -> bool:
        """Whether this request (path and query) gets the fault; counts the matches."""
        if not self.pattern.search(target):
            return False
        self.seen += 1
        return self.seen >= self.first and (self.times == 0 or self.seen < self.first + self.times)


@dataclass(frozen=True)
class Seen:
    number: int
    method: str
    target: str
    fault: str | None


@dataclass
class FaultProxy:
    url: str
    """The upstream's URL with the proxy's origin (scheme, host and port) in place of its own."""
    upstream: str
    origin: str = ""
    """The proxy's scheme://host:port."""

    @property
    def upstream_origin(self) -> str:
        parts = urlsplit(self.upstream)
        return f"{parts.scheme}://{parts.netloc}"

    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, fault: Fault, match: str = "", nth: int = 1, times: int = 1) -> None:
        """`fault` on the `nth` request (1-based) whose path and query match the regular
        expression `match` (search, "" matches all), and on the `times - 1` matching ones
        after it; `times=0`: on every one from the `nth`."""
        with self.lock:
            self.rules.append(Rule(fault, re.compile(match), nth, times))

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def faulted(self) -> list[Seen]:
        return [s for s in self.seen if s.fault]

    def choose(self, method: str, target: str) -> Fault | None:
        """The fault for this request (the first rule's that fires), recorded in `seen`.
        Every rule counts its matches, whether an earlier one fires or not."""
        with self.lock:
            fired = [rule.fault for rule in self.rules if rule.fires(target)]
            fault = fired[0] if fired else None
            self.seen.append(Seen(len(self.seen) + 1, method, target, fault and fault.kind))
        return fault


def _forward(
    upstream: str, method: str, target: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(upstream)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        conn.request(method, target, body=body or None, headers={"Accept-Encoding": "identity"})
        reply = conn.getresponse()
        hop = {"connection", "keep-alive", "transfer-encoding", "content-length"}
        headers = {k: v for k, v in reply.getheaders() if k.lower() not in hop}
        return reply.status, headers, reply.read()
    finally:
        conn.close()


def _broken(body: bytes, fault: Fault) -> bytes:
    """`body` gzipped, then cut or corrupted after `fault.keep` bytes (`broken_gzip`)."""
    packed = gzip.compress(body)
    keep = min(fault.keep, len(packed) - 16)
    if not fault.body:
        return packed[:keep]
    return packed[:keep] + bytes(b ^ 0xFF for b in packed[keep:])


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def _answer(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else b""
        fault = proxy.choose(self.command, self.path)
        if fault and fault.kind in ("status", "answer"):
            self._send(fault.status, dict(fault.headers), fault.body or b"injected fault\n")
            return
        target = (
            re.sub(*fault.target, self.path) if fault and fault.kind == "retarget" else self.path
        )
        code, headers, body = _forward(proxy.upstream, self.command, target, request_body)
        body = body.replace(proxy.upstream_origin.encode(), proxy.origin.encode())
        if fault is None or fault.kind == "retarget":
            self._send(code, headers, body)
        elif fault.kind == "slow":
            time.sleep(fault.delay)
            self._send(code, headers, body)
        elif fault.kind == "short":
            self._send(code, headers, shorten(body, fault.keep))
        elif fault.kind == "gzipped":
            self._send(code, headers, gzip.compress(body))
        elif fault.kind == "broken_gzip":
            self._send(code, {**headers, **dict(fault.headers)}, _broken(body, fault))
        else:
            self._send_part(code, headers, body, fault)

    do_GET = do_POST = _answer

    def _send(self, code: int, headers: dict[str, str], body: bytes) -> None:
        self._head(code, headers, len(body))
        self.wfile.write(body)

    def _head(self, code: int, headers: dict[str, str], length: int) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_part(self, code: int, headers: dict[str, str], body: bytes, fault: Fault) -> None:
        """The headers announcing the whole body, its first bytes, then a reset (RST) or an
        orderly close (FIN) of the connection."""
        self._head(code, headers, len(body))
        self.wfile.write(body[: min(fault.keep, len(body) - 1)])
        self.wfile.flush()
        self.close_connection = True
        if fault.kind == "reset":  # linger 0: close() sends RST, not FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (the timeout tests)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A FaultProxy on a free port of 127.0.0.1 in front of `upstream` for the duration: a
    request to the proxy goes to the upstream's host with the same path and query."""
    proxy = FaultProxy(url="", upstream=upstream)
    httpd = _ProxyServer(("127.0.0.1", 0), _Handler)
    httpd.proxy = proxy
    with serving(httpd) as origin:
        proxy.origin = origin
        proxy.url = urlsplit(upstream)._replace(netloc=urlsplit(origin).netloc).geturl()
        yield proxy
