"""The one HTTP client service connectors share: timeouts, retries that honour Retry-After,
a limit on requests in flight per host, a bounded body, and a User-Agent naming citypipe.

Services fail in passing (a 503 during a deploy, a 429 when a harvest is too eager) far more
often than for good; a harvest that gives up at the first one loses the night's run, and one
that retries at once, without a limit, is the reason servers answer 429. Errors are the
project's family: a refusal that will not change by waiting (400, 401, 404 ...) is a
`ConfigurationError`, one that may (a timeout, 429, 5xx after every retry) an `UnavailableError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache, cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

from citypipe.connectors.answers import HTML_TYPES, gist, json_body, refuse_html
from citypipe.geo.errors import ConfigurationError, DataError, UnavailableError

if TYPE_CHECKING:
    import requests

__all__ = ["HttpClient", "HttpPolicy", "Reply", "Stream", "Traffic"]

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers worth asking again: GDAL's GDAL_HTTP_RETRY_CODES default, and 408 (timed out)."""


@cache
def _passing() -> tuple[type[Exception], ...]:
    """Faults of the connection rather than of the request: worth trying again."""
    import requests  # here, not at load: format detection loads every connector's module

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,  # BrokenGzip among them
    )


@dataclass(frozen=True)
class HttpPolicy:
    """How patient and how polite a harvest is. The defaults suit a city's public services."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    """Seconds without a byte from the server, not for the whole body."""
    retries: int = 4
    backoff: float = 1.0
    """The first wait in seconds, doubled for each retry (with jitter), unless the server
    says how long in Retry-After."""
    max_wait: float = 300.0
    """The longest wait accepted from Retry-After; a server asking for more is unavailable."""
    per_host: int = 2
    """Requests in flight to one host from this process, across every client and thread."""
    max_bytes: int = 2 << 30
    """The largest body accepted: a response that never ends must not fill memory."""


@dataclass
class Traffic:
    """What a client has received: answers taken (pages) and bytes of their bodies, for the
    progress of a harvest (read from another thread: a count a moment old is fine)."""

    pages: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Reply:
    """A successful answer, read whole."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)

    @property
    def media_type(self) -> str:
        return media_type(self.headers)

    def json(self) -> Any:
        return self.json_read()[0]

    def json_read(self) -> tuple[Any, str | None]:
        """The JSON, and the code page it was read in where it names none and is not UTF-8."""
        return self._json

    @cached_property
    def _json(self) -> tuple[Any, str | None]:
        """Parsed once: a pager reads a page's entities, its reader the code page after."""
        return json_body(self.url, self.content, self.headers.get("Content-Type"))


def media_type(headers: Mapping[str, str]) -> str:
    """The media type an answer's Content-Type names, without its parameters, lower case."""
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


class Stream:
    """A successful answer whose body is read as it arrives, as a binary file object (lxml's
    iterparse reads it); bounded as a Reply is. It holds one of its host's slots until it is
    read to its end or closed. A connection that breaks off mid-body is an UnavailableError."""

    def __init__(
        self,
        response: requests.Response,
        slot: threading.BoundedSemaphore,
        max_bytes: int,
        traffic: Traffic | None = None,
    ) -> None:
        self.url, self.status, self.headers = response.url, response.status_code, response.headers
        self.read_bytes = 0
        self._traffic = traffic or Traffic()
        self._response, self._slot, self._max = response, slot, max_bytes
        from citypipe.connectors.http_gzip import body  # it imports requests

        self._chunks = body(response, self.media_type)
        self._open = True

    @property
    def media_type(self) -> str:
        return media_type(self.headers)

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the body (a chunk as it came, `size` or not); b"" at its end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(1 << 16), b""))
        import requests

        try:
            chunk = next(self._chunks, b"") if self._open else b""
        except _passing() as e:
            self.close()
            raise UnavailableError(
                f"{self.url}: the answer broke off after {self.read_bytes} bytes: {e}"
            ) from e
        except requests.exceptions.ContentDecodingError as e:
            self.close()
            raise self._undecodable(e) from e
        self.read_bytes += len(chunk)
        self._traffic.bytes += len(chunk)
        if self.read_bytes > self._max:
            self.close()
            raise DataError(f"{self.url}: the answer is over {self._max} bytes")
        if not chunk:
            self.close()
        return chunk

    def reply(self) -> Reply:
        """The whole answer, read (a break is raised as it came, for a retry)."""
        with self:
            return Reply(self.url, self.status, self.headers, b"".join(self._bounded()))

    def save(self, path: Path) -> None:
        """The whole body written to `path`, bounded as `reply` is (a break is raised as it came,
        for a retry)."""
        with self, open(path, "wb") as out:
            out.writelines(self._bounded())

    def _bounded(self) -> Iterator[bytes]:
        """The body's chunks, counted, up to the limit; a body its Content-Encoding does not
        decode is the server's fault."""
        import requests

        size = 0
        try:
            for chunk in self._chunks:
                size += len(chunk)
                self._traffic.bytes += len(chunk)
                if size > self._max:
                    raise DataError(f"{self.url}: the answer is over {self._max} bytes")
                yield chunk
        except requests.exceptions.ContentDecodingError as e:
            raise self._undecodable(e) from e

    def _undecodable(self, e: Exception) -> DataError:
        """A body its Content-Encoding does not decode (a server that labels a plain body
        gzip): the server's fault, not worth asking again."""
        encoding = self.headers.get("Content-Encoding")
        return DataError(f"{self.url}: the answer is not the {encoding} its server says: {e}")

    def close(self) -> None:
        if self._open:
            self._open = False
            self._response.close()
            self._slot.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@cache
