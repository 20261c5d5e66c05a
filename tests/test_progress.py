"""Long work says how far it got: a bar on a terminal (a real pseudo-terminal here), log lines
every CITYPIPE_PROGRESS_SECONDS otherwise and in Dagster's run log; stdout stays as it was."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import SAMPLES
from dagster import DagsterInstance, materialize
from loopback import scripted_server
from oapif_service import quick_client, serve_two_pages
from test_dagster import JENA, write_catalog

from citypipe.connectors.base import Query
from citypipe.core import progress, warehouse
from citypipe.core.export import export, selection
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.orchestration.assets import build_assets
from citypipe.orchestration.resources import LakeResource

SAMPLE = "jena_parking.geojson"
RECORDS = len(json.loads((SAMPLES / SAMPLE).read_bytes())["features"])  # 103


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPIPE_")}
    return {**env, **extra}


def _cli(*args: str, env: dict[str, str], terminal: bool) -> tuple[str, str]:
    """stdout and stderr of `citypipe ARGS`, stderr on a 120-column pseudo-terminal or a pipe."""
    command = [sys.executable, "-m", "citypipe.cli", *args]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return done.stdout, done.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.wait() == 0
    return out, shown.decode()


def _seconds_masked(table: str) -> str:
    """The table with its last column (seconds, "4" when the run took 4.000 s) as S."""
    return re.sub(r"\d+(\.\d+)?\s*$", "S", table, flags=re.MULTILINE)


def test_a_terminal_shows_a_bar_and_stdout_stays_the_same(tmp_path: Path) -> None:
    path = tmp_path / SAMPLE
    path.write_bytes((SAMPLES / SAMPLE).read_bytes())
    ingest_args = ("ingest", str(path), "--source", "jena", "--lake", str(tmp_path / "lake"))
    out, bar = _cli(*ingest_args, env=_env(), terminal=True)
    assert "\r" in bar and "ingest jena: 100%|" in bar
    last = bar.rstrip().rsplit("\r", 1)[-1]
    size = path.stat().st_size
    assert f"{size / 1024:.1f}k/{size / 1024:.1f}k" in last and f"{RECORDS} records" in last
    quiet, nothing = _cli(*ingest_args, env=_env(CITYPIPE_PROGRESS_SECONDS="0"), terminal=False)
    assert nothing == ""
    assert _seconds_masked(out) == _seconds_masked(quiet) and f" {RECORDS} " in out

    export_args = ("export", "--source", "jena", "--lake", str(tmp_path / "lake"))
    out, bar = _cli(*export_args, str(tmp_path / "a.gpkg"), env=_env(), terminal=True)
    assert "export a.gpkg: 100%|" in bar and f"{RECORDS}/{RECORDS}" in bar
    quiet, _ = _cli(*export_args, str(tmp_path / "b.gpkg"), env=_env(), terminal=False)
    assert out.replace("a.gpkg", "b.gpkg") == quiet


def test_without_a_terminal_log_lines_come_every_interval(tmp_path: Path) -> None:
    path = tmp_path / SAMPLE
    path.write_bytes((SAMPLES / SAMPLE).read_bytes())
    env = _env(CITYPIPE_PROGRESS_SECONDS="0.2")
    _, err = _cli(
        "ingest", str(path), "--source", "jena", "--lake", str(tmp_path / "lake"), env=env,
        terminal=False,
    )  # fmt: skip
    lines = err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("citypipe: ingest jena") for line in lines)
    assert "\r" not in err
    size = f"{path.stat().st_size / 1024:.1f}kB"
    assert lines[-1].startswith(f"citypipe: ingest jena: {size} of {size} read (100 %), ")
    assert f", {RECORDS} records; " in lines[-1]


def test_an_export_logs_rows_read_then_rows_and_bytes_written(lake: Lake, sample) -> None:
    ingest(sample(SAMPLE), "jena", lake, validate=False)
    warehouse.refresh(lake)
    copies = 2000
    sql = f"SELECT f.* FROM ({selection(lake, source='jena')[0]}) f, range({copies})"
    lines: list[str] = []
    dest = lake.root.parent / "many.fgb"
    done = export(lake, sql, dest, reporter=progress.Reporter(log=lines.append, interval=0.05))
    rows = RECORDS * copies
    assert done.rows == rows
    assert any(re.search(r"[\d,]+ rows read", line) for line in lines)
    size = progress.tqdm.format_sizeof(dest.stat().st_size, "B", 1024)
    assert lines[-1].startswith(f"export many.fgb: {size} written, {rows:,} rows read, ")
    assert f"{rows:,} of {rows:,} rows written (100 %)" in lines[-1]


def test_a_harvest_counts_its_pages(lake: Lake) -> None:
    lines: list[str] = []
    reporter = progress.Reporter(log=lines.append, interval=0.001)
    with scripted_server() as server:
        url = serve_two_pages(server)
        options = {"query": Query(), "client": quick_client()}
        report = ingest(url, "vineyards", lake, options=options, reporter=reporter)
        answered = len(server.requests) - 1  # one 503, retried
    assert report.records == 3
    assert lines[-1].startswith(f"ingest vineyards: {answered} pages, ")
    assert ", 3 records; " in lines[-1]


def test_a_dagster_run_logs_the_progress_of_its_ingests(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CITYPIPE_PROGRESS_SECONDS", "0.02")
    catalog = write_catalog(tmp_path, {"jena_parking": JENA})
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            build_assets(catalog),
            resources={"lake": LakeResource(root=str(tmp_path / "lake"))},
            instance=instance,
        )
        assert result.success
        said = [e.user_message for e in instance.all_logs(result.run_id)]
    lines = [m for m in said if m.startswith("ingest jena_parking")]
    assert lines and f", {RECORDS} records; " in lines[-1] and "(100 %)" in lines[-1]


@pytest.mark.parametrize(
    ("name", "connector"),
    [
        ("citygml/sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml", "citygml"),
        ("cityjson/denhaag_DH_01_subset_v1.1.city.json", "cityjson"),
        ("cityjson/3dbag_b2.city.jsonl", "cityjson"),
        ("jena_parking.geojson", "geojson"),
        ("bielefeld_parking_wkt.csv", "csv"),
    ],
)
def test_a_reader_tells_how_far_it_read_its_file(name: str, connector: str) -> None:
    """The bar's bytes come from the connector (the file it opened, asked where it is), on any
    system: they grow while the batches come and end at the file's size."""
    from citypipe.connectors.registry import load

    path = SAMPLES / name
    reader = load(connector)(path)
    assert reader.bytes_read() is None  # not opened yet
    seen = [reader.bytes_read() for _ in reader.read()]
    assert seen and None not in seen and seen == sorted(seen)
    assert reader.bytes_read() == path.stat().st_size
