"""The validation part of the memory section: does validation hold memory that grows with the
source?

The fountains grid of the lake section (bench/lake.py) at two sizes is read and harmonised as
`ingest` does it (the cycle collector paused), and validated three ways: not at all, in one
chunk of every feature (as validation ran before it was chunked), and a chunk of CHUNK_ROWS
features at a time. Each measurement is a fresh process whose baseline is taken after a first
validation of the fountains, so that GX's import (about 140 MB, the same for every source) is
not counted: what remains is validation's own memory.
Features are not written, so the writer's peak does not hide it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

GRIDS = ((10, 15), (20, 15))
"""Copies of the fountains: 298,200 and 596,400 features (at 149,100 the peak of reading and
harmonising, about 120 MB, is above what validation adds and hides it)."""


def runner(tool: str, path: Path, fountains: Path) -> Callable[[], object]:
    """`harmonise` reads and harmonises `path`; `harmonise+validate:N` validates too, a chunk of
    N features at a time. GX is imported and warm (the fountains validated) when it returns."""
    from citypipe.connectors import registry
    from citypipe.core.harmonise import Harmoniser
    from citypipe.core.validate import Validator

    def run(location: Path, chunk_rows: int) -> None:
        connector = registry.open_location(location)
        harmoniser = Harmoniser(
            source="bench",
            source_format=connector.inspect().label,
            ingested_at=datetime.now(UTC),
            run_id="bench",
            theme=None,
            crs=None,
            axis_order=None,
            fields={},
            path=str(location),
        )
        validator = Validator("bench", chunk_rows) if chunk_rows else None
        n = 0
        gc.disable()  # as ingest runs
        try:
            for batch in connector.read():
                features = harmoniser.harmonise(batch).features
                n += features.num_rows
                if validator:
                    validator.add(features)
            if validator:
                validator.finish(records=n, features=n, rejects=0, declared_count=None)
        finally:
            gc.enable()

    run(fountains, 10_000)
    return lambda: run(path, int(tool.partition(":")[2] or 0))


def run_validation(child: Callable[..., dict], work: Path, fountains: Path) -> None:
    """Peak memory of reading + harmonising each grid, and what validating adds, in one chunk
    and in chunks."""
    from lake import fountains_grid  # bench/lake.py

    from citypipe.core.validate import CHUNK_ROWS

    print(
        f"\nvalidation memory (above GX's import; features not written)\n{'features':>9}"
        f" {'read+harmonise MB':>18} {'+ one chunk MB':>16} {f'+ chunks of {CHUNK_ROWS:,} MB':>24}"
        f" {'seconds: none / one chunk / chunks':>34}"
    )
    for grid in GRIDS:
        name = f"fountains_region_{grid[0]}x{grid[1]}.geojson"  # bench/lake.py's name
        path = fountains_grid(fountains, work / name, grid)
        features = grid[0] * grid[1] * 1988  # the MANIFEST's count of fountains
        tools = ("harmonise", f"harmonise+validate:{features}", f"harmonise+validate:{CHUNK_ROWS}")
        runs = [child(tool, path, 0) for tool in tools]
        base, one, chunks = (r["peak_mb"] for r in runs)
        seconds = " / ".join(f"{r['seconds']:.1f}" for r in runs)
        print(
            f"{features:9,} {base:18.0f} {one - base:+16.0f} {chunks - base:+24.0f} {seconds:>34}"
        )
        for r in runs:
            if "error" in r:
                print(f"  failed: {r['error']}")
