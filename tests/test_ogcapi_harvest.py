"""OGC API - Features harvests against a scripted service built from ldproxy's real responses:
every address of the service, paging, completeness, Part 2 CRSs, Part 3 filters, JSON-FG."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import SAMPLES
from loopback import Answer, ScriptedServer, scripted_server
from oapif_service import (
    COLLECTION,
    CORE,
    CQL2_TEXT,
    FEATURES,
    FILTER,
    GEOJSON,
    ITEMS,
    JSONFG,
    PART2,
    ROOT,
    items_requests,
    page,
    quick_client,
    serve_metadata,
    serve_two_pages,
)

from citypipe.cli import main
from citypipe.connectors.base import Query
from citypipe.connectors.ogcapi import OGCAPIFeaturesConnector
from citypipe.core.ingest import IngestReport, ingest
from citypipe.geo.errors import ConfigurationError, DataError

IDS = [str(f["id"]) for f in FEATURES]  # 810601, 821717, 511431
PFALZ = [str(f["id"]) for f in FEATURES if f["properties"]["region"] == "Pfalz"]
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def harvest(url: str, lake: Any, **query: Any) -> IngestReport:
    options = {"query": Query(**query), "client": quick_client()}
    return ingest(url, "vineyards", lake, options=options)


def landed(lake: Any) -> dict[str, shapely.Geometry]:
    table = pq.read_table(lake.partition("features", "vineyards"))
    ids = table.column("source_id").to_pylist()
    return dict(zip(ids, shapely.from_wkb(table.column("geometry").to_pylist()), strict=True))


def assert_same_places(lake: Any, ids: list[str] = IDS) -> None:
    """The lake holds the vineyards `ids`, each within 1e-7 degrees of ldproxy's CRS84 one."""
    got = landed(lake)
    assert sorted(got) == sorted(ids)
    for f in FEATURES:
        if str(f["id"]) in got:
            expected = shapely.geometry.shape(f["geometry"])
            assert shapely.equals_exact(got[str(f["id"])], expected, tolerance=1e-7)


def transformed(crs: str, lat_first: bool = False) -> list[dict[str, Any]]:
    """The vineyards with their coordinates in `crs` (pyproj), in that order."""
    to = pyproj.Transformer.from_crs("OGC:CRS84", crs, always_xy=True)

    def move(coords: Any) -> Any:
        if isinstance(coords[0], (int, float)):
            x, y = to.transform(coords[0], coords[1])
            return [y, x] if lat_first else [x, y]
        return [move(c) for c in coords]

    moved = json.loads(json.dumps(FEATURES))
    for f in moved:
        f["geometry"]["coordinates"] = move(f["geometry"]["coordinates"])
    return moved


@pytest.mark.parametrize(
    "path", [ROOT, ROOT + "/", f"{ROOT}/collections", f"{ROOT}/collections/vineyards", ITEMS]
)
def test_every_address_of_the_service_harvests_its_collection(lake, path) -> None:
    with scripted_server() as server:
        serve_two_pages(server)
        report = harvest(server.url + path, lake)
        asked = items_requests(server)
    assert_same_places(lake)
    assert report.records == report.features == report.declared_count == 3
    assert [q.get("offset") for q in asked] == [None, "2", "2"]  # next links, a 503 retried


def test_the_next_page_is_asked_for_while_the_page_before_it_is_read() -> None:
    """Page 2 is asked for as soon as page 1 is parsed: its request reaches the server while
    page 1's batch is still with the pipeline (here, held)."""
    with scripted_server() as server:
        batches = OGCAPIFeaturesConnector(serve_two_pages(server), quick_client()).read()
        first = next(batches)
        for _ in range(1000):  # until page 2 (a 503, retried) has been asked for, or 10 s
            if len(items_requests(server)) == 3:
                break
            time.sleep(0.01)
        asked = [q.get("offset") for q in items_requests(server)]
        rest = list(batches)
    assert asked == [None, "2", "2"]
    assert first.source_ids == IDS[:2] and [sid for b in rest for sid in b.source_ids] == IDS[2:]


