"""`datetime` on an OGC API collection that declares no temporal extent: pygeoapi (the real
server, tests/servers) ignores it there and answers every feature, so each day partition would
land the whole collection and a one-off `--datetime` would select nothing by time. Both are
refused in one line before any page is asked for; a `datetime=` in the URL's own query is the
user's and is sent as written."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from servers.facts import PARKPLAETZE

from citypipe.connectors.base import Query
from citypipe.core.catalog import load_catalog
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.run import run

REFUSAL = "declares no temporal extent, so `datetime` selects nothing by time"


def _items_asked(proxy) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(s.target).query) for s in proxy.seen if "/items" in s.target]


def test_day_partitions_of_a_collection_without_a_temporal_extent_are_refused(
    pygeoapi_server, fault_proxy, lake, tmp_path: Path
) -> None:
    assert pygeoapi_server.collections[PARKPLAETZE.name].time_field is None  # no extent
    proxy = fault_proxy(pygeoapi_server.url)
    url = f"{proxy.url}/collections/{PARKPLAETZE.name}/items"
    path = tmp_path / "catalog.yaml"
    entry = {"url": url, "partitions": {"daily": "2021-10-10"}}
    path.write_text(yaml.safe_dump({"sources": {"parking": entry}}), encoding="utf-8")
    outcomes = run(lake, load_catalog(path), ["parking"], partitions=["2021-10-11"])
    assert [(o.source, o.ok) for o in outcomes] == [("parking~2021-10-11", False)]
    assert REFUSAL in str(outcomes[0].error) and "\n" not in str(outcomes[0].error)
    assert _items_asked(proxy) == []
    assert not list(lake.partition("features", "parking").glob("*.parquet"))


def test_a_datetime_is_refused_there_unless_the_url_writes_it(
    pygeoapi_server, fault_proxy, lake
) -> None:
    proxy = fault_proxy(pygeoapi_server.url)
    url = f"{proxy.url}/collections/{PARKPLAETZE.name}/items"
    window = "2021-10-11T00:00:00Z/2021-10-11T23:59:59Z"
    query = Query(datetime=window)
    with pytest.raises(ConfigurationError, match=f"{REFUSAL}.*asked for {window}"):
        ingest(url, "parking", lake, options={"query": query}, validate=False)
    assert _items_asked(proxy) == []
    report = ingest(f"{url}?datetime={window}", "parking", lake, validate=False)
    assert _items_asked(proxy)[0]["datetime"] == [window]
    assert report.records == PARKPLAETZE.count  # pygeoapi ignored it: the user's choice
