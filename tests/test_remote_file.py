"""A file by its URL (a portal's download link) is read as the same file on disk is: chosen by
the URL's last segment, downloaded through the shared client, its format told by its content;
a web page answered instead is refused in one line. Expected values come from the features
served (oapif_service.FEATURES)."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any
from urllib.parse import quote, urlsplit

import geopandas
import pyarrow.parquet as pq
import pytest
from loopback import Answer, scripted_server
from oapif_service import FEATURES
from servers.faults import reset, truncate

from citypipe.cli import main
from citypipe.connectors.registry import load, open_location
from citypipe.connectors.remote_file import RemoteFileConnector

BODY = json.dumps({"type": "FeatureCollection", "features": FEATURES}).encode()
NAMES = sorted(f["properties"]["name"] for f in FEATURES)
PATH = "/open data/Bäume 2024.geojson"


def _landed(lake: Any) -> list[str]:
    table = pq.read_table(lake.partition("features", "v"), columns=["properties"])
    return sorted(json.loads(p)["name"] for p in table.column("properties").to_pylist())


@pytest.mark.parametrize(
    ("path", "body"),
    [(PATH, BODY), ("/export/baeume.geojson.gz", gzip.compress(BODY))],
    ids=["geojson", "gzipped"],
)
def test_a_download_link_is_ingested_as_the_file(lake, capsys, path, body) -> None:
    with scripted_server() as server:
        server.answer(quote(path), Answer(200, body, {"Content-Type": "application/octet-stream"}))
        url = server.url + quote(path)
        code = main(["ingest", url, "--source", "v", "--lake", str(lake.root)])
        assert code == 0, capsys.readouterr().err
        assert main(["inspect", url, "--json"]) == 0
    assert _landed(lake) == NAMES
    assert len(geopandas.read_parquet(lake.partition("features", "v"))) == len(FEATURES)
    out = capsys.readouterr().out
    facts = json.loads(out[out.rindex("\n{") + 1 :])  # after the ingest's table
    assert facts["format"] == "GeoJSON" and facts["features"] == len(FEATURES)


def test_a_web_page_answered_for_a_file_is_refused_in_one_line(lake, capsys) -> None:
    login = b"<!DOCTYPE html><html><body><h1>Anmeldung erforderlich</h1></body></html>"
    with scripted_server() as server:
        server.answer("/data/trees.csv", Answer(200, login, {"Content-Type": "text/html"}))
        code = main(
            ["ingest", f"{server.url}/data/trees.csv", "--source", "v", "--lake", str(lake.root)]
        )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Anmeldung erforderlich" in err, err
    assert not lake.partition("features", "v").exists()


@pytest.mark.parametrize(
    ("url", "connector"),
    [
        ("https://opendata.city/dl/parks.geojson", "remote-file"),
        ("https://opendata.city/dl/Bäume%202024.CSV?download=1", "remote-file"),
        ("https://opendata.city/dl/tiles.zip", "remote-file"),
        ("https://api.city/ogc/collections/parks/items.json", "ogcapi"),
        ("https://api.city/ogc/collections.json", "ogcapi"),
        ("https://api.city/ogc/collections/parks.json", "ogcapi"),
        ("https://maps.city/geoserver/ows.xml?SERVICE=WFS&REQUEST=GetCapabilities", "wfs"),
        ("https://broker.city/ngsi-ld/v1/entities?type=Park", "ngsi-ld-broker"),
    ],
)
def test_the_url_alone_tells_a_file_from_a_service(url, connector) -> None:
    assert type(open_location(url)) is load(connector)
    assert (RemoteFileConnector.accepts(urlsplit(url)) > 0) == (connector == "remote-file")


@pytest.mark.parametrize("fault", [reset(after=100), truncate(after=100)], ids=["reset", "cut"])
def test_a_download_broken_off_is_asked_again(lake, capsys, fault_proxy, fault) -> None:
    with scripted_server() as server:
        server.answer(quote(PATH), Answer(200, BODY, {"Content-Type": "application/geo+json"}))
        proxy = fault_proxy(server.url)
        proxy.inject(fault)
        url = proxy.url + quote(PATH)
        code = main(["ingest", url, "--source", "v", "--lake", str(lake.root)])
        assert code == 0, capsys.readouterr().err
    assert _landed(lake) == NAMES
    assert [s.fault for s in proxy.seen] == [fault.kind, None]


def test_a_catalog_entry_gives_the_files_options(tmp_path, lake, capsys, monkeypatch) -> None:
    """A `;` CSV in Latin-1 behind a URL, its encoding and delimiter named in the catalog."""
    rows = [(f["properties"]["name"], f"POINT ({i} {i})") for i, f in enumerate(FEATURES)]
    text = "name;wkt\n" + "".join(f"{n};{w}\n" for n, w in rows)
    with scripted_server() as server:
        server.answer(
            "/dl/punkte.csv", Answer(200, text.encode("latin-1"), {"Content-Type": "text/csv"})
        )
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            f"sources:\n  v:\n    url: {server.url}/dl/punkte.csv\n    theme: other\n"
            "    crs: OGC:CRS84\n    options: {encoding: latin-1, delimiter: ';'}\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("CITYPIPE_CATALOG", str(catalog))
        code = main(["run", "--lake", str(lake.root)])
    assert code == 0, capsys.readouterr().err
    assert _landed(lake) == NAMES


def test_a_box_asked_of_a_file_is_refused_not_ignored(lake, capsys) -> None:
    with scripted_server() as server:
        server.answer(quote(PATH), Answer(200, BODY, {"Content-Type": "application/geo+json"}))
        url = server.url + quote(PATH)
        code = main(
            ["ingest", url, "--bbox", "7,49,8,50", "--source", "v", "--lake", str(lake.root)]
        )
        assert not server.requests  # refused before the download
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bbox apply to a service's query" in err, err


def test_a_last_segment_naming_folders_is_downloaded_inside_the_connector_s_folder(
    lake, capsys, tmp_path
) -> None:
    """`%2F` in the last segment unquotes to a path: `../../<tmp_path>/escaped.geojson` wrote
    the download there, outside the folder the connector removes."""
    outside = tmp_path / "escaped.geojson"
    path = "/dl/" + quote(f"../..{outside}", safe="")
    with scripted_server() as server:
        server.answer(path, Answer(200, BODY, {"Content-Type": "application/geo+json"}))
        code = main(["ingest", server.url + path, "--source", "v", "--lake", str(lake.root)])
        assert code == 0, capsys.readouterr().err
    assert _landed(lake) == NAMES
    assert not outside.exists()


CSV = b"name,lon,lat\r\nWeinberg A,7.95,49.80\r\nWeinberg B,7.96,49.81\r\n"


@pytest.mark.parametrize(
    ("body", "headers", "names"),
    [
        (BODY, {"Content-Type": "application/geo+json"}, NAMES),
        (CSV, {"Content-Type": "text/csv; charset=utf-8"}, ["Weinberg A", "Weinberg B"]),
        (
            BODY,
            {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": "attachment; filename*=UTF-8''Weinlagen%20S%C3%BCd.geojson",
            },
            NAMES,
        ),
    ],
    ids=["geo+json", "csv", "disposition"],
)
def test_a_download_link_without_a_file_name_is_told_by_its_answer(
    lake, capsys, body, headers, names
) -> None:
    """A portal's `.../download?id=7` names no file: its answer's media type, or the file its
    Content-Disposition names, makes it a file (it went to OGC API and was refused)."""
    with scripted_server() as server:
        server.answer("/portal/download", Answer(200, body, headers))
        url = f"{server.url}/portal/download?id=7"
        assert type(open_location(url)) is RemoteFileConnector
        code = main(["ingest", url, "--source", "v", "--lake", str(lake.root)])
    assert code == 0, capsys.readouterr().err
    assert _landed(lake) == sorted(names)


def test_a_service_url_answering_no_file_stays_the_service_s(capsys) -> None:
    """An OGC API landing page (JSON, not a data file's type) keeps the URL OGC API's: the
    answer is asked once, and a 404 is no file either."""
    landing = json.dumps({"title": "Weinlagen", "links": []}).encode()
    with scripted_server() as server:
        server.answer("/ogc", Answer(200, landing, {"Content-Type": "application/json"}))
        assert type(open_location(f"{server.url}/ogc")) is load("ogcapi")
        assert type(open_location(f"{server.url}/missing")) is load("ogcapi")
        asked = [r.path for r in server.requests]
    assert asked == ["/ogc", "/missing"]


def test_a_url_whose_host_does_not_answer_is_asked_once_and_stays_the_service_s() -> None:
    """No answer at all (a closed loopback port) is no file either: the probe is not retried
    (the service's connector asks again, retries and says why when it reads)."""
    started = time.monotonic()
    assert type(open_location("http://127.0.0.1:1/portal/download?id=7")) is load("ogcapi")
    assert time.monotonic() - started < 1.0  # the policy's first backoff alone is 1 s


def test_an_option_only_the_guessed_service_takes_leaves_the_url_unprobed(monkeypatch) -> None:
    """An option a file's connector does not take is the service's: the URL is not asked
    (the probe's connector refused it as unknown), the guessed service is opened with it."""
    ogcapi = load("ogcapi")
    monkeypatch.setattr(ogcapi, "known_options", frozenset({"token_env"}))
    with scripted_server() as server:
        connector = open_location(f"{server.url}/portal/download?id=7", token_env="T")
        asked = [r.path for r in server.requests]
    assert type(connector) is ogcapi and asked == []
