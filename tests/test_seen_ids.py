"""SeenIds: the positions of the ids a run has seen before, however its batches come."""

from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core.seen_ids import SMALL, SeenIds

_ids = st.lists(st.sampled_from([f"id{i}" for i in range(12)]), max_size=20)


@settings(deadline=None)  # a loaded machine's pauses are no failure
@given(st.lists(_ids, max_size=5))
def test_the_ids_seen_before_are_told_in_any_batches(batches):
    seen, earlier = SeenIds(), set()
    for ids in batches:
        repeats = []
        for i, sid in enumerate(ids):
            if sid in earlier:
                repeats.append(i)
            earlier.add(sid)
        assert seen.add(ids) == repeats


def test_a_large_first_batch_and_a_small_one_after_it():
    seen = SeenIds()
    assert seen.add([f"a{i}" for i in range(SMALL)]) == []
    assert seen.add(["b", "a7", "b", f"a{SMALL - 1}"]) == [1, 2, 3]
