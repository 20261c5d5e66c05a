"""Validation of harmonised features (work in progress: being replaced by the GX suite)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

__all__ = ["CheckResult", "Validator"]


@dataclass
class CheckResult:
    name: str
    passed: bool
    description: str = ""
    failed: int = 0
    samples: list[str] = field(default_factory=list)


class Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def check_batch(self, batch: pa.RecordBatch) -> dict[int, str]:
        return {}

    def finish(self, *, records: int, features: int, rejects: int, declared_count: int | None) -> list[CheckResult]:
        ok = declared_count is None or declared_count == records
        return [CheckResult("matches_declared_count", ok)]

    def write_docs(self, docs: Path) -> None:
        pass
