"""A pass over a folder fetches a small first batch, then full ones."""

from __future__ import annotations

import pytest

from ingest.sources.base import SourceOptions, batches_of


@pytest.mark.parametrize(("count", "sizes"), [
    (0, []), (1, [1]), (50, [50]), (51, [50, 1]), (250, [50, 200]), (651, [50, 200, 200, 200, 1]),
])
def test_the_first_batch_is_small_and_nothing_is_lost(count: int, sizes: list[int]) -> None:
    items = list(range(count))
    batches = list(batches_of(items, SourceOptions()))
    assert [len(batch) for batch in batches] == sizes
    assert [item for batch in batches for item in batch] == items


def test_a_batch_size_below_the_first_size_caps_it() -> None:
    assert [len(b) for b in batches_of(list(range(12)), SourceOptions(batch_size=5))] == [5, 5, 2]
