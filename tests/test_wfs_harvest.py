"""WFS 2.0 / 1.1 harvests against a WFS on 127.0.0.1 that serves a real GeoServer layer
(Karlsruhe's 693 disabled parking spaces, MANIFEST: 693 Point features, ids 'layer.N'):
paging past a short page, hits, tiling where paging is missing, refused or ignored, GeoJSON
preferred, counts checked, exception reports, and Koeln's capabilities (86 feature types,
umlauts in their names)."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pyarrow.parquet as pq
import pytest
import shapely
from conftest import SAMPLES
from loopback import Answer, scripted_server, serving
from lxml import etree
from wfs_fake import KARLSRUHE, LAYER, FakeWFS

from citypipe.cli import main
from citypipe.connectors import registry
from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.connectors.wfs import WFSConnector
from citypipe.connectors.wfs_gml import read_stream
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError, DataError, UnavailableError

FEATURES = KARLSRUHE["features"]
IDS = {f["id"] for f in FEATURES}


@contextmanager
def wfs(**faults):
    server = FakeWFS(**faults)
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), server.handler())) as server.url:
        yield server


def asked(server, key: str) -> list[str]:
    """The values of `key` in the GetFeature requests (not hits) the server received."""
    out = []
    for r in server.requests:
        params = {k.upper(): v for k, v in parse_qsl(r.query)}
        if params.get("REQUEST") == "GetFeature" and params.get("RESULTTYPE") != "hits":
            out.append(params.get(key))
    return out


def pages(server, count: str | None = None) -> list[tuple[str, str, str]]:
    """STARTINDEX, COUNT / MAXFEATURES and OUTPUTFORMAT of the GetFeature requests (not hits)
    the server received, in the order received; those of `count` features only if given."""
    out = []
    for r in server.requests:
        params = {k.upper(): v for k, v in parse_qsl(r.query)}
        if params.get("REQUEST") == "GetFeature" and params.get("RESULTTYPE") != "hits":
            size = params.get("COUNT") or params.get("MAXFEATURES")
            if count is None or size == count:
                out.append((params.get("STARTINDEX"), size, params.get("OUTPUTFORMAT")))
    return out


def harvest(server, **query) -> tuple[WFSConnector, list]:
    connector = WFSConnector(server.endpoint, query=Query(**query))
    return connector, list(connector.read())


def read_ids(batches) -> list[str]:
    return [sid for b in batches for sid in b.source_ids]


def test_paging_goes_on_past_a_short_page_until_the_count_is_reached() -> None:
    with wfs(short_at={200}) as server:
        _, batches = harvest(server, page_size=200)
    ids = read_ids(batches)
    assert len(ids) == 693 and set(ids) == IDS
    # the first page, then the GeoJSON probe (it was full)
    assert pages(server)[0][:2] == ("0", "200") and ("0", "1") in [p[:2] for p in pages(server)]
    # 200 gave 100 only: 300 follows; 400, asked beside 200 on the assumption of a full page,
    # is dropped if it was asked
    read = [start for start, _, _ in pages(server, "200")]
    assert read.count("0") == 1 and read.count("300") == 1
    assert {"0", "200", "300", "500"} <= set(read) <= {"0", "200", "300", "400", "500"}


def hits_asked(server) -> int:
    return sum(
        {k.upper(): v for k, v in parse_qsl(r.query)}.get("RESULTTYPE") == "hits"
        for r in server.requests
    )


def test_the_count_is_the_first_pages_number_matched_without_hits() -> None:
    with wfs() as server:  # 2.0.0: GeoServer states numberMatched on every page
        connector, batches = harvest(server, page_size=300)
    assert connector.inspect().declared_count == 693 == len(set(read_ids(batches)))
    assert hits_asked(server) == 0
    assert sorted(start for start, _, _ in pages(server, "300")) == ["0", "300", "600"]


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_a_server_that_refuses_hits_is_harvested_to_an_empty_page(version) -> None:
    """WFS 1.1 GML pages state no total, and hits is refused: pages are read until one is
    empty; 2.0's pages state numberMatched, so hits is not asked at all."""
    gml = {"2.0.0": "application/gml+xml; version=3.2", "1.1.0": "text/xml; subtype=gml/3.1.1"}
    with wfs(version=version, refuse_hits=True, formats=(gml[version],)) as server:
        connector, batches = harvest(server, page_size=300)
    assert len(read_ids(batches)) == 693 and set(read_ids(batches)) == IDS
    assert hits_asked(server) == (1 if version == "1.1.0" else 0)
    starts = {start for start, _, _ in pages(server, "300")}
    if version == "1.1.0":  # 900, asked beside 600 on the assumption of a full page, is dropped
        assert {"0", "300", "600", "693"} <= starts <= {"0", "300", "600", "693", "900"}
    else:
        assert starts == {"0", "300", "600"}
    assert connector.inspect().declared_count == (None if version == "1.1.0" else 693)


