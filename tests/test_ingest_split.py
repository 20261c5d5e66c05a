"""bench/ingest_split.py: an ingest's thread CPU split by step, the lake's steps included."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES


@pytest.mark.parametrize(
    "sample",
    ["esslingen_parking_epsg25832.geojson", "citygml/sig3d_v2_Building_LOD2-EPSG25832.gml"],
)
def test_each_step_of_an_ingest_is_timed_once(sample):
    """Every step an ingest takes has its line, the lake's (its lock, the history row, the
    flushes) as the connector's, none negative, and their total (of each ingest) the largest;
    the features' encoding on the run's thread or on theirs (`order.SEALED_FROM`)."""
    done = subprocess.run(
        [sys.executable, "bench/ingest_split.py", str(SAMPLES / sample), "--repeat", "3"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("thread CPU ms, median of 3 ingests")
    split = (line.rsplit(maxsplit=1) for line in lines[1:])  # "STEP (thread)" on another
    steps = {step.strip(): float(ms) for step, ms in split}
    assert {
        "open",
        "inspect",
        "read",
        "harmonise.own",
        "geometry.place",
    } <= set(steps)
    assert {"geoparquet.write", "geoparquet.write (thread)"} & set(steps)
    lake = {"lake.lock", "commit.flush", "history.staged", "history.encoded"}
    assert lake | {"ingest.rest"} <= set(steps)
    assert all(ms >= 0 for ms in steps.values())
    assert steps["total"] == max(steps.values()) > 0
