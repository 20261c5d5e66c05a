"""The connector conformance kit: what every connector owes the pipeline, as pytest tests.

A connector's test module subclasses `ConnectorConformance`, names the connector, a sample and
the records the sample holds, and inherits the tests (the way pandas' extension-array suites
work):

    class TestStations(ConnectorConformance):
        connector = StationsConnector
        sample = Path(__file__).parent / "sample.jsonl"
        records = 3

The tests check the contract in docs/connectors.md through the real pipeline (`ingest` into a
lake in pytest's tmp_path): records conserved (features + rejects = records read = the
sample's), a CRS declared or defined for every batch with coordinates, aligned batches, clear
errors (a `CitypipeError`, never another exception) on broken inputs generated from the
sample, identical rows on a re-run, and nothing written by a run that fails. Every built-in
file connector passes it (tests/test_conformance.py). Needs pytest and hypothesis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors import registry
from citypipe.connectors.base import Connector, FileConnector, SourceBatch
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import CitypipeError
from citypipe.geo.types import Points

__all__ = ["ConnectorConformance"]

SOURCE = "conformance"


def _placed(batch: SourceBatch) -> bool:
    """Whether any record of the batch has coordinates."""
    if isinstance(batch.geometries, Points):
        return bool(np.isfinite(batch.geometries.xy).any())
    return batch.solids is not None or any(g is not None for g in batch.geometries)


class ConnectorConformance:
    """Subclass it in a test module; set `connector`, `sample` and `records`."""

    connector: ClassVar[type[Connector]]
    sample: ClassVar[Path]
    """A small file of the connector's format."""
    records: ClassVar[int | None] = None
    """The records the sample holds, counted from the file itself (None: not checked)."""
    options: ClassVar[dict[str, Any]] = {}
    """Connector options (a catalog entry's `options:`)."""
    refused: ClassVar[bytes] = b"\x00\xff\xfe not a file of any format \x00\n"
    """Content the connector must refuse, or reject every record of: the run fails."""

    def _open(self, path: Path) -> Connector:
        return self.connector(path, **self.options)

    def _ingest(self, lake: Lake, path: Path) -> Any:
        return ingest(path, SOURCE, lake, format=self._name(), options=self.options, validate=False)

    def _name(self) -> str:
        """The connector's name, registered in this process if its package is not installed."""
        if self.connector.name not in registry.available():
            registry.register(self.connector)
        return self.connector.name

    def _features(self, lake: Lake) -> dict[str, str]:
        """feature_id -> a digest of the row's geometry, read back with pyarrow."""
        folder = lake.partition("features", SOURCE)
        table = pq.read_table(sorted(folder.glob("*.parquet")), columns=["feature_id", "geometry"])
        ids, geoms = table.column("feature_id").to_pylist(), table.column("geometry").to_pylist()
        return {i: hashlib.sha256(g or b"").hexdigest() for i, g in zip(ids, geoms, strict=True)}

    def _batches(self, path: Path) -> Iterator[SourceBatch]:
        connector = self._open(path)
        connector.inspect()
        yield from connector.read()

    def test_recognises_its_sample(self) -> None:
        if not issubclass(self.connector, FileConnector):
            pytest.skip("a service connector is chosen by its URL")
        self._name()
        chosen = registry.detect(self.sample)
        assert chosen.name == self.connector.name, f"the sample is detected as {chosen.name}"

    def test_says_what_it_read(self) -> None:
        info = self._open(self.sample).inspect()
        assert info.format, "SourceInfo.format is empty"
        if self.records is not None and info.count is not None:
            assert info.count == self.records

    def test_batches_are_aligned_and_placed(self) -> None:
        for batch in self._batches(self.sample):
            n = len(batch)
            aligned: tuple[Any, ...] = (
                batch.geometries, batch.properties, batch.records, batch.errors,
                batch.feature_classes, batch.name, batch.observed_at, batch.repairs,
            )  # fmt: skip
            for column in aligned:
                assert column is None or len(column) == n, "a batch's sequences differ in length"
            if _placed(batch):
                assert batch.crs or batch.default_crs, (
                    "coordinates in no CRS: set crs or default_crs"
                )

    def test_records_are_conserved(self, tmp_path: Path) -> None:
        report = self._ingest(Lake(tmp_path / "lake"), self.sample)
        assert report.features + report.rejects == report.records
        if self.records is not None:
            assert report.records == self.records

    def test_a_rerun_gives_the_same_rows(self, tmp_path: Path) -> None:
        lake = Lake(tmp_path / "lake")
        self._ingest(lake, self.sample)
        first = self._features(lake)
        self._ingest(lake, self.sample)
        assert self._features(lake) == first

    def test_a_failed_run_writes_nothing(self, tmp_path: Path) -> None:
        lake = Lake(tmp_path / "lake")
        self._ingest(lake, self.sample)
        before = self._features(lake)
        bad = tmp_path / f"bad{self.sample.suffix}"
        bad.write_bytes(self.refused)
        with pytest.raises(CitypipeError):
            self._ingest(lake, bad)
        assert self._features(lake) == before

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        cut=st.floats(0.0, 1.0),
        flips=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=4)), max_size=3),
    )
    def test_broken_inputs_give_clear_errors(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        cut: float,
        flips: list[tuple[float, bytes]],
    ) -> None:
        """The sample cut short and with bytes overwritten: rows, rejects or a CitypipeError."""
        data = bytearray(self.sample.read_bytes())
        data = data[: int(len(data) * cut)]
        for at, junk in flips:
            i = int(len(data) * at)
            data[i : i + len(junk)] = junk
        path = tmp_path_factory.mktemp("broken") / f"broken{self.sample.suffix}"
        path.write_bytes(bytes(data))
        try:
            for _ in self._batches(path):
                pass
        except CitypipeError:
            pass  # refused with a message: what the contract asks