def test_a_service_of_several_collections_is_harvested_by_the_layer_named(lake) -> None:
    other = {**COLLECTION, "id": "vineyards_2019", "title": "Weinlagen 2019"}
    with scripted_server() as server:
        serve_two_pages(server)
        serve_metadata(server, collections=[COLLECTION, other])
        with pytest.raises(ConfigurationError, match=r"several collections.*--layer.*2019"):
            harvest(server.url + ROOT, lake)
        with pytest.raises(ConfigurationError, match="has no collection 'parks'"):
            harvest(server.url + ROOT, lake, layer="parks")
        with pytest.raises(ConfigurationError, match="names collection 'vineyards', the query"):
            harvest(server.url + ITEMS, lake, layer="vineyards_2019")
        assert items_requests(server) == []
        harvest(server.url + ROOT, lake, layer="vineyards")
    assert_same_places(lake)


@pytest.mark.parametrize("matched", [2, 4, "4"])  # "4": numberMatched as a string
def test_a_harvest_that_does_not_hold_number_matched_fails_and_the_lake_is_untouched(
    lake, capsys, matched
) -> None:
    with scripted_server() as server:
        url = serve_two_pages(server)
        harvest(url, lake)
        before = {p: p.read_bytes() for p in lake.files("features")}
        server.answer(ITEMS, Answer(200, page(FEATURES[:2], "items?offset=2", matched=matched)))
        code = main(["ingest", url, "--source", "vineyards", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"numberMatched {matched}, its 2 pages held 3 features" in err
    assert "nothing was written" in err
    assert {p: p.read_bytes() for p in lake.files("features")} == before


def test_an_empty_page_ends_the_harvest_whatever_its_next_link(lake) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, page(FEATURES, "items?offset=3")))
        server.answer(ITEMS + "?offset=3", Answer(200, page([], "items?offset=6")))
        server.answer(ITEMS + "?offset=6", Answer(500))
        report = harvest(server.url + ITEMS, lake)
        asked = [q.get("offset") for q in items_requests(server)]
    assert report.features == 3 and asked == [None, "3"]


def serve_in(server: ScriptedServer, served: str, **members: Any) -> str:
    """The vineyards in EPSG CRS `served` (Content-Crs says so), with Part 2 declared."""
    code = served.rsplit("/", 1)[-1]
    return serve_two_pages(
        server,
        features=transformed(f"EPSG:{code}", lat_first=code == "4326"),
        headers={"Content-Crs": f"<{served}>"},
        classes=(CORE, GEOJSON, PART2),
        **members,
    )


def test_a_crs_asked_for_is_requested_in_the_collections_spelling_and_read_in_it(lake) -> None:
    """The Content-Crs header wins over a body's (2008 GeoJSON) `crs` member that says
    otherwise."""
    lying = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    with scripted_server() as server:
        url = serve_in(server, EPSG + "25832", crs=lying)
        report = harvest(url, lake, crs="EPSG:25832")
        asked = items_requests(server)
    assert asked[0]["crs"] == EPSG + "25832"
    assert report.declared_crs == EPSG + "25832"
    assert_same_places(lake)


def test_epsg_4326_is_asked_for_and_read_latitude_first(lake) -> None:
    with scripted_server() as server:
        url = serve_in(server, EPSG + "4326")
        harvest(url, lake, crs="urn:ogc:def:crs:EPSG::4326")
        assert items_requests(server)[0]["crs"] == EPSG + "4326"
    assert_same_places(lake)


def test_without_a_crs_the_storage_crs_is_asked_for(lake) -> None:
    """ldproxy's vineyards are stored in EPSG:25832 (the collection's storageCrs)."""
    with scripted_server() as server:
        url = serve_in(server, EPSG + "25832")
        harvest(url, lake)
        assert items_requests(server)[0]["crs"] == COLLECTION["storageCrs"] == EPSG + "25832"
    assert_same_places(lake)


def test_a_storage_crs_pyproj_does_not_know_leaves_the_servers_default(lake) -> None:
    local = "http://www.opengis.net/def/crs/EPSG/0/999999"  # no such EPSG code
    collection = {**COLLECTION, "storageCrs": local, "crs": [*COLLECTION["crs"], local]}
    with scripted_server() as server:
        url = serve_two_pages(server, classes=(CORE, GEOJSON, PART2))
        serve_metadata(server, (CORE, GEOJSON, PART2), [collection])
        harvest(url, lake)
        assert "crs" not in items_requests(server)[0]
    assert_same_places(lake)


