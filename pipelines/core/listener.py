"""`citypipe listen`: NGSI-LD and NGSI v2 subscription notifications into the lake.

A notification is answered (204) only once it is in the write-ahead log on disk
(notification_log). Every `interval` seconds, or sooner when `batch` notifications wait, the
flusher closes the log's segment and ingests the source's latest entity state together with
the new notifications as one ordinary run (connector `ngsi-notifications`): the features hold
each entity's latest version, observations every value notified (stored once however often it
arrives), and the run lands whole or not at all. Only then are the segments removed and the
state kept for the next run. A run that fails keeps its segments for the next one, so a
listener killed at any moment, or a lake that refuses a run, loses nothing acknowledged, and
the lake gets one run per interval, not a file per notification.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from citypipe.connectors.ngsi_notifications import LINK, is_notification, notifications, versions
from citypipe.core import warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.core.notification_log import NotificationLog
from citypipe.geo.errors import CitypipeError

__all__ = ["Listener"]

MAX_BODY = 16 * 1024 * 1024
"""The largest notification accepted (413 above)."""
STATE_ENTITIES_PER_LINE = 1000
_LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"'


def link_context(header: str | None) -> str | None:
    """The @context URL of an NGSI-LD Link header (`<url>; rel="...#context"; type=...`)."""
    for link in (header or "").split(","):
        url, _, params = link.partition(";")
        if _LINK_REL in params.replace(" ", "") and url.strip().startswith("<"):
            return url.strip()[1:-1]
    return None


@dataclass
class Flushes:
    """What the listener has landed, for its status answer and its log lines."""

    runs: int = 0
    notifications: int = 0
    failures: int = 0
    last_error: str | None = None
    last_seconds: float = 0.0

    def status(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}


@dataclass
class Listener:
    """Receives notifications for `source` and lands them in `lake`."""

    lake: Lake
    source: str
    interval: float = 10.0
    batch: int = 50_000
    options: Mapping[str, Any] = field(default_factory=dict)
    flushes: Flushes = field(default_factory=Flushes)

    def __post_init__(self) -> None:
        self.folder = self.lake.root / ".listen" / self.source
        self.log = NotificationLog(self.folder / "log")
        self._due = threading.Event()
        self._stop = threading.Event()
        self._flushing = threading.Lock()
        self._flusher = threading.Thread(target=self._run_flusher, name="flusher", daemon=True)

    @property
    def state(self) -> Path:
        """The latest version of every entity landed so far, as notifications (JSON lines)."""
        return self.folder / "state.jsonl"

    def receive(self, body: bytes, link: str | None) -> None:
        """Make one notification durable (raises ValueError when it is not one)."""
        doc = orjson.loads(body)
        if not is_notification(doc):
            raise ValueError("not an NGSI notification (subscriptionId and a data array)")
        if link is not None and LINK not in doc:
            doc[LINK] = link
        self.log.append(orjson.dumps(doc))
        if self.log.appended >= self.batch:
            self._due.set()

    def flush(self) -> bool:
        """Land what the log holds; whether anything landed. A failure is printed and kept."""
        with self._flushing:
            segments = self.log.rotate()
            if not segments:
                return False
            started = time.perf_counter()
            run = self.folder / "run.jsonl"
            landed = _concatenate([self.state] if self.state.exists() else [], segments, run)
            try:
                ingest(
                    run,
                    self.source,
                    self.lake,
                    format="ngsi-notifications",
                    origin=f"notifications to {self.source}",
                    options=self.options,
                )
                warehouse.refresh(self.lake)
            except CitypipeError as e:
                self.flushes.failures += 1
                self.flushes.last_error = str(e)
                print(f"citypipe listen: not landed, kept for the next run: {e}", file=sys.stderr)
                return False
            self._keep_state(run)
            for p in segments:
                p.unlink()
            run.unlink()
            self.flushes.runs += 1
            self.flushes.notifications += landed
            self.flushes.last_error = None
            self.flushes.last_seconds = round(time.perf_counter() - started, 3)
            return True

    def _keep_state(self, run: Path) -> None:
        """The latest version of each entity `run` held, written whole before it replaces the
        previous state (a crash leaves one or the other; replaying segments is harmless)."""
        latest = [vs[-1] for vs in versions(notifications(run))]
        part = self.state.with_suffix(".part")
        with open(part, "wb") as f:
            for i in range(0, len(latest), STATE_ENTITIES_PER_LINE):
                note = {
                    "subscriptionId": "citypipe:state",
                    "data": latest[i : i + STATE_ENTITIES_PER_LINE],
                }
                f.write(orjson.dumps(note) + b"\n")
        part.replace(self.state)

    def start(self) -> None:
        """Flush every `interval` seconds, or when `batch` notifications wait, until `stop`."""
        self._flusher.start()

    def _run_flusher(self) -> None:
        while True:
            self._due.wait(self.interval)
            self._due.clear()
            if self._stop.is_set():
                return
            self.flush()

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """The HTTP server (started by the caller: `serve_forever`), bound now."""
        return _Server((host, port), _handler(self))

    def stop(self) -> None:
        """Stop the flusher (waiting for a flush it began), land what is left, close the log."""
        self._stop.set()
        self._due.set()
        if self._flusher.is_alive():
            self._flusher.join()
        self.flush()
        self.log.close()


def _concatenate(state: list[Path], segments: list[Path], out: Path) -> int:
    """Write the state and the segments into `out`, in order; the segments' notifications."""
    lines = 0
    with open(out, "wb") as f:
        for part in [*state, *segments]:
            data = part.read_bytes()
            f.write(data)
            lines += data.count(b"\n") if part in segments else 0
    return lines


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: brokers send many notifications a second

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or -1)
            if size < 0:
                return self._answer(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            if size > MAX_BODY:
                return self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "notification too large")
            body = self.rfile.read(size)
            try:
                listener.receive(body, link_context(self.headers.get("Link")))
            except ValueError as e:  # orjson's decode error is one too
                return self._answer(HTTPStatus.BAD_REQUEST, str(e))
            self._answer(HTTPStatus.NO_CONTENT)

        def do_GET(self) -> None:
            status = {
                "source": listener.source,
                "waiting": listener.log.appended,
                **listener.flushes.status(),
            }
            self._answer(HTTPStatus.OK, body=orjson.dumps(status))

        def _answer(self, status: HTTPStatus, detail: str | None = None, body: bytes = b"") -> None:
            if detail is not None:  # ProblemDetails, as NGSI-LD answers errors
                problem = {"type": "about:blank", "title": status.phrase, "detail": detail}
                body = orjson.dumps(problem)
            self.send_response(status)
            if body:
                ctype = "application/problem+json" if detail else "application/json"
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a line per notification would cost more than the notification."""

    return Handler
