"""An incremental harvest of a service: ask only for what changed since the harvest that
landed last, and land it merged with that harvest's features, a whole run as every run is.

The watermark is the server's own clock (the `Date` of its first answer) when the landed
harvest began, floored to the second: whatever the server changed after that instant is asked
for again, clock skew between citypipe and the server costs nothing, and an answer that
overlaps the last harvest is upserted, not duplicated. It is kept in the footer of the landed
features file with the digest of the harvest's settings, so a run that fails moves nothing,
and a harvest asked differently (another URL, bbox, filter, layer, fields ... or citypipe
version) starts again from nothing rather than merging features of another question.

What an incremental harvest cannot see: features deleted on the server (they stay in the lake
until a full harvest, `citypipe run --force`), and changes a server does not date (an OGC API
collection whose temporal property is not when a feature changed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from citypipe import schemas
from citypipe.connectors.base import Connector, Query, ServiceConnector
from citypipe.connectors.registry import is_url
from citypipe.core import incremental
from citypipe.core.incremental import Landed, landed
from citypipe.core.lake import PART, Lake
from citypipe.geo.errors import ConfigurationError

__all__ = ["WATERMARK_KEY", "Delta", "carried", "settings_digest", "since"]

WATERMARK_KEY = "citypipe:watermark"


class Delta:
    """One run's part in incremental harvesting: the instant it asks from, the feature ids it
    harvested, the merge with the landed run and the watermark it leaves. A run that is not
    incremental (`wanted` off) has one that does nothing."""

    def __init__(
        self,
        lake: Lake,
        source: str,
        location: str,
        settings: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        wanted: bool,
    ) -> None:
        self.lake, self.source, self.wanted = lake, source, wanted
        self.digest: str | None = None
        self.since: str | None = None
        self.options = dict(options or {})
        """The connector's options, its query asking from `since`."""
        self._ids: list[pa.ChunkedArray] = []
        if not wanted:
            return
        if not is_url(location):
            raise ConfigurationError(
                f"{location}: only a service (url:) is harvested incrementally"
            )
        self.digest = settings_digest(location, settings)
        self.since = since(landed(lake, source), self.digest)
        if self.since is not None:
            asked = self.options.get("query") or Query()
            self.options["query"] = replace(asked, since=self.since)

    def check(self, connector: Connector) -> None:
        """Refuse a source whose protocol cannot ask for what changed."""
        if self.wanted and not (isinstance(connector, ServiceConnector) and connector.incremental):
            raise ConfigurationError(
                f"{connector.location}: {connector.title} cannot be harvested incrementally "
                "(OGC API - Features, NGSI-LD and NGSI v2 brokers can); drop `incremental`"
            )

    def add(self, features: pa.Table | pa.RecordBatch) -> None:
        """Note the feature ids a batch of the harvest brought."""
        if self.since is not None:
            self._ids.append(pa.chunked_array([features.column("feature_id")]))

    def merge(self, into: Mapping[str, tuple[Writer, schemas.Table]], ingested_at: datetime) -> int:
        """Write the landed run's rows of each kind the harvest did not bring again; the number
        of features carried over."""
        if self.since is None:
            return 0
        replaced = pa.chunked_array([c for ids in self._ids for c in ids.chunks], pa.string())
        features = 0
        for kind, (writer, table) in into.items():
            landed_file = self.lake.partition(kind, self.source) / PART
            for rows in carried(landed_file, table, replaced, ingested_at):
                writer.write(rows)
                features += rows.num_rows if kind == "features" else 0
        return features

    def footer(self, connector: Connector) -> dict[str, bytes]:
        """The watermark for the features file's footer: the server's clock when this harvest
        began; nothing where it sent no `Date` (the next harvest is then a full one)."""
        began = connector.client.first_date if isinstance(connector, ServiceConnector) else None
        if self.digest is None or began is None:
            return {}
        instant = began.astimezone(UTC).replace(microsecond=0)
        mark = {"since": f"{instant:%Y-%m-%dT%H:%M:%SZ}", "settings": self.digest}
        return {WATERMARK_KEY: orjson.dumps(mark)}


class Writer(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...


def settings_digest(location: str, settings: Mapping[str, Any]) -> str:
    """What must not change between two harvests for the second to extend the first: what is
    asked and how it is read, not the HTTP client that asks (an option of the connector)."""
    options = {k: v for k, v in (settings.get("options") or {}).items() if k != "client"}
    return incremental.settings_digest(location, {**settings, "options": options})


def since(found: Landed | None, digest: str) -> str | None:
    """The instant to harvest from: the landed harvest's watermark where it was asked with the
    same settings, else None (a full harvest)."""
    if found is None:
        return None
    kept = orjson.loads(found.metadata.get(WATERMARK_KEY.encode(), b"{}"))
    return kept.get("since") if kept.get("settings") == digest else None


def carried(
    landed_file: Path, table: schemas.Table, replaced: pa.ChunkedArray, ingested_at: datetime
) -> Iterator[pa.RecordBatch]:
    """The rows of the landed run's file (features or surfaces) whose feature_id the harvest
    did not bring again, in `table`'s schema, stamped with this run's `ingested_at` (every row
    of a run carries its run's). Nothing where the source has no landed file of the kind."""
    try:
        file = pq.ParquetFile(landed_file)
    except (OSError, pa.ArrowException):
        return
    schema = table.arrow
    stamped = "ingested_at" in schema.names
    with file:
        for batch in file.iter_batches(batch_size=64 * 1024):
            kept = pa.Table.from_batches([batch])
            kept = kept.filter(pc.invert(pc.is_in(kept["feature_id"], value_set=replaced)))
            if kept.num_rows == 0:
                continue
            if stamped:
                stamp = pa.array([ingested_at] * kept.num_rows, schema.field("ingested_at").type)
                kept = kept.set_column(
                    kept.schema.get_field_index("ingested_at"), "ingested_at", stamp
                )
            yield from kept.cast(schema).to_batches()
