"""Shared fixtures: the bundled samples, the public corpus (when present), a lake per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
CORPUS = Path(os.environ.get("CITYPIPE_CORPUS", ROOT.parent / "shared" / "data"))


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
    if not (CORPUS / "MANIFEST.md").exists():
        pytest.skip(f"the public corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture
def read_lake(lake: Lake):
    """The features (or rejects) a source has in the lake, as a pyarrow Table."""
    import pyarrow.parquet as pq

    def read(source: str, kind: str = "features"):
        return pq.read_table(lake.partition(kind, source))

    return read
