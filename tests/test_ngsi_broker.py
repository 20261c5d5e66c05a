"""NGSI-LD and NGSI v2 broker harvests against the test broker (tests/servers/ngsi_broker.py):
complete (the ids equal the broker's count and the copies of the corpus samples), also when
the broker caps pages and offsets; tenants; faults end complete or in a clear error with the
lake untouched."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
import requests
import shapely
from servers import ngsi_data
from servers.faults import reset, retarget, status, truncate
from servers.ngsi_broker import BrokerPolicy

from citypipe.cli import main
from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.connectors.ngsi_broker_base import ahead
from citypipe.connectors.ngsi_paging import id_part
from citypipe.connectors.registry import open_location
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError, DataError, UnavailableError

COPIES = 1500
ALL_TYPES = ",".join(ngsi_data.TYPES)
QUICK = HttpPolicy(backoff=0.01, retries=3, read_timeout=5)


def expected_ids(types: tuple[str, ...], copies: int = COPIES) -> set[str]:
    """The ids the broker holds: each corpus sample's id with the copy number."""
    return {ngsi_data.copy_id(ngsi_data.sample(t)["id"], k) for t in types for k in range(copies)}


def broker_count(url: str, **headers: str) -> int:
    reply = requests.get(url, params={"count": "true", "limit": 0}, headers=headers, timeout=30)
    return int(reply.headers["NGSILD-Results-Count"])


def lake_ids(lake, source: str) -> list[str]:
    table = pq.read_table(lake.partition("features", source), columns=["feature_id"])
    return [f.split("/", 1)[1] for f in table.column("feature_id").to_pylist()]


def harvest(url: str, lake, source: str = "broker", **options):
    options.setdefault("client", HttpClient(QUICK))
    return ingest(url, source, lake, options=options, validate=False)


@pytest.mark.parametrize(
    ("policy", "page_size"),
    [
        (BrokerPolicy(), 2000),  # Orion-LD's 400 "must be an integer value <= 1000"
        (BrokerPolicy(max_limit=400, limit_status=403, max_offset=5000), None),
    ],
    ids=["orion-ld-ceiling", "spec-ceiling-and-offset-limit"],
)
def test_a_harvest_of_every_entity_is_complete(ngsi_broker, lake, policy, page_size) -> None:
    broker = ngsi_broker(policy)
    url = f"{broker.ld_url}?type={ALL_TYPES}"
    report = ingest(
        url, "broker", lake, options={"query": Query(page_size=page_size)}, validate=False
    )
    ids = lake_ids(lake, "broker")
    assert report.features == len(ids) == broker_count(url) == 7 * COPIES
    assert set(ids) == expected_ids(ngsi_data.TYPES)
    pages = [s for s in broker.seen if not re.search(r"limit=[01](&|$)", s)]  # not counts
    if policy.max_offset:  # pages beyond the offset limit came back empty: the query was split
        assert any("idPattern" in s for s in pages)
        assert any("offset=5000" in s and "idPattern" not in s for s in pages)
    asked = {s.split("limit=")[1].split("&")[0] for s in pages}
    # refused above the ceiling, then the ceiling the refusal names, else half the page
    assert asked == ({"2000", "1000"} if page_size else {"1000", "500", "250"})


@pytest.mark.parametrize("v2", [False, True], ids=["ngsi-ld", "ngsi-v2"])
def test_a_broker_without_a_count_is_read_to_its_first_empty_page(ngsi_broker, lake, v2) -> None:
    """A proxy that drops the count header: every entity is still read, page by page up to the
    first empty one, and the run says the harvest could not be checked against a count."""
    broker = ngsi_broker(BrokerPolicy(counts=False))
    endpoint = f"{broker.url}/v2/entities" if v2 else broker.ld_url
    report = harvest(f"{endpoint}?type=Building", lake, query=Query(page_size=400))
    assert sorted(lake_ids(lake, "broker")) == sorted(expected_ids(("Building",)))
    assert report.features == COPIES
    assert any("sent no" in w and "first empty page" in w for w in report.warnings), report


