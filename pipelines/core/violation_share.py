"""The share of a run's features that violate their Smart Data Model, as an asset check.

A schema violation keeps its row (the NGSI connector lists the violations in the row's
properties under `citypipe:schema_violations`, only where there are some); a source whose rows
violate their models more often than its catalog entry allows (`max_violation_share`, default
0.05) fails this check. It does not block: the rows are in the lake, and the check says how many
are suspect, with samples, so that the model or the source is looked at.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from citypipe.connectors.smart_data_models import VIOLATIONS_PROPERTY
from citypipe.core.checks import CheckResult, CheckSpec

__all__ = ["DEFAULT_MAX_SHARE", "SPEC", "ViolationCount", "result"]

DEFAULT_MAX_SHARE = 0.05
SAMPLES = 5
SPEC = CheckSpec(
    "schema_violation_share",
    "at most the source's max_violation_share (catalog; default 0.05) of the features violate "
    f"their Smart Data Model (properties {VIOLATIONS_PROPERTY})",
    blocking=False,
)


@dataclass
class ViolationCount:
    """The features of a run, and those with schema violations (with a few samples)."""

    features: int = 0
    violating: int = 0
    samples: list[str] = field(default_factory=list)

    def add(
        self,
        properties: Sequence[Mapping[str, Any]],
        features: pa.RecordBatch,
        kept: Sequence[int],
        names: Collection[str],
    ) -> None:
        """Count a harmonised batch: `properties` are its source batch's, `names` every key
        they hold (`HarmonisedBatch.property_names`), `kept` the record of each of its
        `features`. A dict lookup a row where some record names the violations property (a
        scan of the JSON text cost 3 ms a MB), none where none does (only NGSI's records
        can: 0.16 ms of the fountains' ingest)."""
        self.features += features.num_rows
        if VIOLATIONS_PROPERTY not in names:
            return
        marked = [
            row for row, record in enumerate(kept) if properties[record].get(VIOLATIONS_PROPERTY)
        ]
        self.violating += len(marked)
        for row in marked[: SAMPLES - len(self.samples)]:
            found = properties[kept[row]][VIOLATIONS_PROPERTY]
            first = found[0] if isinstance(found, list) else found
            self.samples.append(f"{features.column('feature_id')[row].as_py()}: {first}")


def result(count: ViolationCount, max_share: float = DEFAULT_MAX_SHARE) -> CheckResult:
    """The check's outcome for a run: passed while violating / features <= max_share."""
    share = count.violating / count.features if count.features else 0.0
    return CheckResult(
        SPEC.name,
        passed=share <= max_share,
        description=f"{count.violating} of {count.features} features ({share:.1%}) violate "
        f"their Smart Data Model; at most {max_share:.1%} allowed",
        failed=count.violating,
        samples=list(count.samples),
    )
