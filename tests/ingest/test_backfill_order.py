"""An import sends history in time order, however long the file: sorted in runs on disk past what memory holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.backfill import Accepted, in_time_order

START = datetime(2025, 10, 1, tzinfo=UTC)


def events(count: int) -> list[Accepted]:
    # Few distinct times: ties are ordered by event id.
    return [(START + timedelta(seconds=n % 7), f"e{n:04d}", b"task", b"{}") for n in range(count)]


@pytest.mark.parametrize(("count", "run"), [(0, 3), (2, 3), (3, 3), (10, 3), (100, 7), (50, 1_000)])
def test_events_come_out_by_time_then_id_whatever_the_run_size(count: int, run: int) -> None:
    ordered = sorted(events(count), key=lambda event: (event[0], event[1]))
    shuffled = list(ordered)
    random.Random(count).shuffle(shuffled)
    assert list(in_time_order(shuffled, run=run)) == ordered