def test_a_crs_the_collection_does_not_offer_is_refused_before_any_page(lake) -> None:
    with scripted_server() as server:
        url = serve_in(server, EPSG + "25832")
        with pytest.raises(ConfigurationError, match="does not offer CRS EPSG:3035 .*4258"):
            harvest(url, lake, crs="EPSG:3035")
        serve_metadata(server)  # no Part 2
        with pytest.raises(ConfigurationError, match="does not declare OGC API Part 2"):
            harvest(url, lake, crs="EPSG:25832")
        assert items_requests(server) == []


def test_bbox_datetime_and_page_size_are_asked_of_the_server(lake) -> None:
    with scripted_server() as server:
        url = serve_two_pages(server, classes=(CORE, GEOJSON, PART2))
        box = (7.5, 49.0, 8.5, 50.0)
        harvest(url, lake, crs="OGC:CRS84", bbox=box, datetime="2020-09-01T00:00:00Z", page_size=2)
        first = items_requests(server)[0]
    assert first["bbox"] == "7.5,49.0,8.5,50.0" and first["bbox-crs"] == CRS84
    assert first["crs"] == CRS84 and first["limit"] == "2"
    assert first["datetime"] == "2020-09-01T00:00:00Z"
    assert_same_places(lake)


def test_a_filter_goes_to_a_server_that_declares_cql2_text(lake) -> None:
    pfalz = [f for f in FEATURES if str(f["id"]) in PFALZ]
    with scripted_server() as server:
        serve_metadata(server, classes=(CORE, GEOJSON, FILTER, CQL2_TEXT))
        server.answer(ITEMS, Answer(200, page(pfalz, None, matched=2)))
        report = harvest(server.url + ITEMS, lake, filter="region = 'Pfalz'")
        first = items_requests(server)[0]
    assert first["filter"] == "region = 'Pfalz'" and first["filter-lang"] == "cql2-text"
    assert report.declared_count == 2
    assert_same_places(lake, PFALZ)


def test_a_filter_is_applied_by_citypipe_where_the_server_cannot(lake) -> None:
    with scripted_server() as server:
        url = serve_two_pages(server)  # core and GeoJSON only
        report = harvest(url, lake, filter="region = 'Pfalz' AND name <> 'Abtei'")
        asked = items_requests(server)
    assert all("filter" not in q for q in asked)
    assert report.records == report.features == 2 and report.declared_count is None
    assert report.checks_failed == 0  # numberMatched counts the unfiltered layer: checked apart
    assert_same_places(lake, PFALZ)


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("S_INTERSECTS(geometry, POINT(7 49))", "on properties only"),
        ("region == 'Pfalz'", "is not CQL2 text"),
    ],
)
def test_a_filter_citypipe_cannot_apply_is_refused_before_any_page(lake, expression, why):
    with scripted_server() as server:
        url = serve_two_pages(server)
        with pytest.raises(ConfigurationError, match=why):
            harvest(url, lake, filter=expression)
        assert items_requests(server) == []


def test_json_fg_is_asked_for_where_the_collection_offers_it(lake) -> None:
    """GoKoala's JSON-FG response shape: `place` in the CRS asked for, `geometry` null,
    `time`, `coordRefSys`; the collection's JSON-FG items link names f=jsonfg."""
    fg_link = {"rel": "items", "type": "application/vnd.ogc.fg+json", "href": "items?f=jsonfg"}
    collection = {**COLLECTION, "links": [*COLLECTION["links"], fg_link]}
    placed = [
        {**f, "geometry": None, "place": g["geometry"], "time": {"date": "2020-09-01"}}
        for f, g in zip(FEATURES, transformed("EPSG:25832"), strict=True)
    ]
    headers = {"Content-Type": "application/vnd.ogc.fg+json", "Content-Crs": f"<{EPSG}25832>"}
    with scripted_server() as server:
        serve_metadata(server, (CORE, GEOJSON, PART2, JSONFG), [collection])
        body = page(placed, None, coordRefSys=f"{EPSG}25832", conformsTo=[JSONFG])
        server.answer(ITEMS, Answer(200, body, headers))
        harvest(server.url + ITEMS, lake)
        first = items_requests(server)[0]
        accept = next(r for r in server.requests if r.path == ITEMS).headers["Accept"]
    assert first["f"] == "jsonfg" and accept.startswith("application/vnd.ogc.fg+json")
    assert_same_places(lake)
    observed = pq.read_table(lake.partition("features", "vineyards")).column("observed_at")
    assert {str(v.as_py())[:10] for v in observed} == {"2020-09-01"}


