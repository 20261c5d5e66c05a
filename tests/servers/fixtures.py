"""The servers as pytest fixtures (tests/conftest.py imports them):

- `pygeoapi_server` (session): a PygeoapiServer, `.url` the landing page, `.collections` the
  facts by collection id (layer, storage CRS, CRS list, whether CQL2 applies).
- `own_pygeoapi` (per test): a function, `own_pygeoapi(collections, records=False)` -> a
  pygeoapi of that test alone, whose data files it may change (`records`: with the records
  catalogue of servers.pygeoapi_records).
- `mapserver_wfs` (session): a WfsServer, `.url` the WFS endpoint, `.feature_types` the facts
  by type name (layer, default and other CRSs, numberMatched, aliases).
- `fault_proxy` (per test): a function, `fault_proxy(upstream_url)` -> FaultProxy in front of
  it; `.url` to ask instead, `.inject(fault, match=..., nth=..., times=...)` to script faults
  (servers.faults: reset, status, truncate, slow, short), `.seen` what came through.
- `ngsi_broker` (per test): a function, `ngsi_broker(policy)` -> the NGSI-LD / v2 test broker
  (servers.ngsi_broker), its entities loaded once per session.

Each xdist worker starts its own servers (pygeoapi in about 1.5 s, MapServer per request).
Where a server is not installed its tests are skipped with one line saying how to get it,
unless CITYPIPE_REQUIRE_SERVERS=1 (CI), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from servers.faults import FaultProxy, serve_fault_proxy
from servers.mapserver import WfsServer, mapserv_binary, serve_mapserver
from servers.ngsi_broker import BrokerPolicy, NgsiBroker, loaded, serve_broker
from servers.pygeoapi_server import PYTHON, Collection, PygeoapiServer, serve_pygeoapi


def _missing(what: str) -> None:
    if os.environ.get("CITYPIPE_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{what} (CITYPIPE_REQUIRE_SERVERS=1)")
    pytest.skip(what)


def _pygeoapi_installed() -> None:
    if not PYTHON.exists():
        _missing(f"pygeoapi is not installed in {PYTHON.parent.parent}: run `make servers`")


@pytest.fixture(scope="session")
def pygeoapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PygeoapiServer]:
    _pygeoapi_installed()
    with serve_pygeoapi(tmp_path_factory.mktemp("pygeoapi")) as server:
        yield server


@pytest.fixture
def own_pygeoapi(tmp_path: Path) -> Iterator[Callable[..., PygeoapiServer]]:
    """A function: `own_pygeoapi(collections)` -> a pygeoapi of this test alone, serving those
    collections from `tmp_path/pygeoapi/<id>.geojson` (files the test may change)."""
    _pygeoapi_installed()
    with ExitStack() as stack:

        def serve(collections: tuple[Collection, ...], records: bool = False) -> PygeoapiServer:
            return stack.enter_context(serve_pygeoapi(tmp_path / "pygeoapi", collections, records))

        yield serve


@pytest.fixture(scope="session")
def mapserver_wfs() -> Iterator[WfsServer]:
    if mapserv_binary() is None:
        _missing("mapserv is not installed: `make servers` as root installs cgi-mapserver")
    with serve_mapserver() as server:
        yield server


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    with ExitStack() as stack:
        yield lambda upstream: stack.enter_context(serve_fault_proxy(upstream))


@pytest.fixture(scope="session")
def _ngsi_entities() -> NgsiBroker:
    return loaded(tenants={"city": ("ParkingSpot", 100)})


@pytest.fixture
def ngsi_broker(_ngsi_entities: NgsiBroker) -> Iterator[Callable[..., NgsiBroker]]:
    """A function: `ngsi_broker(policy)` -> the NGSI test broker (every sample type 1500 times,
    tenant `city` with 100 ParkingSpots) answering with that policy (ceiling, offset limit)."""
    with ExitStack() as stack:

        def serve(policy: BrokerPolicy | None = None) -> NgsiBroker:
            broker = replace(_ngsi_entities, policy=policy or BrokerPolicy(), seen=[])
            return stack.enter_context(serve_broker(broker))

        yield serve