def test_wfs_1_1_asks_for_the_layer_at_once_with_hits_beside_it() -> None:
    """No page size asked for and no cap stated: one GetFeature (no MAXFEATURES, no
    STARTINDEX, GML for its ids), hits beside it, the count reached."""
    with wfs(version="1.1.0") as server:
        connector, batches = harvest(server)
    assert set(read_ids(batches)) == IDS and len(read_ids(batches)) == 693
    assert pages(server) == [(None, None, None)]  # the fake offers no 1.1 GML: the default
    assert hits_asked(server) == 1
    assert connector.harvest.ended == "the declared count reached in 2 requests"


def test_the_single_answer_is_parsed_before_it_is_asked_for() -> None:
    """The 1.1 answer's first batch (693 features: one batch) is parsed as soon as it comes,
    while `inspect` waits for the count: before `read` asks for it."""
    with wfs(version="1.1.0") as server:
        connector = WFSConnector(server.endpoint, query=Query())
        assert connector.inspect().declared_count == 693
        whole = connector.harvest._whole
        ahead = [len(b) for b in whole._answer.result().parsed]
        ids = read_ids(connector.read())
    assert ahead == [693] and len(ids) == 693 and set(ids) == IDS


@pytest.mark.parametrize("layer", [LAYER, "behinderten_parkplaetze"])
def test_a_url_naming_wfs_1_1_asks_for_the_layer_beside_the_capabilities(layer) -> None:
    """VERSION=1.1.0 and the layer named, nothing else asked: the GetFeature and hits are asked
    for with the capabilities, so that one of them is in flight while the capabilities are
    still coming (0.5 s late; two requests at a time to a host); a layer named otherwise than
    the capabilities name it (no prefix) is asked for again as they name it."""
    with wfs(version="1.1.0", capabilities_delay=0.5) as server:
        url = server.endpoint + "?SERVICE=WFS&VERSION=1.1.0"
        connector = WFSConnector(url, query=Query(layer=layer))
        assert connector.inspect().declared_count == 693
        ids = read_ids(connector.read())
    assert len(ids) == 693 and set(ids) == IDS
    asked_at = {}
    for r in server.requests:
        params = {k.upper(): v for k, v in parse_qsl(r.query)}
        kind = params.get("RESULTTYPE") or params["REQUEST"]
        asked_at.setdefault((kind, params.get("TYPENAME")), r.at)
    capabilities = asked_at[("GetCapabilities", None)]
    early = [asked_at[(kind, layer)] for kind in ("GetFeature", "hits")]
    assert min(early) < capabilities + 0.4  # two in flight: the HTTP client's limit per host
    assert len(server.requests) == (3 if layer == LAYER else 5)


@pytest.mark.parametrize(
    "faults",
    [{"count_default": 250, "silent_cap": True}, {"cut_at": 60_000}],
    ids=["a-cap-not-stated", "an-answer-cut-off"],
)
def test_wfs_1_1_pages_on_from_where_the_single_answer_stopped(faults) -> None:
    """A cap the capabilities do not state cuts the single answer at 250 (GDAL's 1.1 driver
    stops there, OSGeo/gdal#13515); an answer that breaks off mid-feature keeps its whole
    batches: either way the harvest pages on by STARTINDEX from the features read."""
    with wfs(version="1.1.0", **faults) as server:
        connector, batches = harvest(server)
    ids = read_ids(batches)
    assert len(ids) == 693 and set(ids) == IDS
    requests = pages(server)
    assert requests[0][:2] == (None, None)
    if "cut_at" in faults:  # fewer than a batch of 1000 read before the cut: paged from 0
        assert [start for start, _, _ in requests[1:]] == ["0"]
        assert "not well-formed" in (connector.harvest._whole.broke or "")
    else:
        assert [(start, n) for start, n, _ in requests[1:]] == [("250", "250"), ("500", "250")]


class _Trickle:
    """A body handed over 4 KiB at a time, counting what was read."""

    def __init__(self, body: bytes) -> None:
        self.body, self.given = body, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.body[self.given : self.given + 4096]
        self.given += len(chunk)
        return chunk


