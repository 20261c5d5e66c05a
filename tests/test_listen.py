"""`citypipe listen`: notifications acknowledged only once durable, landed as ordinary runs.

Real listeners on 127.0.0.1 (in-process, and the command in a subprocess killed with SIGKILL),
real lakes read back with DuckDB. Facts from data/samples/ngsi-ld/AirQualityObserved (the
Smart Data Models example: station 28079004 at Plaza de España, NO2 69 GQ).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
import requests

from citypipe.core.lake import Lake
from citypipe.core.listener import Listener, link_context

SAMPLES = Path(__file__).parent.parent / "data" / "samples" / "ngsi-ld" / "AirQualityObserved"
AQ_ID = "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"
CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"


def _entity(form: str) -> dict:
    return json.loads((SAMPLES / f"example-{form}").read_text(encoding="utf-8"))


def _notification(*entities: dict) -> dict:
    return {
        "id": "urn:ngsi-ld:Notification:1",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:aq",
        "notifiedAt": "2026-12-03T10:00:00Z",
        "data": list(entities),
    }


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[tuple[Listener, str]]:
    listener = Listener(Lake(tmp_path / "lake"), "aq", interval=3600)
    server = listener.serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener, f"http://127.0.0.1:{server.server_address[1]}/notify"
    finally:
        server.shutdown()
        server.server_close()
        listener.log.close()


def _features(lake: Path) -> dict[str, dict]:
    with duckdb.connect() as db:
        rows = db.execute(
            "SELECT source_id, feature_class, theme, properties "
            f"FROM read_parquet('{lake}/features/**/*.parquet')"
        ).fetchall()
    return {r[0]: {"class": r[1], "theme": r[2], "properties": json.loads(r[3])} for r in rows}


def test_link_header_context() -> None:
    header = f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    assert link_context(header) == CONTEXT
    assert link_context('<https://example.org/next>; rel="next"') is None
    assert link_context(None) is None


def test_notifications_land_as_the_latest_state(listening: tuple[Listener, str]) -> None:
    listener, url = listening
    first = _entity("normalized.jsonld")
    later = copy.deepcopy(first)
    later["no2"]["value"] = 70
    for entity in (first, later):
        answer = requests.post(url, json=_notification(entity), timeout=10)
        assert answer.status_code == 204
    assert listener.flush()
    features = _features(listener.lake.root)
    assert list(features) == [AQ_ID]
    assert features[AQ_ID]["class"] == "AirQualityObserved"
    assert features[AQ_ID]["theme"] == "environment"
    assert features[AQ_ID]["properties"]["no2"] == 70  # the later version
    assert listener.flushes.notifications == 2
    assert not listener.flush()  # nothing waits


def test_keyvalues_with_the_context_in_the_link_header(listening: tuple[Listener, str]) -> None:
    listener, url = listening
    entity = _entity("keyvalues.jsonld")
    entity.pop("@context")
    link = f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"'
    answer = requests.post(url, json=_notification(entity), headers={"Link": link}, timeout=10)
    assert answer.status_code == 204
    assert listener.flush()
    props = _features(listener.lake.root)[AQ_ID]["properties"]
    assert props["no2"] == 69
    assert props["airQualityLevel"] == "moderate"


def test_ngsi_v2_notification(listening: tuple[Listener, str]) -> None:
    listener, url = listening
    v2 = _entity("normalized-ngsiv2.json")
    note = {"subscriptionId": "57458eb60962ef754e7c0998", "data": [v2]}
    assert requests.post(url, json=note, timeout=10).status_code == 204
    assert listener.flush()
    assert list(_features(listener.lake.root)) == [v2["id"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"data": []}', 400),  # no subscriptionId
        (b'[{"id": "urn:x", "type": "T"}]', 400),  # entities, not a notification
    ],
)
def test_what_is_not_a_notification_is_refused(
    listening: tuple[Listener, str], body: bytes, status: int
) -> None:
    listener, url = listening
    answer = requests.post(url, data=body, timeout=10)
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["detail"]
    assert not listener.flush()  # nothing was logged


def test_a_run_that_fails_keeps_its_notifications(listening: tuple[Listener, str]) -> None:
    listener, url = listening
    typeless = {"id": "urn:ngsi-ld:Thing:1"}  # rejected: a run of nothing but rejects fails
    assert requests.post(url, json=_notification(typeless), timeout=10).status_code == 204
    assert not listener.flush()
    assert listener.flushes.failures == 1 and listener.flushes.last_error
    assert requests.post(url, json=_notification(_entity("normalized.jsonld")), timeout=10).ok
    assert listener.flush()
    assert listener.flushes.notifications == 2  # the failed run's notification landed too
    assert list(_features(listener.lake.root)) == [AQ_ID]


def test_a_line_torn_by_a_kill_is_not_landed_and_stops_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    log = lake.root / ".listen" / "aq" / "log"
    log.mkdir(parents=True)
    whole = json.dumps(_notification(_entity("normalized.jsonld"))).encode() + b"\n"
    torn = json.dumps(_notification({**_entity("normalized.jsonld"), "id": "urn:x:torn"}))
    (log / f"{1:012d}.jsonl").write_bytes(whole + torn[: len(torn) // 2].encode())
    listener = Listener(lake, "aq", interval=0.05)  # a new listener after the kill
    listener.start()
    listener.stop()  # waits for the flusher's run: no flush races the closed log
    assert listener.flushes.failures == 0 and listener.flushes.notifications == 1
    assert list(_features(lake.root)) == [AQ_ID]


def _post_many(url: str, ids: list[str], acked: list[str]) -> None:
    base = _entity("normalized.jsonld")

    def post(entity_id: str) -> None:
        entity = {**base, "id": entity_id}
        try:
            if requests.post(url, json=_notification(entity), timeout=30).status_code == 204:
                acked.append(entity_id)
        except requests.RequestException:
            pass  # killed while answering: not acknowledged

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, ids))


def _start(lake: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "citypipe.cli",
        "listen",
        "--source",
        "aq",
        "--port",
        "0",
        "--interval",
        "3600",
        "--lake",
        str(lake),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert found, line
    return proc, f"http://127.0.0.1:{found[1]}/notify"


def test_nothing_acknowledged_is_lost_across_kill_9(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    proc, url = _start(lake)
    acked: list[str] = []
    ids = [f"urn:ngsi-ld:AirQualityObserved:station-{i}" for i in range(400)]
    poster = threading.Thread(target=_post_many, args=(url, ids, acked))
    poster.start()
    while len(acked) < 100 and poster.is_alive():
        threading.Event().wait(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    poster.join()
    assert 100 <= len(acked) < len(ids)
    proc, url = _start(lake)  # the new listener lands what the killed one acknowledged
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    landed = set(_features(lake))
    assert set(acked) <= landed
