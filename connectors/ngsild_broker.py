"""An NGSI-LD context broker's entities (ETSI GS CIM 009, GET /ngsi-ld/v1/entities), harvested
completely: `http://host/ngsi-ld/v1/entities?type=OffStreetParking&q=...`.

Pages are asked for with count=true and read to the end of NGSILD-Results-Count (`ngsi_paging`:
the page-size ceiling, the offset limit of Orion-LD#1407 and its split). Entities come as
application/json, their @context in the Link header, which is handed to
`ngsi_entities.entity_batch` with each page (an inline @context, where a broker sends
application/ld+json anyway, is the entity's own). A representation the URL asks for
(`options=keyValues`, `simplified`, `concise`, or `format=`) that the broker refuses with 400 is
asked once in its other spelling, then not at all (ngsi_paging.Pager.get). `Query.bbox` becomes
georel=intersects with the box as a Polygon; the `tenant` option the NGSILD-Tenant header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from citypipe.connectors.ngsi_broker_base import BrokerConnector
from citypipe.connectors.ngsi_paging import Dialect

__all__ = ["NGSILDBrokerConnector"]


def _count(params: Mapping[str, str]) -> dict[str, str]:
    return {**params, "count": "true"}


class NGSILDBrokerConnector(BrokerConnector):
    name = "ngsi-ld-broker"
    title = "NGSI-LD broker"
    version = "ETSI GS CIM 009"
    resource: ClassVar[tuple[str, ...]] = ("ngsi-ld", "v1", "entities")
    dialect = Dialect(
        "NGSILD-Results-Count",
        _count,
        # keyValues became simplified in CIM 009 1.4 and concise came in 1.6: brokers know
        # either spelling or both (Stellio, Scorpio, Orion-LD differ)
        {"keyValues": ("simplified",), "simplified": ("keyValues",), "concise": ()},
    )
    option_headers = (("tenant", "NGSILD-Tenant"),)
    modified = "modifiedAt"
    incremental = "`q=modifiedAt>=<watermark>` (CIM 009 4.9, the entity's modification time)"

    def bbox_params(self, bbox: tuple[float, float, float, float]) -> dict[str, str]:
        x0, y0, x1, y1 = bbox
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"georel": "intersects", "geometry": "Polygon", "coordinates": json.dumps([ring])}