def test_a_single_answer_is_parsed_as_it_arrives_a_batch_at_a_time() -> None:
    """The one answer of a 1.1 harvest is never held whole: its first batch of 100 features is
    out when its 64 KiB head (read for the counts and the convention) and no more than a
    chunk past it have come, a third of the body of 693 features."""
    body = FakeWFS(version="1.1.0")._gml(FEATURES, 693)
    stream = _Trickle(body)
    response, batches = read_stream(
        stream, crs=None, wfs_version="1.1.0", name="fake", batch_size=100
    )
    first = next(batches)
    assert len(first) == 100 and stream.given <= (1 << 16) + 4096 < len(body) / 2
    rest = list(batches)
    assert [len(b) for b in rest] == [100] * 5 + [93]
    assert set(read_ids([first, *rest])) == IDS and response.gml == "3.1.1"


def test_inspect_counts_the_layer_by_hits() -> None:
    with wfs() as server:
        info = WFSConnector(server.endpoint).inspect()
    assert info.format == "OGC WFS" and info.version == "2.0.0"
    assert info.declared_count == 693
    assert info.layer_info[0].title == "Behindertenparkplätze"
    assert info.crs == "urn:ogc:def:crs:EPSG::4326"
    assert info.details["paging"].startswith("yes")


@pytest.mark.parametrize(
    "faults",
    [
        {"paging": False, "count_default": 100},  # not implemented: tiles of at most 100
        {"refuse_startindex": True, "count_default": 100},  # GeoServer without a primary key
        {"version": "1.1.0", "ignore_startindex": True, "count_default": 100},
    ],
    ids=["not-implemented", "refused", "ignored"],
)
def test_without_paging_the_extent_is_tiled_and_edges_read_once(faults) -> None:
    with wfs(**faults) as server:
        _, batches = harvest(server)
    ids = read_ids(batches)
    assert len(ids) == 693 and set(ids) == IDS  # each once, though tiles were many
    assert len(asked(server, "BBOX")) > 7  # 693 features in pages of at most 100


def test_pages_cut_from_a_changing_order_are_completed_by_tiles() -> None:
    with wfs(unstable=True, count_default=100) as server:
        _, batches = harvest(server)
    ids = read_ids(batches)
    assert len(ids) == 693 and set(ids) == IDS
    assert {"0", "100", "200"} <= {start for start, _, _ in pages(server, "100")}
    assert asked(server, "BBOX")


def test_geojson_is_preferred_and_read_longitude_first_whatever_its_crs_member_says(lake):
    """GeoJSON after the second page (GML, as the first, whose first id the GeoJSON probe's,
    asked beside the second, must equal)."""
    options = {"query": Query(page_size=200)}
    with wfs() as server:
        ingest(
            server.endpoint + f"?SERVICE=WFS&TYPENAMES={LAYER}", "karlsruhe", lake, options=options
        )
    # by their start: the next page is asked for while one is read, so they may arrive swapped
    formats = [f for _, _, f in sorted(pages(server, "200"), key=lambda p: int(p[0]))]
    assert formats == ["application/gml+xml; version=3.2"] * 2 + ["application/json"] * 2
    table = pq.read_table(lake.partition("features", "karlsruhe"))
    assert table.num_rows == 693
    ids, shapes = table.column("source_id").to_pylist(), table.column("geometry").to_pylist()
    by_id = dict(zip(ids, shapes, strict=True))
    first = FEATURES[0]  # Ettlinger Allee 5, Karlsruhe: 8.404 E, 48.989 N
    point = shapely.from_wkb(by_id[first["id"]])
    assert (point.x, point.y) == pytest.approx(first["geometry"]["coordinates"], abs=1e-7)


