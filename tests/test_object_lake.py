"""The lake on an object store: `--lake s3://bucket/prefix` against moto's S3 server on
127.0.0.1, read back by DuckDB's httpfs (the warehouse), pyarrow and geopandas."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.request import Request, urlopen

import geopandas
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from citypipe.cli import main
from citypipe.core import warehouse
from citypipe.core.object_lake import LOCAL_ENV, ObjectLake, lake_at
from citypipe.geo.errors import ConfigurationError

BUCKET = "city"
URL = f"s3://{BUCKET}/twin/v1"


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pafs.S3FileSystem]:
    """moto's S3 server on 127.0.0.1 with one bucket, reached through the AWS_* variables
    alone, as a user's store would be; the lake's local folder under tmp_path."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets per process, not per server: each test starts from none
    urlopen(Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10).close()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "citypipe-test",
        "AWS_SECRET_ACCESS_KEY": "citypipe-test-secret",
        "AWS_REGION": "eu-central-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
        LOCAL_ENV: str(tmp_path / "local"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    fs = pafs.S3FileSystem(
        access_key="citypipe-test",
        secret_key="citypipe-test-secret",
        region="eu-central-1",
        endpoint_override=f"{host}:{port}",
        scheme="http",
        allow_bucket_creation=True,
    )
    fs.create_dir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()


def _features(path: Path) -> list[dict]:
    return json.loads(path.read_bytes())["features"]


def _keys(fs: pafs.S3FileSystem) -> dict[str, str]:
    """Every object of the bucket, with its ETag-free identity: size and modification time."""
    found = fs.get_file_info(pafs.FileSelector(BUCKET, recursive=True))
    return {f.path: f"{f.size}@{f.mtime}" for f in found if f.type == pafs.FileType.File}


def test_ingest_replace_and_fail_on_s3_then_read_with_duckdb_pyarrow_geopandas(
    s3, sample, tmp_path, capsys
):
    jena = sample("jena_parking.geojson")
    heidelberg = sample("heidelberg_disabled_parking.geojson")
    lake = lake_at(URL)
    assert isinstance(lake, ObjectLake)

    assert main(["ingest", str(jena), "--source", "parking", "--lake", URL]) == 0
    assert main(["sql", "SELECT count(*) FROM features", "--lake", URL, "--format", "csv"]) == 0
    assert str(len(_features(jena))) in capsys.readouterr().out

    # the second ingest replaces the first: Heidelberg's rows visible, Jena's gone
    assert main(["ingest", str(heidelberg), "--source", "parking", "--lake", URL]) == 0
    part = f"{BUCKET}/twin/v1/features/parking/part-0.parquet"
    landed = _keys(s3)
    assert part in landed
    assert not [k for k in landed if "/.staging/" in k], "a landed run leaves no staging"

    # a run that fails half way through its file leaves every object as it was, and says why
    broken = tmp_path / "broken.geojson"
    broken.write_bytes(heidelberg.read_bytes()[: heidelberg.stat().st_size // 2])
    capsys.readouterr()
    assert main(["ingest", str(broken), "--source", "parking", "--lake", URL]) == 2
    assert str(broken) in capsys.readouterr().err
    after = _keys(s3)
    assert {k: after[k] for k in landed} == landed
    attempts = [k for k in after if k.startswith(f"{BUCKET}/twin/v1/attempts/parking/")]
    assert len(attempts) == 1 and not [k for k in after if "/.staging/" in k]

    # the warehouse: a local DuckDB file whose views read s3:// through httpfs
    source = _features(heidelberg)
    first = source[0]
    lon, lat = first["geometry"]["coordinates"]
    _, rows = warehouse.query(
        lake,
        "SELECT count(*) FILTER (WHERE source_id = '{id}'), "
        "any_value(ST_X(geometry)) FILTER (WHERE source_id = '{id}'), "
        "any_value(ST_Y(geometry)) FILTER (WHERE source_id = '{id}'), count(*) "
        "FROM features".format(id=first["id"]),
    )
    assert rows[0][0] == 1
    assert rows[0][1:3] == pytest.approx((lon, lat), abs=1e-7)
    assert rows[0][3] == len(source)
    _, status = warehouse.query(lake, "SELECT status FROM attempts ORDER BY run_id")
    assert [s for (s,) in status] == ["ok", "failed"]
    assert b"citypipe-test-secret" not in (tmp_path / "local" / "warehouse.duckdb").read_bytes()
    with pytest.raises(ConfigurationError, match="Permission"):
        warehouse.query(lake, f"SELECT * FROM read_parquet('s3://{BUCKET}/elsewhere/*.parquet')")

    # pyarrow and geopandas read the same objects plainly
    table = ds.dataset(f"{BUCKET}/twin/v1/features", filesystem=s3, format="parquet").to_table()
    assert table.num_rows == len(source)
    assert set(table.column("source_id").to_pylist()) == {f["id"] for f in source}
    frame = geopandas.read_parquet(part, filesystem=s3)
    point = frame.loc[frame["source_id"] == first["id"], "geometry"].iloc[0]
    assert (point.x, point.y) == pytest.approx((lon, lat), abs=1e-7)


def test_citypipe_run_lands_the_catalog_on_s3_and_skips_it_unchanged(
    s3, sample, tmp_path, monkeypatch, capsys
):
    jena = sample("jena_parking.geojson")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(f"sources:\n  jena:\n    path: {jena}\n    theme: parking\n")
    monkeypatch.setenv("CITYPIPE_CATALOG", str(catalog))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("CITYPIPE_LAKE", URL)  # the LakeResource's setting, as in a deployment

    assert main(["run"]) == 0
    assert "unchanged" not in capsys.readouterr().out
    assert main(["run"]) == 0  # the file did not change: read from the landed object's footer
    assert "unchanged" in capsys.readouterr().out
    assert f"{BUCKET}/twin/v1/features/jena/part-0.parquet" in _keys(s3)
    _, rows = warehouse.query(lake_at(URL), "SELECT source, features FROM sources")
    assert rows == [("jena", len(_features(jena)))]


def test_a_missing_bucket_store_or_credentials_is_one_clear_line(s3, sample, monkeypatch, capsys):
    jena = str(sample("jena_parking.geojson"))
    assert main(["ingest", jena, "--source", "jena", "--lake", "s3://nowhere/lake"]) == 2
    assert "s3://nowhere/lake: no bucket 'nowhere'" in capsys.readouterr().err
    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with monkeypatch.context() as m:
        m.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        assert main(["ingest", jena, "--source", "jena", "--lake", URL]) == 2
        said = capsys.readouterr().err.strip().splitlines()
        assert len(said) == 1 and f"{URL}: the object store cannot be reached" in said[0]
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["ingest", jena, "--source", "jena", "--lake", URL]) == 2
    assert "AWS_SECRET_ACCESS_KEY" in capsys.readouterr().err
    assert not _keys(s3)