def test_an_ngsi_v2_harvest_past_the_offset_limit_is_complete(ngsi_broker, lake) -> None:
    broker = ngsi_broker(BrokerPolicy(max_offset=5000))
    report = harvest(f"{broker.url}/v2/entities", lake)
    total = requests.get(
        f"{broker.url}/v2/entities", params={"options": "count", "limit": 1}, timeout=30
    ).headers["Fiware-Total-Count"]
    ids = lake_ids(lake, "broker")
    assert report.features == len(set(ids)) == int(total) == 7 * COPIES
    v2 = ngsi_data.sample_v2()["id"]
    assert {ngsi_data.copy_id(v2, k) for k in range(COPIES)} <= set(ids)


def test_a_type_query_reads_its_entities_with_their_geometry(ngsi_broker, lake) -> None:
    broker = ngsi_broker()
    harvest(f"{broker.ld_url}?type=ParkingSpot", lake)
    table = pq.read_table(lake.partition("features", "broker"))
    assert table.num_rows == COPIES
    sample = ngsi_data.sample("ParkingSpot")
    x, y = sample["location"]["value"]["coordinates"]
    first = ngsi_data.copy_id(sample["id"], 51)  # one row of 50 up, one column right
    row = table.column("feature_id").to_pylist().index(f"broker/{first}")
    point = shapely.from_wkb(table.column("geometry")[row].as_py())
    dx, dy = ngsi_data.offset(51)
    assert (point.x, point.y) == pytest.approx((x + dx, y + dy), abs=1e-9)
    assert set(table.column("feature_class").to_pylist()) == {"ParkingSpot"}


def test_bbox_becomes_a_geo_query_and_selects_the_entities_in_the_box(ngsi_broker, lake) -> None:
    broker = ngsi_broker()
    x, y = ngsi_data.sample("ParkingSpot")["location"]["value"]["coordinates"]
    box = (x - 0.0001, y - 0.0001, x + 10.5 * ngsi_data.STEP, y + 2.5 * ngsi_data.STEP)
    report = harvest(f"{broker.ld_url}?type=ParkingSpot", lake, query=Query(bbox=box, page_size=7))
    assert report.features == 11 * 3  # columns 0..10 of rows 0..2
    assert any("georel=intersects" in s and "geometry=Polygon" in s for s in broker.seen)


def test_a_tenant_is_asked_for_and_an_unknown_tenant_is_refused(ngsi_broker, lake, capsys) -> None:
    broker = ngsi_broker()
    url = f"{broker.ld_url}?type=ParkingSpot"
    assert harvest(url, lake, "city", tenant="city").features == 100
    assert harvest(url, lake).features == COPIES
    before = {p: p.read_bytes() for p in lake.files("features")}
    with pytest.raises(ConfigurationError, match="404.*NonexistentTenant"):
        harvest(url, lake, "city", tenant="nowhere")
    assert {p: p.read_bytes() for p in lake.files("features")} == before
    assert broker_count(url, **{"NGSILD-Tenant": "city"}) == 100


def test_ngsi_v2_service_and_service_path_are_sent(ngsi_broker, lake) -> None:
    broker = ngsi_broker()
    url = f"{broker.url}/v2/entities?type=ParkingSpot"
    assert harvest(url, lake, "city", tenant="city", service_path="/ParkingSpot").features == 100
    assert harvest(url, lake, "all", tenant="city").features == 100  # Orion's default: /#
    # a path that holds nothing: complete with no entity (count 0), as Orion answers
    assert harvest(url, lake, "none", tenant="city", service_path="/Elsewhere").features == 0


@pytest.mark.parametrize(
    "fault",
    [status(503), status(429, retry_after="1"), reset(after=2000), truncate(after=2000)],
    ids=["503", "429", "reset", "truncated"],
)
def test_a_passing_fault_ends_in_a_complete_harvest(ngsi_broker, fault_proxy, lake, fault) -> None:
    broker = ngsi_broker(BrokerPolicy(max_offset=600))
    proxy = fault_proxy(broker.url)
    proxy.inject(fault, match="offset=300", times=1)
    report = harvest(f"{proxy.url}/ngsi-ld/v1/entities?type=ParkingSpot&limit=300", lake)
    assert report.features == COPIES
    assert set(lake_ids(lake, "broker")) == expected_ids(("ParkingSpot",))
    assert [s.fault for s in proxy.faulted()] == [fault.kind]


