"""pygeoapi (OGC API - Features Parts 1-3) on 127.0.0.1 over two samples, for the harvest tests.

`serve_pygeoapi(workdir)` writes the collections' data and the config into `workdir`, starts
pygeoapi from its own venv (.venv-pygeoapi, `make servers`) on a free port, waits until it
answers, and kills it at the end; its log stays in `workdir` and is shown when it fails to
start. The facts the tests compare against are in `facts.py`, taken from the sample files and
MANIFEST.md, never from the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from servers.facts import FONTS, PARKPLAETZE, SAMPLES, Layer
from servers.process import free_port, running
from servers.pygeoapi_records import CATALOGUE, records_resource

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-pygeoapi" / "bin" / "python"
APP = Path(__file__).with_name("pygeoapi_app.py")

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def epsg(code: int) -> str:
    return f"http://www.opengis.net/def/crs/EPSG/0/{code}"


@dataclass(frozen=True)
class Collection:
    """What a collection serves: the layer's facts, its CRS list (Part 2) and whether a CQL2
    `filter` is applied (Part 3). pygeoapi 0.21 declares no filter conformance class for
    either; the collection without CQL2 ignores `filter` and answers every feature."""

    layer: Layer
    storage_crs: str
    crs: tuple[str, ...]
    cql2: bool
    time_field: str | None = None
    """The property `datetime` selects by (pygeoapi's `time_field`), with a temporal extent from
    the layer's earliest value on; None: neither (pygeoapi then ignores `datetime`)."""

    @property
    def id(self) -> str:
        return self.layer.name


COLLECTIONS = (
    Collection(FONTS, CRS84, (CRS84, epsg(4326), epsg(25831), epsg(3857)), cql2=True),
    Collection(PARKPLAETZE, epsg(25832), (CRS84, epsg(4326), epsg(25832), epsg(3857)), cql2=False),
)
CHECKED = replace(COLLECTIONS[1], time_field="Überprüfungsdatum")
"""The parking areas with their last check's date as the collection's time (`datetime`), for the
incremental harvest (a server of its own: its test changes the data)."""
CONTACT = ("name", "position", "address", "city", "stateorprovince", "postalCode", "country")
CONTACT += ("phone", "fax", "email", "hours", "instructions", "role")
DEFAULT_LIMIT = 10
"""Features per page when the client names no limit."""
MAX_LIMIT = 500
"""The most features per page: a larger `limit` is cut to this, silently (pygeoapi's throttle)."""


@dataclass(frozen=True)
class PygeoapiServer:
    url: str
    """The landing page, without a trailing slash."""
    collections: dict[str, Collection]
    log: Path


def _data(collection: Collection, workdir: Path) -> Path:
    """The sample as pygeoapi reads it: every feature with an `id` (the GeoJSON provider
    needs one), the layer's id property where it has one, else its 0-based position."""
    doc = json.loads((SAMPLES / collection.layer.sample).read_text(encoding="utf-8"))
    for position, feature in enumerate(doc["features"]):
        key = collection.layer.id_property
        feature["id"] = feature["properties"][key] if key else position
    path = workdir / f"{collection.id}.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _resource(collection: Collection, workdir: Path) -> dict[str, object]:
    layer = collection.layer
    own = collection.cql2 or collection.time_field
    name = "servers.pygeoapi_app.CQLGeoJSONProvider" if own else "GeoJSON"
    data = _data(collection, workdir)
    extents: dict[str, object] = {"spatial": {"bbox": list(layer.wgs84_bbox), "crs": CRS84}}
    provider = {
        "type": "feature",
        "name": name,
        "data": str(data),
        "id_field": "id",
        "storage_crs": collection.storage_crs,
        "crs": list(collection.crs),
    }
    if collection.time_field:
        features = json.loads(data.read_text(encoding="utf-8"))["features"]
        times = [f["properties"].get(collection.time_field) for f in features]
        begin = datetime.fromisoformat(min(t for t in times if t)).replace(tzinfo=UTC)
        extents["temporal"] = {"begin": begin, "end": None}
        provider["time_field"] = collection.time_field
    return {
        "type": "collection",
        "title": layer.title,
        "description": layer.description,
        "keywords": list(layer.keywords),
        "extents": extents,
        "providers": [provider],
    }


def write_config(
    workdir: Path,
    port: int,
    collections: tuple[Collection, ...] = COLLECTIONS,
    records: bool = False,
) -> Path:
    url = f"http://127.0.0.1:{port}"
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["de-DE", "ca-ES", "en-US"],
            "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "citypipe Testdienst – Parkplätze und Fonts d'aigua",
                "description": "pygeoapi über Beispieldaten aus data/samples",
                "keywords": ["citypipe", "Parkplätze"],
                "url": url,
                "terms_of_service": "data/samples/SOURCES.md",
            },
            "license": {"name": "CC-BY-4.0 / MIT (data/samples/SOURCES.md)", "url": url},
            "provider": {"name": "citypipe tests", "url": url},
            # pygeoapi's templates read every one of these
            "contact": dict.fromkeys(CONTACT, "citypipe") | {"url": url},
        },
        "resources": {c.id: _resource(c, workdir) for c in collections},
    }
    if records:
        config["resources"][CATALOGUE] = records_resource(workdir)
    path = workdir / "pygeoapi.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@contextmanager
def serve_pygeoapi(
    workdir: Path, collections: tuple[Collection, ...] = COLLECTIONS, records: bool = False
) -> Iterator[PygeoapiServer]:
    """pygeoapi serving `collections` (their data written into `workdir`, `<id>.geojson`), and
    where `records` the records catalogue (pygeoapi_records), on a free port of 127.0.0.1 for
    the duration."""
    if not PYTHON.exists():
        raise FileNotFoundError(f"{PYTHON} is missing: run `make servers`")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(APP.parent.parent)}
    log = workdir / "pygeoapi.log"
    with ExitStack() as stack:
        for attempt in range(3):  # another process may take the free port before pygeoapi
            port = free_port()
            config = write_config(workdir, port, collections, records)
            command = [str(PYTHON), str(APP), str(config)]
            ready = f"http://127.0.0.1:{port}/conformance"
            try:
                stack.enter_context(running(command, ready, log, env))
                break
            except RuntimeError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        yield PygeoapiServer(f"http://127.0.0.1:{port}", {c.id: c for c in collections}, log)
