"""The connector SDK: `citypipe new-connector` writes a package whose own tests pass, which,
built and installed offline, citypipe finds through its entry point and ingests end to end;
and the conformance kit fails a connector that breaks the contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from citypipe.cli import main

BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def package(tmp_path: Path) -> Path:
    assert main(["new-connector", "parking-feed", "--dest", str(tmp_path)]) == 0
    return tmp_path / "citypipe-parking-feed"


def test_the_scaffold_passes_its_own_tests(package: Path) -> None:
    assert (package / "citypipe_parking_feed" / "connector.py").is_file()
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], package, package
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout


def test_an_installed_connector_is_found_by_its_entry_point(package: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = _run(
        [
            str(BIN / "pip"),
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(package),
        ],
        tmp_path,
        tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (entry_points,) = site.glob("*.dist-info/entry_points.txt")
    assert "parking-feed = citypipe_parking_feed.connector:ParkingFeedConnector" in (
        entry_points.read_text()
    )
    lake = tmp_path / "lake"
    sample = package / "tests" / "sample.jsonl"  # detected by content: no --format
    done = _run(
        [str(BIN / "citypipe"), "ingest", str(sample), "--source", "feed", "--lake", str(lake)],
        tmp_path,
        site,
    )
    assert done.returncode == 0, done.stderr
    (features,) = (lake / "features").rglob("*.parquet")
    table = pq.read_table(features, columns=["source_id", "feature_class", "bbox"])
    assert sorted(table.column("source_id").to_pylist()) == ["a", "b"]  # c has no position
    bbox = {r["source_id"]: r["bbox"] for r in table.to_pylist()}
    assert bbox["a"]["xmin"] == pytest.approx(13.4050) and bbox["a"]["ymin"] == pytest.approx(52.52)
    (rejects,) = (lake / "rejects").rglob("*.parquet")
    (reject,) = pq.read_table(rejects).to_pylist()
    assert reject["source_id"] == "c" and reject["reason"] == "no numeric lon and lat"


@pytest.mark.parametrize("name", ["Parking", "9lives", "a b", "geojson", "x--y"])
def test_the_scaffold_refuses_bad_names(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-connector", name, "--dest", str(tmp_path)]) == 2
    assert "citypipe: error:" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_scaffold_never_overwrites(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (package / "mine.txt").write_text("work in progress")
    assert main(["new-connector", "parking-feed", "--dest", str(package.parent)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert (package / "mine.txt").read_text() == "work in progress"


FLAWS = {
    # a broken line raises instead of becoming a reject with its reason
    "test_broken_inputs_give_clear_errors": (
        '        return None, f"not JSON: {e}"',
        "        raise ValueError(line) from e",
    ),
    # the last record vanishes: records read no longer equal the sample's
    "test_records_are_conserved": (
        "        lines = [line for line in f if line.strip()]",
        "        lines = [line for line in f if line.strip()][:-1]",
    ),
}


@pytest.mark.parametrize("failing", sorted(FLAWS))
def test_the_kit_fails_a_connector_that_breaks_the_contract(package: Path, failing: str) -> None:
    module = package / "citypipe_parking_feed" / "connector.py"
    old, new = FLAWS[failing]
    text = module.read_text()
    assert old in text
    module.write_text(text.replace(old, new))
    done = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests",
            "-k",
            "TestConformance",
        ],
        package,
        package,
    )
    assert done.returncode == 1, done.stdout
    failed = {
        line.split("::")[-1].split(" ")[0]
        for line in done.stdout.splitlines()
        if line.startswith("FAILED")
    }
    assert failing in failed, done.stdout