def test_a_lasting_fault_is_a_clear_error_and_the_lake_is_untouched(
    ngsi_broker, fault_proxy, lake, capsys
) -> None:
    broker = ngsi_broker()
    url = f"{broker.ld_url}?type=ParkingSpot"
    harvest(url, lake)
    before = {p: p.read_bytes() for p in lake.files("features")}
    proxy = fault_proxy(broker.url)
    proxy.inject(status(503), match="offset=1000", times=0)
    with pytest.raises(UnavailableError, match="HTTP 503 after 4 tries"):
        harvest(f"{proxy.url}/ngsi-ld/v1/entities?type=ParkingSpot", lake)
    assert {p: p.read_bytes() for p in lake.files("features")} == before


def test_a_broker_that_ignores_offset_is_refused_at_its_second_page(
    ngsi_broker, fault_proxy, lake, capsys
) -> None:
    """ScorpioBroker#316: every offset answered with the first page."""
    broker = ngsi_broker()
    proxy = fault_proxy(broker.url)
    proxy.inject(retarget(r"offset=[1-9]\d*", "offset=0"), match="offset=[1-9]", times=0)
    url = f"{proxy.url}/ngsi-ld/v1/entities?type=ParkingSpot&limit=300"
    code = main(["ingest", url, "--source", "spots", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "answered offset 300 with the entities of offset 0" in err
    assert len(proxy.faulted()) == 1  # not asked to the end of its count of 1500
    assert not lake.files("features")


def test_an_offset_limit_with_the_users_own_id_pattern_is_a_clear_error(
    ngsi_broker, lake, capsys
) -> None:
    broker = ngsi_broker(BrokerPolicy(max_offset=500))
    url = f"{broker.ld_url}?type=ParkingSpot&idPattern=santander"
    code = main(["ingest", url, "--source", "spots", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    assert code == 2
    assert "empty pages from offset 1000 on while it counts 1500" in err
    assert "nothing was written" in err
    assert not lake.files("features")


def test_a_count_the_pages_do_not_hold_is_a_clear_error(ngsi_broker, lake) -> None:
    broker = ngsi_broker()
    broker.ld[None] = broker.ld[None] + broker.ld[None][-1:]  # one entity twice: 1501 counted
    with pytest.raises(DataError, match="counted 1501 entities, citypipe read 1500 distinct"):
        harvest(f"{broker.ld_url}?type=TrafficFlowObserved", lake)
    assert not lake.files("features")


@pytest.mark.parametrize("v2", [False, True], ids=["ngsi-ld", "ngsi-v2"])
def test_pages_in_a_code_page_they_do_not_name_are_read_in_it_with_a_warning(
    ngsi_broker, lake, v2
) -> None:
    """A broker writing cp1252 without a charset: the entities' text lands as the samples have
    it, and the run says which code page it was read in, as for a file or an OGC API page."""
    broker = ngsi_broker(BrokerPolicy(code_page="cp1252"))
    endpoint = f"{broker.url}/v2/entities" if v2 else broker.ld_url
    report = harvest(f"{endpoint}?type=EVChargingStation", lake, query=Query(page_size=1000))
    sample = ngsi_data.sample("EVChargingStation")
    table = pq.read_table(lake.partition("features", "broker"), columns=["properties"])
    names = {json.loads(p)["name"] for p in table.column("properties").to_pylist()}
    assert names == {sample["name"]["value"]}  # "Agencia de Innovación"
    assert report.features == COPIES
    said = "not UTF-8, as JSON must be: its text is read as cp1252"
    assert any(said in w for w in report.warnings), report.warnings


def test_inspect_gives_the_brokers_count_and_the_type(ngsi_broker) -> None:
    broker = ngsi_broker()
    info = open_location(f"{broker.ld_url}?type=OnStreetParking").inspect()
    assert (info.declared_count, info.layers, info.crs) == (
        COPIES,
        ("OnStreetParking",),
        "OGC:CRS84",
    )
    assert broker.seen[-1].endswith("limit=1")  # the count, with one entity (not 0: Orion)


def test_inspect_of_an_ngsi_v2_broker_counts_without_limit_zero(ngsi_broker, capsys) -> None:
    """Orion refuses limit=0 (telefonicaid/fiware-orion#1492), as the test broker does."""
    broker = ngsi_broker()
    url = f"{broker.url}/v2/entities?type=ParkingSpot"
    assert main(["inspect", url, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["declared count"] == COPIES


def test_id_parts_cover_a_character_range_exactly() -> None:
    part = re.compile(id_part("urn:a.b", 0x30, 0x39))
    assert part.match("urn:a.b7x") and not part.match("urn:a.b:x") and not part.match("urn:aXb7")


def test_the_url_decides_the_connector() -> None:
    kinds = {
        "http://h/ngsi-ld/v1/entities?type=A": "ngsi-ld-broker",
        "http://h/ngsi-ld/v1/temporal/entities?type=A": "ngsi-ld-temporal",
        "http://h/v2/entities": "ngsi-v2-broker",
        "http://h/gateway/ngsi-ld/v1/entities/?type=A": "ngsi-ld-broker",  # under a prefix
        "http://h/gateway/ngsi-ld/v1/temporal/entities/": "ngsi-ld-temporal",
        "http://h/fiware/v2/entities": "ngsi-v2-broker",
    }
    for url, name in kinds.items():
        assert open_location(url).name == name
    for path in ("/entities", "/ngsi-ld/v1/entities/x", "/ngsi-ld/v1/temporal", "/v2"):
        # no NGSI path: asked once whether it is a file (a closed loopback port: no answer)
        assert not open_location(f"http://127.0.0.1:1{path}").name.startswith("ngsi")
    own = open_location("http://h/context/items?type=A", format="ngsi-ld-broker")
    assert own.pager().url == "http://h/context/items"  # a path of its own, named by format
    with pytest.raises(ConfigurationError, match="URL names type 'A', the query 'B'"):
        _ = open_location(next(iter(kinds)), query=Query(layer="B")).params
    with pytest.raises(ConfigurationError, match="--filter does not apply"):
        _ = open_location(next(iter(kinds)), query=Query(filter="a = 1")).params
    assert json.loads(
        open_location(next(iter(kinds)), query=Query(bbox=(1, 2, 3, 4))).params["coordinates"]
    ) == [[[1, 2], [3, 2], [3, 4], [1, 4], [1, 2]]]


@pytest.mark.parametrize("options", ["keyValues", "concise"])
def test_a_broker_answering_another_representation_gives_the_same_rows(
    ngsi_broker, lake, options
) -> None:
    broker = ngsi_broker()
    url = f"{broker.ld_url}?type=OnStreetParking"
    harvest(url, lake, "normalized")
    harvest(f"{url}&options={options}", lake, options)
    columns = ["feature_id", "geometry", "name", "theme", "feature_class"]
    normalized = pq.read_table(lake.partition("features", "normalized"), columns=columns)
    other = pq.read_table(lake.partition("features", options), columns=columns)
    assert other.num_rows == normalized.num_rows == COPIES
    key = [("feature_id", "ascending")]
    a, b = normalized.sort_by(key).to_pydict(), other.sort_by(key).to_pydict()
    for column in columns[1:]:
        assert a[column] == b[column], column


def test_the_command_line_ingests_and_inspects_a_broker(ngsi_broker, lake, capsys) -> None:
    broker = ngsi_broker()
    code = main(
        ["ingest", broker.ld_url, "--layer", "ParkingSpot", "--source", "spots"]
        + ["--page-size", "400", "--lake", str(lake.root)]
    )
    assert code == 0
    assert len(lake_ids(lake, "spots")) == COPIES
    assert sum("limit=400" in s for s in broker.seen) == 4  # 1500 in pages of 400
    capsys.readouterr()
    assert main(["inspect", f"{broker.ld_url}?type=ParkingSpot", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["declared count"] == described["layer info"][0]["count"] == COPIES


def test_pages_fetched_ahead_keep_their_order_errors_and_stop_with_the_reader() -> None:
    made: list[int] = []

    def pages(fail_at: int | None = None):
        for i in range(50):
            if i == fail_at:
                raise DataError(f"page {i} is broken")
            made.append(i)
            yield i

    assert list(ahead(pages())) == list(range(50))
    with pytest.raises(DataError, match="page 7 is broken"):
        list(ahead(pages(fail_at=7)))
    made.clear()
    reader = ahead(pages())
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()  # the reader stops: the producer stops too, a page or two ahead at most
    assert made == list(range(len(made))) and len(made) <= 4
