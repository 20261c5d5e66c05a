"""Broken and hostile input, generated from every bundled sample: whatever a file holds, an
ingest lands (features + rejects = records read) or is refused with a CitypipeError (the CLI's
exit 2) and leaves the previous output as it was; nothing else ever escapes (the CLI's exit 3).
"""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.core.ingest import ingest
from citypipe.core.lake import KINDS, Lake
from citypipe.geo.errors import CitypipeError

FILES = sorted(
    p for p in SAMPLES.rglob("*")
    if p.is_file() and p.name != "SOURCES.md" and "schema" not in p.name
)  # fmt: skip
CRS = {"reutlingen": "EPSG:25832", "denhaag_DH_01": "EPSG:7415", "3dbag_multi_lod": "EPSG:7415",
       "LocalCRS": "EPSG:25832", "LocalEngineering": "EPSG:25832"}  # fmt: skip
"""Samples that declare no CRS, with the one their MANIFEST / SOURCES.md entry names."""


def _crs(path: Path) -> str | None:
    return next((crs for key, crs in CRS.items() if key in path.name), None)


def _landed(lake: Lake, source: str) -> dict[str, bytes]:
    parts = {k: lake.partition(k, source) / "part-0.parquet" for k in KINDS}
    return {k: p.read_bytes() for k, p in parts.items() if p.exists()}


def attempt(data: bytes, like: Path, lake: Lake, tmp: Path, crs: str | None = None) -> None:
    """Ingest `data` (in a file named like `like`) over the landed source "s": it lands whole
    or is refused leaving "s" as it was; any other exception fails the test."""
    path = tmp / f"input{like.suffix}"
    path.write_bytes(data)
    before = _landed(lake, "s")
    try:
        report = ingest(path, "s", lake, crs=crs, validate=False)
    except CitypipeError as e:
        assert str(e).strip() and "Traceback" not in str(e)
        assert _landed(lake, "s") == before
        return
    assert report.features + report.rejects == report.records


@pytest.fixture
def landed(tmp_path: Path):
    """A lake where source "s" holds the Jena sample, the output every failure must keep."""
    lake = Lake(tmp_path / "lake")
    ingest(SAMPLES / "jena_parking.geojson", "s", lake, validate=False)
    return lake


def _cuts(data: bytes) -> list[bytes]:
    n = len(data)
    return [data[: int(n * f)] for f in (0.0, 0.02, 0.3, 0.5, 0.77, 0.99)] + [data[: n - 1]]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_truncation_lands_whole_or_is_refused(path, landed, tmp_path):
    for cut in _cuts(path.read_bytes()):
        attempt(cut, path, landed, tmp_path, _crs(path))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_damaged_bytes_and_other_encodings(path, landed, tmp_path):
    data = path.read_bytes()
    rng = random.Random(path.name)
    flipped = bytearray(data)
    for i in rng.sample(range(len(data)), min(8, len(data))):
        flipped[i] = rng.randrange(256)
    text = data.decode("utf-8-sig", errors="replace")
    variants = [
        bytes(flipped),
        data.replace(b"\n", b"\r\n"),
        codecs.BOM_UTF8 + data,
        text.encode("utf-16"),
        text.encode("latin-1", errors="replace"),
        data[: len(data) // 2] + b"\x00" * 64 + data[len(data) // 2 :],
        data + data,
    ]
    for variant in variants:
        attempt(variant, path, landed, tmp_path, _crs(path))


HEADS = [
    b'{"type":"FeatureCollection","features":[',
    b'{"type":"Feature","geometry":{"type":"Point","coordinates":',
    b'{"type":"CityJSON","version":"2.0","transform":{"scale":[1,1,1],"translate":[0,0,0]},',
    b'<?xml version="1.0"?><core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" ',
    b"id;name;lon;lat\n",
    b"PAR1",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(head=st.sampled_from(HEADS), tail=st.binary(max_size=400))
def test_anything_after_a_plausible_start(head, tail, landed, tmp_path):
    attempt(head + tail, Path("input.dat"), landed, tmp_path)
