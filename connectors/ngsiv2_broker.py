"""An NGSI v2 context broker's entities (FIWARE Orion, GET /v2/entities), harvested
completely: `http://host/v2/entities?type=AirQualityObserved&q=...`.

Pages are asked for with options=count and read to the end of Fiware-Total-Count
(`ngsi_paging`; Orion refuses a `limit` above 1000 with "Bad pagination limit: /N/ [max:
1000]"). The `tenant` option is the Fiware-Service header, `service_path` Fiware-ServicePath
(default: Orion's, `/#`, every path). Each page goes to `ngsi_entities.entity_batch`, which
tells NGSI v2 by its content.
"""

from __future__ import annotations

from collections.abc import Mapping

from citypipe.connectors.ngsi_broker_base import BrokerConnector
from citypipe.connectors.ngsi_paging import Dialect

__all__ = ["NGSIv2BrokerConnector"]


def _count(params: Mapping[str, str]) -> dict[str, str]:
    options = [o for o in params.get("options", "").split(",") if o and o != "count"]
    return {**params, "options": ",".join([*options, "count"])}


class NGSIv2BrokerConnector(BrokerConnector):
    name = "ngsi-v2-broker"
    title = "NGSI v2 broker"
    version = "v2"
    resource = ("v2", "entities")
    dialect = Dialect("Fiware-Total-Count", _count, {"keyValues": ()})
    option_headers = (("tenant", "Fiware-Service"), ("service_path", "Fiware-ServicePath"))
    modified = "dateModified"
    incremental = "`q=dateModified>=<watermark>` (Orion's builtin attribute)"
