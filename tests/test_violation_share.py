"""The schema_violation_share check's count: the kept features listing violations."""

from __future__ import annotations

import pyarrow as pa

from citypipe.connectors.smart_data_models import VIOLATIONS_PROPERTY
from citypipe.core.violation_share import SAMPLES, ViolationCount, result


def test_only_kept_features_with_violations_count() -> None:
    properties = [
        {VIOLATIONS_PROPERTY: ["$.no2: -1 is less than the minimum of 0"]},  # record 0: rejected
        {VIOLATIONS_PROPERTY: []},  # nothing to say: not a violating feature
        {"note": f"{VIOLATIONS_PROPERTY} in a value is no key"},
        {VIOLATIONS_PROPERTY: ["$: 'dateObserved' is a required property", "$.co: ..."]},
    ]
    features = pa.record_batch({"feature_id": ["s/b", "s/c", "s/d"]})
    count = ViolationCount()
    count.add(properties, features, [1, 2, 3], set().union(*properties))
    assert (count.features, count.violating) == (3, 1)
    assert count.samples == ["s/d: $: 'dateObserved' is a required property"]


def test_the_share_passes_up_to_the_limit_and_samples_are_few() -> None:
    count = ViolationCount()
    for start in range(0, 100, 25):
        properties = [
            {VIOLATIONS_PROPERTY: [f"$: bad {i}"]} if i % 10 == 0 else {}
            for i in range(start, start + 25)
        ]
        features = pa.record_batch({"feature_id": [f"s/{i}" for i in range(start, start + 25)]})
        count.add(properties, features, range(25), set().union(*properties))
    assert (count.features, count.violating) == (100, 10)
    assert result(count, 0.1).passed and not result(count, 0.09).passed
    assert result(count).description.startswith("10 of 100 features (10.0%)")
    assert len(count.samples) == SAMPLES == 5 and count.samples[-1] == "s/40: $: bad 40"
    assert result(ViolationCount()).passed  # a run without features


class _Unread(list):
    def __getitem__(self, i):
        raise AssertionError("a record looked at")


def test_records_naming_no_violations_are_counted_without_a_look() -> None:
    """No key of the batch's records is the violations property (every source but NGSI's):
    its features count, and no record is looked up."""
    properties = _Unread([{"name": "a"}, {"note": VIOLATIONS_PROPERTY}])
    count = ViolationCount()
    count.add(properties, pa.record_batch({"feature_id": ["s/a", "s/b"]}), [0, 1], {"name", "note"})
    assert (count.features, count.violating, count.samples) == (2, 0, [])