def _user_agent() -> str:
    import requests

    try:
        return f"citypipe/{version('citypipe')} (python-requests/{requests.__version__})"
    except PackageNotFoundError:  # running from a checkout that is not installed
        return f"citypipe (python-requests/{requests.__version__})"


_slots: dict[str, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _host_slot(host: str, limit: int) -> threading.BoundedSemaphore:
    """The `limit` slots of `host` (the first client to name a host sets it)."""
    with _slots_lock:
        return _slots.setdefault(host, threading.BoundedSemaphore(limit))


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class HttpClient:
    """GET with the project's policy; one per harvest, safe to share between threads."""

    def __init__(
        self, policy: HttpPolicy | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        import requests

        self.policy = policy or HttpPolicy()
        self._session = requests.Session()
        self._session.headers["User-Agent"] = _user_agent()
        self._session.headers.update(headers or {})
        self.first_date: datetime | None = None
        """The server's clock (its `Date` header) at the first answer of this client: the
        instant an incremental harvest asks from next time (`core.harvest_watermark`)."""
        self.traffic = Traffic()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        accept: Collection[int] = (),
    ) -> Reply:
        """The answer to GET `url`, after as many retries as the policy allows.

        Statuses in `accept` are answers rather than errors, for a caller that reads their body
        (a WFS 2.0 server sends its ExceptionReport, the reason in its own words, with a 400)."""
        return self._retrying(url, params, headers, accept, Stream.reply)

    def open(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        accept: Collection[int] = (),
        retries: int | None = None,
    ) -> Stream:
        """The answer to GET `url` with its body still to read, as `get` retries until its
        head (a body that breaks off is the reader's to handle: part of it may be read);
        `retries` where fewer than the policy's suit the caller (a probe asks once)."""
        return self._retrying(url, params, headers, accept, lambda stream: stream, retries)

    def save(self, url: str, path: Path) -> None:
        """The body of GET `url` written to `path`, asked again (the request and the body) as
        `get` is; a web page answered instead is refused with its words."""

        def take(stream: Stream) -> None:
            if stream.media_type in HTML_TYPES:
                refuse_html(stream.reply())
            stream.save(path)

        self._retrying(url, None, None, (), take)

    def _retrying(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        accept: Collection[int],
        take: Callable[[Stream], T],
        retries: int | None = None,
    ) -> T:
        """`take` of the first answer that is not an error, after retries; `take` owns it."""
        import requests

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{url}: not an http(s) URL")
        host = f"{parts.scheme}://{parts.netloc}"
        policy = self.policy if retries is None else replace(self.policy, retries=retries)
        for attempt in range(policy.retries + 1):
            try:
                stream = self._open(host, url, params, headers)
                if stream.status < 400 or stream.status in accept:
                    self.traffic.pages += 1
                    return take(stream)
                error = stream.reply()
            except _passing() as e:
                if attempt == policy.retries:
                    raise UnavailableError(
                        f"{url}: no answer after {attempt + 1} tries: {e}"
                    ) from e
                self._sleep(url, attempt, None)
                continue
            except requests.RequestException as e:  # an invalid URL, a redirect loop ...
                raise ConfigurationError(f"{url}: {e}") from e
            if error.status not in RETRY_STATUSES:
                raise ConfigurationError(f"{url}: HTTP {error.status}{_gist(error.content)}")
            if attempt == policy.retries:
                raise UnavailableError(
                    f"{url}: HTTP {error.status} after {attempt + 1} tries{_gist(error.content)}"
                )
            self._sleep(url, attempt, retry_after(error.headers.get("Retry-After"), time.time()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(
        self,
        host: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> Stream:
        """One GET up to its head, holding one of `host`'s slots until the body is read."""
        policy = self.policy
        slot = _host_slot(host, policy.per_host)
        slot.acquire()
        try:
            response = self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=(policy.connect_timeout, policy.read_timeout),
                stream=True,
            )
        except BaseException:
            slot.release()
            raise
        stream = Stream(response, slot, policy.max_bytes, self.traffic)
        if self.first_date is None:
            self.first_date = _date(response.headers.get("Date"))
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > policy.max_bytes:
            stream.close()
            raise DataError(f"{url}: the answer is {declared} bytes, over the limit")
        return stream

    def _sleep(self, url: str, attempt: int, asked: float | None) -> None:
        """Wait before trying again: as long as the server asks, else a jittered backoff."""
        if asked is not None and asked > self.policy.max_wait:
            raise UnavailableError(
                f"{url}: the server asks to try again in {asked:.0f} s, "
                f"longer than the {self.policy.max_wait:.0f} s citypipe waits"
            )
        backoff = self.policy.backoff * 2**attempt * random.uniform(0.5, 1.0)
        time.sleep(asked if asked is not None else backoff)


def _date(value: str | None) -> datetime | None:
    """An HTTP `Date` header as an aware datetime, None where absent or unreadable."""
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _gist(content: bytes) -> str:
    said = gist(content)
    return f": {said}" if said else ""