def test_in_wfs_1_1_hits_goes_beside_the_first_page_and_geojson_follows_the_probe() -> None:
    """WFS 1.1: hits goes beside the first page (its pages state no total), the GeoJSON probe
    beside the second, which is GML too; the pages after it are GeoJSON."""
    with wfs(version="1.1.0") as server:
        _, batches = harvest(server, page_size=200)
    assert set(read_ids(batches)) == IDS and hits_asked(server) == 1
    by_start = {start: f for start, _, f in pages(server, "200")}
    gml = None  # the fake offers GML 3.2 only, not 1.1's: the version's default GML is asked
    assert by_start == {"0": gml, "200": gml, "400": "application/json", "600": "application/json"}
    assert pages(server, "1") == [("0", "1", "application/json")]


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_gml_is_read_where_no_geojson_is_offered_latitude_first_as_written(version) -> None:
    gml = {"2.0.0": "application/gml+xml; version=3.2", "1.1.0": "text/xml; subtype=gml/3.1.1"}
    with wfs(version=version, formats=(gml[version],)) as server:
        _, batches = harvest(server, page_size=300)
    assert set(asked(server, "OUTPUTFORMAT")) == {gml[version]}
    read = {sid: g for b in batches for sid, g in zip(b.source_ids, _shapes(b), strict=True)}
    assert set(read) == IDS
    for f in FEATURES[:50]:
        lon, lat = f["geometry"]["coordinates"]
        assert (read[f["id"]].x, read[f["id"]].y) == pytest.approx((lat, lon), abs=1e-9)
    assert {b.axis_order for b in batches} == {"authority"}  # EPSG:4326: latitude first


def test_geojson_without_ids_gives_way_to_gml() -> None:
    with wfs(anonymous=True) as server:
        _, batches = harvest(server, page_size=300)
    assert pages(server, "1") == [("0", "1", "application/json")]  # the probe: no id
    assert [f for _, _, f in pages(server, "300")] == ["application/gml+xml; version=3.2"] * 3
    assert set(read_ids(batches)) == IDS


def _shapes(batch) -> list:
    geometries = batch.geometries
    if hasattr(geometries, "xy"):  # Points
        return [shapely.Point(x, y) for x, y in geometries.xy]
    return list(geometries)


def test_a_service_unavailable_mid_harvest_fails_it_and_the_lake_keeps_its_output(lake) -> None:
    with wfs() as server:
        ingest(server.endpoint, "karlsruhe", lake)
    part = lake.partition("features", "karlsruhe") / "part-0.parquet"
    before = part.read_bytes()
    options = {
        "client": HttpClient(HttpPolicy(retries=1, backoff=0.01)),
        "query": Query(page_size=300),
    }
    with (
        wfs(unavailable_at={300}) as server,  # the second page never comes
        pytest.raises(UnavailableError, match="HTTP 503 after 2 tries"),
    ):
        ingest(server.endpoint, "karlsruhe", lake, options=options)
    assert part.read_bytes() == before


def test_a_wrong_number_matched_fails_the_harvest_and_the_lake_keeps_its_output(lake) -> None:
    with wfs() as server:
        ingest(server.endpoint, "karlsruhe", lake)
    part = lake.partition("features", "karlsruhe") / "part-0.parquet"
    before = part.read_bytes()
    with (
        wfs(matched_offset=7) as server,  # declares 700
        pytest.raises(DataError, match=r"declares 700 features .* 693 were read"),
    ):
        ingest(server.endpoint, "karlsruhe", lake)
    assert part.read_bytes() == before
    with (
        wfs(matched_offset=-3) as server,  # declares 690
        pytest.raises(DataError, match="more features .* its count is wrong"),
    ):
        ingest(server.endpoint, "karlsruhe", lake)
    assert part.read_bytes() == before


def test_an_exception_report_is_an_error_with_the_servers_text() -> None:
    with (
        wfs(refuse_startindex=True, extent=False) as server,  # and no extent to tile by
        pytest.raises(DataError, match="natural order without a primary key"),
    ):
        harvest(server)


def test_a_box_is_sent_latitude_first_in_the_layers_crs_and_a_filter_applied_after() -> None:
    box = (8.38, 48.98, 8.42, 49.02)  # lon/lat, OGC:CRS84
    inside = [
        f
        for f in FEATURES
        if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
        and box[1] <= f["geometry"]["coordinates"][1] <= box[3]
    ]
    districts = Counter(f["properties"]["stadtteil"] for f in inside)
    district, count = districts.most_common(1)[0]
    with wfs() as server:
        _, batches = harvest(server, bbox=box, filter=f"stadtteil = '{district}'")
    assert asked(server, "BBOX")[0] == "48.98,8.38,49.02,8.42,urn:ogc:def:crs:EPSG::4326"
    assert set(asked(server, "FILTER")) == {None}  # KVP takes a BBOX or a FILTER, not both
    assert len(read_ids(batches)) == count < len(inside)