def test_inspect_describes_every_collection_with_its_conformance() -> None:
    """ldproxy's NRW cadastre: three collections, German titles, GeoJSON / HTML / GML."""
    with scripted_server() as server:
        root = "/kataster"
        server.answer(
            f"{root}/collections",
            Answer(200, (SAMPLES / "nrw_kataster_ldproxy_collections.json").read_bytes()),
        )
        server.answer(
            f"{root}/conformance",
            Answer(200, (SAMPLES / "nrw_kataster_ldproxy_conformance.json").read_bytes()),
        )
        info = OGCAPIFeaturesConnector(server.url + root + "/collections/").inspect()
        paths = {r.path for r in server.requests}
    assert paths == {f"{root}/collections", f"{root}/conformance"}  # no items: no layer named
    assert info.layers == ("flurstueck", "gebaeudebauwerk", "verwaltungseinheit")
    flurstueck, gebaeude, _ = info.layer_info
    assert [layer.title for layer in info.layer_info] == [
        "Flurstück",
        "Gebäude, Bauwerk",
        "Verwaltungseinheit",
    ]
    assert flurstueck.crs == (CRS84,)  # Part 1's only CRS where no list is given
    assert flurstueck.bbox == (
        5.61272621360749,
        50.2373512077239,
        9.58963433710139,
        52.5286304537795,
    )
    assert gebaeude.bbox == (5, 50, 9, 52)
    assert flurstueck.formats[:2] == ("application/geo+json", "text/html")
    assert info.details["conformance"] == "core, geojson"


def test_inspect_lists_the_storage_crs_first_and_the_layers_count() -> None:
    with scripted_server() as server:
        serve_metadata(server, (CORE, GEOJSON, PART2))
        server.answer(ITEMS, Answer(200, page(FEATURES, None, matched=1587)))
        info = OGCAPIFeaturesConnector(server.url + ROOT, query=Query(crs="OGC:CRS84")).inspect()
    (layer,) = info.layer_info
    assert layer.title == "Vineyards" and info.declared_count == 1587
    assert layer.crs == (EPSG + "25832", CRS84, EPSG + "4258", EPSG + "4326", EPSG + "3857")
    assert layer.bbox == (
        6.302134844797123,
        49.008701775993174,
        8.417903391872924,
        50.61389352668837,
    )


def test_an_address_with_a_next_link_loop_or_not_json_is_refused(lake) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, page(FEATURES[:2], ITEMS)))
        with pytest.raises(DataError, match="leads back to a page already read"):
            harvest(server.url + ITEMS, lake)
        server.answer(f"{ROOT}/collections", Answer(200, b'{"links": []}'))
        with pytest.raises(DataError, match="no `collections` list"):
            harvest(server.url + ROOT, lake)


@pytest.mark.parametrize(
    ("cid", "in_url", "on_the_wire"),
    [
        ("topp:states", "topp%3Astates", "topp:states"),  # GeoServer's workspace:layer ids
        ("Straßen 2024", "Stra%C3%9Fen%202024", "Stra%C3%9Fen%202024"),
    ],
)
def test_a_collection_id_is_read_decoded_from_the_url_and_sent_encoded(
    lake, cid, in_url, on_the_wire
) -> None:
    with scripted_server() as server:
        serve_metadata(server, collections=[{**COLLECTION, "id": cid}])
        items = f"{ROOT}/collections/{on_the_wire}/items"
        server.answer(items, Answer(200, page(FEATURES, None)))
        report = harvest(f"{server.url}{ROOT}/collections/{in_url}/items", lake)
        asked = [r.path for r in server.requests if r.path.endswith("/items")]
    assert report.features == len(FEATURES)
    assert asked == [items]


