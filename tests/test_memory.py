"""Memory is bounded by records, not by pathological strings: a file holding one long property
string of escaped quotes peaks within twice a file of ordinary features a third larger.

Measured as the benchmark measures (bench/run.py: a fresh process, peak above its imports), at a
third of the benchmark's sizes (24 MB of escaped quotes against 33 MB of the Barcelona
fountains repeated): before the scanner carried its string state across windows, the string
took about 2 GB.
"""

from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_one_long_string_peaks_within_twice_ordinary_features(tmp_path):
    bench = _bench()
    string = bench.escaped_string(24, tmp_path / "string.geojson")
    ordinary = bench.big_fountains(33, tmp_path / "ordinary.geojson")
    peaks = {}
    for name, path in (("string", string), ("ordinary", ordinary)):
        result = bench.child("citypipe", path, 0)
        assert "error" not in result, result
        peaks[name] = result["peak_mb"]
    assert peaks["string"] <= 2 * peaks["ordinary"], peaks


def test_a_runs_arrow_buffers_come_from_the_system_allocator(sample, lake, monkeypatch):
    """A run allocates Arrow's buffers with the C library's allocator (ingest's
    _system_memory_pool) and leaves the pool as it found it."""
    import pyarrow as pa

    from citypipe.core.harmonise import Harmoniser
    from citypipe.core.ingest import ingest

    pools = []
    harmonise = Harmoniser.harmonise

    def noted(self, batch):
        pools.append(pa.default_memory_pool().backend_name)
        return harmonise(self, batch)

    monkeypatch.setattr(Harmoniser, "harmonise", noted)
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())  # Arrow's default, whatever the environment
    try:
        ingest(sample("esslingen_parking_epsg25832.geojson"), "esslingen", lake, validate=False)
        assert pools and set(pools) == {"system"}
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)