def test_a_simple_filter_is_sent_as_fes_xml() -> None:
    with wfs() as server:
        harvest(server, filter="stadtteil = 'Südweststadt' AND stellplaetze > 2")
    sent = etree.fromstring(asked(server, "FILTER")[0].encode())
    fes = {"fes": "http://www.opengis.net/fes/2.0"}
    assert sent.xpath("//fes:PropertyIsEqualTo/fes:Literal/text()", namespaces=fes) == [
        "Südweststadt"
    ]
    assert sent.xpath("//fes:PropertyIsGreaterThan/fes:ValueReference/text()", namespaces=fes) == [
        "stellplaetze"
    ]


def test_a_crs_not_offered_is_refused_naming_those_offered() -> None:
    with wfs() as server:
        with pytest.raises(ConfigurationError, match="not offered in it .*EPSG::25832"):
            harvest(server, crs="EPSG:3857")
        harvest(server, crs="EPSG:25832", page_size=1000)
    assert asked(server, "SRSNAME")[-1] == "urn:ogc:def:crs:EPSG::25832"


def test_koeln_capabilities_list_86_feature_types_with_their_umlauts(capsys) -> None:
    caps = (SAMPLES / "koeln_arcgis_wfs200_GetCapabilities.xml").read_bytes()
    with scripted_server() as server:
        path = "/arcgis/services/basiskarten/adressen_stadtteil/MapServer/WFSServer"
        server.answer(path, Answer(200, caps))
        connector = WFSConnector(server.url + path + "?service=wfs")
        info = connector.inspect()
        with pytest.raises(ConfigurationError, match="offers several feature types.*Altstadt_Süd"):
            list(connector.read())
        assert main(["inspect", server.url + path + "?service=WFS", "--json"]) == 0
    assert len(info.layer_info) == 86 and info.version == "2.0.0"
    names = {layer.name: layer for layer in info.layer_info}
    sued = names["adressen_stadtteil:Altstadt_Süd"]
    assert sued.title == "Altstadt_Süd" and sued.crs[0] == "urn:ogc:def:crs:EPSG::25832"
    assert "GEOJSON" in sued.formats
    assert info.details["paging"].startswith("yes")
    assert "Altstadt_Süd" in json.loads(capsys.readouterr().out)["layers"]


def test_the_version_is_negotiated_unless_the_url_names_one() -> None:
    with wfs(version="1.1.0") as server:
        assert WFSConnector(server.endpoint).inspect().version == "1.1.0"
        WFSConnector(server.endpoint + "?VERSION=1.1.0&REQUEST=GetFeature").inspect()
        with pytest.raises(ConfigurationError, match="VERSION=0.0.14; citypipe harvests"):
            WFSConnector(server.endpoint + "?version=0.0.14").inspect()  # WFS's 2001 draft
    asked = [dict(parse_qsl(r.query)) for r in server.requests]
    capabilities = [q for q in asked if q["REQUEST"] == "GetCapabilities"]
    assert capabilities[0]["ACCEPTVERSIONS"] == "2.0.0,1.1.0" and "VERSION" not in capabilities[0]
    assert capabilities[1]["VERSION"] == "1.1.0" and "ACCEPTVERSIONS" not in capabilities[1]


def test_a_url_with_service_wfs_is_a_wfs() -> None:
    assert WFSConnector.accepts(urlsplit("https://x.org/geoserver/ows?service=WFS")) > 0.9
    assert WFSConnector.accepts(urlsplit("https://x.org/ows?SERVICE=WMS")) == 0
    assert WFSConnector.accepts(urlsplit("https://x.org/arcgis/rest/WFSServer")) > 0
    assert WFSConnector.accepts(urlsplit("https://x.org/ogc/collections/a/items")) == 0
    found = registry.open_location("https://x.org/cgi-bin/mapserv?map=a.map&SERVICE=wfs")
    assert isinstance(found, WFSConnector)


def test_citypipe_ingest_url_harvests_into_the_lake(lake, capsys) -> None:
    with wfs(version="1.1.0", count_default=250) as server:
        url = server.endpoint + f"?service=WFS&typeName={LAYER}"
        code = main(["ingest", url, "--source", "karlsruhe", "--lake", str(lake.root)])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(lake.partition("features", "karlsruhe"))
    assert set(table.column("source_id").to_pylist()) == IDS
    # WFS 1.1 without --page-size: the layer asked for at once, at most the 250 the
    # capabilities state (DefaultMaxFeatures), then paged on from where it stopped
    assert [(start, count) for start, count, _ in pages(server)] == [
        (None, "250"),
        ("250", "250"),
        ("500", "250"),
    ]