@pytest.mark.parametrize("ids", [True, False], ids=["with ids", "without ids"])
def test_a_server_that_ignores_its_next_links_offset_is_refused_at_once(lake, ids) -> None:
    """Each `next` link moves on, each page holds the first two vineyards again, and no
    numberMatched says when to stop: read as it is, the harvest would never end."""
    first = [f if ids else {k: v for k, v in f.items() if k != "id"} for f in FEATURES[:2]]
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, page(first, "items?offset=2", matched=None)))
        for offset in range(2, 100, 2):
            again = page(first, f"items?offset={offset + 2}", matched=None)
            server.answer(f"{ITEMS}?offset={offset}", Answer(200, again))
        with pytest.raises(DataError, match="the first page's features again"):
            harvest(server.url + ITEMS, lake)
        asked = items_requests(server)
    assert len(asked) <= 3  # the first page, the second, at most the one asked ahead
    assert not lake.files("features")


def test_next_links_to_the_servers_internal_address_are_read_where_the_first_page_came_from(
    lake,
) -> None:
    """pygeoapi behind a proxy with its server.url left at its own address writes `next`
    links to a host the user cannot reach (here a port of 127.0.0.1 nothing listens on)."""
    with scripted_server() as server:
        serve_metadata(server)
        internal = f"http://127.0.0.1:9{ITEMS}?offset=2"
        server.answer(ITEMS, Answer(200, page(FEATURES[:2], internal)))
        server.answer(ITEMS + "?offset=2", Answer(200, page(FEATURES[2:], None)))
        report = harvest(server.url + ITEMS, lake)
        asked = items_requests(server)
    assert report.features == report.declared_count == len(FEATURES)
    assert [q.get("offset") for q in asked] == [None, "2"]
    assert_same_places(lake)


MISSING_NEXT = "held a full page of 2 features but no `next` link"
OTHERS = [{**f, "id": f"{f['id']}-2"} for f in FEATURES[:2]]
"""Two vineyards under other ids: a second page as long as the first."""


@pytest.mark.parametrize(
    ("limit", "last", "warned"),
    [
        (2, FEATURES[:2], True),  # the first page full, no next: the third vineyard lost
        (3, FEATURES[:2], False),  # short of the limit: the end
        (None, OTHERS, True),  # limit 1000 cut to 2 by the server: as full as page 1
        (None, FEATURES[2:], False),  # short of the first page: the end
    ],
    ids=["full", "short", "capped-full", "capped-short"],
)
def test_a_full_last_page_without_next_and_count_is_warned_of_in_one_line(
    lake, limit, last, warned
) -> None:
    """A server that drops `next` before the end, with no numberMatched to tell: a last page
    as full as the `limit` asked (or as the server's own page, the first of several) may be
    followed by more; the harvest lands what it read and warns once, naming the page."""
    with scripted_server() as server:
        serve_metadata(server)
        if limit is None:  # two pages: the server's own page size is the first one's
            first = page(FEATURES[:2], "items?offset=2", matched=None)
            server.answer(ITEMS, Answer(200, first))
            server.answer(f"{ITEMS}?offset=2", Answer(200, page(last, None, matched=None)))
        else:
            server.answer(ITEMS, Answer(200, page(last, None, matched=None)))
        report = harvest(server.url + ITEMS, lake, page_size=limit)
    warnings = [w for w in report.warnings if "no `next` link" in w]
    assert report.records == len(last) + (2 if limit is None else 0)
    if warned:
        assert len(warnings) == 1 and MISSING_NEXT in warnings[0] and "\n" not in warnings[0]
        assert report.warnings[warnings[0]] == len(last)
    else:
        assert warnings == []


def test_a_full_last_page_with_numberMatched_is_checked_not_warned_of(lake) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, page(FEATURES[:2], None, matched=3)))
        with pytest.raises(DataError, match="numberMatched 3, its 1 page held 2 features"):
            harvest(server.url + ITEMS, lake, page_size=2)


@pytest.mark.parametrize("suffix", ["/items.geojson", "/items.html", ".json"])
def test_a_url_with_a_format_suffix_names_its_resource(lake, suffix) -> None:
    """QGIS Server's pages link `items.geojson`, `items.html`, `parks.json`: a user copies one;
    the collection's items are harvested, asked for as any other."""
    with scripted_server() as server:
        items = serve_two_pages(server)
        url = items.removesuffix("/items") + suffix
        assert OGCAPIFeaturesConnector.accepts(urlsplit(url)) >= 0.7
        harvest(url, lake)
        assert {r.path for r in server.requests if "/collections/" in r.path} == {ITEMS}
    assert_same_places(lake)
