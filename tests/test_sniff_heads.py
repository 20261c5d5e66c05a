"""Formats found by the head of a file whatever its layout: a JSON object longer than the head
is not parsed (it cannot be whole), and is still told by its keys or its first line."""

from __future__ import annotations

import json
from pathlib import Path

from citypipe.connectors import registry
from citypipe.connectors.ngsi_notifications import NotificationLogConnector
from citypipe.connectors.service_documents import ServiceDocumentConnector


def test_a_long_pretty_printed_collections_document_is_a_service_document(
    sample, tmp_path: Path
) -> None:
    doc = json.loads(sample("nrw_kataster_ldproxy_collections.json").read_bytes())
    doc["description"] = "x" * registry.HEAD_BYTES  # the object's end is past the head
    long = tmp_path / "collections.json"
    long.write_text(json.dumps(doc, indent=2))
    assert registry.detect(long) is ServiceDocumentConnector


def test_a_notification_log_is_told_by_its_first_line(sample, tmp_path: Path) -> None:
    entity = json.loads(sample("ngsi-ld/OffStreetParking/example-normalized.jsonld").read_bytes())
    first = {"id": "urn:ngsi-ld:Notification:1", "type": "Notification",
             "subscriptionId": "urn:ngsi-ld:Subscription:1", "data": [entity]}  # fmt: skip
    second = {**first, "data": [{**entity, "name": "x" * registry.HEAD_BYTES}]}
    log = tmp_path / "notifications.jsonl"
    # blanks after the first line's object, the second line longer than the head
    log.write_text(f"{json.dumps(first)} \r\n{json.dumps(second)}\n")
    assert registry.detect(log) is NotificationLogConnector


def test_a_geojson_longer_than_the_head_on_one_line_is_no_notification_log(sample) -> None:
    path = sample("karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson")
    head = path.read_bytes()[: registry.HEAD_BYTES]
    assert b"\n" not in head.strip()  # one line, cut by the head
    assert NotificationLogConnector.sniff(head) == 0.0
    assert registry.detect(path).name == "geojson"
