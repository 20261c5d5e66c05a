"""A real HTTP server on 127.0.0.1 whose answers a test scripts: status, headers, body, delay.

Each path (or path with its exact query, which wins) has a queue of answers; the last one is
repeated once the queue is down to it, so a
test can say "503 twice, then the page". Every request is recorded with its time and headers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    path: str
    query: str
    headers: dict[str, str]
    at: float


class ScriptedServer:
    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self.url = ""

    def answer(self, path: str, *answers: Answer) -> None:
        self.script[path] = list(answers)

    def _next(self, path: str, query: str) -> Answer:
        with self._lock:
            queue = self.script.get(f"{path}?{query}") or self.script.get(path)
            if not queue:
                return Answer(404, b"no such path")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with server._lock:
                    server.requests.append(
                        Request(parts.path, parts.query, dict(self.headers), time.monotonic())
                    )
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    answer = server._next(parts.path, parts.query)
                    time.sleep(answer.delay)
                finally:
                    # no longer in flight once answered: a client that has its answer may send
                    # the next request before this thread would get back to count it
                    with server._lock:
                        server.in_flight -= 1
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    """A ScriptedServer listening on a free port of 127.0.0.1 for the duration."""
    server = ScriptedServer()
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), server.handler())) as url:
        server.url = url
        yield server


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[str]:
    """`httpd` answering from a thread of its own for the duration; yields its URL."""
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
