"""The lake on disk: where each source's outputs live, and how a run replaces them atomically.

    <lake>/features/source=<NAME>/part-0.parquet   GeoParquet 1.1, shared schema v1
    <lake>/rejects/source=<NAME>/part-0.parquet    records that could not be harmonised
    <lake>/surfaces/source=<NAME>/part-0.parquet   semantic surfaces of 3D objects (GeoParquet)
    <lake>/warehouse.duckdb                        views over the above
    <lake>/docs/                                   validation reports (GX Data Docs)

The features file also records the run that wrote it, in its footer under `RUN_KEY` (what the
warehouse's `sources` view shows), so data and provenance are replaced in the same rename.

A run writes everything into <lake>/.staging first; only when all of it is written does it
rename the files into place. A run that fails leaves the previous output as it was.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.errors import ConfigurationError

__all__ = ["KINDS", "RUN_KEY", "Lake", "Staging", "default_lake"]

KINDS = ("features", "rejects", "surfaces")
RUN_KEY = "citypipe:run"
PART = "part-0.parquet"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_lake() -> Path:
    """`CITYPIPE_LAKE` when set, else data/lake under the working directory."""
    return Path(os.environ.get("CITYPIPE_LAKE") or "data/lake")


def check_source_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"source name {name!r} must start with a letter or digit and hold only "
            "letters, digits, '_', '.' and '-'"
        )
    return name


@dataclass(frozen=True)
class Staging:
    """Where one run of one source writes before it is committed: a file per kind."""

    root: Path
    run: str
    source: str

    def path(self, kind: str) -> Path:
        return self.root / f"{self.run}.{kind}.parquet"


@dataclass(frozen=True)
class Lake:
    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    def partition(self, kind: str, source: str) -> Path:
        return self.root / kind / f"source={source}"

    def files(self, kind: str) -> list[Path]:
        return sorted((self.root / kind).glob("source=*/*.parquet"))

    @contextmanager
    def stage(self, source: str) -> Iterator[Staging]:
        """A staging area; committed when the block ends without an exception, else removed."""
        check_source_name(source)
        staging = Staging(self.root / ".staging", uuid.uuid4().hex[:12], source)
        staging.root.mkdir(parents=True, exist_ok=True)
        try:
            yield staging
            self._commit(staging)
        except BaseException:
            for kind in KINDS:
                staging.path(kind).unlink(missing_ok=True)
            raise

    def _commit(self, staging: Staging) -> None:
        """Each kind's staged file replaces the partition's file in one rename (a kind the run
        wrote nothing for, such as rejects of a clean run, loses its old file)."""
        for kind in KINDS:
            staged, final = staging.path(kind), self.partition(kind, staging.source) / PART
            try:
                os.replace(staged, final)
            except FileNotFoundError:
                if not staged.exists():  # nothing of this kind this time
                    final.unlink(missing_ok=True)
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)  # the source's first run
                os.replace(staged, final)
