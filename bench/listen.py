"""The listen section of the benchmark: NGSI-LD notifications into `citypipe listen`.

A listener (the command, in its own process, landing every 5 s) receives notifications of one
AirQualityObserved entity each (the Smart Data Models example, a station and a time apiece)
from CLIENTS processes of THREADS keep-alive connections, as a broker's notification workers
send them. Reported: notifications acknowledged per second (each fsynced before its answer),
the latency of an acknowledgement (median, 99th percentile), and, once the listener is stopped,
that every acknowledged notification is in the lake. The target: 1,000 per second, ten times
the request rate QuantumLeap publishes for its own benchmark.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

CLIENTS, THREADS, EACH = 4, 4, 500
"""Client processes, connections in each, notifications per connection."""
SAMPLE = "data/samples/ngsi-ld/AirQualityObserved/example-normalized.jsonld"


def _bodies(root: Path, client: int, thread: int) -> list[bytes]:
    entity = json.loads((root / SAMPLE).read_text(encoding="utf-8"))
    bodies = []
    for n in range(EACH):
        station = f"{client}-{thread}-{n}"
        data = {**entity, "id": f"urn:ngsi-ld:AirQualityObserved:bench-{station}"}
        data["dateObserved"] = {"type": "Property", "value": f"2026-12-03T10:{n % 60:02d}:00Z"}
        note = {"type": "Notification", "subscriptionId": "urn:bench", "data": [data]}
        bodies.append(json.dumps(note).encode())
    return bodies


def _send(port: int, bodies: list[bytes]) -> list[float]:
    """POST each body on one keep-alive connection; the seconds each answer took."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    took = []
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", "/notify", body, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 204:
            raise RuntimeError(f"listener answered {answer.status}")
        took.append(time.perf_counter() - start)
    conn.close()
    return took


def _client(root: Path, port: int, client: int) -> list[float]:
    bodies = [_bodies(root, client, t) for t in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        return [s for took in pool.map(lambda b: _send(port, b), bodies) for s in took]


def _round(root: Path) -> tuple[float, float, float, int]:
    """(notifications per second, median and p99 latency in ms, rows landed)."""
    with TemporaryDirectory(prefix="citypipe-bench-listen-") as tmp:
        lake = Path(tmp) / "lake"
        cmd = [
            sys.executable,
            "-m",
            "citypipe.cli",
            "listen",
            "--source",
            "bench",
            "--port",
            "0",
            "--interval",
            "5",
            "--lake",
            str(lake),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        port = int(re.findall(r":(\d+)/", proc.stdout.readline())[0])
        start = time.perf_counter()
        with ProcessPoolExecutor(CLIENTS) as pool:
            took = [
                s
                for part in pool.map(_client, [root] * CLIENTS, [port] * CLIENTS, range(CLIENTS))
                for s in part
            ]
        seconds = time.perf_counter() - start
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=300)
        import duckdb

        with duckdb.connect() as db:
            (landed,) = db.execute(
                f"SELECT count(*) FROM read_parquet('{lake}/features/**/*.parquet')"
            ).fetchone() or (0,)
    ms = sorted(t * 1000 for t in took)
    return len(took) / seconds, statistics.median(ms), ms[int(len(ms) * 0.99)], landed


def run_listen(root: Path, rounds: int) -> None:
    sent = CLIENTS * THREADS * EACH
    results = [_round(root) for _ in range(rounds)]
    rate, p50, p99, landed = max(results)
    print(f"\n## listen: {sent} notifications, {CLIENTS} x {THREADS} connections, best of {rounds}")
    print(
        f"{rate:,.0f} notifications/s acknowledged (target 1,000), latency median {p50:.1f} ms,"
        f" p99 {p99:.1f} ms; {landed} of {sent} entities landed after the stop"
    )
