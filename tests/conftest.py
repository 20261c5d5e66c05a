"""Shared fixtures: the bundled samples, the public corpus (when present), a lake per test."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from servers.fixtures import (  # noqa: F401
    _ngsi_entities,
    fault_proxy,
    mapserver_wfs,
    ngsi_broker,
    own_pygeoapi,
    pygeoapi_server,
)

from citypipe.core.lake import Lake

# Timing is no property: a loaded 2-core machine's pauses fail no example (tests' own settings
# still choose their examples and health checks otherwise).
settings.register_profile("loaded", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loaded")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
CORPUS = Path(os.environ.get("CITYPIPE_CORPUS", ROOT.parent / "shared" / "data"))
HAVE_CORPUS = (CORPUS / "MANIFEST.md").exists()


def pytest_configure(config: pytest.Config) -> None:
    """Tests over the public corpus are marked `corpus`. Where it is expected
    (CITYPIPE_REQUIRE_CORPUS=1, as in CI) and missing, the run fails at once; elsewhere its
    tests are left out with one line in the header, not skipped one by one."""
    config.addinivalue_line("markers", "corpus: needs the public corpus (../shared/data)")
    if os.environ.get("CITYPIPE_REQUIRE_CORPUS") == "1" and not HAVE_CORPUS:
        raise pytest.UsageError(f"the public corpus is required but not at {CORPUS}")


def pytest_report_header(config: pytest.Config) -> str:
    if HAVE_CORPUS:
        return f"corpus: {CORPUS}"
    return f"corpus: not at {CORPUS}; the tests marked `corpus` are left out"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        if "corpus" in getattr(item, "fixturenames", ()) or any(
            isinstance(v, Path) and v.is_relative_to(CORPUS) for v in params
        ):
            item.add_marker(pytest.mark.corpus)
    if not HAVE_CORPUS:
        left_out = [item for item in items if item.get_closest_marker("corpus")]
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("corpus")]


def data_files(root: Path) -> list[Path]:
    """The Parquet files of a lake that hold data: all but the history's rows, one per ingest,
    which a run that lands nothing leaves too."""
    return [p for p in root.rglob("*.parquet") if "history" not in p.relative_to(root).parts]


def in_source_order(table, ids: Sequence[str | None] = ()):
    """The features of a lake file in the order of the source's records (the file orders them
    along a Hilbert curve): a record's feature_id ends in its source id (`ids`, in the source's
    order) or, where it has none, in `#<its number in the source>`."""
    own = {f"#{sid}" if sid.startswith("#") else sid: i for i, sid in enumerate(ids) if sid}

    def position(feature_id: str) -> int:
        local = feature_id.split("/", 1)[1]
        return int(local[1:]) - 1 if local[1:].isdigit() and local[0] == "#" else own[local]

    keys = [position(f) for f in table.column("feature_id").to_pylist()]
    return table.take(sorted(range(len(keys)), key=keys.__getitem__))


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch):
    """No progress line on stderr where a loaded machine makes an ingest take 10 s: stderr
    holds what the user is told is wrong, and nothing else (tests/test_progress.py sets its
    own interval)."""
    monkeypatch.setenv("CITYPIPE_PROGRESS_SECONDS", "0")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def sample(tmp_path: Path):
    """Copy a bundled sample into tmp_path (so nothing writes beside the originals)."""

    def copy(name: str) -> Path:
        dest = tmp_path / "in" / Path(name).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / name, dest)
        return dest

    return copy


@pytest.fixture
def corpus() -> Path:
    """The public corpus; tests that take it are marked `corpus` (see above)."""
    return CORPUS


@pytest.fixture(scope="session")
def fountains_grid(tmp_path_factory):
    """The fountains over 9 x 5 shifted copies (89,460 features, 6 row groups), ingested, and
    the 1 km2 box of the benchmark around Plaça de Catalunya in the middle copy; made once for
    the ordered writer's tests."""
    from ordered import bench_module

    from citypipe.core.ingest import ingest

    lake_bench = bench_module("lake")
    tmp = tmp_path_factory.mktemp("grid")
    source = SAMPLES / "barcelona_drinking_fountains.geojson"
    path = lake_bench.fountains_grid(source, tmp / "grid.geojson", (9, 5))
    lake = Lake(tmp / "lake")
    ingest(path, "grid", lake, validate=False)
    box = lake_bench.query_box(source, (9, 5))
    return path, lake.partition("features", "grid") / "part-0.parquet", box, lake_bench


@pytest.fixture
def read_lake(lake: Lake):
    """The features (or rejects) a source has in the lake, as a pyarrow Table."""
    import pyarrow.parquet as pq

    def read(source: str, kind: str = "features"):
        return pq.read_table(lake.partition(kind, source))

    return read


@cache
def geoparquet_validator():
    """The GeoParquet 1.1 metadata JSON schema; it refers to PROJJSON's schema, which PROJ ships:
    resolved locally, never online."""
    import jsonschema
    import pyproj
    from referencing import Registry, Resource

    schema = json.loads(
        (SAMPLES / "geoparquet" / "geoparquet-1.1.0-metadata.schema.json").read_text()
    )
    projjson = json.loads(
        (Path(pyproj.datadir.get_data_dir()) / "projjson.schema.json").read_text()
    )
    registry = Registry().with_resource(projjson["$id"], Resource.from_contents(projjson))
    return jsonschema.Draft7Validator(schema, registry=registry)
