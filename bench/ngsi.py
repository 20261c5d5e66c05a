"""The NGSI section of the benchmark: a context broker's entities harvested into the lake.

The NGSI test broker (tests/servers/ngsi_broker.py: the corpus's seven Smart Data Models
entities, 1500 copies each, 10,500 entities; AirQualityObserved with 105,000 history values)
runs in a process of its own on 127.0.0.1; each tool runs in a child process of bench/run.py:
  floor     the least a harvester must do: requests + json.loads of every page of the same
            query (limit 1000 + offset, count=true), stopping at the count
  citypipe  `ingest` of the URL with validation (the connector's paging, each page through
            ngsi_entities.entity_batch: JSON-LD names, Smart Data Models checks, themes, then
            harmonise, validate, GeoParquet)
  unvalidated  the same without the validation suite (`ingest --no-validate`): the reader
            with its Smart Data Models checks, harmonise and GeoParquet alone
  temporal  `ingest` of the temporal API's URL: 1500 entities, their 105,000 values as
            observations (206 answers followed)
A target is `KIND URL` in one string, so that run.py's children can take it as their path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

TYPES = (
    "AirQualityObserved,Building,EVChargingStation,OffStreetParking,OnStreetParking,"
    "ParkingSpot,TrafficFlowObserved"
)
ENTITIES = 10_500
VALUES = 105_000
PAGE = 1000


@contextmanager
def broker(root: Path) -> Iterator[str]:
    """The NGSI test broker in a process of its own for the duration: its base URL."""
    sys.path.insert(0, str(root / "tests"))
    from servers.process import free_port, running

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(root / "tests")}
    command = [sys.executable, "-m", "servers.ngsi_broker", "--port", str(port)]
    with TemporaryDirectory(prefix="citypipe-bench-") as work:
        ready = f"{url}/ngsi-ld/v1/entities?type=ParkingSpot&limit=1"
        with running(command, ready, Path(work) / "broker.log", env, timeout=120):
            yield url


def _floor(target: str, out: Path) -> Callable[[], object]:
    import json

    import requests

    url = target.split(" ")[1]

    def pages() -> int:
        read, offset, total = 0, 0, None
        with requests.Session() as session:
            while total is None or offset < total:
                params = {"type": TYPES, "count": "true", "limit": PAGE, "offset": offset}
                reply = session.get(f"{url}/ngsi-ld/v1/entities", params=params, timeout=60)
                total = int(reply.headers["NGSILD-Results-Count"])
                page = json.loads(reply.content)
                read += len(page)
                offset += PAGE
        return read

    return pages


def _citypipe(
    target: str, out: Path, validate: bool = True, render_docs: bool = True
) -> Callable[[], object]:
    from citypipe.core.ingest import ingest
    from citypipe.core.lake import Lake

    kind, url = target.split(" ")
    path = (
        "temporal/entities?type=AirQualityObserved"
        if kind == "temporal"
        else f"entities?type={TYPES}"
    )
    lake = Lake(out)
    return lambda: ingest(
        f"{url}/ngsi-ld/v1/{path}", "bench", lake, validate=validate, render_docs=render_docs
    )


def _unvalidated(target: str, out: Path) -> Callable[[], object]:
    return _citypipe(target, out, validate=False)


def _in_a_run(target: str, out: Path) -> Callable[[], object]:
    """Validated as a step of `citypipe run` is: the Data Docs page is rendered once by the
    run at its end, not by each source (the report page and the results are written)."""
    return _citypipe(target, out, render_docs=False)


TOOLS: dict[str, Callable[[str, Path], Callable[[], object]]] = {
    "ngsi-floor": _floor,
    "ngsi-citypipe": _citypipe,
    "ngsi-unvalidated": _unvalidated,
    "ngsi-in-a-run": _in_a_run,
}
"""The tools bench/run.py's children run on a target."""


def run_ngsi(root: Path, rounds: int, best_of_rounds: Callable[..., dict]) -> None:
    """Entities (values) per second of each tool, best of `rounds` rounds."""
    with broker(root) as url:
        entities = f"entities {url}"
        temporal = f"temporal {url}"
        best = best_of_rounds(tuple(TOOLS), [(entities, 1)], rounds)
        history = best_of_rounds(("ngsi-citypipe",), [(temporal, 1)], rounds)
    rows = (
        ("floor (requests+json.loads)", best[entities]["ngsi-floor"], ENTITIES, "entities"),
        ("citypipe ingest, validated", best[entities]["ngsi-citypipe"], ENTITIES, "entities"),
        ("citypipe ingest, no suite", best[entities]["ngsi-unvalidated"], ENTITIES, "entities"),
        ("citypipe, validated, in a run", best[entities]["ngsi-in-a-run"], ENTITIES, "entities"),
        ("citypipe temporal ingest", history[temporal]["ngsi-citypipe"], VALUES, "values"),
    )
    floor, cp, bare, step = (r[1]["seconds"] for r in rows[:4])
    print(f"\nngsi broker ({ENTITIES} entities, pages of {PAGE}; load {os.getloadavg()[0]:.1f})")
    print(f"{'tool':32} {'s':>7} {'CPU s':>7} {'per s':>9}")
    for label, r, n, unit in rows:
        seconds, cpu = r["seconds"], r["cpu_seconds"]
        print(f"{label:32} {seconds:7.2f} {cpu:7.2f} {n / seconds:9.0f} {unit}")
    print(f"citypipe / floor: {cp / floor:.2f} with its Data Docs page rendered; validated as")
    print(f"  a step of `citypipe run` (pages rendered once at the run's end): {step / floor:.2f}")
    print(f"  (target: within 2x); without the validation suite: {bare / floor:.2f}")
    print("  (CPU s: the harvesting process's alone, the broker's not counted)")
    for result in (*best[entities].values(), *history[temporal].values()):
        if "error" in result:
            print(f"  failed: {result['error']}")
